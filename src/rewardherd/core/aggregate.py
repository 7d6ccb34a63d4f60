"""Aggregation of ensemble scores and their spread.

Shape notation: ``m`` ensemble members, ``b`` samples. Scores are always shaped
``(m, b)``: the ensemble axis comes first.

Formulas (SCIENCE.md section 3):

=====================  ====================================================
method                 formula
=====================  ====================================================
mean                   mean_i r_i
median                 median_i r_i (average of the two middle values for even m)
min                    min_i r_i (worst-case optimization, Coste et al.)
mean_minus_std         mean - k * std_ddof                     (Eisenstein et al.)
uncertainty_weighted   mean - lam * var_ddof                   (Coste et al. eq. 5)
soft_min               -t * log( (1/m) sum_i exp(-r_i / t) )   t = ``temperature``
robust                 lam * mean + (1 - lam) * min            lam in [0, 1] (Yan et al.)
=====================  ====================================================

Departures and choices:
- ``uncertainty_weighted`` uses the VARIANCE (Coste eq. 5), not the std.
- ``ddof`` is an explicit argument, default 0 everywhere (Coste et al.'s code used 0 for
  best-of-n and 1 for PPO).
- Scale matters for min, mean_minus_std, uncertainty_weighted and soft_min, so
  rewardherd aggregates *standardized* member scores by default; the paper defaults
  lam=0.5 (best-of-n) / 0.1 (RL) were set on Coste et al.'s raw scale.
- ``robust`` is Yan et al.'s objective with the ensemble mean as the nominal reward.
- Non-finite scores or parameters are errors (naming ``(member i, sample j)``), never a
  silent NaN.

An aggregation is one value, :class:`Aggregation`, written
``"uncertainty_weighted(lam=0.5)"`` wherever a user types one (CLI, YAML, server).

References: Coste et al. 2023 (arXiv 2310.02743); Eisenstein et al. 2023
(arXiv 2312.09244); Yan et al. 2024, "Reward-Robust RLHF in LLMs" (arXiv 2409.15360).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
from scipy.special import logsumexp

Method = Literal["mean", "median", "min", "mean_minus_std", "uncertainty_weighted", "soft_min", "robust"]
METHODS: tuple[str, ...] = get_args(Method)

#: The parameters each method accepts, with their defaults.
METHOD_PARAMS: dict[str, dict[str, float | int]] = {
    "mean": {},
    "median": {},
    "min": {},
    "mean_minus_std": {"k": 1.0, "ddof": 0},
    "uncertainty_weighted": {"lam": 0.5, "ddof": 0},
    "soft_min": {"temperature": 1.0},
    "robust": {"lam": 0.5},
}


def to_numpy(x) -> np.ndarray:
    """float64 numpy view of an array-like or a torch tensor (detached, on CPU)."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def as_scores(scores) -> np.ndarray:
    """Return ``scores`` as a float64 array of shape (m, b).

    Accepts numpy arrays, torch tensors (detached, moved to CPU) and nested lists.
    A 1-D input is treated as a single member, shape (1, b).
    """
    arr = to_numpy(scores)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"scores must have shape (m, b); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("scores has no ensemble members (m = 0)")
    return arr


def check_finite(s: np.ndarray, name: str = "scores") -> None:
    """Raise ValueError naming the first non-finite entry of an (m, b) array."""
    bad = ~np.isfinite(s)
    if bad.any():
        i, j = (int(x) for x in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be finite; got {s[i, j]} at (member {i}, sample {j}) "
                         f"({int(bad.sum())} non-finite value(s) in all)")


def _param(p: dict, name: str) -> float:
    v = p[name]
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating) or not np.isfinite(v):
        raise ValueError(f"parameter {name} must be a finite number; got {v!r}")
    return float(v)


def _check_ddof_value(ddof) -> None:
    if isinstance(ddof, bool) or ddof not in (0, 1) or int(ddof) != ddof:
        raise ValueError(f"ddof must be 0 (population) or 1 (sample); got {ddof!r}")


def _check_ddof(ddof: int, m: int) -> None:
    _check_ddof_value(ddof)
    if m - ddof <= 0:
        raise ValueError(f"variance with ddof={ddof} needs more than {ddof} member(s); got m={m}")


def ensemble_var(scores, ddof: int = 0) -> np.ndarray:
    """Variance across members, shape (b,). ``ddof`` 0: population, 1: sample."""
    s = as_scores(scores)
    _check_ddof(ddof, s.shape[0])
    return s.var(axis=0, ddof=ddof)


def ensemble_std(scores, ddof: int = 0) -> np.ndarray:
    """Standard deviation across members, shape (b,)."""
    return np.sqrt(ensemble_var(scores, ddof=ddof))


def aggregate(scores, method: Method = "mean", **params) -> np.ndarray:
    """Aggregate member scores over the ensemble axis.

    Args:
        scores: shape (m, b) (numpy, torch or list); 1-D means one member.
        method: one of :data:`METHODS`.
        **params: the method's parameters (:data:`METHOD_PARAMS`); unknown ones are errors.

    Returns:
        float64 array of shape (b,).
    """
    p = check_params(method, params)
    s = as_scores(scores)
    check_finite(s)
    if method == "mean":
        return s.mean(axis=0)
    if method == "median":
        return np.median(s, axis=0)
    if method == "min":
        return s.min(axis=0)
    if method == "mean_minus_std":
        return s.mean(axis=0) - float(p["k"]) * ensemble_std(s, ddof=p["ddof"])
    if method == "uncertainty_weighted":
        return s.mean(axis=0) - float(p["lam"]) * ensemble_var(s, ddof=p["ddof"])
    if method == "robust":
        lam = float(p["lam"])
        # Written as a convex combination so lam=1 and lam=0 give the mean and the min exactly.
        return lam * s.mean(axis=0) + (1.0 - lam) * s.min(axis=0)
    # soft_min
    t = float(p["temperature"])
    m = s.shape[0]
    return -t * (logsumexp(-s / t, axis=0) - np.log(m))


def check_params(method: str, params: dict) -> dict:
    """Validate ``method`` and its ``params``; return the params with defaults filled in.

    Raises ValueError naming an unknown method or parameter (and the allowed ones) or
    a value out of range. Whether ``ddof`` suits the number of members is checked
    where the scores are known (:func:`ensemble_var`, :meth:`Aggregation.check_members`).
    """
    if method not in METHOD_PARAMS:
        raise ValueError(f"unknown aggregation method {method!r}; choose from {', '.join(METHODS)}")
    unknown = set(params) - set(METHOD_PARAMS[method])
    if unknown:
        allowed = ", ".join(METHOD_PARAMS[method]) or "none"
        raise ValueError(f"method {method!r} takes no parameter(s) {sorted(unknown)}; allowed: {allowed}")
    p = {**METHOD_PARAMS[method], **params}
    if method == "mean_minus_std":
        k = _param(p, "k")
        if not k >= 0:
            raise ValueError(f"k must be >= 0; got {k}")
    elif method == "uncertainty_weighted":
        lam = _param(p, "lam")
        if not lam >= 0:
            raise ValueError(f"lam must be >= 0; got {lam}")
    elif method == "robust":
        lam = _param(p, "lam")
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1] for robust; got {lam}")
    elif method == "soft_min":
        t = _param(p, "temperature")
        if not t > 0:
            raise ValueError(f"temperature must be > 0; got {t}")
    if "ddof" in p:
        _check_ddof_value(p["ddof"])
    return p


_INT = re.compile(r"[-+]?[0-9]+")
_SPEC = re.compile(r"\s*([^()]*?)\s*(?:\((.*)\))?\s*", re.DOTALL)  # name, optional "(k=v,...)"


def parse_number(text: str, name: str = "value") -> int | float:
    """``"1"`` -> 1, ``"0.5"`` -> 0.5: a parameter value as typed by a user."""
    text = text.strip()
    if _INT.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number; got {text!r}") from None


@dataclass(frozen=True)
class Aggregation:
    """An aggregation method with its parameters, e.g. ``uncertainty_weighted(lam=0.5)``.

    ``params`` holds only what was given; :data:`METHOD_PARAMS` supplies the rest.
    Validated on construction (:func:`check_params`).
    """

    method: str
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.method, str):
            raise ValueError(f"method must be a string; got {type(self.method).__name__}")
        if not isinstance(self.params, dict):
            raise ValueError(f"params must be a mapping; got {type(self.params).__name__}")
        check_params(self.method, self.params)

    @property
    def label(self) -> str:
        """The canonical text: ``name`` or ``name(k=v,...)`` with parameters sorted."""
        if not self.params:
            return self.method
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.method}({inner})"

    @classmethod
    def parse(cls, text: str) -> Aggregation:
        """Parse ``name`` or ``name(k=v,...)`` (values are numbers)."""
        match = _SPEC.fullmatch(text)
        if match is None:
            raise ValueError(f"cannot parse method {text!r}; use name or name(k=v,...)")
        name, inner = match.group(1), match.group(2) or ""
        params = {}
        for part in filter(None, (x.strip() for x in inner.split(","))):
            k, eq, v = part.partition("=")
            if not eq:
                raise ValueError(f"cannot parse parameter {part!r} of {text!r}; use k=v")
            params[k.strip()] = parse_number(v, k.strip())
        return cls(name, params)

    def check_members(self, m: int) -> None:
        """Raise ValueError unless this aggregation is defined for ``m`` members (ddof < m)."""
        if "ddof" in METHOD_PARAMS[self.method]:
            _check_ddof({**METHOD_PARAMS[self.method], **self.params}["ddof"], m)

    def apply(self, scores) -> np.ndarray:
        """Aggregate ``scores`` (m, b) to (b,) with :func:`aggregate`."""
        return aggregate(scores, self.method, **self.params)


@dataclass(frozen=True)
class Spread:
    """Per-sample disagreement between members, each of shape (b,)."""

    std: np.ndarray
    var: np.ndarray
    range: np.ndarray
    ddof: int

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"std": self.std, "var": self.var, "range": self.range}


def spread(scores, ddof: int = 0) -> Spread:
    """Spread statistics across members: std, var (with ``ddof``) and max - min.

    With a single member the spread is 0 (ddof=0) by definition.
    """
    s = as_scores(scores)
    check_finite(s)
    if s.shape[0] == 1 and ddof == 1:
        ddof = 0  # one member has no sample variance; report zero spread, not NaN
    var = ensemble_var(s, ddof=ddof)
    return Spread(std=np.sqrt(var), var=var, range=s.max(axis=0) - s.min(axis=0), ddof=ddof)
