"""``ula_bias``: its Monte-Carlo errors, its closed form, and the Richardson references.

* ``moment_errors``' MCSEs (``sd / sqrt(ESS)``) are calibrated: over independent
  replicates of AR(1) chains (where ESS is far below the number of draws) the spread of
  the estimates matches the reported errors (chi-square bounds).
* On simulated ULA draws of N(0, I) (ULA on a Gaussian is an AR(1) chain, seed 000:
  stationary variance ``2/(2-h)``) against exact draws, the relative variance bias
  matches ``h/(2-h)`` at its reported MCSE, and the spread of replicates matches that
  MCSE (checks the delta-method error of the ratio).
* ``reference="both"`` and ``"richardson"`` run (short chains) and their tables equal a
  NumPy recomputation from the returned draws; the MALA-referenced bias matches the
  closed form.

Family-wise alpha = 1e-3 per test (Bonferroni).
"""

from __future__ import annotations

import arviz as az
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import ebm_ppl
from ebm_ppl import diagnostics
from ebm_ppl.diagnostics.ula_bias import moment_errors

ALPHA = 1e-3


def ar1(rng: np.random.Generator, shape: tuple[int, ...], rho: float, var: float = 1.0):
    """Stationary AR(1) draws along axis -2 of ``shape = (..., draw, d)``."""
    e = rng.normal(size=shape)
    x = np.empty(shape)
    x[..., 0, :] = e[..., 0, :]
    for t in range(1, shape[-2]):
        x[..., t, :] = rho * x[..., t - 1, :] + np.sqrt(1 - rho**2) * e[..., t, :]
    return np.sqrt(var) * x


def chi2_bounds(dof: int, k: int) -> tuple[float, float]:
    """Two-sided bounds of ``chi2(dof) / dof`` at level ``ALPHA / k``."""
    lo, hi = stats.chi2.ppf([ALPHA / (2 * k), 1 - ALPHA / (2 * k)], dof)
    return lo / dof, hi / dof


def test_moment_errors_are_calibrated_on_autocorrelated_chains():
    """AR(1), rho = 0.9: ESS of x is n (1-rho)/(1+rho) = n/19, of x^2 n (1-rho^2)/(1+rho^2)
    = n/9.5. For each statistic, var(estimates over replicates) / mean(mcse^2) must be a
    chi2(R-1)/(R-1) draw (a MCSE with n instead of the ESS is 4.4 times too small)."""
    reps, rho = 100, 0.9
    draws = ar1(np.random.default_rng(50), (reps, 4, 1000, 2), rho)
    out = [moment_errors(d) for d in draws]
    checks = []
    for key, err, truth in (("mean", "mean_mcse", 0.0), ("var", "var_mcse", 1.0)):
        est = np.array([o[key] for o in out])          # (reps, 2)
        mcse = np.array([o[err] for o in out])
        checks.append(est.var(axis=0, ddof=1) / np.mean(mcse**2, axis=0))
        # each estimate against the truth with its own error: pooled over replicates
        z = np.abs(est.mean(axis=0) - truth) / np.sqrt(np.mean(mcse**2, axis=0) / reps)
        assert np.all(z < stats.norm.ppf(1 - ALPHA / 8)), (key, z)
    lo, hi = chi2_bounds(reps - 1, 4)
    ratios = np.concatenate(checks)
    assert np.all((lo < ratios) & (ratios < hi)), (ratios, lo, hi)


def _idata(draws: np.ndarray):
    return az.from_dict(posterior={"x": draws})


def test_ula_bias_on_simulated_ula_draws_matches_the_closed_form():
    """h = 1: ULA on N(0, I) is x' = sqrt(2) z, i.i.d. N(0, 2 I): relative variance bias
    h/(2-h) = 1, mean bias 0. The reference has 4x fewer draws, so the error of the
    denominator dominates the MCSE of the ratio."""
    h, reps = 1.0, 60
    pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))
    rng = np.random.default_rng(51)
    bias, mcse, mean_z = [], [], []
    for _ in range(reps):
        ula = np.sqrt(2 / (2 - h)) * rng.normal(size=(4, 400, 2))
        exact = rng.normal(size=(4, 100, 2))
        res = diagnostics.ula_bias(pot, h, jnp.zeros(2), reference=_idata(exact),
                                   ula=_idata(ula), compute_ksd=False)
        bias.append(res.table["var_rel_bias"].values)
        mcse.append(res.table["var_rel_bias_mcse"].values)
        mean_z.append(res.table["mean_bias_z"].values)
    assert res.reference == "idata"
    bias, mcse, mean_z = np.array(bias), np.array(mcse), np.array(mean_z)
    k = 4
    crit = stats.norm.ppf(1 - ALPHA / (2 * k))
    truth = h / (2 - h)
    z = np.abs(bias.mean(axis=0) - truth) / np.sqrt(np.mean(mcse**2, axis=0) / reps)
    assert np.all(z < crit), (bias.mean(axis=0), truth, z)
    lo, hi = chi2_bounds(reps - 1, k)
    ratio = bias.var(axis=0, ddof=1) / np.mean(mcse**2, axis=0)
    assert np.all((lo < ratio) & (ratio < hi)), (ratio, lo, hi)
    # the reported mean-bias z-scores are standard normal (sd of 2 x 60 values)
    assert lo < np.var(mean_z) < hi, np.var(mean_z)


def _var(idata, pot) -> np.ndarray:
    from ebm_ppl.diagnostics._samples import posterior_array

    x = np.asarray(posterior_array(idata, pot), np.float64)
    return x.var(axis=(0, 1)), x.mean(axis=(0, 1))


def test_reference_both_and_richardson_run_and_match_numpy():
    h = 1.0
    pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))
    common = dict(num_samples=500, num_warmup=100, num_chains=4, seed=3, compute_ksd=False)
    both = diagnostics.ula_bias(pot, h, jnp.zeros(2), reference="both", **common)
    rich = diagnostics.ula_bias(pot, h, jnp.zeros(2), reference="richardson", ula=both.ula,
                                **common)
    assert both.reference == "both" and rich.reference == "richardson"
    (v_h, m_h), (v_half, m_half) = _var(both.ula, pot), _var(rich.reference_idata, pot)
    v_mala, _ = _var(both.reference_idata, pot)
    # NumPy recomputation (the half-step run is the same in both calls: seed + 2)
    np.testing.assert_allclose(both.table["var_rel_bias_richardson"], 2 * (v_h - v_half) / v_mala,
                               rtol=1e-4)
    np.testing.assert_allclose(both.table["var_rel_bias"], v_h / v_mala - 1, rtol=1e-4)
    np.testing.assert_allclose(rich.table["var_reference"], 2 * v_half - v_h, rtol=1e-4)
    np.testing.assert_allclose(rich.table["mean_reference"], 2 * m_half - m_h, atol=1e-5)
    np.testing.assert_allclose(rich.table["var_rel_bias"], 2 * (v_h - v_half) / (2 * v_half - v_h),
                               rtol=1e-4)
    # closed form against MALA (exact): v_h / v - 1 = h / (2 - h) = 1 at its MCSE
    z = np.abs(both.table["var_rel_bias"] - h / (2 - h)) / both.table["var_rel_bias_mcse"]
    assert np.all(z < stats.norm.ppf(1 - ALPHA / 4)), z
    assert both.max_var_rel_bias == pytest.approx(
        both.table["var_rel_bias"].values[np.argmax(np.abs(both.table["var_rel_bias"]))])
