"""Contrastive divergence with parallel-tempering negatives (PT-CD).

The decisive case is a model with one parameter, the weight of the right mode of a
two-Gaussian mixture at ±4 (sd 0.5, so the barrier is 32 nats): the CD gradient in
:math:`\\theta = \\operatorname{logit} w` is exactly ``f - p_hat``, ``f`` the negatives'
fraction in the right mode and ``p_hat`` the data's. MALA chains never cross, so ``f``
stays at the buffer's initial 1/2 and the weight runs away to 1; with parallel-tempering
negatives ``f`` follows the model and the weight settles at ``p_hat`` (the maximum
likelihood estimate), checked by a z-score with the ESS of the iterates.
"""

from __future__ import annotations

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ebm_ppl import kernels
from ebm_ppl.objectives import contrastive_divergence

MU, SD = jnp.array([-4.0, 4.0]), 0.5
NUM_DATA, BATCH, UPDATES = 4000, 128, 600


def energy_fn(theta, x):
    log_w = jnp.stack([jax.nn.log_sigmoid(-theta), jax.nn.log_sigmoid(theta)])
    return -jax.scipy.special.logsumexp(log_w - 0.5 * ((x[0] - MU) / SD) ** 2)


def _data() -> tuple[jax.Array, float]:
    rng = np.random.default_rng(0)
    right = rng.random(NUM_DATA) < 0.7
    x = np.where(right, 4.0, -4.0) + SD * rng.standard_normal(NUM_DATA)
    return jnp.asarray(x[:, None], jnp.float32), float(right.mean())


def _pt(num: int = 4) -> kernels.Kernel:
    betas = kernels.tempered_ladder(num, 50.0)
    return kernels.parallel_tempering(kernels.mala(0.1), betas=betas,
                                      replica_parameters={"step_size": 0.1 / betas})


def _train(kernel, data, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Weights along ``UPDATES`` SGD updates of PCD (no restarts: noise restarts put
    half of the restarted chains in each mode, which biases ``f`` towards 1/2)."""
    objective = contrastive_divergence(kernel, 10, buffer_size=512, num_negatives=BATCH,
                                       reinit_prob=0.0, energy_regularization=0.0)
    optimizer = optax.sgd(0.5)
    theta = jnp.zeros(())
    carry = (theta, optimizer.init(theta), objective.init(jax.random.key(seed), theta, data))

    def update(carry, key):
        theta, opt_state, state = carry
        key_batch, key_loss = jax.random.split(key)
        batch = data[jax.random.choice(key_batch, data.shape[0], (BATCH,))]
        (_, (metrics, state)), grad = jax.value_and_grad(objective.loss, has_aux=True)(
            theta, batch, key_loss, energy_fn, state)
        updates, opt_state = optimizer.update(grad, opt_state, theta)
        theta = optax.apply_updates(theta, updates)
        return (theta, opt_state, state), (jax.nn.sigmoid(theta), metrics)

    _, (weights, metrics) = jax.jit(lambda c, k: jax.lax.scan(update, c, k))(
        carry, jax.random.split(jax.random.key(seed + 1), UPDATES))
    return np.asarray(weights), {k: np.asarray(v) for k, v in metrics.items()}


def test_pt_negatives_learn_the_mode_weight_mala_negatives_do_not():
    data, p_hat = _data()
    weights, metrics = _train(_pt(), data)
    tail = weights[UPDATES // 2:]
    ess = float(az.ess(tail))
    z = (tail.mean() - p_hat) / (tail.std() / np.sqrt(ess))
    assert abs(z) < 4, (tail.mean(), p_hat, ess, z)
    assert 0.3 < metrics["swap_acceptance"].mean() < 0.95
    stuck, _ = _train(kernels.mala(0.1), data)
    # the plain chains' gradient is f - p_hat = 1/2 - 0.7 at every update: weight -> 1
    assert stuck[UPDATES // 2:].min() > 0.95, stuck[-5:]


def test_buffer_keeps_every_replica_and_restarts_them_together():
    data, _ = _data()
    pt = _pt(3)
    objective = contrastive_divergence(pt, 2, buffer_size=64, num_negatives=16, reinit_prob=1.0)
    state = objective.init(jax.random.key(0), jnp.zeros(()), data)
    assert state.buffer.shape == (64, 3, 1)
    assert np.ptp(np.asarray(state.buffer), axis=1).min() > 0  # independent initial noise
    value, (metrics, new) = objective.loss(jnp.zeros(()), data[:16], jax.random.key(1),
                                           energy_fn, state)
    assert np.isfinite(float(value)) and "swap_acceptance" in metrics
    assert new.buffer.shape == (64, 3, 1) and int(new.pointer) == 16
    np.testing.assert_array_equal(new.buffer[16:], state.buffer[16:])
    # with reinit_prob = 1 every replica of a chain starts from the same noise draw; after
    # 2 steps of MALA and swaps they differ, but all lie inside the data range
    low, high = float(data.min()), float(data.max())
    assert np.all(np.abs(np.asarray(new.buffer[:16])) < max(abs(low), abs(high)) + 10)
    assert not np.array_equal(new.buffer[:16], state.buffer[:16])


def test_non_persistent_pt_starts_every_replica_at_the_data():
    data, _ = _data()
    objective = contrastive_divergence(_pt(3), 1, persistent=False)
    state = objective.init(jax.random.key(0), jnp.zeros(()), data)
    assert state.buffer.shape == (0, 3, 1)
    value, (metrics, _) = objective.loss(jnp.zeros(()), data[:32], jax.random.key(1),
                                         energy_fn, state)
    assert np.isfinite(float(value)) and np.isfinite(float(metrics["swap_acceptance"]))


@pytest.mark.parametrize("kernel", [kernels.mala(0.1), kernels.ula(0.05)])
def test_plain_kernels_report_no_swap_metric(kernel):
    data, _ = _data()
    objective = contrastive_divergence(kernel, 1, buffer_size=32)
    state = objective.init(jax.random.key(0), jnp.zeros(()), data)
    assert state.buffer.shape == (32, 1)
    _, (metrics, _) = objective.loss(jnp.zeros(()), data[:8], jax.random.key(1), energy_fn,
                                     state)
    assert "swap_acceptance" not in metrics


def test_each_update_continues_every_replica_from_the_buffer():
    """One tiny step: each chain's replicas come back as a permutation (swaps) of where
    the buffer left them, not K copies of the cold one."""
    data, _ = _data()
    betas = kernels.tempered_ladder(3, 50.0)
    pt = kernels.parallel_tempering(kernels.mala(1e-8), betas=betas)
    objective = contrastive_divergence(pt, 1, buffer_size=32, num_negatives=32,
                                       reinit_prob=0.0)
    state = objective.init(jax.random.key(0), jnp.zeros(()), data)
    _, (_, new) = objective.loss(jnp.zeros(()), data[:32], jax.random.key(1), energy_fn, state)
    np.testing.assert_allclose(np.sort(new.buffer[..., 0], axis=1),
                               np.sort(state.buffer[..., 0], axis=1), atol=1e-3)
