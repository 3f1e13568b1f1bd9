"""Shared pieces of the ebm_ppl benchmarks: targets, timers, ESS and memory helpers.

The benchmarks are scripts, not part of the library: they import ``ebm_ppl`` only through
its public API and write plain ``dict`` records that :mod:`benchmarks.run` turns into
JSON and a Markdown table.
"""

from __future__ import annotations

import gc
import math
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Target",
    "targets",
    "Timer",
    "timed",
    "best_of",
    "block",
    "ess_min",
    "maxrss_mib",
    "nbytes",
    "platform_info",
    "CompileCounter",
]

#: Seed of everything random in the benchmarks (targets' MLP weights, initial states).
SEED = 20240607


@dataclass(frozen=True)
class Target:
    """A benchmark target: an energy plus per-algorithm step sizes tuned by hand.

    Attributes
    ----------
    name
        Short name used in the tables.
    dim
        Dimension of the position (a flat vector).
    energy_fn
        ``E(x) -> scalar``; the target is ``p(x) ∝ exp(-E(x))``.
    spec
        Plain NumPy description (``kind`` and arrays) so that other frameworks (PyTorch)
        can rebuild the same energy.
    step_sizes
        Step size per algorithm (``"ula"``, ``"mala"``, ``"hmc"``, ``"nuts"``) and the
        proposal scale of random-walk MH (``"rwmh"``). Chosen for stability, not
        optimality: every implementation uses the same values, so ratios are fair.
    ess_dims
        Coordinates on which ESS is computed (the slowest and fastest mixing ones).
    """

    name: str
    dim: int
    energy_fn: Callable[[jax.Array], jax.Array]
    step_sizes: dict[str, float] = field(default_factory=dict)
    ess_dims: tuple[int, ...] = (0,)
    spec: dict[str, Any] = field(default_factory=dict)

    def logdensity_fn(self, x: jax.Array) -> jax.Array:
        """``log p(x) = -E(x)`` (BlackJAX sign)."""
        return -self.energy_fn(x)

    def init_positions(self, num_chains: int) -> jax.Array:
        """``num_chains`` starting points from ``N(0, I)`` (same for every implementation)."""
        key = jax.random.key(SEED)
        return jax.random.normal(key, (num_chains, self.dim))


def _gaussian_2d() -> Target:
    def energy_fn(x: jax.Array) -> jax.Array:
        return 0.5 * jnp.sum(x**2)

    return Target(
        "gauss2d", 2, energy_fn,
        {"ula": 0.1, "mala": 0.8, "hmc": 0.2, "nuts": 0.5, "rwmh": 1.7},
        ess_dims=(0, 1), spec={"kind": "gauss", "precision": np.ones(2, np.float32)},
    )


def _gaussian_50d() -> Target:
    # Diagonal covariance with eigenvalues log-spaced in [1e-2, 1]: condition number 100.
    # Precision eigenvalues are 1..100, so ULA is stable for h < 2/100 and leapfrog for
    # eps < 2/sqrt(100) = 0.2; the step sizes below sit well inside both limits.
    dim = 50
    precision = 1.0 / jnp.logspace(-2.0, 0.0, dim)

    def energy_fn(x: jax.Array) -> jax.Array:
        return 0.5 * jnp.sum(precision * x**2)

    return Target(
        "gauss50-ill", dim, energy_fn,
        {"ula": 0.004, "mala": 0.004, "hmc": 0.05, "nuts": 0.1, "rwmh": 0.03},
        ess_dims=(0, dim // 2, dim - 1),
        spec={"kind": "gauss", "precision": np.asarray(precision)},
    )


def _mlp(width: int = 128) -> Target:
    # 2 -> 128 -> 128 -> 1 MLP with tanh hidden layers and a softplus output, random
    # (Glorot-like) init. A tanh network is bounded, so exp(-E) alone would not be
    # normalisable on R^2: a confining quadratic 0.5 |x|^2 / 2^2 (a N(0, 4 I) base) is
    # added, as in most 2-D toy EBMs.
    keys = jax.random.split(jax.random.key(SEED), 3)
    sizes = [(2, width), (width, width), (width, 1)]
    params = [
        (jax.random.normal(k, (m, n)) * jnp.sqrt(1.0 / m), jnp.zeros(n))
        for k, (m, n) in zip(keys, sizes)
    ]

    def energy_fn(x: jax.Array) -> jax.Array:
        h = x
        for w, b in params[:-1]:
            h = jnp.tanh(h @ w + b)
        w, b = params[-1]
        out = jax.nn.softplus(h @ w + b)[0]
        return 3.0 * out + 0.125 * jnp.sum(x**2)

    return Target(
        "mlp-128", 2, energy_fn,
        {"ula": 0.05, "mala": 0.3, "hmc": 0.2, "nuts": 0.5, "rwmh": 2.0},
        ess_dims=(0, 1),
        spec={"kind": "mlp", "params": [(np.asarray(w), np.asarray(b)) for w, b in params]},
    )


def targets() -> list[Target]:
    """The three benchmark targets: 2-D Gaussian, 50-D ill-conditioned Gaussian, MLP EBM."""
    return [_gaussian_2d(), _gaussian_50d(), _mlp()]


# ---------------------------------------------------------------------- timing
_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
_CACHE_HIT = "/jax/compilation_cache/cache_hits"


class CompileCounter:
    """Counts XLA backend compilations (and persistent-cache hits) while active.

    ``jax.monitoring`` listeners cannot be removed one by one, so one module-level
    counter is registered once and read as deltas.
    """

    _registered = False
    compiles = 0
    compile_seconds = 0.0
    cache_hits = 0

    @classmethod
    def install(cls) -> None:
        """Register the listeners (idempotent)."""
        if cls._registered:
            return

        def on_duration(event: str, duration: float, **_: Any) -> None:
            if event == _BACKEND_COMPILE:
                cls.compiles += 1
                cls.compile_seconds += duration

        def on_event(event: str, **_: Any) -> None:
            if event == _CACHE_HIT:
                cls.cache_hits += 1

        jax.monitoring.register_event_duration_secs_listener(on_duration)
        jax.monitoring.register_event_listener(on_event)
        cls._registered = True

    @classmethod
    def snapshot(cls) -> tuple[int, float, int]:
        """``(compiles, compile_seconds, cache_hits)`` so far."""
        return cls.compiles, cls.compile_seconds, cls.cache_hits


def block(tree: Any) -> Any:
    """Wait for every array of ``tree`` and copy it to host (NumPy) memory."""
    return jax.tree.map(lambda a: np.asarray(a) if isinstance(a, jax.Array) else a, tree)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` (wall clock, ``perf_counter``)."""

    def __enter__(self) -> Timer:
        gc.collect()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``fn()``, block on its result, return ``(result, seconds)``."""
    with Timer() as t:
        out = block(fn())
    return out, t.seconds


def best_of(fn: Callable[[int], Any], repeats: int, start: int = 1,
            min_seconds: float = 0.0, max_repeats: int = 10) -> tuple[Any, float]:
    """Call ``fn(seed)`` for seeds from ``start``; ``(last result, min seconds)``.

    At least ``repeats`` calls; more (up to ``max_repeats``) while their total time is
    below ``min_seconds``, so that short runs get enough samples of their minimum.
    The minimum is the usual estimator of steady-state cost: noise (other processes,
    garbage collection) only ever adds time.
    """
    best, out, total, count = math.inf, None, 0.0, 0
    seed = start
    while count < repeats or (total < min_seconds and count < max_repeats):
        out, seconds = timed(lambda seed=seed: fn(seed))
        best = min(best, seconds)
        total += seconds
        count += 1
        seed += 1
    return out, best


# ---------------------------------------------------------------------- statistics
def ess_min(draws: np.ndarray, dims: tuple[int, ...], max_chains: int = 256) -> float:
    """Smallest bulk ESS (ArviZ) over ``dims`` of ``draws`` shaped ``(chain, draw, dim)``.

    At most ``max_chains`` chains are used (ESS scales linearly with the number of
    independent chains, so the result is rescaled by ``num_chains / max_chains``) to keep
    ArviZ's FFT autocorrelations cheap.
    """
    import arviz as az

    num_chains = draws.shape[0]
    used = min(num_chains, max_chains)
    values = [float(az.ess(np.asarray(draws[:used, :, d]), method="bulk")) for d in dims]
    return min(values) * num_chains / used


def maxrss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (a high-water mark)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def nbytes(tree: Any) -> int:
    """Total bytes of the arrays in ``tree``."""
    return int(sum(np.asarray(leaf).nbytes for leaf in jax.tree.leaves(tree)))


def platform_info() -> dict[str, Any]:
    """Versions and hardware the numbers were measured on."""
    import os
    import platform

    import arviz
    import blackjax
    import numpyro

    import ebm_ppl

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "ebm_ppl": ebm_ppl.__version__,
        "blackjax": blackjax.__version__,
        "numpyro": numpyro.__version__,
        "arviz": arviz.__version__,
    }
