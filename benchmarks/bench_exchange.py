"""Exchange algorithm (issue #15): cost per effective sample against the inner-step count.

Target: the conjugate scale family ``E_tau(x) = tau |x|^2 / 2`` on R^2, n = 100
observations, ``tau ~ Gamma(2, 1)``; the exact posterior is
``Gamma(a + n d / 2, b + sum |x_i|^2 / 2)``. For each inner-step count K (and for exact
auxiliary draws) one :func:`ebm_ppl.sample` run of ``kernels.exchange`` (8 chains) is
timed after a compile run of the same shapes, and reported with

* ``ess``: bulk ESS of tau (ArviZ), ``us_per_ess``: sampling wall time per effective draw;
* ``sd_ratio``: posterior sd / exact sd (the inner-MCMC bias inflates it towards the
  prior's), ``z_mean``: |mean - exact| / MCSE;
* ``inner_acceptance``: mean acceptance of the inner MALA chains.

Cost grows linearly in K (n K gradient evaluations per transition) while the bias falls:
the table shows where more inner steps stop paying.

Usage: ``python benchmarks/bench_exchange.py [--quick]``; ``run(quick)`` for ``run.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SEED, Timer, platform_info  # noqa: E402

import ebm_ppl  # noqa: E402
from ebm_ppl import kernels  # noqa: E402

A, B, D = 2.0, 1.0, 2


def _energy(tau, x):
    return 0.5 * tau * jnp.sum(x**2)


def _log_prior(tau):
    return jnp.where(tau > 0, dist.Gamma(A, B).log_prob(jnp.abs(tau)), -jnp.inf)


def _exact(rng_key, tau):
    return jax.random.normal(rng_key, (D,)) / jnp.sqrt(tau)


def bench_one(pot, data, exact, steps, num_samples, num_chains):
    """One row: ``steps=None`` means exact auxiliary draws."""
    kernel = (kernels.exchange(_energy, data, 0.3, exact_sampler=_exact) if steps is None
              else kernels.exchange(_energy, data, 0.3, inner_steps=steps))
    kwargs = dict(num_warmup=300, num_chains=num_chains, progress=False)
    ebm_ppl.sample(pot, kernel, jnp.asarray(1.5), num_samples=num_samples, seed=0, **kwargs)
    with Timer() as t:  # compiled: same shapes, new seed
        idata = ebm_ppl.sample(pot, kernel, jnp.asarray(1.5), num_samples=num_samples,
                               seed=1, **kwargs)
    draws = idata.posterior["x"].values.astype(np.float64)
    ess = float(az.ess(draws))
    mcse = draws.std(ddof=1) / np.sqrt(ess)
    inner = 1.0
    if steps is not None:
        auxiliary = kernel.parameters["auxiliary"]
        thetas = jnp.asarray(draws.reshape(-1)[:: max(1, draws.size // 64)])
        keys = jax.random.split(jax.random.key(2), thetas.shape[0])
        inner = float(jnp.mean(jax.vmap(
            lambda k, t: auxiliary.draw_fn(k, t, auxiliary.params)[1])(keys, thetas)))
    return {
        "inner_steps": "exact" if steps is None else steps,
        "wall_s": t.seconds, "ess": ess,
        "us_per_ess": 1e6 * t.seconds / ess,
        "mean": float(draws.mean()), "z_mean": float(abs(draws.mean() - exact["mean"]) / mcse),
        "sd_ratio": float(draws.std() / exact["sd"]),
        "acceptance": float(idata.sample_stats["acceptance_rate"].mean()),
        "inner_acceptance": inner,
    }


def run(quick: bool = False, log=print) -> list[dict]:
    n = 100
    data = jax.random.normal(jax.random.key(SEED), (n, D)) / np.sqrt(2.0)
    post_a, post_b = A + n * D / 2, B + float(jnp.sum(data**2)) / 2
    exact = {"mean": post_a / post_b, "sd": float(np.sqrt(post_a)) / post_b}
    pot = ebm_ppl.Potential.from_energy_family(_energy, data, _log_prior)
    steps_list = (None, 1, 5, 20) if quick else (None, 1, 2, 5, 10, 20, 40)
    num_samples = 500 if quick else 2000
    rows = []
    for steps in steps_list:
        row = bench_one(pot, data, exact, steps, num_samples, num_chains=8)
        log(f"[exchange] K={row['inner_steps']}: {row['us_per_ess']:.0f} us/ESS, "
            f"sd ratio {row['sd_ratio']:.2f}, z(mean) {row['z_mean']:.1f}")
        rows.append({"benchmark": "exchange", **row})
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rows = run(args.quick)
    print("| inner steps | us / ESS | ESS | sd / exact sd | z(mean) | accept | inner accept |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['inner_steps']} | {r['us_per_ess']:.0f} | {r['ess']:.0f} | "
              f"{r['sd_ratio']:.3f} | {r['z_mean']:.1f} | {r['acceptance']:.2f} | "
              f"{r['inner_acceptance']:.2f} |")
    out = {"platform": platform_info(), "rows": rows}
    print(json.dumps(out["platform"]))
    return out


if __name__ == "__main__":
    main()
