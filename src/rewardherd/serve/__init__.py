"""HTTP reward server around an Ensemble: `rewardherd serve ENSEMBLE_DIR`.

OpenRLHF's ``POST /get_reward`` plus a richer ``POST /v1/score`` (docs/serving.md).
Importing this package is cheap: fastapi is imported only by :func:`create_app`.
"""

from rewardherd.serve.config import ServeConfig

__all__ = ["ServeConfig", "create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from rewardherd.serve.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
