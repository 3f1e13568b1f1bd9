r"""The training loop of :func:`ebm_ppl.fit`: one optimizer step, one compiled chunk of
steps, and the Python driver between chunks.

The driver runs ``steps_per_chunk`` optimizer steps per compiled :func:`run_chunk` call,
so Python runs once per chunk: progress bar, history, checkpoints and Ctrl-C handling
happen between chunks. :func:`run_chunk` is cached by JAX on its static
:class:`ChunkConfig` (energy, objective, optimizer, batch size, chunk length, sharding);
data, parameters, keys and the :class:`Controls` are traced, so a second ``fit`` with the
same three objects, more steps, another seed or new data of the same shape compiles
nothing.

Randomness of step ``t`` is a function of ``(root key, t)`` only
(``jax.random.fold_in``), and chunks never change it: a run interrupted and resumed from
a checkpoint ends bitwise equal to the uninterrupted run.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from ebm_ppl._tree import tree_all_finite
from ebm_ppl._types import Array, Params, PRNGKey
from ebm_ppl.errors import FitDivergenceError
from ebm_ppl.objectives.base import Objective
from ebm_ppl.training.checkpoint import FitCheckpoints
from ebm_ppl.training.result import concat_history

__all__ = ["FitState", "ChunkConfig", "Controls", "RootKeys", "Status", "drive", "run_chunk",
           "status"]


class FitState(NamedTuple):
    """Carry of the training scan (also what a checkpoint holds, with the root key).

    ``best_val_loss`` and ``evals_since_best`` drive early stopping: the lowest held-out
    loss so far (``+inf`` before the first evaluation) and the number of evaluations
    since it improved.
    """

    params: Params
    opt_state: optax.OptState
    objective_state: Any
    step: Array
    bad_count: Array
    first_bad_step: Array
    best_val_loss: Array
    evals_since_best: Array


class RootKeys(NamedTuple):
    """The keys derived from a run's root key."""

    shuffle: PRNGKey
    loss: PRNGKey
    init: PRNGKey
    validation: PRNGKey

    @classmethod
    def from_root(cls, root_key: PRNGKey) -> RootKeys:
        return _root_keys(root_key)


@jax.jit
def _root_keys(root_key: PRNGKey) -> RootKeys:
    """:meth:`RootKeys.from_root` in one dispatch (part of ``fit``'s fixed cost)."""
    shuffle, loss, init = jax.random.split(root_key, 3)
    return RootKeys(shuffle, loss, init, jax.random.fold_in(init, 1))


class ChunkConfig(NamedTuple):
    """Static (hashable) settings of :func:`run_chunk`; ``sharding`` is the
    ``NamedSharding`` of a batch split across devices, or None on one device."""

    energy_fn: Callable
    objective: Objective
    optimizer: optax.GradientTransformation
    batch_size: int
    steps_per_chunk: int
    sharding: Any = None
    #: How steps past the end are skipped: ``"cond"`` or ``"select"``
    #: (:func:`ebm_ppl._platform.fit_padding_mode`).
    padding: str = "cond"


class Controls(NamedTuple):
    """Traced scalars that stop or pace the run (changing them compiles nothing)."""

    end_step: Array
    max_bad_steps: Array
    validate_every: Array
    patience: Array


@functools.partial(jax.jit, static_argnames=("config",))
def initial_state(params: Params, objective_state: Any, config: ChunkConfig) -> FitState:
    """The state before the first step (jitted: one dispatch instead of one per
    optimizer-state leaf, a few ms of ``fit``'s fixed cost)."""
    return FitState(
        params=params,
        opt_state=config.optimizer.init(params),
        objective_state=objective_state,
        step=jnp.zeros((), jnp.int32),
        bad_count=jnp.zeros((), jnp.int32),
        first_bad_step=jnp.full((), -1, jnp.int32),
        best_val_loss=jnp.full((), jnp.inf, jnp.result_type(float)),
        evals_since_best=jnp.zeros((), jnp.int32),
    )


def _filled(struct: Any) -> Any:
    """NaN (floating) or zero (other dtypes) arrays of the given shape structs."""
    def fill(s):
        value = jnp.nan if jnp.issubdtype(s.dtype, jnp.floating) else 0
        return jnp.full(s.shape, value, s.dtype)

    return jax.tree.map(fill, struct)


def _constrain(batch: Array, config: ChunkConfig) -> Array:
    """``batch`` split across the devices of ``config.sharding`` (where its size allows)."""
    if config.sharding is None or batch.shape[0] % config.sharding.mesh.size:
        return batch
    return jax.lax.with_sharding_constraint(batch, config.sharding)


def _evaluate(params, objective_state, batches, key, config: ChunkConfig) -> dict[str, Array]:
    """Held-out loss and metrics: means over the validation batches (state not advanced)."""
    float_dtype = jnp.result_type(float)

    def one(args):
        i, batch = args
        value, (metrics, _) = config.objective.loss(
            params, _constrain(batch, config), jax.random.fold_in(key, i), config.energy_fn,
            objective_state,
        )
        return {"loss": value, **metrics}

    outs = jax.lax.map(one, (jnp.arange(batches.shape[0]), batches))
    return {f"val_{k}": jnp.mean(jnp.asarray(v, float_dtype), axis=0) for k, v in outs.items()}


def _held_out(state: FitState, validation, controls: Controls, config: ChunkConfig):
    """``(outputs, best_val_loss, evals_since_best)``: the held-out evaluation of
    ``state.params`` at steps that are multiples of ``validate_every`` (NaN outputs
    elsewhere, and nothing without ``validation = (batches, key)``)."""
    best, since = state.best_val_loss, state.evals_since_best
    if validation is None:
        return {}, best, since
    do_eval = state.step % controls.validate_every == 0

    def evaluate():
        return _evaluate(state.params, state.objective_state, *validation, config)

    out = jax.lax.cond(do_eval, evaluate, lambda: _filled(jax.eval_shape(evaluate)))
    improved = do_eval & (out["val_loss"] < best)
    best = jnp.where(improved, out["val_loss"].astype(best.dtype), best)
    since = jnp.where(do_eval, jnp.where(improved, 0, since + 1), since)
    return out, best, since


def _train_step(state: FitState, batch: Array, key: PRNGKey, validation, controls: Controls,
                config: ChunkConfig, go: Array | None = None) -> tuple[FitState, dict[str, Array]]:
    """One optax step; skipped (state kept) when the loss, gradient or update is not
    finite. With held-out data the parameters are first evaluated (:func:`_held_out`).
    ``go`` (the select padding mode): False makes the whole step a no-op, in the same
    ``where`` over the parameters and optimizer state as the finiteness guard."""
    held_out, best, since = _held_out(state, validation, controls, config)
    grad_fn = jax.value_and_grad(config.objective.loss, has_aux=True)
    (value, (metrics, objective_state)), grads = grad_fn(
        state.params, _constrain(batch, config), key, config.energy_fn, state.objective_state
    )
    updates, opt_state = config.optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    good = jnp.isfinite(value) & tree_all_finite(grads) & tree_all_finite(params)
    take = good if go is None else good & go

    def keep(new, old):
        return jax.tree.map(lambda a, b: jnp.where(take, a, b), new, old)

    new_state = FitState(
        params=keep(params, state.params),
        opt_state=keep(opt_state, state.opt_state),
        objective_state=keep(objective_state, state.objective_state),
        step=state.step + 1,
        bad_count=jnp.where(good, 0, state.bad_count + 1),
        first_bad_step=jnp.where(
            good, -1, jnp.where(state.bad_count == 0, state.step, state.first_bad_step)
        ),
        best_val_loss=best,
        evals_since_best=since,
    )
    if go is not None:  # the counters of a padding step: unchanged
        counters = ("step", "bad_count", "first_bad_step", "best_val_loss", "evals_since_best")
        new_state = new_state._replace(**{
            name: jnp.where(go, getattr(new_state, name), getattr(state, name))
            for name in counters})
    float_dtype = jnp.result_type(float)
    out = {
        "loss": value.astype(float_dtype),
        "grad_norm": optax.tree.norm(grads).astype(float_dtype),
        "skipped": ~good,
        **{name: jnp.asarray(m) for name, m in metrics.items()},
        **held_out,
    }
    return new_state, out


def is_active(state: FitState, controls: Controls) -> Array:
    """Whether the run goes on: steps left, no divergence, patience not exhausted."""
    return ((state.step < controls.end_step) & (state.bad_count < controls.max_bad_steps)
            & (state.evals_since_best < controls.patience))


class Status(NamedTuple):
    """What the driver reads back after each chunk (one transfer with the history)."""

    step: Array
    bad_count: Array
    active: Array


def _status(state: FitState, controls: Controls) -> Status:
    return Status(state.step, state.bad_count, is_active(state, controls))


#: The :class:`Status` of a state, computed on device in one dispatch.
status = jax.jit(_status)


@functools.partial(jax.jit, static_argnames=("config",))
def run_chunk(state: FitState, source: Any, validation: Any, loss_key: PRNGKey,
              controls: Controls, *,
              config: ChunkConfig) -> tuple[FitState, dict[str, Array], Status]:
    """``config.steps_per_chunk`` steps on the batches of ``source`` (an
    :class:`~ebm_ppl.training.data.ArraySource` or
    :class:`~ebm_ppl.training.data.StreamSource`); steps past the end of the run are
    no-ops whose outputs are NaN (skipped by ``lax.cond``, or with
    ``config.padding == "select"`` computed and discarded). Also returns the new state's
    :class:`Status`."""

    def step(operands):
        return _train_step(*operands, validation, controls, config)

    def skip(operands):
        return operands[0], _filled(jax.eval_shape(step, operands)[1])

    def body(state, x):
        batch, ok = source.next_batch(x)
        key = jax.random.fold_in(loss_key, state.step)
        go = ok & is_active(state, controls)
        if config.padding == "select":  # the state is kept inside the step (one where)
            new, out = _train_step(state, batch, key, validation, controls, config, go)
            return new, jax.tree.map(lambda a, b: jnp.where(go, a, b), out, _filled(out))
        return jax.lax.cond(go, step, skip, (state, batch, key))

    state, out = jax.lax.scan(body, state, source.scan_inputs(),
                              length=config.steps_per_chunk)
    return state, out, _status(state, controls)


class Run(NamedTuple):
    """What :func:`drive` hands back."""

    state: FitState
    history: dict[str, np.ndarray]
    interrupted: bool


def _divergence_error(state: FitState, step: int, max_bad_steps: int, checkpointed: bool,
                      result: Any) -> FitDivergenceError:
    first_bad = int(state.first_bad_step)
    return FitDivergenceError(
        f"the loss or its gradient was not finite for {max_bad_steps} consecutive steps, "
        f"from step {first_bad} to {step - 1}; training stopped (the returned err.result "
        "holds the last good state" + (", and the last checkpoint is kept)" if checkpointed
                                       else ")"),
        step=first_bad,
        result=result,
    )


def _show(bar: Any, chunk: dict[str, np.ndarray], done: int) -> None:
    if bar is None:
        return
    losses = chunk["loss"]
    finite = losses[np.isfinite(losses)]
    bar.update(done)
    bar.set_postfix(loss=f"{finite.mean():.4g}" if finite.size else "nan")


def drive(
    state: FitState,
    next_source: Callable[[int, int], Any],
    validation: Any,
    loss_key: PRNGKey,
    controls: Controls,
    config: ChunkConfig,
    *,
    root_key: PRNGKey,
    history: dict[str, np.ndarray],
    checkpoints: FitCheckpoints | None,
    progress: bool,
    make_result: Callable[[FitState, dict[str, np.ndarray]], Any],
) -> Run:
    """Run chunks until ``controls.end_step``, divergence, early stopping, the end of a
    stream (``next_source(step, wanted)`` returns None) or Ctrl-C.

    Raises
    ------
    FitDivergenceError
        After ``controls.max_bad_steps`` non-finite steps in a row.
    """
    num_steps, max_bad = int(controls.end_step), int(controls.max_bad_steps)
    chunks = [history] if history else []
    now = jax.device_get(status(state, controls))
    step = last_saved = int(now.step)
    interrupted = False
    bar = None
    if progress and num_steps > step:
        bar = tqdm(total=num_steps, initial=step, unit="step",
                   desc=f"fit[{config.objective.name}]")
    try:
        while step < num_steps and bool(now.active):
            source = next_source(step, min(config.steps_per_chunk, num_steps - step))
            if source is None:
                warnings.warn(f"data iterator exhausted after {step} steps; stopping",
                              stacklevel=3)
                break
            new_state, out, new_now = run_chunk(state, source, validation, loss_key,
                                                controls, config=config)
            out, now = jax.device_get((out, new_now))  # the chunk's one transfer to host
            done = int(now.step) - step
            chunks.append({"step": np.arange(step, step + done),
                           **{k: np.asarray(v[:done]) for k, v in out.items()}})
            state, step = new_state, step + done
            _show(bar, chunks[-1], done)
            if int(now.bad_count) >= max_bad:
                raise _divergence_error(state, step, max_bad, checkpoints is not None,
                                        make_result(state, concat_history(chunks)))
            # never checkpoint in the middle of a run of non-finite steps
            finished = step >= num_steps or not bool(now.active)
            if checkpoints is not None and int(now.bad_count) == 0 and (
                step - last_saved >= checkpoints.every or finished
            ):
                checkpoints.save(state, root_key, concat_history(chunks))
                last_saved = step
    except KeyboardInterrupt:
        interrupted = True
        warnings.warn(f"fit interrupted at step {step} of {num_steps}; returning the result "
                      "so far", stacklevel=3)
        if checkpoints is not None and step > last_saved and int(state.bad_count) == 0:
            checkpoints.save(state, root_key, concat_history(chunks))
    finally:
        if bar is not None:
            bar.close()
    return Run(state, concat_history(chunks), interrupted)
