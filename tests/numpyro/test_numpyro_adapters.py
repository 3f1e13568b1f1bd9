"""The NumPyro adapters' own maths: target shift, running acceptance, HMC's step-size
jitter, mass-matrix factors and site-group blocks (fast, default run).

Laws tested
-----------
* ``target_accept_prob`` enters the shared warm-up as a shift of the acceptance
  statistic: dual averaging must steer MALA's acceptance to the *given* target (0.9 and
  0.3), not to its mirror image ``2 * 0.574 - target`` about the kernel's default.
* ``mean_accept_prob`` is the running mean of ``accept_prob``, restarted after warm-up:
  after sampling it equals the mean of the sampling phase's acceptance probabilities.
* HMC with ``trajectory_length`` ``tau = 2``, nominal step 1 and ``step_size_jitter``
  0.5: the step is ``1 + 0.5 u``, ``u ~ U(-1, 1)``, so ``L = ceil(tau / step)`` is 2, 3, 4
  with probabilities 1/2, 1/3, 1/6 (independent per transition): multinomial z-scores.
* ``mass_matrix_views``: ``M^{1/2} M^{1/2 T} = M = (M^{-1})^{-1}`` and
  ``M^{-1/2} M^{-1/2 T} = M^{-1}`` (dense and diagonal).
* ``dense_mass=[("x",)]`` with a dense start: a dense block for ``x``, a diagonal for the
  other sites, zeros between them in the flat matrix the kernel uses.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from conftest import assert_z
from numpyro.infer import MCMC

from ebm_ppl.numpyro import BlackJAXKernel
from ebm_ppl.numpyro.mass import mass_layout, mass_matrix_views


def std_normal_potential(z):
    return 0.5 * jnp.sum(z**2)


# ---------------------------------------------------------------- warm-up target
NUM_CHAINS, NUM_WARMUP, NUM_SAMPLES = 8, 150, 150


@jax.jit
def _mala_run(target):
    kernel = BlackJAXKernel("mala", potential_fn=std_normal_potential, step_size=1.0,
                            target_accept_prob=target)
    keys = jax.random.split(jax.random.key(51), NUM_CHAINS)
    state = kernel.init(keys, NUM_WARMUP, init_params=jnp.zeros((NUM_CHAINS, 2)))

    def body(state, _):
        state = kernel.sample(state, (), {})
        return state, state.accept_prob

    state, accept = jax.lax.scan(body, state, None, length=NUM_WARMUP + NUM_SAMPLES)
    return state.mean_accept_prob, accept[NUM_WARMUP:]


def test_warmup_steers_acceptance_to_the_given_target_and_averages_it():
    default = BlackJAXKernel("mala", potential_fn=std_normal_potential)._target_accept_prob
    for target in (0.9, 0.3):
        mean_accept, accept = _mala_run(target)
        accept = np.asarray(accept, np.float64)
        np.testing.assert_allclose(mean_accept, accept.mean(axis=0), rtol=1e-5, atol=1e-6)
        rate, mirror = accept.mean(), 2 * default - target
        assert abs(rate - target) < abs(rate - mirror), (target, rate)


# ---------------------------------------------------------------- HMC step-size jitter
def test_hmc_step_size_jitter_draws_the_number_of_steps():
    kernel = BlackJAXKernel("hmc", potential_fn=std_normal_potential, trajectory_length=2.0,
                            step_size=1.0, step_size_jitter=0.5, adapt_step_size=False,
                            adapt_mass_matrix=False)
    mcmc = MCMC(kernel, num_warmup=0, num_samples=500, num_chains=4,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(52), init_params=jnp.zeros((4, 2)), extra_fields=("num_steps",))
    steps = np.asarray(mcmc.get_extra_fields()["num_steps"]).ravel()
    assert set(steps.tolist()) <= {2, 3, 4}
    probs = np.array([1 / 2, 1 / 3, 1 / 6])
    freq = np.array([(steps == L).mean() for L in (2, 3, 4)])
    assert_z(freq, probs, np.sqrt(probs * (1 - probs) / steps.size), ["L=2", "L=3", "L=4"])


# ---------------------------------------------------------------- mass matrix
def test_mass_matrix_factors():
    a = np.array([[2.0, 0.6, 0.1], [0.6, 1.0, -0.3], [0.1, -0.3, 0.5]])
    for imm in (jnp.asarray(a), jnp.asarray(np.diag(a))):
        inv, sqrt, sqrt_inv = mass_matrix_views(imm, jnp.zeros(3))
        dense = lambda m: m if m.ndim == 2 else jnp.diag(m)  # noqa: E731
        if imm.ndim == 1:
            sqrt, sqrt_inv = jnp.diag(sqrt), jnp.diag(sqrt_inv)
        np.testing.assert_allclose(inv, imm)
        np.testing.assert_allclose(sqrt @ sqrt.T, np.linalg.inv(dense(imm)), rtol=1e-4,
                                   atol=1e-5)
        np.testing.assert_allclose(sqrt_inv @ sqrt_inv.T, dense(imm), rtol=1e-4, atol=1e-5)
    # by site groups: the block of each group and the diagonal of the rest
    position = {"x": jnp.zeros(2), "z": jnp.zeros(1)}
    layout = mass_layout([("x",)], position)
    inv, sqrt, sqrt_inv = mass_matrix_views(jnp.asarray(a), position, layout)
    np.testing.assert_allclose(sqrt[("x",)] @ sqrt[("x",)].T, np.linalg.inv(a[:2, :2]),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sqrt[("z",)] ** 2, 1 / a[2:, 2], rtol=1e-5)
    np.testing.assert_allclose(sqrt_inv[("z",)] ** 2, a[2:, 2], rtol=1e-5)


def x_and_z():
    numpyro.sample("x", dist.Normal(0.0, 1.0).expand([2]))
    numpyro.sample("z", dist.Normal(0.0, 1.0))


def test_dense_start_follows_the_site_groups():
    """One dense group and a diagonal site: the flat inverse mass matrix keeps the
    group's block and the site's variance, and is zero between them."""
    given = jnp.array([[2.0, 0.6, 0.4], [0.6, 1.0, -0.3], [0.4, -0.3, 0.5]])
    kernel = BlackJAXKernel("nuts", x_and_z, dense_mass=[("x",)], inverse_mass_matrix=given,
                            adapt_mass_matrix=False)
    state = kernel.init(jax.random.key(53), 5, init_params={"x": jnp.zeros(2), "z": jnp.zeros(())})
    flat = np.asarray(state.adapt_state.kernel.parameters["inverse_mass_matrix"])
    expected = np.asarray(given).copy()
    expected[:2, 2] = expected[2, :2] = 0.0
    np.testing.assert_array_equal(flat, expected)
    views = state.adapt_state.inverse_mass_matrix
    np.testing.assert_allclose(views[("x",)], given[:2, :2])
    np.testing.assert_allclose(views[("z",)], given[2:, 2])
