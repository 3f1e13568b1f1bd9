r"""Small MLP energies in plain JAX (no Flax, Haiku or Equinox needed).

:func:`mlp_energy` builds :math:`E_\theta(x) = \text{MLP}_\theta(x) + \tfrac{\alpha}{2}\|x\|^2`
for one position ``x`` of shape ``(d,)``; :func:`noise_conditional_mlp_energy` builds
the σ-conditioned :math:`E_\theta(x, \sigma) = \text{MLP}_\theta([x, \log\sigma]) / \sigma`
for multi-scale denoising score matching.

Both return a frozen, hashable *configuration object* that is itself the energy
function (``model(params, x)``) and has an ``init(rng_key, dim)`` method:

>>> model = mlp_energy((32, 32))
>>> params = model.init(jax.random.key(0), 2)
>>> model(params, jnp.zeros(2)).shape
()

Why an object and not a closure
    ebm_ppl keeps the energy function as *static* metadata of a
    :class:`~ebm_ppl.Potential` (and passes it as a static argument of ``jax.jit``), so
    jit's cache is keyed on its hash and equality. Two closures from two calls of a
    factory are different objects and would recompile; two ``MLPEnergy`` with the same
    configuration compare and hash equal, so compiled code is reused:
    ``mlp_energy((128, 128)) == mlp_energy((128, 128))``. ``model.apply`` is the model
    itself (a bound method would compare by identity of ``self``), and
    ``init, apply = model`` unpacks like Haiku's ``Transformed`` pair.

Why only smooth activations
    Score matching minimises :math:`\mathbb E[\tfrac12\|\nabla_x E\|^2 - \operatorname{tr}
    \nabla_x^2 E]`. With ReLU the network is piecewise linear in ``x``: its Hessian is 0
    almost everywhere, the trace term vanishes (and gives no parameter gradient) and the
    objective degenerates to shrinking the score to zero. Its score is also piecewise
    constant, which Langevin and HMC handle poorly. ``swish``, ``softplus`` and ``tanh``
    are :math:`C^\infty`; ``elu`` is :math:`C^1` with a second derivative that jumps at 0
    (still non-zero on the negative side), kept because it is a common choice.

Notes
-----
An MLP energy grows at most linearly in ``‖x‖``, so :math:`e^{-E}` need not be
normalisable and a sampler can drift off to infinity away from the data. ``quadratic``
:math:`\alpha > 0` adds a confining :math:`\tfrac{\alpha}{2}\|x\|^2` that guarantees a
proper density (a small value such as ``1e-2`` barely changes the fit on standardised
data).

Initialisation: hidden weights are He-normal (variance ``2 / fan_in``) for ``swish``,
``softplus`` and ``elu`` and Glorot-normal (``2 / (fan_in + fan_out)``) for ``tanh``; the
output layer is LeCun-normal (``1 / fan_in``); biases are 0.

References
----------
He et al. (2015), https://arxiv.org/abs/1502.01852 (He initialisation).
Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward
neural networks" (Glorot initialisation).
Song & Ermon (2019), NCSN, https://arxiv.org/abs/1907.05600 (noise-conditional scores).
Song & Ermon (2020), https://arxiv.org/abs/2006.09011 (``1/σ`` output scaling).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from ebm_ppl._types import Array, Params, PRNGKey

__all__ = [
    "ACTIVATIONS",
    "FixedSigmaEnergy",
    "MLPEnergy",
    "NoiseConditionalMLPEnergy",
    "mlp_energy",
    "noise_conditional_mlp_energy",
]

_ACTIVATION_FNS: dict[str, Callable[[Array], Array]] = {
    "swish": jax.nn.swish,
    "softplus": jax.nn.softplus,
    "tanh": jnp.tanh,
    "elu": jax.nn.elu,
}

#: Allowed activation names (smooth ones only; see the module docstring).
ACTIVATIONS: tuple[str, ...] = tuple(_ACTIVATION_FNS)


# ----------------------------------------------------------------------------- helpers
def _check_config(hidden: Any, activation: Any, quadratic: Any) -> tuple[tuple[int, ...], float]:
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = (hidden,)
    if not isinstance(hidden, Sequence) or isinstance(hidden, str):
        raise ValueError(f"hidden must be a sequence of positive integers, got {hidden!r}")
    if not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden):
        raise ValueError(f"hidden must be a sequence of positive integers, got {hidden!r}")
    if activation not in _ACTIVATION_FNS:
        hint = " (ReLU is excluded: score matching needs second derivatives)" if (
            isinstance(activation, str) and "relu" in activation.lower()
        ) else ""
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}{hint}")
    if (
        isinstance(quadratic, bool)
        or not isinstance(quadratic, int | float)
        or not math.isfinite(quadratic)
        or quadratic < 0
    ):
        raise ValueError(f"quadratic must be a finite number >= 0, got {quadratic!r}")
    return tuple(int(h) for h in hidden), float(quadratic)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _init_mlp_jit(
    rng_key: PRNGKey, sizes: tuple[int, ...], activation: str, dtype: Any
) -> dict[str, Any]:
    keys = jax.random.split(rng_key, len(sizes) - 1)
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        is_output = i == len(sizes) - 2
        if is_output:
            var = 1.0 / fan_in
        elif activation == "tanh":
            var = 2.0 / (fan_in + fan_out)
        else:
            var = 2.0 / fan_in
        w = math.sqrt(var) * jax.random.normal(keys[i], (fan_in, fan_out), dtype=dtype)
        layers.append({"w": w, "b": jnp.zeros((fan_out,), dtype=dtype)})
    return {"hidden": layers[:-1], "output": layers[-1]}


def _init_mlp(
    rng_key: PRNGKey, sizes: tuple[int, ...], activation: str, dtype: DTypeLike | None
) -> dict[str, Any]:
    if isinstance(rng_key, int) and not isinstance(rng_key, bool):
        rng_key = jax.random.key(rng_key)
    # one compiled program per configuration instead of one dispatch per layer
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    return _init_mlp_jit(rng_key, sizes, activation, dtype)


def _forward(params: Params, h: Array, activation: str) -> Array:
    act = _ACTIVATION_FNS[activation]
    for layer in params["hidden"]:
        h = act(h @ layer["w"] + layer["b"])
    out = params["output"]
    return (h @ out["w"] + out["b"])[0]


def _check_dim(dim: Any) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
    return dim


def _check_x(params: Params, x: Array, extra: int) -> None:
    if x.ndim != 1:
        raise ValueError(
            f"x must be one position of shape (d,), got shape {x.shape}; use jax.vmap "
            "over a batch"
        )
    layers = params["hidden"] or [params["output"]]
    expected = layers[0]["w"].shape[0] - extra
    if x.shape[0] != expected:
        raise ValueError(
            f"x must have shape ({expected},) to match params, got shape {x.shape}"
        )


# ----------------------------------------------------------------------------- MLP energy
@dataclasses.dataclass(frozen=True)
class MLPEnergy:
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

    hidden: tuple[int, ...] = (128, 128)
    activation: str = "swish"
    quadratic: float = 0.0

    def __post_init__(self) -> None:
        hidden, quadratic = _check_config(self.hidden, self.activation, self.quadratic)
        object.__setattr__(self, "hidden", hidden)
        object.__setattr__(self, "quadratic", quadratic)

    def init(self, rng_key: PRNGKey | int, dim: int, dtype: DTypeLike | None = None) -> Params:
        """Draw initial parameters for inputs of dimension ``dim``.

        Parameters
        ----------
        rng_key
            A ``jax.random`` key (or an integer seed).
        dim
            Dimension ``d`` of a position.
        dtype
            Floating dtype of the parameters (default: JAX's default float).

        Returns
        -------
        dict
            ``{"hidden": [{"w": (d_in, d_out), "b": (d_out,)}, ...], "output": {"w":
            (d_last, 1), "b": (1,)}}``.

        Raises
        ------
        ValueError
            If ``dim`` is not a positive integer.
        """
        dim = _check_dim(dim)
        return _init_mlp(rng_key, (dim, *self.hidden, 1), self.activation, dtype)

    def __call__(self, params: Params, x: ArrayLike) -> Array:
        """Energy of one position ``x`` of shape ``(d,)``; a scalar.

        Raises
        ------
        ValueError
            If ``x`` is not 1-D or does not match ``params`` (checked at trace time).
        """
        x = jnp.asarray(x)
        _check_x(params, x, extra=0)
        energy = _forward(params, x, self.activation)
        if self.quadratic:
            energy = energy + 0.5 * self.quadratic * jnp.sum(x**2)
        return energy

    @property
    def apply(self) -> MLPEnergy:
        """The energy function ``apply(params, x)``: the object itself (stable, hashable)."""
        return self

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        """Unpack as ``init, apply = model``."""
        return iter((self.init, self))


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


# ----------------------------------------------------------------------------- σ-conditional
@dataclasses.dataclass(frozen=True)
class NoiseConditionalMLPEnergy:
    r"""Configuration of a σ-conditioned MLP energy; the object is the energy function.

    .. math:: E_\theta(x, \sigma) = \frac{\text{MLP}_\theta([x, \log\sigma])}{\sigma}
              + \tfrac{\alpha}{2}\|x\|^2

    (without the division when ``scale_by_sigma`` is false). Hashable and equal across
    instances with the same configuration, like :class:`MLPEnergy`. Build with
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

    hidden: tuple[int, ...] = (128, 128)
    activation: str = "swish"
    quadratic: float = 0.0
    scale_by_sigma: bool = True

    def __post_init__(self) -> None:
        hidden, quadratic = _check_config(self.hidden, self.activation, self.quadratic)
        if not isinstance(self.scale_by_sigma, bool):
            raise ValueError(f"scale_by_sigma must be a bool, got {self.scale_by_sigma!r}")
        object.__setattr__(self, "hidden", hidden)
        object.__setattr__(self, "quadratic", quadratic)

    def init(self, rng_key: PRNGKey | int, dim: int, dtype: DTypeLike | None = None) -> Params:
        """Draw initial parameters for positions of dimension ``dim`` (input ``dim + 1``).

        Parameters
        ----------
        rng_key
            A ``jax.random`` key (or an integer seed).
        dim
            Dimension ``d`` of a position (the network also sees ``log σ``).
        dtype
            Floating dtype of the parameters (default: JAX's default float).

        Returns
        -------
        dict
            Same layout as :meth:`MLPEnergy.init`, first layer of shape ``(d + 1, ...)``.

        Raises
        ------
        ValueError
            If ``dim`` is not a positive integer.
        """
        dim = _check_dim(dim)
        return _init_mlp(rng_key, (dim + 1, *self.hidden, 1), self.activation, dtype)

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
        _check_x(params, x, extra=1)
        if sigma.ndim != 0:
            raise ValueError(
                f"sigma must be a scalar, got shape {sigma.shape}; vmap x and sigma together"
            )
        h = jnp.concatenate([x, jnp.log(sigma)[None].astype(x.dtype)])
        energy = _forward(params, h, self.activation)
        if self.scale_by_sigma:
            energy = energy / sigma
        if self.quadratic:
            energy = energy + 0.5 * self.quadratic * jnp.sum(x**2)
        return energy

    @property
    def apply(self) -> NoiseConditionalMLPEnergy:
        """The energy function ``apply(params, x, sigma)``: the object itself."""
        return self

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        """Unpack as ``init, apply = model``."""
        return iter((self.init, self))

    def at_sigma(self, sigma: float) -> FixedSigmaEnergy:
        """The energy ``(params, x) -> E(x, sigma)`` at one fixed noise level.

        Use it to sample from (or evaluate) the model at its smallest σ through
        :meth:`ebm_ppl.Potential.from_energy`; the result is hashable like the model.

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
