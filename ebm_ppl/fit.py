r"""``ebm_ppl.fit``: train an energy with any objective, in jitted ``lax.scan`` chunks.

The training loop runs ``steps_per_chunk`` optimizer steps per compiled call (minibatch
indices drawn on device from a key), so Python runs once per chunk: progress bar,
history, checkpoints and Ctrl-C handling happen between chunks. The compiled chunk is
cached by JAX on its static arguments (``energy_fn``, ``objective``, ``optimizer``,
batch size and chunk length; the data, parameters and keys are traced): a second
``fit`` with the same three objects, more steps, another seed or new data of the same
shape compiles nothing. Pass the *same* optimizer object to reuse the compilation:
``optax.adam(1e-3)`` builds new functions on every call.

Randomness of step ``t`` is a function of ``(seed, t)`` only (``jax.random.fold_in``),
and chunks never change it: a run interrupted and resumed from a checkpoint ends
bitwise equal to the uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ebm_ppl._tree import tree_all_finite
from ebm_ppl._types import Array, ArrayTree, Params, PRNGKey
from ebm_ppl._validation import check_int
from ebm_ppl.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    restore_checkpoint,
    save_checkpoint,
)
from ebm_ppl.errors import CheckpointError, FitDivergenceError
from ebm_ppl.objectives.base import Objective

__all__ = ["fit", "FitResult", "FitState", "DEFAULT_OPTIMIZER"]

#: The default optimizer, ``optax.adam(1e-3)``, built once so that repeated ``fit``
#: calls with the default share their compiled steps.
DEFAULT_OPTIMIZER = optax.adam(1e-3)

#: Optimizer steps per compiled ``lax.scan`` chunk.
STEPS_PER_CHUNK = 50


class FitState(NamedTuple):
    """Carry of the training scan (also what a checkpoint holds, with the key)."""

    params: Params
    opt_state: optax.OptState
    objective_state: Any
    step: Array
    bad_count: Array
    first_bad_step: Array


@dataclasses.dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit`.

    Attributes
    ----------
    params
        The energy's trained parameters (use with ``energy_fn(params, x)`` /
        :meth:`ebm_ppl.Potential.from_energy`).
    trained_params
        Everything the optimizer trained; differs from ``params`` for objectives with
        extra parameters (:func:`~ebm_ppl.objectives.nce`: ``trained_params["log_z"]``).
    opt_state, objective_state
        Final optimizer and objective states (CD's replay buffer...).
    history
        ``dict`` of numpy arrays, one entry per step: ``step``, ``loss``, ``grad_norm``,
        ``skipped`` (non-finite step whose update was dropped) and the objective's metrics.
    steps
        Number of optimizer steps done (including resumed ones).
    rng_key
        The run's root key (``jax.random.key(seed)`` unless resumed).
    interrupted
        True when the run stopped on Ctrl-C (``KeyboardInterrupt``).
    objective_name
        ``objective.name``.
    """

    params: Params
    trained_params: Params
    opt_state: Any
    objective_state: Any
    history: dict[str, np.ndarray]
    steps: int
    rng_key: PRNGKey
    interrupted: bool = False
    objective_name: str = "objective"

    def to_inference_data(self):
        """Training curves as an ``arviz.InferenceData`` with one group ``training``.

        Every history entry is a variable with dimension ``step``.
        """
        from ebm_ppl.inference_data import training_inference_data

        steps = self.history.get("step", np.arange(self.steps))
        return training_inference_data(self.history, steps, self.objective_name)


# --------------------------------------------------------------------------- step
def _train_step(
    state: FitState,
    batch: Array,
    key: PRNGKey,
    energy_fn: Callable,
    objective: Objective,
    optimizer: optax.GradientTransformation,
) -> tuple[FitState, dict[str, Array]]:
    grad_fn = jax.value_and_grad(objective.loss, has_aux=True)
    (value, (metrics, objective_state)), grads = grad_fn(
        state.params, batch, key, energy_fn, state.objective_state
    )
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    good = jnp.isfinite(value) & tree_all_finite(grads) & tree_all_finite(params)

    def keep(new, old):
        return jax.tree.map(lambda a, b: jnp.where(good, a, b), new, old)

    new_state = FitState(
        params=keep(params, state.params),
        opt_state=keep(opt_state, state.opt_state),
        objective_state=keep(objective_state, state.objective_state),
        step=state.step + 1,
        bad_count=jnp.where(good, 0, state.bad_count + 1),
        first_bad_step=jnp.where(
            good, -1, jnp.where(state.bad_count == 0, state.step, state.first_bad_step)
        ),
    )
    out = {
        "loss": value.astype(jnp.result_type(float)),
        "grad_norm": optax.tree.norm(grads).astype(jnp.result_type(float)),
        "skipped": ~good,
        **{name: jnp.asarray(m) for name, m in metrics.items()},
    }
    return new_state, out


def _guarded_step(state, batch, key, active, energy_fn, objective, optimizer):
    """``_train_step`` when ``active``, else the unchanged state and NaN outputs."""

    def run(operands):
        return _train_step(*operands, energy_fn, objective, optimizer)

    def skip(operands):
        out_struct = jax.eval_shape(run, operands)[1]
        out = jax.tree.map(
            lambda s: jnp.full(s.shape, jnp.nan, s.dtype)
            if jnp.issubdtype(s.dtype, jnp.floating)
            else jnp.zeros(s.shape, s.dtype),
            out_struct,
        )
        return operands[0], out

    return jax.lax.cond(active, run, skip, (state, batch, key))


def _split_root(root_key: PRNGKey) -> tuple[PRNGKey, PRNGKey, PRNGKey]:
    shuffle_key, loss_key, init_key = jax.random.split(root_key, 3)
    return shuffle_key, loss_key, init_key


_STATIC = ("energy_fn", "objective", "optimizer", "batch_size", "steps_per_chunk")


@functools.partial(jax.jit, static_argnames=_STATIC)
def _array_chunk(
    state: FitState,
    data: Array,
    root_key: PRNGKey,
    end_step: Array,
    max_bad_steps: Array,
    *,
    energy_fn: Callable,
    objective: Objective,
    optimizer: optax.GradientTransformation,
    batch_size: int,
    steps_per_chunk: int,
) -> tuple[FitState, dict[str, Array]]:
    """``steps_per_chunk`` steps on shuffled minibatches of ``data`` (one permutation per
    epoch, ``n // batch_size`` batches per epoch, the remainder dropped that epoch)."""
    n = data.shape[0]
    batches_per_epoch = n // batch_size
    shuffle_key, loss_key, _ = _split_root(root_key)

    def permutation(epoch):
        return jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), n)

    def body(carry, _):
        state, perm = carry
        epoch, j = jnp.divmod(state.step, batches_per_epoch)
        perm = jax.lax.cond(j == 0, lambda: permutation(epoch), lambda: perm)
        idx = jax.lax.dynamic_slice(perm, (j * batch_size,), (batch_size,))
        batch = jnp.take(data, idx, axis=0)
        key = jax.random.fold_in(loss_key, state.step)
        active = (state.step < end_step) & (state.bad_count < max_bad_steps)
        state, out = _guarded_step(state, batch, key, active, energy_fn, objective, optimizer)
        return (state, perm), out

    perm0 = permutation(state.step // batches_per_epoch)
    (state, _), out = jax.lax.scan(body, (state, perm0), None, length=steps_per_chunk)
    return state, out


@functools.partial(jax.jit, static_argnames=_STATIC)
def _batches_chunk(
    state: FitState,
    batches: Array,
    valid: Array,
    root_key: PRNGKey,
    max_bad_steps: Array,
    *,
    energy_fn: Callable,
    objective: Objective,
    optimizer: optax.GradientTransformation,
    batch_size: int,
    steps_per_chunk: int,
) -> tuple[FitState, dict[str, Array]]:
    """Steps over a stacked chunk of batches from an iterator (``valid`` masks padding)."""
    del batch_size, steps_per_chunk
    _, loss_key, _ = _split_root(root_key)

    def body(state, inputs):
        batch, ok = inputs
        key = jax.random.fold_in(loss_key, state.step)
        active = ok & (state.bad_count < max_bad_steps)
        return _guarded_step(state, batch, key, active, energy_fn, objective, optimizer)

    return jax.lax.scan(body, state, (batches, valid))


# --------------------------------------------------------------------------- validation
def _is_iterator_data(data: Any) -> bool:
    return isinstance(data, Iterator) or (
        isinstance(data, Iterable) and not isinstance(data, (list, tuple, np.ndarray, jax.Array))
        and not hasattr(data, "__array__")
    )


def _check_data(data: Any, name: str = "data") -> np.ndarray | jax.Array:
    if isinstance(data, jax.Array):
        arr = data
    else:
        try:
            arr = np.asarray(data)
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"{name} must be an array of shape (n, ...), got {type(data).__name__}") from err
    if arr.ndim < 1:
        raise ValueError(f"{name} must have a leading example axis (shape (n, ...)), got a scalar")
    if arr.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one example, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
            or np.issubdtype(arr.dtype, np.bool_)):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(jnp.result_type(float))
    finite = np.isfinite(np.asarray(arr))
    if not finite.all():
        bad = int((~finite).sum())
        raise ValueError(f"{name} must be finite, got {bad} NaN or infinite values")
    return arr


def _check_energy(energy_fn, objective, params, batch_struct, key, objective_state) -> None:
    """Trace the loss once (no compute) with a wrapper that checks every energy is scalar."""

    def checked(*args):
        out = energy_fn(*args)
        shape = getattr(out, "shape", None)
        if shape != ():
            raise ValueError(
                f"energy_fn must return a scalar energy per example, got shape {shape} for "
                f"an example of shape {tuple(args[1].shape)}"
            )
        return out

    try:
        value, _ = jax.eval_shape(
            lambda p, b, k, s: objective.loss(p, b, k, checked, s),
            params, batch_struct, key, objective_state,
        )
    except ValueError:
        raise
    except Exception as err:  # noqa: BLE001 - re-raised with context
        raise ValueError(
            f"energy_fn could not be traced by the objective {objective.name!r} on a batch "
            f"of shape {batch_struct.shape} ({type(err).__name__}: {err})"
        ) from err
    if value.shape != ():
        raise ValueError(f"objective.loss must return a scalar, got shape {value.shape}")


# --------------------------------------------------------------------------- fit
def fit(
    energy_fn: Callable[..., Array],
    params: Params,
    data: ArrayTree | Iterable[ArrayTree],
    objective: Objective,
    optimizer: optax.GradientTransformation = DEFAULT_OPTIMIZER,
    *,
    num_steps: int = 1000,
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = True,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 500,
    keep_checkpoints: int = 3,
    max_bad_steps: int = 20,
    steps_per_chunk: int = STEPS_PER_CHUNK,
) -> FitResult:
    r"""Train ``energy_fn``'s parameters by minimising ``objective`` with ``optimizer``.

    Each step draws a minibatch, evaluates
    ``value, grads = value_and_grad(objective.loss)(params, batch, key, energy_fn, state)``
    and applies the optax update

    .. math:: \theta_{t+1} = \theta_t + \operatorname{opt}(\nabla_\theta L(\theta_t)),

    unless the loss, gradient or new parameters are not finite: then the update is
    skipped and the last good state kept (like ``optax.apply_if_finite``); after
    ``max_bad_steps`` such steps in a row :class:`FitDivergenceError` is raised.

    Parameters
    ----------
    energy_fn
        ``energy_fn(params, x) -> scalar`` for one example ``x`` (noise-conditional
        objectives call ``energy_fn(params, x, sigma)``). Static: pass the same function
        object to reuse compilations.
    params
        Initial energy parameters (pytree of arrays).
    data
        Array of shape ``(n, *event_shape)``, shuffled each epoch on device; or an
        iterable of batches of shape ``(batch_size, *event_shape)`` (resuming an
        iterator run restores the state but not the iterator's position).
    objective
        An :class:`~ebm_ppl.objectives.Objective`.
    optimizer
        An optax ``GradientTransformation`` (default ``optax.adam(1e-3)``).
    num_steps
        Total number of optimizer steps (>= 0), counting resumed ones.
    batch_size
        Examples per step, 1 <= ``batch_size``; larger than ``n`` is lowered to ``n``
        with a warning.
    seed
        Integer seed of the run's root key (objective init, shuffling, per-step keys).
    progress
        Show a tqdm progress bar with the running loss.
    checkpoint_dir
        Directory of :mod:`ebm_ppl.checkpoint` checkpoints. If it holds one, training
        resumes from the newest readable one (a corrupted newest checkpoint is reported
        with a warning and the previous one used).
    checkpoint_every
        Save every this many steps (at the next chunk end), and at the end.
    keep_checkpoints
        Number of newest checkpoints kept.
    max_bad_steps
        Consecutive non-finite steps tolerated before stopping.
    steps_per_chunk
        Optimizer steps per compiled ``lax.scan`` call.

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        For invalid arguments (non-finite data, wrong shapes, ``batch_size < 1``,
        ``num_steps < 0``, an energy that is not scalar...).
    FitDivergenceError
        (a ``FloatingPointError``) after ``max_bad_steps`` consecutive non-finite steps;
        names the first failing step, carries the last good :class:`FitResult` in
        ``err.result``, and leaves the last checkpoint untouched.

    Notes
    -----
    Ctrl-C (``KeyboardInterrupt``) between or during chunks returns the result of the
    completed chunks with a warning (and saves a checkpoint when ``checkpoint_dir`` is
    set).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numpy as np, optax
    >>> import ebm_ppl
    >>> energy_fn = lambda p, x: 0.5 * jnp.sum(jnp.exp(p["log_prec"]) * (x - p["mu"]) ** 2)
    >>> data = np.random.default_rng(0).normal(1.0, 2.0, size=(2000, 2))
    >>> params = {"mu": jnp.zeros(2), "log_prec": jnp.zeros(2)}
    >>> result = ebm_ppl.fit(energy_fn, params, data, ebm_ppl.objectives.score_matching(),
    ...                      optax.adam(0.05), num_steps=300, progress=False)
    >>> result.history["loss"].shape
    (300,)
    """
    # ---------------------------------------------------------------- validation
    if not isinstance(objective, Objective):
        raise ValueError(
            f"objective must be an ebm_ppl.objectives.Objective, got {type(objective).__name__}"
        )
    if not callable(energy_fn):
        raise ValueError(f"energy_fn must be callable, got {type(energy_fn).__name__}")
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise ValueError(
            f"optimizer must be an optax GradientTransformation, got {type(optimizer).__name__}"
        )
    num_steps = check_int("num_steps", num_steps, 0)
    batch_size = check_int("batch_size", batch_size, 1)
    seed = check_int("seed", seed, 0)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, 1)
    keep_checkpoints = check_int("keep_checkpoints", keep_checkpoints, 1)
    max_bad_steps = check_int("max_bad_steps", max_bad_steps, 1)
    steps_per_chunk = check_int("steps_per_chunk", steps_per_chunk, 1)

    iterator_mode = _is_iterator_data(data)
    if iterator_mode:
        batches = iter(data)
        try:
            first = _check_data(next(batches), "the first batch of data")
        except StopIteration:
            raise ValueError("data must yield at least one batch, got an empty iterator") from None
        batch_size = first.shape[0]
        pending = [first]
        init_data = jnp.asarray(first)
    else:
        data = jnp.asarray(_check_data(data))
        if batch_size > data.shape[0]:
            warnings.warn(
                f"batch_size={batch_size} is larger than the data set ({data.shape[0]} "
                f"examples); using batch_size={data.shape[0]}",
                stacklevel=2,
            )
            batch_size = int(data.shape[0])
        init_data = data
    params = jax.tree.map(jnp.asarray, params)

    # ---------------------------------------------------------------- init
    root_key = jax.random.key(seed)
    _, _, init_key = _split_root(root_key)
    trained = objective.lift(params)
    objective_state = objective.init(init_key, trained, init_data)
    batch_struct = jax.ShapeDtypeStruct((batch_size, *init_data.shape[1:]), init_data.dtype)
    _check_energy(energy_fn, objective, trained, batch_struct, init_key, objective_state)
    state = FitState(
        params=trained,
        opt_state=optimizer.init(trained),
        objective_state=objective_state,
        step=jnp.zeros((), jnp.int32),
        bad_count=jnp.zeros((), jnp.int32),
        first_bad_step=jnp.full((), -1, jnp.int32),
    )
    history: list[dict[str, np.ndarray]] = []

    # ---------------------------------------------------------------- resume
    if checkpoint_dir is not None and latest_checkpoint(checkpoint_dir) is not None:
        state, root_key, history = _resume(checkpoint_dir, state, root_key, seed, init_data)

    statics = dict(
        energy_fn=energy_fn, objective=objective, optimizer=optimizer,
        batch_size=batch_size, steps_per_chunk=steps_per_chunk,
    )
    max_bad = jnp.asarray(max_bad_steps, jnp.int32)
    end = jnp.asarray(num_steps, jnp.int32)
    step = int(state.step)
    last_saved = step
    interrupted = False

    def result(st: FitState, key: PRNGKey, interrupted_: bool = False) -> FitResult:
        hist = _concat(history)
        return FitResult(
            params=objective.lower(st.params),
            trained_params=st.params,
            opt_state=st.opt_state,
            objective_state=st.objective_state,
            history=hist,
            steps=int(st.step),
            rng_key=key,
            interrupted=interrupted_,
            objective_name=objective.name,
        )

    def save(st: FitState) -> None:
        save_checkpoint(
            checkpoint_dir,
            int(st.step),
            {"state": st, "rng_key": root_key},
            extras={f"history/{k}": v for k, v in _concat(history).items()},
            metadata={"seed": seed, "objective": objective.name,
                      "data_shape": list(init_data.shape[1:]), "batch_size": batch_size},
            keep=keep_checkpoints,
        )

    bar = None
    if progress and num_steps > step:
        from tqdm.auto import tqdm

        bar = tqdm(total=num_steps, initial=step, desc=f"fit[{objective.name}]", unit="step")
    try:
        while step < num_steps:
            if iterator_mode:
                chunk, valid = _next_chunk(batches, pending, steps_per_chunk,
                                           min(steps_per_chunk, num_steps - step))
                if chunk is None:
                    warnings.warn(f"data iterator exhausted after {step} steps; stopping",
                                  stacklevel=2)
                    break
                new_state, out = _batches_chunk(state, chunk, valid, root_key, max_bad, **statics)
            else:
                new_state, out = _array_chunk(state, data, root_key, end, max_bad, **statics)
            new_step = int(new_state.step)
            out = jax.device_get(out)
            done = new_step - step
            history.append({"step": np.arange(step, new_step),
                            **{k: np.asarray(v[:done]) for k, v in out.items()}})
            state, step = new_state, new_step
            if bar is not None:
                losses = history[-1]["loss"]
                finite = losses[np.isfinite(losses)]
                bar.update(done)
                bar.set_postfix(loss=f"{finite.mean():.4g}" if finite.size else "nan")
            if int(state.bad_count) >= max_bad_steps:
                first_bad = int(state.first_bad_step)
                raise FitDivergenceError(
                    f"the loss or its gradient was not finite for {max_bad_steps} consecutive "
                    f"steps, from step {first_bad} to {step - 1}; training stopped (the "
                    "returned err.result holds the last good state"
                    + (", and the last checkpoint is kept)" if checkpoint_dir else ")"),
                    step=first_bad,
                    result=result(state, root_key),
                )
            # never checkpoint in the middle of a run of non-finite steps
            if checkpoint_dir is not None and int(state.bad_count) == 0 and (
                step - last_saved >= checkpoint_every or step >= num_steps
            ):
                save(state)
                last_saved = step
    except KeyboardInterrupt:
        interrupted = True
        warnings.warn(
            f"fit interrupted at step {step} of {num_steps}; returning the result so far",
            stacklevel=2,
        )
        if checkpoint_dir is not None and step > last_saved and int(state.bad_count) == 0:
            save(state)
    finally:
        if bar is not None:
            bar.close()
    return result(state, root_key, interrupted)


def _next_chunk(batches, pending, steps_per_chunk, wanted):
    items = list(pending)
    pending.clear()
    while len(items) < wanted:
        try:
            items.append(next(batches))
        except StopIteration:
            break
    if not items:
        return None, None
    first = items[0]
    checked = []
    for i, item in enumerate(items):
        arr = _check_data(item, "each batch of data")
        if arr.shape != first.shape:
            raise ValueError(
                f"every batch of data must have shape {tuple(first.shape)}, got "
                f"{tuple(arr.shape)} for batch {i}"
            )
        checked.append(np.asarray(arr))
    valid = np.zeros(steps_per_chunk, bool)
    valid[: len(checked)] = True
    checked += [checked[-1]] * (steps_per_chunk - len(checked))
    return jnp.asarray(np.stack(checked)), jnp.asarray(valid)


def _concat(history: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not history:
        return {}
    return {k: np.concatenate([h[k] for h in history]) for k in history[0]}


def _resume(directory, state: FitState, root_key: PRNGKey, seed: int, init_data):
    template = {"state": state, "rng_key": root_key}
    steps = list_checkpoints(directory)
    errors = []
    for step in reversed(steps):
        try:
            ckpt = restore_checkpoint(directory, template, step)
        except CheckpointError as err:
            if "corrupted or partial" not in str(err):
                raise
            errors.append(str(err))
            continue
        if errors:
            warnings.warn(
                f"skipped unreadable checkpoint(s): {' | '.join(errors)}; resuming from step "
                f"{ckpt.step}",
                stacklevel=3,
            )
        meta = ckpt.metadata
        if meta.get("seed", seed) != seed:
            warnings.warn(
                f"resuming from a checkpoint of seed {meta['seed']}; its key is used, not "
                f"seed={seed}",
                stacklevel=3,
            )
        if meta.get("data_shape") is not None and list(init_data.shape[1:]) != meta["data_shape"]:
            raise CheckpointError(
                f"checkpoint in {str(directory)!r} was trained on examples of shape "
                f"{tuple(meta['data_shape'])}, got data of shape {tuple(init_data.shape[1:])}"
            )
        history = {k.removeprefix("history/"): v for k, v in ckpt.extras.items()}
        return ckpt.tree["state"], ckpt.tree["rng_key"], [history] if history else []
    raise CheckpointError(
        f"every checkpoint in {str(directory)!r} is unreadable: {' | '.join(errors)}"
    )

