"""``mode_weights`` sees what kernel Stein discrepancy cannot (issue #29): on a mixture of
four Gaussians 10 apart with weights 0.1/0.2/0.3/0.4, draws from chains that each keep
the mode they started in (what MALA and NUTS do there) have the wrong weights; KSD's
test passes them, ``mode_weights`` fails them, and it passes exact draws."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ebm_ppl
from ebm_ppl.diagnostics import ksd_test, mode_weights

MEANS = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
WEIGHTS = np.array([0.1, 0.2, 0.3, 0.4])
SD = 0.5


def energy(x):
    log_w = jnp.log(jnp.asarray(WEIGHTS))
    sq = jnp.sum((x - jnp.asarray(MEANS)) ** 2, axis=-1) / SD**2
    return -jax.scipy.special.logsumexp(log_w - 0.5 * sq)


POT = ebm_ppl.Potential.from_energy(energy, example=jnp.zeros(2))


def _exact(rng, chains, draws):
    modes = rng.choice(4, size=(chains, draws), p=WEIGHTS)
    return MEANS[modes] + SD * rng.standard_normal((chains, draws, 2))


def _stuck(rng, chains, draws):
    """Each chain stays in one mode: mode of chain c is c mod 4 (equal weights 0.25)."""
    modes = np.repeat((np.arange(chains) % 4)[:, None], draws, axis=1)
    return MEANS[modes] + SD * rng.standard_normal((chains, draws, 2))


def test_exact_draws_pass_with_the_right_weights():
    draws = _exact(np.random.default_rng(0), 8, 500)
    result = mode_weights(draws, num_modes=4, seed=1)
    order = np.argsort([np.argmin(np.sum((MEANS - c) ** 2, axis=1)) for c in result.centers])
    found = mode_weights(draws, centers=MEANS, expected=WEIGHTS)
    assert found.status == "pass", found
    assert np.all(found.r_hat < 1.05)
    np.testing.assert_allclose(result.weights[order], found.weights, atol=1e-12)


def test_stuck_chains_fail_where_ksd_passes():
    draws = _stuck(np.random.default_rng(2), 8, 250)
    found = mode_weights(draws, centers=MEANS, expected=WEIGHTS)
    assert found.status == "fail"
    assert np.all(found.r_hat > 100)              # every chain keeps its own mode
    np.testing.assert_allclose(found.weights, 0.25)
    # the KSD test (score only) cannot tell the weights apart: it does not reject
    ksd = ksd_test(draws.reshape(-1, 2)[::4], POT.score, seed=0)
    assert ksd.p_value > 0.01, ksd


def test_wrong_pooled_weights_fail_even_when_chains_agree():
    rng = np.random.default_rng(3)
    modes = rng.choice(4, size=(8, 500), p=[0.25, 0.25, 0.25, 0.25])
    draws = MEANS[modes] + SD * rng.standard_normal((8, 500, 2))
    found = mode_weights(draws, centers=MEANS, expected=WEIGHTS)
    assert np.all(found.r_hat < 1.05) and found.status == "fail"
    assert np.max(found.z) > 10


@pytest.mark.parametrize("kwargs, match", [
    (dict(), "give centers"),
    (dict(num_modes=1), "num_modes >= 2"),
    (dict(centers=[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]), "centers must have shape"),
    (dict(centers=MEANS, expected=[0.5, 0.5, 0.5, 0.5]), "summing to 1"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mode_weights(np.zeros((2, 10, 2)), **kwargs)
    with pytest.raises(ValueError, match="at least 2 chains"):
        mode_weights(np.zeros((1, 10, 2)), centers=MEANS)


def test_sticky_but_correct_chains_pass_with_the_ess_based_error():
    """Chains that switch modes rarely (a Markov chain over the modes that keeps its mode
    with probability 0.98, stationary law = the weights) have the right weights but few
    effective draws: the weight error must use the ESS of the indicators, or the right
    answer is rejected."""
    rng = np.random.default_rng(4)
    chains, draws, stay = 8, 2000, 0.98
    modes = np.empty((chains, draws), int)
    modes[:, 0] = rng.choice(4, size=chains, p=WEIGHTS)
    fresh = rng.choice(4, size=(chains, draws), p=WEIGHTS)
    keep = rng.random((chains, draws)) < stay
    for t in range(1, draws):
        modes[:, t] = np.where(keep[:, t], modes[:, t - 1], fresh[:, t])
    samples = MEANS[modes] + SD * rng.standard_normal((chains, draws, 2))
    found = mode_weights(samples, centers=MEANS, expected=WEIGHTS, max_rhat=1.2)
    assert found.status == "pass", found
    naive = np.sqrt(WEIGHTS * (1 - WEIGHTS) / (chains * draws))
    assert np.all(found.mcse > 3 * naive)  # the ESS is far below the number of draws
