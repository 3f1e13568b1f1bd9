"""``EnergyDistribution(pot)``: a trained model (a ``Potential``) as a NumPyro prior in one
line (issue #27)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import ebm_ppl
from ebm_ppl.nn import mlp_energy
from ebm_ppl.numpyro import EnergyDistribution


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model = mlp_energy((8,))
    params = model.init(jax.random.key(0), 2)
    pot = ebm_ppl.Potential.from_energy(model, params, temperature=2.0, example=jnp.zeros(2))
    folder = tmp_path_factory.mktemp("m") / "model"
    ebm_ppl.save(pot, folder)
    return model, params, ebm_ppl.load(folder)


def test_potential_goes_in_whole(trained):
    model, params, pot = trained
    d = EnergyDistribution(pot)
    assert d.event_shape == (2,)
    x = jnp.array([[0.3, -1.2], [1.0, 2.0]])
    expected = -jax.vmap(lambda y: model(params, y))(x) / 2.0
    np.testing.assert_allclose(d.log_prob(x), expected, rtol=1e-5, atol=1e-6)


def test_prior_in_a_model_gives_the_same_posterior_density(trained):
    model, params, pot = trained

    def numpyro_model(y):
        z = numpyro.sample("z", EnergyDistribution(pot))
        numpyro.sample("y", dist.Normal(z, 1.0).to_event(1), obs=y)

    y = jnp.array([0.5, -0.5])
    post = ebm_ppl.Potential.from_model(numpyro_model, y)
    z = jnp.array([0.1, 0.2])
    expected = model(params, z) / 2.0 + 0.5 * jnp.sum((y - z) ** 2) + jnp.log(2 * jnp.pi)
    np.testing.assert_allclose(post.potential_fn({"z": z}), expected, rtol=1e-5)


def test_conflicting_arguments_are_refused(trained):
    model, params, pot = trained
    with pytest.raises(ValueError, match="come from the Potential"):
        EnergyDistribution(pot, params)
    with pytest.raises(ValueError, match="come from the Potential"):
        EnergyDistribution(pot, temperature=3.0)
    logdensity = ebm_ppl.Potential.from_logdensity(lambda x: -jnp.sum(x**2))
    with pytest.raises(ValueError, match="built from a logdensity"):
        EnergyDistribution(logdensity)
