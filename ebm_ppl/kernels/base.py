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

from ebm_ppl._tree import pytree_dataclass
from ebm_ppl._types import Array, ArrayTree, LogDensityFn, PRNGKey

__all__ = ["Kernel", "ADAPTATIONS", "default_inverse_mass_matrix"]

#: Warm-up schemes understood by :func:`ebm_ppl.sample`.
#: ``"window"``: Stan/BlackJAX window adaptation of step size and (diagonal or dense)
#: inverse mass matrix; ``"step_size"``: dual averaging of the step size only; ``"scale"``:
#: Robbins–Monro adaptation of a random-walk scale; ``"none"``: hyper-parameters as given.
ADAPTATIONS = ("window", "step_size", "scale", "none")


def default_inverse_mass_matrix(position: ArrayTree, dense: bool = False) -> Array:
    """The identity inverse mass matrix for ``position``: ``ones(d)`` (diagonal) or
    ``eye(d)`` (dense), ``d`` the number of elements of the flattened position."""
    flat, _ = ravel_pytree(position)
    if dense:
        return jnp.eye(flat.shape[0], dtype=flat.dtype)
    return jnp.ones(flat.shape, flat.dtype)


def block_mask(blocks: tuple, size: int) -> np.ndarray:
    """The ``(size, size)`` 0/1 mask of a block-structured matrix: the diagonal, and
    every pair of flat indices that lie in one of ``blocks`` (a tuple of index tuples)."""
    mask = np.eye(size)
    for block in blocks:
        idx = np.asarray(block, int)
        mask[np.ix_(idx, idx)] = 1.0
    return mask


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
    adaptation
        The warm-up scheme :func:`ebm_ppl.sample` uses, one of :data:`ADAPTATIONS`.
    target_acceptance_rate
        Target of the warm-up for adaptive schemes.
    dense_mass
        Whether an inverse mass matrix left as None is the dense identity (and window
        adaptation estimates a dense matrix) rather than a diagonal one.
    mass_blocks
        Block structure of a dense inverse mass matrix (NumPyro's ``dense_mass`` as a
        list of site groups): a tuple of groups of flat indices; entries of the matrix
        outside the blocks and off the diagonal are kept at zero by window adaptation
        (:func:`block_mask`). Empty (the default): no structure imposed.
    regularize_mass_matrix
        Whether window adaptation shrinks each estimate towards :math:`10^{-3} I`
        with weight :math:`5/(n + 5)` (Stan's and NumPyro's rule; the default) or
        uses the plain sample covariance.
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
    dense_mass: bool = dataclasses.field(default=False, metadata=dict(static=True))
    mass_blocks: tuple = dataclasses.field(default=(), metadata=dict(static=True))
    regularize_mass_matrix: bool = dataclasses.field(default=True,
                                                     metadata=dict(static=True))

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
        where that default is made."""
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

    def with_scale(self, scale: Array) -> Kernel:
        """The same MH kernel with its proposal's scale replaced."""
        if self.scale is None:
            raise ValueError(f"kernel {self.name!r} has no proposal scale to replace")
        proposal = self.parameters["proposal"].with_scale(scale)
        return dataclasses.replace(self, parameters={**self.parameters, "proposal": proposal})

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

