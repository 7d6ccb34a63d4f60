"""Training reward members (TRL RewardTrainer) and ensembles of them."""

from rewardherd.training.config import EnsembleConfig, MemberSpec, TrainConfig
from rewardherd.training.ensemble import PlanMismatchError, train_ensemble
from rewardherd.training.member import evaluate_pairs, train_member

__all__ = ["EnsembleConfig", "MemberSpec", "TrainConfig", "PlanMismatchError", "train_ensemble",
           "evaluate_pairs", "train_member"]
