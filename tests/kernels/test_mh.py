"""Metropolis–Hastings kernels (``ebm_ppl.kernels.mh``): one transition from the target.

Every test starts many independent chains at exact draws of a correlated Gaussian and
takes ONE transition, then checks, each with Monte-Carlo z-scores (Bonferroni,
``alpha = 1e-3``) or exactly:

* invariance: the moved chains are still draws of the target (means and covariance
  entries, ``conftest.iid_mean_checks``);
* the reported ``acceptance_rate`` of every accepted move equals the closed form
  ``min(1, p(x') q(x | x') / (p(x) q(x' | x)))`` computed in NumPy float64 from the
  start and the (accepted) new position;
* the accept decision has that probability: ``E[is_accepted - acceptance_rate] = 0``;
* the random-walk proposal has standard deviation ``scale`` (flat target: every move is
  accepted and the increments are the proposal's).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from conftest import assert_z, correlated_gaussian_draws, iid_mean_checks, run_chains
from scipy import stats

from ebm_ppl import kernels
from ebm_ppl.kernels.mh import Proposal

MU = np.array([0.5, -1.0])
COV = np.array([[1.0, 0.6], [0.6, 2.0]])
PREC = np.linalg.inv(COV)
NUM_CHAINS = 20_000


def logdensity(x):
    d = x - jnp.asarray(MU, x.dtype)
    return -0.5 * d @ jnp.asarray(PREC, x.dtype) @ d


def logdensity_np(x):
    d = np.asarray(x, np.float64) - MU
    return -0.5 * np.einsum("ni,ij,nj->n", d, PREC, d)


# An asymmetric proposal that depends on the current point (autoregressive towards a
# centre off the target's mean): q(x' | x) = N(x'; c + a (x - c), s^2 I).
AR_CENTRE, AR_COEF, AR_SCALE = np.array([1.5, 0.0]), 0.5, 1.2


def _ar_sample(rng_key, position, params):
    centre = jnp.asarray(AR_CENTRE, position.dtype)
    mean = centre + params["coef"] * (position - centre)
    return mean + params["scale"] * jax.random.normal(rng_key, position.shape, position.dtype)


def _ar_log_prob(new, old, params):
    centre = jnp.asarray(AR_CENTRE, old.dtype)
    mean = centre + params["coef"] * (old - centre)
    return jnp.sum(-0.5 * ((new - mean) / params["scale"]) ** 2)


def _ar_log_prob_np(new, old):
    mean = AR_CENTRE + AR_COEF * (old - AR_CENTRE)
    return np.sum(stats.norm.logpdf(new, mean, AR_SCALE), axis=1)


INDEPENDENT_LOC, INDEPENDENT_SCALE = np.array([1.5, 0.0]), 2.0

#: name -> (kernel factory, log q(new | old) in NumPy or None when symmetric)
KERNELS = {
    "random_walk": (lambda: kernels.random_walk(1.2), None),
    "independent": (
        lambda: kernels.independent(
            dist.Normal(jnp.asarray(INDEPENDENT_LOC, jnp.float32), INDEPENDENT_SCALE).to_event(1)),
        lambda new, old: np.sum(stats.norm.logpdf(new, INDEPENDENT_LOC, INDEPENDENT_SCALE), 1),
    ),
    "autoregressive": (
        lambda: kernels.mh(Proposal(sample_fn=_ar_sample, log_prob_fn=_ar_log_prob,
                                    params={"coef": jnp.float32(AR_COEF),
                                            "scale": jnp.float32(AR_SCALE)})),
        _ar_log_prob_np,
    ),
}


@pytest.mark.parametrize("name", list(KERNELS))
def test_one_transition_from_the_target(name):
    """20 000 chains from exact draws of ``N(MU, COV)``, one MH transition.

    Six z-checks (two means, three covariance entries, ``E[accepted - rate] = 0``) and an
    exact check of the reported rate of every accepted move against the MH ratio with
    the Hastings factor ``q(x | x') / q(x' | x)``.
    """
    factory, log_q = KERNELS[name]
    key_init, key_run = jax.random.split(jax.random.key(101))
    start = correlated_gaussian_draws(key_init, MU, COV, NUM_CHAINS)
    states, infos = run_chains(factory(), logdensity, start, key_run, 1)
    x0 = np.asarray(start, np.float64)
    x1 = np.asarray(states.position, np.float64)
    rate = np.asarray(infos.acceptance_rate[0], np.float64)
    accepted = np.asarray(infos.is_accepted[0])
    assert not np.any(np.asarray(infos.is_divergent))

    # invariance and the frequency of acceptance, together (k = 6)
    est, tru, se, labels = iid_mean_checks(x1, MU, COV)
    diff = accepted - rate
    est = np.append(est, diff.mean())
    tru = np.append(tru, 0.0)
    se = np.append(se, diff.std(ddof=1) / np.sqrt(NUM_CHAINS))
    assert_z(est, tru, se, [*labels, "accepted - rate"])
    assert 0.2 < accepted.mean() < 0.9

    # the reported rate of each accepted move is the MH ratio (float32 arithmetic)
    log_ratio = logdensity_np(x1) - logdensity_np(x0)
    if log_q is not None:
        log_ratio += log_q(x0, x1) - log_q(x1, x0)
    want = np.exp(np.minimum(log_ratio, 0.0))
    assert np.sum(accepted & (want < 0.9)) > 500  # the check below bites
    np.testing.assert_allclose(rate[accepted], want[accepted], rtol=1e-4, atol=1e-4)


def test_random_walk_increments_have_sd_scale():
    """On a flat target every random-walk proposal is accepted, so the increments are
    the proposal's ``N(0, s^2 I)``: two means and three second moments (k = 5)."""
    scale = 0.5
    states, infos = run_chains(kernels.random_walk(scale), lambda x: 0.0 * jnp.sum(x),
                               jnp.zeros((NUM_CHAINS, 2)), jax.random.key(102), 1)
    assert bool(jnp.all(infos.is_accepted))
    steps = np.asarray(states.position, np.float64)
    assert_z(*iid_mean_checks(steps, np.zeros(2), scale**2 * np.eye(2)))
