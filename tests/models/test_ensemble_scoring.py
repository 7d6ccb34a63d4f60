"""Ensemble.score / reward / best_of_n / as_reward_function on an untrained tiny ensemble."""

import numpy as np
import pytest
import torch

from rewardherd import core
from rewardherd.models import ManifestError, RewardOutput
from rewardherd.models import ensemble as ensemble_module
from rewardherd.models.formatting import encode


def _manual_scores(ens, prompts, responses) -> np.ndarray:
    """Each member on each pair, one unpadded sequence at a time (the reference)."""
    out = np.empty((len(ens), len(prompts)))
    for i, m in enumerate(ens.members):
        for j, (p, r) in enumerate(zip(prompts, responses, strict=True)):
            ids, _ = encode(m.tokenizer, p, r, ens.max_length)
            with torch.no_grad():
                out[i, j] = m.model(input_ids=torch.tensor([ids])).logits[0, 0].item()
    return out


def _stats(ens):
    mean = np.array([m.standardization["mean"] for m in ens.manifest.members])
    std = np.array([m.standardization["std"] for m in ens.manifest.members])
    return mean, std


class _SequenceCounter:
    """Counts the sequences each member's forward pass sees."""

    def __init__(self, ens):
        self.counts = [0] * len(ens)
        self._handles = [
            m.model.register_forward_pre_hook(self._hook(i), with_kwargs=True) for i, m in enumerate(ens.members)
        ]

    def _hook(self, i):
        def hook(module, args, kwargs):
            ids = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
            self.counts[i] += ids.shape[0]

        return hook

    def close(self):
        for h in self._handles:
            h.remove()


# ------------------------------------------------------------------- score
def test_score_shape_dtype_and_matches_unbatched_reference(ensemble, texts):
    prompts, responses = texts
    raw = ensemble.score(prompts, responses)
    assert raw.shape == (3, len(prompts))
    assert raw.dtype == np.float64
    np.testing.assert_allclose(raw, _manual_scores(ensemble, prompts, responses), atol=1e-5, rtol=0)


def test_members_with_different_heads_score_differently(ensemble, texts):
    raw = ensemble.score(*texts)
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.allclose(raw[i], raw[j], atol=1e-4)


def test_length_bucketed_batches_equal_batch_size_one(ensemble, texts):
    prompts, responses = texts
    batched = ensemble.score(prompts, responses, batch_size=64)
    for bs in (1, 4):
        np.testing.assert_allclose(ensemble.score(prompts, responses, batch_size=bs), batched, atol=1e-5, rtol=0)


def test_scores_come_back_in_input_order(ensemble, texts):
    prompts, responses = texts
    raw = ensemble.score(prompts, responses)
    rev = ensemble.score(prompts[::-1], responses[::-1])
    np.testing.assert_allclose(rev, raw[:, ::-1], atol=1e-6, rtol=0)


def test_duplicate_pairs_are_scored_once_and_get_identical_values(ensemble, texts):
    prompts, responses = texts
    # pair 0 three times, pair 3 twice, pair 5 once: 3 distinct pairs in 6 rows
    idx = [0, 3, 0, 5, 3, 0]
    p = [prompts[i] for i in idx]
    r = [responses[i] for i in idx]
    counter = _SequenceCounter(ensemble)
    try:
        raw = ensemble.score(p, r)
    finally:
        counter.close()
    assert counter.counts == [3, 3, 3]  # each member ran each distinct pair exactly once
    np.testing.assert_array_equal(raw[:, 0], raw[:, 2])
    np.testing.assert_array_equal(raw[:, 0], raw[:, 5])
    np.testing.assert_array_equal(raw[:, 1], raw[:, 4])
    single = ensemble.score([prompts[0], prompts[3], prompts[5]], [responses[0], responses[3], responses[5]])
    np.testing.assert_allclose(raw[:, [0, 1, 3]], single, atol=1e-6, rtol=0)


def test_same_response_under_different_prompts_is_not_deduplicated(ensemble):
    raw = ensemble.score(["item 1: ", "something else entirely: "], ["good", "good"])
    assert not np.allclose(raw[:, 0], raw[:, 1])


def test_members_sharing_a_tokenizer_share_one_tokenization(ensemble, texts, monkeypatch):
    calls = []
    real = ensemble_module.encode_batch

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ensemble_module, "encode_batch", counting)
    ensemble.score(*texts)
    assert len(calls) == 1


def test_score_empty_and_mismatched_inputs(ensemble):
    assert ensemble.score([], []).shape == (3, 0)
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        ensemble.score(["a", "b"], ["c"])


def test_truncated_sequences_are_scored_on_their_end(make_ensemble, caplog):
    ens = make_ensemble(1, max_length=6)
    long = "bad awful sad terrible cruel dark cold bad awful sad terrible"
    with caplog.at_level("WARNING", logger="rewardherd.models.ensemble"):
        raw = ens.score(["item 0: "], [long])
    assert "truncated" in caplog.text
    ids, truncated = encode(ens.members[0].tokenizer, "item 0: ", long, 6)
    assert truncated and len(ids) == 6
    np.testing.assert_allclose(raw, _manual_scores(ens, ["item 0: "], [long]), atol=1e-5, rtol=0)


# ------------------------------------------------------------------ reward
def test_reward_standardizes_with_manifest_statistics_by_default(ensemble, texts):
    prompts, responses = texts
    raw = ensemble.score(prompts, responses)
    mean, std = _stats(ensemble)
    expected = core.standardize(raw, mean, std)
    out = ensemble.reward(prompts, responses)  # method="mean", standardize=True
    assert isinstance(out, RewardOutput)
    assert out.standardized and out.method == "mean"
    np.testing.assert_allclose(out.raw_scores, raw, atol=1e-12, rtol=0)
    np.testing.assert_allclose(out.scores, expected, atol=1e-12, rtol=0)
    np.testing.assert_allclose(out.reward, expected.mean(axis=0), atol=1e-12, rtol=0)
    np.testing.assert_allclose(ensemble.score(prompts, responses, standardize=True), expected, atol=1e-12, rtol=0)


def test_reward_raw_on_request(ensemble, texts):
    raw = ensemble.score(*texts)
    out = ensemble.reward(*texts, method="min", standardize=False)
    assert not out.standardized
    np.testing.assert_allclose(out.scores, raw, atol=1e-12, rtol=0)
    np.testing.assert_allclose(out.reward, raw.min(axis=0), atol=1e-12, rtol=0)


def test_standardization_changes_the_aggregate(ensemble, texts):
    """min depends on scale: standardized and raw minima differ for these statistics."""
    std_min = ensemble.reward(*texts, method="min").reward
    raw_min = ensemble.reward(*texts, method="min", standardize=False).reward
    assert not np.allclose(std_min, raw_min)


@pytest.mark.parametrize(
    "method, params",
    [("mean", {}), ("median", {}), ("min", {}), ("mean_minus_std", {"k": 2.0}),
     ("uncertainty_weighted", {"lam": 0.5}), ("soft_min", {"temperature": 0.5}), ("robust", {"lam": 0.3})],
)
def test_reward_matches_core_aggregate_and_spread_shapes(ensemble, texts, method, params):
    prompts, _ = texts
    out = ensemble.reward(*texts, method=method, **params)
    b = len(prompts)
    assert out.reward.shape == (b,)
    assert out.scores.shape == out.raw_scores.shape == (3, b)
    assert out.spread.std.shape == out.spread.var.shape == out.spread.range.shape == (b,)
    np.testing.assert_allclose(out.reward, core.aggregate(out.scores, method, **params), atol=1e-12, rtol=0)
    np.testing.assert_allclose(out.spread.std, out.scores.std(axis=0), atol=1e-12, rtol=0)
    np.testing.assert_allclose(out.spread.range, np.ptp(out.scores, axis=0), atol=1e-12, rtol=0)
    assert out.params == params


def test_reward_ddof_reaches_aggregate_and_spread(ensemble, texts):
    out = ensemble.reward(*texts, method="uncertainty_weighted", lam=0.5, ddof=1)
    var1 = out.scores.var(axis=0, ddof=1)
    assert out.spread.ddof == 1
    np.testing.assert_allclose(out.spread.var, var1, atol=1e-12, rtol=0)
    np.testing.assert_allclose(out.reward, out.scores.mean(axis=0) - 0.5 * var1, atol=1e-12, rtol=0)


def test_aggregate_scores_passes_ddof_to_the_aggregate(ensemble, texts):
    """ddof given to aggregate_scores must reach the variance in the aggregate, not only the spread."""
    raw = ensemble.score(*texts)
    out = ensemble.aggregate_scores(raw, "uncertainty_weighted", ddof=1, lam=0.5)
    var1 = out.scores.var(axis=0, ddof=1)
    np.testing.assert_allclose(out.spread.var, var1, atol=1e-12, rtol=0)
    np.testing.assert_allclose(out.reward, out.scores.mean(axis=0) - 0.5 * var1, atol=1e-12, rtol=0)


def test_uncertainty_weighted_with_lam_zero_is_the_mean(ensemble, texts):
    uw = ensemble.reward(*texts, method="uncertainty_weighted", lam=0.0).reward
    np.testing.assert_array_equal(uw, ensemble.reward(*texts, method="mean").reward)


def test_reward_rejects_unknown_method_and_params(ensemble, texts):
    with pytest.raises(ValueError, match="unknown aggregation method"):
        ensemble.reward(*texts, method="max")
    with pytest.raises(ValueError, match="lam"):
        ensemble.reward(*texts, method="mean", lam=0.5)


def test_reward_without_statistics_needs_standardize_false(make_ensemble, texts):
    ens = make_ensemble(2)
    ens.members[1].info.standardization = None
    with pytest.raises(ManifestError, match="member_1"):
        ens.reward(*texts)
    assert ens.reward(*texts, standardize=False).reward.shape == (len(texts[0]),)


# -------------------------------------------------------------- best_of_n
def test_best_of_n_picks_argmax_of_the_aggregate(ensemble, texts):
    _, responses = texts
    prompts = ["item 1: ", "item 2: "]
    candidates = [responses[:5], responses[5:]]
    res = ensemble.best_of_n(prompts, candidates, "uncertainty_weighted", lam=0.5)
    assert res.index.shape == (2,)
    for j, (p, cs) in enumerate(zip(prompts, candidates, strict=True)):
        agg = ensemble.reward([p] * len(cs), cs, "uncertainty_weighted", lam=0.5)
        k = int(np.argmax(agg.reward))
        assert res.index[j] == k
        assert res.response[j] == cs[k]
        # same pairs in a different batch composition: float32 noise only
        assert res.reward[j] == pytest.approx(agg.reward[k], abs=1e-5)
        assert res.spread[j] == pytest.approx(agg.spread.std[k], abs=1e-5)
        np.testing.assert_allclose(res.all_rewards[j], agg.reward, atol=1e-5, rtol=0)


def test_best_of_n_ties_go_to_the_lowest_index(ensemble, texts):
    _, responses = texts
    p = "item 1: "
    agg = ensemble.reward([p] * len(responses), responses).reward
    best, worst = responses[int(np.argmax(agg))], responses[int(np.argmin(agg))]
    res = ensemble.best_of_n([p], [[worst, best, best, worst, best]])
    assert res.index.tolist() == [1]
    r = res.all_rewards[0]
    assert r[1] == r[2] == r[4]  # duplicates tie exactly


def test_best_of_n_input_errors(ensemble):
    with pytest.raises(ValueError, match="candidate"):
        ensemble.best_of_n(["a", "b"], [["x"]])
    with pytest.raises(ValueError, match="at least one candidate"):
        ensemble.best_of_n(["a", "b"], [["x"], []])


# ------------------------------------------------------- reward function
def test_as_reward_function_returns_floats_and_logs_member_means_and_spread(ensemble, texts):
    prompts, responses = texts
    f = ensemble.as_reward_function("uncertainty_weighted", lam=0.5)
    assert f.__name__ == "ensemble_uncertainty_weighted"
    metrics, extras = {}, {}
    out = f(prompts, responses, completion_ids=None, log_metric=metrics.__setitem__, log_extra=extras.__setitem__)
    assert isinstance(out, list) and len(out) == len(prompts)
    assert all(type(x) is float for x in out)
    expected = ensemble.reward(prompts, responses, "uncertainty_weighted", lam=0.5)
    np.testing.assert_allclose(out, expected.reward, atol=1e-12, rtol=0)
    assert set(metrics) == {"score/z/member_0", "score/z/member_1", "score/z/member_2", "ens/std"}
    for i in range(3):
        assert metrics[f"score/z/member_{i}"] == pytest.approx(expected.scores[i].mean(), abs=1e-12)
    assert metrics["ens/std"] == pytest.approx(expected.spread.std.mean(), abs=1e-12)
    assert set(extras) == {"ens/std"}
    np.testing.assert_allclose(extras["ens/std"], expected.spread.std, atol=1e-12, rtol=0)
    np.testing.assert_allclose(f.last.reward, expected.reward, atol=1e-12, rtol=0)


def test_reward_function_works_without_loggers_and_with_messages(ensemble):
    f = ensemble.as_reward_function()
    prompts = [[{"role": "user", "content": "say something nice"}]] * 2
    completions = [[{"role": "assistant", "content": "good kind"}], [{"role": "assistant", "content": "cruel"}]]
    out = f(prompts, completions)
    assert len(out) == 2 and all(type(x) is float for x in out)
    assert out[0] != out[1]


def test_reward_function_validates_method_up_front(ensemble):
    with pytest.raises(ValueError, match="unknown aggregation method"):
        ensemble.as_reward_function("max")
    with pytest.raises(ValueError, match="temperature"):
        ensemble.as_reward_function("soft_min", temperature=0.0)
