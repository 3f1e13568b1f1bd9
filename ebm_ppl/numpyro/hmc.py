r"""NumPyro's HMC conventions on BlackJAX transitions.

* :data:`trajectory_hmc`: HMC with a fixed trajectory length :math:`\tau` (NumPyro's
  ``trajectory_length``, default :math:`2\pi`), exactly as NumPyro's ``HMC``: the
  number of leapfrog steps is :math:`L = \lceil \tau / \epsilon \rceil` (at most
  :data:`MAX_NUM_STEPS`) for the
  (adapted) nominal step size :math:`\epsilon`, and the leapfrog integrates with
  :math:`\tau / L \le \epsilon`, so every trajectory has length exactly :math:`\tau`.
  With ``step_size_jitter`` :math:`j`, the nominal step is drawn uniformly in
  :math:`\epsilon (1 \pm j)` at every transition, so :math:`L` (and with it
  :math:`\tau / L`) varies. A fixed number of steps can resonate with the target: on a
  Gaussian of scale :math:`\sigma`, dual averaging can settle at a step size for which
  :math:`L` steps make an exact half-turn, so every proposal lands on the reflection of
  the current point and the chain barely explores. Tying :math:`L` to
  :math:`\tau/\epsilon` breaks it. Integrating with :math:`\epsilon` itself instead of
  :math:`\tau/L` would let the trajectory length :math:`\epsilon L` drift into such a
  half-turn (``CHANGELOG.md`` records the case that showed it). A random number of
  steps independent of the state keeps detailed balance, so the target is still
  exactly invariant.
* :func:`forward_mode`: a log density whose gradient is computed in forward mode
  (``jax.jacfwd``), for models with ``lax.while_loop`` (NumPyro's
  ``forward_mode_differentiation``).
* :func:`heuristic_step_size`: Hoffman & Gelman's doubling/halving search for a first
  step size (NumPyro's ``find_heuristic_step_size``; BlackJAX
  ``find_reasonable_step_size``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import blackjax
import jax
import jax.numpy as jnp
from blackjax.adaptation.step_size import find_reasonable_step_size
from blackjax.base import SamplingAlgorithm

from ebm_ppl._types import Array, ArrayTree, LogDensityFn, PRNGKey
from ebm_ppl.kernels.base import Kernel

__all__ = ["DEFAULT_TRAJECTORY_LENGTH", "MAX_NUM_STEPS", "trajectory_hmc", "forward_mode", "heuristic_step_size"]

#: NumPyro's default HMC trajectory length.
DEFAULT_TRAJECTORY_LENGTH = 2 * math.pi
#: Most leapfrog steps per transition (NUTS' default budget, 2**10): when warm-up from a
#: poor start drives the step size towards 0, ceil(tau / eps) would be astronomically
#: large (a vectorized run waits for its slowest chain); the step is then tau / 1024.
MAX_NUM_STEPS = 1024


def _trajectory_hmc(
    logdensity_fn: LogDensityFn,
    step_size: Array,
    inverse_mass_matrix: Array,
    trajectory_length: Array,
    step_size_jitter: Array = 0.0,
) -> SamplingAlgorithm:
    """HMC with ``L = ceil(trajectory_length / step_size)`` leapfrog steps of size
    ``trajectory_length / L`` (NumPyro's rule, see module)."""

    def init(position: ArrayTree, rng_key: PRNGKey | None = None) -> Any:
        return blackjax.mcmc.hmc.init(position, logdensity_fn)

    def step(rng_key: PRNGKey, state: Any) -> tuple[Any, Any]:
        key_jitter, key_step = jax.random.split(rng_key)
        u = jax.random.uniform(key_jitter, (), jnp.result_type(step_size), -1.0, 1.0)
        nominal = step_size * (1.0 + step_size_jitter * u)
        num_steps = jnp.clip(jnp.ceil(trajectory_length / nominal), 1, MAX_NUM_STEPS)
        epsilon = (trajectory_length / num_steps).astype(jnp.result_type(step_size))
        return blackjax.hmc(
            logdensity_fn, epsilon, inverse_mass_matrix, num_steps.astype(jnp.int32)
        ).step(key_step, state)

    return SamplingAlgorithm(init, step)


#: A BlackJAX-shaped algorithm (for :func:`ebm_ppl.kernels.from_blackjax`).
trajectory_hmc = blackjax.GenerateSamplingAPI(
    _trajectory_hmc, blackjax.mcmc.hmc.init, blackjax.mcmc.hmc.build_kernel
)


def forward_mode(logdensity_fn: LogDensityFn) -> LogDensityFn:
    """``logdensity_fn`` whose reverse-mode gradient is computed by ``jax.jacfwd``.

    Same values; ``jax.grad`` of the result calls the forward-mode Jacobian, so a log
    density built on ``lax.while_loop`` (not reverse-differentiable) can drive
    gradient-based kernels.
    """

    @jax.custom_vjp
    def wrapped(x: ArrayTree) -> Array:
        return logdensity_fn(x)

    def fwd(x: ArrayTree) -> tuple[Array, ArrayTree]:
        return logdensity_fn(x), jax.jacfwd(logdensity_fn)(x)

    def bwd(grad: ArrayTree, cotangent: Array) -> tuple[ArrayTree]:
        return (jax.tree.map(lambda g: g * cotangent, grad),)

    wrapped.defvjp(fwd, bwd)
    return wrapped


def heuristic_step_size(
    kernel: Kernel, rng_key: PRNGKey, state: Any, logdensity_fn: LogDensityFn,
    target: float = 0.8,
) -> Kernel:
    """``kernel`` with a step size from Hoffman & Gelman's heuristic (Algorithm 4).

    Starting from the kernel's step size, double or halve it until the acceptance of
    one transition from ``state`` crosses ``target`` (BlackJAX
    ``find_reasonable_step_size``; the state is not advanced).
    """

    def generator(step_size: Array) -> Callable:
        tuned = kernel.replace(step_size=step_size)
        return lambda key, s: tuned.step(key, s, logdensity_fn)

    step_size = find_reasonable_step_size(
        rng_key, generator, state, kernel.parameters["step_size"], target
    )
    return kernel.replace(step_size=step_size)
