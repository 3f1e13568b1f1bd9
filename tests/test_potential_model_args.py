"""Tests of ``Potential.with_model_args``: new data for a model potential.

Laws tested
-----------
* ``pot.with_model_args(*args, **kwargs)`` has the values (potential, constrained sites,
  model arguments) of ``Potential.from_model(model, *args, **kwargs)`` (exact identity).
* Its data are traced leaves: a jitted consumer of the first potential runs the new one
  without tracing or compiling again.
* Potentials that cannot take new data (not from a model, a model closing over its data,
  other static arguments) raise ``ValueError``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from conftest import count_compiles

from ebm_ppl import Potential


def model(y, scale=1.0, *, weights=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    s = numpyro.sample("s", dist.HalfNormal(1.0))
    w = 1.0 if weights is None else weights
    numpyro.sample("y", dist.Normal(mu * w, scale * s), obs=y)


Y1 = jnp.array([0.3, -1.2, 2.0, 0.7])
Y2 = jnp.array([1.5, 0.1, -0.4, 2.2])
W1 = jnp.array([1.0, 2.0, 0.5, 1.0])
W2 = jnp.array([0.5, 1.0, 1.5, 2.0])
Z = {"mu": jnp.asarray(0.4), "s": jnp.asarray(-0.3)}


def test_same_values_as_from_model_with_the_new_args():
    """Potential, log density, constrained sites and model arguments equal those of a new
    ``from_model`` on the new arguments (positional and keyword)."""
    pot = Potential.from_model(model, Y1, 2.0, weights=W1)
    new = pot.with_model_args(Y2, 2.0, weights=W2)
    ref = Potential.from_model(model, Y2, 2.0, weights=W2)
    np.testing.assert_allclose(new.potential_fn(Z), ref.potential_fn(Z), rtol=1e-6)
    np.testing.assert_allclose(new.logdensity_fn(Z), ref.logdensity_fn(Z), rtol=1e-6)
    assert not np.allclose(new.potential_fn(Z), pot.potential_fn(Z))
    for name, value in ref.constrain(Z).items():
        np.testing.assert_allclose(new.constrain(Z)[name], value, rtol=1e-6)
    np.testing.assert_array_equal(new.model_args[0], Y2)
    assert new.model_args[1] == 2.0
    np.testing.assert_array_equal(new.model_kwargs["weights"], W2)
    assert new.model is model and new.example_spec == pot.example_spec
    # the original is unchanged
    np.testing.assert_array_equal(pot.model_args[0], Y1)


def test_compiled_code_is_reused():
    """A jitted function of the potential traces and compiles once for both data sets."""
    traces = []

    @jax.jit
    def potential(pot, z):
        traces.append(1)
        return pot.potential_fn(z)

    pot = Potential.from_model(model, Y1, weights=W1)
    first = potential(pot, Z)
    new = pot.with_model_args(Y2, weights=W2)
    with count_compiles() as compiled:
        second = potential(new, Z)
    assert compiled == [] and len(traces) == 1
    np.testing.assert_allclose(first, pot.potential_fn(Z), rtol=1e-6)
    np.testing.assert_allclose(second, Potential.from_model(model, Y2, weights=W2)
                               .potential_fn(Z), rtol=1e-6)


def test_potentials_that_cannot_take_new_args_raise():
    """Not a model; a model closing over its data (NumPy on the data); other static
    arguments or another argument structure."""
    with pytest.raises(ValueError, match="Potential.from_model"):
        Potential.from_energy(lambda x: jnp.sum(x**2)).with_model_args(Y1)

    def numpy_model(y):
        mu = numpyro.sample("mu", dist.Normal(float(np.mean(y)), 1.0))
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    closed = Potential.from_model(numpy_model, np.asarray(Y1))
    with pytest.raises(ValueError, match="cannot take traced data"):
        closed.with_model_args(np.asarray(Y2))
    pot = Potential.from_model(model, Y1, 2.0)
    with pytest.raises(ValueError, match="same structure"):
        pot.with_model_args(Y2, 3.0)
    with pytest.raises(ValueError, match="same structure"):
        pot.with_model_args(Y2, 2.0, weights=W2)
