"""``ebm_ppl.sample``: validate, set up the chains, run warm-up and sampling, assemble
the ArviZ InferenceData, check the finished run."""

from __future__ import annotations

import time
import warnings
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import numpy as np

from ebm_ppl._types import Array, ArrayLikeTree, ArrayTree, PRNGKey
from ebm_ppl._validation import as_key, check_int, check_nonnegative
from ebm_ppl.adaptation import NoWarmup, Warmup
from ebm_ppl.inference_data import position_names, run_attrs, to_inference_data
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.kernels.from_blackjax import check_kernel
from ebm_ppl.model.groups import add_model_groups
from ebm_ppl.potential import Potential
from ebm_ppl.sampling.checks import check_finite_start, check_position, warn_suspicious
from ebm_ppl.sampling.distributed import gather, run_info, shard_chains
from ebm_ppl.sampling.driver import (
    DEFAULT_CHUNK_SIZE,
    Phase,
    init_chains_and_kernels,
    progress_bar,
    run_phase,
    step_size_stat,
)
from ebm_ppl.sampling.health import warn_run_problems, warn_short_warmup
from ebm_ppl.sampling.positions import initial_positions
from ebm_ppl.sampling.resume import SAMPLER_STATE, restore_state, sampler_state_dataset

if TYPE_CHECKING:
    import arviz as az

__all__ = ["sample"]


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
    warmup: Warmup | None = None,
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
        Warm-up steps per chain, discarded. With ``adapt=True`` they tune the kernel
        (:mod:`ebm_ppl.adaptation`): Stan's window adaptation (step size and diagonal or
        dense inverse mass matrix, starting from the kernel's own) for HMC, NUTS and
        Barker, dual averaging of the step size for MALA, Robbins–Monro adaptation of
        the scale for random-walk MH (:math:`\log s \mathrel{+}= t^{-0.6}(\alpha_t -
        \alpha^\star)`), none for ULA (its step size sets its bias; see
        :func:`ebm_ppl.diagnostics.ula_bias`). Each chain adapts on its own. Window
        adaptation with fewer than 150 steps warns (:class:`~ebm_ppl.SamplingWarning`).
    num_chains
        Independent chains, run in parallel under ``jax.vmap``.
    seed
        Integer seed or ``jax.random`` key. The same seed gives identical draws.
    adapt
        Whether warm-up adapts the kernel's parameters (False: ``num_warmup`` plain
        steps).
    warmup
        The warm-up to run, an :mod:`ebm_ppl.adaptation` object (``window(...)``,
        ``dual_averaging(...)``, ``robbins_monro(...)``, ``mclmc()``, ``none()``); None
        (default): the kernel's own, ``kernel.default_warmup``.
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
    TypeError
        When ``pot``, ``kernel`` or ``seed`` has the wrong type.
    ValueError
        For invalid arguments, and when the log density or its gradient is not finite
        at a chain's initial position (the message names the chains).

    Warns
    -----
    SamplingWarning
        After the run (:mod:`ebm_ppl.sampling.health`): chains that blew up (non-finite
        or :math:`|x| > 10^{10}`) or never moved, more than 1 % divergent transitions,
        R-hat above 1.05; before it, a warm-up too short for window adaptation.

    Examples
    --------
    >>> import jax.numpy as jnp, ebm_ppl
    >>> pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2))
    >>> idata = ebm_ppl.sample(pot, ebm_ppl.kernels.mala(0.5), jnp.zeros(2),
    ...                        num_samples=200, num_warmup=200, progress=False)
    >>> idata.posterior["x"].shape
    (4, 200, 2)
    """
    _check_types(pot, kernel)
    if warmup is not None and not isinstance(warmup, Warmup):
        raise TypeError("warmup must be an ebm_ppl.adaptation warm-up (adaptation.window(), "
                        f"adaptation.dual_averaging(), ...) or None, got {type(warmup).__name__}")
    warmup = kernel.default_warmup if warmup is None else warmup
    num_samples = check_int("num_samples", num_samples, 1)
    num_warmup = check_int("num_warmup", num_warmup, 0)
    num_chains = check_int("num_chains", num_chains, 1)
    thin = check_int("thin", thin, 1)
    chunk_size = check_int("chunk_size", chunk_size, 1)
    jitter = check_nonnegative("jitter", jitter)
    key_init, key_warmup, key_sample = _split_seed(as_key(seed))
    if resume is not None:
        restored = restore_state(resume, pot, kernel)
        states, kernels, key_sample = restored.states, restored.kernels, restored.key
        first_step, num_chains = restored.next_step, restored.num_chains
        num_warmup, active, tune_once, warmup_states = 0, None, False, None
        one = _first(states.position)
    else:
        positions = initial_positions(pot, init, num_chains, key_init, jitter)
        one = _first(positions)
        check_position(pot, one, name="init")
        check_finite_start(pot, positions)
        if check_target:
            warn_suspicious(pot, kernel, one)
        active = warmup if adapt and not isinstance(warmup, NoWarmup) else None
        tune_once = active is not None and active.tunes_once  # MCLMC: one call, not per step
        warn_short_warmup(active, num_warmup)
        states, kernels, warmup_states = init_chains_and_kernels(  # an int: no blocking op
            kernel, pot, positions, num_warmup, warmup=None if tune_once else active
        )
        if tune_once and num_warmup > 0:
            states, kernels = active.tune(kernels, key_warmup, states, pot, num_warmup)
        first_step = 0
    states, kernels, warmup_states = shard_chains((states, kernels, warmup_states), num_chains)
    postprocess = partial(_constrain_draws, pot) if pot.postprocess_fn is not None else None

    phases = (Phase(key_warmup, 0, 0 if tune_once else num_warmup, 1, chunk_size,
                    None if tune_once else active, save_warmup),
              Phase(key_sample, first_step, num_samples, thin, chunk_size, None, True))
    started = time.perf_counter()
    states, kernels, warm_draws, draws, done, interrupted = _run(
        phases, kernels, pot, states, warmup_states, progress, kernel.name, postprocess
    )
    elapsed = time.perf_counter() - started
    states, kernels = gather((states, kernels))

    names = position_names(pot.constrain(one) if postprocess is not None else one)
    config = {
        **kernel.config, "kernel": kernel.name,
        "seed": seed if isinstance(seed, (int, np.integer)) else None,
        "num_samples": num_samples, "num_draws": done, "num_warmup": num_warmup,
        "num_chains": num_chains, "thin": thin, "adapt": bool(adapt),
        "adaptation": "none" if active is None else active.name,
        "interrupted": bool(interrupted), "sampling_time_s": elapsed,
        "potential_kind": pot.kind, "first_step": first_step, "resumed": resume is not None,
        **run_info(),
    }
    posterior, stats = _chain_first(draws, names, kernels, num_chains)
    warn_run_problems(posterior, stats)  # on the arrays: no xarray in the checks
    idata = _assemble(posterior, stats, warm_draws, names, kernels, config)
    idata.add_groups({SAMPLER_STATE: sampler_state_dataset(
        states, kernels, key_sample, first_step + done * thin, kernel.name)})
    return add_model_groups(idata, pot) if pot.kind == "model" else idata


def _check_types(pot: Any, kernel: Any) -> None:
    if not isinstance(pot, Potential):
        raise TypeError(
            f"pot must be an ebm_ppl.Potential (see Potential.from_energy), got "
            f"{type(pot).__name__}"
        )
    check_kernel(kernel)  # a BlackJAX algorithm gets the from_blackjax call to use


@jax.jit
def _split_seed(key: PRNGKey) -> tuple[PRNGKey, PRNGKey, PRNGKey]:
    """Keys of the initial positions, the warm-up and the sampling (one dispatch)."""
    return tuple(jax.random.split(key, 3))


@jax.jit
def _first(tree: ArrayTree) -> ArrayTree:
    """The first chain's position (one dispatch for all leaves)."""
    return jax.tree.map(lambda x: x[0], tree)


@jax.jit
def _constrain_draws(pot: Potential, positions: ArrayTree) -> dict[str, Array]:
    """Map ``(chain, draw, ...)`` unconstrained positions to the model's sites."""
    return jax.vmap(jax.vmap(pot.constrain))(positions)


class _RunResult(NamedTuple):
    """The final carry of a run and the kept draws of its two phases."""

    states: Any
    kernels: Kernel
    warm_draws: dict[str, Any] | None
    draws: dict[str, Any] | None
    done: int
    interrupted: bool


def _run(phases, kernels, pot, states, warmup_states, progress, name, postprocess
         ) -> _RunResult:
    """Warm-up then sampling, with one progress bar; Ctrl-C during sampling keeps the
    finished chunks (with a warning), during warm-up it propagates."""
    warm, main = phases
    bar = progress_bar(progress, warm.num_draws + main.num_draws * main.thin, name)
    try:
        if bar is not None:
            bar.set_description(f"{name} warmup")
        warm_result = run_phase(warm, kernels, pot, states, warmup_states, bar, postprocess)
        if warm_result.interrupted:
            raise KeyboardInterrupt
        if bar is not None:
            bar.set_description(f"{name} sampling")
        result = run_phase(main, warm_result.kernels, pot, warm_result.states, None, bar,
                           postprocess)
    finally:
        if bar is not None:
            bar.close()
    if result.interrupted:
        if not result.draws:
            raise KeyboardInterrupt
        warnings.warn(
            f"sampling interrupted: returning the {result.done} of {main.num_draws} draws "
            "per chain finished before Ctrl-C", RuntimeWarning, stacklevel=3,
        )
    return _RunResult(result.states, result.kernels, warm_result.draws, result.draws,
                      result.done, result.interrupted)


def _split_draws(draws: dict[str, Any], names: list[str]) -> tuple[dict, dict]:
    """Chain-first draws of :func:`~ebm_ppl.sampling.driver.run_phase` as the posterior
    (one variable per position leaf) and the statistics (ArviZ names, sorted)."""
    posterior = dict(zip(names, jax.tree.leaves(draws["position"])))
    stats = {name: draws[name] for name in sorted(draws) if name != "position"}
    return posterior, stats


def _chain_first(draws, names, kernels, num_chains) -> tuple[dict, dict]:
    """Posterior and sample stats of the sampling phase; the step size is constant while
    sampling, stored once per chain and broadcast here."""
    posterior, stats = _split_draws(draws, names)
    step_size = np.asarray(step_size_stat(kernels, num_chains))
    stats["step_size"] = np.broadcast_to(step_size[:, None], stats["lp"].shape).copy()
    return posterior, stats


def _assemble(posterior, stats, warm_draws, names, kernels, config) -> az.InferenceData:
    """The InferenceData of a run: posterior, sample stats, optional warm-up groups."""
    warm_post = warm_stats = None
    if warm_draws:
        warm_post, warm_stats = _split_draws(warm_draws, names)
    if "step_size" in kernels.parameters:
        config["step_size"] = np.asarray(kernels.parameters["step_size"]).tolist()
    if kernels.scale is not None:
        config["scale"] = np.asarray(kernels.scale).tolist()
    return to_inference_data(posterior, stats, warmup_posterior=warm_post,
                             warmup_sample_stats=warm_stats, attrs=run_attrs(config))
