r"""Parallel tempering (replica exchange) as a kernel wrapping any ebm_ppl kernel.

:func:`parallel_tempering` runs ``K`` copies (replicas) of a base kernel, replica ``k``
on the tempered target :math:`p(x)^{\beta_k}`, and swaps neighbouring replicas with a
Metropolis step; the cold replica (:math:`\beta_0 = 1`) is the chain that
:func:`ebm_ppl.sample` records. :func:`tempered_ladder` builds the default geometric
ladder and :func:`adapt_ladder` is Syed et al.'s ladder update, a pure function for a
warm-up to call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ebm_ppl import adaptation
from ebm_ppl._types import Array, ArrayLike, ArrayTree, LogDensityFn, PRNGKey
from ebm_ppl._validation import check_int
from ebm_ppl.adaptation import adapt_ladder, swap_rejection_rates
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.kernels.from_blackjax import check_kernel
from ebm_ppl.kernels.replicas import (
    check_betas,
    float_dtype,
    is_concrete,
    retemper,
    set_replica_parameters,
    swap_replicas,
    tempered,
    tempered_ladder,
    track_round_trips,
    untempered_logdensity,
)

__all__ = [
    "ParallelTemperingInfo",
    "ParallelTemperingState",
    "SWAP_SCHEMES",
    "adapt_ladder",
    "init_replicas",
    "is_parallel_tempering",
    "parallel_tempering",
    "replica_step_sizes",
    "swap_rejection_rates",
    "swap_replicas",
    "tempered_ladder",
    "track_round_trips",
    "with_betas",
    "with_replica_step_sizes",
]

#: Swap schemes: ``"deo"`` deterministic even/odd (non-reversible, the default) and
#: ``"seo"`` stochastic even/odd (reversible).
SWAP_SCHEMES = ("deo", "seo")

#: Name of the kernels built by :func:`parallel_tempering`.
_NAME = "parallel_tempering"


class ParallelTemperingState(NamedTuple):
    """State of :func:`parallel_tempering`.

    Attributes
    ----------
    position
        The cold (:math:`\\beta = 1`) replica's position, shaped as the target's (what
        :func:`ebm_ppl.sample` records). First field, as ``sample(resume=...)`` needs.
    logdensity
        The untempered :math:`\\log p` at ``position`` (``lp`` in ``sample_stats``).
    replicas
        The base kernel's states with a leading replica axis ``K``; replica ``k``'s
        cached log density and gradient are those of :math:`\\beta_k \\log p`.
    betas
        ``(K,)`` inverse temperatures the cached values of ``replicas`` refer to (a step
        with another ladder rescales them first, so a ladder may change between steps;
        all 1 after ``init``).
    labels
        ``(K,)`` int: which replica (numbered by its starting temperature) sits at each
        temperature.
    directions
        ``(K,)`` int, per temperature slot like ``labels``: +1 for the replica that last
        visited the cold end (travelling hot), -1 for one that last visited the hot end
        after the cold one (travelling back), 0 for one not yet at the cold end.
    round_trips
        Cumulative number of round trips cold → hottest → cold, over all replicas.
    step
        Number of steps taken (its parity picks the deterministic even/odd pairs).
    """

    position: ArrayTree
    logdensity: Array
    replicas: Any
    betas: Array
    labels: Array
    directions: Array
    round_trips: Array
    step: Array


class ParallelTemperingInfo(NamedTuple):
    """Info of :func:`parallel_tempering`.

    Attributes
    ----------
    acceptance_rate, is_divergent
        Of the cold replica's base step (so step-size statistics and adaptation of the
        cold chain work as for the base kernel).
    swap_acceptance
        ``(K - 1,)`` acceptance probability of the swap of pair ``(i, i + 1)`` at this
        step; NaN for pairs not proposed at this step.
    replica_acceptance
        ``(K,)`` acceptance rate of every replica's base step.
    round_trips
        Cumulative number of round trips (as in the state).
    """

    acceptance_rate: Array
    is_divergent: Array
    swap_acceptance: Array
    replica_acceptance: Array
    round_trips: Array


@dataclasses.dataclass(frozen=True)
class _Init:
    """``init(position, logdensity_fn)``: every replica at ``position``, caches at
    :math:`\beta = 1` (the first step rescales them to the ladder, so the ladder stays a
    traced parameter). Compared by value, so equal kernels share a compilation."""

    base_init_fn: Callable
    num_replicas: int

    def __call__(self, position: ArrayTree, logdensity_fn: LogDensityFn
                 ) -> ParallelTemperingState:
        betas = jnp.ones(self.num_replicas, dtype=float_dtype())
        positions = jax.tree.map(
            lambda x: jnp.broadcast_to(x, (betas.shape[0], *jnp.shape(x))), position
        )
        return _init_from(self.base_init_fn, positions, betas, logdensity_fn)


def _init_from(
    base_init_fn: Callable, positions: ArrayTree, betas: Array, logdensity_fn: LogDensityFn
) -> ParallelTemperingState:
    replicas = jax.vmap(lambda x, beta: base_init_fn(x, tempered(logdensity_fn, beta)))(
        positions, betas
    )
    num = betas.shape[0]
    position = jax.tree.map(lambda x: x[0], positions)
    return ParallelTemperingState(
        position=position,
        logdensity=untempered_logdensity(replicas, betas, logdensity_fn)[0],
        replicas=replicas,
        betas=betas,
        labels=jnp.arange(num, dtype=jnp.int32),
        directions=jnp.zeros(num, jnp.int32).at[0].set(1),
        round_trips=jnp.zeros((), jnp.int32),
        step=jnp.zeros((), jnp.int32),
    )


def init_replicas(
    kernel: Kernel, positions: ArrayTree, logdensity_fn: LogDensityFn
) -> ParallelTemperingState:
    """The state of a :func:`parallel_tempering` kernel with replica ``k`` at
    ``positions[k]`` (leading axis ``K`` on every leaf), where ``kernel.init`` puts
    every replica at one position."""
    _check_tempering_kernel(kernel)
    betas = kernel.parameters["betas"]
    num = jax.tree.leaves(positions)[0].shape[0]
    if num != betas.shape[0]:
        raise ValueError(f"positions must have a leading axis of length {betas.shape[0]} "
                         f"(one per temperature), got {num}")
    return _init_from(kernel.parameters["kernel"].init_fn, positions, betas, logdensity_fn)


def _parallel_tempering_step(
    rng_key: PRNGKey,
    state: ParallelTemperingState,
    logdensity_fn: LogDensityFn,
    kernel: Kernel,
    betas: Array,
    swap: str,
) -> tuple[ParallelTemperingState, ParallelTemperingInfo]:
    """One step of :func:`parallel_tempering`: every replica's base step, then swaps."""
    key_replicas, key_parity, key_swap = jax.random.split(rng_key, 3)
    num = betas.shape[0]
    betas = betas.astype(state.betas.dtype)
    replicas = retemper(state.replicas, betas / state.betas, betas, kernel.init_fn,
                         logdensity_fn)

    def one(base: Kernel, beta: Array, key: PRNGKey, replica: Any) -> tuple[Any, Any]:
        return base.step(key, replica, tempered(logdensity_fn, beta))

    replicas, infos = jax.vmap(one)(kernel, betas, jax.random.split(key_replicas, num),
                                    replicas)
    if swap == "deo":
        parity = state.step % 2
    else:
        parity = jax.random.bernoulli(key_parity).astype(jnp.int32)
    state = state._replace(replicas=replicas, betas=betas)
    state, swap_acceptance = swap_replicas(key_swap, state, logdensity_fn, parity,
                                           kernel.init_fn)
    state = state._replace(step=state.step + 1)
    info = ParallelTemperingInfo(
        acceptance_rate=infos.acceptance_rate[0],
        is_divergent=infos.is_divergent[0],
        swap_acceptance=swap_acceptance,
        replica_acceptance=infos.acceptance_rate,
        round_trips=state.round_trips,
    )
    return state, info


def is_parallel_tempering(kernel: Any) -> bool:
    """Whether ``kernel`` was built by :func:`parallel_tempering` (its states then hold
    ``K`` replicas, which :func:`init_replicas` builds from ``K`` positions)."""
    return isinstance(kernel, Kernel) and isinstance(kernel.init_fn, _Init)


def _check_tempering_kernel(kernel: Any) -> None:
    if not is_parallel_tempering(kernel):
        raise TypeError(f"kernel must be a parallel_tempering kernel, got "
                        f"{getattr(kernel, 'name', type(kernel).__name__)!r}")


def parallel_tempering(
    kernel: Kernel,
    num_temperatures: int | None = None,
    max_temperature: float | None = None,
    *,
    betas: ArrayLike | None = None,
    swap: str = "deo",
    replica_parameters: Mapping[str, ArrayLike] | None = None,
) -> Kernel:
    r"""Parallel tempering (replica exchange) over any ebm_ppl kernel.

    ``K`` replicas run the base ``kernel``, replica ``k`` on the tempered target
    :math:`\pi_k(x) \propto p(x)^{\beta_k}`, with
    :math:`1 = \beta_0 > \beta_1 > \dots > \beta_{K-1} = 1 / T_{\max}`. Each step moves
    every replica with one base step (``vmap`` over replicas, each with its own key and
    its own hyper-parameters), then proposes to swap the states of neighbouring pairs
    ``(i, i + 1)`` of one parity, accepted with probability

    .. math::

        \alpha_i = \min\Big\{1, \frac{\pi_i(x_{i+1})\, \pi_{i+1}(x_i)}
            {\pi_i(x_i)\, \pi_{i+1}(x_{i+1})}\Big\}
          = \min\Big\{1, \exp\big[(\beta_i - \beta_{i+1})
            \big(\log p(x_{i+1}) - \log p(x_i)\big)\big]\Big\}.

    Both moves leave the product :math:`\prod_k \pi_k(x_k)` invariant, so the cold
    replica's marginal is the target :math:`p`; hot replicas cross the energy barriers
    between modes (a barrier of :math:`\Delta` nats costs :math:`\beta \Delta` at
    :math:`\beta`) and hand the new modes down the ladder through the swaps.

    *Why non-reversible swaps.* With ``swap="seo"`` (stochastic even/odd) the parity of
    the pairs is drawn at random each step: the swap kernel is reversible, and a state
    diffuses along the ladder, needing :math:`O(K^2)` steps for a round trip
    cold → hottest → cold. With ``swap="deo"`` (deterministic even/odd, the default)
    even steps propose ``(0, 1), (2, 3), ...`` and odd steps ``(1, 2), (3, 4), ...``:
    an accepted swap carries a state on in the same direction at the next step, so it
    travels the ladder ballistically, in :math:`O(K)` steps; the round-trip rate then
    grows with :math:`K` up to :math:`1 / (2 + 2\Lambda)`, :math:`\Lambda` the
    communication barrier, instead of collapsing (Syed et al. 2022). Each even or odd
    swap kernel is invariant, hence so is their alternation.

    Parameters
    ----------
    kernel
        The base kernel (:func:`~ebm_ppl.kernels.mala`, :func:`~ebm_ppl.kernels.hmc`,
        :func:`~ebm_ppl.kernels.nuts`, :func:`~ebm_ppl.kernels.random_walk`,
        :func:`~ebm_ppl.kernels.ula`, :func:`~ebm_ppl.kernels.from_blackjax`...). Its
        hyper-parameters are broadcast to every replica unless ``replica_parameters``
        sets them.
    num_temperatures
        :math:`K \geq 2`; 8 by default (``len(betas)`` when ``betas`` is given).
    max_temperature
        :math:`T_{\max} > 1`: the ladder is :func:`tempered_ladder` (geometric from 1
        to :math:`1/T_{\max}`). Required unless ``betas`` is given. Choose it so that
        the hottest replica crosses the barriers: :math:`T_{\max}` of the order of the
        barrier height in nats.
    betas
        The ladder itself, ``(K,)`` strictly decreasing in (0, 1], first 1 (then leave
        ``max_temperature`` out).
    swap
        ``"deo"`` (deterministic even/odd, non-reversible) or ``"seo"`` (stochastic
        even/odd, reversible).
    replica_parameters
        Per-replica values of the base kernel's numeric hyper-parameters, each with a
        leading axis of length ``K``: e.g. ``{"step_size": 0.1 / betas}`` for MALA
        (hotter replicas are wider, so want larger steps: MALA's and ULA's step sizes
        scale like a variance, :math:`1/\beta`; HMC's step size and a random walk's
        ``"scale"`` like a standard deviation, :math:`\beta^{-1/2}`).

    Returns
    -------
    Kernel
        Named ``"parallel_tempering"``; its state is a :class:`ParallelTemperingState`
        whose ``position`` and ``logdensity`` are the cold replica's, its info a
        :class:`ParallelTemperingInfo`. :func:`ebm_ppl.sample` records the cold
        replica and the swap statistics (``swap_acceptance``, ``replica_acceptance``,
        ``round_trips``). Its ``default_warmup`` is :func:`ebm_ppl.adaptation.tempering`
        (per-replica step sizes and the ladder) when the base kernel has a step size,
        otherwise none.

    Raises
    ------
    TypeError
        If ``kernel`` is not an ebm_ppl kernel or ``replica_parameters`` not a dict.
    ValueError
        If ``num_temperatures``, ``max_temperature``, ``betas``, ``swap`` or
        ``replica_parameters`` is invalid, or the ladder is given twice or not at all.

    Notes
    -----
    The cached log density and gradient of a base state (fields ``logdensity`` and
    ``logdensity_grad``, as every ebm_ppl and BlackJAX state has) are those of the
    tempered target, :math:`\beta_k \log p` and :math:`\beta_k \nabla \log p`; a swap
    moves a state to another :math:`\beta`, so they are multiplied by
    :math:`\beta_{\text{new}} / \beta_{\text{old}}` (a state without a ``logdensity``
    field is initialised again by the base kernel instead). Any other cached quantity
    must not depend on :math:`\beta`. The state also records the ladder its caches
    refer to, so the ladder may be changed between steps (:func:`with_betas`,
    :func:`adapt_ladder`).

    References
    ----------
    Geyer (1991), *Markov chain Monte Carlo maximum likelihood*, Computing Science and
    Statistics 23. Swendsen & Wang (1986), *Replica Monte Carlo simulation of spin
    glasses*, Phys. Rev. Lett. 57.
    Syed, Bouchard-Côté, Deligiannidis & Doucet (2022), *Non-reversible parallel
    tempering: a scalable highly parallel MCMC scheme*, JRSSB 84(2),
    https://arxiv.org/abs/1905.02939
    Okabe, Kawata, Okamoto & Mikami (2001), *Replica-exchange Monte Carlo method for the
    isobaric-isothermal ensemble*, Chem. Phys. Lett. 335 (the even/odd scheme).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from ebm_ppl import kernels
    >>> betas = kernels.tempered_ladder(4, 50.0)
    >>> pt = kernels.parallel_tempering(kernels.mala(0.2), betas=betas,
    ...                                 replica_parameters={"step_size": 0.2 / betas})
    >>> logdensity = lambda x: jnp.logaddexp(-0.5 * jnp.sum((x - 4) ** 2), -0.5 * x @ x)
    >>> state = pt.init(jnp.zeros(2), logdensity)
    >>> state, info = jax.jit(pt.step, static_argnums=2)(jax.random.key(0), state, logdensity)
    >>> state.position.shape, info.swap_acceptance.shape
    ((2,), (3,))
    """
    check_kernel(kernel)
    if is_parallel_tempering(kernel):
        raise ValueError("kernel must not itself be a parallel_tempering kernel")
    if swap not in SWAP_SCHEMES:
        raise ValueError(f"swap must be one of {SWAP_SCHEMES}, got {swap!r}")
    if betas is None:
        if max_temperature is None:
            raise ValueError("max_temperature must be given when betas is None (e.g. "
                             "max_temperature=100.0, or pass the ladder as betas=)")
        num = 8 if num_temperatures is None else num_temperatures
        ladder = tempered_ladder(num, max_temperature)
    else:
        if max_temperature is not None:
            raise ValueError("pass either max_temperature or betas, not both")
        ladder = check_betas(betas)
        if num_temperatures is not None:
            check_int("num_temperatures", num_temperatures, 2)
            if num_temperatures != ladder.shape[0]:
                raise ValueError(f"num_temperatures must equal len(betas)={ladder.shape[0]}, "
                                 f"got {num_temperatures}")
    num = ladder.shape[0]
    base = jax.tree.map(lambda leaf: jnp.broadcast_to(jnp.asarray(leaf),
                                                      (num, *jnp.shape(leaf))), kernel)
    if replica_parameters is not None:
        base = set_replica_parameters(base, replica_parameters, num)
    return Kernel(
        name=_NAME,
        init_fn=_Init(kernel.init_fn, num),
        kernel_fn=_parallel_tempering_step,
        parameters={"kernel": base, "betas": ladder},
        static_parameters=(("swap", swap),),
        default_warmup=_default_warmup(kernel),
    )


def _default_warmup(kernel: Kernel) -> adaptation.Warmup:
    """:func:`~ebm_ppl.adaptation.tempering` for a base kernel that adapts a step size
    (and the replicas' mass matrices when its own warm-up is ``window``); none for one
    that adapts nothing (ULA: acceptance 1 would grow its steps without bound)."""
    own = kernel.default_warmup
    if "step_size" not in kernel.parameters or own.name == "none":
        return adaptation.NoWarmup(kernel.target_acceptance_rate)
    return adaptation.tempering(own.target_acceptance_rate, adapt_mass_matrix=(
        own.name == "window" and "inverse_mass_matrix" in kernel.parameters))


def replica_step_sizes(kernel: Kernel) -> Array | None:
    """The ``(K,)`` per-replica step sizes of a :func:`parallel_tempering` kernel (a
    random walk's scales), or None when the base kernel has neither."""
    _check_tempering_kernel(kernel)
    return kernel.parameters["kernel"].step_size


def with_replica_step_sizes(kernel: Kernel, step_sizes: ArrayLike) -> Kernel:
    """The :func:`parallel_tempering` kernel with its per-replica step sizes (a random
    walk's scales) replaced; traceable, so a warm-up may call it under ``jit``."""
    _check_tempering_kernel(kernel)
    base = kernel.parameters["kernel"]
    if "step_size" in base.parameters:
        base = base.replace(step_size=step_sizes)
    elif base.scale is not None:
        base = base.replace(proposal=base.parameters["proposal"].with_scale(step_sizes))
    else:
        raise ValueError(f"the base kernel {base.name!r} has no step size or scale")
    return dataclasses.replace(kernel, parameters={**kernel.parameters, "kernel": base})


def with_betas(kernel: Kernel, betas: ArrayLike) -> Kernel:
    """The :func:`parallel_tempering` kernel with another ladder (same length);
    traceable. States made with the old ladder stay valid: the next step rescales their
    cached values."""
    _check_tempering_kernel(kernel)
    old = kernel.parameters["betas"]
    if is_concrete(betas) and np.ndim(betas) == 1:
        betas = check_betas(betas)
    if jnp.shape(betas) != jnp.shape(old):
        raise ValueError(f"betas must have shape {jnp.shape(old)}, got {jnp.shape(betas)}")
    return dataclasses.replace(kernel, parameters={**kernel.parameters,
                                                   "betas": jnp.asarray(betas, old.dtype)})
