r"""Independence Metropolis–Hastings on a two-Gaussian mixture with a far-away proposal.

Reproduces seed 002 (``shared/seeds/002_*.txt``, section 2.1.2 and its Figure 1): the
target is a mixture of two Gaussians, the proposal ("base distribution") a Gaussian
placed far from both modes, and MH with the acceptance

.. math:: \alpha = \min\Big(1, \frac{\hat P(x^*)\, q(x \mid x^*)}{\hat P(x)\, q(x^* \mid x)}\Big)
          = \min\Big(1, \frac{w(x^*)}{w(x)}\Big), \qquad w = \hat P / q,

for an independent proposal :math:`q(x^*\mid x) = q(x^*)`.

Where the seed text is wrong or incomplete
------------------------------------------
* The text is unsure whether the proposal's support must cover the target's ("im not sure
  that it is necessary"): it is necessary, and for an independence sampler the weight
  :math:`w = \hat P/q` must moreover be bounded for geometric convergence; a far-away
  proposal works here only because its scale (4) is wider than the modes.
* It then describes the acceptance as :math:`\hat P(x^*)/\hat P(x)`, "for the symmetric
  case". An independent proposal is *not* symmetric; dropping the Hastings factor
  :math:`q(x)/q(x^*)` samples :math:`\propto \hat P\, q`, which over-weights the mode
  nearer the proposal. The script runs both and shows the second one is wrong.

What this script shows
----------------------
:func:`ebm_ppl.sample` with :func:`ebm_ppl.kernels.independent` (Hastings term included)
started at the proposal's mean: acceptance rate, trace plot, histogram against the true
density, and the weight of the right mode with its ESS-based Monte-Carlo error
(z-score against the truth 0.7). The same chain without the Hastings term
(:func:`ebm_ppl.kernels.mh` with a proposal declared symmetric) converges to
:math:`\propto \hat P q` instead: its right-mode weight matches the quadrature value for
:math:`\hat P q` and is rejected against 0.7.

Run ``python examples/03_mh_mixture_independent.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import arviz as az  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from _common import Timer, critical_z, parse_args, save_json  # noqa: E402
from scipy import stats  # noqa: E402

import ebm_ppl  # noqa: E402

NAME = "03_mh_mixture_independent"
#: Mixture weights, means and standard deviations of the target.
WEIGHTS = np.array([0.3, 0.7])
MEANS = np.array([-2.0, 2.0])
SDS = np.array([0.5, 0.8])
#: The far-away Gaussian proposal ("base distribution"): mean and scale.
PROPOSAL_MEAN, PROPOSAL_SD = 8.0, 4.0


def mixture_logdensity(x: jax.Array) -> jax.Array:
    """Normalised log density of the two-Gaussian mixture at ``x`` of shape ``(1,)``."""
    comps = jnp.log(jnp.asarray(WEIGHTS)) + jax.scipy.stats.norm.logpdf(
        x[0], jnp.asarray(MEANS), jnp.asarray(SDS))
    return jax.scipy.special.logsumexp(comps)


def mixture_pdf(x: np.ndarray) -> np.ndarray:
    """The target density on a grid."""
    return sum(w * stats.norm.pdf(x, m, s) for w, m, s in zip(WEIGHTS, MEANS, SDS))


def _no_hastings_sample(rng_key: jax.Array, position: jax.Array, distribution: Any) -> jax.Array:
    return jnp.reshape(distribution.sample(rng_key), jnp.shape(position))


def weight_with_error(draws: np.ndarray) -> tuple[float, float]:
    """Fraction of draws in the right mode (x > 0) and its ESS-based Monte-Carlo error."""
    indicator = (draws > 0).astype(float)
    mean = float(indicator.mean())
    mcse = float(az.mcse(az.convert_to_dataset({"w": indicator}), method="mean")["w"])
    return mean, mcse


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the example; returns acceptance rates and right-mode weights with z-scores."""
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    num_samples = 5_000 if args.quick else 50_000
    pot = ebm_ppl.Potential.from_logdensity(mixture_logdensity)
    proposal = dist.Normal(jnp.full(1, PROPOSAL_MEAN), PROPOSAL_SD).to_event(1)
    correct = ebm_ppl.kernels.independent(proposal)
    wrong = ebm_ppl.kernels.mh(ebm_ppl.kernels.Proposal(
        sample_fn=_no_hastings_sample, params=proposal, symmetric=True))
    init = jnp.full(1, PROPOSAL_MEAN)
    runs = {}
    with Timer() as timer:
        for name, kernel in (("hastings", correct), ("no_hastings", wrong)):
            runs[name] = ebm_ppl.sample(pot, kernel, init, num_samples=num_samples,
                                        num_warmup=500, num_chains=4, seed=args.seed,
                                        progress=False, save_warmup=True)
    # the density the chain without Hastings term targets: p(x) q(x), by quadrature
    grid = np.linspace(-15, 30, 20001)
    pq = mixture_pdf(grid) * stats.norm.pdf(grid, PROPOSAL_MEAN, PROPOSAL_SD)
    pq_right = float(np.trapezoid(np.where(grid > 0, pq, 0), grid) / np.trapezoid(pq, grid))
    truth = float(WEIGHTS[1])
    z_crit = critical_z(3)
    results: dict[str, Any] = {"truth_right_weight": truth, "pq_right_weight": pq_right,
                               "z_critical": z_crit, "num_samples": num_samples}
    for name, idata in runs.items():
        draws = idata.posterior["x"].values[..., 0]
        weight, mcse = weight_with_error(draws)
        acc = float(idata.sample_stats["acceptance_rate"].mean())
        results[name] = {"acceptance_rate": acc, "right_weight": weight, "mcse": mcse,
                         "z_truth": (weight - truth) / mcse, "z_pq": (weight - pq_right) / mcse,
                         "mean": float(draws.mean()),
                         "rhat": float(az.rhat(idata)["x"].max())}
    exact_mean = float(WEIGHTS @ MEANS)
    print(f"target: {WEIGHTS.tolist()} x N({MEANS.tolist()}, {SDS.tolist()}^2); proposal "
          f"N({PROPOSAL_MEAN}, {PROPOSAL_SD}^2); 4 chains x {num_samples} draws "
          f"({timer.seconds:.1f} s)")
    print(f"right-mode weight: truth {truth}, under p*q {pq_right:.4f}; mean: truth "
          f"{exact_mean:.3f}; critical z {z_crit:.2f}")
    for name in runs:
        r = results[name]
        print(f"  {name:12s} acceptance {r['acceptance_rate']:.3f}  weight "
              f"{r['right_weight']:.4f} ± {r['mcse']:.4f}  z vs truth {r['z_truth']:+7.2f}  "
              f"z vs p*q {r['z_pq']:+7.2f}  mean {r['mean']:.3f}  R-hat {r['rhat']:.3f}")
    _plot(runs, pq / np.trapezoid(pq, grid), grid, args.out)
    save_json(results, args.out)
    return results


def _plot(runs: dict[str, Any], pq: np.ndarray, grid: np.ndarray, out: Any) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    shown = (grid > -6) & (grid < 22)
    ax = axes[0]
    ax.plot(grid[shown], mixture_pdf(grid[shown]), "k-", label="target mixture")
    ax.plot(grid[shown], stats.norm.pdf(grid[shown], PROPOSAL_MEAN, PROPOSAL_SD), "C1--",
            label="proposal q (far away)")
    ax.set_title("target and base distribution")
    ax.legend(fontsize=8)
    ax = axes[1]
    idata = runs["hastings"]
    warm = idata.warmup_posterior["x"].values[0, :, 0]
    draws = idata.posterior["x"].values[0, :, 0]
    trace = np.concatenate([warm, draws])[:1500]
    ax.plot(trace, lw=0.6)
    ax.axvline(len(warm), color="r", ls="--", lw=0.8, label="end of warm-up")
    ax.set_xlabel("iteration (chain 0)")
    ax.set_ylabel("x")
    ax.set_title(f"trace, acceptance {float(idata.sample_stats['acceptance_rate'].mean()):.2f}")
    ax.legend(fontsize=8)
    ax = axes[2]
    bins = np.linspace(-5, 6, 80)
    for name, color in (("hastings", "C0"), ("no_hastings", "C3")):
        x = runs[name].posterior["x"].values.ravel()
        ax.hist(x, bins=bins, density=True, histtype="step", color=color, lw=1.5,
                label=f"MH, {name.replace('_', ' ')}")
    ax.plot(bins, mixture_pdf(bins), "k-", label="target")
    ax.plot(grid[(grid > -5) & (grid < 6)], pq[(grid > -5) & (grid < 6)], "C3:",
            label=r"$\propto p\,q$ (what no-Hastings samples)")
    ax.set_title("samples vs true density")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "mh_mixture.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
