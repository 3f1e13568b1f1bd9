"""MALA and preconditioned MALA (``ebm_ppl.kernels.mala``): one transition from the target.

The proposal is ``x' ~ N(x + h C grad log p(x), 2 h C)`` (``C = I`` for plain MALA, the
inverse mass matrix otherwise), followed by the MH accept/reject. 20 000 chains start at
exact draws of a correlated Gaussian and take one transition; then

* invariance (two means, three covariance entries) and ``E[accepted - rate] = 0`` are
  z-checked (Bonferroni, ``alpha = 1e-3``, k = 6);
* the reported ``acceptance_rate`` of every accepted move equals
  ``min(1, p(x') q(x | x') / (p(x) q(x' | x)))`` with that Gaussian ``q``, computed in
  NumPy float64 from the start and the new position: this pins down the drift
  (``C``, not ``C^-1``), the noise (``sqrt(2h) C^{1/2}``) and both Hastings terms.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_z, correlated_gaussian_draws, iid_mean_checks, run_chains

from ebm_ppl import kernels

MU = np.array([0.5, -1.0])
COV = np.array([[1.0, 0.6], [0.6, 2.0]])
PREC = np.linalg.inv(COV)
NUM_CHAINS = 20_000

# preconditioners unlike COV (so that C and C^-1, L and L^T, C and C^1/2 all differ)
DENSE_C = np.array([[2.0, -0.6], [-0.6, 0.5]])
DIAGONAL_C = np.array([3.0, 0.3])


def logdensity(x):
    d = x - jnp.asarray(MU, x.dtype)
    return -0.5 * d @ jnp.asarray(PREC, x.dtype) @ d


def logdensity_np(x):
    d = x - MU
    return -0.5 * np.einsum("ni,ij,nj->n", d, PREC, d)


def log_q_np(new, old, step_size, c):
    """``log N(new; old + h C grad log p(old), 2 h C)`` up to a constant."""
    grad = -(old - MU) @ PREC
    d = new - old - step_size * grad @ c
    return -np.einsum("ni,ij,nj->n", d, np.linalg.inv(c), d) / (4.0 * step_size)


#: name -> (kernel factory, step size, C as a dense matrix)
KERNELS = {
    "plain": (lambda: kernels.mala(0.8), 0.8, np.eye(2)),
    "dense": (lambda: kernels.mala(0.5, inverse_mass_matrix=jnp.asarray(DENSE_C, jnp.float32),
                                   adapt_mass_matrix=False), 0.5, DENSE_C),
    "diagonal": (lambda: kernels.mala(
        0.3, inverse_mass_matrix=jnp.asarray(DIAGONAL_C, jnp.float32),
        adapt_mass_matrix=False), 0.3, np.diag(DIAGONAL_C)),
}


def _one_transition(kernel, seed):
    key_init, key_run = jax.random.split(jax.random.key(seed))
    start = correlated_gaussian_draws(key_init, MU, COV, NUM_CHAINS)
    states, infos = run_chains(kernel, logdensity, start, key_run, 1)
    assert not np.any(np.asarray(infos.is_divergent))
    return (np.asarray(start, np.float64), np.asarray(states.position, np.float64),
            np.asarray(infos.acceptance_rate[0], np.float64), np.asarray(infos.is_accepted[0]))


@pytest.mark.parametrize("name", list(KERNELS))
def test_one_transition_from_the_target(name):
    """20 000 chains from exact draws of ``N(MU, COV)``, one transition: six z-checks and
    the exact rate of every accepted move (see the module docstring)."""
    factory, step_size, c = KERNELS[name]
    x0, x1, rate, accepted = _one_transition(factory(), seed=201)

    est, tru, se, labels = iid_mean_checks(x1, MU, COV)
    diff = accepted - rate
    est = np.append(est, diff.mean())
    tru = np.append(tru, 0.0)
    se = np.append(se, diff.std(ddof=1) / np.sqrt(NUM_CHAINS))
    assert_z(est, tru, se, [*labels, "accepted - rate"])
    assert 0.2 < accepted.mean() < 0.95

    log_ratio = (logdensity_np(x1) - logdensity_np(x0)
                 + log_q_np(x0, x1, step_size, c) - log_q_np(x1, x0, step_size, c))
    want = np.exp(np.minimum(log_ratio, 0.0))
    assert np.sum(accepted & (want < 0.9)) > 500  # the check below bites
    np.testing.assert_allclose(rate[accepted], want[accepted], rtol=1e-4, atol=1e-4)

