r"""Random-walk Metropolis–Hastings versus HMC on a Rosenbrock ("banana") density.

Reproduces seed 002 (``shared/seeds/002_*.txt``, section 2.1.3 and its Figure 3): MH and
Hamiltonian Monte Carlo (leapfrog + Metropolis correction) side by side on the
Rosenbrock density

.. math:: U(x, y) = \tfrac12 (x - 1)^2 + \tfrac{b}{2} (y - x^2)^2, \qquad b = 10,

i.e. :math:`x \sim \mathcal N(1, 1)`, :math:`y \mid x \sim \mathcal N(x^2, 1/b)`, whose
moments are exact: :math:`\mathbb E x = 1`, :math:`\mathbb E y = 2`,
:math:`\operatorname{Var} y = 6 + 1/b`.

Where the seed text is wrong or incomplete
------------------------------------------
* It compares the samplers by eye ("HMC warms up quite faster (only one step) ... gives
  more accurate samples"). A fair comparison counts cost: one HMC transition costs
  ``num_integration_steps`` gradient evaluations, one MH transition one density
  evaluation. Here both are compared by bulk ESS per evaluation, and both are checked
  for correctness against the exact moments (MH is not *inaccurate*, only slower: its
  estimates carry a larger Monte-Carlo error).
* Its HMC acceptance :math:`\min(1, \hat P(X',p')/\hat P(X,p))` is right only with the
  momentum flip in the proposal (leapfrog is reversible only then); BlackJAX's HMC used
  here does it.

What this script shows
----------------------
:func:`ebm_ppl.sample` with :func:`ebm_ppl.kernels.random_walk` (scale adapted towards
acceptance 0.234) and :func:`ebm_ppl.kernels.hmc` (Stan window adaptation): acceptance,
bulk ESS (ArviZ), ESS per density/gradient evaluation and per second, z-scores of the
posterior means against the exact values, trace and scatter plots.

Run ``python examples/04_mh_vs_hmc_rosenbrock.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import arviz as az  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _common import Timer, critical_z, parse_args, save_json  # noqa: E402

import ebm_ppl  # noqa: E402

NAME = "04_mh_vs_hmc_rosenbrock"
#: Curvature of the banana: y | x has variance 1 / B.
B = 10.0
#: Leapfrog steps per HMC transition (= gradient evaluations per transition).
NUM_LEAPFROG = 10
EXACT_MEAN = np.array([1.0, 2.0])


def rosenbrock_energy(z: jnp.ndarray) -> jnp.ndarray:
    """``U(x, y) = (x - 1)^2 / 2 + B (y - x^2)^2 / 2``."""
    x, y = z[0], z[1]
    return 0.5 * (x - 1.0) ** 2 + 0.5 * B * (y - x**2) ** 2


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the example; returns ESS per evaluation and mean z-scores for both samplers."""
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    pot = ebm_ppl.Potential.from_energy(rosenbrock_energy, example=jnp.zeros(2))
    init = jnp.array([-1.0, 3.0])
    settings = {
        "mh": (ebm_ppl.kernels.random_walk(0.5), 4_000 if args.quick else 40_000, 1),
        "hmc": (ebm_ppl.kernels.hmc(0.1, NUM_LEAPFROG), 500 if args.quick else 4_000,
                NUM_LEAPFROG),
    }
    z_crit = critical_z(4)
    results: dict[str, Any] = {"z_critical": z_crit}
    runs = {}
    for name, (kernel, num_samples, evals_per_step) in settings.items():
        with Timer() as timer:
            idata = ebm_ppl.sample(pot, kernel, init, num_samples=num_samples,
                                   num_warmup=1_000, num_chains=4, seed=args.seed,
                                   progress=False)
        runs[name] = idata
        x = idata.posterior["x"]
        ess = az.ess(idata, method="bulk")["x"].values
        mcse = az.mcse(idata, method="mean")["x"].values
        mean = x.mean(("chain", "draw")).values
        evals = 4 * num_samples * evals_per_step
        results[name] = {
            "num_samples": num_samples, "evaluations": evals,
            "acceptance_rate": float(idata.sample_stats["acceptance_rate"].mean()),
            "ess_bulk": ess, "min_ess_bulk": float(ess.min()),
            "ess_per_evaluation": float(ess.min() / evals),
            "ess_per_second": float(ess.min() / timer.seconds), "seconds": timer.seconds,
            "mean": mean, "mcse": mcse, "z_mean": (mean - EXACT_MEAN) / mcse,
            "rhat": float(az.rhat(idata)["x"].max()),
        }
    ratio = results["hmc"]["ess_per_evaluation"] / results["mh"]["ess_per_evaluation"]
    results["hmc_over_mh_ess_per_evaluation"] = ratio
    print(f"Rosenbrock U = (x-1)^2/2 + {B:g}(y-x^2)^2/2; exact mean {EXACT_MEAN.tolist()}; "
          f"critical z {z_crit:.2f}")
    print(f"{'':4s} {'draws':>6s} {'evals':>8s} {'accept':>6s} {'min ESS':>8s} {'ESS/eval':>9s} "
          f"{'ESS/s':>7s} {'mean x, y':>16s} {'z x, y':>14s} {'R-hat':>6s}")
    for name in settings:
        r = results[name]
        print(f"{name:4s} {4 * r['num_samples']:6d} {r['evaluations']:8d} "
              f"{r['acceptance_rate']:6.3f} {r['min_ess_bulk']:8.0f} "
              f"{r['ess_per_evaluation']:9.5f} {r['ess_per_second']:7.0f} "
              f"{r['mean'][0]:7.3f},{r['mean'][1]:7.3f} "
              f"{r['z_mean'][0]:+6.2f},{r['z_mean'][1]:+6.2f} {r['rhat']:6.3f}")
    print("(MH: ESS per density evaluation; HMC: per gradient evaluation, "
          f"{NUM_LEAPFROG} per transition). HMC/MH ESS per evaluation: {ratio:.2f}")
    _plot(runs, args.out)
    save_json(results, args.out)
    return results


def _plot(runs: dict[str, Any], out: Any) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    xs = np.linspace(-3, 5, 300)
    ys = np.linspace(-2, 16, 300)
    gx, gy = np.meshgrid(xs, ys)
    u = 0.5 * (gx - 1) ** 2 + 0.5 * B * (gy - gx**2) ** 2
    for j, name in enumerate(("mh", "hmc")):
        draws = runs[name].posterior["x"].values
        ax = axes[0, j]
        ax.contour(gx, gy, np.exp(-u), levels=6, colors="k", linewidths=0.6)
        pts = draws[0, :2000]
        ax.plot(pts[:, 0], pts[:, 1], ".", ms=2, alpha=0.5)
        ax.set_title(f"{name.upper()} scatter (chain 0, 2000 draws)")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax = axes[1, j]
        ax.plot(draws[0, :2000, 1], lw=0.6)
        ax.set_title(f"{name.upper()} trace of y, acceptance "
                     f"{float(runs[name].sample_stats['acceptance_rate'].mean()):.2f}")
        ax.set_xlabel("draw")
    fig.tight_layout()
    fig.savefig(out / "mh_vs_hmc.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
