r"""Parallel tempering (:func:`ebm_ppl.kernels.parallel_tempering`) for NumPyro's MCMC.

:class:`ParallelTempering` runs a ladder of tempered replicas of any ebm_ppl kernel
inside :class:`numpyro.infer.MCMC`, so models whose prior is multimodal (a trained
energy as an :class:`~ebm_ppl.numpyro.EnergyDistribution`, a mixture) are sampled
across their modes. NumPyro records the cold replica; the swap statistics are extra
fields of the state (:class:`ParallelTemperingKernelState`), with the names
:func:`ebm_ppl.sample` gives them in ``sample_stats``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax.numpy as jnp
from numpyro.infer import init_to_uniform

from ebm_ppl import adaptation
from ebm_ppl import kernels as _kernels
from ebm_ppl._types import Array, ArrayLike, ArrayTree, PRNGKey
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.kernels.tempering import ParallelTemperingState, replica_step_sizes
from ebm_ppl.numpyro.arguments import check_target, is_traced
from ebm_ppl.numpyro.base import EBMAdaptState, EBMKernel, EBMKernelState

__all__ = ["ParallelTempering", "ParallelTemperingKernelState"]


class ParallelTemperingKernelState(NamedTuple):
    """State of :class:`ParallelTempering`: :class:`~ebm_ppl.numpyro.EBMKernelState`'s
    fields (those of the cold replica), then the last transition's swap statistics.

    Attributes
    ----------
    i, z, potential_energy, energy, num_steps, accept_prob, mean_accept_prob, diverging
        As in :class:`~ebm_ppl.numpyro.EBMKernelState`, for the cold (:math:`\\beta = 1`)
        replica.
    adapt_state
        :class:`~ebm_ppl.numpyro.base.EBMAdaptState`; ``step_size`` is the cold
        replica's, ``kernel`` the tuned parallel-tempering kernel (per-replica step
        sizes ``kernel.parameters["kernel"].step_size``, ladder
        ``kernel.parameters["betas"]``).
    inner
        The :class:`~ebm_ppl.kernels.ParallelTemperingState`: every replica
        (``inner.replicas``), the ladder (``inner.betas``), which replica sits at each
        temperature (``inner.labels``).
    rng_key
        Key of the next transition.
    swap_acceptance
        ``(K - 1,)`` acceptance probability of the swap of pair ``(i, i + 1)`` at the last
        transition, NaN for the pairs not proposed then (take a ``nanmean`` over draws).
    replica_acceptance
        ``(K,)`` acceptance rate of every replica's base step at the last transition.
    round_trips
        Cumulative number of round trips cold → hottest → cold, over all replicas.
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
    inner: ParallelTemperingState
    rng_key: PRNGKey
    swap_acceptance: Array
    replica_acceptance: Array
    round_trips: Array


class ParallelTempering(EBMKernel):
    r"""Parallel tempering over any ebm_ppl kernel, as a NumPyro
    :class:`~numpyro.infer.mcmc.MCMCKernel`.

    ``K`` replicas of the base ``kernel`` run on the tempered targets
    :math:`\pi_k(z) \propto p(z)^{\beta_k}`,
    :math:`1 = \beta_0 > \dots > \beta_{K-1} = 1/T_{\max}`, with :math:`p` the model's
    density on the unconstrained space (:math:`e^{-U}`, :math:`U` NumPyro's potential
    energy). Each transition moves every replica by one base step, then proposes to swap
    neighbouring pairs ``(i, i + 1)`` of one parity, accepted with probability

    .. math::

        \alpha_i = \min\Big\{1, \exp\big[(\beta_i - \beta_{i+1})
            \big(U(z_i) - U(z_{i+1})\big)\big]\Big\},

    which leaves :math:`\prod_k \pi_k(z_k)` invariant, so the cold replica, the one
    NumPyro records, has law :math:`p`. Hot replicas cross the energy barriers between
    modes and pass the modes they find down the ladder. ``swap="deo"`` alternates even
    and odd pairs (non-reversible: a replica travels the ladder in :math:`O(K)` steps
    instead of :math:`O(K^2)`; Syed et al. 2022); ``"seo"`` draws the parity.

    Warm-up (``adapt=True``) is :func:`ebm_ppl.adaptation.tempering`, the same as
    :func:`ebm_ppl.sample`'s: each replica's step size by dual averaging on its own
    acceptance rate towards ``target_accept_prob``, and the ladder re-spaced towards
    equal swap rejection rates (:func:`ebm_ppl.kernels.adapt_ladder`) at the ends of
    the windows ``num_warmup / 2**k``. A base kernel with no step size (a random walk),
    or one that adapts nothing itself (ULA, whose acceptance is always 1), is run as
    given.

    Parameters
    ----------
    kernel
        The base ebm_ppl kernel (:func:`~ebm_ppl.kernels.mala`,
        :func:`~ebm_ppl.kernels.hmc`, :func:`~ebm_ppl.kernels.random_walk`...), not
        itself parallel tempering; its hyper-parameters are broadcast to every replica
        unless ``replica_parameters`` sets them.
    model, potential_fn
        Exactly one: a NumPyro model or ``potential_fn(z) -> U(z) = -log p(z)``.
    num_temperatures
        :math:`K \geq 2` (default 8, or ``len(betas)``).
    max_temperature
        :math:`T_{\max} > 1` for the geometric ladder
        :func:`~ebm_ppl.kernels.tempered_ladder`; of the order of the barrier height in
        nats. Required unless ``betas`` is given.
    betas
        The ladder itself: ``(K,)`` strictly decreasing in (0, 1], first 1.
    swap
        ``"deo"`` (deterministic even/odd, default) or ``"seo"`` (stochastic even/odd).
    replica_parameters
        Per-replica hyper-parameters of the base kernel, each with a leading axis ``K``
        (e.g. ``{"step_size": 0.1 / betas}`` for MALA).
    adapt
        Run the warm-up above during NumPyro's ``num_warmup`` (default True).
    target_accept_prob
        Target acceptance rate of every replica's base step (the base kernel's own
        target, e.g. 0.574 for MALA, by default); may be traced.
    init_strategy
        NumPyro init strategy for a model.

    Raises
    ------
    TypeError
        If ``kernel`` is not an ebm_ppl kernel, or ``model``/``potential_fn`` is not
        callable.
    ValueError
        If ``kernel`` is itself parallel tempering, the ladder is given twice or not at
        all (``max_temperature`` and ``betas``), an argument is out of range, or both or
        neither of ``model`` and ``potential_fn`` are given.

    Notes
    -----
    The state is a :class:`ParallelTemperingKernelState`: NumPyro's fields are the cold
    replica's (``adapt_state.step_size`` is its step size, shown by the progress bar),
    ``mcmc.last_state.inner`` is the :class:`~ebm_ppl.kernels.ParallelTemperingState`
    (``inner.betas``, ``inner.labels``, ``inner.round_trips``), and
    ``mcmc.last_state.adapt_state.kernel`` the tuned kernel. ``swap_acceptance``,
    ``replica_acceptance`` and ``round_trips`` are default fields, so
    :func:`arviz.from_numpyro` puts them in ``sample_stats`` as :func:`ebm_ppl.sample`
    does.

    References
    ----------
    Geyer (1991), *Markov chain Monte Carlo maximum likelihood*, Computing Science and
    Statistics 23.
    Syed, Bouchard-Côté, Deligiannidis & Doucet (2022), *Non-reversible parallel
    tempering: a scalable highly parallel MCMC scheme*, JRSSB 84(2),
    https://arxiv.org/abs/1905.02939

    Examples
    --------
    A two-mode prior 8 apart (a barrier of 32 nats), started in the light mode:

    >>> import jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist
    >>> from numpyro.infer import MCMC
    >>> from ebm_ppl import kernels
    >>> def model():
    ...     mix = dist.Categorical(probs=jnp.array([0.3, 0.7]))
    ...     numpyro.sample("x", dist.MixtureSameFamily(mix, dist.Normal(
    ...         jnp.array([-4.0, 4.0]), 0.5)))
    >>> pt = ParallelTempering(kernels.mala(0.1), model, num_temperatures=6,
    ...                        max_temperature=50.0)
    >>> mcmc = MCMC(pt, num_warmup=100, num_samples=100, progress_bar=False)
    >>> mcmc.run(jax.random.key(0), init_params={"x": jnp.array(-4.0)})
    >>> mcmc.get_extra_fields()["swap_acceptance"].shape
    (100, 5)
    >>> mcmc.last_state.inner.betas.shape
    (6,)
    """

    def __init__(
        self,
        kernel: Kernel,
        model: Callable | None = None,
        potential_fn: Callable | None = None,
        *,
        num_temperatures: int | None = None,
        max_temperature: float | None = None,
        betas: ArrayLike | None = None,
        swap: str = "deo",
        replica_parameters: Mapping[str, ArrayLike] | None = None,
        adapt: bool = True,
        target_accept_prob: float | None = None,
        init_strategy: Callable = init_to_uniform,
    ) -> None:
        super().__init__(model, potential_fn, init_strategy=init_strategy)
        if isinstance(kernel, str):
            raise TypeError(f"kernel must be an ebm_ppl kernel such as "
                            f"ebm_ppl.kernels.{kernel}(0.1), got the string {kernel!r}")
        check_target(target_accept_prob)
        pt = _kernels.parallel_tempering(
            kernel, num_temperatures, max_temperature, betas=betas, swap=swap,
            replica_parameters=replica_parameters)
        self._kernel = pt
        default = pt.default_warmup
        target = default.target_acceptance_rate if target_accept_prob is None \
            else target_accept_prob
        if not adapt or default.name == "none" or kernel.adaptation == "none":
            self._warmup = adaptation.none()
        elif is_traced(target):  # enters as a shift of the statistics (_warmup_stats)
            self._warmup = default
        else:
            self._warmup = dataclasses.replace(default, target_acceptance_rate=float(target))
        self._target_accept_prob = target

    @property
    def _has_step_size(self) -> bool:
        return replica_step_sizes(self._kernel) is not None

    def _adapt_state(self, kernel: Kernel, warmup: Any, target: Array,
                     position: ArrayTree) -> EBMAdaptState:
        """NumPyro's adapt state, with the cold replica's step size (or scale)."""
        state = super()._adapt_state(kernel, warmup, target, position)
        step_sizes = replica_step_sizes(kernel)
        if step_sizes is None:
            return state
        return state._replace(step_size=jnp.asarray(step_sizes[0], state.step_size.dtype))

    def _warmup_stats(self, stats: dict[str, Array], shift: Array) -> dict[str, Array]:
        """Every replica's acceptance is steered too: shift it like the cold one's."""
        return {**stats, "replica_acceptance": stats["replica_acceptance"] + shift}

    def _with_stats(self, state: EBMKernelState, stats: dict[str, Array] | None
                    ) -> ParallelTemperingKernelState:
        inner = state.inner
        num = inner.betas.shape[0]
        dtype = state.accept_prob.dtype
        if stats is None:  # init: no swap proposed yet, no base step taken
            swap = jnp.full((num - 1,), jnp.nan, dtype)
            replica = jnp.zeros((num,), dtype)
        else:
            swap = jnp.asarray(stats["swap_acceptance"], dtype)
            replica = jnp.asarray(stats["replica_acceptance"], dtype)
        return ParallelTemperingKernelState(*state, swap_acceptance=swap,
                                            replica_acceptance=replica,
                                            round_trips=inner.round_trips)

    @property
    def default_fields(self) -> tuple[str, ...]:
        """NumPyro's fields and the swap statistics (``sample_stats`` in ArviZ)."""
        return super().default_fields + ("swap_acceptance", "replica_acceptance",
                                         "round_trips")

    def get_diagnostics_str(self, state: ParallelTemperingKernelState) -> str:
        """Progress-bar text: cold step size, acceptance, round trips so far."""
        return f"{super().get_diagnostics_str(state)}, round trips {int(state.round_trips)}"
