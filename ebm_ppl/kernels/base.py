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
from jax.flatten_util import ravel_pytree

from ebm_ppl import adaptation
from ebm_ppl._tree import pytree_dataclass
from ebm_ppl._types import Array, ArrayTree, LogDensityFn, PRNGKey
from ebm_ppl.adaptation import Warmup, block_mask

__all__ = ["Kernel", "ADAPTATIONS", "block_mask", "default_inverse_mass_matrix"]

#: Names of the warm-ups of :mod:`ebm_ppl.adaptation` (``kernel.adaptation`` is one).
ADAPTATIONS = tuple(adaptation.WARMUPS)


def default_inverse_mass_matrix(position: ArrayTree, dense: bool = False) -> Array:
    """The identity inverse mass matrix for ``position``: ``ones(d)`` (diagonal) or
    ``eye(d)`` (dense), ``d`` the number of elements of the flattened position."""
    flat, _ = ravel_pytree(position)
    if dense:
        return jnp.eye(flat.shape[0], dtype=flat.dtype)
    return jnp.ones(flat.shape, flat.dtype)


@pytree_dataclass
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
    default_warmup
        The warm-up :func:`ebm_ppl.sample` and the NumPyro kernels run unless given
        another one (an :mod:`ebm_ppl.adaptation` object: ``window(...)``,
        ``dual_averaging(...)``, ``robbins_monro(...)``, ``mclmc()``, ``none()``).
    dense_mass
        Whether an inverse mass matrix left as None is the dense identity (and window
        adaptation estimates a dense matrix) rather than a diagonal one.
    exact
        Whether the kernel leaves the target exactly invariant (a Metropolis–Hastings
        correction or an exact integrator): False for ULA, MCLMC, SGLD... whose
        stationary law is biased by the step size. AIS warns for inexact kernels.
    gradient_based
        Whether a step evaluates the gradient of the log density.
    """

    name: str = dataclasses.field(metadata=dict(static=True))
    init_fn: Callable = dataclasses.field(metadata=dict(static=True))
    kernel_fn: Callable = dataclasses.field(metadata=dict(static=True))
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    static_parameters: tuple = dataclasses.field(default=(), metadata=dict(static=True))
    default_warmup: Warmup = dataclasses.field(default_factory=adaptation.none,
                                               metadata=dict(static=True))
    dense_mass: bool = dataclasses.field(default=False, metadata=dict(static=True))
    exact: bool = dataclasses.field(default=True, metadata=dict(static=True))
    gradient_based: bool = dataclasses.field(default=True, metadata=dict(static=True))

    @property
    def adaptation(self) -> str:
        """Name of the default warm-up (``"window"``, ``"step_size"``, ``"scale"``,
        ``"mclmc"`` or ``"none"``)."""
        return self.default_warmup.name

    @property
    def target_acceptance_rate(self) -> float:
        """Target acceptance rate of the default warm-up."""
        return self.default_warmup.target_acceptance_rate

    def with_warmup(self, warmup: Warmup) -> Kernel:
        """The same kernel with another default warm-up."""
        if not isinstance(warmup, Warmup):
            raise TypeError("warmup must be an ebm_ppl.adaptation warm-up (window(...), "
                            f"dual_averaging(...), ...), got {type(warmup).__name__}")
        return dataclasses.replace(self, default_warmup=warmup)

    def init(self, position: ArrayTree, logdensity_fn: LogDensityFn) -> Any:
        """Initial state at ``position`` (log density and its gradient cached)."""
        return self.init_fn(position, logdensity_fn)

    def step(self, rng_key: PRNGKey, state: Any, logdensity_fn: LogDensityFn) -> tuple[Any, Any]:
        """One transition; returns ``(new_state, info)``."""
        kernel = self.with_defaults(state.position)
        return kernel.kernel_fn(
            rng_key, state, logdensity_fn, **kernel.parameters, **dict(kernel.static_parameters)
        )

    def with_defaults(self, position: ArrayTree) -> Kernel:
        """The kernel with the hyper-parameters that depend on the position's size filled
        in: an inverse mass matrix left as None becomes the identity
        (:func:`default_inverse_mass_matrix`, dense when ``dense_mass``). The one place
        where that default is made; a wrapper's base kernel (parameter ``"kernel"``, with
        a leading replica axis, as :func:`~ebm_ppl.kernels.parallel_tempering`'s) gets one
        identity per replica."""
        inner = self.parameters.get("kernel")
        if isinstance(inner, Kernel) and inner.parameters.get("inverse_mass_matrix",
                                                              0) is None:
            num = jnp.shape(inner.parameters["step_size"])[0]
            imm = default_inverse_mass_matrix(position, inner.dense_mass)
            inner = inner.replace(inverse_mass_matrix=jnp.broadcast_to(imm, (num, *imm.shape)))
            return dataclasses.replace(self, parameters={**self.parameters, "kernel": inner})
        if "inverse_mass_matrix" not in self.parameters:
            return self
        imm = self.parameters["inverse_mass_matrix"]
        if imm is None:
            imm = default_inverse_mass_matrix(position, self.dense_mass)
        elif self.dense_mass and jnp.ndim(imm) == 1:
            imm = jnp.diag(imm)
        return dataclasses.replace(self, parameters={**self.parameters,
                                                     "inverse_mass_matrix": imm})

    @property
    def scale(self) -> Array | None:
        """The proposal scale of a random-walk MH kernel (None for other kernels)."""
        proposal = self.parameters.get("proposal")
        return None if proposal is None else proposal.scale

    @property
    def step_size(self) -> Array | None:
        """The step size, or the proposal scale of a random-walk MH kernel (the number
        stored as ``step_size`` in ``sample_stats``); None when the kernel has neither."""
        if "step_size" in self.parameters:
            return self.parameters["step_size"]
        return self.scale

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

