"""Building blocks of :class:`ebm_ppl.Potential`: parameter partition, shape specs, and a
NumPyro model's potential and constrain maps as hashable functions of ``(data, z)``.

:meth:`ebm_ppl.Potential.from_model` stores these as the static part of a potential and
the model's array arguments (the data) as its traced leaves. Two calls with the same
model function and data of the same shapes therefore build equal static parts, and
every jitted consumer (:func:`ebm_ppl.sample`...) reuses its compiled code: the model is
compiled once, whatever the data values.

Array arguments (``jax.Array``, ``numpy.ndarray``) are traced; every other argument
(Python numbers, strings, ``None``, functions...) is static and part of the cache key,
because models routinely use them for shapes and control flow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import init_to_uniform
from numpyro.infer.util import constrain_fn, initialize_model, potential_energy

from ebm_ppl._types import Array, ArrayTree, PRNGKey

__all__ = [
    "as_spec", "as_struct", "check_temperature", "combine", "describe", "partition",
    "ModelFunction", "ClosedModelFunction", "split_data", "join_data", "UniformInit",
    "model_fields", "model_data", "FamilyPosteriorEnergy", "check_structure",
]

#: Radius of NumPyro's ``init_to_uniform`` in the unconstrained space.
INIT_RADIUS = 2.0


class _Static:
    """A static (non-array) model argument, compared by value when hashable, else by identity."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def _key(self) -> Any:
        try:
            hash(self.value)
        except TypeError:
            return ("id", id(self.value))
        return ("value", type(self.value), self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Static) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def _is_data(leaf: Any) -> bool:
    return isinstance(leaf, (jax.Array, np.ndarray))


def split_data(model_args: tuple, model_kwargs: dict) -> tuple[list[Array], Any]:
    """Split ``(model_args, model_kwargs)`` into traced array leaves and a hashable rest."""
    leaves, treedef = jax.tree.flatten((tuple(model_args), dict(model_kwargs)))
    arrays = [leaf for leaf in leaves if _is_data(leaf)]
    static = tuple(None if _is_data(leaf) else _Static(leaf) for leaf in leaves)
    return arrays, (treedef, static)


def join_data(arrays: list[Array], structure: Any) -> tuple[tuple, dict]:
    """Inverse of :func:`split_data`."""
    treedef, static = structure
    it = iter(arrays)
    leaves = [next(it) if s is None else s.value for s in static]
    return jax.tree.unflatten(treedef, leaves)


@dataclasses.dataclass(frozen=True)
class ModelFunction:
    """``fn(data, z)``: the model's potential (``what="potential"``, NumPyro sign) or its
    constrained sites and deterministic values (``what="constrain"``) at the unconstrained
    position ``z``.

    Equal (and equally hashed) for the same model, argument structure and static
    arguments, so jit caches keyed on it are shared between potentials.
    """

    model: Callable
    what: str
    structure: Any

    def arguments(self, data: list[Array]) -> tuple[tuple, dict]:
        """The model's ``(args, kwargs)`` rebuilt from the traced ``data``."""
        return join_data(data, self.structure)

    def __call__(self, data: list[Array], z: ArrayTree) -> Any:
        args, kwargs = join_data(data, self.structure)
        if self.what == "potential":
            return potential_energy(self.model, args, kwargs, z)
        return constrain_fn(self.model, args, kwargs, z, return_deterministic=True)


@dataclasses.dataclass(frozen=True)
class ClosedModelFunction:
    """Fallback of :class:`ModelFunction` for models that cannot take traced data (NumPy
    calls on the data, ``param`` sites, enumerated discrete sites): NumPyro's own closure
    over the data, ignoring the ``data`` argument. Hashed by identity, so a new potential
    built this way compiles anew."""

    fn: Callable = dataclasses.field(hash=False, compare=False)
    model: Callable = dataclasses.field(hash=False, compare=False)
    model_args: tuple = dataclasses.field(hash=False, compare=False)
    model_kwargs: dict = dataclasses.field(hash=False, compare=False)
    token: object = dataclasses.field(default_factory=object)

    def __call__(self, data: list[Array], z: ArrayTree) -> Any:
        return self.fn(z)

    def arguments(self, data: Any) -> tuple[tuple, dict]:
        """The model's ``(args, kwargs)``."""
        return self.model_args, self.model_kwargs


@dataclasses.dataclass(frozen=True)
class UniformInit:
    """``init(rng_key, num_chains)``: positions uniform on (-2, 2) per unconstrained
    coordinate, like NumPyro's ``init_to_uniform`` (hashable by the position's spec)."""

    spec: Any

    def __call__(self, rng_key: PRNGKey, num_chains: int) -> ArrayTree:
        return _uniform_init(self.spec, rng_key, num_chains)


def _uniform_init_impl(spec: Any, rng_key: PRNGKey, num_chains: int) -> ArrayTree:
    treedef, leaves = spec
    keys = jax.random.split(rng_key, len(leaves))
    draws = [
        jax.random.uniform(k, (num_chains, *s.shape), s.dtype, -INIT_RADIUS, INIT_RADIUS)
        for k, s in zip(keys, leaves)
    ]
    return jax.tree.unflatten(treedef, draws)


_uniform_init = jax.jit(_uniform_init_impl, static_argnums=(0, 2))


def model_fields(
    model: Callable, model_args: tuple, model_kwargs: dict, rng_key: PRNGKey
) -> dict[str, Any]:
    """The fields of a model's :class:`~ebm_ppl.Potential` (``fn``, ``params``,
    ``postprocess_fn``, ``init_fn``, ``example_spec``), without the normaliser check.

    NumPyro's :func:`~numpyro.infer.util.initialize_model` finds the latent sites and a
    valid start; its gradient is not taken, so this also serves models whose energy
    parameters are latent (the exchange kernels' route).
    """
    info = initialize_model(
        rng_key, model, model_args=model_args, model_kwargs=model_kwargs,
        init_strategy=init_to_uniform, validate_grad=False,
    )
    z0 = info.param_info.z
    if not z0:
        raise ValueError("model has no latent sample sites to sample (all sites observed)")
    leaves, treedef = jax.tree.flatten(z0)
    spec = (treedef, tuple(jax.ShapeDtypeStruct(np.shape(v), v.dtype) for v in leaves))
    data, structure = split_data(model_args, model_kwargs)
    potential = ModelFunction(model, "potential", structure)
    constrain = ModelFunction(model, "constrain", structure)
    if not _takes_traced_data(info.model_trace, potential, constrain, data, z0):
        data = None
        closure = dict(model=model, model_args=model_args, model_kwargs=model_kwargs)
        potential = ClosedModelFunction(info.potential_fn, **closure)
        constrain = ClosedModelFunction(info.postprocess_fn, **closure)
    return dict(fn=potential, params=data, postprocess_fn=constrain,
                init_fn=UniformInit(spec), example_spec=spec)


def _takes_traced_data(
    model_trace: dict, potential: ModelFunction, constrain: ModelFunction,
    data: list[Array], z0: ArrayTree,
) -> bool:
    """Whether the model can be traced with its data as traced values (no compute)."""
    for site in model_trace.values():
        if site["type"] in ("param", "mutable"):
            return False
        if site["type"] == "sample" and not site["is_observed"] \
                and site["fn"].support.is_discrete:
            return False
    try:
        jax.eval_shape(potential, data, z0)
        jax.eval_shape(constrain, data, z0)
    except Exception:  # noqa: BLE001 - any failure means: keep NumPyro's closure
        return False
    return True


# ---------------------------------------------------------------------- parameters
def describe(tree: Any) -> str:
    return str(jax.tree.map(lambda leaf: f"{leaf.dtype}{list(leaf.shape)}", tree))


def check_temperature(temperature: Any) -> None:
    if isinstance(temperature, jax.core.Tracer):
        return
    t = np.asarray(temperature)
    if t.shape != () or not np.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be a finite scalar > 0, got {temperature!r}")


def as_struct(tree: Any) -> Any:
    if tree is None:
        return None
    return jax.tree.map(
        lambda leaf: leaf
        if isinstance(leaf, jax.ShapeDtypeStruct)
        else jax.ShapeDtypeStruct(np.shape(leaf), jnp.result_type(leaf)),
        tree,
    )


def as_spec(tree: Any) -> Any:
    if tree is None:
        return None
    leaves, treedef = jax.tree.flatten(as_struct(tree))
    return treedef, tuple(leaves)


def _is_array_leaf(leaf: Any) -> bool:
    return isinstance(leaf, (jax.Array, np.ndarray, np.generic, float, int, complex)) \
        and not isinstance(leaf, bool)


def partition(params: Any) -> tuple[Any, Any]:
    """Split a parameter pytree into its array leaves and hashable static rest."""
    if params is None:
        return None, None
    leaves, treedef = jax.tree.flatten(params)
    if all(_is_array_leaf(leaf) for leaf in leaves):
        return params, None
    arrays = [leaf if _is_array_leaf(leaf) else None for leaf in leaves]
    static = tuple((i, leaf) for i, leaf in enumerate(leaves) if not _is_array_leaf(leaf))
    return arrays, (treedef, static)


def combine(arrays: Any, static: Any) -> Any:
    if static is None:
        return arrays
    treedef, rest = static
    leaves = list(arrays)
    for i, leaf in rest:
        leaves[i] = leaf
    return jax.tree.unflatten(treedef, leaves)


def model_data(fn: Any, kind: str, model_args: tuple, model_kwargs: dict) -> Any:
    """The traced data of a model potential's new arguments (``Potential.with_model_args``),
    after checking the potential is a model's that takes traced data and the arguments
    have its structure; a one-sentence ``ValueError`` otherwise."""
    if kind != "model":
        raise ValueError(
            f"with_model_args needs a potential built with Potential.from_model, got one "
            f"built from a {kind} (use with_params for an energy's parameters)"
        )
    if not isinstance(fn, ModelFunction):
        raise ValueError(
            "this model cannot take traced data (it calls NumPy on its data, or has "
            "param or enumerated discrete sites), so its potential closes over the data "
            "it was built with; build a new Potential.from_model(model, *new_args)"
        )
    data, structure = split_data(tuple(model_args), dict(model_kwargs))
    if structure != fn.structure:
        raise ValueError(
            "with_model_args needs arguments of the same structure, with the same "
            "non-array arguments, as the potential was built with; build a new "
            "Potential.from_model(model, *new_args) for others"
        )
    return data


@dataclasses.dataclass(frozen=True)
class FamilyPosteriorEnergy:
    """``E(data, theta) = sum_i energy_fn(theta, x_i) - log_prior_fn(theta)``."""

    energy_fn: Callable
    log_prior_fn: Callable

    def __call__(self, data: ArrayTree, theta: Any) -> Array:
        energies = jax.vmap(lambda x: self.energy_fn(theta, x))(data)
        return jnp.sum(energies) - self.log_prior_fn(theta)


def check_structure(example: Any, struct: Any, name: str) -> None:
    """``ValueError`` unless ``struct`` has the pytree structure and leaf shapes of
    ``example`` (both pytrees of ``jax.ShapeDtypeStruct``)."""
    same = jax.tree.structure(example) == jax.tree.structure(struct) and all(
        a.shape == b.shape for a, b in zip(jax.tree.leaves(example), jax.tree.leaves(struct)))
    if not same:
        raise ValueError(f"{name} must have the structure and shapes {describe(example)}, "
                         f"got {describe(struct)}")
