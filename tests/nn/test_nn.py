"""Tests of ebm_ppl.nn: MLP energies, their hashability, and Flax/Equinox interop."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_ppl import Potential
from ebm_ppl.nn import (
    ACTIVATIONS,
    FixedSigmaEnergy,
    MLPEnergy,
    NoiseConditionalMLPEnergy,
    mlp_energy,
    noise_conditional_mlp_energy,
)


@pytest.fixture
def keys():
    key = jax.random.key(20240611)
    init_key, x_key, v_key = jax.random.split(key, 3)
    return init_key, x_key, v_key


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_energy_scalar_grad_hvp(keys, activation):
    init_key, x_key, v_key = keys
    model = mlp_energy((16, 8), activation)
    params = model.init(init_key, 3)
    x = jax.random.normal(x_key, (3,))
    v = jax.random.normal(v_key, (3,))

    @jax.jit
    def compute(params, x, v):
        energy = model(params, x)
        grad = jax.grad(model, argnums=1)(params, x)
        hvp = jax.jvp(lambda y: jax.grad(model, argnums=1)(params, y), (x,), (v,))[1]
        param_grad = jax.grad(model)(params, x)
        hess = jax.hessian(model, argnums=1)(params, x)
        return energy, grad, hvp, param_grad, hess

    energy, grad, hvp, param_grad, hess = compute(params, x, v)
    assert energy.shape == () and energy.dtype == jnp.float32
    assert grad.shape == (3,) and hvp.shape == (3,)
    assert np.all(np.isfinite(grad)) and np.all(np.isfinite(hvp))
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(param_grad))
    # the Hessian is not identically zero (the reason ReLU is excluded)
    assert float(jnp.abs(hvp).max()) > 0
    # the Hessian-vector product agrees with the full Hessian
    np.testing.assert_allclose(hvp, hess @ v, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(hess, hess.T, rtol=1e-4, atol=1e-6)


def test_params_layout_and_init_scale(keys):
    model = mlp_energy((64, 8))
    params = model.init(keys[0], 256)
    assert [layer["w"].shape for layer in params["hidden"]] == [(256, 64), (64, 8)]
    assert params["output"]["w"].shape == (8, 1) and params["output"]["b"].shape == (1,)
    assert all(np.all(layer["b"] == 0) for layer in params["hidden"])
    # He normal: var = 2 / fan_in; 16384 draws give a relative sd of the sample
    # variance of sqrt(2 / 16384) = 1.1%, so rtol 6% is a 5-sigma bound
    np.testing.assert_allclose(np.var(params["hidden"][0]["w"]), 2 / 256, rtol=0.06)
    glorot = mlp_energy((64,), "tanh").init(keys[0], 256)
    np.testing.assert_allclose(np.var(glorot["hidden"][0]["w"]), 2 / (256 + 64), rtol=0.06)
    # deterministic in the key, and an integer seed is accepted
    again = model.init(keys[0], 256)
    assert all(
        np.array_equal(u, v)
        for u, v in zip(jax.tree.leaves(params), jax.tree.leaves(again), strict=True)
    )
    assert jax.tree.structure(model.init(0, 256)) == jax.tree.structure(params)


def test_vmap_and_quadratic(keys):
    init_key, x_key, _ = keys
    xs = jax.random.normal(x_key, (7, 2))
    plain = mlp_energy((8,))
    confined = mlp_energy((8,), quadratic=0.5)
    params = plain.init(init_key, 2)

    @jax.jit
    def energies(params, xs):
        batch = jax.vmap(plain, in_axes=(None, 0))
        return batch(params, xs), jax.vmap(confined, in_axes=(None, 0))(params, xs)

    e_plain, e_conf = energies(params, xs)
    assert e_plain.shape == (7,)
    np.testing.assert_allclose(e_conf - e_plain, 0.25 * jnp.sum(xs**2, axis=1), rtol=1e-5)


def test_no_hidden_layer_is_linear(keys):
    model = mlp_energy((), quadratic=1.0)
    params = model.init(keys[0], 2)
    x = jnp.array([1.0, -2.0])
    expected = x @ params["output"]["w"][:, 0] + 0.5 * jnp.sum(x**2)
    np.testing.assert_allclose(model(params, x), expected, rtol=1e-6)


def test_equality_hash_and_unpacking():
    a, b = mlp_energy((128, 128)), mlp_energy([128, 128])
    assert a == b and hash(a) == hash(b) and a is not b
    assert a.apply == b.apply and hash(a.apply) == hash(b.apply)
    assert mlp_energy(32) == mlp_energy((32,))
    assert a != mlp_energy((128, 64)) and a != mlp_energy((128, 128), "tanh")
    assert a != mlp_energy((128, 128), quadratic=0.1)
    # different classes never compare equal, even with the same fields
    nc = noise_conditional_mlp_energy((128, 128))
    assert a != nc and nc == noise_conditional_mlp_energy((128, 128))
    assert nc.at_sigma(0.1) == nc.at_sigma(0.1) and hash(nc.at_sigma(0.1)) == hash(nc.at_sigma(0.1))
    assert nc.at_sigma(0.1) != nc.at_sigma(0.2)
    init, apply = a
    assert apply == a and callable(init)
    assert isinstance(a, MLPEnergy) and isinstance(nc, NoiseConditionalMLPEnergy)


def test_jit_cache_reused_across_equal_configs(keys):
    traces = []

    @functools.partial(jax.jit, static_argnums=0)
    def energy(energy_fn, params, x):
        traces.append(1)
        return energy_fn(params, x)

    x = jnp.ones(2)
    m1, m2 = mlp_energy((16, 16)), mlp_energy((16, 16))
    p1 = m1.init(keys[0], 2)
    p2 = m2.init(keys[1], 2)
    energy(m1, p1, x)
    energy(m2, p2, x)
    energy(m1.apply, p2, 2 * x)
    assert len(traces) == 1
    energy(mlp_energy((16, 16), "tanh"), p1, x)
    assert len(traces) == 2

    # the same through Potential (the energy is static metadata of the pytree)
    pot_traces = []

    @jax.jit
    def score(pot, x):
        pot_traces.append(1)
        return pot.score(x)

    score(Potential.from_energy(m1, p1), x)
    score(Potential.from_energy(m2, p2), x)
    score(Potential.from_energy(mlp_energy((16, 16)), p1, temperature=2.0), x)
    assert len(pot_traces) == 1


def test_noise_conditional(keys):
    init_key, x_key, _ = keys
    model = noise_conditional_mlp_energy((16,), "softplus")
    unscaled = noise_conditional_mlp_energy((16,), "softplus", scale_by_sigma=False)
    fixed = model.at_sigma(0.1)
    assert isinstance(fixed, FixedSigmaEnergy)
    params = model.init(init_key, 3)
    assert params["hidden"][0]["w"].shape == (4, 16)
    x = jax.random.normal(x_key, (3,))
    sigmas = jnp.array([0.01, 0.1, 1.0])

    @jax.jit
    def compute(params, x):
        grads = jax.grad(model, argnums=(1, 2))(params, x, 0.3)
        batch = jax.vmap(model, in_axes=(None, 0, 0))(params, jnp.stack([x, x, x]), sigmas)
        pot = Potential.from_energy(fixed, params)
        return (
            model(params, x, 0.5), unscaled(params, x, 0.5), model(params, x, 0.1),
            grads, batch, pot.energy_fn(x),
        )

    e, e_unscaled, e_small, (gx, gs), batch, e_fixed = compute(params, x)
    assert e.shape == ()
    # output scaled by 1/sigma
    np.testing.assert_allclose(e, e_unscaled / 0.5, rtol=1e-6)
    # sigma is an input, not only a scale: E(x, 0.1) != 5 E(x, 0.5)
    assert not np.isclose(e_small, 5 * e)
    assert np.all(np.isfinite(gx)) and np.isfinite(gs)
    # vmap over x and sigma together; the fixed-sigma energy through Potential
    np.testing.assert_allclose(batch[1], e_small, rtol=1e-6)
    np.testing.assert_allclose(e_fixed, e_small, rtol=1e-6)
    Potential.from_energy(fixed, params, example=jnp.zeros(3))  # passes the shape check


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: mlp_energy((128, 128), "relu"), r"activation must be one of \('swish', 'softplus', 'tanh', 'elu'\), got 'relu' \(ReLU is excluded"),
        (lambda: mlp_energy(activation="gelu"), r"activation must be one of .* got 'gelu'$"),
        (lambda: mlp_energy((128, 0)), r"hidden must be a sequence of positive integers, got \(128, 0\)"),
        (lambda: mlp_energy("128"), r"hidden must be a sequence of positive integers, got '128'"),
        (lambda: mlp_energy((12.5,)), r"hidden must be a sequence of positive integers"),
        (lambda: mlp_energy(quadratic=-1.0), r"quadratic must be a finite number >= 0, got -1.0"),
        (lambda: noise_conditional_mlp_energy(scale_by_sigma=1), r"scale_by_sigma must be a bool, got 1"),
        (lambda: mlp_energy().init(jax.random.key(0), 0), r"dim must be an integer >= 1, got 0"),
        (lambda: noise_conditional_mlp_energy().at_sigma(0.0), r"sigma must be a finite Python number > 0, got 0.0"),
        (lambda: noise_conditional_mlp_energy().at_sigma(jnp.array(0.1)), r"sigma must be a finite Python number > 0"),
    ],
)
def test_config_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_shape_errors(keys):
    model = mlp_energy((4,))
    params = model.init(keys[0], 2)
    with pytest.raises(ValueError, match=r"x must be one position of shape \(d,\), got shape \(5, 2\); use jax.vmap"):
        model(params, jnp.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"x must have shape \(2,\) to match params, got shape \(3,\)"):
        model(params, jnp.zeros(3))
    nc = noise_conditional_mlp_energy((4,))
    nc_params = nc.init(keys[0], 2)
    with pytest.raises(ValueError, match=r"sigma must be a scalar, got shape \(2,\)"):
        nc(nc_params, jnp.zeros(2), jnp.ones(2))
    with pytest.raises(ValueError, match=r"x must have shape \(2,\) to match params"):
        nc(nc_params, jnp.zeros(3), 0.1)


# ----------------------------------------------------------------------------- interop
def test_flax_module_through_potential(keys):
    nn = pytest.importorskip("flax.linen")

    class Energy(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(nn.swish(nn.Dense(16)(x)))[0]

    module = Energy()
    x = jnp.array([0.3, -0.7])
    params = module.init(keys[0], x)
    pot = Potential.from_energy(module.apply, params, example=x)
    np.testing.assert_allclose(pot.logdensity_fn(x), -module.apply(params, x), rtol=1e-6)
    expected = -jax.grad(lambda y: module.apply(params, y))(x)
    np.testing.assert_allclose(jax.jit(lambda p, y: p.score(y))(pot, x), expected, rtol=1e-5)


def _call_model(model, x):
    return model(x)


def _softplus(z):
    return jnp.logaddexp(z, 0.0)  # a plain function (Equinox warns on jitted fields)


def test_equinox_module_through_potential(keys):
    eqx = pytest.importorskip("equinox")
    model = eqx.nn.MLP(2, "scalar", 16, 2, activation=_softplus, key=keys[0])
    x = jnp.array([0.3, -0.7])
    params, static = eqx.partition(model, eqx.is_array)
    expected = -jax.jit(jax.grad(lambda p, y: eqx.combine(p, static)(y), argnums=1))(params, x)

    # the module itself as params: fine outside jit and under eqx.filter_jit, which
    # treats the non-array leaves (the activation function) as static ...
    pot = Potential.from_energy(_call_model, params=model, example=x)
    np.testing.assert_allclose(pot.logdensity_fn(x), -model(x), rtol=1e-6)
    np.testing.assert_allclose(eqx.filter_jit(lambda p, y: p.score(y))(pot, x), expected, rtol=1e-5)

    # ... for plain jax.jit keep only the arrays as params
    pot = Potential.from_energy(lambda p, y: eqx.combine(p, static)(y), params, example=x)
    np.testing.assert_allclose(jax.jit(lambda p, y: p.score(y))(pot, x), expected, rtol=1e-5)
