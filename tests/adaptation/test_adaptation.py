"""Tests of :mod:`ebm_ppl.adaptation`, the one warm-up implementation.

* The traced Stan window schedule equals BlackJAX's ``build_schedule`` and a new
  ``num_warmup`` compiles nothing.
* A user-given inverse mass matrix (1-D or 2-D) is the starting point of window
  adaptation (it was overwritten by the identity, and a 2-D one crashed); dense
  adaptation estimates the covariance; ``adapt_mass_matrix=False`` keeps it unchanged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from blackjax.adaptation.window_adaptation import build_schedule

import ebm_ppl
from ebm_ppl import adaptation, kernels
from ebm_ppl.sampling.resume import restore_state

CORRELATION = 0.95
COV = np.array([[1.0, CORRELATION], [CORRELATION, 1.0]])
PRECISION = np.linalg.inv(COV)


def correlated_energy(x):
    return 0.5 * x @ jnp.asarray(PRECISION, x.dtype) @ x


CORRELATED = ebm_ppl.Potential.from_energy(correlated_energy)


# ------------------------------------------------------------------ schedule
def test_window_stage_equals_blackjax_build_schedule():
    """Same (slow, window end) rows as BlackJAX for short (squeezed), default and long
    warm-ups, including the no-window case below 20 steps."""
    stages = jax.jit(jax.vmap(adaptation.window_stage, (0, None)))
    steps = jnp.arange(2100)
    for n in (0, 1, 19, 20, 21, 33, 99, 149, 150, 151, 200, 333, 500, 1000, 2047, 2100):
        expected = np.asarray(build_schedule(n), int).reshape(-1, 2)
        got = np.stack([np.asarray(s, int) for s in stages(steps, n)], axis=-1)[:n]
        np.testing.assert_array_equal(got, expected, err_msg=f"num_warmup={n}")
    np.testing.assert_array_equal(adaptation.warmup_schedule(200),
                                  np.asarray(build_schedule(200), int))


def test_window_stage_traces_once_for_any_num_warmup():
    """``num_warmup`` is traced: other lengths reuse the compiled schedule."""
    traces = []

    @jax.jit
    def stage(step, n):
        traces.append(1)
        return adaptation.window_stage(step, n)

    for n in (150, 151, 1000):
        stage(10, n)
    assert len(traces) == 1


# ------------------------------------------------------------------ mass matrix
def _warm_up(kernel, positions, acceptance_rate=0.8):
    """Run the kernel's default warm-up over a whole warm-up fed with ``positions``."""
    num_warmup = positions.shape[0]

    @jax.jit
    def run(kernel, positions):
        state = kernel.default_warmup.init(kernel, positions[0], num_warmup)

        def body(carry, x):
            kernel, state = carry
            return kernel.default_warmup.update(kernel, state, x, acceptance_rate), kernel

        (kernel, _), history = jax.lax.scan(body, (kernel, state), positions)
        return kernel, history

    return run(kernel, positions)


def _regularised_covariance(draws):
    """Stan's estimate: ``n/(n+5) cov + 5/(n+5) 1e-3 I`` (BlackJAX ``mass_matrix``)."""
    n = draws.shape[0]
    return n / (n + 5.0) * np.cov(draws, rowvar=False) + 5.0 / (n + 5.0) * 1e-3 * np.eye(2)


@pytest.mark.parametrize("given", [np.array([4.0, 0.25]), np.array([[4.0, 0.5], [0.5, 1.0]])])
def test_given_inverse_mass_matrix_starts_window_adaptation(given):
    """A 1-D or 2-D ``inverse_mass_matrix`` is used unchanged through the initial fast
    window and the first slow window (100 steps of a 200-step warm-up), then replaced
    by the estimate of the last slow window (steps 100-149), dense for a 2-D start."""
    draws = np.asarray(jax.random.multivariate_normal(
        jax.random.key(1), jnp.zeros(2), jnp.asarray(COV), (200,)), np.float64)
    kernel = kernels.hmc(0.5, 3, inverse_mass_matrix=given)
    final, history = _warm_up(kernel, jnp.asarray(draws, jnp.float32))
    imm_history = np.asarray(history.parameters["inverse_mass_matrix"])
    np.testing.assert_allclose(imm_history[:100], np.broadcast_to(given, imm_history[:100].shape))
    expected = _regularised_covariance(draws[100:150])
    if given.ndim == 1:
        expected = np.diag(expected)
    np.testing.assert_allclose(final.parameters["inverse_mass_matrix"], expected, rtol=1e-3)
    assert 0 < float(final.parameters["step_size"]) < np.inf


@pytest.mark.slow
def test_dense_mass_adapts_a_dense_matrix_through_sample():
    """``hmc(dense_mass=True)`` through ``sample`` on a Gaussian of correlation 0.95:
    each chain's tuned inverse mass matrix has correlation > 0.8 (sd of the estimate
    from 100 draws is about 0.02), and the default diagonal kernel has none."""
    common = dict(num_samples=20, num_warmup=300, num_chains=2, progress=False, seed=3)
    idata = ebm_ppl.sample(CORRELATED, kernels.hmc(0.3, 5, dense_mass=True), jnp.zeros(2),
                           **common)
    _, tuned, _, _, _ = restore_state(idata, CORRELATED, kernels.hmc(0.3, 5, dense_mass=True))
    imm = np.asarray(tuned.parameters["inverse_mass_matrix"])
    assert imm.shape == (2, 2, 2)
    correlation = imm[:, 0, 1] / np.sqrt(imm[:, 0, 0] * imm[:, 1, 1])
    assert np.all(correlation > 0.8), correlation


def test_adapt_mass_matrix_false_keeps_the_given_matrix():
    """With ``adapt_mass_matrix=False`` warm-up tunes only the step size; the given
    inverse mass matrix is the one sampled with."""
    given = jnp.array([2.0, 0.5])
    kernel = kernels.hmc(0.3, 5, inverse_mass_matrix=given, adapt_mass_matrix=False)
    assert kernel.adaptation == "step_size"
    idata = ebm_ppl.sample(CORRELATED, kernel, jnp.zeros(2), num_samples=20, num_warmup=200,
                           num_chains=2, progress=False, seed=4)
    _, tuned, _, _, _ = restore_state(idata, CORRELATED, kernel)
    np.testing.assert_array_equal(tuned.parameters["inverse_mass_matrix"],
                                  np.broadcast_to(given, (2, 2)))
    assert not np.allclose(tuned.parameters["step_size"], 0.3)


# ------------------------------------------------------------------ other schemes
def test_update_past_num_warmup_changes_nothing_and_last_step_finalises():
    """Dual averaging: the last warm-up update sets the step size to the averaged value
    (``final``), and later updates leave kernel and state unchanged."""
    kernel = kernels.mala(0.5)
    x = jnp.zeros(2)
    warmup = kernel.default_warmup
    state = warmup.init(kernel, x, 3)
    for _ in range(3):
        kernel, state = warmup.update(kernel, state, x, 0.1)
    expected = warmup.final(kernel, state)
    assert float(kernel.parameters["step_size"]) == pytest.approx(
        float(expected.parameters["step_size"]))
    after, after_state = warmup.update(kernel, state, x, 0.9)
    assert float(after.parameters["step_size"]) == float(kernel.parameters["step_size"])
    assert int(after_state.count) == 3


def test_scale_scheme_moves_the_proposal_scale():
    """Robbins–Monro: acceptance above target widens the random-walk scale, below
    narrows it, read through ``Kernel.scale``."""
    walk = kernels.random_walk(1.0)
    warmup = adaptation.robbins_monro()
    assert walk.default_warmup == warmup
    state = warmup.init(walk, jnp.zeros(2), 10)
    wider, _ = warmup.update(walk, state, jnp.zeros(2), 0.9)
    narrower, _ = warmup.update(walk, state, jnp.zeros(2), 0.0)
    assert float(wider.scale) > 1.0 > float(narrower.scale)


def test_unknown_warmup_name_raises():
    with pytest.raises(ValueError, match="warm-up must be one of"):
        adaptation.from_name("fancy")


# ------------------------------------------------------------------ estimate rules
def _one_window(kernel, positions, warmup=None):
    """Feed ``positions`` through a 20-step warm-up (squeezed schedule: steps 3..17 form
    the one slow window); return the inverse mass matrix after it."""
    warmup = kernel.default_warmup if warmup is None else warmup

    def body(carry, x):
        return warmup.update(*carry, x, 0.8), None

    (kernel, _), _ = jax.lax.scan(body, (kernel, warmup.init(kernel, positions[0], 20)),
                                  positions[:18])
    return np.asarray(kernel.parameters["inverse_mass_matrix"], np.float64)


@pytest.mark.parametrize("regularize", [True, False])
def test_window_estimate_regularised_or_plain(regularize):
    """Stan's rule ``n/(n+5) C + 1e-3 * 5/(n+5) I`` by default, the plain sample
    covariance ``C`` with ``window(regularize=False)``; diagonal and dense alike."""
    positions = jax.random.normal(jax.random.key(3), (18, 3)) * jnp.array([1.0, 2.0, 0.5])
    window = np.asarray(positions[3:18], np.float64)
    cov, n = np.cov(window.T), window.shape[0]
    expected = n / (n + 5) * cov + 1e-3 * 5 / (n + 5) * np.eye(3) if regularize else cov
    for dense in (False, True):
        kernel = kernels.hmc(0.1, 3, dense_mass=dense).with_defaults(positions[0])
        got = _one_window(kernel, positions, adaptation.window(regularize=regularize))
        np.testing.assert_allclose(got, expected if dense else np.diag(expected), rtol=1e-4)


def test_mass_blocks_keep_off_block_entries_zero():
    """``window(mass_blocks=...)``: the dense estimate is masked to the blocks and
    diagonal."""
    positions = jax.random.normal(jax.random.key(4), (18, 3)) @ jnp.array(
        [[1.0, 0.5, 0.3], [0.0, 1.0, 0.4], [0.0, 0.0, 1.0]])
    kernel = kernels.hmc(0.1, 3, dense_mass=True).with_defaults(positions[0])
    full = _one_window(kernel, positions)
    masked = _one_window(kernel, positions, adaptation.window(mass_blocks=((0, 2),)))
    mask = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]])
    np.testing.assert_allclose(masked, full * mask, rtol=1e-5)
    assert masked[0, 1] == 0 and abs(full[0, 1]) > 0.05
