r"""Every warm-up of ebm_ppl, in optax's shape: one object per scheme, one state type each.

This file lists them all (the factories below); each scheme's maths is in its own module:
:mod:`~ebm_ppl.adaptation.step_size` (dual averaging, window adaptation),
:mod:`~ebm_ppl.adaptation.scale` (Robbins–Monro), :mod:`~ebm_ppl.adaptation.mclmc`,
:mod:`~ebm_ppl.adaptation.tempering`, on :mod:`~ebm_ppl.adaptation.base` (the protocol)
and :mod:`~ebm_ppl.adaptation.schedule` (Stan's windows).

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

from ebm_ppl.adaptation.base import Kernel, NoWarmup, NoWarmupState, Warmup, block_mask
from ebm_ppl.adaptation.mclmc import MCLMCWarmup, mclmc_warmup, mclmc_warmup_chains
from ebm_ppl.adaptation.scale import RobbinsMonroState, RobbinsMonroWarmup
from ebm_ppl.adaptation.schedule import MIN_WINDOW_WARMUP, warmup_schedule, window_stage
from ebm_ppl.adaptation.step_size import (
    DualAveragingState,
    DualAveragingWarmup,
    WindowState,
    WindowWarmup,
)
from ebm_ppl.adaptation.tempering import (
    TemperingState,
    TemperingWarmup,
    adapt_ladder,
    swap_rejection_rates,
)

__all__ = [
    "WARMUPS",
    "Kernel",
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


def tempering(target_acceptance_rate: float = 0.574, *, ladder_updates: int = 4,
              adapt_mass_matrix: bool = False) -> TemperingWarmup:
    """Warm-up of parallel tempering: every replica's step size by dual averaging, the
    temperature ladder re-spaced towards equal swap rates (Syed et al. 2022) and, with
    ``adapt_mass_matrix``, every replica's inverse mass matrix re-estimated, at
    ``ladder_updates`` window ends; see :class:`TemperingWarmup`."""
    if isinstance(ladder_updates, bool) or not isinstance(ladder_updates, int) or \
            ladder_updates < 0:
        raise ValueError(f"ladder_updates must be an integer >= 0, got {ladder_updates!r}")
    return TemperingWarmup(target_acceptance_rate=float(target_acceptance_rate),
                           ladder_updates=ladder_updates,
                           adapt_mass_matrix=bool(adapt_mass_matrix))


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
