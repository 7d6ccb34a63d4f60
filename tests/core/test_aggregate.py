"""Tests for rewardherd.core.aggregate: hand-worked cases, properties, errors."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rewardherd.core.aggregate import (
    METHOD_PARAMS,
    METHODS,
    Aggregation,
    aggregate,
    as_scores,
    ensemble_std,
    ensemble_var,
    spread,
)

# Hand-worked matrix, shape (m=4, b=3): members are rows, samples are columns.
#   column 0: [0, 1, 3, 8]   mean 3, median (1+3)/2 = 2 (even m), min 0, max 8
#             deviations -3, -2, 0, 5 -> sum of squares 9+4+0+25 = 38
#             var ddof0 = 38/4 = 9.5, var ddof1 = 38/3
#   column 1: [2, 2, 2, 2]   constant: every method gives 2, every spread 0
#   column 2: [-1, 1, -1, 1] mean 0, median 0, min -1, var ddof0 = 1, var ddof1 = 4/3
SCORES = np.array(
    [
        [0.0, 2.0, -1.0],
        [1.0, 2.0, 1.0],
        [3.0, 2.0, -1.0],
        [8.0, 2.0, 1.0],
    ]
)
MEAN = np.array([3.0, 2.0, 0.0])
VAR0 = np.array([9.5, 0.0, 1.0])
VAR1 = np.array([38.0 / 3.0, 0.0, 4.0 / 3.0])

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)
score_matrices = st.tuples(st.integers(1, 6), st.integers(1, 5)).flatmap(
    lambda shape: arrays(np.float64, shape, elements=finite)
)
multi_member = st.tuples(st.integers(2, 6), st.integers(1, 5)).flatmap(
    lambda shape: arrays(np.float64, shape, elements=finite)
)


def _tol(s: np.ndarray) -> float:
    # float64 rounding of sums/logsumexp on values of this magnitude
    return 1e-12 * (1.0 + float(np.abs(s).max()))


# ---------------------------------------------------------------- hand-worked


def test_mean_hand():
    np.testing.assert_allclose(aggregate(SCORES, "mean"), MEAN, rtol=0, atol=1e-15)


def test_median_even_m_averages_middle_two():
    # column 0 sorted [0, 1, 3, 8]: middle two are 1 and 3 -> 2 (not 1, not 3)
    # column 2 sorted [-1, -1, 1, 1]: middle two -1 and 1 -> 0
    np.testing.assert_allclose(aggregate(SCORES, "median"), [2.0, 2.0, 0.0], atol=1e-15)


def test_median_odd_m_is_middle_value():
    # sorted [0, 1, 3] -> 1
    np.testing.assert_allclose(aggregate(SCORES[:3, :1], "median"), [1.0])


def test_min_hand():
    np.testing.assert_allclose(aggregate(SCORES, "min"), [0.0, 2.0, -1.0])


def test_mean_minus_std_ddof0_vs_ddof1():
    # k = 1: mean - sqrt(var)
    # ddof 0: [3 - sqrt(9.5), 2, 0 - 1]
    # ddof 1: [3 - sqrt(38/3), 2, 0 - sqrt(4/3)]
    got0 = aggregate(SCORES, "mean_minus_std", k=1.0, ddof=0)
    got1 = aggregate(SCORES, "mean_minus_std", k=1.0, ddof=1)
    np.testing.assert_allclose(got0, [3 - math.sqrt(9.5), 2.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(got1, [3 - math.sqrt(38 / 3), 2.0, -math.sqrt(4 / 3)], atol=1e-12)
    # sample std is larger, so the ddof=1 aggregate is lower wherever there is spread
    assert got1[0] < got0[0] and got1[2] < got0[2]
    # default is k=1, ddof=0
    np.testing.assert_array_equal(aggregate(SCORES, "mean_minus_std"), got0)


def test_mean_minus_std_k2():
    # k = 2, ddof 0, column 2: 0 - 2 * 1 = -2 (below the min -1: mean_minus_std is not bounded by min)
    got = aggregate(SCORES, "mean_minus_std", k=2.0)
    np.testing.assert_allclose(got, [3 - 2 * math.sqrt(9.5), 2.0, -2.0], atol=1e-12)


def test_uncertainty_weighted_uses_variance_not_std():
    # lam = 0.5, ddof 0: mean - 0.5 * var = [3 - 4.75, 2, 0 - 0.5] = [-1.75, 2, -0.5]
    got = aggregate(SCORES, "uncertainty_weighted", lam=0.5, ddof=0)
    np.testing.assert_allclose(got, [-1.75, 2.0, -0.5], atol=1e-12)
    # with std it would have been 3 - 0.5 * sqrt(9.5) = 1.458...: must differ
    assert not np.isclose(got[0], 3 - 0.5 * math.sqrt(9.5))
    # ddof 1: [3 - 0.5 * 38/3, 2, 0 - 0.5 * 4/3] = [-10/3, 2, -2/3]
    got1 = aggregate(SCORES, "uncertainty_weighted", lam=0.5, ddof=1)
    np.testing.assert_allclose(got1, [-10 / 3, 2.0, -2 / 3], atol=1e-12)
    # defaults are lam=0.5, ddof=0
    np.testing.assert_array_equal(aggregate(SCORES, "uncertainty_weighted"), got)


def test_soft_min_hand():
    # t = 1: -log( (1/m) sum_i exp(-r_i) )
    # column 0: -log((e^0 + e^-1 + e^-3 + e^-8) / 4)
    # column 1: -log(4 e^-2 / 4) = 2
    # column 2: -log((2e + 2/e) / 4) = -log(cosh(1))
    c0 = -math.log((1 + math.exp(-1) + math.exp(-3) + math.exp(-8)) / 4)
    got = aggregate(SCORES, "soft_min", temperature=1.0)
    np.testing.assert_allclose(got, [c0, 2.0, -math.log(math.cosh(1.0))], atol=1e-12)
    # t = 2, two members [0, 2]: -2 log((1 + e^-1) / 2)
    got2 = aggregate([[0.0], [2.0]], "soft_min", temperature=2.0)
    np.testing.assert_allclose(got2, [-2 * math.log((1 + math.exp(-1)) / 2)], atol=1e-12)
    # default temperature is 1
    np.testing.assert_array_equal(aggregate(SCORES, "soft_min"), got)


def test_robust_hand():
    # robust(lam) = lam * mean + (1 - lam) * min
    # lam = 0.25: column 0: 0.25 * 3 + 0.75 * 0 = 0.75; column 1: 2; column 2: 0.25 * 0 + 0.75 * (-1) = -0.75
    got = aggregate(SCORES, "robust", lam=0.25)
    np.testing.assert_allclose(got, [0.75, 2.0, -0.75], atol=1e-15)
    # default lam = 0.5: [1.5, 2, -0.5]
    np.testing.assert_allclose(aggregate(SCORES, "robust"), [1.5, 2.0, -0.5], atol=1e-15)
    # two members [1, 5], lam = 0.8: 0.8 * 3 + 0.2 * 1 = 2.6
    np.testing.assert_allclose(aggregate([[1.0], [5.0]], "robust", lam=0.8), [2.6], atol=1e-15)


def test_robust_endpoints_are_mean_and_min_exactly():
    np.testing.assert_array_equal(aggregate(SCORES, "robust", lam=1.0), aggregate(SCORES, "mean"))
    np.testing.assert_array_equal(aggregate(SCORES, "robust", lam=1), aggregate(SCORES, "mean"))
    np.testing.assert_array_equal(aggregate(SCORES, "robust", lam=0.0), aggregate(SCORES, "min"))


@pytest.mark.parametrize(("lam", "match"), [(-0.1, r"\[0, 1\]"), (1.1, r"\[0, 1\]"), (float("nan"), "finite"),
                                            (float("inf"), "finite")])
def test_robust_lam_outside_unit_interval_raises(lam, match):
    with pytest.raises(ValueError, match=match):
        aggregate(SCORES, "robust", lam=lam)


def test_soft_min_second_order_is_mean_minus_var_over_2t():
    # cumulant expansion: soft_min = mean - var/(2t) + O(1/t^2) (population variance)
    t = 200.0
    got = aggregate(SCORES[:, 2:], "soft_min", temperature=t)
    np.testing.assert_allclose(got, [0.0 - 1.0 / (2 * t)], atol=1e-6)


def test_spread_hand():
    sp = spread(SCORES, ddof=0)
    np.testing.assert_allclose(sp.var, VAR0, atol=1e-12)
    np.testing.assert_allclose(sp.std, np.sqrt(VAR0), atol=1e-12)
    # range = max - min: [8 - 0, 0, 1 - (-1)]
    np.testing.assert_allclose(sp.range, [8.0, 0.0, 2.0])
    assert sp.ddof == 0
    sp1 = spread(SCORES, ddof=1)
    np.testing.assert_allclose(sp1.var, VAR1, atol=1e-12)
    np.testing.assert_allclose(sp1.std, np.sqrt(VAR1), atol=1e-12)
    np.testing.assert_allclose(sp1.range, [8.0, 0.0, 2.0])
    assert set(sp.as_dict()) == {"std", "var", "range"}


def test_spread_single_member_is_zero():
    sp = spread([[1.0, -3.0]], ddof=1)
    np.testing.assert_array_equal(sp.std, [0.0, 0.0])
    np.testing.assert_array_equal(sp.var, [0.0, 0.0])
    np.testing.assert_array_equal(sp.range, [0.0, 0.0])
    assert sp.ddof == 0  # reports the ddof it actually used


def test_ensemble_var_std_match_numpy():
    for ddof in (0, 1):
        np.testing.assert_allclose(ensemble_var(SCORES, ddof=ddof), SCORES.var(axis=0, ddof=ddof))
        np.testing.assert_allclose(ensemble_std(SCORES, ddof=ddof), SCORES.std(axis=0, ddof=ddof))


# ---------------------------------------------------------------- inputs


def test_as_scores_shapes():
    assert as_scores([1.0, 2.0, 3.0]).shape == (1, 3)  # 1-D is one member
    assert as_scores(np.zeros((4, 2))).dtype == np.float64
    with pytest.raises(ValueError):
        as_scores(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        as_scores(np.zeros((0, 3)))


@pytest.mark.parametrize("method", METHODS)
def test_torch_list_and_numpy_inputs_agree(method):
    ref = aggregate(SCORES, method)
    t = torch.tensor(SCORES, dtype=torch.float32, requires_grad=True)
    np.testing.assert_allclose(aggregate(t, method), ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(aggregate(SCORES.tolist(), method), ref, rtol=0, atol=1e-15)
    assert aggregate(SCORES, method).shape == (3,)
    assert aggregate(SCORES, method).dtype == np.float64


@pytest.mark.parametrize("method", METHODS)
def test_inputs_not_modified(method):
    s = SCORES.copy()
    aggregate(s, method)
    spread(s)
    np.testing.assert_array_equal(s, SCORES)


def test_method_params_cover_methods():
    assert set(METHOD_PARAMS) == set(METHODS)


# ---------------------------------------------------------------- errors


def test_unknown_method_raises():
    with pytest.raises(ValueError, match="unknown aggregation method"):
        aggregate(SCORES, "max")


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("mean", {"lam": 0.5}),
        ("median", {"ddof": 0}),
        ("min", {"temperature": 1.0}),
        ("mean_minus_std", {"lam": 0.5}),
        ("uncertainty_weighted", {"k": 1.0}),
        ("soft_min", {"ddof": 0}),
        ("soft_min", {"t": 1.0}),
        ("robust", {"k": 1.0}),
        ("robust", {"ddof": 0}),
    ],
)
def test_unknown_param_raises(method, params):
    with pytest.raises(ValueError, match="takes no parameter"):
        aggregate(SCORES, method, **params)


@pytest.mark.parametrize("method", ["mean_minus_std", "uncertainty_weighted"])
@pytest.mark.parametrize("ddof", [2, -1])
def test_bad_ddof_raises(method, ddof):
    with pytest.raises(ValueError, match="ddof"):
        aggregate(SCORES, method, ddof=ddof)


@pytest.mark.parametrize("method", ["mean_minus_std", "uncertainty_weighted"])
def test_fractional_ddof_raises(method):
    # ddof must be 0 or 1; 0.5 must not be silently truncated to 0 (no silent coercion).
    with pytest.raises(ValueError, match="ddof"):
        aggregate(SCORES, method, ddof=0.5)


def test_bad_ddof_raises_in_helpers():
    for ddof in (2, -1, 0.5):
        with pytest.raises(ValueError):
            ensemble_var(SCORES, ddof=ddof)
        with pytest.raises(ValueError):
            spread(SCORES, ddof=ddof)


@pytest.mark.parametrize("method", ["mean_minus_std", "uncertainty_weighted"])
def test_sample_variance_of_one_member_raises(method):
    with pytest.raises(ValueError):
        aggregate([[1.0, 2.0]], method, ddof=1)


def test_negative_coefficients_and_bad_temperature_raise():
    with pytest.raises(ValueError):
        aggregate(SCORES, "mean_minus_std", k=-0.1)
    with pytest.raises(ValueError):
        aggregate(SCORES, "uncertainty_weighted", lam=-0.1)
    for t in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            aggregate(SCORES, "soft_min", temperature=t)


# ---------------------------------------------------------------- coefficient 0 means 0


def test_zero_coefficients_give_exact_mean():
    mean = aggregate(SCORES, "mean")
    for ddof in (0, 1):
        np.testing.assert_array_equal(aggregate(SCORES, "mean_minus_std", k=0.0, ddof=ddof), mean)
        np.testing.assert_array_equal(aggregate(SCORES, "uncertainty_weighted", lam=0.0, ddof=ddof), mean)
        np.testing.assert_array_equal(aggregate(SCORES, "uncertainty_weighted", lam=0, ddof=ddof), mean)


# ---------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(s=score_matrices, method=st.sampled_from(METHODS), data=st.data())
def test_permuting_members_does_not_change_aggregate(s, method, data):
    if s.shape[0] < 2 and method in ("mean_minus_std", "uncertainty_weighted"):
        s = np.vstack([s, s + 1.0])
    perm = data.draw(st.permutations(range(s.shape[0])))
    np.testing.assert_allclose(aggregate(s[perm], method), aggregate(s, method), rtol=1e-12, atol=_tol(s))
    sp, spp = spread(s), spread(s[perm])
    # variance rounding is ~eps * x^2 where nearly equal members cancel
    np.testing.assert_allclose(spp.var, sp.var, rtol=1e-10, atol=1e-12 * (1.0 + float(np.abs(s).max())) ** 2)
    np.testing.assert_array_equal(spp.range, sp.range)


@settings(max_examples=60, deadline=None)
@given(s=score_matrices, method=st.sampled_from(["mean", "median", "min", "soft_min", "robust"]),
       temperature=st.floats(1e-3, 1e3), lam=st.floats(0, 1))
def test_location_methods_lie_between_min_and_max(s, method, temperature, lam):
    params = {"soft_min": {"temperature": temperature}, "robust": {"lam": lam}}.get(method, {})
    agg = aggregate(s, method, **params)
    tol = _tol(s)
    assert np.all(agg >= s.min(axis=0) - tol)
    assert np.all(agg <= s.max(axis=0) + tol)


@settings(max_examples=60, deadline=None)
@given(s=multi_member, k=st.floats(0, 10), lam=st.floats(0, 10), ddof=st.sampled_from([0, 1]),
       temperature=st.floats(1e-3, 1e3))
def test_conservative_methods_are_at_most_the_mean(s, k, lam, ddof, temperature):
    mean = aggregate(s, "mean")
    tol = _tol(s)
    assert np.all(aggregate(s, "mean_minus_std", k=k, ddof=ddof) <= mean + tol)
    assert np.all(aggregate(s, "uncertainty_weighted", lam=lam, ddof=ddof) <= mean + tol)
    # soft_min <= mean by Jensen (log is concave)
    assert np.all(aggregate(s, "soft_min", temperature=temperature) <= mean + tol)
    # robust is a convex combination of mean and min, and min <= mean
    assert np.all(aggregate(s, "robust", lam=lam / 10.0) <= mean + tol)  # lam drawn in [0, 10]
    # min <= median
    assert np.all(aggregate(s, "min") <= aggregate(s, "median"))


@settings(max_examples=60, deadline=None)
@given(s=score_matrices, ddof=st.sampled_from([0, 1]))
def test_uncertainty_weighted_lam0_is_mean_exactly(s, ddof):
    if s.shape[0] == 1:
        ddof = 0
    np.testing.assert_array_equal(aggregate(s, "uncertainty_weighted", lam=0.0, ddof=ddof), aggregate(s, "mean"))


@settings(max_examples=60, deadline=None)
@given(s=multi_member, lams=st.lists(st.floats(0, 100), min_size=2, max_size=6),
       ddof=st.sampled_from([0, 1]))
def test_uncertainty_weighted_non_increasing_in_lam(s, lams, ddof):
    lams = sorted(lams)
    vals = [aggregate(s, "uncertainty_weighted", lam=lam, ddof=ddof) for lam in lams]
    for lo, hi in zip(vals[1:], vals[:-1], strict=True):
        assert np.all(lo <= hi)
    # and it equals mean - lam * var exactly by definition
    var = s.var(axis=0, ddof=ddof)
    np.testing.assert_allclose(vals[-1], s.mean(axis=0) - lams[-1] * var, rtol=1e-12, atol=_tol(s))


@settings(max_examples=60, deadline=None)
@given(s=score_matrices, lams=st.lists(st.floats(0, 1), min_size=2, max_size=6))
def test_robust_non_decreasing_in_lam_and_equal_to_its_formula(s, lams):
    lams = sorted(lams)
    vals = [aggregate(s, "robust", lam=lam) for lam in lams]
    tol = _tol(s)
    for lo, hi in zip(vals[:-1], vals[1:], strict=True):
        assert np.all(lo <= hi + tol)  # more weight on the mean, never below the min
    np.testing.assert_allclose(vals[-1], lams[-1] * s.mean(axis=0) + (1 - lams[-1]) * s.min(axis=0),
                               rtol=1e-12, atol=tol)


@settings(max_examples=60, deadline=None)
@given(s=score_matrices, lam=st.floats(0, 1), shift=finite)
def test_robust_moves_with_a_shared_shift(s, lam, shift):
    # mean and min are both shift-equivariant, hence so is their convex combination
    np.testing.assert_allclose(aggregate(s + shift, "robust", lam=lam), aggregate(s, "robust", lam=lam) + shift,
                               rtol=1e-9, atol=_tol(s + shift) * 10)


@settings(max_examples=60, deadline=None)
@given(s=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 4)),
                elements=st.floats(-10, 10)))
def test_soft_min_tends_to_mean_for_large_temperature(s):
    got = aggregate(s, "soft_min", temperature=1e6)
    # |soft_min - mean| ~ var / (2t) <= 100 / 2e6
    np.testing.assert_allclose(got, s.mean(axis=0), atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(s=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 4)), elements=finite),
       temperature=st.floats(1e-6, 1e3))
def test_soft_min_within_t_log_m_of_min(s, temperature):
    # soft_min = min - t log((1/m) sum exp(-(r_i - min)/t)); the sum is in [1, m],
    # hence min <= soft_min <= min + t log m, which -> min as t -> 0.
    m = s.shape[0]
    got = aggregate(s, "soft_min", temperature=temperature)
    lo = s.min(axis=0)
    tol = _tol(s)
    assert np.all(got >= lo - tol)
    assert np.all(got <= lo + temperature * math.log(m) + tol)


@settings(max_examples=40, deadline=None)
@given(s=arrays(np.float64, st.tuples(st.integers(2, 5), st.integers(1, 3)), elements=st.floats(-10, 10)),
       t1=st.floats(1e-2, 1e2), t2=st.floats(1e-2, 1e2))
def test_soft_min_non_decreasing_in_temperature(s, t1, t2):
    lo_t, hi_t = sorted((t1, t2))
    assert np.all(aggregate(s, "soft_min", temperature=lo_t) <= aggregate(s, "soft_min", temperature=hi_t) + 1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_finite_at_1e4(method, dtype):
    s = np.array([[1e4, -1e4, 1e4, -1e4], [-1e4, 1e4, 1e4, -1e4], [1e4, 1e4, 1e4, -1e4]], dtype=dtype)
    params = [{}]
    if method == "soft_min":
        params = [{"temperature": t} for t in (1e-3, 1.0, 1e3)]
    for p in params:
        out = aggregate(s, method, **p)
        assert np.all(np.isfinite(out)), (method, p, out)
    sp = spread(s)
    assert all(np.all(np.isfinite(v)) for v in sp.as_dict().values())


def test_soft_min_at_1e4_hand():
    # members [1e4, -1e4], t = 1: -(logsumexp([-1e4, 1e4]) - log 2) = -1e4 + log 2 (to float precision)
    got = aggregate([[1e4], [-1e4]], "soft_min", temperature=1.0)
    np.testing.assert_allclose(got, [-1e4 + math.log(2)], rtol=1e-12)


# ------------------------------------------------------------ Aggregation


def test_aggregation_parses_name_and_params_and_labels_them_sorted():
    a = Aggregation.parse(" uncertainty_weighted(lam=0.5, ddof=1) ")
    assert (a.method, a.params) == ("uncertainty_weighted", {"lam": 0.5, "ddof": 1})
    assert isinstance(a.params["ddof"], int) and isinstance(a.params["lam"], float)
    assert a.label == "uncertainty_weighted(ddof=1,lam=0.5)"
    assert Aggregation.parse(a.label) == a  # the label is the canonical text
    assert Aggregation.parse("min") == Aggregation("min") and Aggregation("min").label == "min"
    assert Aggregation.parse("mean_minus_std(k=1.0)").label == "mean_minus_std(k=1.0)"


def test_aggregation_apply_is_aggregate():
    a = Aggregation.parse("uncertainty_weighted(lam=0.5,ddof=1)")
    np.testing.assert_array_equal(a.apply(SCORES), aggregate(SCORES, "uncertainty_weighted", lam=0.5, ddof=1))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("max", r"unknown aggregation method 'max'; choose from mean, median"),
        ("mean(lam=1)", r"takes no parameter\(s\) \['lam'\]; allowed: none"),
        ("soft_min(t=1)", r"\['t'\]; allowed: temperature"),
        ("robust(lam=1.5)", r"\[0, 1\]"),
        ("uncertainty_weighted(lam=-1)", "lam must be >= 0"),
        ("mean_minus_std(ddof=2)", "ddof must be 0"),
        ("soft_min(temperature=0)", "temperature must be > 0"),
        ("uncertainty_weighted(lam=abc)", "lam must be a number"),
        ("uncertainty_weighted(lam)", "use k=v"),
        ("mean(", "cannot parse"),
    ],
)
def test_aggregation_rejects_on_construction(text, match):
    with pytest.raises(ValueError, match=match):
        Aggregation.parse(text)


def test_aggregation_checks_ddof_against_the_number_of_members():
    a = Aggregation("uncertainty_weighted", {"ddof": 1})
    a.check_members(2)
    with pytest.raises(ValueError, match="needs more than 1 member"):
        a.check_members(1)
    Aggregation("mean").check_members(1)
