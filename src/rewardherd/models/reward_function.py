"""The ensemble as a TRL reward function (GRPOTrainer / RLOOTrainer ``reward_funcs``).

TRL calls ``f(prompts, completions, completion_ids, **kwargs) -> list[float | None]``
and passes ``log_extra(column, values)`` and ``log_metric(name, value)`` in kwargs
(TRL >= 1.x). We return the aggregate and log, per call, each member's mean reward
(``score/z/<member>``, or ``score/raw/<member>`` with ``standardize=False``), the mean
spread (``ens/std``) and the per-completion spread as an extra column (``ens/std``);
the names follow docs/schema.md. Conversational completions (lists of messages) are
scored as messages.

Drop it into your own trainer::

    reward = Ensemble.load("my_ensemble").as_reward_function(method="uncertainty_weighted", lam=0.1)
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], args=GRPOConfig(beta=0.05, ...), ...)
"""

from __future__ import annotations

from rewardherd import core, schema


class EnsembleRewardFunction:
    """Callable TRL reward function backed by an :class:`~rewardherd.models.Ensemble`."""

    def __init__(self, ensemble, method: core.Method = "mean", *, standardize: bool = True, batch_size: int = 64,
                 **params):
        core.Aggregation(method, params).check_members(len(ensemble))  # validate method/params now
        self.ensemble = ensemble
        self.method = method
        self.params = params
        self.standardize = standardize
        self.batch_size = batch_size
        self.__name__ = f"ensemble_{method}"  # TRL names reward columns after __name__
        self.last = None  # the last RewardOutput, for callers that want the member matrix

    def __call__(self, prompts, completions, completion_ids=None, **kwargs) -> list[float]:
        out = self.ensemble.reward(list(prompts), list(completions), self.method, standardize=self.standardize,
                                   batch_size=self.batch_size, **self.params)
        self.last = out
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            for name, row in zip(self.ensemble.names, out.scores, strict=True):
                log_metric(schema.score_col(name, out.standardized), float(row.mean()))
            log_metric(schema.SPREAD, float(out.spread.std.mean()))
        log_extra = kwargs.get("log_extra")
        if log_extra is not None:
            log_extra(schema.SPREAD, out.spread.std.tolist())
        return out.reward.tolist()
