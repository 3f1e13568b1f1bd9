"""Score-matching objectives against NumPy references and closed forms (issue #26).

Every loss is re-implemented in NumPy (float64) for the quadratic energy
``E(x) = ½ (x-μ)ᵀ S (x-μ)``, ``S = (a + aᵀ)/2``, whose input gradient ``S (x-μ)`` and
Hessian ``S`` are written by hand, as are the loss gradients with respect to ``μ`` and
``a``. Each objective is evaluated on one small fixed batch with its noise, levels and
projections drawn from the same keys as the objective draws them, and compared with the
reference at float32 precision. The parameters are far from any optimum and the matrix
``S`` is not diagonal, so no term of a loss can vanish by accident.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from ebm_ppl.objectives import (
    denoising_score_matching,
    score_matching,
    sliced_score_matching,
)

ALPHA = 1e-3
DIM = 3
N = 8
RTOL, ATOL = 2e-5, 2e-5  # float32 against float64, on O(1) quantities


def quad_energy(params, x):
    """E(x) = ½ (x-μ)ᵀ S (x-μ) with S the symmetric part of ``a``."""
    s = 0.5 * (params["a"] + params["a"].T)
    r = x - params["mu"]
    return 0.5 * r @ s @ r


def cond_energy(params, x, sigma):
    """A noise-conditional energy that is *not* the exact noisy-data energy:
    E(x, σ) = g(σ) · ½ (x-μ)ᵀ S (x-μ), g(σ) = exp(-σ)."""
    return jnp.exp(-sigma) * quad_energy(params, x)


def cond_factor(sigma):
    return np.exp(-np.asarray(sigma, np.float64))


PARAMS = {
    "mu": np.array([0.3, -0.5, 0.8]),
    "a": np.array([[1.2, 0.4, -0.3], [0.1, 0.7, 0.2], [-0.5, 0.3, 1.5]]),
}


def jax_params():
    return {k: jnp.asarray(v, jnp.float32) for k, v in PARAMS.items()}


def np_sym(a):
    return 0.5 * (a + a.T)


def batch():
    rng = np.random.default_rng(0)
    return (1.5 * rng.normal(size=(N, DIM)) + 0.4).astype(np.float32)


def grads_from(g_mu, g_s):
    """Gradient pytree from ∂L/∂μ and ∂L/∂S (S's entries taken as free): ∂L/∂a = sym."""
    return {"mu": g_mu, "a": np_sym(g_s)}


def check(objective, energy, key, value_ref, grads_ref, x=None):
    x = batch() if x is None else x
    # eager, not jitted: on these tiny graphs op-by-op dispatch is far cheaper than a compile
    fn = jax.value_and_grad(objective.loss, has_aux=True)
    (value, (metrics, _)), grads = fn(jax_params(), jnp.asarray(x), key, energy)
    np.testing.assert_allclose(float(value), value_ref, rtol=RTOL, atol=ATOL)
    for name in ("mu", "a"):
        np.testing.assert_allclose(np.asarray(grads[name]), grads_ref[name], rtol=RTOL,
                                   atol=ATOL, err_msg=name)
    return metrics


# ------------------------------------------------------------------------- exact SM
def sm_reference(x):
    """½‖S r‖² − tr S per example, and its parameter gradient."""
    s, mu = np_sym(PARAMS["a"]), PARAMS["mu"]
    r = x.astype(np.float64) - mu
    sr = r @ s  # rows S r_i
    values = 0.5 * np.sum(sr**2, axis=1) - np.trace(s)
    g_mu = -np.mean(sr @ s, axis=0)
    g_s = np.mean(sr[:, :, None] * r[:, None, :], axis=0) - np.eye(DIM)
    return values.mean(), grads_from(g_mu, g_s)


def test_score_matching_matches_numpy_reference():
    """Smoothed SM (σ = 0.5): exact SM of x + σ z, z drawn from the key's first subkey."""
    key, sigma = jax.random.key(11), 0.5
    key_noise, _ = jax.random.split(key)
    x = batch() + sigma * np.asarray(jax.random.normal(key_noise, (N, DIM), jnp.float32))
    value_ref, grads_ref = sm_reference(x)
    metrics = check(score_matching(sigma=sigma), quad_energy, key, value_ref, grads_ref)
    np.testing.assert_allclose(metrics["laplacian"], np.trace(np_sym(PARAMS["a"])), rtol=1e-6)


# ------------------------------------------------------------------------- SSM
def ssm_reference(x, v, variance_reduced):
    """SSM per example with projections v (n, M, d), and its parameter gradient."""
    s, mu = np_sym(PARAMS["a"]), PARAMS["mu"]
    r = x.astype(np.float64) - mu
    sr = r @ s
    quad = np.einsum("npi,ij,npj->np", v, s, v).mean(axis=1)
    g_s_quad = np.einsum("npi,npj->ij", v, v) / (v.shape[0] * v.shape[1])  # mean v vᵀ
    if variance_reduced:
        first = 0.5 * np.sum(sr**2, axis=1)
        g_mu = -np.mean(sr @ s, axis=0)
        g_s = np.mean(sr[:, :, None] * r[:, None, :], axis=0)
    else:
        proj = np.einsum("npi,ni->np", v, sr)  # vᵀ S r
        first = np.mean(0.5 * proj**2, axis=1)
        g_mu = -np.mean(np.einsum("np,npi->ni", proj, v @ s), axis=0) / v.shape[1]
        g_s = np.mean(np.einsum("np,npi,nj->nij", proj, v, r), axis=0) / v.shape[1]
    return np.mean(first - quad), grads_from(g_mu, g_s - g_s_quad)


@pytest.mark.parametrize("projection, variance_reduced, sigma", [
    ("gaussian", True, 0.0), ("rademacher", False, 0.0), ("gaussian", False, 0.4)])
def test_sliced_score_matching_matches_numpy_reference(variance_reduced, projection, sigma):
    m = 4
    key = jax.random.key(5)
    x = batch()
    key_v = key
    if sigma > 0:
        key_noise, key_v = jax.random.split(key)
        x = x + sigma * np.asarray(jax.random.normal(key_noise, x.shape, jnp.float32))
    shape = (N, m, DIM)
    # documented projections: standard normal or ±1 entries, E[vvᵀ] = I (not normalised)
    v = (jax.random.normal(key_v, shape, jnp.float32) if projection == "gaussian"
         else jax.random.rademacher(key_v, shape, jnp.float32))
    value_ref, grads_ref = ssm_reference(x, np.asarray(v, np.float64), variance_reduced)
    objective = sliced_score_matching(m, variance_reduced, projection=projection, sigma=sigma)
    check(objective, quad_energy, key, value_ref, grads_ref)


# ------------------------------------------------------------------------- DSM
def dsm_reference(x, z, sig, multi, conditional):
    """DSM with noise z (n, d) and per-example levels sig (n,), and its gradient."""
    s, mu = np_sym(PARAMS["a"]), PARAMS["mu"]
    sig = sig.astype(np.float64)[:, None]
    g = cond_factor(sig) if conditional else np.ones_like(sig)
    r = x.astype(np.float64) + sig * z - mu
    res = g * (r @ s) - z / sig
    w = sig**2 if multi else np.ones_like(sig)
    values = 0.5 * w[:, 0] * np.sum(res**2, axis=1)
    g_mu = -np.mean(w * g * (res @ s), axis=0)
    g_s = np.mean((w * g)[:, :, None] * res[:, :, None] * r[:, None, :], axis=0)
    return values.mean(), grads_from(g_mu, g_s)


def dsm_draws(key, levels, n=N):
    """Noise and levels as the objective draws them from its key."""
    key_noise, key_level = jax.random.split(key)
    z = np.asarray(jax.random.normal(key_noise, (n, DIM), jnp.float32), np.float64)
    if len(levels) == 1:
        return z, np.full(n, levels[0])
    idx = np.asarray(jax.random.randint(key_level, (n,), 0, len(levels)))
    return z, np.asarray(levels, np.float32)[idx]


def test_single_scale_dsm_matches_numpy_reference():
    key = jax.random.key(3)
    z, sig = dsm_draws(key, [0.3])
    value_ref, grads_ref = dsm_reference(batch(), z, sig, multi=False, conditional=False)
    metrics = check(denoising_score_matching(0.3), quad_energy, key, value_ref, grads_ref)
    np.testing.assert_allclose(metrics["sigma"], 0.3, rtol=1e-6)


@pytest.mark.parametrize("conditional", [False, True])
def test_multiscale_dsm_matches_numpy_reference(conditional):
    """The σ²-weighted multi-scale loss at a fixed batch, noise and levels, for a model
    that is not exact at any level (so every weighting gives a different value)."""
    levels = [1.0, 0.5, 0.2]
    n = 16
    key = jax.random.key(8)
    z, sig = dsm_draws(key, levels, n)
    assert len(set(sig.tolist())) == 3  # the batch holds every level
    x = np.concatenate([batch(), batch()[::-1] * 0.7])
    value_ref, grads_ref = dsm_reference(x, z, sig, multi=True, conditional=conditional)
    objective = denoising_score_matching(levels, noise_conditional=conditional)
    energy = cond_energy if conditional else quad_energy
    metrics = check(objective, energy, key, value_ref, grads_ref, x=x)
    np.testing.assert_allclose(metrics["sigma"], sig.mean(), rtol=1e-6)


def test_multiscale_dsm_minimiser_closed_form():
    """Closed form for a single (not noise-conditional) Gaussian energy ½ p x² across
    levels σ_ℓ on data N(0, s²): the σ²-weighted loss is, in expectation,
    (1/L) Σ_ℓ ½ [σ_ℓ² (s² + σ_ℓ²) p² − 2 σ_ℓ² p + 1], minimised at
    p* = Σ σ_ℓ² / Σ σ_ℓ² (s² + σ_ℓ²) (0.520 here; unweighted 0.647, σ-weighted 0.559).

    For a fixed key the loss is exactly quadratic in p, so its minimiser is read off
    three evaluations; K independent batches give K minimisers, t-tested against p*.
    The ``sigma`` metric checks that each example draws its level uniformly among all L
    (mean of the levels, within its Monte-Carlo error over the K n draws)."""
    levels = np.array([1.0, 0.3])
    s2, n, k = 1.0, 20_000, 20
    p_star = np.sum(levels**2) / np.sum(levels**2 * (s2 + levels**2))
    objective = denoising_score_matching(levels.tolist())
    energy = lambda p, x: 0.5 * p * jnp.sum(x**2)  # noqa: E731

    def minimiser(key):
        key_data, key_loss = jax.random.split(key)
        x = np.sqrt(s2) * jax.random.normal(key_data, (n, 1))
        loss = lambda p: objective.loss(p, x, key_loss, energy)[0]  # noqa: E731
        c, plus, minus = loss(0.0), loss(1.0), loss(-1.0)
        a = 0.5 * (plus + minus) - c
        b = 0.5 * (minus - plus)
        return b / (2 * a), objective.loss(0.0, x, key_loss, energy)[1][0]["sigma"]

    p_hat, sigma_mean = jax.jit(jax.vmap(minimiser))(jax.random.split(jax.random.key(6), k))
    p_hat = np.asarray(p_hat, np.float64)
    t = abs(p_hat.mean() - p_star) / (p_hat.std(ddof=1) / np.sqrt(k))
    assert t < stats.t.ppf(1 - ALPHA / 4, k - 1), (p_hat.mean(), p_star, t)  # two checks
    z = abs(np.mean(sigma_mean) - levels.mean()) / (levels.std() / np.sqrt(k * n))
    assert z < stats.norm.ppf(1 - ALPHA / 4), (np.mean(sigma_mean), z)
