"""Warm-up of parallel tempering: per-replica step sizes and the temperature ladder."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.mass_matrix import mass_matrix_adaptation
from blackjax.adaptation.step_size import dual_averaging_adaptation
from jax.flatten_util import ravel_pytree

from ebm_ppl._types import Array, ArrayLike, ArrayTree
from ebm_ppl.adaptation.base import Kernel, Warmup, counters

__all__ = ["TemperingState", "TemperingWarmup", "adapt_ladder", "check_ladder",
           "swap_rejection_rates"]


def check_ladder(betas: Any, name: str = "betas") -> Array:
    """``betas`` as a float array after checking it is a valid ladder (when concrete):
    1-D, at least 2 entries in (0, 1], starting at 1, strictly decreasing; the messages
    name the argument ``name``."""
    if isinstance(betas, jax.core.Tracer):
        return betas
    arr = np.asarray(betas, dtype=float)
    if arr.ndim != 1 or arr.shape[0] < 2:
        raise ValueError(f"{name} must be a 1-D array of at least 2 inverse temperatures, "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0) or np.any(arr > 1):
        raise ValueError(f"{name} must lie in (0, 1], got {arr.tolist()}")
    if arr[0] != 1.0:
        raise ValueError(f"{name} must start at 1 (the target itself), got {arr[0]!r}")
    if np.any(np.diff(arr) >= 0):
        raise ValueError(f"{name} must be strictly decreasing, got {arr.tolist()}")
    return jnp.asarray(arr, dtype=jnp.result_type(float))


def adapt_ladder(betas: ArrayLike, swap_rejection_rates: ArrayLike) -> Array:
    r"""Syed et al.'s ladder update: new inverse temperatures equally spaced in the
    estimated communication barrier.

    The rejection rate of the swap between :math:`\beta_{i+1} < \beta_i` estimates the
    increment of the communication barrier :math:`\Lambda` over that interval, so

    .. math::

        \hat\Lambda(\beta_{K-1}) = 0, \qquad
        \hat\Lambda(\beta_i) = \sum_{j = i}^{K - 2} r_j,

    extended to :math:`[\beta_{K-1}, 1]` by piecewise-linear interpolation in
    :math:`\beta`. The new ladder has the same end points and
    :math:`\hat\Lambda(\beta'_k) = \hat\Lambda(1)\, (K - 1 - k) / (K - 1)`, so that every
    pair faces the same share :math:`\hat\Lambda(1) / (K - 1)` of the barrier: the
    rejection rates are equalised, which maximises the round-trip rate of
    non-reversible parallel tempering. Iterating it (with fresh rejection rates each
    time) converges to the ladder of equal rejection rates.

    Parameters
    ----------
    betas
        ``(K,)`` current inverse temperatures, strictly decreasing, first 1.
    swap_rejection_rates
        ``(K - 1,)`` mean rejection probability :math:`r_i = 1 - \bar\alpha_i` of the
        swaps of pair ``(i, i + 1)`` (:func:`swap_rejection_rates` computes it from the
        ``swap_acceptance`` of the infos), each in [0, 1].

    Returns
    -------
    jax.Array
        ``(K,)`` new inverse temperatures; ``betas`` unchanged when every rate is 0 (no
        barrier to spread).

    Raises
    ------
    ValueError
        If ``betas`` is not a valid ladder or the rates are not ``K - 1`` numbers in
        [0, 1] (checked for concrete arrays only: the function also runs under ``jit``).

    References
    ----------
    Syed, Bouchard-Côté, Deligiannidis & Doucet (2022), *Non-reversible parallel
    tempering: a scalable highly parallel MCMC scheme*, JRSSB 84(2), Section 5.3,
    https://arxiv.org/abs/1905.02939

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> new = adapt_ladder(jnp.array([1.0, 0.5, 0.1]), jnp.array([0.4, 0.1]))
    >>> [round(b, 4) for b in new.tolist()]  # the hard pair (1, 0.5) narrowed
    [1.0, 0.6875, 0.1]
    """
    betas = check_ladder(betas)
    rates = swap_rejection_rates
    if not isinstance(rates, jax.core.Tracer):
        arr = np.asarray(rates, dtype=float)
        if arr.shape != (betas.shape[0] - 1,):
            raise ValueError(f"swap_rejection_rates must have shape ({betas.shape[0] - 1},) "
                             f"(one per neighbouring pair), got {arr.shape}")
        if not np.all((arr >= 0) & (arr <= 1)):
            raise ValueError(f"swap_rejection_rates must lie in [0, 1], got {arr.tolist()}")
    rates = jnp.asarray(rates, dtype=betas.dtype)
    num = betas.shape[0]
    # barrier at the ladder points in increasing beta order: 0 at the hottest
    barrier = jnp.concatenate([jnp.zeros(1, betas.dtype), jnp.cumsum(rates[::-1])])
    total = barrier[-1]
    targets = total * jnp.linspace(0.0, 1.0, num, dtype=betas.dtype)
    new = jnp.interp(targets, barrier, betas[::-1])[::-1]
    new = new.at[0].set(betas[0]).at[-1].set(betas[-1])
    return jnp.where(total > 0, new, betas)


def swap_rejection_rates(swap_acceptance: ArrayLike) -> Array:
    """Mean swap rejection probability per pair, ``1 - nanmean(swap_acceptance)`` over
    every axis but the last (steps, chains): the input of :func:`adapt_ladder`. The NaN
    of pairs not proposed at a step are skipped; a pair never proposed gets NaN."""
    acceptance = jnp.asarray(swap_acceptance)
    axes = tuple(range(acceptance.ndim - 1))
    return 1.0 - jnp.nanmean(acceptance, axis=axes)



class TemperingState(NamedTuple):
    """State of :func:`tempering`: per-replica dual-averaging states (leading replica
    axis), the swap acceptance summed per neighbour pair since the last ladder update
    and how many swaps each pair was offered, per-replica mass-matrix estimates (BlackJAX
    ``MassMatrixAdaptationState``, leading replica axis; None when not adapted), count,
    length."""

    dual_averaging: Any
    swap_sum: Array
    swap_count: Array
    mass: Any
    count: Array
    num_warmup: Array


@dataclasses.dataclass(frozen=True)
class TemperingWarmup(Warmup):
    r"""Warm-up of a :func:`~ebm_ppl.kernels.parallel_tempering` kernel (:func:`tempering`).

    Each replica's step size follows dual averaging towards ``target_acceptance_rate`` on
    its own acceptance (``sample_stats["replica_acceptance"]``); at the ends of the
    warm-up windows ``num_warmup / 2**k`` (``k = ladder_updates, ..., 1``) the inverse
    temperatures are re-spaced by :func:`adapt_ladder` from the swap rejection rates
    measured since the previous update, and each replica's dual averaging restarts from
    its average. With ``adapt_mass_matrix`` (the default for a base kernel whose own
    warm-up is :func:`window`: HMC, NUTS, preconditioned MALA, Barker) each replica's
    inverse mass matrix is also set at those window ends to the regularised covariance
    of that replica's positions in the window, Stan's
    :math:`\frac{n}{n + 5}\hat\Sigma + 10^{-3}\frac{5}{n + 5} I` (BlackJAX's
    ``mass_matrix_adaptation``), diagonal or dense as the base kernel's matrix: a
    replica at :math:`\beta` sees a target about :math:`1/\beta` times wider, so one
    matrix for all would be wrong for all but one. The replicas' base kernel must have a
    ``step_size``.

    Attributes
    ----------
    ladder_updates
        How many times the ladder is re-spaced (0: the ladder as given).
    adapt_mass_matrix
        Whether each replica's inverse mass matrix is estimated (the base kernel must
        have an ``inverse_mass_matrix``).
    """

    name: ClassVar[str] = "tempering"
    target_acceptance_rate: float = 0.574
    ladder_updates: int = 4
    adapt_mass_matrix: bool = False

    def observe(self, state: Any) -> ArrayTree:
        """Every replica's position (leading replica axis) when the mass matrices are
        adapted, else the cold one's."""
        return state.replicas.position if self.adapt_mass_matrix else state.position

    def init(self, kernel: Kernel, position: ArrayTree, num_warmup: ArrayLike
             ) -> TemperingState:
        base = kernel.parameters.get("kernel")
        if base is None or "betas" not in kernel.parameters or "step_size" not in getattr(
                base, "parameters", {}):
            raise ValueError(f"tempering adapts the replicas' step sizes of a "
                             f"parallel_tempering kernel with a step size; got kernel "
                             f"{kernel.name!r} (use warmup=adaptation.none())")
        da_init, _, _ = dual_averaging_adaptation(self.target_acceptance_rate)
        pairs = kernel.parameters["betas"].shape[0] - 1
        dtype = jnp.result_type(float)
        mass = None
        if self.adapt_mass_matrix:
            imm = base.parameters.get("inverse_mass_matrix")
            if imm is None:
                raise ValueError(f"tempering(adapt_mass_matrix=True) needs a base kernel "
                                 f"with an inverse mass matrix, got {base.name!r}")
            imm = jnp.asarray(imm)
            mm_init = mass_matrix_adaptation(imm.ndim == 2)[0]
            mass = jax.vmap(lambda m: mm_init(imm.shape[-1], m))(imm)
        return TemperingState(jax.vmap(da_init)(base.parameters["step_size"]),
                              jnp.zeros(pairs, dtype), jnp.zeros(pairs, dtype), mass,
                              *counters(num_warmup))

    def _step(self, kernel, state, position, acceptance_rate, stats):
        da_init, da_update, da_final = dual_averaging_adaptation(self.target_acceptance_rate)
        dual_averaging = jax.vmap(da_update)(state.dual_averaging, stats["replica_acceptance"])
        swap = stats["swap_acceptance"]
        offered = ~jnp.isnan(swap)
        swap_sum = state.swap_sum + jnp.where(offered, swap, 0.0)
        swap_count = state.swap_count + offered
        ends = jnp.asarray([state.num_warmup // 2**k for k in range(1, self.ladder_updates + 1)]
                           or [-1], jnp.int32)
        is_update = jnp.any(state.count + 1 == ends) & (state.count + 1 < state.num_warmup)
        betas = kernel.parameters["betas"]
        mass = state.mass
        if self.adapt_mass_matrix:  # position: every replica's (observe)
            _, mm_update, mm_final = mass_matrix_adaptation(mass.inverse_mass_matrix.ndim == 2)
            flat = jax.vmap(lambda x: ravel_pytree(x)[0])(position)
            mass = jax.vmap(mm_update)(mass, flat)

        def respace(args):
            dual_averaging, swap_sum, swap_count, mass = args
            rejection = 1.0 - swap_sum / jnp.maximum(swap_count, 1.0)
            new_betas = adapt_ladder(betas, jnp.clip(rejection, 0.0, 1.0))
            zeros = jnp.zeros_like(swap_sum)
            if mass is not None:
                mass = jax.vmap(mm_final)(mass)
            return (new_betas, jax.vmap(lambda d: da_init(da_final(d)))(dual_averaging),
                    zeros, zeros, mass)

        betas, dual_averaging, swap_sum, swap_count, mass = jax.lax.cond(
            is_update, respace, lambda args: (betas, *args),
            (dual_averaging, swap_sum, swap_count, mass))
        base = kernel.parameters["kernel"].replace(step_size=jnp.exp(dual_averaging.log_step_size))
        if mass is not None:
            base = base.replace(inverse_mass_matrix=mass.inverse_mass_matrix)
        kernel = kernel.replace(kernel=base, betas=betas)
        return kernel, state._replace(dual_averaging=dual_averaging, swap_sum=swap_sum,
                                      swap_count=swap_count, mass=mass)

    def final(self, kernel: Kernel, state: Any) -> Kernel:
        """The kernel with every replica's step size at its dual-averaging average."""
        _, _, da_final = dual_averaging_adaptation(self.target_acceptance_rate)
        step_size = jax.vmap(da_final)(state.dual_averaging)
        return kernel.replace(kernel=kernel.parameters["kernel"].replace(step_size=step_size))
