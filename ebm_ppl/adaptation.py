r"""Every warm-up of ebm_ppl, in optax's shape: one object per scheme, one state type each.

A warm-up is a frozen, hashable object (so it can be a static argument of ``jax.jit``;
two equal warm-ups share compiled code) with three pure methods, applied to one chain:

.. code-block:: python

    warmup = adaptation.window(target_acceptance_rate=0.8)      # or kernel.default_warmup
    state = warmup.init(kernel, position, num_warmup)             # before warm-up
    kernel, state = warmup.update(kernel, state, position, acceptance_rate)
    # ... once per warm-up transition, with the position and acceptance rate of the
    # transition just made by ``kernel``; the update of the last warm-up step (count
    # num_warmup - 1) also applies ``final``, and later calls leave both unchanged.
    kernel = warmup.final(kernel, state)                          # averaged values

The tuned hyper-parameters live in the returned kernel (``kernel.replace``), so what is
adapted is what the next ``kernel.step`` uses. ``num_warmup`` is a traced number: the
Stan window schedule is computed by :func:`window_stage` inside the trace, so a new
``num_warmup`` compiles nothing. Every kernel brings its own ``default_warmup``;
:func:`ebm_ppl.sample` and the NumPyro kernels take another one explicitly.

Warm-ups (each built by a factory of this module):

* :func:`window` — Stan's schedule (:func:`window_stage`): dual averaging of the step
  size in every window, and a diagonal or dense inverse mass matrix from Welford
  estimates (BlackJAX ``mass_matrix_adaptation``, regularised towards
  :math:`10^{-3} I` with weight :math:`5/(n+5)` unless ``regularize=False``; zero
  outside ``mass_blocks`` when given) in slow, doubling windows; the step size restarts
  at the end of each slow window. The start is the kernel's own ``inverse_mass_matrix``
  (user-given 1-D or 2-D, or the identity); it stays unchanged until the first slow
  window ends (with ``num_warmup < 20``, no window at all). ``adapt_step_size=False``
  keeps the kernel's step size (NumPyro's ``adapt_step_size=False``);
* :func:`dual_averaging` — dual averaging of the step size only (MALA; HMC/NUTS/Barker
  with ``adapt_mass_matrix=False``):

  .. math::

      \log h_{t+1} = \mu - \frac{\sqrt t}{\gamma (t + t_0)} \sum_{s \le t}
      (\delta - \alpha_s), \qquad
      \overline{\log h}_{t+1} = t^{-\kappa} \log h_{t} + (1 - t^{-\kappa})
      \overline{\log h}_t,

  :math:`\mu = \log 10 h_0`, :math:`\gamma = 0.05`, :math:`t_0 = 10`,
  :math:`\kappa = 0.75` (Hoffman & Gelman 2014, BlackJAX defaults; BlackJAX averages the
  iterate from before the update, as written); sampling uses
  :math:`\exp \overline{\log h}`;
* :func:`robbins_monro` — Robbins–Monro on the log scale of a random-walk proposal,
  :math:`\log s_{t+1} = \log s_t + t^{-0.6} (\alpha_t - \delta)`;
* :func:`mclmc` — BlackJAX's own MCLMC tuner (``mclmc_find_L_and_step_size``), run
  once over the whole warm-up instead of step by step (:meth:`MCLMCWarmup.tune`);
* :func:`tempering` — parallel tempering: each replica's step size by dual averaging on
  its own acceptance, and the ladder of inverse temperatures re-spaced by
  :func:`adapt_ladder` (Syed et al. 2022) towards equal swap rates;
* :func:`none` — nothing is adapted.

References
----------
Hoffman & Gelman (2014), https://arxiv.org/abs/1111.4246 (dual averaging);
Stan Reference Manual, *HMC algorithm parameters* (window schedule);
Andrieu & Thoms (2008), *A tutorial on adaptive MCMC*, Statistics and Computing 18;
Robnik, De Luca, Silverstein & Seljak (2023), https://arxiv.org/abs/2212.08549 (MCLMC).
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any, ClassVar, NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.mass_matrix import mass_matrix_adaptation, welford_algorithm
from blackjax.adaptation.mclmc_adaptation import MCLMCAdaptationState
from blackjax.adaptation.step_size import dual_averaging_adaptation
from jax.flatten_util import ravel_pytree

from ebm_ppl._types import Array, ArrayLike, ArrayTree, LogDensityFn, PRNGKey
from ebm_ppl._validation import check_probability

#: The kernel type (:class:`ebm_ppl.kernels.Kernel`), duck-typed here: the kernels import
#: this module for their default warm-ups, so it must not import them.
Kernel = Any

__all__ = [
    "WARMUPS",
    "MIN_WINDOW_WARMUP",
    "Warmup",
    "WindowWarmup",
    "DualAveragingWarmup",
    "RobbinsMonroWarmup",
    "MCLMCWarmup",
    "NoWarmup",
    "TemperingWarmup",
    "TemperingState",
    "WindowState",
    "DualAveragingState",
    "RobbinsMonroState",
    "NoWarmupState",
    "window",
    "dual_averaging",
    "robbins_monro",
    "mclmc",
    "tempering",
    "none",
    "from_name",
    "block_mask",
    "mclmc_warmup",
    "mclmc_warmup_chains",
    "window_stage",
    "warmup_schedule",
    "adapt_ladder",
    "swap_rejection_rates",
]

#: Robbins–Monro gain exponent for random-walk scale adaptation: γ_t = t^{-0.6}
#: satisfies Σγ = ∞, Σγ² < ∞ (Andrieu & Thoms 2008).
_RM_EXPONENT = 0.6
#: Stan's window sizes: initial fast buffer, first slow window, final fast buffer.
_INITIAL_BUFFER, _FIRST_WINDOW, _FINAL_BUFFER = 75, 25, 50
#: Below this many warm-up steps Stan's schedule has no slow window at all.
_MIN_WINDOWS = 20
#: Shortest warm-up that fits Stan's default windows (75 + 25 + 50); shorter ones are
#: squeezed (15 % / 75 % / 10 %) and :func:`ebm_ppl.sample` warns.
MIN_WINDOW_WARMUP = _INITIAL_BUFFER + _FIRST_WINDOW + _FINAL_BUFFER
#: Iterations of the window loop: window sizes double, so 32 cover any int32 length.
_MAX_WINDOWS = 32


# ---------------------------------------------------------------------- schedule
def window_stage(step: ArrayLike, num_warmup: ArrayLike) -> tuple[Array, Array]:
    """Stage of warm-up step ``step`` in Stan's schedule, as traced booleans.

    Returns ``(is_slow, is_window_end)``: whether the step is in a slow window (the
    mass matrix is estimated) and whether it is the last step of one (the matrix is
    computed and the step size restarted). Same schedule as BlackJAX's
    ``build_schedule(num_warmup)``: a fast buffer of 75 steps, slow windows of 25, 50,
    100, ... steps (the last one stretched to the final buffer), a final fast buffer
    of 50; a warm-up shorter than 150 uses 15 % / 75 % / 10 %, and one shorter than 20
    steps has no slow window. Both arguments may be traced.
    """
    step = jnp.asarray(step, jnp.int32)
    n = jnp.asarray(num_warmup, jnp.int32)
    squeeze = n < MIN_WINDOW_WARMUP
    initial = jnp.where(squeeze, (15 * n) // 100, _INITIAL_BUFFER)
    final_size = jnp.where(squeeze, (10 * n) // 100, _FINAL_BUFFER)
    first = jnp.where(squeeze, n - initial - final_size, _FIRST_WINDOW)
    final_start = n - final_size

    def window(_, carry):
        start, size, hit = carry
        active = start < final_start
        grow = 3 * size <= final_start - start
        end = start + jnp.where(grow, size, final_start - start)
        hit = hit | (active & (step == end - 1))
        return jnp.where(active, end, start), jnp.where(active & grow, 2 * size, size), hit

    _, _, is_end = jax.lax.fori_loop(0, _MAX_WINDOWS, window, (initial, first, False))
    has_windows = n >= _MIN_WINDOWS
    is_slow = has_windows & (step >= initial) & (step < final_start)
    return is_slow, has_windows & is_end


def warmup_schedule(num_warmup: int) -> np.ndarray:
    """The whole schedule as an ``(num_warmup, 2)`` int array of ``(is_slow,
    is_window_end)`` rows (for inspection; the samplers call :func:`window_stage`)."""
    steps = jnp.arange(int(num_warmup))
    stages = jax.vmap(window_stage, (0, None))(steps, num_warmup)
    return np.stack([np.asarray(s, np.int32) for s in stages], axis=-1)




# ---------------------------------------------------------------------- states
class WindowState(NamedTuple):
    """State of :func:`window`: BlackJAX's dual-averaging state of the log step size,
    its mass-matrix state (Welford estimate of the current window and the current
    inverse mass matrix), the updates done so far and the (traced) warm-up length."""

    dual_averaging: Any
    mass_matrix: Any
    count: Array
    num_warmup: Array


class DualAveragingState(NamedTuple):
    """State of :func:`dual_averaging`: BlackJAX's dual-averaging state, count, length."""

    dual_averaging: Any
    count: Array
    num_warmup: Array


class RobbinsMonroState(NamedTuple):
    """State of :func:`robbins_monro`: the log proposal scale, count, length."""

    log_scale: Array
    count: Array
    num_warmup: Array


class NoWarmupState(NamedTuple):
    """State of :func:`none` and :func:`mclmc` (whose tuner runs outside the steps)."""

    count: Array
    num_warmup: Array


def block_mask(blocks: tuple, size: int) -> np.ndarray:
    """The ``(size, size)`` 0/1 mask of a block-structured matrix: the diagonal, and
    every pair of flat indices that lie in one of ``blocks`` (a tuple of index tuples)."""
    mask = np.eye(size)
    for block in blocks:
        idx = np.asarray(block, int)
        mask[np.ix_(idx, idx)] = 1.0
    return mask


def _counters(num_warmup: ArrayLike) -> tuple[Array, Array]:
    return jnp.zeros((), jnp.int32), jnp.asarray(num_warmup, jnp.int32)


# ---------------------------------------------------------------------- the protocol
@dataclasses.dataclass(frozen=True)
class Warmup:
    """Base of the warm-ups: :meth:`update` counts, finishes and freezes; subclasses
    give ``name``, :meth:`init`, :meth:`_step` and (if they average) :meth:`final`.

    Attributes
    ----------
    target_acceptance_rate
        Acceptance rate the warm-up steers to (unused by :func:`none`).
    """

    name: ClassVar[str] = "none"
    #: Shortest warm-up that fits the scheme; ``sample`` warns below it.
    min_warmup: ClassVar[int] = 0
    #: Whether the warm-up runs as one call before sampling (:meth:`tune`) instead of
    #: step by step.
    tunes_once: ClassVar[bool] = False
    target_acceptance_rate: float = 0.8

    def __post_init__(self) -> None:
        check_probability("target_acceptance_rate", self.target_acceptance_rate)

    def init(self, kernel: Kernel, position: ArrayTree, num_warmup: ArrayLike) -> Any:
        """Warm-up state of one chain of ``kernel`` at ``position``."""
        return NoWarmupState(*_counters(num_warmup))

    def update(
        self, kernel: Kernel, state: Any, position: ArrayTree, acceptance_rate: ArrayLike,
        stats: dict[str, Array] | None = None,
    ) -> tuple[Kernel, Any]:
        """One warm-up update of one chain after a transition of ``kernel``.

        The update of the last warm-up step also applies :meth:`final`; updates past
        ``num_warmup`` return ``kernel`` and ``state`` unchanged.

        Parameters
        ----------
        kernel
            The kernel that made the transition.
        state
            The chain's warm-up state.
        position
            Position after the transition (fed to a mass-matrix estimate).
        acceptance_rate
            Acceptance rate of the transition.
        stats
            The transition's ``sample_stats`` (:func:`ebm_ppl.kernels.info.to_stats`), for
            warm-ups that read more than the acceptance rate (:func:`tempering`).

        Returns
        -------
        (kernel, state)
            The kernel with tuned hyper-parameters and the new state.
        """
        kernel = kernel.with_defaults(position)
        new_kernel, new_state = self._step(kernel, state, position, jnp.asarray(acceptance_rate),
                                           {} if stats is None else stats)
        new_state = new_state._replace(count=state.count + 1)
        is_last = new_state.count == state.num_warmup
        new_kernel = jax.lax.cond(
            is_last, lambda k: self.final(k, new_state), lambda k: k, new_kernel
        )
        in_warmup = state.count < state.num_warmup

        def keep(new: Any, old: Any) -> Any:
            return jax.tree.map(
                lambda a, b: jnp.where(in_warmup, a, b).astype(jnp.result_type(b)), new, old)

        return keep(new_kernel, kernel), keep(new_state, state)

    def final(self, kernel: Kernel, state: Any) -> Kernel:
        """The kernel to sample with (the tuned hyper-parameters as they are)."""
        return kernel

    def _step(self, kernel: Kernel, state: Any, position: ArrayTree,
              acceptance_rate: Array, stats: dict[str, Array]) -> tuple[Kernel, Any]:
        return kernel, state

    def tune(self, kernels: Kernel, rng_key: PRNGKey, states: Any, pot: Any,
             num_warmup: int) -> tuple[Any, Kernel]:
        """Tune every chain at once before sampling (only where ``tunes_once``)."""
        raise NotImplementedError(f"the {self.name!r} warm-up runs step by step")

    def tune_one(self, kernel: Kernel, rng_key: PRNGKey, state: Any,
                 logdensity_fn: LogDensityFn, num_warmup: int) -> tuple[Any, Kernel]:
        """Tune one chain before sampling (only where ``tunes_once``)."""
        raise NotImplementedError(f"the {self.name!r} warm-up runs step by step")


@dataclasses.dataclass(frozen=True)
class NoWarmup(Warmup):
    """Nothing is adapted (:func:`none`)."""

    name: ClassVar[str] = "none"


@dataclasses.dataclass(frozen=True)
class DualAveragingWarmup(Warmup):
    """Dual averaging of the step size (:func:`dual_averaging`)."""

    name: ClassVar[str] = "step_size"

    def init(self, kernel: Kernel, position: ArrayTree, num_warmup: ArrayLike
             ) -> DualAveragingState:
        flat, _ = ravel_pytree(position)
        da_init, _, _ = dual_averaging_adaptation(self.target_acceptance_rate)
        step_size = kernel.parameters.get("step_size", jnp.ones((), flat.dtype))
        return DualAveragingState(da_init(step_size), *_counters(num_warmup))

    def _step(self, kernel, state, position, acceptance_rate, stats):
        _, da_update, _ = dual_averaging_adaptation(self.target_acceptance_rate)
        dual_averaging = da_update(state.dual_averaging, acceptance_rate)
        return (kernel.replace(step_size=jnp.exp(dual_averaging.log_step_size)),
                state._replace(dual_averaging=dual_averaging))

    def final(self, kernel: Kernel, state: Any) -> Kernel:
        """The kernel with its step size at the dual-averaging average."""
        _, _, da_final = dual_averaging_adaptation(self.target_acceptance_rate)
        return kernel.replace(step_size=da_final(state.dual_averaging))


@dataclasses.dataclass(frozen=True)
class WindowWarmup(Warmup):
    """Stan's window adaptation (:func:`window`).

    Attributes
    ----------
    regularize
        Shrink each estimate towards :math:`10^{-3} I` with weight :math:`5/(n + 5)`
        (Stan's and NumPyro's rule) or use the plain sample covariance.
    mass_blocks
        Block structure of a dense inverse mass matrix (NumPyro's ``dense_mass`` as site
        groups): a tuple of groups of flat indices; entries outside the blocks and off
        the diagonal are kept at zero (:func:`block_mask`). Empty: no structure.
    adapt_step_size
        Whether the step size is tuned (False: the mass matrix only, step size as given).
    """

    name: ClassVar[str] = "window"
    min_warmup: ClassVar[int] = MIN_WINDOW_WARMUP
    regularize: bool = True
    mass_blocks: tuple = ()
    adapt_step_size: bool = True

    def init(self, kernel: Kernel, position: ArrayTree, num_warmup: ArrayLike) -> WindowState:
        kernel = kernel.with_defaults(position)
        flat, _ = ravel_pytree(position)
        da_init, _, _ = dual_averaging_adaptation(self.target_acceptance_rate)
        step_size = kernel.parameters.get("step_size", jnp.ones((), flat.dtype))
        imm = kernel.parameters["inverse_mass_matrix"]
        mm_init, _, _ = mass_matrix_adaptation(is_diagonal_matrix=jnp.ndim(imm) == 1)
        return WindowState(da_init(step_size), mm_init(flat.shape[0], imm),
                           *_counters(num_warmup))

    def _step(self, kernel, state, position, acceptance_rate, stats):
        target = self.target_acceptance_rate
        da_init, da_update, da_final = dual_averaging_adaptation(target)
        diagonal = jnp.ndim(state.mass_matrix.inverse_mass_matrix) == 1
        _, mm_update, mm_final = mass_matrix_adaptation(is_diagonal_matrix=diagonal)
        is_slow, is_window_end = window_stage(state.count, state.num_warmup)
        flat, _ = ravel_pytree(position)
        dual_averaging = da_update(state.dual_averaging, acceptance_rate)
        mass_matrix = jax.lax.cond(
            is_slow, lambda m: mm_update(m, flat), lambda m: m, state.mass_matrix
        )

        def end_window(args):
            mass_matrix, dual_averaging = args
            new = mm_final(mass_matrix)
            imm = new.inverse_mass_matrix
            if not self.regularize:  # the plain sample covariance
                imm, _, _ = welford_algorithm(diagonal)[2](mass_matrix.wc_state)
            if self.mass_blocks:  # NumPyro's block structure: zero outside the blocks
                imm = imm * block_mask(self.mass_blocks, imm.shape[0]).astype(imm.dtype)
            new = new._replace(inverse_mass_matrix=imm.astype(new.inverse_mass_matrix.dtype))
            return new, da_init(da_final(dual_averaging))

        mass_matrix, dual_averaging = jax.lax.cond(
            is_window_end, end_window, lambda a: a, (mass_matrix, dual_averaging)
        )
        step_size = (jnp.exp(dual_averaging.log_step_size) if self.adapt_step_size
                     else kernel.parameters["step_size"])
        kernel = kernel.replace(
            step_size=step_size,
            inverse_mass_matrix=mass_matrix.inverse_mass_matrix,
        )
        return kernel, state._replace(dual_averaging=dual_averaging, mass_matrix=mass_matrix)

    def final(self, kernel: Kernel, state: Any) -> Kernel:
        """The kernel with its step size at the dual-averaging average."""
        if not self.adapt_step_size:
            return kernel
        _, _, da_final = dual_averaging_adaptation(self.target_acceptance_rate)
        return kernel.replace(step_size=da_final(state.dual_averaging))


@dataclasses.dataclass(frozen=True)
class RobbinsMonroWarmup(Warmup):
    """Robbins–Monro adaptation of a random-walk proposal's scale (:func:`robbins_monro`).
    The kernel's ``proposal`` parameter must have a ``scale`` (``kernels.random_walk``)."""

    name: ClassVar[str] = "scale"
    target_acceptance_rate: float = 0.234

    def init(self, kernel: Kernel, position: ArrayTree, num_warmup: ArrayLike
             ) -> RobbinsMonroState:
        flat, _ = ravel_pytree(position)
        scale = _proposal(kernel).scale
        if scale is None:
            raise ValueError(f"robbins_monro adapts a proposal scale; kernel {kernel.name!r} "
                             "has none (use kernels.random_walk, or warmup=adaptation.none())")
        return RobbinsMonroState(jnp.log(jnp.asarray(scale, flat.dtype)),
                                 *_counters(num_warmup))

    def _step(self, kernel, state, position, acceptance_rate, stats):
        gain = (state.count + 1).astype(state.log_scale.dtype) ** -_RM_EXPONENT
        log_scale = state.log_scale + gain * (acceptance_rate - self.target_acceptance_rate)
        proposal = _proposal(kernel).with_scale(jnp.exp(log_scale))
        return kernel.replace(proposal=proposal), state._replace(log_scale=log_scale)


def _proposal(kernel: Kernel) -> Any:
    proposal = kernel.parameters.get("proposal")
    if proposal is None:
        raise ValueError(f"robbins_monro adapts a proposal scale; kernel {kernel.name!r} has "
                         "no proposal")
    return proposal


@dataclasses.dataclass(frozen=True)
class MCLMCWarmup(Warmup):
    """BlackJAX's MCLMC tuner, run once over the warm-up (:func:`mclmc`)."""

    name: ClassVar[str] = "mclmc"
    tunes_once: ClassVar[bool] = True

    def tune(self, kernels: Kernel, rng_key: PRNGKey, states: Any, pot: Any,
             num_warmup: int) -> tuple[Any, Kernel]:
        """:func:`mclmc_warmup_chains` (``num_warmup`` a Python integer)."""
        return mclmc_warmup_chains(kernels, rng_key, states, pot, num_warmup)

    def tune_one(self, kernel: Kernel, rng_key: PRNGKey, state: Any,
                 logdensity_fn: LogDensityFn, num_warmup: int) -> tuple[Any, Kernel]:
        """:func:`mclmc_warmup` of one chain."""
        return mclmc_warmup(kernel, rng_key, state, logdensity_fn, num_warmup)


# ---------------------------------------------------------------------- tempering
def _check_ladder(betas: Any) -> Array:
    """``betas`` as a float array after checking it is a valid ladder (when concrete):
    1-D, at least 2 entries in (0, 1], starting at 1, strictly decreasing."""
    if isinstance(betas, jax.core.Tracer):
        return betas
    arr = np.asarray(betas, dtype=float)
    if arr.ndim != 1 or arr.shape[0] < 2:
        raise ValueError(f"betas must be a 1-D array of at least 2 inverse temperatures, "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0) or np.any(arr > 1):
        raise ValueError(f"betas must lie in (0, 1], got {arr.tolist()}")
    if arr[0] != 1.0:
        raise ValueError(f"betas must start at 1 (the target itself), got {arr[0]!r}")
    if np.any(np.diff(arr) >= 0):
        raise ValueError(f"betas must be strictly decreasing, got {arr.tolist()}")
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
    betas = _check_ladder(betas)
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
    and how many swaps each pair was offered, count, length."""

    dual_averaging: Any
    swap_sum: Array
    swap_count: Array
    count: Array
    num_warmup: Array


@dataclasses.dataclass(frozen=True)
class TemperingWarmup(Warmup):
    """Warm-up of a :func:`~ebm_ppl.kernels.parallel_tempering` kernel (:func:`tempering`).

    Each replica's step size follows dual averaging towards ``target_acceptance_rate`` on
    its own acceptance (``sample_stats["replica_acceptance"]``); at the ends of the
    warm-up windows ``num_warmup / 2**k`` (``k = ladder_updates, ..., 1``) the inverse
    temperatures are re-spaced by :func:`adapt_ladder` from the swap rejection rates
    measured since the previous update, and each replica's dual averaging restarts from
    its average. The replicas' base kernel must have a ``step_size``.

    Attributes
    ----------
    ladder_updates
        How many times the ladder is re-spaced (0: the ladder as given).
    """

    name: ClassVar[str] = "tempering"
    target_acceptance_rate: float = 0.574
    ladder_updates: int = 4

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
        return TemperingState(jax.vmap(da_init)(base.parameters["step_size"]),
                              jnp.zeros(pairs, dtype), jnp.zeros(pairs, dtype),
                              *_counters(num_warmup))

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

        def respace(args):
            dual_averaging, swap_sum, swap_count = args
            rejection = 1.0 - swap_sum / jnp.maximum(swap_count, 1.0)
            new_betas = adapt_ladder(betas, jnp.clip(rejection, 0.0, 1.0))
            zeros = jnp.zeros_like(swap_sum)
            return (new_betas, jax.vmap(lambda d: da_init(da_final(d)))(dual_averaging),
                    zeros, zeros)

        betas, dual_averaging, swap_sum, swap_count = jax.lax.cond(
            is_update, respace, lambda args: (betas, *args),
            (dual_averaging, swap_sum, swap_count))
        base = kernel.parameters["kernel"].replace(step_size=jnp.exp(dual_averaging.log_step_size))
        kernel = kernel.replace(kernel=base, betas=betas)
        return kernel, state._replace(dual_averaging=dual_averaging, swap_sum=swap_sum,
                                      swap_count=swap_count)

    def final(self, kernel: Kernel, state: Any) -> Kernel:
        """The kernel with every replica's step size at its dual-averaging average."""
        _, _, da_final = dual_averaging_adaptation(self.target_acceptance_rate)
        step_size = jax.vmap(da_final)(state.dual_averaging)
        return kernel.replace(kernel=kernel.parameters["kernel"].replace(step_size=step_size))


# ---------------------------------------------------------------------- factories
def window(target_acceptance_rate: float = 0.8, *, regularize: bool = True,
           mass_blocks: tuple = (), adapt_step_size: bool = True) -> WindowWarmup:
    """Stan's window adaptation of the step size and the inverse mass matrix (HMC, NUTS,
    Barker, preconditioned MALA); see :class:`WindowWarmup`."""
    return WindowWarmup(target_acceptance_rate=float(target_acceptance_rate),
                        regularize=bool(regularize),
                        mass_blocks=tuple(tuple(int(i) for i in b) for b in mass_blocks),
                        adapt_step_size=bool(adapt_step_size))


def dual_averaging(target_acceptance_rate: float = 0.8) -> DualAveragingWarmup:
    """Dual averaging of the step size only (Hoffman & Gelman 2014)."""
    return DualAveragingWarmup(target_acceptance_rate=float(target_acceptance_rate))


def robbins_monro(target_acceptance_rate: float = 0.234) -> RobbinsMonroWarmup:
    """Robbins–Monro adaptation of a random-walk proposal's log scale towards
    ``target_acceptance_rate`` (0.234, optimal for random walks in high dimension)."""
    return RobbinsMonroWarmup(target_acceptance_rate=float(target_acceptance_rate))


def mclmc(target_acceptance_rate: float = 0.8) -> MCLMCWarmup:
    """BlackJAX's MCLMC tuner (energy-error step size, preconditioner and ``L``); the
    target is unused (MCLMC has no accept/reject)."""
    return MCLMCWarmup(target_acceptance_rate=float(target_acceptance_rate))


def tempering(target_acceptance_rate: float = 0.574, *, ladder_updates: int = 4
              ) -> TemperingWarmup:
    """Warm-up of parallel tempering: every replica's step size by dual averaging, and
    the temperature ladder re-spaced towards equal swap rates (Syed et al. 2022) at
    ``ladder_updates`` window ends; see :class:`TemperingWarmup`."""
    if isinstance(ladder_updates, bool) or not isinstance(ladder_updates, int) or \
            ladder_updates < 0:
        raise ValueError(f"ladder_updates must be an integer >= 0, got {ladder_updates!r}")
    return TemperingWarmup(target_acceptance_rate=float(target_acceptance_rate),
                           ladder_updates=ladder_updates)


def none() -> NoWarmup:
    """No adaptation: the kernel's hyper-parameters as given."""
    return NoWarmup()


#: Warm-up names (as stored in a run's ``attrs["adaptation"]``) -> factory.
WARMUPS = {"window": window, "step_size": dual_averaging, "scale": robbins_monro,
           "mclmc": mclmc, "tempering": tempering, "none": none}


def from_name(name: str, target_acceptance_rate: float | None = None) -> Warmup:
    """The warm-up called ``name`` (one of :data:`WARMUPS`), with its default target or
    ``target_acceptance_rate``."""
    if name not in WARMUPS:
        raise ValueError(f"warm-up must be one of {tuple(WARMUPS)}, got {name!r}")
    if name == "none":
        return none()
    return (WARMUPS[name]() if target_acceptance_rate is None
            else WARMUPS[name](target_acceptance_rate))


# ---------------------------------------------------------------------- MCLMC's tuner
#: BlackJAX's default fractions of ``mclmc_find_L_and_step_size``'s three stages; the
#: second stage is a third longer with diagonal preconditioning.
_MCLMC_FRACTIONS = (0.1, 0.1 * 4 / 3, 0.1)


def mclmc_warmup(
    kernel: Kernel, rng_key: PRNGKey, state: Any, logdensity_fn: LogDensityFn, num_warmup: int
) -> tuple[Any, Kernel]:
    r"""Tune an MCLMC kernel with BlackJAX's ``mclmc_find_L_and_step_size`` (one chain).

    The step size is set so that the energy error per dimension has variance
    :math:`5 \cdot 10^{-4}`, a diagonal preconditioner from the draws' variances, and
    :math:`L` from the effective sample size (Robnik et al. 2023). The three stages use
    about ``num_warmup`` integrator steps in all (BlackJAX's fractions 0.1, 0.1, 0.1 of
    ``num_warmup / 0.33``). ``num_warmup`` must be a Python integer (it sets scan
    lengths).

    Returns
    -------
    (state, kernel)
        The state after tuning and the kernel with the tuned ``L``, ``step_size`` and
        ``inverse_mass_matrix``.
    """
    static = dict(kernel.static_parameters)
    integrator = static.get("integrator", blackjax.mcmc.integrators.isokinetic_mclachlan)
    flat, _ = ravel_pytree(state.position)
    imm = kernel.parameters["inverse_mass_matrix"]
    imm = jnp.ones(flat.shape, flat.dtype) if imm is None else jnp.broadcast_to(imm, flat.shape)
    params = MCLMCAdaptationState(kernel.parameters["L"], kernel.parameters["step_size"], imm)
    num_steps = max(int(math.ceil(num_warmup / sum(_MCLMC_FRACTIONS))), 1)
    state, params, _ = blackjax.mclmc_find_L_and_step_size(
        blackjax.mcmc.mclmc.build_kernel(integrator=integrator), num_steps, state, rng_key,
        logdensity_fn=logdensity_fn, params=params,
    )
    return state, kernel.replace(L=params.L, step_size=params.step_size,
                                 inverse_mass_matrix=params.inverse_mass_matrix)


@partial(jax.jit, static_argnames=("num_warmup",))
def mclmc_warmup_chains(
    kernels: Kernel, rng_key: PRNGKey, states: Any, pot: Any, num_warmup: int
) -> tuple[Any, Kernel]:
    """:func:`mclmc_warmup` of every chain (leading chain axis on ``kernels`` and
    ``states``; one independent key per chain)."""
    num_chains = jax.tree.leaves(states)[0].shape[0]
    keys = jax.random.split(rng_key, num_chains)

    def one(kernel: Kernel, key: PRNGKey, state: Any) -> tuple[Any, Kernel]:
        state, kernel = mclmc_warmup(kernel, key, state, pot.logdensity_fn, num_warmup)
        return state, kernel

    states, kernels = jax.vmap(one)(kernels, keys, states)
    return states, kernels
