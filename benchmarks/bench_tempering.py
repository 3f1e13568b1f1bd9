"""Parallel tempering against plain MALA and NUTS on multimodal targets (issue #29).

Targets, each started from a single point (every chain in the lightest mode):

* ``mixture4``: four 2-D Gaussians 10 apart, sd 0.5, weights 0.1/0.2/0.3/0.4;
* ``bimodal10``: two 10-D Gaussians at ±4 e_1, sd 0.5, weights 0.3/0.7.

For each sampler the table gives the mode weights it finds, their largest error against
the truth, the smallest ESS of the mode indicators (ArviZ bulk ESS) and that ESS per
1000 gradient evaluations (MALA: one per step; NUTS: its leapfrog steps; parallel
tempering: one per replica per step, warm-up included for all), with the wall time.
Run on an idle machine (the load average is printed)::

    python benchmarks/bench_tempering.py [--chains 16] [--steps 2000]
"""

from __future__ import annotations

import argparse
import os
import time

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np

import ebm_ppl
from ebm_ppl import kernels
from ebm_ppl.diagnostics import mode_weights

__all__ = ["TARGETS", "main"]


def _mixture(means: np.ndarray, weights: np.ndarray, sd: float):
    log_w = jnp.log(jnp.asarray(weights))
    mu = jnp.asarray(means)

    def energy(x):
        return -jax.scipy.special.logsumexp(log_w - 0.5 * jnp.sum((x - mu) ** 2, -1) / sd**2)

    return energy


_M4 = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
_B10 = np.zeros((2, 10))
_B10[0, 0], _B10[1, 0] = -4.0, 4.0
#: name -> (means, weights, sd)
TARGETS = {
    "mixture4": (_M4, np.array([0.1, 0.2, 0.3, 0.4]), 0.5),
    "bimodal10": (_B10, np.array([0.3, 0.7]), 0.5),
}


def _samplers() -> dict:
    base = kernels.mala(0.1)
    return {
        "mala": base,
        "nuts": kernels.nuts(0.3),
        "pt(mala), 8 temperatures": kernels.parallel_tempering(
            base, num_temperatures=8, max_temperature=100.0),
    }


def _gradients(name: str, idata, steps: int, warmup: int, chains: int) -> float:
    if name.startswith("nuts"):
        return float(np.sum(idata.sample_stats["n_steps"].values)) * (steps + warmup) / steps
    per_step = 8 if name.startswith("pt") else 1
    return float(per_step * (steps + warmup) * chains)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chains", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=500)
    args = parser.parse_args(argv)
    print(f"load average (1 min) {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; "
          f"{args.chains} chains x {args.steps} draws after {args.warmup} warm-up steps")
    print("| target | sampler | weights (truth) | max error | gradients | min ESS | "
          "ESS / 1000 grads | s |")
    print("|---|---|---|---|---|---|---|---|")
    for target, (means, weights, sd) in TARGETS.items():
        pot = ebm_ppl.Potential.from_energy(_mixture(means, weights, sd),
                                            example=jnp.zeros(means.shape[1]))
        start = jnp.asarray(means[np.argmin(weights)])
        for name, kernel in _samplers().items():
            began = time.perf_counter()
            idata = ebm_ppl.sample(pot, kernel, start, num_samples=args.steps,
                                   num_warmup=args.warmup, num_chains=args.chains, seed=0,
                                   progress=False, check_target=False)
            seconds = time.perf_counter() - began
            found = mode_weights(idata, centers=means, expected=weights)
            labels = np.argmin(((idata.posterior["x"].values[..., None, :] - means) ** 2)
                               .sum(-1), axis=-1)
            indicators = [(labels == k).astype(float) for k in range(len(weights))]
            # a mode never visited (or never left) carries no information on the weights:
            # its ESS is 0, not ArviZ's answer for a constant series
            ess = min(float(az.ess(ind, method="bulk")) if np.ptp(ind) > 0 else 0.0
                      for ind in indicators)
            ess = 0.0 if not np.isfinite(ess) else ess
            grads = _gradients(name, idata, args.steps, args.warmup, args.chains)
            print(f"| {target} | {name} | {np.round(found.weights, 3).tolist()} "
                  f"({weights.tolist()}) | {np.max(np.abs(found.weights - weights)):.3f} | "
                  f"{grads:,.0f} | {ess:.0f} | {1000 * ess / grads:.3f} | {seconds:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
