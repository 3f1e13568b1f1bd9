r"""ULA, MH and any BlackJAX algorithm as drop-in NumPyro kernels.

:class:`BlackJAXKernel` takes NumPyro's ``HMC``/``NUTS``/``BarkerMH`` arguments with
NumPyro's meanings and defaults (``step_size=1``, ``trajectory_length=2π``,
``dense_mass``, ``adapt_step_size``, ``adapt_mass_matrix``, ``target_accept_prob``,
``max_tree_depth``, ``find_heuristic_step_size``, ``forward_mode_differentiation``,
``init_strategy``), so swapping ``NUTS(model)`` for ``BlackJAXKernel("nuts", model)``
is a one-word change. An argument with no meaning for the chosen algorithm raises a
``ValueError`` that says why. Warm-up per algorithm is the table of
:mod:`ebm_ppl.kernels.from_blackjax`, run by :mod:`ebm_ppl.adaptation` (the one warm-up
shared with :func:`ebm_ppl.sample`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from numpyro.infer import init_to_uniform

from ebm_ppl import adaptation
from ebm_ppl import kernels as _kernels
from ebm_ppl._validation import check_positive
from ebm_ppl.adaptation import Warmup, WindowWarmup, block_mask
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.kernels.from_blackjax import WARMUPS, from_blackjax, resolve_algorithm
from ebm_ppl.numpyro.arguments import (
    check_target,
    is_traced,
    numpyro_warmup,
    reject_mass_arguments,
    tree_depth,
)
from ebm_ppl.numpyro.base import EBMAdaptState, EBMKernel, EBMKernelState
from ebm_ppl.numpyro.hmc import DEFAULT_TRAJECTORY_LENGTH, trajectory_hmc
from ebm_ppl.numpyro.mass import MassLayout, mass_layout

__all__ = ["EBMKernel", "EBMKernelState", "EBMAdaptState", "ULA", "MH", "BlackJAXKernel"]

#: Algorithms taking NumPyro's mass-matrix arguments (their BlackJAX API has one).
_MASS = ("hmc", "nuts", "mala", "barker", "barker_proposal")
#: Sentinel: NumPyro's ``trajectory_length`` was not given.
_UNSET: Any = object()


class ULA(EBMKernel):
    r"""Unadjusted Langevin algorithm (:func:`ebm_ppl.kernels.ula`) for NumPyro's MCMC.

    .. math::

        z_{k+1} = z_k - h\,\nabla U(z_k) + \sqrt{2 h T}\,\xi_k,
        \qquad \xi_k \sim \mathcal N(0, I),

    with :math:`U` NumPyro's potential energy. No accept/reject step: the stationary
    law is :math:`\propto e^{-U/T}` only as :math:`h \to 0`; on a Gaussian target of
    variance :math:`\sigma^2` the chain's variance is
    :math:`T\sigma^2 \cdot 2/(2 - h/\sigma^2)` (bias :math:`O(h)`). The step size is
    used as given (no acceptance rate to target).

    Parameters
    ----------
    model, potential_fn
        Exactly one: a NumPyro model or ``potential_fn(z) -> -log p(z)``.
    step_size
        :math:`h > 0`, in the units of the unconstrained space.
    temperature
        :math:`T > 0`.
    init_strategy
        NumPyro init strategy for a model.

    Examples
    --------
    >>> import jax, numpyro, numpyro.distributions as dist
    >>> from numpyro.infer import MCMC
    >>> def model():
    ...     numpyro.sample("x", dist.Normal(0.0, 1.0))
    >>> mcmc = MCMC(ULA(model, step_size=0.01), num_warmup=10, num_samples=10,
    ...             progress_bar=False)
    >>> mcmc.run(jax.random.key(0))
    """

    def __init__(self, model: Callable | None = None, potential_fn: Callable | None = None,
                 step_size: float = 0.01, temperature: float = 1.0, *,
                 init_strategy: Callable = init_to_uniform) -> None:
        super().__init__(model, potential_fn, init_strategy=init_strategy)
        self._kernel = _kernels.ula(step_size, temperature)
        self._target_accept_prob = self._kernel.target_acceptance_rate


class MH(EBMKernel):
    r"""Metropolis–Hastings (:func:`ebm_ppl.kernels.mh`) for NumPyro's MCMC.

    .. math::

        \alpha(z \to z') = \min\Big(1, \frac{p(z')\,q(z \mid z')}{p(z)\,q(z' \mid z)}\Big)

    A random-walk proposal's scale is adapted during warm-up inside ``MCMC`` as in
    :func:`ebm_ppl.sample` (Robbins–Monro on :math:`\log s` towards
    ``target_accept_prob``, :mod:`ebm_ppl.adaptation`).

    Parameters
    ----------
    model, potential_fn
        Exactly one: a NumPyro model or ``potential_fn(z) -> -log p(z)``.
    proposal
        An :class:`ebm_ppl.kernels.Proposal`, or a positive float :math:`s`: the random
        walk :math:`z' = z + s\,\xi` on every unconstrained leaf (default 0.1).
    step_size
        NumPyro-style name of the random-walk scale :math:`s` (give this or a number
        ``proposal``, not both).
    adapt_step_size
        Adapt the scale during warm-up (default True; only proposals with a scale).
    target_accept_prob
        Target of the adaptation (0.234, optimal for random walks in high dimension).
    init_strategy
        NumPyro init strategy for a model.

    Raises
    ------
    TypeError
        If ``proposal`` is neither a Proposal nor a number.
    ValueError
        If a scale is not a positive finite number, or both ``proposal`` and
        ``step_size`` are given as scales.
    """

    def __init__(self, model: Callable | None = None, potential_fn: Callable | None = None,
                 proposal: _kernels.Proposal | float | None = None, *,
                 step_size: float | None = None, adapt_step_size: bool = True,
                 target_accept_prob: float = 0.234,
                 init_strategy: Callable = init_to_uniform) -> None:
        super().__init__(model, potential_fn, init_strategy=init_strategy)
        check_target(target_accept_prob)
        if step_size is not None and proposal is not None:
            raise ValueError(
                "MH takes the random-walk scale as proposal or as step_size, got both "
                f"(proposal={proposal!r}, step_size={step_size!r})"
            )
        proposal = step_size if proposal is None else proposal
        proposal = 0.1 if proposal is None else proposal
        if isinstance(proposal, _kernels.Proposal):
            kernel = _kernels.mh(proposal)
        elif isinstance(proposal, (int, float)) and not isinstance(proposal, bool) or (
            hasattr(proposal, "shape") and jnp.shape(proposal) == ()
        ):
            if not is_traced(proposal):
                check_positive("proposal", proposal)
            kernel = _kernels.random_walk(proposal)
        else:
            raise TypeError(
                "proposal must be an ebm_ppl.kernels.Proposal or a positive float "
                f"(random-walk scale), got {type(proposal).__name__}"
            )
        self._kernel = kernel
        self._warmup = kernel.default_warmup if adapt_step_size else adaptation.none()
        self._target_accept_prob = target_accept_prob


class BlackJAXKernel(EBMKernel):
    r"""Any BlackJAX sampling algorithm as a NumPyro :class:`~numpyro.infer.mcmc.MCMCKernel`.

    A drop-in for NumPyro's ``HMC``, ``NUTS`` and ``BarkerMH``: same arguments, same
    meanings, same defaults, same state fields. ``"hmc"`` takes
    :math:`\lceil \tau/\epsilon \rceil` leapfrog steps for a trajectory length
    :math:`\tau` (:mod:`ebm_ppl.numpyro.hmc`), or a fixed ``num_steps``; ``"nuts"`` is
    BlackJAX's multinomial NUTS; ``"barker"`` is BlackJAX's; ``"mala"`` is MALA
    preconditioned by an adapted inverse mass matrix (:func:`ebm_ppl.kernels.mala`),
    with the mass-matrix arguments and defaults of NumPyro's ``BarkerMH``; any other
    algorithm (``blackjax.ghmc``, ``blackjax.mclmc``...) goes through
    :func:`ebm_ppl.kernels.from_blackjax` with its ``**params``.

    Parameters
    ----------
    algorithm
        A BlackJAX top-level algorithm (``blackjax.nuts``) or its name (``"nuts"``).
    model, potential_fn
        Exactly one: a NumPyro model or ``potential_fn(z) -> -log p(z)``.
    step_size
        Initial step size (1.0 for hmc/nuts/mala/barker, as NumPyro).
    inverse_mass_matrix
        Initial inverse mass matrix, 1-D (diagonal) or 2-D (dense), or NumPyro's dict
        keyed by site-name tuples (unnamed sites start at the identity); identity if
        None.
    adapt_step_size, adapt_mass_matrix
        What warm-up tunes (NumPyro's defaults: both, where the algorithm has them).
        Step size alone is dual averaging; with the mass matrix it is Stan's windows.
    dense_mass
        ``True`` for a dense mass matrix (adapted as such), ``False`` for a diagonal
        one, or NumPyro's list of site groups (``[("x", "y"), ("z",)]``): a dense block
        per group, diagonal for the other sites (:mod:`ebm_ppl.numpyro.mass`).
    target_accept_prob
        Target acceptance rate of the warm-up (0.8 for HMC/NUTS, 0.574 for MALA and
        Barker, see :data:`~ebm_ppl.kernels.from_blackjax.WARMUPS`); may be traced.
    trajectory_length
        HMC only: :math:`\tau` (default :math:`2\pi`): each transition makes
        :math:`L = \lceil \tau / \epsilon \rceil` leapfrog steps of size
        :math:`\tau / L`, as NumPyro's HMC (:mod:`ebm_ppl.numpyro.hmc`). Accepted and
        ignored by NUTS, as by NumPyro's NUTS.
    num_steps
        HMC only: a fixed number of leapfrog steps instead of ``trajectory_length``
        (BlackJAX's name ``num_integration_steps`` is accepted too); the step size is
        adapted. Given together with ``trajectory_length``, the step size is
        :math:`\tau / L` and is not adapted, with NumPyro's warning. Unlike NumPyro,
        ``num_steps`` alone does not imply the default :math:`\tau = 2\pi` (NumPyro
        then fixes the step size at :math:`2\pi / L` and warns).
    step_size_jitter
        HMC only: the nominal step size of each transition is drawn from
        :math:`\epsilon (1 + j u)`, :math:`u \sim U(-1, 1)` (default 0), so the number of
        leapfrog steps varies, against resonant trajectory lengths.
    max_tree_depth
        NUTS only: maximum tree depth (default 10), or a ``(warmup, sampling)`` pair.
        BlackJAX's name ``max_num_doublings`` is accepted too.
    find_heuristic_step_size
        Start warm-up from Hoffman & Gelman's doubling/halving step-size search.
    forward_mode_differentiation
        Compute gradients in forward mode (``jax.jacfwd``), for models with
        ``lax.while_loop``.
    regularize_mass_matrix
        Shrink each window's estimate towards :math:`10^{-3} I` with weight
        :math:`5/(n + 5)` (Stan's and NumPyro's rule, the default), or use the plain
        sample covariance (``False``).
    init_strategy
        NumPyro init strategy for a model.
    **params
        Further hyper-parameters of the BlackJAX algorithm, by BlackJAX's names.

    Raises
    ------
    ValueError
        For an argument that has no meaning for the chosen algorithm (the message says
        why), or an invalid value.
    TypeError
        For an unknown algorithm or an unknown or missing BlackJAX parameter.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist
    >>> from numpyro.infer import MCMC
    >>> cov = jnp.array([[1.0, 0.9], [0.9, 1.0]])  # correlated: a dense mass matrix helps
    >>> def model():
    ...     numpyro.sample("x", dist.MultivariateNormal(jnp.zeros(2), cov))
    >>> mcmc = MCMC(BlackJAXKernel("nuts", model, dense_mass=True), num_warmup=50,
    ...             num_samples=50, progress_bar=False)
    >>> mcmc.run(jax.random.key(0), extra_fields=("num_steps", "adapt_state.step_size"))
    """

    def __init__(
        self,
        algorithm: Any,
        model: Callable | None = None,
        potential_fn: Callable | None = None,
        *,
        step_size: float | None = None,
        inverse_mass_matrix: Any = None,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool | None = None,
        dense_mass: bool | Sequence = False,
        target_accept_prob: float | None = None,
        trajectory_length: Any = _UNSET,
        num_steps: int | None = None,
        step_size_jitter: float = 0.0,
        max_tree_depth: int | tuple[int, int] | None = None,
        find_heuristic_step_size: bool = False,
        forward_mode_differentiation: bool = False,
        regularize_mass_matrix: bool = True,
        kinetic_fn: Callable | None = None,
        init_strategy: Callable = init_to_uniform,
        **params: Any,
    ) -> None:
        super().__init__(model, potential_fn, init_strategy=init_strategy)
        api, name = resolve_algorithm(algorithm)
        self._name = name
        self._pin_trajectory = False  # set by _build: hmc given num_steps and trajectory_length
        check_target(target_accept_prob)
        if kinetic_fn is not None:
            raise ValueError(
                "kinetic_fn has no meaning for BlackJAXKernel: BlackJAX's integrators use "
                "the Gaussian kinetic energy of inverse_mass_matrix; pass that instead"
            )
        has_mass = name in _MASS
        if not has_mass:
            reject_mass_arguments(name, inverse_mass_matrix, adapt_mass_matrix, dense_mass,
                                   regularize_mass_matrix)
        self._dense_mass = dense_mass if isinstance(dense_mass, bool) else tuple(dense_mass)
        self._flat_mass_views = name in ("mala", "barker", "barker_proposal")  # as BarkerMH
        self._imm_given = inverse_mass_matrix
        kernel = self._build(api, name, step_size,
                             None if isinstance(inverse_mass_matrix, dict) else inverse_mass_matrix,
                             trajectory_length, num_steps, step_size_jitter, max_tree_depth,
                             params)
        if has_mass:
            kernel = dataclasses.replace(kernel, dense_mass=kernel.dense_mass or dense_mass is True)
        self._kernel = kernel
        self._warmup = numpyro_warmup(
            kernel.default_warmup, bool(adapt_step_size) and not self._pin_trajectory,
            has_mass if adapt_mass_matrix is None else bool(adapt_mass_matrix),
            regularize=bool(regularize_mass_matrix),
        )
        self._target_accept_prob = kernel.target_acceptance_rate \
            if target_accept_prob is None else target_accept_prob
        self._heuristic_step_size = bool(find_heuristic_step_size)
        if self._heuristic_step_size and "step_size" not in kernel.parameters:
            raise ValueError(
                f"find_heuristic_step_size has no meaning for {name}: it has no step size"
            )
        self._forward_mode = bool(forward_mode_differentiation)

    def _build(self, api, name, step_size, inverse_mass_matrix, trajectory_length, num_steps,
               step_size_jitter, max_tree_depth, params):
        """The ebm_ppl kernel for NumPyro's arguments (see the class docstring)."""
        if name not in ("hmc", "nuts", "mala", "barker", "barker_proposal"):
            for arg, value in (("trajectory_length", trajectory_length),
                               ("num_steps", num_steps), ("max_tree_depth", max_tree_depth)):
                if value is not None and value is not _UNSET:
                    raise ValueError(f"{arg} has no meaning for {name}; pass BlackJAX's "
                                     "own parameters as keyword arguments")
            if step_size is not None:
                params = {"step_size": step_size, **params}
            return from_blackjax(api, **params)
        step_size = 1.0 if step_size is None else step_size
        common = dict(step_size=step_size, **params)
        if name in _MASS:
            common["inverse_mass_matrix"] = inverse_mass_matrix
        if name == "mala":  # ours: BlackJAX's MALA takes no preconditioner
            if trajectory_length is not _UNSET and trajectory_length is not None:
                raise ValueError("trajectory_length has no meaning for mala: it takes one "
                                 "gradient step per transition")
            if num_steps is not None or step_size_jitter or max_tree_depth is not None:
                raise ValueError("num_steps, step_size_jitter and max_tree_depth have no "
                                 "meaning for mala: it takes one gradient step per transition")
            if params:
                raise TypeError(f"unexpected parameter(s) {sorted(params)} for mala")
            return _kernels.mala(step_size, inverse_mass_matrix=inverse_mass_matrix,
                                 adapt_mass_matrix=True)
        if name != "hmc":
            if num_steps is not None or step_size_jitter:
                raise ValueError(f"num_steps and step_size_jitter have no meaning for {name}: "
                                 "they set HMC's fixed trajectory")
        if name == "nuts":
            depth = tree_depth(max_tree_depth, common.pop("max_num_doublings", None))
            if isinstance(depth, tuple):
                self._sampling_static = None  # filled after the kernel is built
                kernel = from_blackjax(api, max_num_doublings=depth[0], **common)
                static = dict(kernel.static_parameters)
                self._sampling_static = tuple(
                    (k, depth[1] if k == "max_num_doublings" else v) for k, v in static.items()
                )
                return kernel
            return from_blackjax(api, max_num_doublings=depth, **common)
        if max_tree_depth is not None:
            raise ValueError(f"max_tree_depth has no meaning for {name}: it bounds NUTS trees")
        if name == "hmc":
            fixed = common.pop("num_integration_steps", num_steps)
            if fixed is not None:
                if trajectory_length is not _UNSET and trajectory_length is not None:
                    # NumPyro's meaning: the trajectory is tau long, in num_steps steps
                    if not is_traced(trajectory_length):
                        check_positive("trajectory_length", trajectory_length)
                    warnings.warn(
                        "If both `num_steps` and `trajectory_length` are specified step size "
                        "can't be adapted: hmc integrates with step size trajectory_length / "
                        "num_steps, as NumPyro's HMC does; give only num_steps to adapt it",
                        UserWarning, stacklevel=3,
                    )
                    self._pin_trajectory = True
                    common["step_size"] = trajectory_length / fixed
                return from_blackjax(api, num_integration_steps=fixed, **common)
            if trajectory_length is None:
                raise ValueError("At least one of trajectory_length and num_steps must be "
                                 "given to hmc, got neither")
            length = DEFAULT_TRAJECTORY_LENGTH if trajectory_length is _UNSET \
                else trajectory_length
            if not is_traced(length):
                check_positive("trajectory_length", length)
            scheme, target = WARMUPS["hmc"]
            return from_blackjax(trajectory_hmc, trajectory_length=float(length)
                                 if isinstance(length, int) else length,
                                 step_size_jitter=float(step_size_jitter), adaptation=scheme,
                                 target_acceptance_rate=target, **common)
        if trajectory_length is not _UNSET and trajectory_length is not None:
            raise ValueError(f"trajectory_length has no meaning for {name}: it takes one "
                             "gradient step per transition")
        return from_blackjax(api, **common)

    def _layout(self, position: Any) -> MassLayout | None:
        """Site groups for a list ``dense_mass`` or a dict ``inverse_mass_matrix``."""
        structured = not isinstance(self._dense_mass, bool) or isinstance(self._imm_given, dict)
        if not structured or not isinstance(position, dict):
            return None
        return mass_layout(self._dense_mass, position, self._imm_given)

    def _warmup_at(self, position: Any) -> Warmup:
        """The warm-up with NumPyro's block structure (window adaptation keeps the mass
        matrix zero outside the site groups of ``dense_mass``)."""
        layout = self._layout(position)
        if layout is None or not isinstance(self._warmup, WindowWarmup):
            return self._warmup
        return dataclasses.replace(self._warmup, mass_blocks=tuple(
            tuple(int(i) for i in block) for block in layout.blocks))

    def _kernel_at(self, position: Any) -> Kernel:
        """The kernel with NumPyro's block structure and dict inverse mass matrix."""
        layout = self._layout(position)
        if layout is None:
            if isinstance(self._imm_given, dict) or not isinstance(self._dense_mass, bool):
                raise ValueError("dense_mass as site groups and a dict inverse_mass_matrix "
                                 "need a model (sites by name), not a potential_fn")
            return super()._kernel_at(position)
        kernel = dataclasses.replace(self._kernel, dense_mass=bool(layout.dense_groups))
        if isinstance(self._imm_given, dict):
            flat, _ = ravel_pytree(position)
            kernel = kernel.replace(
                inverse_mass_matrix=layout.inverse_mass_matrix(self._imm_given, flat.dtype))
        kernel = kernel.with_defaults(position)
        if layout.blocks:  # a given dense start follows the blocks too (once, not per step)
            imm = kernel.parameters["inverse_mass_matrix"]
            kernel = kernel.replace(
                inverse_mass_matrix=imm * block_mask(layout.blocks, imm.shape[0]).astype(imm.dtype))
        return kernel
