"""What both MLP energies share: activations, initialisation, forward pass, and the
frozen configuration base class (checks, ``init``, ``apply``, unpacking)."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from ebm_ppl._names import ACTIVATIONS
from ebm_ppl._types import Array, Params, PRNGKey
from ebm_ppl._validation import as_key, check_int, check_nonnegative

__all__ = ["ACTIVATIONS", "MLPConfig"]

_ACTIVATION_FNS: dict[str, Callable[[Array], Array]] = {
    "swish": jax.nn.swish,
    "softplus": jax.nn.softplus,
    "tanh": jnp.tanh,
    "elu": jax.nn.elu,
}

if tuple(_ACTIVATION_FNS) != ACTIVATIONS:  # one list of names, kept in ebm_ppl._names
    raise ImportError("ebm_ppl._names.ACTIVATIONS and nn._base._ACTIVATION_FNS disagree")


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
    return tuple(int(h) for h in hidden), check_nonnegative("quadratic", quadratic)


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
    rng_key = as_key(rng_key, "rng_key")
    # one compiled program per configuration instead of one dispatch per layer
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    return _init_mlp_jit(rng_key, sizes, activation, dtype)


def _forward(params: Params, h: Array, activation: str) -> Array:
    act = _ACTIVATION_FNS[activation]
    for layer in params["hidden"]:
        h = act(h @ layer["w"] + layer["b"])
    out = params["output"]
    return (h @ out["w"] + out["b"])[0]



# ----------------------------------------------------------------------------- shared base
@dataclasses.dataclass(frozen=True)
class MLPConfig:
    """What both MLP energies share: configuration checks, ``init``, ``apply``, unpacking.

    Subclasses set :attr:`_extra_inputs` (inputs beyond the position, 1 for ``log σ``) and
    define ``__call__``.
    """

    hidden: tuple[int, ...] = (128, 128)
    activation: str = "swish"
    quadratic: float = 0.0

    #: Network inputs beyond the ``d`` coordinates of a position.
    _extra_inputs = 0

    def __post_init__(self) -> None:
        hidden, quadratic = _check_config(self.hidden, self.activation, self.quadratic)
        object.__setattr__(self, "hidden", hidden)
        object.__setattr__(self, "quadratic", quadratic)

    def init(self, rng_key: PRNGKey | int, dim: int, dtype: DTypeLike | None = None) -> Params:
        """Draw initial parameters for positions of dimension ``dim``.

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
            (d_last, 1), "b": (1,)}}`` with ``d_in = d`` (``d + 1`` for the
            noise-conditional energy, which also sees ``log σ``).

        Raises
        ------
        ValueError
            If ``dim`` is not a positive integer.
        """
        dim = check_int("dim", dim, 1)
        sizes = (dim + self._extra_inputs, *self.hidden, 1)
        return _init_mlp(rng_key, sizes, self.activation, dtype)

    def position_dim(self, params: Params) -> int:
        """The dimension ``d`` of the positions that ``params`` take."""
        layers = params["hidden"] or [params["output"]]
        return int(layers[0]["w"].shape[0]) - self._extra_inputs

    def _check_position(self, params: Params, x: Array) -> None:
        if x.ndim != 1:
            raise ValueError(
                f"x must be one position of shape (d,), got shape {x.shape}; use jax.vmap "
                "over a batch"
            )
        expected = self.position_dim(params)
        if x.shape[0] != expected:
            raise ValueError(
                f"x must have shape ({expected},) to match params, got shape {x.shape}"
            )

    def _network(self, params: Params, h: Array) -> Array:
        return _forward(params, h, self.activation)

    def _confine(self, energy: Array, x: Array) -> Array:
        if self.quadratic:
            energy = energy + 0.5 * self.quadratic * jnp.sum(x**2)
        return energy

    @property
    def apply(self) -> MLPConfig:
        """The energy function itself (stable and hashable, unlike a bound method)."""
        return self

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        """Unpack as ``init, apply = model``."""
        return iter((self.init, self))
