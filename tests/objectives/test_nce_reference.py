"""Noise-contrastive estimation against a NumPy reference and its closed form (issue #26).

The reference re-implements the loss
``J = -mean log σ(h(x)) - ν mean log σ(-h(y))``,
``h = -E - log Z - log q - log ν``, for the quadratic energy
``E(x) = ½ (x-μ)ᵀ S (x-μ)``, ``S = (a + aᵀ)/2``, with the noise log density from SciPy
and the parameter gradient written by hand:
``∂J/∂θ = mean (1-σ(h(x))) ∇θE(x) - ν mean σ(h(y)) ∇θE(y)``,
``∂J/∂log Z = mean (1-σ(h(x))) - ν mean σ(h(y))``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from scipy import stats
from scipy.special import expit, log_expit

from ebm_ppl.objectives import nce

ALPHA = 1e-3
DIM = 3
N = 8

PARAMS = {
    "mu": np.array([0.3, -0.5, 0.8]),
    "a": np.array([[1.2, 0.4, -0.3], [0.1, 0.7, 0.2], [-0.5, 0.3, 1.5]]),
}
LOG_Z = 0.7
# correlated data, so the fitted noise's Cholesky factor is far from symmetric
MIX = np.array([[1.0, 0.0, 0.0], [0.9, 0.6, 0.0], [-0.4, 0.8, 0.5]])


def quad_energy(params, x):
    s = 0.5 * (params["a"] + params["a"].T)
    r = x - params["mu"]
    return 0.5 * r @ s @ r


def trainable():
    return {"energy": {k: jnp.asarray(v, jnp.float32) for k, v in PARAMS.items()},
            "log_z": jnp.asarray(LOG_Z, jnp.float32)}


def batch():
    rng = np.random.default_rng(1)
    return (rng.normal(size=(N, DIM)) @ MIX.T + 0.2).astype(np.float32)


def energy_and_param_grads(x):
    s = 0.5 * (PARAMS["a"] + PARAMS["a"].T)
    r = np.asarray(x, np.float64) - PARAMS["mu"]
    sr = r @ s
    return 0.5 * np.sum(sr * r, axis=1), {"mu": -sr, "a": 0.5 * r[:, :, None] * r[:, None, :]}


def nce_reference(x, y, log_q_x, log_q_y, nu):
    e_x, g_x = energy_and_param_grads(x)
    e_y, g_y = energy_and_param_grads(y)
    h_x = -e_x - LOG_Z - log_q_x - np.log(nu)
    h_y = -e_y - LOG_Z - log_q_y - np.log(nu)
    value = -np.mean(log_expit(h_x)) - nu * np.mean(log_expit(-h_y))
    w_x, w_y = 1 - expit(h_x), nu * expit(h_y)
    grads = {"log_z": np.mean(w_x) - np.mean(w_y)}
    for name in ("mu", "a"):
        shape = (-1,) + (1,) * (g_x[name].ndim - 1)
        g = np.mean(w_x.reshape(shape) * g_x[name], 0) - np.mean(w_y.reshape(shape) * g_y[name], 0)
        grads[name] = 0.5 * (g + g.T) if name == "a" else g
    return value, grads


def check(value, grads, value_ref, grads_ref):
    np.testing.assert_allclose(float(value), value_ref, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(float(grads["log_z"]), grads_ref["log_z"], rtol=2e-5, atol=2e-5)
    for name in ("mu", "a"):
        np.testing.assert_allclose(np.asarray(grads["energy"][name]), grads_ref[name],
                                   rtol=2e-5, atol=2e-5, err_msg=name)


def test_nce_with_fitted_gaussian_noise_matches_numpy_reference():
    """Default noise: N(mean, cov) fitted to the data (unbiased covariance, relative ridge
    1e-6), drawn as mean + L z with L L^T = cov and z from the loss key."""
    nu = 3
    x = batch()
    data = (np.random.default_rng(2).normal(size=(50, DIM)) @ MIX.T).astype(np.float32)
    objective = nce(noise_ratio=nu)
    state = objective.init(jax.random.key(0), trainable(), data)
    key = jax.random.key(4)
    (value, _), grads = jax.jit(jax.value_and_grad(objective.loss, has_aux=True),
                                static_argnums=3)(
        trainable(), jnp.asarray(x), key, quad_energy, state)

    d64 = data.astype(np.float64)
    mean, cov = d64.mean(0), np.cov(d64.T, ddof=1)
    cov = cov + 1e-6 * np.trace(cov) / DIM * np.eye(DIM)
    chol = np.linalg.cholesky(cov)
    z = np.asarray(jax.random.normal(key, (nu * N, DIM), jnp.float32), np.float64)
    y = mean + z @ chol.T
    q = stats.multivariate_normal(mean, cov)
    value_ref, grads_ref = nce_reference(x, y, q.logpdf(x), q.logpdf(y), nu)
    check(value, grads, value_ref, grads_ref)


def test_nce_with_numpyro_noise_matches_numpy_reference():
    nu = 2
    x = batch()
    loc, scale_tril = np.array([0.5, 0.0, -0.5]), 1.5 * MIX
    noise = dist.MultivariateNormal(jnp.asarray(loc, jnp.float32),
                                    scale_tril=jnp.asarray(scale_tril, jnp.float32))
    objective = nce(noise, noise_ratio=nu)
    key = jax.random.key(5)
    (value, _), grads = jax.jit(jax.value_and_grad(objective.loss, has_aux=True),
                                static_argnums=3)(
        trainable(), jnp.asarray(x), key, quad_energy, objective.init(key, trainable()))
    y = np.asarray(noise.sample(key, (nu * N,)), np.float64)
    q = stats.multivariate_normal(loc, scale_tril @ scale_tril.T)
    value_ref, grads_ref = nce_reference(x, y, q.logpdf(x), q.logpdf(y), nu)
    check(value, grads, value_ref, grads_ref)


def test_nce_log_z_is_self_normalising():
    """At the true energy of the data, the NCE gradient in log Z vanishes in expectation
    exactly at the true log normaliser (Gutmann & Hyvärinen): a t-test over K batches,
    with a fixed noise law q unlike the data's (ν = 2). A shift of log Z by 0.2 is
    rejected at this size (the check has power)."""
    k, n, nu = 20, 2000, 2
    s2 = np.array([0.5, 2.0])
    energy = lambda p, x: 0.5 * jnp.sum(x**2 / p)  # noqa: E731
    true_log_z = 0.5 * np.sum(np.log(2 * np.pi * s2))
    objective = nce(dist.Normal(0.0, jnp.array([1.0, 2.5])).to_event(1), noise_ratio=nu)
    grad = jax.grad(lambda c, x, key: objective.loss(
        {"energy": jnp.asarray(s2, jnp.float32), "log_z": c}, x, key, energy)[0])

    def one(key, shift):
        key_data, key_loss = jax.random.split(key)
        x = jnp.sqrt(s2) * jax.random.normal(key_data, (n, 2))
        return grad(jnp.float32(true_log_z) + shift, x, key_loss)

    keys = jax.random.split(jax.random.key(7), k)
    grads = np.asarray(jax.jit(jax.vmap(jax.vmap(one, (0, None)), (None, 0)))(
        keys, jnp.array([0.0, 0.2])), np.float64)  # (shift, batch)

    crit = stats.t.ppf(1 - ALPHA / 4, k - 1)  # two checks
    t = np.abs(grads.mean(1)) / (grads.std(1, ddof=1) / np.sqrt(k))
    assert t[0] < crit, (grads.mean(1), t)
    assert t[1] > crit, (grads.mean(1), t)  # the check has power
