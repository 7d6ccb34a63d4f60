"""Pure math of rewardherd: the single definition of every formula.

No I/O, no ``nn.Module``, no transformers/datasets/matplotlib/ray/fastapi imports.
Everything else in the package calls these functions.
"""

from rewardherd.core.aggregate import (
    METHOD_PARAMS,
    METHODS,
    Aggregation,
    Method,
    Spread,
    aggregate,
    as_scores,
    check_params,
    ensemble_std,
    ensemble_var,
    parse_number,
    spread,
    to_numpy,
)
from rewardherd.core.agreement import (
    auroc,
    gaussian_copula_correlation,
    mean_pairwise_kendall,
    pairwise_kendall,
    spearman,
    top1_agreement,
)
from rewardherd.core.bon import bon_estimate, bon_kl, bon_weights, n_grid, select_best_of_n
from rewardherd.core.bradley_terry import (
    bradley_terry_loss,
    preference_accuracy,
    preference_probability,
)
from rewardherd.core.diagnostics import (
    CurveShape,
    MemberDiagnostics,
    curve_shape,
    member_diagnostics,
    pool_pair_accuracy,
    prompt_residual_covariances,
    residual_correlation_difference,
    shared_residual_features,
    within_prompt_spearman,
)
from rewardherd.core.fits import GaoFit, fit_gao, fit_gao_batch, fit_gao_pigeonhole, gao_curve
from rewardherd.core.kl import kl_penalized_reward, kl_per_token, sequence_kl
from rewardherd.core.sharing import (
    ErrorSharing,
    decompose_errors,
    error_sharing,
    label_error_sharing,
    margin_error_sharing,
    mean_pairwise_correlation,
    member_errors,
    residual_error_sharing,
)
from rewardherd.core.stats import (
    Interval,
    crossed_interval,
    decide,
    paired_bootstrap,
    pigeonhole_bootstrap,
)
from rewardherd.core.strength import Strength, clean_selection, preference_strength, strength_margin
from rewardherd.core.transforms import (
    clip_reward,
    log_sigmoid_centre,
    member_statistics,
    standardize,
    zscore,
)
from rewardherd.core.weights import average_weights

__all__ = [
    "METHODS", "METHOD_PARAMS", "Aggregation", "Method", "Spread", "aggregate", "as_scores", "check_params",
    "parse_number", "ensemble_std", "ensemble_var", "spread", "to_numpy", "auroc", "pairwise_kendall", "mean_pairwise_kendall", "gaussian_copula_correlation",
    "spearman",
    "top1_agreement", "bon_estimate", "bon_kl", "bon_weights", "n_grid", "select_best_of_n",
    "bradley_terry_loss", "preference_accuracy", "preference_probability", "GaoFit", "fit_gao", "fit_gao_batch", "fit_gao_pigeonhole",
    "gao_curve", "kl_per_token", "kl_penalized_reward", "sequence_kl", "Interval", "decide",
    "paired_bootstrap", "crossed_interval", "pigeonhole_bootstrap", "clip_reward", "log_sigmoid_centre",
    "member_statistics", "standardize", "zscore", "ErrorSharing", "decompose_errors", "error_sharing",
    "label_error_sharing", "margin_error_sharing", "member_errors", "residual_error_sharing",
    "mean_pairwise_correlation", "CurveShape", "MemberDiagnostics", "curve_shape", "member_diagnostics",
    "pool_pair_accuracy", "prompt_residual_covariances", "residual_correlation_difference", "shared_residual_features",
    "within_prompt_spearman",
    "Strength", "clean_selection", "preference_strength", "strength_margin", "average_weights",
]
