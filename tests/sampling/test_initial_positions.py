"""Initial positions of ``ebm_ppl.sample`` (``ebm_ppl.sampling.positions``) by their law.

* One position ``x0`` with ``jitter`` s: ``num_chains`` i.i.d. draws of ``N(x0, s^2 I)``.
* ``init=None`` on a model: NumPyro's ``init_to_uniform``, i.i.d. ``U(-2, 2)`` on every
  unconstrained coordinate (mean 0, variance 4/3), sites independent of each other.

Each check is a mean of i.i.d. terms with ``mcse = sd / sqrt(n)`` (conftest's
``iid_mean_checks``), Bonferroni over the checks of a test, alpha = 1e-3.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from conftest import assert_z, iid_mean_checks

import ebm_ppl
from ebm_ppl.sampling.positions import initial_positions

N = 4000


def test_jittered_single_position_is_gaussian_around_it():
    """Means ``x0`` and covariance ``jitter^2 I`` (5 checks); ``jitter=0`` is exact."""
    pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2))
    x0, jitter = np.array([1.0, -2.0]), 0.3
    x = np.asarray(initial_positions(pot, jnp.asarray(x0), N, jax.random.key(11), jitter))
    assert x.shape == (N, 2)
    assert_z(*iid_mean_checks(x, x0, jitter**2 * np.eye(2)))
    exact = initial_positions(pot, jnp.asarray(x0), 3, jax.random.key(11), 0.0)
    np.testing.assert_array_equal(exact, np.broadcast_to(x0, (3, 2)))


def two_site_model():
    numpyro.sample("a", dist.Normal(0.0, 1.0))
    numpyro.sample("b", dist.HalfNormal(1.0))  # unconstrained: log b


def test_model_init_is_uniform_and_independent_across_sites():
    """``init_fn``: ``a`` and ``log b`` i.i.d. ``U(-2, 2)``: means 0, variances 4/3,
    covariance 0 (5 checks; a key reused across sites makes the covariance 4/3)."""
    pot = ebm_ppl.Potential.from_model(two_site_model)
    z = pot.init_fn(jax.random.key(12), N)
    x = np.stack([np.asarray(z["a"]), np.asarray(z["b"])], axis=1)
    assert np.all(np.abs(x) < 2.0)
    assert_z(*iid_mean_checks(x, np.zeros(2), 4.0 / 3.0 * np.eye(2)))
