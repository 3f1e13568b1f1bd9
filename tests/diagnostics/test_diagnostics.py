"""Tests of ebm_ppl.diagnostics: KSD (+ test), ULA bias, AIS log Z, drift, summary.

Tolerances come from Monte-Carlo error (STYLE.md): z = |est - truth| / mcse against the
Bonferroni critical value at family-wise alpha = 1e-3; rates against binomial quantiles.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from scipy import stats

import ebm_ppl
from ebm_ppl import ImproperTargetWarning, diagnostics

ALPHA = 1e-3


def crit(k: int) -> float:
    return float(stats.norm.ppf(1 - ALPHA / (2 * k)))


def std_score(x):
    return -x


# ----------------------------------------------------------------------- reference
def numpy_stein_matrix(x, s, kernel, c=1.0, beta=-0.5, ell=1.0):
    """Direct O(n^2) Stein kernel with explicit difference vectors (float64)."""
    x, s = np.asarray(x, np.float64), np.asarray(s, np.float64)
    n, d = x.shape
    out = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            r = x[i] - x[j]
            r2 = r @ r
            if kernel == "imq":
                u = c**2 + r2
                k = u**beta
                gx = 2 * beta * u ** (beta - 1) * r        # grad_x k
                gy = -gx                                   # grad_y k
                tr = -4 * beta * (beta - 1) * u ** (beta - 2) * r2 - 2 * beta * d * u ** (beta - 1)
            else:
                k = np.exp(-r2 / (2 * ell**2))
                gx = -k * r / ell**2
                gy = -gx
                tr = k * (d / ell**2 - r2 / ell**4)
            out[i, j] = s[i] @ s[j] * k + s[i] @ gy + s[j] @ gx + tr
    return out


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
@pytest.mark.parametrize("statistic", ["u", "v"])
def test_ksd_matches_direct_numpy(kernel, statistic):
    key_x, = jax.random.split(jax.random.key(0), 1)
    n, d = 37, 3
    x = np.asarray(jax.random.normal(key_x, (n, d))) * 1.3 + 0.4
    prec = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]])

    def score(z):
        return -(jnp.asarray(prec, z.dtype) @ z)

    s = x @ -prec.T
    res = diagnostics.ksd(x, score, kernel, statistic=statistic, block_size=8)  # padding
    ell = res.bandwidth if kernel == "rbf" else 1.0
    if kernel == "rbf":
        pair = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
        assert ell == pytest.approx(np.median(pair[np.triu_indices(n, 1)]), rel=1e-4)
    h = numpy_stein_matrix(x, s, kernel, ell=ell)
    if statistic == "u":
        expected = (h.sum() - np.trace(h)) / (n * (n - 1))
    else:
        expected = h.sum() / n**2
    assert res.ksd_squared == pytest.approx(expected, rel=2e-4, abs=1e-5)
    full = diagnostics.stein_kernel_matrix(x, s, kernel, bandwidth=res.bandwidth
                                           if kernel == "rbf" else None)
    np.testing.assert_allclose(np.asarray(full), h, rtol=2e-4, atol=2e-5)


def test_ksd_u_statistic_has_mean_zero_on_exact_draws():
    """Stein identity: E[U] = 0 on exact draws; a 0.5 sigma shift gives E[U] > 0."""
    reps, n, d = 200, 40, 2
    keys = jax.random.split(jax.random.key(1), reps)
    exact = np.array([diagnostics.ksd(jax.random.normal(k, (n, d)), std_score).ksd_squared
                      for k in keys])
    z = abs(exact.mean()) / (exact.std(ddof=1) / np.sqrt(reps))
    assert z < crit(2), (exact.mean(), z)
    shift = np.array([0.5, 0.0])
    shifted = np.array([diagnostics.ksd(jax.random.normal(k, (n, d)) + shift,
                                        std_score).ksd_squared for k in keys[:40]])
    z_shift = shifted.mean() / (shifted.std(ddof=1) / np.sqrt(40))
    assert z_shift > crit(2), z_shift


def test_ksd_test_false_positive_rate_is_nominal():
    """Rademacher wild bootstrap on exact draws: rejections ~ Binomial(seeds, alpha)."""
    num_seeds, n, level = 100, 120, 0.05
    keys = jax.random.split(jax.random.key(2), num_seeds)
    p = np.array([
        diagnostics.ksd_test(jax.random.normal(k, (n, 2)), std_score, seed=i,
                             num_bootstrap=300, alpha=level).p_value
        for i, k in enumerate(keys)
    ])
    rejections = int((p < level).sum())
    upper = stats.binom.ppf(1 - ALPHA, num_seeds, level)
    assert rejections <= upper, (rejections, upper)
    # p-values roughly uniform (not all conservative)
    assert stats.kstest(p, "uniform").pvalue > ALPHA


def test_ksd_test_power_against_small_mean_shift():
    """0.3 sigma mean shift in 2-D at n = 500 is detected (measured power ~1)."""
    num_seeds = 10
    keys = jax.random.split(jax.random.key(3), num_seeds)
    shift = jnp.array([0.3, 0.0])
    rejected = [
        diagnostics.ksd_test(jax.random.normal(k, (500, 2)) + shift, std_score, seed=i).reject
        for i, k in enumerate(keys)
    ]
    # power >= 0.8 would give >= 5/10 rejections except with probability < 1e-3
    assert sum(rejected) >= 5, rejected


@pytest.mark.slow
def test_ksd_on_inference_data_and_potential():
    from ebm_ppl.inference_data import to_inference_data

    pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))
    draws = np.asarray(jax.random.normal(jax.random.key(4), (3, 200, 2)))
    idata = to_inference_data({"x": draws}, {"lp": -0.5 * (draws**2).sum(-1)})
    res = diagnostics.ksd(idata, pot)
    assert res.per_chain.shape == (3,)
    assert res.num_samples == 600
    same = diagnostics.ksd(draws.reshape(-1, 2), std_score)
    assert res.ksd_squared == pytest.approx(same.ksd_squared, rel=1e-4, abs=1e-6)
    chain0 = diagnostics.ksd(draws[0], std_score)
    assert res.per_chain[0] == pytest.approx(chain0.ksd_squared, rel=1e-4, abs=1e-6)
    test = diagnostics.ksd_test(idata, pot, seed=0, num_bootstrap=200)
    assert test.bootstrap == "markov"
    assert test.per_chain_p_value.shape == (3,)
    assert test.p_value > ALPHA


def test_ksd_validates_arguments():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="kernel must be one of"):
        diagnostics.ksd(x, std_score, kernel="laplace")
    with pytest.raises(ValueError, match="statistic must be one of"):
        diagnostics.ksd(x, std_score, statistic="w")
    with pytest.raises(ValueError, match="beta must be in"):
        diagnostics.ksd(x, std_score, beta=0.5)
    with pytest.raises(ValueError, match="non-finite"):
        diagnostics.ksd(np.full((10, 2), np.nan), std_score)
    with pytest.raises(ValueError, match="bootstrap must be one of"):
        diagnostics.ksd_test(x, std_score, bootstrap="normal")
    with pytest.raises(ValueError, match="alpha must be in"):
        diagnostics.ksd_test(x, std_score, alpha=2.0)
    with pytest.raises(ValueError, match="score_fn must map"):
        diagnostics.ksd(x, lambda z: jnp.sum(z))


@pytest.mark.slow
def test_ksd_scales_to_1e5_samples_in_bounded_memory():
    x = jax.random.normal(jax.random.key(5), (100_000, 2))
    res = diagnostics.ksd(x, std_score)
    assert abs(res.ksd_squared) < 1e-3


@pytest.mark.slow
def test_ksd_test_markov_bootstrap_calibrated_on_ar1_chains():
    """Autocorrelated exact chains (AR(1), rho = 0.8): Markov bootstrap stays at level."""
    rho, n, num_seeds, level = 0.8, 400, 60, 0.05

    def ar1(key):
        z = jax.random.normal(key, (n, 2))

        def step(x, e):
            x = rho * x + jnp.sqrt(1 - rho**2) * e
            return x, x

        return jax.lax.scan(step, z[0], z[1:])[1]

    keys = jax.random.split(jax.random.key(6), num_seeds)
    p = np.array([diagnostics.ksd_test(ar1(k)[None], std_score, seed=i,
                                       num_bootstrap=300).p_value
                  for i, k in enumerate(keys)])
    assert (p < level).sum() <= stats.binom.ppf(1 - ALPHA, num_seeds, level)


# ----------------------------------------------------------------------- ULA bias
@pytest.mark.slow
def test_ula_bias_matches_closed_form_on_standard_gaussian():
    """Seed 000: ULA variance 2/(2-h); the estimate matches it and rejects 0 bias."""
    h = 0.4
    pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))
    res = diagnostics.ula_bias(pot, h, jnp.zeros(2), num_samples=2000, num_warmup=300,
                               num_chains=8, seed=7, compute_ksd=False)
    truth = 2 / (2 - h) - 1
    table = res.table
    z = np.abs(table["var_rel_bias"] - truth) / table["var_rel_bias_mcse"]
    assert np.all(z < crit(4)), z
    z0 = np.abs(table["var_rel_bias"]) / table["var_rel_bias_mcse"]
    assert np.all(z0 > crit(4)), z0  # the exact value (no bias) is rejected
    assert np.all(np.abs(table["mean_bias_z"]) < crit(4))  # ULA mean is unbiased here
    # first-order suggestion: h * tol / (|b| + 2 mcse) < h * 0.05 / 0.25
    assert 0 < res.suggested_step_size < h * 0.05 / truth * 1.5
    assert "suggested" in str(res)


def test_ula_bias_validates_arguments():
    pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2))
    with pytest.raises(ValueError, match="step_size must be"):
        diagnostics.ula_bias(pot, -0.1, jnp.zeros(2))
    with pytest.raises(ValueError, match="reference must be one of"):
        diagnostics.ula_bias(pot, 0.1, jnp.zeros(2), reference="exact")


# ----------------------------------------------------------------------- AIS
@pytest.mark.slow
def test_ais_log_z_exact_on_correlated_gaussian():
    mu = jnp.array([1.0, -1.0])
    prec = jnp.array([[2.0, 0.5], [0.5, 1.0]])
    pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * (x - mu) @ prec @ (x - mu),
                                        example=jnp.zeros(2))
    truth = np.log(2 * np.pi) - 0.5 * np.log(np.linalg.det(np.asarray(prec)))
    res = diagnostics.ais_log_z(pot, num_temps=100, num_chains=1000, kernel="hmc",
                                step_size=0.3, seed=8)
    assert res.stderr > 0
    assert abs(res.log_z - truth) / res.stderr < crit(2), (res, truth)
    assert res.betas[0] == 0 and res.betas[-1] == 1


@pytest.mark.slow
def test_ais_log_z_exact_on_two_component_mixture():
    log_z = 3.0
    comp_a = dist.MultivariateNormal(jnp.array([-2.0, 0.0]), jnp.eye(2))
    comp_b = dist.MultivariateNormal(jnp.array([3.0, 1.0]), 0.5 * jnp.eye(2))

    def logdensity(x):
        return jnp.logaddexp(jnp.log(0.3) + comp_a.log_prob(x),
                             jnp.log(0.7) + comp_b.log_prob(x)) + log_z

    pot = ebm_ppl.Potential.from_logdensity(logdensity, example=jnp.zeros(2))
    res = diagnostics.ais_log_z(pot, dist.Normal(0.0, 3.0), num_temps=100, num_chains=1000,
                                kernel="hmc", step_size=0.3, seed=9)
    assert abs(res.log_z - log_z) / res.stderr < crit(2), res
    # the weighted final positions reproduce the mixture weight 0.7 of the right mode
    w = np.exp(res.log_weights - res.log_weights.max())
    right = np.asarray(res.positions)[:, 0] > 0.5
    frac = np.sum(w * right) / w.sum()
    assert abs(frac - 0.7) < 0.1


def test_ais_validates_arguments():
    pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2))
    with pytest.raises(ValueError, match="cannot infer the position shape"):
        diagnostics.ais_log_z(pot)
    with pytest.raises(ValueError, match="schedule must be one of"):
        diagnostics.ais_log_z(pot, shape=(2,), schedule="cosine")
    with pytest.raises(ValueError, match="strictly from 0 to 1"):
        diagnostics.ais_log_z(pot, shape=(2,), schedule=[0.0, 0.7, 0.5, 1.0])


# ----------------------------------------------------------------------- drift
@pytest.fixture(scope="module")
def linear_run():
    theta = jnp.array([1.0, 0.5])
    pot = ebm_ppl.Potential.from_energy(lambda x: theta @ x, example=jnp.zeros(2))
    idata = ebm_ppl.sample(pot, ebm_ppl.kernels.ula(0.05), jnp.zeros(2), num_samples=1000,
                           num_warmup=0, num_chains=4, seed=10, progress=False)
    return pot, idata


@pytest.fixture(scope="module")
def gaussian_run():
    pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))
    idata = ebm_ppl.sample(pot, ebm_ppl.kernels.mala(0.8), jnp.zeros(2), num_samples=1000,
                           num_warmup=300, num_chains=4, seed=11, progress=False)
    return pot, idata


def test_drift_fires_on_linear_energy(linear_run):
    """Seed 001: E = theta.x is improper; ULA drifts like -N h theta -> warning + fail."""
    pot, idata = linear_run
    with pytest.warns(ImproperTargetWarning, match="keep drifting"):
        res = diagnostics.drift_check(idata, pot)
    assert res.drifting
    assert res.per_chain.all()
    energy = res.table[res.table.quantity == "energy"]
    # the energy slope per draw is about -h |theta|^2 = -0.0625
    assert np.all(energy.slope_per_draw < 0)
    # without the potential, -lp from sample_stats is used
    assert diagnostics.drift_check(idata, warn=False).drifting


def test_drift_silent_on_proper_gaussian(gaussian_run):
    pot, idata = gaussian_run
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImproperTargetWarning)
        res = diagnostics.drift_check(idata, pot)
    assert not res.drifting
    with pytest.raises(ValueError, match="num_segments"):
        diagnostics.drift_check(idata, num_segments=2)


# ----------------------------------------------------------------------- summary
@pytest.mark.slow
def test_summary_verdicts(gaussian_run, linear_run):
    pot, idata = gaussian_run
    good = diagnostics.summary(idata, pot, num_bootstrap=200)
    verdict = good.verdict.set_index("check")["status"]
    assert verdict["R-hat (max)"] == "pass"
    assert verdict["Drift / improper target"] == "pass"
    assert verdict["KSD p-value (pooled)"] in ("pass", "warn")
    assert set(good.chains.columns) >= {"divergences", "acceptance_rate", "step_size",
                                        "ksd_p_value", "drift"}
    md = good.to_markdown()
    assert "| check | value | status | rule |" in md and "Overall" in str(good)

    pot_l, idata_l = linear_run
    bad = diagnostics.summary(idata_l, pot_l, num_bootstrap=100)
    verdict = bad.verdict.set_index("check")["status"]
    assert verdict["Drift / improper target"] == "fail"
    assert verdict["ULA variance bias"] == "warn"  # a ULA run without a bias estimate
    assert bad.status == "fail"


def test_dataframe_to_markdown_escapes_pipes():
    import pandas as pd

    md = diagnostics.dataframe_to_markdown(pd.DataFrame({"a|b": [1.5], "c": [True]}),
                                           index=False)
    assert md.splitlines() == ["| a\\|b | c |", "|---|---|", "| 1.5 | yes |"]
