r"""Any BlackJAX sampling algorithm as an ebm_ppl :class:`~ebm_ppl.kernels.Kernel`.

:func:`from_blackjax` binds the hyper-parameters of a BlackJAX top-level algorithm
(``blackjax.ghmc``, ``blackjax.rmh``, ``blackjax.mclmc``...) and returns a kernel that
:func:`ebm_ppl.sample`, contrastive divergence and the NumPyro adapters run like any
other: the log density is passed on every call, numeric hyper-parameters are traced
leaves (a new step size compiles nothing), and a transition to a non-finite position or
log density is undone and reported in ``info.is_divergent``.

Warm-up by algorithm (the ``adaptation`` of the returned kernel; override it with
``from_blackjax(..., adaptation=...)``):

=============================================  ============  ==========================
BlackJAX algorithm                             warm-up       target acceptance
=============================================  ============  ==========================
``hmc``, ``nuts``, ``mhmc``, ``dhmc``,         ``window``    0.8
``dmhmc``
``barker`` (``barker_proposal``)               ``window``    0.574
``mala``                                       ``step_size`` 0.574
``ghmc``, ``rmhmc``                            ``step_size`` 0.8
``adjusted_mclmc``, ``adjusted_mclmc_dynamic`` ``step_size`` 0.9
``mclmc``                                      ``mclmc``     (none: no accept step)
anything else (``rmh``, ``irmh``,              ``none``      --
``elliptical_slice``, slice samplers...)
=============================================  ============  ==========================

``window`` is Stan's window adaptation of the step size and the inverse mass matrix,
``step_size`` dual averaging of the step size (:mod:`ebm_ppl.adaptation`): both steer
the acceptance statistic to its target, which is only meaningful for algorithms with a
Metropolis–Hastings step. MCLMC has none (BlackJAX reports no acceptance rate; dual
averaging drove its step size to :math:`10^{25}`): it is tuned by BlackJAX's own
``mclmc_find_L_and_step_size`` (energy-variance step size, ``L`` from the posterior
scale), see :func:`ebm_ppl.adaptation.mclmc_warmup`. Algorithms whose parameters are hidden in a closure
(the proposal of ``rmh``) are run as given.
"""

from __future__ import annotations

import inspect
from typing import Any

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.base import SamplingAlgorithm
from jax.flatten_util import ravel_pytree

from ebm_ppl._tree import tree_all_finite
from ebm_ppl._types import Array, ArrayTree, LogDensityFn, PRNGKey
from ebm_ppl._validation import check_positive
from ebm_ppl.adaptation import NoWarmup
from ebm_ppl.adaptation import from_name as warmup_from_name
from ebm_ppl.kernels.base import Kernel, default_inverse_mass_matrix
from ebm_ppl.kernels.blackjax import barker_metric_argument
from ebm_ppl.kernels.info import info_from_fields

__all__ = [
    "from_blackjax", "check_kernel", "resolve_algorithm",
    "WARMUPS", "UNADJUSTED", "GRADIENT_FREE",
]

#: Warm-up scheme and target acceptance rate of each BlackJAX algorithm (by the name it
#: has in the ``blackjax`` namespace); algorithms not listed get ``("none", 0.8)``.
WARMUPS: dict[str, tuple[str, float]] = {
    **{name: ("window", 0.8) for name in (
        "hmc", "nuts", "mhmc", "multinomial_hmc", "dhmc", "dynamic_hmc", "dmhmc")},
    "barker": ("window", 0.574),
    "barker_proposal": ("window", 0.574),
    "mala": ("step_size", 0.574),
    "ghmc": ("step_size", 0.8),
    "rmhmc": ("step_size", 0.8),
    "adjusted_mclmc": ("step_size", 0.9),
    "adjusted_mclmc_dynamic": ("step_size", 0.9),
    "mclmc": ("mclmc", 0.8),
}
#: BlackJAX algorithms without a Metropolis–Hastings correction: their stationary law is
#: biased by the step size (``Kernel.exact`` is False; AIS warns).
UNADJUSTED: frozenset[str] = frozenset({"mclmc", "sgld", "sghmc", "sgnht", "csgld"})
#: BlackJAX algorithms whose steps never evaluate the gradient (``Kernel.gradient_based``).
GRADIENT_FREE: frozenset[str] = frozenset({
    "rmh", "irmh", "additive_step_random_walk", "normal_random_walk", "elliptical_slice",
    "hitandrun_slice", "slice", "orbital_hmc_free"})
#: Parameters that are always numbers (traced, so warm-up can tune them), even when an
#: integer is given.
_FLOAT_PARAMETERS = ("step_size", "L", "alpha", "delta", "L_proposal_factor")


class _Algorithm:
    """A BlackJAX top-level API, hashable by identity (a static part of the kernel)."""

    __slots__ = ("api", "name", "init_takes_key")

    def __init__(self, api: Any, name: str) -> None:
        self.api, self.name = api, name
        self.init_takes_key = len(inspect.signature(api.init).parameters) >= 3

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Algorithm) and other.api is self.api

    def __hash__(self) -> int:
        return id(self.api)

    def __repr__(self) -> str:
        return f"blackjax.{self.name}"


class _Init:
    """``init(position, logdensity_fn)`` of a wrapped algorithm (hashable by algorithm).

    Algorithms whose ``init`` draws auxiliary variables (GHMC's momentum, MCLMC's
    direction) get a key derived from the bits of the position, so that chains started
    at different positions draw different variables and ``init`` stays a pure function
    of the position."""

    __slots__ = ("algorithm",)

    def __init__(self, algorithm: _Algorithm) -> None:
        self.algorithm = algorithm

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Init) and other.algorithm == self.algorithm

    def __hash__(self) -> int:
        return hash(("init", self.algorithm))

    def __call__(self, position: ArrayTree, logdensity_fn: LogDensityFn) -> Any:
        if self.algorithm.init_takes_key:
            return self.algorithm.api.init(position, logdensity_fn, position_key(position))
        return self.algorithm.api.init(position, logdensity_fn)


def position_key(position: ArrayTree) -> PRNGKey:
    """A key that is a pure function of the bits of ``position`` (see :class:`_Init`)."""
    flat, _ = ravel_pytree(position)
    bits = jax.lax.bitcast_convert_type(flat.astype(jnp.float32), jnp.uint32)
    weights = jnp.arange(1, flat.size + 1, dtype=jnp.uint32) * jnp.uint32(2654435761)
    return jax.random.fold_in(jax.random.key(0), jnp.sum(bits * weights))


def _normalised_info(info: Any, ok: Array) -> Any:
    """``acceptance_rate`` in [0, 1] (1 for algorithms without one), ``is_divergent``,
    and ``energy`` / ``num_integration_steps`` / ``tree_depth`` where BlackJAX has them."""
    dtype = jnp.result_type(float)
    rate = getattr(info, "acceptance_rate", None)
    rate = jnp.ones((), dtype) if rate is None else jnp.asarray(rate, dtype)
    ok = ok & jnp.isfinite(rate)
    # MCLMC undoes a step to a non-finite density itself and says so in ``nonans``
    reverted = ~jnp.asarray(getattr(info, "nonans", True), bool)
    values = {
        "acceptance_rate": jnp.where(ok, jnp.clip(rate, 0.0, 1.0), 0.0),
        "is_divergent": jnp.asarray(getattr(info, "is_divergent", False), bool) | ~ok
        | reverted,
    }
    for field, name in (("energy", "energy"), ("num_integration_steps", "num_integration_steps"),
                        ("num_trajectory_expansions", "tree_depth")):
        if hasattr(info, field):
            values[name] = jnp.asarray(getattr(info, field))
    return info_from_fields(values)


def _step(rng_key: PRNGKey, state: Any, logdensity_fn: LogDensityFn, *, algorithm: _Algorithm,
          **parameters: Any) -> tuple[Any, Any]:
    """One transition of ``algorithm(logdensity_fn, **parameters)``; a non-finite new
    position or log density is undone and reported as divergent."""
    if "inverse_mass_matrix" in parameters and parameters["inverse_mass_matrix"] is None:
        # only when kernel_fn is called directly: Kernel.step fills it (with_defaults)
        parameters["inverse_mass_matrix"] = default_inverse_mass_matrix(state.position)
    if algorithm.name in ("barker", "barker_proposal"):  # see barker_metric_argument
        parameters["inverse_mass_matrix"] = barker_metric_argument(
            parameters["inverse_mass_matrix"])
    new_state, info = algorithm.api(logdensity_fn, **parameters).step(rng_key, state)
    ok = tree_all_finite(new_state.position)
    logdensity = getattr(new_state, "logdensity", None)
    if logdensity is not None:
        ok = ok & jnp.isfinite(logdensity)
    new_state = jax.tree.map(lambda new, old: jnp.where(ok, new, old), new_state, state)
    return new_state, _normalised_info(info, ok)


# ---------------------------------------------------------------------- from_blackjax
def resolve_algorithm(algorithm: Any) -> tuple[Any, str]:
    """``(api, name)`` of a BlackJAX algorithm given as an object or a name."""
    if isinstance(algorithm, str):
        api = getattr(blackjax, algorithm, None)
        if algorithm.startswith("_") or not isinstance(api, blackjax.GenerateSamplingAPI):
            raise ValueError(
                "algorithm must name a BlackJAX sampling algorithm (e.g. 'nuts', 'ghmc', "
                f"'mclmc', 'rmh'), got {algorithm!r}"
            )
        return api, algorithm
    if isinstance(algorithm, SamplingAlgorithm):
        raise TypeError(
            "algorithm must be a BlackJAX algorithm such as blackjax.nuts, not a "
            "SamplingAlgorithm already bound to a log density (blackjax.nuts(logdensity_fn, "
            "...)); the log density comes from the potential at each step"
        )
    if not (callable(algorithm) and callable(getattr(algorithm, "init", None))):
        raise TypeError(
            "algorithm must be a BlackJAX top-level sampling algorithm (blackjax.nuts, "
            "blackjax.ghmc, ...: callable as algorithm(logdensity_fn, **parameters) with an "
            f"init(position, logdensity_fn[, rng_key])) or its name, got {algorithm!r}"
        )
    own = getattr(getattr(algorithm, "differentiable", algorithm), "__name__", "custom")
    return algorithm, _blackjax_name(algorithm) or own.lstrip("_")


def _blackjax_name(api: Any) -> str | None:
    for name in dir(blackjax):
        if not name.startswith("_") and getattr(blackjax, name, None) is api:
            return name
    return None


def _signature(api: Any) -> inspect.Signature:
    target = getattr(api, "differentiable", api)
    return inspect.signature(target)


def _check_parameters(api: Any, name: str, parameters: dict[str, Any]) -> None:
    signature = _signature(api)
    names = list(signature.parameters)[1:]  # the first one is the log density
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = sorted(set(parameters) - set(names))
    if unknown and not takes_kwargs:
        raise TypeError(
            f"unexpected parameter(s) {unknown} for blackjax.{name}; it takes {names}"
        )
    missing = sorted(
        p.name for p in list(signature.parameters.values())[1:]
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and p.name not in parameters
    )
    if missing:
        raise TypeError(f"blackjax.{name} needs the parameter(s) {missing}, got none for them")


def _is_array_tree(value: Any) -> bool:
    leaves = jax.tree.leaves(value)
    return bool(leaves) and all(
        isinstance(leaf, (jax.Array, np.ndarray, np.generic, float)) for leaf in leaves
    )


def _split_parameters(parameters: dict[str, Any]) -> tuple[dict[str, Any], tuple]:
    """Numbers and arrays become traced leaves; functions, integers and flags static."""
    dtype = jnp.result_type(float)
    traced, static = {}, []
    for key, value in parameters.items():
        if key in _FLOAT_PARAMETERS and isinstance(value, (int, float)) \
                and not isinstance(value, bool):
            check_positive(key, value) if key in ("step_size", "L") else None
            traced[key] = jnp.asarray(value, dtype)
        elif value is None and key == "inverse_mass_matrix":
            traced[key] = None
        elif _is_array_tree(value):
            traced[key] = jax.tree.map(
                lambda x: jnp.asarray(x, dtype) if isinstance(x, float) else jnp.asarray(x),
                value,
            )
        else:
            try:
                hash(value)
            except TypeError:
                raise TypeError(
                    f"parameter {key} must be a number, an array (pytree) or a hashable "
                    f"object such as a function, got {type(value).__name__}"
                ) from None
            static.append((key, value))
    return traced, tuple(static)


def from_blackjax(
    algorithm: Any,
    /,
    *,
    adaptation: str | None = None,
    target_acceptance_rate: float | None = None,
    **parameters: Any,
) -> Kernel:
    r"""Wrap a BlackJAX sampling algorithm as an ebm_ppl kernel.

    ``kernel.step(rng_key, state, logdensity_fn)`` is
    ``algorithm(logdensity_fn, **parameters).step(rng_key, state)``, so every BlackJAX
    algorithm with that top-level shape works, and its stationary law is the
    algorithm's own (exact for MH-corrected algorithms; MCLMC is biased by
    :math:`O(h^2)`-order energy errors that its tuner keeps small).

    Parameters
    ----------
    algorithm
        A BlackJAX top-level algorithm (``blackjax.ghmc``, ``blackjax.mclmc``...), its
        name (``"ghmc"``), or any callable ``algorithm(logdensity_fn, **parameters)``
        returning an object with ``init(position[, rng_key])`` and
        ``step(rng_key, state)`` that also has ``algorithm.init(position,
        logdensity_fn[, rng_key])``.
    adaptation
        Warm-up scheme of :func:`ebm_ppl.sample`: ``"window"``, ``"step_size"``,
        ``"mclmc"`` or ``"none"``; by default the one in the module table
        (:data:`WARMUPS`).
    target_acceptance_rate
        Target of ``"window"`` / ``"step_size"``; the table's value by default.
    **parameters
        The algorithm's hyper-parameters, by the names BlackJAX uses (all but the log
        density). Numbers and arrays are traced (a new value compiles nothing);
        integers such as ``num_integration_steps``, flags and functions (integrators,
        proposals) are static. An ``inverse_mass_matrix`` left out is the identity.

    Returns
    -------
    Kernel
        Named ``"blackjax.<name>"``; its ``info`` has ``acceptance_rate`` (1 for
        algorithms without an accept step), ``is_divergent`` and, where BlackJAX reports
        them, ``energy``, ``num_integration_steps``, ``tree_depth``.

    Raises
    ------
    TypeError
        If ``algorithm`` is not a BlackJAX algorithm (or is one already bound to a log
        density), or a parameter is unknown, missing or of an unusable type.
    ValueError
        If ``adaptation`` is unknown or does not fit the parameters (``"window"`` needs
        a step size and an inverse mass matrix), or a step size is not positive.

    Examples
    --------
    >>> import blackjax, jax.numpy as jnp
    >>> kernel = from_blackjax(blackjax.ghmc, step_size=0.3, momentum_inverse_scale=jnp.ones(2),
    ...                        alpha=0.3, delta=0.2)
    >>> kernel.adaptation
    'step_size'
    """
    api, name = resolve_algorithm(algorithm)
    scheme, target = WARMUPS.get(name, ("none", 0.8))
    takes = list(_signature(api).parameters)
    if "inverse_mass_matrix" in takes and "inverse_mass_matrix" not in parameters:
        parameters = {**parameters, "inverse_mass_matrix": None}
    _check_parameters(api, name, parameters)
    traced, static = _split_parameters(parameters)
    scheme = scheme if adaptation is None else adaptation
    _check_adaptation(scheme, traced, name)
    target = target if target_acceptance_rate is None else float(target_acceptance_rate)
    if not 0.0 < target < 1.0:
        raise ValueError(f"target_acceptance_rate must be in (0, 1), got {target!r}")
    bound = _Algorithm(api, name)
    return Kernel(
        name=f"blackjax.{name}",
        init_fn=_Init(bound),
        kernel_fn=_step,
        parameters=traced,
        static_parameters=(("algorithm", bound), *static),
        default_warmup=(NoWarmup(target) if scheme == "none"
                        else warmup_from_name(scheme, target)),
        exact=name not in UNADJUSTED,
        gradient_based=name not in GRADIENT_FREE,
    )


def _check_adaptation(scheme: str, traced: dict[str, Any], name: str) -> None:
    allowed = ("window", "step_size", "mclmc", "none")
    if scheme not in allowed:
        raise ValueError(f"adaptation must be one of {allowed}, got {scheme!r}")
    needs = {"window": ("step_size", "inverse_mass_matrix"), "step_size": ("step_size",),
             "mclmc": ("step_size", "L", "inverse_mass_matrix")}.get(scheme, ())
    lacking = [p for p in needs if p not in traced]
    if lacking:
        raise ValueError(
            f"adaptation={scheme!r} tunes {list(needs)}, but blackjax.{name} was given no "
            f"numeric {lacking}; pass adaptation='none' or those parameters"
        )


# ---------------------------------------------------------------------- sample's check
def check_kernel(kernel: Any, name: str = "kernel") -> None:
    """Raise a ``TypeError`` unless ``kernel`` is an ebm_ppl kernel; a BlackJAX algorithm
    gets a message showing the :func:`from_blackjax` call that wraps it."""
    if isinstance(kernel, Kernel):
        return
    if isinstance(kernel, blackjax.GenerateSamplingAPI):
        algo = _blackjax_name(kernel) or "<algorithm>"
        required = [
            p.name for p in list(_signature(kernel).parameters.values())[1:]
            if p.default is p.empty and p.name != "inverse_mass_matrix"
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        args = "".join(f", {p}=..." for p in required)
        raise TypeError(
            f"{name} must be an ebm_ppl kernel, got the BlackJAX algorithm blackjax.{algo}; "
            f"wrap it: ebm_ppl.kernels.from_blackjax(blackjax.{algo}{args})"
        )
    if isinstance(kernel, SamplingAlgorithm):
        raise TypeError(
            f"{name} must be an ebm_ppl kernel, got a BlackJAX SamplingAlgorithm bound to a "
            "log density; pass the algorithm and its parameters instead: "
            "ebm_ppl.kernels.from_blackjax(blackjax.<name>, **parameters)"
        )
    raise TypeError(
        f"{name} must be an ebm_ppl.kernels kernel (e.g. kernels.mala(0.1)), got "
        f"{type(kernel).__name__}"
    )
