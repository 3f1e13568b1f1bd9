"""Metropolis–Hastings with any proposal, Hastings term included (own code)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ebm_ppl import adaptation
from ebm_ppl._tree import pytree_dataclass, tree_normal_like
from ebm_ppl._types import Array, ArrayTree, LogDensityFn, PRNGKey
from ebm_ppl._validation import check_positive, check_probability
from ebm_ppl.kernels.base import Kernel

__all__ = [
    "MHState",
    "MHInfo",
    "Proposal",
    "mh",
    "random_walk",
    "independent",
    "mh_init",
    "mh_kernel",
]


#: Optimal acceptance rate of random-walk Metropolis in high dimension (Roberts, Gelman &
#: Gilks 1997): the default target of the scale adaptation.
_RANDOM_WALK_TARGET = 0.234


class MHState(NamedTuple):
    """Position with its cached log density."""

    position: ArrayTree
    logdensity: Array


class MHInfo(NamedTuple):
    """``acceptance_rate`` is ``min(1, ratio)`` (0 for a non-finite proposal),
    ``is_divergent`` flags a proposal whose log density or Hastings ratio was NaN/inf."""

    acceptance_rate: Array
    is_accepted: Array
    is_divergent: Array


@pytree_dataclass
class Proposal:
    """A proposal distribution ``q(x' | x)``.

    Attributes
    ----------
    sample_fn
        ``sample_fn(rng_key, position, params) -> new_position``.
    log_prob_fn
        ``log_prob_fn(new_position, position, params) -> log q(new | position)``;
        ignored when ``symmetric``.
    params
        Numeric parameters (a pytree; may hold a NumPyro distribution).
    symmetric
        ``q(x'|x) = q(x|x')``: the Hastings term cancels and is not computed.
    """

    sample_fn: Callable = dataclasses.field(metadata=dict(static=True))
    log_prob_fn: Callable | None = dataclasses.field(default=None, metadata=dict(static=True))
    params: Any = None
    symmetric: bool = dataclasses.field(default=False, metadata=dict(static=True))

    def __post_init__(self) -> None:
        if not callable(self.sample_fn):
            raise TypeError("Proposal.sample_fn must be callable")
        if not self.symmetric and not callable(self.log_prob_fn):
            raise ValueError(
                "an asymmetric Proposal needs log_prob_fn(new, old, params) for the "
                "Hastings term; pass symmetric=True only if q(x'|x) = q(x|x')"
            )

    @property
    def scale(self) -> Array | None:
        """``params["scale"]`` when the proposal has a scale (random walk), else None."""
        if isinstance(self.params, dict) and "scale" in self.params:
            return self.params["scale"]
        return None

    def with_scale(self, scale: Array) -> Proposal:
        """The same proposal with its scale replaced (dtype kept, so the compiled step
        is reused)."""
        if self.scale is None:
            raise ValueError("this proposal has no 'scale' parameter to replace")
        scale = jnp.asarray(scale, dtype=jnp.result_type(self.scale))
        return dataclasses.replace(self, params={**self.params, "scale": scale})


def mh_init(position: ArrayTree, logdensity_fn: LogDensityFn) -> MHState:
    """State at ``position``."""
    return MHState(position, logdensity_fn(position))


def mh_kernel(
    rng_key: PRNGKey, state: MHState, logdensity_fn: LogDensityFn, proposal: Proposal
) -> tuple[MHState, MHInfo]:
    """One Metropolis–Hastings step; see :func:`mh`."""
    key_propose, key_accept = jax.random.split(rng_key)
    new_position = proposal.sample_fn(key_propose, state.position, proposal.params)
    new_logdensity = logdensity_fn(new_position)
    log_ratio = new_logdensity - state.logdensity
    if not proposal.symmetric:
        log_ratio = (
            log_ratio
            + proposal.log_prob_fn(state.position, new_position, proposal.params)
            - proposal.log_prob_fn(new_position, state.position, proposal.params)
        )
    finite = jnp.isfinite(new_logdensity) & ~jnp.isnan(log_ratio)
    log_ratio = jnp.where(finite, log_ratio, -jnp.inf)
    acceptance_rate = jnp.exp(jnp.minimum(log_ratio, 0.0))
    accept = jnp.log(jax.random.uniform(key_accept, dtype=jnp.result_type(log_ratio))) < log_ratio
    new_state = jax.tree.map(
        lambda new, old: jnp.where(accept, new, old),
        MHState(new_position, new_logdensity),
        state,
    )
    return new_state, MHInfo(acceptance_rate, accept, ~finite)


def mh(
    proposal: Proposal | Kernel,
    *,
    adapt_scale: bool | None = None,
    target_acceptance_rate: float | None = None,
) -> Kernel:
    r"""Metropolis–Hastings with a general proposal ``q``.

    .. math::

        \alpha(x \to x') = \min\Big(1, \frac{p(x')\, q(x \mid x')}{p(x)\, q(x' \mid x)}\Big)

    The Hastings factor :math:`q(x|x')/q(x'|x)` is computed from the proposal's
    ``log_prob_fn`` unless the proposal is symmetric. A proposal whose log density is
    NaN or infinite is rejected and counted in ``info.is_divergent``.

    Which functions return what: :class:`Proposal` builds a proposal; :func:`mh` turns
    a proposal into a kernel; :func:`random_walk` and :func:`independent` return ready
    MH *kernels* (``mh`` of an MH kernel returns it, with the options given here applied).

    Parameters
    ----------
    proposal
        A :class:`Proposal`, or an MH kernel (from :func:`random_walk`,
        :func:`independent` or :func:`mh`).
    adapt_scale
        Whether :func:`ebm_ppl.sample` adapts the proposal's scale
        (:attr:`Proposal.scale`) during warm-up (Robbins–Monro, to
        ``target_acceptance_rate``). Defaults to True when the proposal has a scale.
    target_acceptance_rate
        0.234 by default: the optimal rate of random-walk Metropolis in high dimension
        (Roberts, Gelman & Gilks 1997).

    References
    ----------
    Hastings (1970), *Monte Carlo sampling methods using Markov chains and their
    applications*, Biometrika 57(1).
    """
    if isinstance(proposal, Kernel) and proposal.name == "mh":
        if adapt_scale is None and target_acceptance_rate is None:
            return proposal
        if target_acceptance_rate is None:
            target_acceptance_rate = proposal.target_acceptance_rate
        proposal = proposal.parameters["proposal"]
    if not isinstance(proposal, Proposal):
        raise TypeError(
            "proposal must be an ebm_ppl.kernels.Proposal (Proposal(sample_fn, log_prob_fn, "
            "params)) or an MH kernel; random_walk(scale) and independent(distribution) "
            f"already return MH kernels, got {type(proposal).__name__}"
        )
    if target_acceptance_rate is None:
        target_acceptance_rate = _RANDOM_WALK_TARGET
    check_probability("target_acceptance_rate", target_acceptance_rate)
    has_scale = proposal.scale is not None
    if adapt_scale is None:
        adapt_scale = has_scale
    if adapt_scale and not has_scale:
        raise ValueError("adapt_scale=True needs a proposal with a 'scale' parameter")
    return Kernel(
        name="mh",
        init_fn=mh_init,
        kernel_fn=mh_kernel,
        parameters={"proposal": proposal},
        default_warmup=(adaptation.robbins_monro(target_acceptance_rate) if adapt_scale
                        else adaptation.NoWarmup(target_acceptance_rate)),
        gradient_based=False,
    )


def _random_walk_sample(rng_key: PRNGKey, position: ArrayTree, params: dict) -> ArrayTree:
    noise = tree_normal_like(rng_key, position)
    return jax.tree.map(lambda x, z: x + params["scale"] * z, position, noise)


def random_walk(scale: float) -> Kernel:
    r"""Random-walk Metropolis: :math:`x' = x + s\,\xi`, :math:`\xi \sim \mathcal N(0, I)`.

    The proposal is symmetric, so the Hastings term cancels. :func:`ebm_ppl.sample`
    adapts ``s`` during warm-up towards an acceptance rate of 0.234.

    Parameters
    ----------
    scale
        :math:`s > 0`, the proposal standard deviation.
    """
    check_positive("scale", scale)
    proposal = Proposal(
        sample_fn=_random_walk_sample,
        params={"scale": jnp.asarray(scale, dtype=jnp.result_type(float))},
        symmetric=True,
    )
    return mh(proposal)


def _independent_sample(rng_key: PRNGKey, position: ArrayTree, distribution: Any) -> ArrayTree:
    draw = distribution.sample(rng_key)
    if jnp.shape(draw) != jnp.shape(position):
        raise ValueError(
            f"independent(distribution) draws of shape {jnp.shape(draw)} do not match the "
            f"position's shape {jnp.shape(position)}; give the distribution that event shape "
            "(e.g. dist.Normal(jnp.zeros(shape), s).to_event(len(shape)))"
        )
    return draw.astype(jnp.result_type(position))


def _independent_log_prob(new: ArrayTree, old: ArrayTree, distribution: Any) -> Array:
    return jnp.sum(distribution.log_prob(new))


def independent(distribution: Any) -> Kernel:
    r"""Independence Metropolis–Hastings: :math:`x' \sim q` whatever :math:`x`.

    .. math:: \alpha = \min\Big(1, \frac{p(x')\,q(x)}{p(x)\,q(x')}\Big)

    Parameters
    ----------
    distribution
        A NumPyro distribution whose samples have the position's shape (use
        ``.to_event()`` for a factorised one).

    Examples
    --------
    >>> import numpyro.distributions as dist
    >>> kernel = independent(dist.Normal(jnp.zeros(2), 3.0).to_event(1))
    """
    if not (hasattr(distribution, "sample") and hasattr(distribution, "log_prob")):
        raise TypeError(
            f"distribution must be a NumPyro distribution, got {type(distribution).__name__}"
        )
    proposal = Proposal(
        sample_fn=_independent_sample,
        log_prob_fn=_independent_log_prob,
        params=distribution,
        symmetric=False,
    )
    return mh(proposal)
