"""Equinox modules in ``fit``: a one-sentence refusal that shows the working recipe, and
the recipe itself (issue #27)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ebm_ppl

eqx = pytest.importorskip("equinox")


@pytest.fixture(scope="module")
def module():
    return eqx.nn.MLP(2, "scalar", 8, 1, activation=jax.nn.softplus, key=jax.random.key(0))


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)


def test_module_as_energy_without_params_shows_the_recipe(module, data):
    with pytest.raises(TypeError, match=r"module holding arrays \(MLP\).*eqx\.partition"):
        ebm_ppl.fit(module, None, data, ebm_ppl.objectives.score_matching(), num_steps=1,
                    progress=False)


def test_module_as_params_shows_the_recipe(module, data):
    with pytest.raises(TypeError, match=r"params must be a pytree of arrays.*eqx\.combine"):
        ebm_ppl.fit(lambda m, x: m(x), module, data, ebm_ppl.objectives.score_matching(),
                    num_steps=1, progress=False)


def test_the_recipe_trains_the_module(module, data):
    params, static = eqx.partition(module, eqx.is_array)

    def energy_fn(p, x):
        return eqx.combine(p, static)(x)

    result = ebm_ppl.fit(energy_fn, params, data, ebm_ppl.objectives.score_matching(),
                         num_steps=3, batch_size=32, progress=False)
    trained = eqx.combine(result.params, static)
    assert isinstance(trained, type(module))
    assert jnp.shape(trained(jnp.zeros(2))) == ()
    before, after = jax.tree.leaves(params), jax.tree.leaves(result.params)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_module_as_params_of_a_potential_samples(module):
    pot = ebm_ppl.Potential.from_energy(lambda m, x: m(x), module, example=jnp.zeros(2))
    idata = ebm_ppl.sample(pot, ebm_ppl.kernels.mala(0.1), jnp.zeros(2), num_samples=20,
                           num_warmup=0, num_chains=2, progress=False)
    assert np.all(np.isfinite(idata.posterior["x"].values))


def test_flax_apply_and_variables_train_as_they_are(data):
    nn = pytest.importorskip("flax.linen")

    class Energy(nn.Module):
        @nn.compact
        def __call__(self, x):
            return jnp.sum(nn.Dense(1)(nn.softplus(nn.Dense(8)(x))))

    module = Energy()
    variables = module.init(jax.random.key(0), jnp.zeros(2))
    result = ebm_ppl.fit(module.apply, variables, data, ebm_ppl.objectives.score_matching(),
                         num_steps=3, batch_size=32, progress=False)
    assert jax.tree.structure(result.params) == jax.tree.structure(variables)
    assert np.isfinite(module.apply(result.params, jnp.zeros(2)))
