"""``ebm_ppl.sample``: validate, initialise, warm up, then ``vmap`` (chains) × ``scan``.

Design notes
------------
* Chains run under ``jax.vmap``; steps run under ``jax.lax.scan`` in chunks of a fixed
  number of draws. The Python loop is over chunks only: it moves the progress bar,
  streams draws to host memory, and lets Ctrl-C keep what was finished.
* The random key of chain ``c`` at step ``s`` is ``split(fold_in(key, s))[c]``: draws do
  not depend on the chunk size, and a run can be resumed or extended bitwise.
* Kernels and potentials are pytrees whose numbers are traced: a second call with the
  same potential function, kernel type and shapes reuses the compiled chunk, whatever
  the seed, init, step size, parameter values, ``num_samples`` or ``num_warmup`` (the
  last partial chunk is skipped with ``lax.cond`` rather than compiled at another length).
  ``thin == 1`` has its own one-step path; all ``thin > 1`` share one compilation.
"""

from __future__ import annotations

import math
import time
import warnings
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.window_adaptation import build_schedule
from jax.flatten_util import ravel_pytree

from ebm_ppl._checks import warn_suspicious
from ebm_ppl._types import Array, ArrayLikeTree, ArrayTree, PRNGKey
from ebm_ppl._validation import check_int
from ebm_ppl.adaptation import WarmupState, adapt_step, finalise_warmup, scale_of, warmup_init
from ebm_ppl.inference_data import (
    az,
    position_names,
    run_attrs,
    sampler_state_dataset,
    to_inference_data,
)
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.potential import Potential

__all__ = ["sample", "DEFAULT_CHUNK_SIZE"]

#: Draws per compiled chunk (progress-bar granularity; fixed so that the number of
#: draws never changes the compiled code).
DEFAULT_CHUNK_SIZE = 100

_STAT_NAMES = {
    "acceptance_rate": "acceptance_rate",
    "is_divergent": "diverging",
    "energy": "energy",
    "num_integration_steps": "n_steps",
    "tree_depth": "tree_depth",
}


# ---------------------------------------------------------------------- validation
def _as_key(seed: int | PRNGKey) -> PRNGKey:
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return jax.random.key(int(seed))
    if isinstance(seed, jax.Array) and jnp.issubdtype(seed.dtype, jax.dtypes.prng_key):
        return seed
    if isinstance(seed, jax.Array) and seed.dtype == jnp.uint32 and seed.shape == (2,):
        return jax.random.wrap_key_data(seed)
    raise ValueError(f"seed must be an integer or a jax.random key, got {seed!r}")


def _to_float(tree: ArrayLikeTree, name: str) -> ArrayTree:
    if isinstance(tree, list):  # a (nested) list of numbers is an array, not a pytree
        try:
            tree = np.asarray(tree, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{name} given as a list must be a rectangular list of "
                             "numbers; use a dict or tuple for a pytree position") from None
    def convert(leaf: Any) -> Array:
        arr = jnp.asarray(leaf)
        if jnp.issubdtype(arr.dtype, jnp.floating):
            return arr
        if jnp.issubdtype(arr.dtype, jnp.integer) or arr.dtype == jnp.bool_:
            return arr.astype(jnp.result_type(float))
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")

    try:
        return jax.tree.map(convert, tree)
    except TypeError as err:
        raise ValueError(f"{name} must be an array or a pytree of arrays ({err})") from None


def _is_batch(pot: Potential, init: ArrayTree, num_chains: int) -> bool:
    leaves = jax.tree.leaves(init)
    leading = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
    if leading != {num_chains}:
        return False
    if pot.example is not None:
        batched = [(num_chains, *s.shape) for s in jax.tree.leaves(pot.example)]
        return [np.shape(leaf) for leaf in leaves] == batched
    return all(np.ndim(leaf) >= 2 for leaf in leaves)


def _initial_positions(
    pot: Potential, init: ArrayLikeTree | None, num_chains: int, key: PRNGKey, jitter: float
) -> ArrayTree:
    if init is None:
        if pot.init_fn is None:
            raise ValueError(
                "init is required for a potential built from an energy or a log density "
                "(pass one position, or a batch of num_chains positions); only "
                "Potential.from_model can draw initial positions itself"
            )
        return pot.init_fn(key, num_chains)
    init = _to_float(init, "init")
    if _is_batch(pot, init, num_chains):
        return init
    leaves, treedef = jax.tree.flatten(init)
    keys = jax.random.split(key, len(leaves))
    batch = [
        x[None] + jitter * jax.random.normal(k, (num_chains, *jnp.shape(x)), x.dtype)
        if jitter > 0 else jnp.broadcast_to(x, (num_chains, *jnp.shape(x)))
        for k, x in zip(keys, leaves)
    ]
    return jax.tree.unflatten(treedef, batch)


def _check_finite_start(pot: Potential, positions: ArrayTree) -> None:
    logdensity, grad = _value_and_grad_batch(pot, positions)
    grad_ok = [jnp.all(jnp.isfinite(g.reshape(g.shape[0], -1)), axis=1)
               for g in jax.tree.leaves(grad)]
    ok = np.array(jnp.isfinite(logdensity) & jnp.all(jnp.stack(grad_ok), axis=0))
    if not ok.all():
        bad = np.flatnonzero(~ok).tolist()
        values = np.asarray(logdensity)[bad].tolist()
        raise ValueError(
            f"the log density or its gradient is not finite at the initial position of "
            f"chain(s) {bad} (log density {values}); start inside the support"
        )


@partial(jax.jit, static_argnames=("scheme",))
def _init_chains(kernel: Kernel, pot: Potential, positions: ArrayTree, *, scheme: str):
    """Kernel states, per-chain parameters and warm-up states of all chains."""
    num_chains = jax.tree.leaves(positions)[0].shape[0]
    states = jax.vmap(lambda x: kernel.init_fn(x, pot.logdensity_fn))(positions)
    one = jax.tree.map(lambda x: x[0], positions)
    parameters = _per_chain_parameters(kernel, one, num_chains)
    warmup = None
    if scheme != "sample":
        warmup = jax.vmap(partial(warmup_init, kernel))(parameters, positions)
    return states, parameters, warmup


@jax.jit
def _constrain_draws(pot: Potential, positions: ArrayTree) -> dict[str, Array]:
    """Map ``(draw, chain, ...)`` unconstrained positions to the model's sites."""
    return jax.vmap(jax.vmap(pot.constrain))(positions)


@jax.jit
def _value_and_grad_batch(pot: Potential, positions: ArrayTree) -> tuple[Array, ArrayTree]:
    return jax.vmap(jax.value_and_grad(pot.logdensity_fn))(positions)


# ---------------------------------------------------------------------- warnings
# ---------------------------------------------------------------------- devices
def _shard_chains(tree: Any, num_chains: int) -> Any:
    """Place the chain axis of every leaf across the local devices (no-op on one).

    Chains are independent, so XLA partitions the vmapped step without communication;
    per-chain keys come from the chain index, so draws do not depend on the device
    count. Leaves whose leading axis is not ``num_chains`` are replicated.
    """
    devices = jax.local_devices()
    if len(devices) < 2 or num_chains % len(devices):
        return tree
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.asarray(devices), ("chains",))
    split = NamedSharding(mesh, PartitionSpec("chains"))
    replicated = NamedSharding(mesh, PartitionSpec())

    def place(leaf: Any) -> Any:
        if isinstance(leaf, jax.Array) and leaf.ndim and leaf.shape[0] == num_chains:
            return jax.device_put(leaf, split)
        return jax.device_put(leaf, replicated) if isinstance(leaf, jax.Array) else leaf

    return jax.tree.map(place, tree)


# ---------------------------------------------------------------------- chains
def _chain_keys(key: PRNGKey, step: Array, num_chains: int) -> PRNGKey:
    """Keys of all chains at global step ``step`` (independent of chunking/devices)."""
    return jax.random.split(jax.random.fold_in(key, step), num_chains)


def _step_chains(kernel: Kernel, pot: Potential, parameters: dict, states: Any, keys: PRNGKey):
    static = dict(kernel.static_parameters)

    def one(key, state, params):
        return kernel.kernel_fn(key, state, pot.logdensity_fn, **params, **static)

    return jax.vmap(one)(keys, states, parameters)


def _summarise_info(infos: Any) -> dict[str, Array]:
    """Keep the stats ArviZ knows from a kernel info (one step, all chains)."""
    return {
        stat: getattr(infos, field)
        for field, stat in _STAT_NAMES.items()
        if hasattr(infos, field)
    }


def _merge_thin(acc: dict[str, Array], new: dict[str, Array], j: Array) -> dict[str, Array]:
    """Combine stats of thinned steps: mean acceptance, any divergence, last others."""
    out = {}
    for name, value in new.items():
        if name == "acceptance_rate":
            out[name] = acc[name] + (value - acc[name]) / (j + 1)
        elif name == "diverging":
            out[name] = acc[name] | value
        else:
            out[name] = value
    return out


@partial(jax.jit, static_argnames=("chunk_size", "scheme"))
def _run_chunk(
    kernel: Kernel,
    pot: Potential,
    parameters: dict,
    states: Any,
    warmup: WarmupState | None,
    schedule: Array,
    key: PRNGKey,
    first_step: Array,
    num_valid: Array,
    thin: Array | None,
    *,
    chunk_size: int,
    scheme: str,
):
    """Run ``chunk_size`` draws (``thin`` kernel steps each) of all chains.

    ``scheme`` is ``"sample"`` (no adaptation) or the warm-up scheme of the kernel.
    ``thin=None`` means one step per draw (no inner loop); any other value is traced, so
    all thinning factors > 1 share one compilation. Draws with index ``>= num_valid``
    (the padding of a last, partial chunk) are skipped by ``lax.cond``.
    """
    num_chains = jax.tree.leaves(states)[0].shape[0]
    thinned = thin is not None
    if thinned:
        stats_struct = jax.eval_shape(
            lambda: _summarise_info(
                _step_chains(kernel, pot, parameters, states, _chain_keys(key, 0, num_chains))[1]
            )
        )
        zero_stats = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), stats_struct)

    def advance(carry, index, stage):
        states, parameters, warmup = carry
        base_step = first_step + index * (thin if thinned else 1)
        if thinned:
            def body(j, inner):
                states, stats = inner
                keys = _chain_keys(key, base_step + j, num_chains)
                new_states, info = _step_chains(kernel, pot, parameters, states, keys)
                return new_states, _merge_thin(stats, _summarise_info(info), j)

            new_states, stats = jax.lax.fori_loop(0, thin, body, (states, zero_stats))
        else:
            keys = _chain_keys(key, base_step, num_chains)
            new_states, info = _step_chains(kernel, pot, parameters, states, keys)
            stats = _summarise_info(info)
        new_parameters, new_warmup = parameters, warmup
        if scheme != "sample":
            new_parameters, new_warmup = jax.vmap(
                partial(adapt_step, kernel, scheme, stage)
            )(parameters, warmup, new_states.position, stats["acceptance_rate"])
        out = {"position": new_states.position, "lp": new_states.logdensity, **stats}
        if scheme != "sample":  # constant while sampling: added once on the host
            out["step_size"] = _step_size_stat(kernel, parameters, num_chains)
        return (new_states, new_parameters, new_warmup), out

    def draw(carry, xs):
        index, stage = xs
        out_struct = jax.eval_shape(advance, carry, index, stage)[1]

        def skip(carry, index, stage):  # padding draws of the last chunk: no compute
            return carry, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_struct)

        return jax.lax.cond(index < num_valid, advance, skip, carry, index, stage)

    xs = (jnp.arange(chunk_size), schedule)
    (states, parameters, warmup), draws = jax.lax.scan(draw, (states, parameters, warmup), xs)
    return states, parameters, warmup, draws


def _step_size_stat(kernel: Kernel, parameters: dict, num_chains: int) -> Array:
    """Per-chain step size (random-walk scale for MH, NaN when the kernel has none)."""
    if "step_size" in parameters:
        return parameters["step_size"]
    if kernel.adaptation == "scale" or (
        "proposal" in parameters and isinstance(parameters["proposal"].params, dict)
        and "scale" in parameters["proposal"].params
    ):
        return scale_of(parameters)
    return jnp.full((num_chains,), jnp.nan)


def _per_chain_parameters(kernel: Kernel, position: ArrayTree, num_chains: int) -> dict:
    parameters = dict(kernel.parameters)
    if "inverse_mass_matrix" in parameters and parameters["inverse_mass_matrix"] is None:
        flat, _ = ravel_pytree(position)
        parameters["inverse_mass_matrix"] = jnp.ones(flat.shape, flat.dtype)
    return jax.tree.map(
        lambda leaf: jnp.broadcast_to(jnp.asarray(leaf), (num_chains, *jnp.shape(leaf))),
        parameters,
    )


# ---------------------------------------------------------------------- driver
def _run_phase(
    kernel, pot, parameters, states, warmup, key, first_step, num_draws, thin, chunk_size,
    scheme, schedule, bar, keep, postprocess,
):
    """Loop over chunks; returns final carry and the host-side draws of ``keep`` chunks."""
    collected: list[dict[str, np.ndarray]] = []
    num_chunks = math.ceil(num_draws / chunk_size) if num_draws else 0
    done = 0
    interrupted = False
    try:
        for _ in range(num_chunks):
            n_valid = min(chunk_size, num_draws - done)
            sched = np.zeros((chunk_size, 2), np.int32)
            if schedule is not None:
                sched[:n_valid] = schedule[done:done + n_valid]
            states, parameters, warmup, draws = _run_chunk(
                kernel, pot, parameters, states, warmup, jnp.asarray(sched), key,
                jnp.asarray(first_step + done * thin), jnp.asarray(n_valid),
                None if thin == 1 else jnp.asarray(thin), chunk_size=chunk_size,
                scheme=scheme,
            )
            if keep:
                if postprocess is not None:
                    draws["position"] = postprocess(draws["position"])
                # to host first, then slice: a device-side slice would compile per length
                host = jax.tree.map(lambda a, n=n_valid: np.asarray(a)[:n], draws)
                collected.append(host)
            else:
                jax.block_until_ready(states)
            done += n_valid
            if bar is not None:
                bar.update(n_valid)
                rate = np.asarray(draws["acceptance_rate"])[:n_valid]
                bar.set_postfix(acc=f"{float(np.mean(rate)):.2f}", refresh=False)
    except KeyboardInterrupt:
        interrupted = True
    return states, parameters, warmup, collected, done, interrupted


def sample(
    pot: Potential,
    kernel: Kernel,
    init: ArrayLikeTree | None = None,
    *,
    num_samples: int = 1000,
    num_warmup: int = 1000,
    num_chains: int = 4,
    seed: int | PRNGKey = 0,
    adapt: bool = True,
    thin: int = 1,
    progress: bool = True,
    save_warmup: bool = False,
    jitter: float = 0.1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    resume: az.InferenceData | None = None,
    check_target: bool = True,
) -> az.InferenceData:
    r"""Run ``num_chains`` chains of ``kernel`` on ``pot`` and return ArviZ InferenceData.

    Parameters
    ----------
    pot
        The target, a :class:`~ebm_ppl.Potential`.
    kernel
        An :mod:`ebm_ppl.kernels` kernel (``ula``, ``mala``, ``hmc``, ``nuts``, ``mh``...).
    init
        One position (broadcast to all chains with Gaussian ``jitter``), a batch of
        ``num_chains`` positions (leading axis), or None to draw from a model's init
        strategy (raises for energies, which have none).
    num_samples
        Draws kept per chain (each ``thin`` kernel steps apart).
    num_warmup
        Warm-up steps per chain, discarded. With ``adapt=True`` they tune the kernel:
        Stan's window adaptation (step size and diagonal inverse mass matrix) for HMC
        and NUTS, dual averaging of the step size for MALA, Robbins–Monro adaptation of
        the scale for random-walk MH (:math:`\log s \mathrel{+}= t^{-0.6}(\alpha_t -
        \alpha^\star)`), none for ULA (its step size sets its bias; see
        :func:`ebm_ppl.diagnostics.ula_bias`). Each chain adapts on its own.
    num_chains
        Independent chains, run in parallel under ``jax.vmap``.
    seed
        Integer seed or ``jax.random`` key. The same seed gives identical draws.
    adapt
        Whether warm-up adapts the kernel's parameters.
    thin
        Keep one draw every ``thin`` steps (divergences of skipped steps are kept,
        acceptance rates averaged).
    progress
        Show a tqdm progress bar (updated once per chunk).
    save_warmup
        Also store warm-up draws in ``warmup_posterior`` / ``warmup_sample_stats``.
    jitter
        Standard deviation of the Gaussian jitter added to a single ``init``.
    chunk_size
        Draws per compiled chunk.
    resume
        An InferenceData returned by an earlier call with the same potential and kernel:
        the chains continue from its final state (tuned parameters and random stream
        included) with no warm-up, bitwise as if the first run had been longer.
        ``seed``, ``init``, ``num_chains`` and ``num_warmup`` are then taken from it;
        join the runs with :func:`ebm_ppl.concat_draws`.

    check_target
        Before sampling, warn (:class:`StepSizeWarning`) when a ULA step size exceeds the
        stability limit :math:`2/\lambda_{\max}` of the Hessian of the energy at the
        first initial position (power iteration), and
        (:class:`ImproperTargetWarning`) when the log density keeps increasing along the
        score direction (an improper target such as a linear energy).

    Returns
    -------
    arviz.InferenceData
        ``posterior`` with dims ``(chain, draw, ...)`` (variable ``x`` for an array
        position, one variable per leaf or model site otherwise, models in their
        constrained space) and ``sample_stats`` with ``lp``, ``acceptance_rate``,
        ``diverging``, ``step_size`` and, where the kernel has them, ``energy``,
        ``n_steps``, ``tree_depth``. The run configuration is in ``attrs``; the final
        sampler state (for ``resume``) is in the ``sampler_state`` group.

    Raises
    ------
    ValueError
        For invalid arguments, and when the log density or its gradient is not finite
        at a chain's initial position (the message names the chains).

    Examples
    --------
    >>> import jax.numpy as jnp, ebm_ppl
    >>> pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2))
    >>> idata = ebm_ppl.sample(pot, ebm_ppl.kernels.mala(0.5), jnp.zeros(2),
    ...                        num_samples=200, num_warmup=200, progress=False)
    >>> idata.posterior["x"].shape
    (4, 200, 2)
    """
    if not isinstance(pot, Potential):
        raise TypeError(
            f"pot must be an ebm_ppl.Potential (see Potential.from_energy), got "
            f"{type(pot).__name__}"
        )
    if not isinstance(kernel, Kernel):
        raise TypeError(
            f"kernel must be an ebm_ppl.kernels kernel (e.g. kernels.mala(0.1)), got "
            f"{type(kernel).__name__}"
        )
    num_samples = check_int("num_samples", num_samples, 1)
    num_warmup = check_int("num_warmup", num_warmup, 0)
    num_chains = check_int("num_chains", num_chains, 1)
    thin = check_int("thin", thin, 1)
    chunk_size = check_int("chunk_size", chunk_size, 1)
    if not (isinstance(jitter, (int, float)) and jitter >= 0 and math.isfinite(jitter)):
        raise ValueError(f"jitter must be a finite number >= 0, got {jitter!r}")
    key = _as_key(seed)
    key_init, key_warmup, key_sample = jax.random.split(key, 3)
    first_step = 0
    if resume is not None:
        states, parameters, key_sample, first_step, num_chains = _restore_state(
            resume, pot, kernel
        )
        one = jax.tree.map(lambda x: x[0], states.position)
        num_warmup, scheme, warmup, schedule = 0, "sample", None, None
    else:
        positions = _initial_positions(pot, init, num_chains, key_init, jitter)
        one = jax.tree.map(lambda x: x[0], positions)
        pot.check(one, name="init")
        _check_finite_start(pot, positions)
        if check_target:
            warn_suspicious(pot, kernel, one)
        scheme = kernel.adaptation if adapt and kernel.adaptation != "none" else "sample"
        states, parameters, warmup = _init_chains(kernel, pot, positions, scheme=scheme)
        schedule = None
        if scheme == "window" and num_warmup > 0:
            schedule = np.asarray(build_schedule(num_warmup), np.int32)
    states, parameters, warmup = _shard_chains((states, parameters, warmup), num_chains)

    postprocess = None
    if pot.postprocess_fn is not None:
        postprocess = partial(_constrain_draws, pot)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=num_warmup + num_samples * thin, desc=f"{kernel.name}", unit="step",
                   leave=True)
    started = time.perf_counter()
    try:
        if bar is not None:
            bar.set_description(f"{kernel.name} warmup")
        states, parameters, warmup, warm_draws, warm_done, interrupted = _run_phase(
            kernel, pot, parameters, states, warmup, key_warmup, 0, num_warmup, 1,
            chunk_size, scheme, schedule, bar, save_warmup, postprocess,
        )
        if interrupted:
            raise KeyboardInterrupt
        if scheme != "sample" and num_warmup > 0:
            parameters = finalise_warmup(kernel, scheme, parameters, warmup)
        if bar is not None:
            bar.set_description(f"{kernel.name} sampling")
            bar.unit_scale = 1
        # thinned draws: the progress bar counts kernel steps
        sample_bar = _ThinBar(bar, thin) if bar is not None else None
        states, parameters, _, draws, done, interrupted = _run_phase(
            kernel, pot, parameters, states, None, key_sample, first_step, num_samples, thin,
            chunk_size, "sample", None, sample_bar, True, postprocess,
        )
    finally:
        if bar is not None:
            bar.close()
    if interrupted:
        if not draws:
            raise KeyboardInterrupt
        warnings.warn(
            f"sampling interrupted: returning the {done} of {num_samples} draws per chain "
            "finished before Ctrl-C",
            RuntimeWarning,
            stacklevel=2,
        )
    elapsed = time.perf_counter() - started

    names = position_names(pot.constrain(one) if postprocess is not None else one)
    posterior, stats = _assemble(draws, names)
    step_size = np.asarray(_step_size_stat(kernel, parameters, num_chains))
    stats["step_size"] = np.broadcast_to(step_size[:, None], stats["lp"].shape).copy()
    warm_post = warm_stats = None
    if save_warmup and warm_draws:
        warm_post, warm_stats = _assemble(warm_draws, names)
    final_step_size = parameters.get("step_size")
    config = {
        **kernel.config,
        "kernel": kernel.name,
        "seed": seed if isinstance(seed, (int, np.integer)) else None,
        "num_samples": num_samples,
        "num_draws": done,
        "num_warmup": num_warmup,
        "num_chains": num_chains,
        "thin": thin,
        "adapt": bool(adapt),
        "adaptation": scheme,
        "interrupted": bool(interrupted),
        "sampling_time_s": elapsed,
        "potential_kind": pot.kind,
        "first_step": first_step,
        "resumed": resume is not None,
    }
    if final_step_size is not None:
        config["step_size"] = np.asarray(final_step_size).tolist()
    if kernel.adaptation == "scale":
        config["scale"] = np.asarray(scale_of(parameters)).tolist()
    idata = to_inference_data(
        posterior, stats, warmup_posterior=warm_post, warmup_sample_stats=warm_stats,
        attrs=run_attrs(config),
    )
    idata.add_groups(
        {"sampler_state": sampler_state_dataset(states, parameters, key_sample,
                                                first_step + done * thin, kernel.name)}
    )
    return idata


def _restore_state(idata: az.InferenceData, pot: Potential, kernel: Kernel):
    """Inverse of :func:`~ebm_ppl.inference_data.sampler_state_dataset`, checked against ``pot`` and ``kernel``."""
    import ast

    if not hasattr(idata, "sampler_state"):
        raise ValueError(
            "resume must be an InferenceData returned by ebm_ppl.sample (it has no "
            "'sampler_state' group)"
        )
    ds = idata.sampler_state
    if ds.attrs.get("kernel") != kernel.name:
        raise ValueError(
            f"resume was sampled with kernel {ds.attrs.get('kernel')!r}, got {kernel.name!r}"
        )
    state_leaves = [jnp.asarray(ds[f"state_{i}"].values)
                    for i in range(sum(n.startswith("state_") for n in ds.data_vars))]
    param_leaves = [jnp.asarray(ds[f"parameter_{i}"].values)
                    for i in range(sum(n.startswith("parameter_") for n in ds.data_vars))]
    num_chains = state_leaves[0].shape[0]
    # rebuild the pytree structures from the kernel on the stored position's shape
    state_def = jax.tree.structure(
        jax.eval_shape(lambda: kernel.init_fn(_first_position(state_leaves, pot),
                                              pot.logdensity_fn))
    )
    one = jax.tree.map(lambda x: x[0], jax.tree.unflatten(state_def, state_leaves).position)
    param_def = jax.tree.structure(_per_chain_parameters(kernel, one, num_chains))
    if state_def.num_leaves != len(state_leaves) or param_def.num_leaves != len(param_leaves):
        raise ValueError("resume's sampler state does not match this potential and kernel")
    states = jax.tree.unflatten(state_def, state_leaves)
    parameters = jax.tree.unflatten(param_def, param_leaves)
    key = jax.random.wrap_key_data(
        jnp.asarray(ast.literal_eval(ds.attrs["key_data"]), dtype=jnp.uint32)
    )
    return states, parameters, key, int(ds.attrs["next_step"]), num_chains


def _first_position(state_leaves: list[Array], pot: Potential) -> ArrayTree:
    """One chain's position: the first leaves of the stored state have its structure."""
    if pot.example is not None:
        n = len(jax.tree.leaves(pot.example))
        treedef = jax.tree.structure(pot.example)
        return jax.tree.unflatten(treedef, [leaf[0] for leaf in state_leaves[:n]])
    return state_leaves[0][0]


class _ThinBar:
    """Progress-bar proxy counting kernel steps of thinned draws."""

    def __init__(self, bar: Any, thin: int) -> None:
        self._bar, self._thin = bar, thin

    def update(self, n: int) -> None:
        self._bar.update(n * self._thin)

    def set_postfix(self, **kwargs: Any) -> None:
        self._bar.set_postfix(**kwargs)


def _assemble(chunks: list[dict[str, Any]], names: list[str]) -> tuple[dict, dict]:
    """Concatenate ``(draw, chain, ...)`` chunks and move chains first."""
    joined = jax.tree.map(lambda *a: np.concatenate(a, axis=0), *chunks)
    leaves = jax.tree.leaves(joined.pop("position"))
    posterior = {name: np.swapaxes(leaf, 0, 1) for name, leaf in zip(names, leaves)}
    stats = {name: np.swapaxes(value, 0, 1) for name, value in joined.items()}
    return posterior, stats
