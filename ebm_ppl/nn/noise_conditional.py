"""The σ-conditioned MLP energy of multi-scale denoising score matching, and its
restriction to one fixed σ."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from ebm_ppl._types import Array, Params, PRNGKey
from ebm_ppl.nn._base import MLPConfig

__all__ = ["FixedSigmaEnergy", "NoiseConditionalMLPEnergy", "noise_conditional_mlp_energy"]


@dataclasses.dataclass(frozen=True)
class NoiseConditionalMLPEnergy(MLPConfig):
    r"""Configuration of a σ-conditioned MLP energy; the object is the energy function.

    .. math:: E_\theta(x, \sigma) = \frac{\text{MLP}_\theta([x, \log\sigma])}{\sigma}
              + \tfrac{\alpha}{2}\|x\|^2

    (without the division when ``scale_by_sigma`` is false). Hashable and equal across
    instances with the same configuration, like :class:`MLPEnergy`; ``init(rng_key, dim)``
    gives a first layer of ``d + 1`` inputs (the network also sees ``log σ``). Build with
    :func:`noise_conditional_mlp_energy`.

    Attributes
    ----------
    hidden, activation, quadratic
        As in :class:`MLPEnergy`.
    scale_by_sigma
        Divide the network output by σ (NCSNv2), so that the score
        :math:`-\nabla_x E` has the :math:`1/\sigma` scale of the denoising target
        :math:`-(\tilde x - x)/\sigma^2` at every noise level.
    """

    scale_by_sigma: bool = True

    _extra_inputs = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.scale_by_sigma, bool):
            raise ValueError(f"scale_by_sigma must be a bool, got {self.scale_by_sigma!r}")

    def __call__(self, params: Params, x: ArrayLike, sigma: ArrayLike) -> Array:
        """Energy of one position ``x`` of shape ``(d,)`` at noise level ``sigma > 0``.

        ``sigma`` is a scalar (vmap ``x`` and ``sigma`` together for a batch).

        Raises
        ------
        ValueError
            If ``x`` is not 1-D, does not match ``params``, or ``sigma`` is not a scalar
            (checked at trace time).
        """
        x = jnp.asarray(x)
        sigma = jnp.asarray(sigma, dtype=x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else None)
        self._check_position(params, x)
        if sigma.ndim != 0:
            raise ValueError(
                f"sigma must be a scalar, got shape {sigma.shape}; vmap x and sigma together"
            )
        h = jnp.concatenate([x, jnp.log(sigma)[None].astype(x.dtype)])
        energy = self._network(params, h)
        if self.scale_by_sigma:
            energy = energy / sigma
        return self._confine(energy, x)

    def at_sigma(self, sigma: float) -> FixedSigmaEnergy:
        """The energy ``(params, x) -> E(x, sigma)`` at one fixed noise level.

        Use it to evaluate the model at one σ, or to run a kernel on that slice through
        :meth:`ebm_ppl.Potential.from_energy`; the result is hashable like the model. To
        draw samples of the model, anneal over its levels with
        :func:`ebm_ppl.sampling.annealed_langevin`: at a small σ each level has only
        seen data near it, so a single small-σ slice can put the mass of separated
        regions in the wrong place even when sampled exactly.

        Parameters
        ----------
        sigma
            A Python float > 0.

        Returns
        -------
        FixedSigmaEnergy

        Raises
        ------
        ValueError
            If ``sigma`` is not a finite number > 0.
        """
        return FixedSigmaEnergy(self, sigma)


@dataclasses.dataclass(frozen=True)
class FixedSigmaEnergy:
    """A :class:`NoiseConditionalMLPEnergy` at a fixed σ: ``energy(params, x)``.

    Attributes
    ----------
    model
        The noise-conditional energy.
    sigma
        The noise level (a Python float, part of the hash).
    """

    model: NoiseConditionalMLPEnergy
    sigma: float

    def __post_init__(self) -> None:
        sigma = self.sigma
        if (
            isinstance(sigma, bool)
            or not isinstance(sigma, int | float)
            or not math.isfinite(sigma)
            or sigma <= 0
        ):
            raise ValueError(f"sigma must be a finite Python number > 0, got {sigma!r}")
        object.__setattr__(self, "sigma", float(sigma))

    def __call__(self, params: Params, x: ArrayLike) -> Array:
        """Energy of one position ``x`` of shape ``(d,)`` at the fixed σ."""
        return self.model(params, x, self.sigma)

    def init(self, rng_key: PRNGKey | int, dim: int, dtype: DTypeLike | None = None) -> Params:
        """The noise-conditional model's :meth:`~NoiseConditionalMLPEnergy.init`."""
        return self.model.init(rng_key, dim, dtype)

    def position_dim(self, params: Params) -> int:
        """The dimension ``d`` of the positions that ``params`` take."""
        return self.model.position_dim(params)


def noise_conditional_mlp_energy(
    hidden: int | Sequence[int] = (128, 128),
    activation: str = "swish",
    *,
    quadratic: float = 0.0,
    scale_by_sigma: bool = True,
) -> NoiseConditionalMLPEnergy:
    r"""A σ-conditioned MLP energy ``E(params, x, sigma)`` for multi-scale DSM.

    .. math:: E_\theta(x, \sigma) = \text{MLP}_\theta([x, \log\sigma]) / \sigma

    The network sees :math:`\log\sigma` as an extra input (noise levels are usually
    geometric, so :math:`\log\sigma` is evenly spaced) and its output is divided by σ,
    as NCSNv2 divides the score network's output, so that one network fits the
    :math:`1/\sigma`-sized denoising scores at every level.

    Parameters
    ----------
    hidden, activation, quadratic
        As in :func:`mlp_energy`.
    scale_by_sigma
        Divide the output by σ (default ``True``).

    Returns
    -------
    NoiseConditionalMLPEnergy
        Hashable callable ``model(params, x, sigma)`` with ``model.init(rng_key, dim)``
        and ``model.at_sigma(sigma)``.

    Raises
    ------
    ValueError
        If an argument is invalid.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> model = noise_conditional_mlp_energy((16,))
    >>> params = model.init(jax.random.key(0), 2)
    >>> model(params, jnp.ones(2), 0.1).shape
    ()
    """
    return NoiseConditionalMLPEnergy(
        hidden=hidden,  # type: ignore[arg-type]
        activation=activation,
        quadratic=quadratic,
        scale_by_sigma=scale_by_sigma,
    )
