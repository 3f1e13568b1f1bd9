"""The MLP energy :math:`E_\\theta(x) = \\text{MLP}_\\theta(x) + \\tfrac{\\alpha}{2}\\|x\\|^2`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax.numpy as jnp
from jax.typing import ArrayLike

from ebm_ppl._types import Array, Params
from ebm_ppl.nn._base import MLPConfig

__all__ = ["MLPEnergy", "mlp_energy"]


@dataclasses.dataclass(frozen=True)
class MLPEnergy(MLPConfig):
    r"""Configuration of an MLP energy; the object is the energy function itself.

    .. math:: E_\theta(x) = \text{MLP}_\theta(x) + \tfrac{\alpha}{2}\|x\|^2

    Frozen and hashable: two instances with the same configuration are equal and hash
    equal, so ``jax.jit`` (with the energy as a static argument, or inside a
    :class:`~ebm_ppl.Potential`) reuses its compiled code. Build with
    :func:`mlp_energy`.

    Attributes
    ----------
    hidden
        Widths of the hidden layers.
    activation
        One of :data:`ACTIVATIONS`.
    quadratic
        :math:`\alpha \ge 0`, weight of the confining quadratic term.
    """

    def __call__(self, params: Params, x: ArrayLike) -> Array:
        """Energy of one position ``x`` of shape ``(d,)``; a scalar.

        Raises
        ------
        ValueError
            If ``x`` is not 1-D or does not match ``params`` (checked at trace time).
        """
        x = jnp.asarray(x)
        self._check_position(params, x)
        return self._confine(self._network(params, x), x)


def mlp_energy(
    hidden: int | Sequence[int] = (128, 128),
    activation: str = "swish",
    *,
    quadratic: float = 0.0,
) -> MLPEnergy:
    r"""An MLP energy ``E(params, x) -> scalar`` for one ``x`` of shape ``(d,)``.

    .. math:: E_\theta(x) = w_L^\top \phi(\cdots \phi(W_1^\top x + b_1) \cdots) + b_L
              + \tfrac{\alpha}{2}\|x\|^2

    Parameters
    ----------
    hidden
        Hidden layer widths (an integer means one layer).
    activation
        ``"swish"``, ``"softplus"``, ``"tanh"`` or ``"elu"``; ReLU is excluded because
        its Hessian vanishes almost everywhere (see the module docstring).
    quadratic
        :math:`\alpha \ge 0`; a positive value makes :math:`e^{-E}` normalisable.

    Returns
    -------
    MLPEnergy
        Hashable callable ``model(params, x)`` with ``model.init(rng_key, dim)``.

    Raises
    ------
    ValueError
        If ``hidden``, ``activation`` or ``quadratic`` is invalid.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> model = mlp_energy((16, 16), "softplus")
    >>> params = model.init(jax.random.key(0), 2)
    >>> jax.vmap(model, in_axes=(None, 0))(params, jnp.zeros((5, 2))).shape
    (5,)
    >>> model == mlp_energy([16, 16], "softplus")
    True
    """
    return MLPEnergy(hidden=hidden, activation=activation, quadratic=quadratic)  # type: ignore[arg-type]
