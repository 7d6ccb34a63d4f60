"""Tests for rewardherd.core.fits: Gao et al. over-optimization curves."""

import math

import numpy as np
import pytest

from rewardherd.core.fits import GaoFit, fit_gao, gao_curve

D_BON = np.linspace(0.0, 3.0, 20)
D_RL = np.linspace(0.0, 5.0, 25)


def test_gao_curve_hand():
    # bon: d (alpha - beta d), alpha = 2, beta = 0.5: d = [0, 1, 2] -> [0, 1.5, 2]
    np.testing.assert_allclose(gao_curve([0.0, 1.0, 2.0], 2.0, 0.5, "bon"), [0.0, 1.5, 2.0])
    # rl: d (alpha - beta log d), alpha = beta = 1: d = [0, 1, e] -> [0 (d log d -> 0), 1, e (1 - 1) = 0]
    np.testing.assert_allclose(gao_curve([0.0, 1.0, math.e], 1.0, 1.0, "rl"), [0.0, 1.0, 0.0], atol=1e-15)


def test_gao_curve_errors():
    with pytest.raises(ValueError):
        gao_curve([-0.1, 1.0], 1.0, 1.0, "bon")
    with pytest.raises(ValueError):
        gao_curve([1.0], 1.0, 1.0, "ppo")


@pytest.mark.parametrize(("alpha", "beta"), [(1.3, 0.4), (0.5, 0.05), (2.0, 1.5)])
def test_bon_fit_recovers_coefficients_and_peak(alpha, beta):
    y = D_BON * (alpha - beta * D_BON)
    fit = fit_gao(D_BON, y, "bon")
    assert isinstance(fit, GaoFit)
    assert fit.form == "bon" and fit.n_points == 20
    assert fit.alpha == pytest.approx(alpha, rel=1e-6)
    assert fit.beta == pytest.approx(beta, rel=1e-6)
    assert fit.r2 == pytest.approx(1.0, abs=1e-10)
    # peak: dR/dd = alpha - 2 beta d = 0 -> d* = alpha / (2 beta), R(d*) = alpha^2 / (4 beta)
    assert fit.peak_d == pytest.approx(alpha / (2 * beta), rel=1e-6)
    assert fit.peak_reward == pytest.approx(alpha**2 / (4 * beta), rel=1e-6)
    np.testing.assert_allclose(fit.predict(D_BON), y, atol=1e-6)


@pytest.mark.parametrize(("alpha", "beta"), [(0.8, 0.3), (1.0, 1.0), (0.2, 0.5)])
def test_rl_fit_recovers_coefficients_and_peak(alpha, beta):
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(D_RL > 0, D_RL * (alpha - beta * np.log(np.where(D_RL > 0, D_RL, 1.0))), 0.0)
    fit = fit_gao(D_RL, y, "rl")
    assert fit.form == "rl"
    assert fit.alpha == pytest.approx(alpha, rel=1e-6)
    assert fit.beta == pytest.approx(beta, rel=1e-6)
    assert fit.r2 == pytest.approx(1.0, abs=1e-10)
    # peak: dR/dd = alpha - beta (log d + 1) = 0 -> d* = exp(alpha / beta - 1);
    # R(d*) = d* (alpha - (alpha - beta)) = beta d*
    d_star = math.exp(alpha / beta - 1.0)
    assert fit.peak_d == pytest.approx(d_star, rel=1e-6)
    assert fit.peak_reward == pytest.approx(beta * d_star, rel=1e-6)


def test_peak_is_the_maximum_of_the_fitted_curve():
    fit = fit_gao(D_BON, D_BON * (1.0 - 0.3 * D_BON), "bon")
    grid = np.linspace(0, 10, 10001)
    assert fit.peak_d == pytest.approx(grid[np.argmax(fit.predict(grid))], abs=1e-3)
    fit = fit_gao(D_RL[1:], gao_curve(D_RL[1:], 0.8, 0.3, "rl"), "rl")
    assert fit.peak_d == pytest.approx(grid[np.argmax(fit.predict(grid))], abs=1e-3)


@pytest.mark.parametrize("form", ["bon", "rl"])
def test_negative_beta_has_no_peak(form):
    # beta < 0: the curve never turns down -> no peak
    d = D_BON[1:]
    fit = fit_gao(d, gao_curve(d, 1.0, -0.2, form), form)
    assert fit.beta == pytest.approx(-0.2, rel=1e-6)
    assert fit.peak_d is None
    assert fit.peak_reward is None


@pytest.mark.parametrize("form", ["bon", "rl"])
@pytest.mark.parametrize("true_beta", [0.0, 1e-4])
def test_nearly_flat_curve_peak_is_never_nan(form, true_beta):
    # A monotone (beta = 0) or nearly monotone curve fits beta ~ 0, possibly a hair
    # above 0. For RL, d* = exp(alpha / beta - 1) then overflows float64. Whatever the
    # fit reports, the peak must be coherent: either no peak (None, None) or a peak
    # reward that is a number (R(d*) = beta d* for RL, alpha^2 / (4 beta) for bon), never NaN.
    d = D_BON[1:]
    fit = fit_gao(d, gao_curve(d, 1.0, true_beta, form), form)
    assert fit.alpha == pytest.approx(1.0, rel=1e-6)
    assert (fit.peak_d is None) == (fit.peak_reward is None)
    if fit.peak_reward is not None:
        assert not math.isnan(fit.peak_reward), fit
        assert not math.isnan(fit.peak_d), fit


def test_bon_negative_alpha_peak_at_negative_d_is_none():
    # alpha < 0 < beta: d* = alpha / (2 beta) < 0 is outside d >= 0 -> no peak
    fit = fit_gao(D_BON, gao_curve(D_BON, -0.5, 0.2, "bon"), "bon")
    assert fit.beta > 0
    assert fit.peak_d is None and fit.peak_reward is None


def test_noisy_fit_is_close_and_r2_below_one():
    rng = np.random.default_rng(0)
    d = np.linspace(0.0, 4.0, 200)
    y = d * (1.0 - 0.25 * d) + rng.normal(scale=0.05, size=d.shape)
    fit = fit_gao(d, y, "bon")
    assert fit.alpha == pytest.approx(1.0, abs=0.05)
    assert fit.beta == pytest.approx(0.25, abs=0.02)
    assert 0.95 < fit.r2 < 1.0
    assert set(fit.as_dict()) == {"form", "alpha", "beta", "r2", "peak_d", "peak_reward", "n_points"}


def test_fit_errors():
    with pytest.raises(ValueError):
        fit_gao([0.0, 1.0], [0.0], "bon")  # shapes differ
    with pytest.raises(ValueError):
        fit_gao([1.0], [1.0], "bon")  # one point
    with pytest.raises(ValueError):
        fit_gao([0.0, 1.0, float("nan")], [0.0, 1.0, 2.0], "bon")
    with pytest.raises(ValueError):
        fit_gao([0.0, 1.0, 2.0], [0.0, float("inf"), 2.0], "rl")
    with pytest.raises(ValueError):
        fit_gao([-1.0, 1.0, 2.0], [0.0, 1.0, 2.0], "bon")
    with pytest.raises(ValueError):
        fit_gao([0.0, 1.0, 2.0], [0.0, 1.0, 2.0], "ppo")


def test_constant_reward_r2_is_nan():
    # ss_tot = 0: R^2 undefined, reported as NaN rather than a silent 1 or 0
    fit = fit_gao([0.0, 1.0, 2.0], [0.0, 0.0, 0.0], "bon")
    assert math.isnan(fit.r2)
