r"""The exchange algorithm as a NumPyro kernel, for models whose energies have unknown
parameters.

In a model such as

.. code-block:: python

    def model(x):
        s = numpyro.sample("s", dist.HalfNormal(3.0))
        numpyro.sample("x", EnergyDistribution(energy, params=s, event_shape=(1,)), obs=x)

the likelihood of ``x`` is :math:`e^{-E_s(x)} / Z(s)` with :math:`Z(s)` unknown, so NUTS,
HMC and the other kernels refuse it (:class:`~ebm_ppl.errors.IntractableNormaliserError`).
:class:`Exchange` samples it: every transition proposes new values of **all** latent
sites jointly (a Gaussian random walk on NumPyro's unconstrained space, scale adapted
during warm-up), draws auxiliary data :math:`y_s` for every observed EnergyDistribution
site :math:`s` whose parameters depend on latent sites, and accepts with the exchange
ratio

.. math::

    \log \alpha = \log \tilde p(z') - \log \tilde p(z)
    + \sum_s \big[\log f_{\theta_s(z)}(y_s) - \log f_{\theta_s(z')}(y_s)\big],

:math:`\tilde p` the model's density with every EnergyDistribution unnormalised (priors,
Jacobians and ordinary likelihoods included). The other latent sites therefore move by
ordinary random-walk Metropolis inside the same joint proposal: for a move that leaves
an energy's parameters unchanged the auxiliary term cancels exactly. :math:`y_s` is drawn
by ``inner_steps`` steps of ``inner_kernel`` per data point, started from the observed
data (Liang's double Metropolis–Hastings), in the unconstrained space of the site's
support (Jacobian included).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from numpyro.distributions.transforms import biject_to
from numpyro.handlers import seed, substitute, trace
from numpyro.infer.util import constrain_fn

from ebm_ppl import adaptation
from ebm_ppl._potential_parts import ModelFunction, join_data, split_data
from ebm_ppl._types import Array, ArrayTree, PRNGKey
from ebm_ppl._validation import check_int, check_positive, check_probability
from ebm_ppl.adaptation import RobbinsMonroState
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.kernels.exchange import (
    Auxiliary,
    ExchangeState,
    default_inner_step_size,
    exchange_init,
    exchange_kernel,
    inner_draws,
)
from ebm_ppl.kernels.mh import random_walk
from ebm_ppl.model.distribution import energy_sites, intractable_sites
from ebm_ppl.numpyro.base import _ModelKernel
from ebm_ppl.potential import Potential, potential_from_logdensity

__all__ = ["Exchange", "ExchangeMCMCState"]

class ExchangeMCMCState(NamedTuple):
    """State of :class:`Exchange` (one chain; leading chain axis when vectorized).

    ``potential_energy`` is the model's potential with unnormalised energies (ArviZ's
    ``lp`` is its negative); ``inner_accept_prob`` the mean acceptance of the inner
    chains of the last transition; ``scale`` the random-walk scale (adapted during
    warm-up).
    """

    i: Array
    z: ArrayTree
    potential_energy: Array
    accept_prob: Array
    mean_accept_prob: Array
    inner_accept_prob: Array
    diverging: Array
    scale: Array
    num_warmup: Array
    rng_key: PRNGKey


@dataclasses.dataclass(frozen=True)
class _ModelAuxiliary:
    """Energy sites of a model at an unconstrained position, their auxiliary draws and
    their unnormalised log densities (``draw`` and ``logdensity`` of :class:`Auxiliary`)."""

    model: Callable
    structure: Any
    sites: tuple[str, ...]
    inner_steps: int

    def energies(self, z: ArrayTree, data: list[Array]) -> dict[str, tuple[Any, Array]]:
        args, kwargs = join_data(data, self.structure)
        values = constrain_fn(self.model, args, kwargs, z)
        model_trace = trace(substitute(seed(self.model, 0), data=values)).get_trace(
            *args, **kwargs
        )
        found = energy_sites(model_trace)
        return {name: (found[name], model_trace[name]["value"]) for name in self.sites}

    def logdensity(self, z: ArrayTree, y: dict[str, Array], params: dict) -> Array:
        total = jnp.zeros(())
        for name, (dist, _) in self.energies(z, params["data"]).items():
            points = y[name].reshape((-1, *dist.event_shape))
            total = total + jnp.sum(jax.vmap(dist.potential.logdensity_fn)(points))
        return total

    def draw(self, rng_key: PRNGKey, z: ArrayTree, params: dict):
        keys = jax.random.split(rng_key, len(self.sites))
        draws, rates = {}, []
        for key, (name, (dist, obs)) in zip(keys, self.energies(z, params["data"]).items()):
            transform = biject_to(dist.support)
            logdensity = dist.potential.logdensity_fn

            def unconstrained(u, transform=transform, logdensity=logdensity):
                x = transform(u)
                return logdensity(x) + jnp.sum(transform.log_abs_det_jacobian(u, x))

            start = transform.inv(jnp.reshape(obs, (-1, *dist.event_shape)))
            u, rate = inner_draws(key, unconstrained, start, params["inner_kernels"][name],
                                  self.inner_steps, params["fallback_step_sizes"][name])
            draws[name] = transform(u).reshape(jnp.shape(obs))
            rates.append(rate)
        return draws, jnp.mean(jnp.stack(rates))


class Exchange(_ModelKernel):
    r"""The exchange algorithm for NumPyro models whose energies have latent parameters.

    See the module docstring for the transition; it is :func:`ebm_ppl.kernels.exchange`
    applied to the whole model. Use :class:`numpyro.infer.MCMC` as with any kernel
    (``chain_method="vectorized"`` included); ``arviz.from_numpyro`` reads ``lp``,
    ``acceptance_rate``, ``diverging`` and ``inner_accept_prob``.

    Parameters
    ----------
    model
        A NumPyro model with at least one latent sample site.
    inner_kernel
        ebm_ppl kernel of the inner chains (one per data point) drawing the auxiliary
        data of every energy site; default: MALA with a step size matched to the
        energy's curvature at the data under each proposal
        (:func:`~ebm_ppl.kernels.exchange.curvature_step_size`, in the unconstrained
        space of the site's support).
    inner_steps
        Steps of every inner chain; check that it is enough with twice as many (the
        posteriors must agree within Monte-Carlo error).
    scale
        Initial standard deviation of the joint random-walk proposal (unconstrained).
    adapt_scale
        Adapt the scale during warm-up (Robbins–Monro on its log towards
        ``target_accept_prob``), then keep it.
    target_accept_prob
        0.3 by default (between the optimal random-walk rates in 1 and many dimensions).

    Raises
    ------
    TypeError
        If ``model`` is not callable or ``inner_kernel`` not an ebm_ppl kernel.
    ValueError
        For invalid numbers, and (at ``init``) for a model whose *latent*
        EnergyDistribution site has latent parameters (not supported).

    Examples
    --------
    >>> from numpyro.infer import MCMC
    >>> mcmc = MCMC(Exchange(model, inner_steps=20), num_warmup=500, num_samples=1000)
    >>> mcmc.run(jax.random.key(0), x)  # doctest: +SKIP
    """

    def __init__(
        self, model: Callable, inner_kernel: Kernel | None = None, inner_steps: int = 20, *,
        scale: float = 0.1, adapt_scale: bool = True, target_accept_prob: float = 0.3,
    ) -> None:
        if not callable(model):
            raise TypeError(f"model must be callable, got {type(model).__name__}")
        if inner_kernel is not None and not isinstance(inner_kernel, Kernel):
            raise TypeError(f"inner_kernel must be an ebm_ppl kernel (e.g. kernels.mala(0.1)), "
                            f"got {type(inner_kernel).__name__}")
        check_positive("scale", scale)
        check_probability("target_accept_prob", target_accept_prob, allow_one=False)
        self._model = model
        self._inner_kernel = inner_kernel
        self._inner_steps = check_int("inner_steps", inner_steps, 1)
        self._scale = float(scale)
        self._warmup = (adaptation.robbins_monro(float(target_accept_prob)) if adapt_scale
                        else adaptation.none())
        self._pot: Potential | None = None  # set by init() from the model, as NumPyro's HMC
        self._auxiliary: _ModelAuxiliary | None = None
        self._inner_kernels: dict[str, Kernel | None] = {}
        self._fallback_step_sizes: dict[str, Array] = {}

    # ------------------------------------------------------------------ properties
    @property
    def default_fields(self) -> tuple[str, ...]:
        """Fields collected by ``MCMC.run`` (ArviZ: ``lp``, ``acceptance_rate``...)."""
        return ("z", "potential_energy", "accept_prob", "diverging", "inner_accept_prob")

    @property
    def sites(self) -> tuple[str, ...]:
        """The energy sites whose normaliser the exchange moves handle (after ``init``)."""
        return () if self._auxiliary is None else self._auxiliary.sites

    def get_diagnostics_str(self, state: ExchangeMCMCState) -> str:
        """Progress-bar text: mean acceptance and inner acceptance."""
        return (f"acc. prob={float(state.mean_accept_prob):.2f}, "
                f"inner acc.={float(state.inner_accept_prob):.2f}")

    def postprocess_fn(self, model_args: tuple, model_kwargs: dict) -> Callable:
        """Unconstrained position -> constrained sites (and deterministic sites)."""
        pot = self._potential(model_args, model_kwargs)
        return pot.constrain

    # ------------------------------------------------------------------ set-up
    def _potential(self, model_args: tuple, model_kwargs: dict) -> Potential:
        if self._pot is None:
            raise RuntimeError("Exchange.init must run before sampling")
        if not isinstance(self._pot.fn, ModelFunction):  # closes over its data
            return self._pot
        return self._pot.with_model_args(*model_args, **model_kwargs)

    def _setup(self, rng_key: PRNGKey, model_args: tuple, model_kwargs: dict) -> None:
        # no normaliser check: the exchange moves supply the missing Z(theta)
        self._pot = Potential._from_model_unchecked(self._model, model_args, model_kwargs,
                                                    rng_key)
        found = intractable_sites(self._model, model_args, model_kwargs, rng_key=rng_key)
        latent = sorted(name for name, observed in found.items() if not observed)
        if latent:
            raise ValueError(
                f"Exchange handles observed EnergyDistribution sites only; the latent site(s) "
                f"{latent} have params that depend on other latent sites (not supported)"
            )
        data, structure = split_data(model_args, model_kwargs)
        self._auxiliary = _ModelAuxiliary(self._model, structure, tuple(sorted(found)),
                                          self._inner_steps)
        z0 = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), self._potential(
            model_args, model_kwargs).example)
        for name, (dist, obs) in self._auxiliary.energies(z0, data).items():
            start = biject_to(dist.support).inv(jnp.reshape(obs, (-1, *dist.event_shape)))
            self._inner_kernels[name] = self._inner_kernel
            self._fallback_step_sizes[name] = jnp.asarray(default_inner_step_size(start))

    def _kernel(self, scale: Array, model_args: tuple, model_kwargs: dict) -> Kernel:
        auxiliary = Auxiliary(
            draw_fn=self._auxiliary.draw, logdensity_fn=self._auxiliary.logdensity,
            params={"data": split_data(model_args, model_kwargs)[0],
                    "inner_kernels": self._inner_kernels,
                    "fallback_step_sizes": self._fallback_step_sizes},
        )
        proposal = random_walk(scale).parameters["proposal"]
        return Kernel(name="exchange", init_fn=exchange_init, kernel_fn=exchange_kernel,
                      parameters={"proposal": proposal, "auxiliary": auxiliary})

    # ------------------------------------------------------------------ MCMCKernel API
    def init(self, rng_key: PRNGKey, num_warmup: int, init_params: Any, model_args: tuple,
             model_kwargs: dict) -> ExchangeMCMCState:
        """Trace the model, find its energy sites and build the initial state(s)."""
        keys = _typed_keys(rng_key)
        first = keys if keys.ndim == 0 else keys[0]
        self._setup(first, model_args, model_kwargs)
        pot = self._potential(model_args, model_kwargs)

        def one(key: PRNGKey, z: ArrayTree | None) -> ExchangeMCMCState:
            key_init, key_state = jax.random.split(key)
            if z is None:
                z = jax.tree.map(lambda x: x[0], pot.init_fn(key_init, 1))
            lp = pot.logdensity_fn(z)
            zero = jnp.zeros((), jnp.result_type(float))
            return ExchangeMCMCState(
                jnp.asarray(0), z, potential_from_logdensity(lp), zero, zero, zero,
                jnp.asarray(False), jnp.asarray(self._scale, zero.dtype),
                jnp.asarray(num_warmup), key_state,
            )

        if keys.ndim == 0:
            return one(keys, init_params)
        return jax.vmap(one)(keys, init_params)

    def sample(self, state: ExchangeMCMCState, model_args: tuple,
               model_kwargs: dict) -> ExchangeMCMCState:
        """One exchange transition, and during warm-up one scale update (every chain's
        own, under ``vmap`` for ``chain_method="vectorized"``)."""
        if jnp.ndim(state.i) > 0:
            return jax.vmap(self.sample, in_axes=(0, None, None))(state, model_args, model_kwargs)
        pot = self._potential(model_args, model_kwargs)
        kernel = self._kernel(state.scale, model_args, model_kwargs)
        key_step, key_next = jax.random.split(state.rng_key)
        lp = pot.logdensity_fn(state.z)  # recomputed: one model evaluation, no sign games
        new, info = kernel.step(key_step, ExchangeState(state.z, lp), pot.logdensity_fn)
        i = state.i + 1
        warm = i <= state.num_warmup
        # the warm-up of ebm_ppl.adaptation (Robbins–Monro on the log scale), its state
        # rebuilt from this one's fields
        warmup_state = RobbinsMonroState(jnp.log(state.scale), state.i, state.num_warmup)
        if isinstance(self._warmup, adaptation.NoWarmup):
            scale = state.scale
        else:
            tuned, _ = self._warmup.update(kernel, warmup_state, new.position,
                                           info.acceptance_rate)
            scale = tuned.parameters["proposal"].scale.astype(state.scale.dtype)
        # running mean of the acceptance, restarted after warm-up (n = 1 at restart)
        n = jnp.where(warm, i, i - state.num_warmup).astype(scale.dtype)
        mean = state.mean_accept_prob + (info.acceptance_rate - state.mean_accept_prob) / n
        return ExchangeMCMCState(
            i, new.position, potential_from_logdensity(new.logdensity), info.acceptance_rate,
            mean, jnp.nan_to_num(info.inner_acceptance_rate), info.is_divergent, scale,
            state.num_warmup, key_next,
        )


def _typed_keys(rng_key: Any) -> PRNGKey:
    """One typed key, or a batch of them (``chain_method="vectorized"``), from NumPyro's
    raw ``uint32`` keys or typed keys."""
    rng_key = jnp.asarray(rng_key) if not isinstance(rng_key, jax.Array) else rng_key
    if jnp.issubdtype(rng_key.dtype, jax.dtypes.prng_key):
        return rng_key
    return jax.random.wrap_key_data(rng_key)
