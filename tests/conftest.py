"""Shared helpers of the statistical tests (Monte-Carlo z-checks, compile counting).

The statistical tests follow STYLE.md: a fixed integer seed per test, one key split into
named subkeys, and tolerances from the Monte-Carlo standard error:
``z = |estimate - truth| / mcse`` must not exceed ``norm.ppf(1 - alpha / (2 k))`` with
``alpha = 1e-3`` and ``k`` the number of checks of the test (Bonferroni).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import jax
import jax.monitoring as monitoring
import jax.numpy as jnp
import numpy as np
from scipy import stats

from ebm_ppl import kernels

__all__ = [
    "ALPHA",
    "critical_z",
    "z_scores",
    "assert_z",
    "iid_mean_checks",
    "count_compiles",
    "run_chains",
    "gaussian_ula_covariance",
    "correlated_gaussian_draws",
]

#: Family-wise false-alarm probability of every statistical test.
ALPHA = 1e-3


def critical_z(k: int, alpha: float = ALPHA) -> float:
    """Two-sided Bonferroni critical value ``norm.ppf(1 - alpha / (2 k))``."""
    return float(stats.norm.ppf(1.0 - alpha / (2.0 * k)))


def z_scores(estimates: Sequence[float], truths: Sequence[float], mcses: Sequence[float]):
    """``|estimate - truth| / mcse`` element-wise (NumPy float64)."""
    est, tru, se = (np.asarray(a, dtype=np.float64).ravel() for a in (estimates, truths, mcses))
    return np.abs(est - tru) / se


def assert_z(estimates, truths, mcses, labels: Sequence[str], k: int | None = None) -> np.ndarray:
    """Fail if any z-score exceeds the Bonferroni critical value for ``k`` checks.

    ``k`` defaults to the number of estimates. Returns the z-scores.
    """
    z = z_scores(estimates, truths, mcses)
    k = len(z) if k is None else k
    crit = critical_z(k)
    bad = {lab: round(float(v), 2) for lab, v in zip(labels, z) if not v <= crit}
    assert not bad, f"z-scores above {crit:.2f} (k={k}): {bad}; all: {np.round(z, 2)}"
    return z


def iid_mean_checks(samples: np.ndarray, mu: np.ndarray, cov: np.ndarray):
    """Estimates, truths, standard errors and labels for i.i.d. draws ``(n, d)``.

    Checks every mean ``E[x_i] = mu_i`` and every covariance entry ``i <= j``
    ``E[(x_i - mu_i)(x_j - mu_j)] = cov_ij`` (centred at the true mean, so each estimate is
    a plain average with standard error ``sd / sqrt(n)``).
    """
    x = np.asarray(samples, dtype=np.float64)
    n, d = x.shape
    centred = x - np.asarray(mu)
    est, tru, se, lab = [], [], [], []
    for i in range(d):
        est.append(x[:, i].mean())
        tru.append(mu[i])
        se.append(x[:, i].std(ddof=1) / np.sqrt(n))
        lab.append(f"mean[{i}]")
    for i in range(d):
        for j in range(i, d):
            prod = centred[:, i] * centred[:, j]
            est.append(prod.mean())
            tru.append(cov[i, j])
            se.append(prod.std(ddof=1) / np.sqrt(n))
            lab.append(f"cov[{i},{j}]")
    return np.array(est), np.array(tru), np.array(se), lab


def gaussian_ula_covariance(hessian: np.ndarray, step_size: float, temperature: float = 1.0):
    """Stationary covariance of ULA on ``E = (x-mu)^T H (x-mu) / 2`` (seed 000).

    ``T V diag(2 / (lambda (2 - eta lambda))) V^T`` with ``H = V diag(lambda) V^T``.
    """
    lam, vec = np.linalg.eigh(np.asarray(hessian, dtype=np.float64))
    assert np.all(step_size * lam < 2), "ULA is unstable for step_size >= 2 / lambda_max"
    return temperature * (vec * (2.0 / (lam * (2.0 - step_size * lam)))) @ vec.T


def _run_chains(kernel, positions, rng_key, logdensity_fn, num_steps):
    return kernels.run_chains(kernel, logdensity_fn, positions,
                              jax.random.split(rng_key, num_steps))


#: Compiled once per (kernel type, log density, shapes, num_steps): the kernel is a pytree
#: argument, so its hyper-parameters are traced.
_run_chains_jit = jax.jit(_run_chains, static_argnames=("logdensity_fn", "num_steps"))


def run_chains(kernel, logdensity_fn, positions, rng_key, num_steps: int):
    """``ebm_ppl.kernels.run_chains`` for ``num_steps`` steps, compiled: the key of step
    ``t`` is ``split(rng_key, num_steps)[t]``, split again into one key per chain.

    Returns the final states and the stacked infos ``(num_steps, num_chains, ...)``.
    """
    return _run_chains_jit(
        kernel, positions, rng_key, logdensity_fn=logdensity_fn, num_steps=num_steps
    )


@contextlib.contextmanager
def count_compiles() -> Iterator[list[str]]:
    """Collect the names of the XLA computations compiled inside the block."""
    names: list[str] = []

    def listener(event: str, duration: float, **kwargs) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            names.append(str(kwargs.get("fun_name", "?")))

    monitoring.register_event_duration_secs_listener(listener)
    try:
        yield names
    finally:
        monitoring.unregister_event_duration_listener(listener)


def correlated_gaussian_draws(rng_key, mu, cov, n: int) -> jax.Array:
    """``n`` exact draws of ``N(mu, cov)`` as float32."""
    chol = jnp.linalg.cholesky(jnp.asarray(cov, jnp.float32))
    z = jax.random.normal(rng_key, (n, len(mu)))
    return jnp.asarray(mu, jnp.float32) + z @ chol.T


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """``ebm_ppl.cli.main(argv)`` in-process: (exit code, stdout, stderr); argparse exits
    count too."""
    from ebm_ppl.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err
