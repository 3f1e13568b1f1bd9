r""":func:`fit`: validate the arguments, set up the run, drive the compiled chunks, and
assemble a :class:`~ebm_ppl.training.result.FitResult`.

The loop itself is in :mod:`ebm_ppl.training.loop`, the data pipeline in
:mod:`ebm_ppl.training.data`, checkpoints in :mod:`ebm_ppl.training.checkpoint` and the
multi-device set-up in :mod:`ebm_ppl.training.parallel`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ebm_ppl._passed_checks import PassedChecks, abstract_signature
from ebm_ppl._platform import fit_padding_mode
from ebm_ppl._types import Array, ArrayTree, Params, PRNGKey
from ebm_ppl._validation import as_key, check_int
from ebm_ppl.objectives.base import Objective
from ebm_ppl.training.checkpoint import FitCheckpoints
from ebm_ppl.training.data import (
    ArraySource,
    EpochOrder,
    check_data,
    fit_batch_size,
    is_stream,
    next_stream_chunk,
    validation_batches,
)
from ebm_ppl.training.loop import (
    ChunkConfig,
    Controls,
    FitState,
    RootKeys,
    drive,
    initial_state,
)
from ebm_ppl.training.parallel import batch_sharding, replicate
from ebm_ppl.training.result import FitResult

__all__ = ["fit", "DEFAULT_OPTIMIZER", "STEPS_PER_CHUNK", "VALIDATE_EVERY"]

#: The default optimizer, ``optax.adam(1e-3)``, built once so that repeated ``fit``
#: calls with the default share their compiled steps.
DEFAULT_OPTIMIZER = optax.adam(1e-3)

#: Optimizer steps per compiled ``lax.scan`` chunk.
STEPS_PER_CHUNK = 50

#: Default number of steps between two held-out evaluations.
VALIDATE_EVERY = 50

#: ``patience`` of a run without early stopping (int32 maximum).
_NO_PATIENCE = np.iinfo(np.int32).max


#: How to train an Equinox module (or any callable pytree mixing arrays and functions).
MODULE_RECIPE = (
    "split it with `params, static = eqx.partition(module, eqx.is_array)` and call "
    "`fit(energy_fn, params, ...)` with `energy_fn = lambda p, x: eqx.combine(p, static)(x)` "
    "(defined once, so repeated fits reuse the compiled code); "
    "`eqx.combine(result.params, static)` is the trained module"
)

_ARRAY_LEAVES = (jax.Array, np.ndarray, np.generic, int, float, bool)


def _check_types(energy_fn: Any, objective: Any, optimizer: Any, params: Any = None) -> None:
    if not callable(energy_fn):
        raise TypeError(f"energy_fn must be callable, got {type(energy_fn).__name__}")
    if params is None and any(isinstance(leaf, (jax.Array, np.ndarray))
                              for leaf in jax.tree.leaves(energy_fn)):
        raise TypeError(
            f"energy_fn is a module holding arrays ({type(energy_fn).__name__}) and params is "
            f"None, so there is nothing to train; {MODULE_RECIPE}"
        )
    others = {type(leaf).__name__ for leaf in jax.tree.leaves(params)
              if not isinstance(leaf, _ARRAY_LEAVES)}
    if others:
        raise TypeError(
            f"params must be a pytree of arrays, got leaves of type {sorted(others)} (a module's "
            f"functions or settings?); to train a module, {MODULE_RECIPE}"
        )
    if not isinstance(objective, Objective):
        raise TypeError(
            f"objective must be an ebm_ppl.objectives.Objective, got {type(objective).__name__}"
        )
    if not isinstance(optimizer, optax.GradientTransformation) and not (
        callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))
    ):
        raise TypeError(
            f"optimizer must be an optax GradientTransformation, got {type(optimizer).__name__}"
        )


#: Signatures (energy, objective, input structures and types) that passed
#: :func:`_check_energy`; a repeated ``fit`` skips the trace (~15 ms, most of its fixed cost).
_PASSED = PassedChecks(64)


def _check_energy(config: ChunkConfig, params, batch_struct, key, objective_state) -> None:
    """Trace the loss once (no compute) with a wrapper that checks every energy is scalar;
    skipped for a signature that passed before."""
    args = (params, batch_struct, key, objective_state)
    _PASSED.run(lambda: (config.energy_fn, config.objective, abstract_signature(*args)),
                lambda: _trace_check(config, *args))


def _trace_check(config: ChunkConfig, params, batch_struct, key, objective_state) -> None:
    energy_fn, objective = config.energy_fn, config.objective

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


class _Data(NamedTuple):
    """Training data ready for :func:`_sources`: an ``array``, or an iterator of
    ``batches`` whose ``first`` one was taken out (to fix the batch size and shapes)."""

    array: Array | None
    batches: Iterator | None
    first: Array | None
    batch_size: int

    @property
    def init_data(self) -> Array:
        """The data ``objective.init`` and the checks see."""
        return self.array if self.first is None else self.first


def _prepare_data(data: Any, batch_size: int) -> _Data:
    if not is_stream(data):
        array = jnp.asarray(check_data(data))
        return _Data(array, None, None, fit_batch_size(batch_size, array.shape[0]))
    batches = iter(data)
    try:
        first = jnp.asarray(check_data(next(batches), "the first batch of data"))
    except StopIteration:
        raise ValueError("data must yield at least one batch, got an empty iterator") from None
    return _Data(None, batches, first, int(first.shape[0]))


def _sources(data: _Data, shuffle_key: PRNGKey,
             config: ChunkConfig) -> Callable[[int, int], Any]:
    """``next_source(step, wanted)`` for :func:`~ebm_ppl.training.loop.drive`."""
    if data.first is None:
        array = replicate(data.array, config.sharding)
        order = EpochOrder(shuffle_key, data.array.shape[0], config.batch_size)

        def next_array_chunk(step: int, wanted: int) -> ArraySource:
            del wanted  # the steps past the end of the run are no-ops
            indices = jnp.asarray(order.indices(step, config.steps_per_chunk))
            return ArraySource(array, replicate(indices, config.sharding))

        return next_array_chunk
    pending = [data.first]

    def next_source(step: int, wanted: int):
        chunk = next_stream_chunk(data.batches, pending, config.steps_per_chunk, wanted)
        return None if chunk is None else replicate(chunk, config.sharding)

    return next_source


def _result(state: FitState, history: dict, root_key: PRNGKey, objective: Objective,
            interrupted: bool = False, patience: int = _NO_PATIENCE) -> FitResult:
    return FitResult(
        params=objective.to_energy_params(state.params),
        trained_params=state.params,
        opt_state=state.opt_state,
        objective_state=state.objective_state,
        history=history,
        steps=int(state.step),
        rng_key=root_key,
        interrupted=interrupted,
        objective_name=objective.name,
        stopped_early=int(state.evals_since_best) >= patience,
        best_val_loss=float(state.best_val_loss) if np.isfinite(state.best_val_loss)
        else float("nan"),
    )


def fit(
    energy_fn: Callable[..., Array],
    params: Params,
    data: ArrayTree | Iterable[ArrayTree],
    objective: Objective,
    optimizer: optax.GradientTransformation = DEFAULT_OPTIMIZER,
    *,
    num_steps: int = 1000,
    batch_size: int = 256,
    seed: int | PRNGKey = 0,
    progress: bool = True,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 500,
    keep_checkpoints: int = 3,
    max_bad_steps: int = 20,
    steps_per_chunk: int = STEPS_PER_CHUNK,
    validation_data: ArrayTree | None = None,
    validate_every: int = VALIDATE_EVERY,
    patience: int | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> FitResult:
    r"""Train ``energy_fn``'s parameters by minimising ``objective`` with ``optimizer``.

    Each step draws a minibatch, evaluates
    ``value, grads = value_and_grad(objective.loss)(params, batch, key, energy_fn, state)``
    and applies the optax update

    .. math:: \theta_{t+1} = \theta_t + \operatorname{opt}(\nabla_\theta L(\theta_t)),

    unless the loss, gradient or new parameters are not finite: then the update is
    skipped and the last good state kept (like ``optax.apply_if_finite``); after
    ``max_bad_steps`` such steps in a row :class:`~ebm_ppl.FitDivergenceError` is raised.

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
        An optax ``GradientTransformation`` (default ``optax.adam(1e-3)``). Pass the
        *same* object to reuse compilations (``optax.adam(1e-3)`` builds new functions
        on every call).
    num_steps
        Total number of optimizer steps (>= 0), counting resumed ones.
    batch_size
        Examples per step, >= 1; larger than ``n`` is lowered to ``n`` with a warning.
    seed
        Integer seed or ``jax.random`` key of the run's root key (objective init,
        shuffling, per-step keys; step ``t`` uses ``fold_in(key, t)``).
    progress
        Show a tqdm progress bar with the running loss.
    checkpoint_dir
        Directory of :mod:`ebm_ppl.training.checkpoint` checkpoints. If it holds one,
        training resumes from the newest readable one (a corrupted newest checkpoint is
        reported with a warning and the previous one used).
    checkpoint_every
        Save every this many steps (at the next chunk end), and at the end.
    keep_checkpoints
        Number of newest checkpoints kept.
    max_bad_steps
        Consecutive non-finite steps tolerated before stopping.
    steps_per_chunk
        Optimizer steps per compiled ``lax.scan`` call.
    validation_data
        Held-out array ``(m, *event_shape)``. Every ``validate_every`` steps (at steps
        ``0, k, 2k, ...``, on the parameters that step's training loss is computed on)
        the objective's loss and metrics are averaged over the held-out batches
        (``min(batch_size, m)`` examples each; the last ``m mod size`` left out) with
        one fixed key, so evaluations differ only through the parameters. They go into
        the history as ``val_loss`` and ``val_<metric>``, NaN at the other steps.
    validate_every
        Steps between two held-out evaluations, >= 1.
    patience
        Early stopping: end the run once ``patience`` evaluations in a row have not
        lowered the best held-out loss (the returned parameters are the last ones, one
        update after that evaluation; ``result.stopped_early`` is True). None (default):
        no early stopping. Needs ``validation_data``.
    devices
        Data-parallel training: each batch is split across these devices, parameters
        replicated (:mod:`ebm_ppl.training.parallel`); ``batch_size`` must be a multiple
        of their number. None: all local devices when ``batch_size`` is a multiple of
        their number, else one device. Results equal the one-device run up to rounding.

    Returns
    -------
    FitResult
        ``print(result)`` shows a short summary.

    Raises
    ------
    TypeError
        If ``energy_fn`` is not callable, ``objective`` not an ``Objective``,
        ``optimizer`` not an optax ``GradientTransformation`` or ``seed`` neither an
        integer nor a key.
    ValueError
        For invalid values (non-finite data, wrong shapes, ``batch_size < 1``,
        ``num_steps < 0``, an energy that is not scalar, ``patience`` without
        ``validation_data``...).
    FitDivergenceError
        (a ``FloatingPointError``) after ``max_bad_steps`` consecutive non-finite steps;
        names the first failing step, carries the last good :class:`FitResult` in
        ``err.result``, and leaves the last checkpoint untouched.
    CheckpointError
        If ``checkpoint_dir`` holds checkpoints of another model, or only unreadable ones.

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
    >>> result = ebm_ppl.fit(energy_fn, params, data[:1500], ebm_ppl.objectives.score_matching(),
    ...                      optax.adam(0.05), num_steps=300, progress=False,
    ...                      validation_data=data[1500:])
    >>> result.history["loss"].shape, int(np.isfinite(result.history["val_loss"]).sum())
    ((300,), 6)
    """
    _check_types(energy_fn, objective, optimizer, params)
    num_steps = check_int("num_steps", num_steps, 0)
    batch_size = check_int("batch_size", batch_size, 1)
    root_key = as_key(seed)
    counts = {name: check_int(name, value, 1) for name, value in [
        ("checkpoint_every", checkpoint_every), ("keep_checkpoints", keep_checkpoints),
        ("max_bad_steps", max_bad_steps), ("steps_per_chunk", steps_per_chunk),
        ("validate_every", validate_every)]}
    if patience is not None:
        patience = check_int("patience", patience, 1)
        if validation_data is None:
            raise ValueError("patience needs validation_data to watch, got validation_data=None")

    prepared = _prepare_data(data, batch_size)
    batch_size, init_data = prepared.batch_size, prepared.init_data
    sharding = batch_sharding(devices, batch_size)
    config = ChunkConfig(energy_fn, objective, optimizer, batch_size,
                         counts["steps_per_chunk"], sharding,
                         fit_padding_mode(None if sharding is None else sharding.mesh.devices.flat,
                                          num_steps, counts["steps_per_chunk"]))

    keys = RootKeys.from_root(root_key)
    trainable = objective.to_trainable(jax.tree.map(jnp.asarray, params))
    objective_state = objective.init(keys.init, trainable, init_data)
    batch_struct = jax.ShapeDtypeStruct((batch_size, *init_data.shape[1:]), init_data.dtype)
    _check_energy(config, trainable, batch_struct, keys.init, objective_state)
    state = initial_state(trainable, objective_state, config)

    checkpoints, history = None, {}
    if checkpoint_dir is not None:
        checkpoints = FitCheckpoints(
            Path(checkpoint_dir), counts["checkpoint_every"], counts["keep_checkpoints"],
            {"seed": seed if isinstance(seed, (int, np.integer)) else None,
             "objective": objective.name, "data_shape": list(init_data.shape[1:]),
             "batch_size": batch_size})
        resumed = checkpoints.resume(state, root_key)
        if resumed is not None:
            state, root_key, history = resumed
            keys = RootKeys.from_root(root_key)

    validation = None
    if validation_data is not None:
        validation = (validation_batches(validation_data, batch_size, init_data.shape[1:]),
                      keys.validation)
    controls = Controls(*jax.device_put([np.int32(v) for v in (  # one transfer
        num_steps, counts["max_bad_steps"], counts["validate_every"],
        _NO_PATIENCE if patience is None else patience)]))
    place = lambda tree: replicate(tree, config.sharding)  # noqa: E731
    run = drive(
        place(state), _sources(prepared, keys.shuffle, config),
        place(validation), place(keys.loss), place(controls), config,
        root_key=root_key, history=history, checkpoints=checkpoints, progress=progress,
        make_result=lambda st, hist: _result(st, hist, root_key, objective),
    )
    return _result(run.state, run.history, root_key, objective, run.interrupted,
                   _NO_PATIENCE if patience is None else patience)
