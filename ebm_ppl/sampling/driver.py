"""The chunk driver of :func:`ebm_ppl.sample`: ``vmap`` (chains) × ``lax.scan`` (draws).

* Chains run under ``jax.vmap`` over a batch of kernels (one kernel per chain, so that
  each chain adapts its own step size); steps run under ``jax.lax.scan`` in chunks of a
  fixed number of draws. The Python loop is over chunks only: it moves the progress bar,
  streams draws to host memory, and lets Ctrl-C keep what was finished.
* The random key of chain ``c`` at step ``s`` is ``split(fold_in(key, s))[c]``: draws do
  not depend on the chunk size or the device count, and a run can be resumed bitwise.
* Kernels and potentials are pytrees whose numbers are traced: a second call with the
  same potential function, kernel type and shapes reuses the compiled chunk, whatever
  the seed, init, step size, parameter values, ``num_samples`` or ``num_warmup`` (the
  warm-up schedule is traced, and the draws of a last, partial chunk past the end are
  skipped rather than compiled at another length: by ``lax.cond`` on CPU, by computing
  and discarding them on accelerators, see :func:`ebm_ppl._platform.padding_mode`).
  ``thin == 1`` has its own one-step path; all ``thin > 1`` share one compilation.
* Where the chains live (devices, processes) is :mod:`ebm_ppl.sampling.distributed`'s
  business: the driver only places the set-up chains and gathers each chunk's draws.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from ebm_ppl._platform import padding_mode
from ebm_ppl._types import Array, ArrayTree, PRNGKey
from ebm_ppl.adaptation import Warmup
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.kernels.chains import init_chains, step_chains
from ebm_ppl.kernels.info import to_stats
from ebm_ppl.potential import Potential
from ebm_ppl.sampling.distributed import gather, local_mean

__all__ = ["DEFAULT_CHUNK_SIZE", "Phase", "PhaseResult", "init_chains_and_kernels",
           "run_phase", "step_size_stat", "per_chain_kernels", "progress_bar"]

#: Draws per compiled chunk (progress-bar granularity; fixed so that the number of
#: draws never changes the compiled code).
DEFAULT_CHUNK_SIZE = 100


def per_chain_kernels(kernel: Kernel, position: ArrayTree, num_chains: int) -> Kernel:
    """``kernel`` with its defaults filled in for ``position`` and every numeric
    hyper-parameter broadcast to a leading chain axis (one kernel per chain)."""
    kernel = kernel.with_defaults(position)
    return jax.tree.map(
        lambda leaf: jnp.broadcast_to(jnp.asarray(leaf), (num_chains, *jnp.shape(leaf))), kernel
    )


@partial(jax.jit, static_argnames=("warmup",))
def init_chains_and_kernels(
    kernel: Kernel, pot: Potential, positions: ArrayTree, num_warmup: Array, *,
    warmup: Warmup | None,
) -> tuple[Any, Kernel, Any]:
    """Kernel states, per-chain kernels and (unless ``warmup`` is None, a phase that does
    not adapt) per-chain warm-up states."""
    num_chains = jax.tree.leaves(positions)[0].shape[0]
    states = init_chains(kernel, pot.logdensity_fn, positions)
    kernels = per_chain_kernels(kernel, jax.tree.map(lambda x: x[0], positions), num_chains)
    warmup_states = None
    if warmup is not None:
        warmup_states = jax.vmap(warmup.init, (0, 0, None))(kernels, positions, num_warmup)
    return states, kernels, warmup_states


def step_size_stat(kernels: Kernel, num_chains: int) -> Array:
    """Per-chain step size (random-walk scale for MH; the cold replica's for parallel
    tempering, whose base kernel has one per replica; NaN when the kernel has none)."""
    step_size = kernels.step_size
    base = kernels.parameters.get("kernel")
    if step_size is None and isinstance(base, Kernel) and base.step_size is not None:
        step_size = base.step_size[:, 0]
    if step_size is None:
        return jnp.full((num_chains,), jnp.nan)
    return step_size


def _chain_keys(key: PRNGKey, step: Array, num_chains: int) -> PRNGKey:
    """Keys of all chains at global step ``step`` (independent of chunking/devices)."""
    return jax.random.split(jax.random.fold_in(key, step), num_chains)


def _merge_thin(acc: dict[str, Array], new: dict[str, Array], j: Array) -> dict[str, Array]:
    """Combine stats of thinned steps: mean acceptance, any divergence, last others."""
    out = {}
    for name, value in new.items():
        if name in ("acceptance_rate", "inner_acceptance_rate"):
            out[name] = acc[name] + (value - acc[name]) / (j + 1)
        elif name == "diverging":
            out[name] = acc[name] | value
        else:
            out[name] = value
    return out


def _transitions(kernels, pot, states, key, base_step, thin, num_chains):
    """``thin`` transitions of all chains (one when ``thin`` is None) and their stats."""
    def one(states, step):
        new_states, info = step_chains(kernels, pot.logdensity_fn, states,
                                       _chain_keys(key, step, num_chains), kernel_axis=0)
        return new_states, to_stats(info)

    if thin is None:
        return one(states, base_step)
    struct = jax.eval_shape(one, states, base_step)[1]

    def body(j, inner):
        states, stats = inner
        new_states, new_stats = one(states, base_step + j)
        return new_states, _merge_thin(stats, new_stats, j)

    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), struct)
    return jax.lax.fori_loop(0, thin, body, (states, zeros))


@partial(jax.jit, static_argnames=("chunk_size", "warmup", "padding"))
def _run_chunk(
    kernels: Kernel,
    pot: Potential,
    states: Any,
    warmup_states: Any,
    key: PRNGKey,
    first_step: Array,
    num_valid: Array,
    thin: Array | None,
    *,
    chunk_size: int,
    warmup: Warmup | None,
    padding: str = "cond",
):
    """Run ``chunk_size`` draws (``thin`` kernel steps each) of all chains; the draws
    come back chain first, ``(chain, draw, ...)``.

    ``warmup`` is None (no adaptation) or the warm-up whose per-chain states are
    ``warmup_states``.
    ``thin=None`` means one step per draw (no inner loop); any other value is traced, so
    all thinning factors > 1 share one compilation. Draws with index ``>= num_valid``
    (the padding of a last, partial chunk) leave the carry unchanged: skipped by
    ``lax.cond`` (``padding="cond"``) or computed and discarded (``"select"``; see
    :func:`ebm_ppl._platform.padding_mode`); their outputs are never read.
    """
    num_chains = jax.tree.leaves(states)[0].shape[0]

    def advance(carry, index):
        states, kernels, warmup_states = carry
        base_step = first_step + index * (1 if thin is None else thin)
        new_states, stats = _transitions(kernels, pot, states, key, base_step, thin, num_chains)
        out = {"position": new_states.position, "lp": new_states.logdensity, **stats}
        new_kernels, new_warmup_states = kernels, warmup_states
        if warmup is not None:
            out["step_size"] = step_size_stat(kernels, num_chains)  # sampling: added once
            new_kernels, new_warmup_states = jax.vmap(warmup.update)(
                kernels, warmup_states, warmup.observe(new_states), stats["acceptance_rate"],
                stats
            )
        return (new_states, new_kernels, new_warmup_states), out

    def select(carry, index):
        new_carry, out = advance(carry, index)
        valid = index < num_valid
        return jax.tree.map(lambda new, old: jnp.where(valid, new, old), new_carry, carry), out

    def draw(carry, index):
        if padding == "select":
            return select(carry, index)
        out_struct = jax.eval_shape(advance, carry, index)[1]

        def skip(carry, index):  # padding draws of the last chunk: no compute
            return carry, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_struct)

        return jax.lax.cond(index < num_valid, advance, skip, carry, index)

    carry, draws = jax.lax.scan(draw, (states, kernels, warmup_states), jnp.arange(chunk_size))
    # chain first, as ArviZ stores them: moving the axis here is one fused device op, on
    # the host a strided copy (slow when a draw holds only a few numbers)
    return (*carry, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), draws))


class Phase(NamedTuple):
    """Where a phase (warm-up or sampling) runs.

    Attributes
    ----------
    key
        The phase's root key (chain ``c`` at step ``s``: ``split(fold_in(key, s))[c]``).
    first_step
        Global index of the phase's first kernel step.
    num_draws
        Draws of the phase (each ``thin`` kernel steps).
    thin
        Kernel steps per draw.
    chunk_size
        Draws per compiled chunk.
    warmup
        The warm-up that adapts during the phase, or None.
    keep
        Whether the phase's draws are copied to the host.
    """

    key: PRNGKey
    first_step: int
    num_draws: int
    thin: int
    chunk_size: int
    warmup: Warmup | None
    keep: bool


class PhaseResult(NamedTuple):
    """What :func:`run_phase` returns.

    Attributes
    ----------
    states, kernels, warmup_states
        The carry after the last finished chunk.
    draws
        The host-side draws as ``(chain, draw, ...)`` arrays (a dict with
        ``"position"`` and the statistics), or None when the phase keeps nothing or
        nothing finished.
    done
        Draws finished.
    interrupted
        Whether Ctrl-C stopped the loop (the running chunk was finished and kept).
    """

    states: Any
    kernels: Kernel
    warmup_states: Any
    draws: dict[str, Any] | None
    done: int
    interrupted: bool


class _HostDraws:
    """The kept draws of one phase on the host, chain first: ``(chain, draw, ...)`` arrays
    allocated at the first chunk and filled in place (one copy per chunk, no
    concatenation afterwards)."""

    def __init__(self, num_draws: int) -> None:
        self.num_draws = num_draws
        self.buffers: list[np.ndarray] | None = None
        self.treedef: Any = None

    def store(self, chunk: Any, start: int, num_valid: int) -> None:
        """Copy the first ``num_valid`` draws of a ``(chain, draw, ...)`` chunk (all
        processes' chains: :func:`~ebm_ppl.sampling.distributed.gather`) to draws
        ``start:start + num_valid``. Idempotent, so a chunk may be stored twice."""
        leaves, self.treedef = jax.tree.flatten(gather(chunk))
        if self.buffers is None:
            self.buffers = [np.empty((leaf.shape[0], self.num_draws, *leaf.shape[2:]),
                                     leaf.dtype) for leaf in leaves]
        for buffer, leaf in zip(self.buffers, leaves):
            buffer[:, start:start + num_valid] = leaf[:, :num_valid]

    def result(self, done: int) -> dict[str, Any] | None:
        """The ``done`` first draws as the chunk's pytree of arrays (None if none)."""
        if self.buffers is None or done == 0:
            return None
        leaves = self.buffers if done == self.num_draws else [b[:, :done] for b in self.buffers]
        return jax.tree.unflatten(self.treedef, leaves)


def run_phase(phase: Phase, kernels: Kernel, pot: Potential, states: Any, warmup_states: Any,
              bar: Any, postprocess: Any) -> PhaseResult:
    """Loop over chunks of one phase; a :class:`PhaseResult`.

    Chunk ``i + 1`` is dispatched before chunk ``i`` is copied to the host, so the copy
    (and the progress bar) overlap the computation; the draws do not depend on it.
    """
    chunk = phase.chunk_size
    num_chunks = math.ceil(phase.num_draws / chunk) if phase.num_draws else 0
    thin = None if phase.thin == 1 else jnp.asarray(phase.thin)
    padding = padding_mode(jax.tree.leaves(states)[0].devices())
    host = _HostDraws(phase.num_draws) if phase.keep else None
    latest = kept = (states, kernels, warmup_states)
    done, interrupted, pending = 0, False, None

    def finish(pending):
        """Host side of a dispatched chunk: store its draws, move the bar."""
        carry, draws, start, n_valid = pending
        if host is not None:
            host.store(draws, start, n_valid)
        else:
            jax.block_until_ready(carry[0])
        if bar is not None:
            bar.update(n_valid * phase.thin)  # the bar counts kernel steps
            # this process's chains only: not a collective, so a bar may run on one
            # process of a jax.distributed job alone
            rate = local_mean(draws["acceptance_rate"], n_valid)
            bar.set_postfix(acc=f"{rate:.2f}", refresh=False)
        return carry, start + n_valid

    try:
        for index in range(num_chunks):
            start = index * chunk
            n_valid = min(chunk, phase.num_draws - start)
            # Python ints: passed to the compiled chunk without a blocking device op
            states, kernels, warmup_states = latest
            *latest, draws = _run_chunk(
                kernels, pot, states, warmup_states, phase.key,
                phase.first_step + start * phase.thin, n_valid, thin,
                chunk_size=chunk, warmup=phase.warmup, padding=padding,
            )
            if host is not None and postprocess is not None:
                draws["position"] = postprocess(draws["position"])
            if pending is not None:
                kept, done = finish(pending)
            pending = (tuple(latest), draws, start, n_valid)
        if pending is not None:
            kept, done = finish(pending)
            pending = None
    except KeyboardInterrupt:
        interrupted = True
        if pending is not None:  # dispatched before Ctrl-C: finish it (a 2nd Ctrl-C aborts)
            kept, done = finish(pending)
    collected = host.result(done) if host is not None else None
    return PhaseResult(*kept, collected, done, interrupted)


def progress_bar(enabled: bool, total: int, name: str) -> Any:
    """A tqdm bar counting kernel steps, or None."""
    if not enabled:
        return None
    return tqdm(total=total, desc=name, unit="step", leave=True)
