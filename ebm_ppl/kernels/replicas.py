"""The ladder and the swap moves of parallel tempering (:mod:`ebm_ppl.kernels.tempering`).

:func:`tempered_ladder` builds the geometric ladder of inverse temperatures;
:func:`swap_replicas` proposes swaps between neighbouring replicas (deterministic or
stochastic even/odd pairs) with acceptance
:math:`\\min(1, \\exp((\\beta_i - \\beta_{i+1})(\\ell(x_{i+1}) - \\ell(x_i))))`, :math:`\\ell`
the untempered log density, and rescales the swapped states' cached log density and
gradient to their new temperature; :func:`track_round_trips` counts the round trips of
the replica labels between the two ends of the ladder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ebm_ppl._types import Array, ArrayLike, LogDensityFn, PRNGKey
from ebm_ppl._validation import check_int
from ebm_ppl.adaptation.tempering import check_ladder as check_betas

__all__ = ["check_betas", "check_max_temperature", "is_concrete", "float_dtype",
           "per_replica", "retemper", "set_replica_parameters", "swap_replicas", "tempered", "tempered_ladder",
           "track_round_trips", "untempered_logdensity"]


def float_dtype() -> Any:
    return jnp.result_type(float)


def is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_max_temperature(max_temperature: Any) -> float:
    if isinstance(max_temperature, (bool, str, bytes)):
        raise ValueError(f"max_temperature must be a finite number > 1, got {max_temperature!r}")
    try:
        value = float(max_temperature)
    except (TypeError, ValueError):
        raise ValueError(
            f"max_temperature must be a finite number > 1, got {max_temperature!r}"
        ) from None
    if not np.isfinite(value) or value <= 1:
        raise ValueError(f"max_temperature must be a finite number > 1, got {max_temperature!r}")
    return value


def tempered_ladder(num_temperatures: int, max_temperature: float) -> Array:
    r"""The geometric ladder of inverse temperatures from 1 to ``1 / max_temperature``.

    .. math:: \beta_k = T_{\max}^{-k / (K - 1)}, \qquad k = 0, \dots, K - 1.

    Geometric spacing keeps swaps between neighbours equally easy when the target is
    close to a Gaussian in :math:`d` dimensions (the swap acceptance then depends on
    :math:`\beta_{k+1} / \beta_k` only, Kone & Kofke 2005).

    Parameters
    ----------
    num_temperatures
        :math:`K \geq 2`.
    max_temperature
        :math:`T_{\max} > 1`, the hottest temperature.

    Returns
    -------
    jax.Array
        ``(K,)`` strictly decreasing inverse temperatures, first 1.

    Raises
    ------
    ValueError
        If ``num_temperatures`` is not an integer >= 2 or ``max_temperature`` not a
        finite number > 1.

    Examples
    --------
    >>> [round(b, 4) for b in tempered_ladder(3, 100.0).tolist()]
    [1.0, 0.1, 0.01]
    """
    num_temperatures = check_int("num_temperatures", num_temperatures, 2)
    max_temperature = check_max_temperature(max_temperature)
    exponents = np.arange(num_temperatures) / (num_temperatures - 1)
    return jnp.asarray(max_temperature ** -exponents, dtype=float_dtype())


def tempered(logdensity_fn: LogDensityFn, beta: Array) -> LogDensityFn:
    """:math:`x \\mapsto \\beta \\log p(x)`."""
    return lambda x: beta * logdensity_fn(x)


def per_replica(values: Array, leaf: Array) -> Array:
    """``values`` (K,) shaped to broadcast against a ``(K, ...)`` leaf."""
    return values.reshape(values.shape + (1,) * (jnp.ndim(leaf) - 1))


def retemper(
    replicas: Any, ratio: Array, betas: Array, init_fn: Callable | None,
    logdensity_fn: LogDensityFn,
) -> Any:
    """Replica states whose cached values refer to ``betas / ratio`` made consistent with
    ``betas``: the fields ``logdensity`` and ``logdensity_grad`` multiplied by ``ratio``
    (they are linear in beta), or, for a state without a ``logdensity`` field, the
    replicas with ``ratio != 1`` initialised again by the base kernel's ``init``."""
    fields = getattr(replicas, "_fields", ())
    if "logdensity" in fields:
        updates = {"logdensity": replicas.logdensity * ratio}
        if "logdensity_grad" in fields:
            updates["logdensity_grad"] = jax.tree.map(
                lambda g: g * per_replica(ratio, g).astype(jnp.result_type(g)),
                replicas.logdensity_grad,
            )
        return replicas._replace(**updates)
    if init_fn is None:
        raise ValueError("the base kernel's state has no 'logdensity' field to rescale; "
                         "pass base_init_fn to re-initialise swapped replicas")
    fresh = jax.vmap(lambda x, beta: init_fn(x, tempered(logdensity_fn, beta)))(
        replicas.position, betas
    )
    changed = ratio != 1
    return jax.tree.map(lambda new, old: jnp.where(per_replica(changed, old), new, old),
                        fresh, replicas)


def untempered_logdensity(replicas: Any, betas: Array, logdensity_fn: LogDensityFn) -> Array:
    """:math:`\\log p(x_k)` of every replica: the cached tempered value over beta, or a
    fresh evaluation for a state that caches none."""
    if "logdensity" in getattr(replicas, "_fields", ()):
        return replicas.logdensity / betas
    return jax.vmap(logdensity_fn)(replicas.position)


def track_round_trips(
    permutation: Array, labels: Array, directions: Array, round_trips: Array
) -> tuple[Array, Array, Array]:
    """Move the replica labels and directions by a swap ``permutation`` (slot ``k`` now
    holds what slot ``permutation[k]`` held) and count the round trips it completes.

    A replica at the cold slot 0 gets direction +1, completing a round trip if it came
    from the hottest slot (direction -1); a replica at the hottest slot ``K - 1`` with
    direction +1 (it has been cold) turns to -1.

    Returns
    -------
    (labels, directions, round_trips)
    """
    labels = labels[permutation]
    directions = directions[permutation]
    round_trips = round_trips + (directions[0] == -1).astype(round_trips.dtype)
    directions = directions.at[0].set(1)
    directions = directions.at[-1].set(jnp.where(directions[-1] == 1, -1, directions[-1]))
    return labels, directions, round_trips


def swap_replicas(
    rng_key: PRNGKey,
    state: Any,
    logdensity_fn: LogDensityFn,
    parity: ArrayLike,
    base_init_fn: Callable | None = None,
) -> tuple[Any, Array]:
    r"""Swap moves between the neighbouring pairs ``(i, i + 1)`` with ``i % 2 == parity``.

    Pair ``(i, i + 1)`` swaps its states with probability
    :math:`\min\{1, \exp[(\beta_i - \beta_{i+1})(\log p(x_{i+1}) - \log p(x_i))]\}`;
    the proposed pairs are disjoint, so their swaps are independent. Swapped states
    get their cached log density and gradient rescaled to their new :math:`\beta`
    (re-initialised with ``base_init_fn`` for states without a ``logdensity`` field).
    A non-finite log ratio is rejected. The step counter is not changed.

    Returns
    -------
    (state, swap_acceptance)
        ``swap_acceptance`` is ``(K - 1,)``, NaN for pairs not proposed.
    """
    betas = state.betas
    num = betas.shape[0]
    ell = untempered_logdensity(state.replicas, betas, logdensity_fn)
    proposed = (jnp.arange(num - 1) % 2) == parity
    log_ratio = (betas[:-1] - betas[1:]) * (ell[1:] - ell[:-1])
    log_ratio = jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)
    uniform = jax.random.uniform(rng_key, (num - 1,), dtype=log_ratio.dtype)
    accept = proposed & (jnp.log(uniform) < log_ratio)
    swap_acceptance = jnp.where(proposed, jnp.exp(jnp.minimum(log_ratio, 0.0)), jnp.nan)
    no = jnp.zeros(1, bool)
    takes_from_above = jnp.concatenate([accept, no])  # slot k gets slot k + 1's state
    takes_from_below = jnp.concatenate([no, accept])  # slot k gets slot k - 1's state
    permutation = (jnp.arange(num) + takes_from_above.astype(jnp.int32)
                   - takes_from_below.astype(jnp.int32))
    replicas = jax.tree.map(lambda leaf: leaf[permutation], state.replicas)
    replicas = retemper(replicas, betas / betas[permutation], betas, base_init_fn,
                         logdensity_fn)
    ell = ell[permutation]
    labels, directions, round_trips = track_round_trips(
        permutation, state.labels, state.directions, state.round_trips
    )
    new_state = state._replace(
        position=jax.tree.map(lambda x: x[0], replicas.position),
        logdensity=ell[0],
        replicas=replicas,
        labels=labels,
        directions=directions,
        round_trips=round_trips,
    )
    return new_state, swap_acceptance


def set_replica_parameters(base: Any, values: Mapping[str, ArrayLike], num: int) -> Any:
    """The (replica-batched) base kernel with some parameters set per replica
    (``parallel_tempering(..., replica_parameters=)``), each value checked."""
    if not isinstance(values, Mapping):
        raise TypeError(f"replica_parameters must be a dict of per-replica values, got "
                        f"{type(values).__name__}")
    allowed = sorted(set(base.parameters) | ({"scale"} if base.scale is not None else set()))
    for name, value in values.items():
        if name not in allowed:
            raise ValueError(f"replica_parameters has unknown parameter {name!r} for kernel "
                             f"{base.name!r}; allowed: {allowed}")
        shape = np.shape(value)
        if not shape or shape[0] != num:
            raise ValueError(f"replica_parameters[{name!r}] must have a leading axis of "
                             f"length num_temperatures={num}, got shape {shape}")
        if name in ("step_size", "scale"):
            arr = np.asarray(value, dtype=float)
            if not np.all(np.isfinite(arr) & (arr > 0)):
                raise ValueError(f"replica_parameters[{name!r}] must be finite and > 0, "
                                 f"got {arr.tolist()}")
        if name == "scale" and "scale" not in base.parameters:
            base = base.replace(proposal=base.parameters["proposal"].with_scale(value))
        else:
            base = base.replace(**{name: value})
    return base
