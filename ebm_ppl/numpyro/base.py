r"""ebm_ppl kernels as :class:`numpyro.infer.mcmc.MCMCKernel` s: the shared machinery.

The adapters copy the shapes of NumPyro's own ``HMC``: the random key lives in the
state, ``sample_field`` is ``"z"``, :meth:`~EBMKernel.init` accepts one key or a batch of
keys (``chain_method="vectorized"``), and the state has NumPyro's field names, so
``MCMC(..., extra_fields=("num_steps", "adapt_state.step_size", "energy",
"mean_accept_prob"))`` and ``mcmc.last_state.adapt_state.inverse_mass_matrix`` /
``mass_matrix_sqrt`` read as with NumPyro's HMC/NUTS, and :func:`arviz.from_numpyro`
fills ``lp``, ``acceptance_rate``, ``diverging`` and ``step_size``.

The target is a :class:`~ebm_ppl.Potential`: ``Potential.from_model`` for a model (so the
normaliser guard and the traced-data compilation of :mod:`ebm_ppl.potential` apply
here too) or a ``potential_fn`` taken as an energy at temperature 1. Warm-up is the one
implementation of :mod:`ebm_ppl.adaptation`, the same as :func:`ebm_ppl.sample`'s:
NumPyro's :class:`~numpyro.infer.MCMC` calls :meth:`~EBMKernel.sample`
``num_warmup + num_samples`` times, and each of the first ``num_warmup`` calls feeds the
transition's acceptance rate and position to ``adaptation.update``; the tuned kernel is
part of the state (``state.adapt_state.kernel``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from numpyro.infer import init_to_uniform
from numpyro.infer.mcmc import MCMCKernel
from numpyro.infer.util import ParamInfo, initialize_model
from numpyro.util import identity, is_prng_key

from ebm_ppl import adaptation
from ebm_ppl._types import Array, ArrayTree, LogDensityFn, PRNGKey
from ebm_ppl.adaptation import Warmup
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.kernels.info import to_stats
from ebm_ppl.numpyro.hmc import forward_mode, heuristic_step_size
from ebm_ppl.numpyro.mass import MassLayout, mass_matrix_views
from ebm_ppl.potential import Potential, potential_from_logdensity

__all__ = ["EBMKernel", "EBMKernelState", "EBMAdaptState"]


class EBMAdaptState(NamedTuple):
    """Warm-up state, with the names of NumPyro's ``HMCAdaptState``.

    Attributes
    ----------
    step_size
        Current step size (random-walk scale for MH; NaN for kernels with neither).
    inverse_mass_matrix, mass_matrix_sqrt, mass_matrix_sqrt_inv
        For kernels with a mass matrix: the inverse mass matrix :math:`M^{-1}` and
        factors with :math:`M^{1/2} (M^{1/2})^\top = M` and
        :math:`M^{-1/2} (M^{-1/2})^\top = M^{-1}`; a dict keyed by the tuple of site
        names for a model (NumPyro's layout), arrays otherwise; None without a matrix.
    kernel
        The kernel with its tuned hyper-parameters (what the next transition uses).
    warmup
        State of the adapter's warm-up (an :mod:`ebm_ppl.adaptation` state type, its
        ``num_warmup`` included).
    target_accept_prob
        Target acceptance rate (may be a traced value).
    """

    step_size: Array
    inverse_mass_matrix: Any
    mass_matrix_sqrt: Any
    mass_matrix_sqrt_inv: Any
    kernel: Kernel
    warmup: Any
    target_accept_prob: Array


class EBMKernelState(NamedTuple):
    """State of an :class:`EBMKernel` (one chain; leading chain axis when vectorized).

    Attributes
    ----------
    i
        Iteration counter (warm-up iterations included).
    z
        Current position (a dict of unconstrained site values for a model).
    potential_energy
        :math:`-\\log p(z)` (NumPyro sign; ArviZ's ``lp`` is its negative).
    energy
        Hamiltonian of the last transition (HMC/NUTS; NaN for other kernels).
    num_steps
        Leapfrog steps of the last transition (1 for one-gradient kernels).
    accept_prob
        Acceptance probability of the last transition.
    mean_accept_prob
        Running mean of ``accept_prob`` (restarted after warm-up).
    diverging
        Whether the last transition diverged (non-finite density, energy error...).
    adapt_state
        :class:`EBMAdaptState`.
    inner
        State of the wrapped ebm_ppl kernel.
    rng_key
        Key of the next transition.
    """

    i: Array
    z: ArrayTree
    potential_energy: Array
    energy: Array
    num_steps: Array
    accept_prob: Array
    mean_accept_prob: Array
    diverging: Array
    adapt_state: EBMAdaptState
    inner: Any
    rng_key: PRNGKey


class _ModelKernel(MCMCKernel):
    """A NumPyro kernel that keeps its model in ``_model`` and the position in state ``z``."""

    _model: Callable | None

    @property
    def model(self) -> Callable | None:
        """The NumPyro model (``None`` when built from a ``potential_fn``)."""
        return self._model

    @property
    def sample_field(self) -> str:
        """``"z"``: the (unconstrained) position in the state."""
        return "z"


class EBMKernel(_ModelKernel):
    """Base class: an ebm_ppl :class:`~ebm_ppl.kernels.Kernel` run by NumPyro's MCMC.

    Subclasses build ``self._kernel`` and set the warm-up options below; see
    :class:`~ebm_ppl.numpyro.ULA`, :class:`~ebm_ppl.numpyro.MH`,
    :class:`~ebm_ppl.numpyro.BlackJAXKernel`.

    Parameters
    ----------
    model
        A NumPyro model; exactly one of ``model`` and ``potential_fn`` is given.
    potential_fn
        ``potential_fn(z) -> -log p(z)`` (NumPyro sign) on any pytree ``z``;
        ``MCMC.run`` then needs ``init_params``.
    init_strategy
        NumPyro init strategy for a model's initial position (``init_to_uniform``).

    Raises
    ------
    ValueError
        If both or neither of ``model`` and ``potential_fn`` are given.
    TypeError
        If the one given, or ``init_strategy``, is not callable.
    """

    _kernel: Kernel
    #: The warm-up run during NumPyro's ``num_warmup`` (an :mod:`ebm_ppl.adaptation`
    #: object, built from NumPyro's arguments by each adapter).
    _warmup: Warmup = adaptation.none()
    _heuristic_step_size: bool = False
    _forward_mode: bool = False
    _target_accept_prob: Any = None
    _sampling_static: tuple | None = None
    #: Report the mass matrix as flat arrays even for a model (NumPyro's BarkerMH does).
    _flat_mass_views: bool = False

    def __init__(
        self,
        model: Callable | None = None,
        potential_fn: Callable | None = None,
        *,
        init_strategy: Callable = init_to_uniform,
    ) -> None:
        if model is None and potential_fn is None:
            raise ValueError(
                f"{type(self).__name__} needs a model or a potential_fn, got neither"
            )
        if model is not None and potential_fn is not None:
            raise ValueError(
                f"{type(self).__name__} takes exactly one of model and potential_fn, got both"
            )
        given, name = (model, "model") if model is not None else (potential_fn, "potential_fn")
        if not callable(given):
            raise TypeError(f"{name} must be callable, got {type(given).__name__}")
        if not callable(init_strategy):
            raise TypeError(
                f"init_strategy must be a NumPyro init strategy, got {init_strategy!r}"
            )
        self._model = model
        self._potential_fn = potential_fn
        self._init_strategy = init_strategy
        self._potential: Potential | None = None  # set by init(), as NumPyro's HMC does

    # ------------------------------------------------------------------ properties
    @property
    def default_fields(self) -> tuple[str, ...]:
        """Fields collected by ``MCMC.run`` (ArviZ: ``lp``, ``acceptance_rate``...)."""
        fields = ("z", "potential_energy", "accept_prob", "diverging")
        return fields + (("adapt_state.step_size",) if self._has_step_size else ())

    @property
    def _has_step_size(self) -> bool:
        return self._kernel.step_size is not None

    def get_diagnostics_str(self, state: EBMKernelState) -> str:
        """Progress-bar text: step size and mean acceptance probability."""
        text = f"acc. prob={float(state.mean_accept_prob):.2f}"
        if self._has_step_size:
            text = f"step size {float(state.adapt_state.step_size):.2e}. " + text
        return text

    def postprocess_fn(self, model_args: tuple, model_kwargs: dict) -> Callable:
        """Map unconstrained ``z`` to the model's constrained sites (identity otherwise)."""
        if self._model is None or self._potential is None:
            return identity
        return self._target(model_args, model_kwargs).constrain

    # ------------------------------------------------------------------ target
    def _target(self, model_args: tuple, model_kwargs: dict | None) -> Potential:
        """The potential, with the model's data replaced by ``model_args`` (traced)."""
        if self._potential is None:
            raise RuntimeError(f"{type(self).__name__}.init must be called before sample")
        pot = self._potential
        if self._model is not None and pot.params is not None:
            pot = pot.with_model_args(*model_args, **(model_kwargs or {}))
        return pot

    def _logdensity_fn(self, pot: Potential) -> LogDensityFn:
        return forward_mode(pot.logdensity_fn) if self._forward_mode else pot.logdensity_fn

    # ------------------------------------------------------------------ MCMCKernel
    def init(
        self,
        rng_key: PRNGKey,
        num_warmup: int,
        init_params: ArrayTree | None = None,
        model_args: tuple = (),
        model_kwargs: dict | None = None,
    ) -> EBMKernelState:
        """Initial state; a batch of keys gives a batch of chains (vectorized).

        Parameters
        ----------
        rng_key
            One key, or a batch of ``num_chains`` keys (``chain_method="vectorized"``).
        num_warmup
            Warm-up iterations (adaptation runs during them).
        init_params
            Initial unconstrained position (leading chain axis for a batch of keys);
            drawn with ``init_strategy`` for a model when ``None``; required with
            ``potential_fn``.
        model_args, model_kwargs
            Arguments of the model.

        Raises
        ------
        ValueError
            If ``init_params`` is missing for a ``potential_fn``, or the log density is
            not finite at the initial position.
        ebm_ppl.IntractableNormaliserError
            If an ``EnergyDistribution`` site's parameters depend on latent sites.
        """
        model_kwargs = {} if model_kwargs is None else model_kwargs
        vectorized = not is_prng_key(rng_key)
        split = jax.vmap(jax.random.split) if vectorized else jax.random.split
        keys = split(rng_key)
        rng_key, key_init = (keys[:, 0], keys[:, 1]) if vectorized else (keys[0], keys[1])
        if self._model is not None:
            self._potential = Potential.from_model(self._model, *model_args, **model_kwargs)
            if init_params is None:
                init_params = initialize_model(
                    key_init, self._model, init_strategy=self._init_strategy,
                    model_args=model_args, model_kwargs=model_kwargs, validate_grad=False,
                ).param_info.z
        else:
            self._potential = Potential.from_energy(self._potential_fn)
            if init_params is None:
                raise ValueError(
                    f"init_params must be given to MCMC.run when {type(self).__name__} is "
                    "built from a potential_fn, got None"
                )
        if isinstance(init_params, ParamInfo):
            init_params = init_params.z
        init_one = self._init_one(self._target(model_args, model_kwargs), num_warmup)
        state = jax.vmap(init_one)(init_params, rng_key) if vectorized \
            else init_one(init_params, rng_key)
        potential = state.potential_energy
        if not isinstance(potential, jax.core.Tracer) and not bool(
            jnp.all(jnp.isfinite(potential))
        ):
            raise ValueError(
                "the log density must be finite at the initial position, got potential "
                f"energy {potential}; pass other init_params or init_strategy"
            )
        return state

    def _init_one(self, pot: Potential, num_warmup: int) -> Callable:
        logdensity_fn = self._logdensity_fn(pot)

        def init_one(position: ArrayTree, rng_key: PRNGKey) -> EBMKernelState:
            rng_key, key_tune = jax.random.split(rng_key)
            kernel = self._kernel_at(position)
            inner = kernel.init(position, logdensity_fn)
            dtype = jnp.result_type(float)
            target = jnp.asarray(self._target_accept_prob, dtype)
            if self._heuristic_step_size:
                kernel = heuristic_step_size(kernel, key_tune, inner, logdensity_fn, target)
            warmup = self._warmup_at(position)
            if warmup.tunes_once:  # BlackJAX's MCLMC tuner, run here over num_warmup steps
                inner, kernel = warmup.tune_one(kernel, key_tune, inner, logdensity_fn,
                                                int(num_warmup))
            warmup = self._step_warmup(position).init(kernel, position, num_warmup)
            return self._with_stats(EBMKernelState(
                i=jnp.asarray(0),
                z=inner.position,
                potential_energy=_potential_energy(pot, inner),
                energy=jnp.full((), jnp.nan, dtype),
                num_steps=jnp.asarray(0),
                accept_prob=jnp.zeros((), dtype),
                mean_accept_prob=jnp.zeros((), dtype),
                diverging=jnp.asarray(False),
                adapt_state=self._adapt_state(kernel, warmup, target, inner.position),
                inner=inner,
                rng_key=rng_key,
            ), None)

        return init_one

    def _adapt_state(self, kernel: Kernel, warmup: Any, target: Array,
                     position: ArrayTree) -> EBMAdaptState:
        dtype = jnp.result_type(float)
        step_size = kernel.step_size
        step_size = jnp.full((), jnp.nan, dtype) if step_size is None \
            else jnp.asarray(step_size, dtype)
        imm = kernel.parameters.get("inverse_mass_matrix")
        views = (None, None, None) if imm is None or jnp.ndim(imm) == 0 \
            else mass_matrix_views(imm, None if self._flat_mass_views else position,
                                   self._layout(position))
        return EBMAdaptState(step_size, *views, kernel, warmup, target)

    def _layout(self, position: ArrayTree) -> MassLayout | None:
        """NumPyro's site groups of the mass matrix (None: one block, from its shape)."""
        return None

    def _warmup_at(self, position: ArrayTree) -> Warmup:
        """The warm-up of one chain at ``position`` (NumPyro's site groups sized to it)."""
        return self._warmup

    def _step_warmup(self, position: ArrayTree) -> Warmup:
        """The warm-up updated at every step (none after a one-call tuner)."""
        warmup = self._warmup_at(position)
        return adaptation.none() if warmup.tunes_once else warmup

    def _kernel_at(self, position: ArrayTree) -> Kernel:
        """The kernel for one chain at ``position`` (defaults sized to it)."""
        return self._kernel.with_defaults(position)

    def sample(self, state: EBMKernelState, model_args: tuple,
               model_kwargs: dict | None) -> EBMKernelState:
        """One transition (of every chain, for a vectorized state); during the first
        ``num_warmup`` iterations the kernel is tuned by :mod:`ebm_ppl.adaptation`."""
        pot = self._target(model_args, model_kwargs)
        if jnp.ndim(state.i) > 0:
            return jax.vmap(self._sample_one, in_axes=(0, None))(state, pot)
        return self._sample_one(state, pot)

    def _sample_one(self, state: EBMKernelState, pot: Potential) -> EBMKernelState:
        logdensity_fn = self._logdensity_fn(pot)
        adapt = state.adapt_state
        rng_key, key_step = jax.random.split(state.rng_key)
        in_warmup = state.i < adapt.warmup.num_warmup
        kernel = adapt.kernel
        if self._sampling_static is not None:  # NUTS' (warm-up, sampling) tree depths
            sampling = dataclasses.replace(kernel, static_parameters=self._sampling_static)
            inner, info = jax.lax.cond(
                in_warmup,
                lambda: kernel.step(key_step, state.inner, logdensity_fn),
                lambda: sampling.step(key_step, state.inner, logdensity_fn),
            )
        else:
            inner, info = kernel.step(key_step, state.inner, logdensity_fn)
        dtype = state.accept_prob.dtype
        stats = to_stats(info)  # the one info -> stats map, as ebm_ppl.sample's
        accept_prob = jnp.asarray(stats["acceptance_rate"], dtype)
        # the warm-up steers acceptance to its target_acceptance_rate (a static number);
        # a traced target enters as a shift of the statistic: every warm-up updates on
        # (target - acceptance) only, so this is exact.
        step_warmup = self._step_warmup(inner.position)
        shift = step_warmup.target_acceptance_rate - adapt.target_accept_prob
        shifted = accept_prob + shift
        new_kernel, warmup = step_warmup.update(kernel, adapt.warmup,
                                                step_warmup.observe(inner),
                                                shifted.astype(dtype),
                                                self._warmup_stats(stats, shift))
        n = jnp.where(in_warmup, state.i + 1, state.i - adapt.warmup.num_warmup + 1)
        mean_accept_prob = state.mean_accept_prob + (accept_prob - state.mean_accept_prob) / n
        return self._with_stats(EBMKernelState(
            i=state.i + 1,
            z=inner.position,
            potential_energy=_potential_energy(pot, inner),
            energy=jnp.asarray(stats.get("energy", jnp.nan), dtype),
            num_steps=jnp.asarray(stats.get("n_steps", 1)).astype(state.num_steps.dtype),
            accept_prob=accept_prob,
            mean_accept_prob=mean_accept_prob,
            diverging=jnp.asarray(stats["diverging"], bool),
            adapt_state=self._adapt_state(new_kernel, warmup, adapt.target_accept_prob,
                                          inner.position),
            inner=inner,
            rng_key=rng_key,
        ), stats)

    def _warmup_stats(self, stats: dict[str, Array], shift: Array) -> dict[str, Array]:
        """The ``stats`` fed to the warm-up, with ``shift`` (the warm-up's target minus
        ``target_accept_prob``) added to any acceptance statistic it steers besides
        ``acceptance_rate`` (none here)."""
        return stats

    def _with_stats(self, state: EBMKernelState, stats: dict[str, Array] | None) -> Any:
        """The chain state kept by NumPyro: ``state``, or a subclass's state type with
        more fields read from the transition's ``stats`` (None at ``init``)."""
        return state

    def __repr__(self) -> str:
        source = "model" if self._model is not None else "potential_fn"
        return (f"{type(self).__name__}({self._kernel!r}, {source}, "
                f"warmup={self._warmup.name!r})")


def _potential_energy(pot: Potential, inner: Any) -> Array:
    """NumPyro's potential energy of a kernel state (its cached log density if any)."""
    logdensity = getattr(inner, "logdensity", None)
    if logdensity is None:
        return pot.potential_fn(inner.position)
    return potential_from_logdensity(logdensity)
