"""Reward members, the Ensemble, and tiny locally built models for tests."""

from rewardherd.models.common import load_member_model
from rewardherd.models.ensemble import BestOfN, Ensemble, Member, RewardOutput
from rewardherd.models.manifest import Manifest, ManifestError, MemberInfo

__all__ = ["BestOfN", "Ensemble", "Member", "RewardOutput", "load_member_model", "Manifest",
           "ManifestError", "MemberInfo"]
