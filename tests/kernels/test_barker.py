"""Barker's proposal (``ebm_ppl.kernels.barker`` and ``from_blackjax(barker_proposal)``)
preconditioned by an inverse mass matrix ``C``.

With ``C = Sigma``, Barker on ``N(0, Sigma)`` is Barker on ``N(0, I)`` in whitened
coordinates ``y = R^-1 x`` (any root ``R R^T = Sigma``; the whitened target is
rotation-invariant), so from stationary starts one transition has the same law of the
acceptance rate. 20 000 chains per side, one transition: a two-sample z-check of the mean
acceptance rates, plus invariance of ``N(0, Sigma)`` (two means, three covariance
entries); k = 6, Bonferroni, ``alpha = 1e-3``. BlackJAX 1.7 reads its argument as ``M``,
not ``M^-1`` (see ``barker_metric_argument``): passed unconverted, the acceptance on this
ill-conditioned target collapses.
"""

from __future__ import annotations

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_z, correlated_gaussian_draws, iid_mean_checks, run_chains

from ebm_ppl import kernels

ILL_COV = np.array([[10.0, 0.8], [0.8, 0.1]])  # condition number ~ 200
STEP_SIZE = 1.0
NUM_CHAINS = 20_000

MAKERS = {
    "barker": lambda imm: kernels.barker(STEP_SIZE, inverse_mass_matrix=imm,
                                         adapt_mass_matrix=False),
    "from_blackjax": lambda imm: kernels.from_blackjax(
        blackjax.barker_proposal, step_size=STEP_SIZE, inverse_mass_matrix=imm),
}


def _white(x):
    return -0.5 * x @ x


def _one_transition(kernel, target, cov, seed):
    key_init, key_run = jax.random.split(jax.random.key(seed))
    start = correlated_gaussian_draws(key_init, np.zeros(2), cov, NUM_CHAINS)
    states, infos = run_chains(kernel, target, start, key_run, 1)
    assert not np.any(np.asarray(infos.is_divergent))
    return np.asarray(states.position, np.float64), np.asarray(infos.acceptance_rate[0],
                                                               np.float64)


@pytest.mark.parametrize("maker, dense", [("barker", True), ("from_blackjax", False)],
                         ids=["barker-dense", "from_blackjax-diagonal"])
def test_preconditioning_by_sigma_whitens_the_target(maker, dense):
    """One transition of 20 000 chains on ``N(0, Sigma)`` with ``C = Sigma`` against one
    on ``N(0, I)`` with ``C = I`` (see the module docstring); k = 6."""
    cov = ILL_COV if dense else np.diag(np.diag(ILL_COV))
    prec = jnp.asarray(np.linalg.inv(cov), jnp.float32)
    imm = jnp.asarray(cov if dense else np.diag(cov), jnp.float32)
    identity = jnp.eye(2) if dense else jnp.ones(2)

    def ill(x):
        return -0.5 * x @ prec @ x

    x, rate = _one_transition(MAKERS[maker](imm), ill, cov, seed=301)
    _, rate_white = _one_transition(MAKERS[maker](identity), _white, np.eye(2), seed=302)
    est, tru, se, labels = iid_mean_checks(x, np.zeros(2), cov)
    est = np.append(est, rate.mean())
    tru = np.append(tru, rate_white.mean())
    se = np.append(se, np.sqrt((rate.var(ddof=1) + rate_white.var(ddof=1)) / NUM_CHAINS))
    assert_z(est, tru, se, [*labels, "mean acceptance"])
    assert rate_white.mean() > 0.6
