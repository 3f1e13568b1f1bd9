"""Model-vs-data checks: ``diagnostics.goodness_of_fit`` (KSD) and ``diagnostics.mmd_test``.

Calibration: under the null the number of rejections over ``k`` independent seeds is
Binomial(k, alpha); the tests fail when it is more than 4 binomial standard deviations
from ``k * alpha`` (a false alarm has probability < 1e-4). Power: against a mean shift
the rejection rate must be high, and a test that never rejects fails it (the tests can
fail). Seeds are fixed integers.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_ppl import Potential
from ebm_ppl.diagnostics import GoodnessOfFitResult, MMDTestResult, goodness_of_fit, mmd_test

ALPHA = 0.05
#: Null-calibration runs: seeds, points per sample, bootstrap/permutation replicates.
NUM_SEEDS, NUM_POINTS, NUM_REPLICATES = 100, 60, 100


def gaussian_potential(dim: int = 2) -> Potential:
    return Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(dim))


def normal(seed: int, n: int, shift: float = 0.0, dim: int = 2) -> np.ndarray:
    x = jax.random.normal(jax.random.key(seed), (n, dim))
    return np.array(x.at[:, 0].add(shift))


def binomial_z(count: int, trials: int, p: float) -> float:
    return (count - trials * p) / math.sqrt(trials * p * (1 - p))


# ---------------------------------------------------------------- MMD
def test_mmd_statistic_matches_brute_force() -> None:
    x, y = normal(0, 40), normal(1, 30, shift=0.5)
    result = mmd_test(x, y, seed=0, num_permutations=50)
    assert isinstance(result, MMDTestResult)
    pooled = np.concatenate([x, y]).astype(float)
    d2 = np.sum((pooled[:, None] - pooled[None]) ** 2, axis=-1)
    ell = np.sqrt(np.median(d2[np.triu_indices(len(pooled), 1)]))
    k = np.exp(-d2 / (2 * ell**2))
    kxx, kyy, kxy = k[:40, :40], k[40:, 40:], k[:40, 40:]
    expected = ((kxx.sum() - np.trace(kxx)) / (40 * 39) + (kyy.sum() - np.trace(kyy)) / (30 * 29)
                - 2 * kxy.mean())
    assert result.bandwidth == pytest.approx(ell, rel=1e-4)
    assert result.statistic == pytest.approx(expected, abs=1e-5)
    assert result.num_samples == 40 and result.num_data == 30
    assert 1 / 51 <= result.p_value <= 1.0


def test_mmd_seed_is_explicit_and_bandwidth_override() -> None:
    x, y = normal(2, NUM_POINTS), normal(3, NUM_POINTS, shift=0.2)
    a = mmd_test(x, y, seed=7, num_permutations=NUM_REPLICATES)
    b = mmd_test(x, y, seed=jax.random.key(7), num_permutations=NUM_REPLICATES)
    c = mmd_test(x, y, seed=8, num_permutations=NUM_REPLICATES)
    assert a.p_value == b.p_value and a.statistic == c.statistic
    assert a.p_value != c.p_value
    fixed = mmd_test(x, y, bandwidth=0.5, num_permutations=NUM_REPLICATES)
    assert fixed.bandwidth == pytest.approx(0.5)


def test_mmd_accepts_chains_and_inference_data() -> None:
    import arviz as az

    draws = normal(4, NUM_POINTS).reshape(3, NUM_POINTS // 3, 2)
    data = normal(5, NUM_POINTS)
    from_chains = mmd_test(draws, data, seed=0, num_permutations=NUM_REPLICATES)
    from_idata = mmd_test(az.from_dict(posterior={"x": draws}), data, seed=0,
                          num_permutations=NUM_REPLICATES)
    assert from_chains.num_samples == NUM_POINTS
    assert from_chains.statistic == pytest.approx(from_idata.statistic)


def test_mmd_calibrated_under_the_null() -> None:
    rejections = sum(
        mmd_test(normal(100 + s, NUM_POINTS), normal(10_000 + s, NUM_POINTS), seed=s,
                 num_permutations=NUM_REPLICATES).reject
        for s in range(NUM_SEEDS)
    )
    assert abs(binomial_z(rejections, NUM_SEEDS, ALPHA)) < 4, rejections


def test_mmd_has_power_against_a_shift() -> None:
    rejections = sum(
        mmd_test(normal(200 + s, NUM_POINTS), normal(20_000 + s, NUM_POINTS, shift=1.0), seed=s,
                 num_permutations=NUM_REPLICATES).reject
        for s in range(20)
    )
    assert rejections >= 16, rejections


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_permutations": 0}, "num_permutations must be an integer >= 1, got 0"),
        ({"alpha": 1.5}, r"alpha must be a number in \(0, 1\), got 1.5"),
        ({"bandwidth": -1.0}, "bandwidth must be a finite number > 0 or None, got -1.0"),
    ],
)
def test_mmd_rejects_bad_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        mmd_test(normal(0, 10), normal(1, 10), **kwargs)


def test_mmd_rejects_bad_samples() -> None:
    with pytest.raises(ValueError, match="same dimension, got 2 and 3"):
        mmd_test(normal(0, 10), normal(1, 10, dim=3))
    with pytest.raises(ValueError, match="data must hold at least 2 points, got 1"):
        mmd_test(normal(0, 10), normal(1, 1))
    bad = normal(0, 10)
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="samples contains non-finite values"):
        mmd_test(bad, normal(1, 10))
    with pytest.raises(TypeError, match="seed must be an integer or a jax.random key"):
        mmd_test(normal(0, 10), normal(1, 10), seed="zero")


# ---------------------------------------------------------------- goodness of fit
def test_goodness_of_fit_calibrated_under_the_null() -> None:
    pot = gaussian_potential()
    results = [goodness_of_fit(pot, normal(300 + s, NUM_POINTS), seed=s,
                               num_bootstrap=NUM_REPLICATES) for s in range(NUM_SEEDS)]
    assert isinstance(results[0], GoodnessOfFitResult)
    rejections = sum(r.reject for r in results)
    assert abs(binomial_z(rejections, NUM_SEEDS, ALPHA)) < 4, rejections


def test_goodness_of_fit_has_power_against_a_shift() -> None:
    pot = gaussian_potential()
    results = [goodness_of_fit(pot, normal(400 + s, NUM_POINTS, shift=1.0), seed=s,
                               num_bootstrap=NUM_REPLICATES) for s in range(20)]
    assert sum(r.reject for r in results) >= 16
    assert np.mean([r.ksd for r in results]) > 0.1
    assert all(0 < r.p_value <= 1 for r in results)


def test_goodness_of_fit_subsamples_and_uses_the_temperature() -> None:
    pot = gaussian_potential()
    data = normal(5, 3000)
    result = goodness_of_fit(pot, data, max_points=300, num_bootstrap=200)
    assert result.num_points == 300 and not result.reject
    # at temperature 4 the model is N(0, 4 I): the standard-normal data no longer fit
    hot = Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), temperature=4.0,
                                example=jnp.zeros(2))
    assert goodness_of_fit(hot, data, max_points=300, num_bootstrap=200).reject


def test_goodness_of_fit_failure_paths() -> None:
    pot = gaussian_potential()
    with pytest.raises(TypeError, match="pot must be an ebm_ppl.Potential, got function"):
        goodness_of_fit(lambda x: -x, normal(0, 10))
    with pytest.raises(ValueError, match="data must have 2 columns .* got 3"):
        goodness_of_fit(pot, normal(0, 10, dim=3))
    with pytest.raises(ValueError, match=r"data must have shape \(n,\) or \(n, d\)"):
        goodness_of_fit(pot, np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="data must hold at least 2 points, got 1"):
        goodness_of_fit(pot, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="data contain non-finite values"):
        goodness_of_fit(pot, np.full((5, 2), np.inf))
    with pytest.raises(ValueError, match="kernel must be one of"):
        goodness_of_fit(pot, normal(0, 10), kernel="cosine")
    with pytest.raises(ValueError, match="max_points must be an integer >= 2, got 1"):
        goodness_of_fit(pot, normal(0, 10), max_points=1)


def test_goodness_of_fit_refuses_model_potentials() -> None:
    import numpyro
    import numpyro.distributions as dist

    def model(y=None):
        mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    pot = Potential.from_model(model, jnp.zeros(3))
    with pytest.raises(ValueError, match="pot must be a density over data points"):
        goodness_of_fit(pot, normal(0, 10, dim=1))


@pytest.mark.slow
def test_calibration_larger_samples() -> None:
    """400 seeds at n = 200 (each test): the rates stay near alpha at a larger size."""
    pot = gaussian_potential()
    k = 400
    gof = sum(goodness_of_fit(pot, normal(600 + s, 200), seed=s, num_bootstrap=200).reject
              for s in range(k))
    mmd = sum(mmd_test(normal(700 + s, 200), normal(70_000 + s, 200), seed=s,
                       num_permutations=200).reject for s in range(k))
    assert abs(binomial_z(gof, k, ALPHA)) < 4, gof
    assert abs(binomial_z(mmd, k, ALPHA)) < 4, mmd
