"""The one kernel interface shared by every sampler of ebm_ppl.

A :class:`Kernel` is BlackJAX's pair of pure functions with its hyper-parameters bound:

* ``kernel.init(position, logdensity_fn) -> state``
* ``kernel.step(rng_key, state, logdensity_fn) -> (state, info)``

The log density is passed on every call, so one compiled step serves a potential whose
parameters change (contrastive-divergence training). A kernel is a JAX pytree: its
numeric hyper-parameters (``parameters``) are leaves, its functions are static, so it can
be passed into ``jit``/``vmap`` and its step size can be traced and adapted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ebm_ppl._types import ArrayTree, LogDensityFn, PRNGKey

__all__ = ["Kernel", "ADAPTATIONS"]

#: Warm-up schemes understood by :func:`ebm_ppl.sample`.
#: ``"window"``: Stan/BlackJAX window adaptation of step size and (diagonal) inverse mass
#: matrix; ``"step_size"``: dual averaging of the step size only; ``"scale"``:
#: Robbins–Monro adaptation of a random-walk scale; ``"none"``: hyper-parameters as given.
ADAPTATIONS = ("window", "step_size", "scale", "none")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)
class Kernel:
    """A Markov kernel with bound hyper-parameters.

    Attributes
    ----------
    name
        Short name (``"ula"``, ``"mala"``, ``"hmc"``, ``"nuts"``, ``"mh"``...).
    init_fn
        ``init_fn(position, logdensity_fn) -> state``.
    kernel_fn
        ``kernel_fn(rng_key, state, logdensity_fn, **parameters, **static_parameters)``.
    parameters
        Numeric hyper-parameters (pytree leaves, traced under ``jit``).
    static_parameters
        Hyper-parameters that fix the trace (``num_integration_steps``...), as a tuple
        of ``(name, value)`` pairs.
    adaptation
        The warm-up scheme :func:`ebm_ppl.sample` uses, one of :data:`ADAPTATIONS`.
    target_acceptance_rate
        Target of the warm-up for adaptive schemes.
    """

    name: str = dataclasses.field(metadata=dict(static=True))
    init_fn: Callable = dataclasses.field(metadata=dict(static=True))
    kernel_fn: Callable = dataclasses.field(metadata=dict(static=True))
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    static_parameters: tuple = dataclasses.field(default=(), metadata=dict(static=True))
    adaptation: str = dataclasses.field(default="none", metadata=dict(static=True))
    target_acceptance_rate: float = dataclasses.field(
        default=0.8, metadata=dict(static=True)
    )

    def init(self, position: ArrayTree, logdensity_fn: LogDensityFn) -> Any:
        """Initial state at ``position`` (log density and its gradient cached)."""
        return self.init_fn(position, logdensity_fn)

    def step(self, rng_key: PRNGKey, state: Any, logdensity_fn: LogDensityFn) -> tuple[Any, Any]:
        """One transition; returns ``(new_state, info)``."""
        return self.kernel_fn(
            rng_key, state, logdensity_fn, **self.parameters, **dict(self.static_parameters)
        )

    def replace(self, **parameters: Any) -> Kernel:
        """The same kernel with some numeric hyper-parameters replaced."""
        unknown = set(parameters) - set(self.parameters)
        if unknown:
            raise ValueError(
                f"unknown parameters {sorted(unknown)} for kernel {self.name!r}; "
                f"allowed: {sorted(self.parameters)}"
            )
        def like(new: Any, old: Any) -> Any:
            # keep the traced type (dtype, no weak type) so the compiled step is reused
            if isinstance(old, jax.Array) and isinstance(new, (int, float, np.ndarray, jax.Array)):
                return jnp.asarray(new, dtype=old.dtype)
            return new

        parameters = {k: like(v, self.parameters[k]) for k, v in parameters.items()}
        return dataclasses.replace(self, parameters={**self.parameters, **parameters})

    @property
    def config(self) -> dict[str, Any]:
        """A JSON-friendly description (name and scalar hyper-parameters)."""
        out: dict[str, Any] = {"kernel": self.name}
        for key, value in {**self.parameters, **dict(self.static_parameters)}.items():
            if isinstance(value, (int, float, bool, str)):
                out[key] = value
            elif hasattr(value, "shape") and np.shape(value) == ():
                out[key] = float(value)
        return out

    def __repr__(self) -> str:
        return f"Kernel({self.name!r}, {self.config})"

