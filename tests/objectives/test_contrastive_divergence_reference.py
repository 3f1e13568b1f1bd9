"""Contrastive divergence against its defining formula and the replay buffer's laws (issue #26).

The energy is the quadratic ``E(x) = ½ (x-μ)ᵀ S (x-μ)``, ``S = (a + aᵀ)/2``, whose parameter
gradient is written by hand: ``∇_μ E = -S (x-μ)``, ``∇_a E = ½ (x-μ)(x-μ)ᵀ``. The CD
gradient must be the data mean of ``∇θE`` minus the negatives' mean (plus the energy
penalty's ``2αE∇θE`` terms), with the negatives taken as constants: the chains are not
differentiated through.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from ebm_ppl.kernels import ula
from ebm_ppl.objectives import contrastive_divergence

ALPHA = 1e-3
DIM = 3

PARAMS = {
    "mu": np.array([0.3, -0.5, 0.8]),
    "a": np.array([[1.2, 0.4, -0.3], [0.1, 0.7, 0.2], [-0.5, 0.3, 1.5]]),
}


def quad_energy(params, x):
    s = 0.5 * (params["a"] + params["a"].T)
    r = x - params["mu"]
    return 0.5 * r @ s @ r


def jax_params():
    return {k: jnp.asarray(v, jnp.float32) for k, v in PARAMS.items()}


def energy_and_param_grads(x):
    """E(x_i) and ∇θE(x_i) per row, by hand (float64)."""
    s = 0.5 * (PARAMS["a"] + PARAMS["a"].T)
    r = np.asarray(x, np.float64) - PARAMS["mu"]
    sr = r @ s
    energy = 0.5 * np.sum(sr * r, axis=1)
    return energy, {"mu": -sr, "a": 0.5 * r[:, :, None] * r[:, None, :]}


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_cd_gradient_is_data_minus_negatives(alpha):
    """value = mean E(data) - mean E(neg) + α (mean E(data)² + mean E(neg)²) and its
    gradient mean ∇θE(data) - mean ∇θE(neg) + 2α (mean E∇θE(data) + mean E∇θE(neg)),
    the negatives (read back from the buffer) held fixed."""
    n = 16
    data = 1.5 * jax.random.normal(jax.random.key(0), (n, DIM)) + 0.5
    objective = contrastive_divergence(ula(0.05), 2, buffer_size=n, reinit_prob=0.0,
                                       energy_regularization=alpha)
    state = objective.init(jax.random.key(1), jax_params(), data)
    (value, (metrics, new_state)), grads = jax.jit(
        jax.value_and_grad(objective.loss, has_aux=True), static_argnums=3)(
        jax_params(), data, jax.random.key(2), quad_energy, state)
    negatives = np.asarray(new_state.buffer)  # pointer 0, num_negatives = buffer_size
    assert not np.allclose(negatives, np.asarray(state.buffer))  # the chains moved

    e_pos, g_pos = energy_and_param_grads(data)
    e_neg, g_neg = energy_and_param_grads(negatives)
    value_ref = e_pos.mean() - e_neg.mean() + alpha * (np.mean(e_pos**2) + np.mean(e_neg**2))
    np.testing.assert_allclose(float(value), value_ref, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(metrics["energy_positive"], e_pos.mean(), rtol=2e-5)
    np.testing.assert_allclose(metrics["energy_negative"], e_neg.mean(), rtol=2e-5)
    assert float(metrics["acceptance_rate"]) == 1.0  # ULA has no rejection
    for name in ("mu", "a"):
        pos, neg = g_pos[name], g_neg[name]
        expected = pos.mean(0) - neg.mean(0) + 2 * alpha * (
            np.mean(e_pos.reshape((n,) + (1,) * (pos.ndim - 1)) * pos, axis=0)
            + np.mean(e_neg.reshape((n,) + (1,) * (neg.ndim - 1)) * neg, axis=0))
        if name == "a":
            expected = 0.5 * (expected + expected.T)
        np.testing.assert_allclose(np.asarray(grads[name]), expected, rtol=2e-5, atol=2e-5,
                                   err_msg=name)


def test_pcd_restarts_chains_with_reinit_prob():
    """Each chain read from the buffer is restarted from noise with probability
    ``reinit_prob`` (binomial z-check) and otherwise continues from its buffer slot."""
    n, p = 4000, 0.2
    data = jax.random.uniform(jax.random.key(0), (64, 1))  # noise range within [0, 1]
    objective = contrastive_divergence(ula(1e-8), 1, buffer_size=n, reinit_prob=p)
    state = objective.init(jax.random.key(1), PARAMS["mu"][:1], data)
    state = state._replace(buffer=jnp.full_like(state.buffer, 50.0))
    energy = lambda mu, x: 0.5 * jnp.sum((x - mu) ** 2)  # noqa: E731
    _, (_, new_state) = jax.jit(objective.loss, static_argnums=3)(
        jnp.zeros(1), jnp.zeros((n, 1)), jax.random.key(2), energy, state)
    buffer = np.asarray(new_state.buffer)[:, 0]
    restarted = buffer < 2.0
    np.testing.assert_allclose(buffer[~restarted], 50.0, atol=1e-3)  # kept, barely moved
    assert np.all((buffer[restarted] > -1e-3) & (buffer[restarted] < 1 + 1e-3))
    z = abs(restarted.mean() - p) / np.sqrt(p * (1 - p) / n)
    assert z < stats.norm.ppf(1 - ALPHA / 2), (restarted.mean(), p, z)


def test_pcd_noise_is_uniform_over_the_data_range():
    """Without an ``init_distribution`` the buffer starts uniform over [min, max] of the
    data, per coordinate (Kolmogorov-Smirnov, two coordinates)."""
    data = jnp.array([[-3.0, 2.0], [5.0, 4.0], [0.0, 2.5]])
    objective = contrastive_divergence(ula(0.1), 1, buffer_size=2000)
    state = objective.init(jax.random.key(3), jnp.zeros(2), data)
    buffer = np.asarray(state.buffer, np.float64)
    low, high = np.array([-3.0, 2.0]), np.array([5.0, 4.0])
    np.testing.assert_allclose(state.low, low)
    np.testing.assert_allclose(state.high, high)
    for i in range(2):
        ks = stats.kstest(buffer[:, i], stats.uniform(low[i], high[i] - low[i]).cdf)
        assert ks.pvalue > ALPHA / 2, (i, ks)
