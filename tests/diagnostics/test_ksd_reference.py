"""The KSD test's statistic, bootstrap weights and p-value against references.

``tests/diagnostics/test_diagnostics.py`` checks the KSD U/V-statistics against a direct NumPy Stein
kernel; here the *test* built on it (:func:`ebm_ppl.diagnostics.ksd_test`) is checked:
its statistic is ``n`` times the U-statistic of a NumPy reference, the wild-bootstrap
weights are centred (Rademacher) or have the autocorrelation ``(1 - 2a)^k`` of the
Markov sign process, the default flip probability follows the chain's ESS, and the
p-value is never below ``1 / (1 + M)``. Tolerances: float32 rounding for deterministic
values, Bonferroni z-scores (family-wise alpha = 1e-3) for random ones.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from ebm_ppl import Potential, diagnostics
from ebm_ppl.diagnostics.stein_test import _bootstrap_weights, _markov_flip_prob

ALPHA = 1e-3
#: One sample size and one number of bootstrap replicates for every ``ksd_test`` call of
#: this file, so that its compiled code is shared.
N, M = 80, 99


def crit(k: int) -> float:
    return float(stats.norm.ppf(1 - ALPHA / (2 * k)))


def imq_stein_matrix(x: np.ndarray, s: np.ndarray, c: float = 1.0, beta: float = -0.5):
    """Langevin Stein kernel on the IMQ base kernel, vectorised NumPy in float64."""
    x, s = np.asarray(x, np.float64), np.asarray(s, np.float64)
    d = x.shape[1]
    diff = x[:, None, :] - x[None, :, :]                  # x_i - x_j
    r2 = np.sum(diff**2, axis=-1)
    u = c**2 + r2
    k = u**beta
    grad_x = 2 * beta * u[..., None] ** (beta - 1) * diff  # grad_x k(x_i, x_j)
    trace = -4 * beta * (beta - 1) * u ** (beta - 2) * r2 - 2 * beta * d * u ** (beta - 1)
    return ((s @ s.T) * k - np.einsum("id,ijd->ij", s, grad_x)
            + np.einsum("jd,ijd->ij", s, grad_x) + trace)


#: The weights as the test draws them, compiled once per shape (not op by op).
weights_fn = jax.jit(_bootstrap_weights, static_argnums=(1, 2, 4))


def std_score(x):
    return -x


def test_ksd_test_statistic_is_n_times_the_u_statistic():
    """``statistic = (1/(n-1)) sum_{i != j} k_p`` and ``goodness_of_fit``'s ``ksd`` is the
    square root of the U-statistic."""
    x = np.asarray(jax.random.normal(jax.random.key(20), (N, 2))) * 1.2 + 0.3
    h = imq_stein_matrix(x, -x)
    res = diagnostics.ksd_test(x, std_score, seed=0, num_bootstrap=M)
    assert res.statistic == pytest.approx((h.sum() - np.trace(h)) / (N - 1), rel=2e-4, abs=1e-5)
    assert res.num_samples == N and res.bootstrap == "rademacher"
    pot = Potential.from_energy(lambda z: 0.5 * jnp.sum(z**2))
    gof = diagnostics.goodness_of_fit(pot, x, num_bootstrap=M)
    u_stat = (h.sum() - np.trace(h)) / (N * (N - 1))
    assert gof.ksd == pytest.approx(np.sqrt(max(u_stat, 0.0)), rel=2e-4, abs=1e-5)


def test_rademacher_weights_are_centred_and_independent():
    n, m = 50, 400
    w = np.asarray(weights_fn(jax.random.key(21), n, m, None, jnp.float32))
    assert w.shape == (n, m)
    assert set(np.unique(w)) == {-1.0, 1.0}
    # mean 0 (sd 1/sqrt(nm)) and lag-1 correlation 0 (sd 1/sqrt((n-1)m))
    z_mean = abs(w.mean()) * np.sqrt(n * m)
    z_lag = abs(np.mean(w[1:] * w[:-1])) * np.sqrt((n - 1) * m)
    assert z_mean < crit(2) and z_lag < crit(2), (z_mean, z_lag)


@pytest.mark.parametrize("flip_prob", [0.05, 0.25])
def test_markov_weights_have_geometric_autocorrelation(flip_prob):
    """Sign process flipping with probability a: ``E[w_0 w_k] = (1 - 2a)^k``, ``w = +-1``,
    mean 0; checked on independent columns (the first draw of each) at lags 1, 3, 8."""
    n, m = 12, 4000
    w = np.asarray(weights_fn(jax.random.key(22), n, m, jnp.float32(flip_prob), jnp.float32))
    assert set(np.unique(w)) == {-1.0, 1.0}
    lags = (1, 3, 8)
    est = [np.mean(w[0] * w[k]) for k in lags] + [np.mean(w[0])]
    truth = [(1 - 2 * flip_prob) ** k for k in lags] + [0.0]
    se = [np.sqrt((1 - t**2) / m) for t in truth[:-1]] + [1 / np.sqrt(m)]
    z = np.abs(np.array(est) - truth) / np.array(se)
    assert np.all(z < crit(4)), (est, truth, z)


def _ar1_chain(seed: int, n: int, rho: float) -> np.ndarray:
    """``(n, 2)``: coordinate 0 an AR(1) chain with correlation rho, coordinate 1 i.i.d."""
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(n, 2))
    x = np.empty((n, 2))
    x[0] = e[0]
    for t in range(1, n):
        x[t, 0] = rho * x[t - 1, 0] + np.sqrt(1 - rho**2) * e[t, 0]
    x[:, 1] = e[:, 1]
    return x.astype(np.float32)


def test_markov_flip_prob_follows_the_slowest_coordinate():
    """AR(1), rho = 0.8: integrated time tau = (1 + rho)/(1 - rho) = 9 and a = 1/(1 + 5 tau)
    = 1/46. The ESS estimate of n = 4000 draws is within a few % of n / tau, so a is
    checked to a factor 1.5 (a = 1/(1 + tau) or the ESS of the i.i.d. coordinate give
    1/10 and 1/6)."""
    rho = 0.8
    tau = (1 + rho) / (1 - rho)
    a = _markov_flip_prob(_ar1_chain(23, 4000, rho))
    expected = 1 / (1 + 5 * tau)
    assert expected / 1.5 < a < expected * 1.5, (a, expected)


def test_p_value_floor_on_wrong_draws():
    """Draws of N(0, 2^2 I) against N(0, I): every bootstrap replicate is below the
    statistic, so ``p = 1/(1 + M)`` exactly (never 0), Rademacher and Markov."""
    x = 2.0 * jax.random.normal(jax.random.key(25), (N, 2))
    for draws in (x, x[None]):
        res = diagnostics.ksd_test(draws, std_score, seed=1, num_bootstrap=M)
        assert res.bootstrap == ("markov" if draws.ndim == 3 else "rademacher")
        assert res.p_value == pytest.approx(1 / (1 + M)) and res.reject


def test_markov_p_values_on_exact_draws_are_not_small():
    """Exact draws as one chain, Markov bootstrap (a = 1/2): the p-values of 20
    independent sets are roughly uniform (Kolmogorov-Smirnov at level 1e-3); the
    Rademacher case is ``tests/diagnostics/test_diagnostics.py``'s false-positive-rate test."""
    keys = jax.random.split(jax.random.key(27), 20)
    p = [diagnostics.ksd_test(jax.random.normal(k, (1, N, 2)), std_score, seed=i,
                              num_bootstrap=M, flip_prob=0.5).p_value
         for i, k in enumerate(keys)]
    assert stats.kstest(p, "uniform").pvalue > ALPHA, np.round(p, 3)
