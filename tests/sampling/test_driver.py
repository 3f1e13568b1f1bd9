"""``ebm_ppl.sample``'s chunk driver against an independent reference.

The reference is a hand-written ``jax.lax.scan`` over the kernel's own ``init`` and
``step`` with the documented key rule: the key of chain ``c`` at step ``s`` of a phase
is ``split(fold_in(phase_key, s), num_chains)[c]``, the phase keys being
``split(key(seed), 3) = (init, warm-up, sampling)``. Draw ``i`` of a run thinned by
``thin`` is the state after step ``(i + 1) * thin - 1``; the stored statistics are the
log density of that state, the mean acceptance rate and any divergence of its ``thin``
steps. Chunking (``chunk_size``, a partial last chunk, both padding modes) must not
change any of it, and ``resume`` continues the step count and the key stream.

The compiled programs differ (chunked scan with a ``cond`` or a select, a thinning
loop), so the draws are compared to float32 rounding (``rtol=1e-5``); every bug tested
here (a key reused, a step skipped or repeated, a draw misplaced) moves draws by O(1).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ebm_ppl
from ebm_ppl import kernels
from ebm_ppl.sampling import driver

PRECISION = jnp.array([1.0, 3.0])
POT = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(PRECISION * x**2))
INIT = jnp.array([[2.0, -1.0], [0.5, 1.5], [-1.0, 0.0]])  # a batch: no jitter
NUM_CHAINS = INIT.shape[0]
TOL = dict(rtol=1e-5, atol=1e-6)
#: One kernel and chunk size for every test, so the chunk is compiled once per thinning
#: path and padding mode. MALA: accept/reject, so the acceptance rate varies (about a
#: third at this step size); the compiled programs agree to rounding (bitwise on CPU),
#: so no accept/reject decision flips.
KERNEL = kernels.mala(0.9)
CHUNK = 10


def _phase_key(seed: int, phase: int) -> jax.Array:
    """``split(key(seed), 3)[phase]``: 0 init, 1 warm-up, 2 sampling."""
    return jax.random.split(jax.random.key(seed), 3)[phase]


NUM_REF_STEPS = 68  #: one reference length for every test: compiled once per kernel type


@jax.jit
def _reference(kernel, positions, key, steps):
    logdensity_fn = POT.logdensity_fn
    states = jax.vmap(lambda x: kernel.init(x, logdensity_fn))(positions)

    def body(states, step):
        keys = jax.random.split(jax.random.fold_in(key, step), positions.shape[0])
        states, info = jax.vmap(lambda k, s: kernel.step(k, s, logdensity_fn))(keys, states)
        return states, (states.position, states.logdensity, info)

    _, out = jax.lax.scan(body, states, steps)
    return jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), out)


def reference(kernel, positions, key):
    """Steps ``0..NUM_REF_STEPS-1`` of all chains by the documented key rule: the
    positions, log densities and infos after every step, chain first ``(chain, step,
    ...)``."""
    out = _reference(kernel, positions, key, jnp.arange(NUM_REF_STEPS))
    return jax.tree.map(np.asarray, out)


def _sample(kernel, **kwargs):
    options = dict(num_warmup=0, num_chains=NUM_CHAINS, seed=5, progress=False, adapt=False,
                   chunk_size=CHUNK, check_target=False)
    options.update(kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ebm_ppl.sample(POT, kernel, INIT if "resume" not in options else None,
                              **options)


def test_draws_are_the_reference_scan_with_the_documented_keys():
    """25 MALA draws in chunks of 10 (a partial last chunk): positions and ``lp`` are
    the states after steps 0..24 of the reference, chain first."""
    idata = _sample(KERNEL, num_samples=25)
    x, lp, _ = reference(KERNEL, INIT, _phase_key(5, 2))
    assert idata.posterior["x"].dims == ("chain", "draw", "x_dim_0")
    np.testing.assert_allclose(idata.posterior["x"].values, x[:, :25], **TOL)
    np.testing.assert_allclose(idata.sample_stats["lp"].values, lp[:, :25], **TOL)
    # the reference can fail: one step later is another draw
    assert not np.allclose(idata.posterior["x"].values[:, 1:], x[:, :24], **TOL)


def test_sampling_after_warmup_uses_the_sampling_key_from_step_zero():
    """10 warm-up steps (``adapt=False``) run on the warm-up key, then the sampling
    phase restarts the step count on its own key from the last warm-up state."""
    idata = _sample(KERNEL, num_samples=12, num_warmup=10, save_warmup=True)
    warm = reference(KERNEL, INIT, _phase_key(5, 1))[0][:, :10]
    x = reference(KERNEL, jnp.asarray(warm[:, -1]), _phase_key(5, 2))[0][:, :12]
    np.testing.assert_allclose(idata.warmup_posterior["x"].values, warm, **TOL)
    np.testing.assert_allclose(idata.posterior["x"].values, x, **TOL)


def test_thinned_draws_and_stats_are_blocks_of_the_reference():
    """11 draws thinned by 3 over two chunks:
    draw ``i`` is the state after step ``(i + 1) thin - 1``, its acceptance rate the
    mean over the block and ``diverging`` any of the block."""
    n, thin = 11, 3
    idata = _sample(KERNEL, num_samples=n, thin=thin)
    x, lp, info = reference(KERNEL, INIT, _phase_key(5, 2))
    last = slice(thin - 1, n * thin, thin)
    np.testing.assert_allclose(idata.posterior["x"].values, x[:, last], **TOL)
    np.testing.assert_allclose(idata.sample_stats["lp"].values, lp[:, last], **TOL)
    blocks = info.acceptance_rate[:, :n * thin].reshape(NUM_CHAINS, n, thin)
    assert np.ptp(blocks) > 0.1  # the mean is exercised
    np.testing.assert_allclose(idata.sample_stats["acceptance_rate"].values,
                               blocks.mean(axis=2), **TOL)
    divergent = info.is_divergent[:, :n * thin].reshape(NUM_CHAINS, n, thin)
    np.testing.assert_array_equal(idata.sample_stats["diverging"].values,
                                  divergent.any(axis=2))


@pytest.mark.parametrize("padding", ["cond", "select"])
def test_resume_after_a_partial_chunk_continues_the_reference(padding, monkeypatch):
    """25 draws thinned by 2 in chunks of 10 (the last chunk padded), then 9 more with
    ``resume``: the stored state is that of the last draw (step 49, not past it), the
    continuation is steps 50..67 of the reference and ``next_step`` counts kernel
    steps. ``"select"`` is the accelerators' padding mode,
    forced on CPU."""
    monkeypatch.setattr(driver, "padding_mode", lambda devices=None: padding)
    first = _sample(KERNEL, num_samples=25, thin=2)
    assert first.sampler_state.attrs["next_step"] == 50
    rest = _sample(KERNEL, resume=first, num_samples=9, thin=2)
    assert rest.sampler_state.attrs["next_step"] == 68
    x = reference(KERNEL, INIT, _phase_key(5, 2))[0]
    # the stored state is the last draw's, not one past it: a padding draw that advanced
    # the state (steps 50-51 move a chain) would show here
    assert not np.allclose(x[:, 49], x[:, 51], **TOL)
    np.testing.assert_allclose(first.sampler_state["state.position"].values, x[:, 49], **TOL)
    np.testing.assert_allclose(first.posterior["x"].values, x[:, 1:50:2], **TOL)
    np.testing.assert_allclose(rest.posterior["x"].values, x[:, 51::2], **TOL)


def test_sampler_state_names_leaves_by_their_path():
    """The stored state is read back by name (not by leaf index): the position of a
    pytree target is ``state.position.<key>``, tuned parameters ``parameter.parameters.*``."""
    from ebm_ppl.sampling.resume import RestoredState, restore_state

    pot = ebm_ppl.Potential.from_energy(
        lambda p: 0.5 * (jnp.sum(p["a"] ** 2) + p["b"] ** 2),
        example={"a": jnp.zeros(2), "b": jnp.zeros(())})
    kernel = ebm_ppl.kernels.mala(0.3)
    idata = ebm_ppl.sample(pot, kernel, {"a": jnp.zeros(2), "b": jnp.zeros(())}, num_samples=5,
                           num_warmup=10, num_chains=2, progress=False)
    names = set(idata.sampler_state.data_vars)
    assert {"state.position.a", "state.position.b", "state.logdensity",
            "parameter.parameters.step_size", "key_data"} <= names
    restored = restore_state(idata, pot, kernel)
    assert isinstance(restored, RestoredState) and restored.num_chains == 2
    np.testing.assert_array_equal(restored.states.position["b"],
                                  idata.posterior["b"].values[:, -1])
    broken = idata.copy()
    broken.sampler_state = idata.sampler_state.drop_vars("state.logdensity")
    with pytest.raises(ValueError, match="no 'state.logdensity'"):
        restore_state(broken, pot, kernel)
