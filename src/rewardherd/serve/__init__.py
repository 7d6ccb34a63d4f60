"""HTTP reward server around an Ensemble: `rewardherd serve ENSEMBLE_DIR`.

Speaks OpenRLHF's remote reward-model protocol (``POST /get_reward``) and a richer
``POST /v1/score`` that returns the aggregate, the spread and every member's score.
See :mod:`rewardherd.serve.app` for the routes, :mod:`rewardherd.serve.protocol` for
request shapes and :mod:`rewardherd.serve.batcher` for micro-batching.

Importing this package is cheap: fastapi is imported only by
:func:`create_app` (``rewardherd.serve.app``).
"""

from rewardherd.serve.config import ServeConfig

__all__ = ["ServeConfig", "create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from rewardherd.serve.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
