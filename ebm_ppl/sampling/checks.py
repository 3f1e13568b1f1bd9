"""Pre-flight checks of :func:`ebm_ppl.sample`: an error for a start outside the support,
warnings for legal but suspicious input (a ULA step above the stability limit, an
improper-looking target)."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ebm_ppl._passed_checks import PassedChecks, abstract_signature
from ebm_ppl._types import Array, ArrayTree
from ebm_ppl.errors import ImproperTargetWarning, StepSizeWarning
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.potential import Potential

__all__ = ["check_finite_start", "check_position", "warn_suspicious"]

#: Power-iteration steps for the largest Hessian eigenvalue at init.
_POWER_ITERATIONS = 30
#: Distances (in units of ``1 + |x0|``) along the score direction probed for improperness.
_RAY = (1.0, 10.0, 100.0, 1000.0, 10000.0)


@jax.jit
def _probe(pot: Potential, position: ArrayTree) -> tuple[Array, Array]:
    """Largest eigenvalue of ``-∇² log p`` at ``position`` (power iteration on
    Hessian-vector products) and ``log p`` along the ray from ``position`` in the
    direction of the score."""
    flat, unravel = ravel_pytree(position)

    def logdensity(z):
        return pot.logdensity_fn(unravel(z))

    def hvp(v):
        return -jax.jvp(jax.grad(logdensity), (flat,), (v,))[1]

    def power(_, v):
        w = hvp(v)
        return w / (jnp.linalg.norm(w) + 1e-30)

    v0 = jnp.ones_like(flat) / jnp.sqrt(flat.size)
    v = jax.lax.fori_loop(0, _POWER_ITERATIONS, power, v0)
    lam = jnp.vdot(v, hvp(v))
    score = jax.grad(logdensity)(flat)
    direction = score / (jnp.linalg.norm(score) + 1e-30)
    scale = 1.0 + jnp.linalg.norm(flat)
    ray = jnp.stack([logdensity(flat + t * scale * direction) for t in (0.0, *_RAY)])
    return lam, ray


def warn_suspicious(pot: Potential, kernel: Kernel, position: ArrayTree) -> None:
    """Warnings (not errors) for legal but suspicious input, before any sampling."""
    lam, ray = (np.asarray(a) for a in _probe(pot, position))
    if kernel.name == "ula" and np.isfinite(lam) and lam > 0:
        step = float(np.asarray(kernel.parameters["step_size"]))
        limit = 2.0 / float(lam)
        if step >= limit:
            warnings.warn(
                f"ULA step_size {step:g} is above the stability limit 2/λ_max ≈ "
                f"{limit:.3g} estimated from the Hessian at the initial "
                "position; the chain will likely diverge (use a smaller step_size)",
                StepSizeWarning,
                stacklevel=3,
            )
    if np.all(np.isfinite(ray)) and np.all(np.diff(ray) > 0) and ray[-1] - ray[0] > 50.0:
        warnings.warn(
            "the log density keeps increasing along the score direction from the initial "
            f"position (by {ray[-1] - ray[0]:.3g} at distance {_RAY[-1]:g}·(1+|x0|)): the "
            "target exp(-E) looks improper and chains may drift forever (add a confining "
            "term or check the sign of the energy)",
            ImproperTargetWarning,
            stacklevel=3,
        )


@jax.jit
def _finite_start(pot: Potential, positions: ArrayTree) -> tuple[Array, Array]:
    """Log density of every chain's start and whether it and its gradient are finite."""
    logdensity, grad = jax.vmap(jax.value_and_grad(pot.logdensity_fn))(positions)
    grad_ok = [jnp.all(jnp.isfinite(g.reshape(g.shape[0], -1)), axis=1)
               for g in jax.tree.leaves(grad)]
    return logdensity, jnp.isfinite(logdensity) & jnp.all(jnp.stack(grad_ok), axis=0)


def check_finite_start(pot: Potential, positions: ArrayTree) -> None:
    """Raise ``ValueError`` naming the chains whose initial log density or gradient is
    not finite."""
    logdensity, ok = _finite_start(pot, positions)
    ok = np.asarray(ok)
    if not ok.all():
        bad = np.flatnonzero(~ok).tolist()
        values = np.asarray(logdensity)[bad].tolist()
        raise ValueError(
            f"the log density or its gradient is not finite at the initial position of "
            f"chain(s) {bad} (log density {values}); start inside the support"
        )


#: Signatures (potential and position structure and leaf types) that passed
#: :meth:`Potential.check`.
_PASSED = PassedChecks(128)


def check_position(pot: Potential, position: ArrayTree, name: str = "init") -> None:
    """``pot.check(position, name=name)``, skipped when a potential with the same
    function, static fields and leaf types passed it on a position of the same
    structure and types (tracing the log density costs milliseconds per call)."""
    _PASSED.run(lambda: abstract_signature(pot, position),
                lambda: pot.check(position, name=name))
