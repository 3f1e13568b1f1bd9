"""The MMD permutation test's statistics and relabellings against NumPy references.

``tests/diagnostics/test_goodness_of_fit.py`` checks the reported (host, float64) MMD² against a
brute-force formula; the permutation p-value is computed from a second, compiled
implementation (indicator masks times the kernel matrix). Here that implementation is
checked: on any labelling it equals the brute-force unbiased MMD² of the relabelled
samples (float32 tolerance), the random labellings exchange points between the two
samples at the hypergeometric rate, and the p-value of clearly different samples is
``1/(1 + B)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from ebm_ppl.diagnostics import mmd_test
from ebm_ppl.diagnostics.mmd import _gram, _permutation_test, _random_masks, _statistics

ALPHA = 1e-3


def brute_mmd2(k: np.ndarray, first: np.ndarray) -> float:
    """Unbiased MMD² of the points ``first`` against the others, kernel matrix ``k``."""
    a, b = np.flatnonzero(first), np.flatnonzero(~first)
    kxx, kyy, kxy = k[np.ix_(a, a)], k[np.ix_(b, b)], k[np.ix_(a, b)]
    n, m = len(a), len(b)
    return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
            + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())


def _samples(n: int = 30, m: int = 20, shift: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(jax.random.normal(jax.random.key(30), (n, 2)), np.float64)
    y = np.asarray(jax.random.normal(jax.random.key(31), (m, 2)), np.float64) + shift
    return x, y


def test_compiled_statistics_match_brute_force_on_any_labelling():
    x, y = _samples()
    n, m = len(x), len(y)
    k0, _ = _gram(np.concatenate([x, y]), None)
    k_full = k0 + np.eye(n + m)  # the Gaussian kernel has k(z, z) = 1
    rng = np.random.default_rng(32)
    labels = [np.arange(n + m) < n] + [rng.permutation(n + m) < n for _ in range(5)]
    masks = jnp.asarray(np.stack(labels, axis=1).astype(np.float32))
    got = np.asarray(_statistics(jnp.asarray(k0, jnp.float32), masks, n, m))
    expected = np.array([brute_mmd2(k_full, lab) for lab in labels])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    # the compiled observed statistic is the reported one (block as mmd_test picks it, so
    # the compiled loop is shared)
    observed, permuted = _permutation_test(jnp.asarray(k0, jnp.float32), jax.random.key(0), n=n,
                                           num_permutations=40, block=40)
    assert float(observed) == pytest.approx(mmd_test(x, y, num_permutations=40).statistic,
                                            rel=1e-4, abs=1e-5)
    assert permuted.shape == (40,)


def test_random_labellings_exchange_points_between_the_samples():
    """Each relabelling puts ``n`` points first; the number taken from the second sample
    is hypergeometric (mean ``n m / N``), and every point is drawn first at rate n/N."""
    n, m, num = 30, 20, 2000
    total = n + m
    masks = np.asarray(jax.jit(_random_masks, static_argnums=(1, 2, 3, 4))(
        jax.random.key(33), num, total, n, jnp.float32))
    assert masks.shape == (total, num)
    np.testing.assert_array_equal(masks.sum(axis=0), n)
    from_second = masks[n:].sum(axis=0)
    law = stats.hypergeom(total, m, n)
    z_count = abs(from_second.mean() - law.mean()) / (law.std() / np.sqrt(num))
    rates = masks.mean(axis=1)
    z_rates = np.abs(rates - n / total) / np.sqrt(n / total * (1 - n / total) / num)
    k = 1 + total
    crit = stats.norm.ppf(1 - ALPHA / (2 * k))
    assert z_count < crit and np.all(z_rates < crit), (z_count, z_rates.max())


def test_p_value_floor_on_clearly_different_samples():
    """Shifted by 3 sd: no relabelling reaches the observed statistic, p = 1/(1 + B)."""
    x, y = _samples(shift=3.0)
    res = mmd_test(x, y, num_permutations=40, seed=1)
    assert res.p_value == pytest.approx(1 / 41) and res.reject
