"""ServeConfig: what `rewardherd serve` serves and the limits it enforces.

The string under each field is its only help text; `rewardherd serve` reads it from
here (see :func:`rewardherd.config.field_docs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServeConfig:
    """HTTP reward server settings (aggregation, auth, limits, micro-batching)."""

    method: str = "mean"
    """Aggregation method for /get_reward and the default for /v1/score: mean, median, min, mean_minus_std, uncertainty_weighted, soft_min, robust."""
    params: dict[str, float] = field(default_factory=dict)
    """Parameters of the method, e.g. {"lam": 0.5}; the method's defaults fill the rest."""
    standardize: bool = True
    """Aggregate member scores standardized with the manifest statistics; False aggregates raw scores."""
    token: str | None = field(default=None, repr=False)
    """Bearer token required on every route except /health; None serves without auth."""
    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body in bytes; larger bodies get 413."""
    max_items: int = 512
    """Most items (queries or pairs) in one request; more get 413."""
    max_text_chars: int = 65536
    """Longest prompt, response or query in characters (a message list counts one per message plus every role and content character); longer gets 422."""
    batching: bool = True
    """Merge concurrent requests into one forward pass per member; off scores each request alone."""
    max_batch: int = 64
    """Most pairs merged into one scoring call (also the forward-pass batch size)."""
    max_wait_ms: float = 5.0
    """How long the batcher waits for more requests after the first one arrives, in milliseconds."""
    max_queue: int = 256
    """Most requests waiting for the model; beyond it requests get 503."""
    strip_special_tokens: bool = True
    """Strip the members' pad and EOS token strings from both ends of /get_reward queries and prompts (OpenRLHF sends them decoded with special tokens)."""

    def __post_init__(self):
        from rewardherd.core import Aggregation

        Aggregation(self.method, self.params)  # validates the method and its params
        for name in ("max_body_bytes", "max_items", "max_text_chars", "max_batch", "max_queue"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
        if not self.max_wait_ms >= 0:
            raise ValueError(f"max_wait_ms must be >= 0; got {self.max_wait_ms}")
        if self.token is not None and not self.token:
            raise ValueError("token must be a non-empty string or None")
