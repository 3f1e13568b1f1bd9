r"""The five training objectives of seed 002's Table 1 on one data set and one energy.

Reproduces seed 002 (``shared/seeds/002_*.txt``, section 3 and Table 1): maximum
likelihood with MCMC negatives (contrastive divergence, CD), score matching (SM),
denoising score matching (DSM), sliced score matching (SSM) and noise-contrastive
estimation (NCE, :math:`\log Z` learned as a parameter), all training the same
:func:`ebm_ppl.nn.mlp_energy` on two moons with :func:`ebm_ppl.fit`.

Where the seed text is wrong or imprecise
-----------------------------------------
* Signs: with :math:`p \propto e^{-E}` the score is :math:`-\nabla E`; denoising score
  matching is :math:`\tfrac12\mathbb E\|\nabla_x E(x + \sigma z) - z/\sigma\|^2` (the
  model score :math:`-\nabla E` matched to :math:`-z/\sigma`), and score matching is
  :math:`\mathbb E[\tfrac12\|\nabla E\|^2 - \operatorname{tr}\nabla^2 E]` (the Hessian
  term enters with a minus sign in energy form, a plus sign in score form).
* DSM does not learn the data score but the score of the *noised* data
  :math:`p_\text{data} * \mathcal N(0,\sigma^2 I)`; samples from a DSM energy are
  blurred by :math:`\sigma`.
* The table presents the objectives as interchangeable. They are not: the score-based
  ones (SM, DSM, SSM) only see local gradients and are nearly blind to the relative
  mass of well-separated regions (Wenliang & Kanagawa 2020). On two moons, in one run,
  the differences between objectives are within the training noise (the minibatch
  order alone moves a cell 3–4×; ``examples/README.md``); example 09 compares them over
  seeds and data sets, where exact SM and SSM miss the mass of the rings unless the
  data are smoothed (``score_matching(sigma=...)``).
* NCE's learned :math:`\log Z` is only a consistent estimate of the energy's log
  normaliser at the optimum; the text gives no way to check it. Here it is checked
  against annealed importance sampling (:func:`ebm_ppl.diagnostics.ais_log_z`) on the
  NCE-trained energy.

What this script shows
----------------------
For each objective: wall-clock time per optimizer step (steady state, measured on a
second call after compilation), final loss (finite), and sample quality: draws of
:func:`ebm_ppl.sample` (MALA, chains started at training points) compared with held-out
data by the unbiased RBF MMD² (median-heuristic bandwidth), beside the MMD² between two
independent held-out sets (the noise floor) and between the data and a Gaussian fitted
to it (what an energy that learned nothing but the first two moments would score).
For NCE: the learned :math:`\log Z` against AIS.

Run ``python examples/06_training_objectives.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
import optax  # noqa: E402
from _common import Timer, parse_args, rbf_mmd2, save_json  # noqa: E402

import ebm_ppl  # noqa: E402

NAME = "06_training_objectives"
#: The energy: a softplus MLP plus a small confining quadratic (normalisable, for AIS).
ENERGY = ebm_ppl.nn.mlp_energy((64, 64), "softplus", quadratic=0.05)
#: DSM noise level (in standardised data units).
DSM_SIGMA = 0.1


def objectives() -> dict[str, Any]:
    """The five objectives of Table 1, with the hyper-parameters used here."""
    return {
        "CD": ebm_ppl.objectives.contrastive_divergence(
            ebm_ppl.kernels.ula(0.005), num_steps=20, persistent=True, buffer_size=2_000,
            reinit_prob=0.05, energy_regularization=0.1),
        "SM": ebm_ppl.objectives.score_matching(),
        "DSM": ebm_ppl.objectives.denoising_score_matching(DSM_SIGMA),
        "SSM": ebm_ppl.objectives.sliced_score_matching(num_projections=1,
                                                         variance_reduced=True),
        "NCE": ebm_ppl.objectives.nce(noise_ratio=4),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train with each objective; returns time per step, losses, MMD², NCE/AIS log Z."""
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    num_steps = 300 if args.quick else 3_000
    timing_steps = 50 if args.quick else 200
    n_draws = 500 if args.quick else 1_500
    data = ebm_ppl.datasets.two_moons(6_000, noise=0.1, seed=args.seed)
    train, held_out, held_out_2 = data[:4_000], data[4_000:5_000], data[5_000:6_000]
    params0 = ENERGY.init(jax.random.key(args.seed), 2)
    optimizer = optax.adam(2e-3)
    results: dict[str, Any] = {"num_steps": num_steps}
    floor = rbf_mmd2(held_out[:n_draws], held_out_2[:n_draws])
    rng = np.random.default_rng(args.seed)
    gauss = rng.multivariate_normal(train.mean(0), np.cov(train, rowvar=False), n_draws)
    gauss_mmd = rbf_mmd2(gauss, held_out[:n_draws])
    results["mmd2_floor"], results["mmd2_gaussian"] = floor, gauss_mmd
    samples = {}
    for name, objective in objectives().items():
        with Timer() as t_total:
            fit = ebm_ppl.fit(ENERGY, params0, train, objective, optimizer,
                              num_steps=num_steps, batch_size=256, seed=args.seed,
                              progress=False)
        # steady-state cost: a second, already compiled call
        with Timer() as t_step:
            ebm_ppl.fit(ENERGY, params0, train, objective, optimizer, num_steps=timing_steps,
                        batch_size=256, seed=args.seed + 1, progress=False)
        loss = np.asarray(fit.history["loss"])
        pot = ebm_ppl.Potential.from_energy(ENERGY, fit.params, example=jnp.zeros(2))
        num_chains = 100
        init = jnp.asarray(train[rng.choice(len(train), num_chains, replace=False)])
        idata = ebm_ppl.sample(pot, ebm_ppl.kernels.mala(0.01), init,
                               num_samples=n_draws // num_chains, num_warmup=300, thin=10,
                               num_chains=num_chains, seed=args.seed, progress=False)
        draws = idata.posterior["x"].values.reshape(-1, 2)
        samples[name] = draws
        results[name] = {
            "seconds_total": t_total.seconds,
            "seconds_per_step": t_step.seconds / timing_steps,
            "final_loss": float(np.mean(loss[-20:])),
            "all_losses_finite": bool(np.all(np.isfinite(loss))),
            "skipped_steps": int(np.sum(fit.history.get("skipped", 0))),
            "mmd2": rbf_mmd2(draws, held_out[:n_draws]),
            "acceptance_rate": float(idata.sample_stats["acceptance_rate"].mean()),
        }
        if name == "NCE":
            log_z_nce = float(fit.trained_params["log_z"])
            with Timer() as t_ais:
                ais = ebm_ppl.diagnostics.ais_log_z(
                    pot, dist.Normal(jnp.zeros(2), 2.0).to_event(1),
                    num_temps=100 if args.quick else 400,
                    num_chains=500 if args.quick else 2_000, step_size=0.05,
                    seed=args.seed)
            results["NCE"].update({"log_z_nce": log_z_nce, "log_z_ais": float(ais.log_z),
                                   "log_z_ais_stderr": float(ais.stderr),
                                   "ais_ess": float(ais.ess), "ais_seconds": t_ais.seconds,
                                   "log_z_difference": log_z_nce - float(ais.log_z)})
            print(f"NCE log Z = {log_z_nce:.4f};  {ais}  ({t_ais.seconds:.1f} s)")
        r = results[name]
        print(f"{name:4s} {t_total.seconds:6.1f} s total, {1e3 * r['seconds_per_step']:7.2f} "
              f"ms/step, final loss {r['final_loss']:+.4f}, MMD² {r['mmd2']:.5f}, "
              f"MALA acceptance {r['acceptance_rate']:.2f}")
    print(f"MMD² noise floor (held-out vs held-out) {floor:.5f}; Gaussian fit {gauss_mmd:.5f}")
    _plot(samples, held_out, results, args.out)
    save_json(results, args.out)
    return results


def _plot(samples: dict[str, np.ndarray], held_out: np.ndarray, results: dict[str, Any],
          out: Any) -> None:
    fig, axes = plt.subplots(1, 6, figsize=(21, 4.4), sharex=True, sharey=True)
    axes[0].plot(held_out[:, 0], held_out[:, 1], ".", ms=2)
    axes[0].set_title("held-out data")
    for ax, (name, draws) in zip(axes[1:], samples.items()):
        ax.plot(draws[:, 0], draws[:, 1], ".", ms=2, color="C1")
        title = f"{name}: MMD² {results[name]['mmd2']:.4f}"
        if name == "NCE":
            title += (f"\nlog Z NCE {results[name]['log_z_nce']:.3f}, "
                      f"AIS {results[name]['log_z_ais']:.3f}")
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.set_xlim(-2.5, 2.5)
        ax.set_ylim(-2.5, 2.5)
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(out / "objectives_samples.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
