"""Potentials: one object that every part of ebm_ppl consumes.

Every sign convention of the library lives here:

* an *energy* ``E(x)`` is an unnormalised negative log density, ``p(x) ∝ exp(-E(x)/T)``;
* a *potential* (NumPyro's ``potential_fn``) is ``-log p(x) = E(x)/T`` up to a constant;
* a *logdensity* (BlackJAX's ``logdensity_fn``) is ``log p(x) = -E(x)/T``;
* the *score* is ``∇ log p(x) = -∇E(x)/T``.

A :class:`Potential` is a JAX pytree: its parameters and temperature are *leaves*
(traced), its functions are static metadata. Passing a potential as an argument of a
jitted function therefore reuses the compiled code when only the parameter values change
(contrastive-divergence training, re-fitted energies).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ebm_ppl._normaliser import check_normalisers
from ebm_ppl._potential_parts import (
    FamilyPosteriorEnergy,
    as_spec,
    as_struct,
    check_structure,
    check_temperature,
    combine,
    describe,
    model_data,
    model_fields,
    partition,
)
from ebm_ppl._tree import pytree_dataclass
from ebm_ppl._types import Array, ArrayLikeTree, ArrayTree, PRNGKey
from ebm_ppl._validation import as_key

__all__ = ["Potential", "logdensity_from_energy", "potential_from_logdensity"]

_KINDS = ("energy", "logdensity", "model")


def logdensity_from_energy(energy: Array, temperature: Any = 1.0) -> Array:
    r"""The one energy-to-log-density sign flip: :math:`\log p = -E / T` (up to a constant).

    Used by :class:`Potential`, :class:`~ebm_ppl.numpyro.EnergyDistribution` and the
    exchange kernels, so the convention lives in this module only.
    """
    return -energy / temperature


def potential_from_logdensity(logdensity: Array) -> Array:
    """The one log-density-to-potential sign flip: NumPyro's ``potential_energy = -log p``."""
    return -logdensity


@pytree_dataclass
class Potential:
    """An unnormalised density in the three sign conventions of the JAX ecosystem.

    Build one with :meth:`from_energy`, :meth:`from_logdensity` or :meth:`from_model`;
    do not call the constructor directly.

    Attributes
    ----------
    fn
        The user's function: an energy, a log density or NumPyro's potential.
    params
        The array leaves of the parameters passed as first argument of an energy
        (``None`` for ``E(x)``); non-array leaves (functions, strings, such as an
        Equinox module's activation) are kept as static metadata in ``params_static``,
        so the whole module can be passed as ``params``. :attr:`energy_params` gives
        them back together. For a model: its array arguments (the data), traced so that
        new data of the same shapes reuses the compiled code.
    temperature
        Temperature ``T`` of ``p ∝ exp(-E/T)`` (1 for log densities and models).
    kind
        ``"energy"``, ``"logdensity"`` or ``"model"``.
    has_params
        Whether ``fn`` takes ``(params, x)``.
    postprocess_fn
        For models: ``postprocess_fn(params, z)`` maps an unconstrained position to the
        constrained sample sites (and deterministic sites); call :meth:`constrain`.
    init_fn
        For models: ``init_fn(rng_key, num_chains) -> positions``, a batch drawn like
        NumPyro's ``init_to_uniform``: uniform on (-2, 2) in the unconstrained space.
    example_spec
        ``(treedef, leaves)`` of the expected position's ``jax.ShapeDtypeStruct`` s,
        when known (hashable, so it can be static); see :attr:`example`.
    """

    fn: Callable = dataclasses.field(metadata=dict(static=True))
    params: Any = None
    temperature: Any = 1.0
    kind: str = dataclasses.field(default="energy", metadata=dict(static=True))
    has_params: bool = dataclasses.field(default=False, metadata=dict(static=True))
    postprocess_fn: Callable | None = dataclasses.field(
        default=None, metadata=dict(static=True)
    )
    init_fn: Callable | None = dataclasses.field(default=None, metadata=dict(static=True))
    example_spec: Any = dataclasses.field(default=None, metadata=dict(static=True))
    params_static: Any = dataclasses.field(default=None, metadata=dict(static=True))

    @property
    def energy_params(self) -> Any:
        """The parameters as given, non-array leaves (an Equinox activation...) included."""
        return combine(self.params, self.params_static)

    @property
    def model(self) -> Callable | None:
        """The NumPyro model of a :meth:`from_model` potential (``None`` for others)."""
        return self.fn.model if self.kind == "model" else None

    @property
    def model_args(self) -> tuple:
        """Positional arguments of the model (``()`` for other potentials)."""
        return self.fn.arguments(self.params)[0] if self.kind == "model" else ()

    @property
    def model_kwargs(self) -> dict:
        """Keyword arguments of the model (``{}`` for other potentials)."""
        return self.fn.arguments(self.params)[1] if self.kind == "model" else {}

    @property
    def example(self) -> Any:
        """``jax.ShapeDtypeStruct`` pytree of the expected position, or ``None``."""
        if self.example_spec is None:
            return None
        treedef, leaves = self.example_spec
        return jax.tree.unflatten(treedef, leaves)

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_energy(
        cls,
        energy_fn: Callable[..., Array],
        params: ArrayLikeTree | None = None,
        temperature: float = 1.0,
        *,
        example: ArrayLikeTree | None = None,
    ) -> Potential:
        r"""Wrap an energy ``E(x)`` or ``E(params, x)``.

        .. math:: \log p(x) = -E_\theta(x) / T + \text{const}

        Parameters
        ----------
        energy_fn
            JAX-traceable ``energy_fn(x) -> scalar``, or ``energy_fn(params, x) -> scalar``
            when ``params`` is given (a Flax ``module.apply``, an Equinox module call...).
        params
            Parameters pytree; ``None`` means ``energy_fn`` takes ``x`` only.
        temperature
            ``T > 0``. ``T > 1`` flattens the density, ``T < 1`` sharpens it.
        example
            Optional example position (array, pytree or ``jax.ShapeDtypeStruct``). When
            given, the energy is traced once with :func:`jax.eval_shape` and a non-scalar
            output, a wrong input shape or a non-traceable function raises here.

        Returns
        -------
        Potential

        Raises
        ------
        TypeError
            If ``energy_fn`` is not callable.
        ValueError
            If ``temperature <= 0`` or the energy fails the shape check.

        Examples
        --------
        >>> import jax.numpy as jnp
        >>> pot = Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))
        >>> float(pot.logdensity_fn(jnp.ones(2)))
        -1.0
        """
        if not callable(energy_fn):
            raise TypeError(f"energy_fn must be callable, got {type(energy_fn).__name__}")
        check_temperature(temperature)
        arrays, static = partition(params)
        pot = cls(
            fn=energy_fn,
            params=arrays,
            params_static=static,
            temperature=jnp.asarray(temperature, dtype=jnp.result_type(float)),
            kind="energy",
            has_params=params is not None,
            example_spec=as_spec(example),
        )
        if example is not None:
            pot.check(example, name="example")
        return pot

    @classmethod
    def from_logdensity(
        cls, logdensity_fn: Callable[[ArrayTree], Array], *, example: ArrayLikeTree | None = None
    ) -> Potential:
        """Wrap a BlackJAX-style ``logdensity_fn(x) -> log p(x)``.

        Parameters
        ----------
        logdensity_fn
            JAX-traceable function returning a scalar log density (up to a constant).
        example
            Optional example position, checked as in :meth:`from_energy`.
        """
        if not callable(logdensity_fn):
            raise TypeError(
                f"logdensity_fn must be callable, got {type(logdensity_fn).__name__}"
            )
        pot = cls(fn=logdensity_fn, kind="logdensity", example_spec=as_spec(example))
        if example is not None:
            pot.check(example, name="example")
        return pot

    @classmethod
    def from_model(
        cls, model: Callable, *model_args: Any, rng_key: PRNGKey | int = 0, **model_kwargs: Any
    ) -> Potential:
        """Turn a NumPyro model into a potential over its unconstrained space.

        Uses NumPyro's :func:`~numpyro.infer.util.initialize_model` to find the latent
        sites, so constrained sites (a scale with a positive support, say) are sampled on
        the real line and mapped back with :meth:`constrain`, Jacobian included in the
        potential.

        Compiled once: the model's array arguments (the data) are traced leaves of the
        potential and the model function is its static part, so a new
        ``Potential.from_model(model, data)`` with data of the same shapes (same or new
        values) reuses every program :func:`ebm_ppl.sample` compiled for the first one.
        The exception: a model that cannot take traced data (it calls NumPy on the data,
        or has ``param`` sites or enumerated discrete sites) gets NumPyro's own closure
        over the data, and each new potential built from it compiles anew.

        Parameters
        ----------
        model
            A NumPyro model (a Python callable with ``numpyro.sample`` statements).
        *model_args, **model_kwargs
            Arguments of the model (observed data...), fixed into the potential.
        rng_key
            Key (or integer seed) used once to trace the model and find its sites.

        Raises
        ------
        ebm_ppl.IntractableNormaliserError
            If an :class:`~ebm_ppl.numpyro.EnergyDistribution` site has ``params`` or a
            ``temperature`` that depend on latent sample sites: its normaliser
            :math:`Z(\\theta)` would be missing from the potential (use
            :class:`ebm_ppl.numpyro.Exchange`).
        ValueError
            If the model has no latent sample site.

        Examples
        --------
        >>> import numpyro, numpyro.distributions as dist
        >>> def model(y):
        ...     mu = numpyro.sample("mu", dist.Normal(0, 1))
        ...     numpyro.sample("y", dist.Normal(mu, 1), obs=y)
        >>> pot = Potential.from_model(model, jnp.array([0.5, 1.0]))
        >>> sorted(pot.example)
        ['mu']
        """
        if not callable(model):
            raise TypeError(f"model must be callable, got {type(model).__name__}")
        key = as_key(rng_key, "rng_key")
        check_normalisers(model, model_args, model_kwargs, rng_key=key)
        return cls._from_model_unchecked(model, model_args, model_kwargs, key)

    @classmethod
    def _from_model_unchecked(
        cls, model: Callable, model_args: tuple, model_kwargs: dict, rng_key: PRNGKey
    ) -> Potential:
        """:meth:`from_model` without the normaliser check (the exchange kernel's route:
        its potential omits :math:`Z(\\theta)` on purpose and corrects for it)."""
        return cls(kind="model", **model_fields(model, model_args, model_kwargs, rng_key))

    @classmethod
    def from_energy_family(
        cls,
        energy_fn: Callable[[Any, ArrayTree], Array],
        data: ArrayLikeTree,
        log_prior_fn: Callable[[Any], Array],
    ) -> Potential:
        r"""The posterior of an energy's parameters *without* its normaliser.

        .. math::

            \log \tilde p(\theta \mid x) = \log \pi(\theta) - \sum_{i=1}^n E_\theta(x_i)
            \;=\; \log p(\theta \mid x) + n \log Z(\theta) + \text{const}

        The missing :math:`n \log Z(\theta)` varies with :math:`\theta`: sample this
        potential only with :func:`ebm_ppl.kernels.exchange`, which corrects for it.

        Parameters
        ----------
        energy_fn
            ``energy_fn(theta, x) -> scalar``, the energy of one data point.
        data
            Observed data, leading axis the data points (traced: new data of the same
            shape reuses compiled code).
        log_prior_fn
            ``log_prior_fn(theta) -> scalar``, :math:`\log \pi(\theta)` (``-inf``
            outside its support).
        """
        for name, fn in (("energy_fn", energy_fn), ("log_prior_fn", log_prior_fn)):
            if not callable(fn):
                raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
        data = jax.tree.map(lambda leaf: jnp.asarray(leaf, jnp.result_type(float)), data)
        return cls(
            fn=FamilyPosteriorEnergy(energy_fn, log_prior_fn), params=data,
            temperature=jnp.asarray(1.0, jnp.result_type(float)), kind="energy",
            has_params=True,
        )

    # ------------------------------------------------------------------ evaluation
    def logdensity_fn(self, x: ArrayTree) -> Array:
        """``log p(x)`` up to a constant (BlackJAX sign)."""
        if self.kind == "energy":
            energy = self.fn(self.energy_params, x) if self.has_params else self.fn(x)
            return logdensity_from_energy(energy, self.temperature)
        if self.kind == "logdensity":
            return self.fn(x)
        return -self.fn(self.params, x)

    def potential_fn(self, x: ArrayTree) -> Array:
        """``-log p(x)`` up to a constant (NumPyro sign)."""
        return -self.logdensity_fn(x)

    def energy_fn(self, x: ArrayTree) -> Array:
        """The energy ``E(x)`` itself (``= T · potential``)."""
        return self.potential_fn(x) * self.temperature

    def score(self, x: ArrayTree) -> ArrayTree:
        """``∇ log p(x) = -∇E(x)/T``."""
        return jax.grad(self.logdensity_fn)(x)

    def with_params(self, params: ArrayLikeTree) -> Potential:
        """The same potential with new parameter values (no recompilation)."""
        if not self.has_params:
            raise ValueError("this potential was built without params; cannot replace them")
        arrays, static = partition(params)
        return dataclasses.replace(self, params=arrays, params_static=static)

    def with_model_args(self, *model_args: Any, **model_kwargs: Any) -> Potential:
        """The same model potential with new model arguments (new data, no recompilation).

        The counterpart of :meth:`with_params` for a :meth:`from_model` potential: the
        new array arguments become its traced leaves, so every program compiled for this
        potential is reused when their shapes and dtypes are unchanged. The result equals
        ``Potential.from_model(self.model, *model_args, **model_kwargs)`` without tracing
        the model again (the normaliser check depends on the model, not on its data).

        Parameters
        ----------
        *model_args, **model_kwargs
            The model's new arguments: the same structure and the same non-array
            arguments (numbers, strings, functions...) as the potential was built with.

        Raises
        ------
        ValueError
            If the potential was not built from a model; if the model cannot take traced
            data (NumPy calls on its data, ``param`` or enumerated discrete sites: its
            potential closes over the data it was built with); or if the arguments'
            structure or non-array arguments differ. Build a new
            :meth:`from_model` potential in these cases.

        Examples
        --------
        >>> import numpyro, numpyro.distributions as dist
        >>> def model(y):
        ...     mu = numpyro.sample("mu", dist.Normal(0, 1))
        ...     numpyro.sample("y", dist.Normal(mu, 1), obs=y)
        >>> pot = Potential.from_model(model, jnp.array([0.5, 1.0]))
        >>> new = pot.with_model_args(jnp.array([2.0, 3.0]))
        >>> new.model_args[0].tolist()
        [2.0, 3.0]
        """
        data = model_data(self.fn, self.kind, model_args, model_kwargs)
        return dataclasses.replace(self, params=data)

    def constrain(self, x: ArrayTree) -> dict[str, Array]:
        """Map an unconstrained position to the model's constrained sample sites.

        For potentials not built from a model, this is the identity.
        """
        if self.postprocess_fn is None:
            return x
        return self.postprocess_fn(self.params, x)

    # ------------------------------------------------------------------ validation
    def check(self, position: ArrayLikeTree, name: str = "position") -> None:
        """Trace the log density on ``position``'s shape (no compute) and validate it.

        Raises
        ------
        ValueError
            If the density does not return a real scalar, or if the position does not
            match the expected structure.
        """
        struct = as_struct(position)
        if self.example is not None:
            check_structure(self.example, struct, name)
        try:
            out = jax.eval_shape(self.logdensity_fn, struct)
        except Exception as err:  # noqa: BLE001 - re-raised with context
            article = "an" if name[:1] in "aeiou" else "a"
            form = ("fn(params, x), jax-traceable, of the params and one position x"
                    if self.has_params else "fn(x), jax-traceable, of one position x")
            raise ValueError(
                f"the {self.kind} function could not be traced with JAX on {article} {name} "
                f"of shape {describe(struct)} ({type(err).__name__}: {err}); it must be "
                f"{form}"
            ) from err
        if not isinstance(out, jax.ShapeDtypeStruct) or out.shape != ():
            shape = getattr(out, "shape", type(out).__name__)
            raise ValueError(
                f"the {self.kind} function must return a scalar, got shape {shape} for a "
                f"{name} of shape {describe(struct)}"
            )
        if not jnp.issubdtype(out.dtype, jnp.floating):
            raise ValueError(
                f"the {self.kind} function must return a floating-point scalar, got dtype "
                f"{out.dtype}"
            )

    def __repr__(self) -> str:
        """Short summary: kind, function, parameter count, position shape, temperature."""
        fn = self.fn
        name = repr(fn) if dataclasses.is_dataclass(fn) else getattr(
            fn, "__name__", type(fn).__name__)
        parts = [f"kind={self.kind!r}", f"fn={name}"]
        if self.has_params:
            leaves = jax.tree.leaves(self.params)
            size = sum(int(np.size(leaf)) for leaf in leaves)
            parts.append(f"params={size} values in {len(leaves)} arrays")
        if self.example is not None:
            parts.append(f"position={describe(self.example)}")
        if self.kind == "energy" and not isinstance(self.temperature, jax.core.Tracer):
            parts.append(f"temperature={float(self.temperature):g}")
        return f"Potential({', '.join(parts)})"
