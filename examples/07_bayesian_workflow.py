r"""A learned energy as a prior in a NumPyro model, sampled three ways, checked with ArviZ.

Not tied to one seed formula: this is the workflow the seeds motivate (an EBM is an
unnormalised density; MCMC needs only :math:`-\nabla E`), done inside the JAX PPL stack.

1. Learn a 2-D prior energy :math:`E_\theta(w)` with denoising score matching
   (:func:`ebm_ppl.objectives.denoising_score_matching`, :func:`ebm_ppl.fit`) from draws
   of a banana-shaped prior belief about regression coefficients.
2. Use it as the prior of a Bayesian linear regression,
   ``w ~ EnergyDistribution(E_theta)``, ``y ~ Normal(w0 + w1 t, sigma)``
   (:class:`ebm_ppl.numpyro.EnergyDistribution`; its ``log_prob`` is :math:`-E_\theta`, the
   unknown :math:`\log Z_\theta` is a constant that MCMC never needs).
3. Sample the posterior with (a) NumPyro's own NUTS, (b) BlackJAX NUTS through
   ``numpyro.infer.MCMC`` (:class:`ebm_ppl.numpyro.BlackJAXKernel`), and (c)
   :func:`ebm_ppl.sample` on :meth:`ebm_ppl.Potential.from_model` with
   :func:`ebm_ppl.kernels.nuts`.
4. Diagnose each with ArviZ (``az.summary``: R-hat, ESS, MCSE) and compare the posterior
   means with each other and with a quadrature reference on a grid (possible in 2-D;
   the learned prior is fixed once trained, so the reference is exact for it).

Where the seed texts are silent
-------------------------------
The seeds sample EBMs on their own; they never combine an energy with data. The point
shown here is that the normaliser :math:`Z_\theta` cancels in the posterior (it does not
depend on :math:`w`), so any gradient-based PPL sampler works unchanged, whereas
quantities that need :math:`Z_\theta` (marginal likelihood, comparing priors) do not.

Run ``python examples/07_bayesian_workflow.py [--quick] [--out DIR]``.
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
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
import optax  # noqa: E402
from _common import Timer, critical_z, parse_args, save_json  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402

import ebm_ppl  # noqa: E402

NAME = "07_bayesian_workflow"
ENERGY = ebm_ppl.nn.mlp_energy((32, 32), "softplus", quadratic=0.1)
#: Observation noise, design points and the true coefficients of the regression.
SIGMA_Y = 0.5
T = np.linspace(-1.0, 1.0, 8)
W_TRUE = np.array([1.0, 0.0])


def prior_draws(n: int, seed: int) -> np.ndarray:
    """A banana-shaped prior belief: ``w0 ~ N(0, 1)``, ``w1 = w0^2 / 2 - 1/2 + 0.3 N(0, 1)``."""
    rng = np.random.default_rng(seed)
    w0 = rng.normal(size=n)
    return np.stack([w0, 0.5 * w0**2 - 0.5 + 0.3 * rng.normal(size=n)], axis=1)


def make_model(params: Any):
    """The regression model with the learned energy as prior on ``w``."""
    prior = ebm_ppl.numpyro.EnergyDistribution(ENERGY, params, event_shape=(2,))

    def model(t: jax.Array, y: jax.Array | None = None) -> None:
        w = numpyro.sample("w", prior)
        numpyro.sample("y", dist.Normal(w[0] + w[1] * t, SIGMA_Y), obs=y)

    return model


def grid_posterior(params: Any, t: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Posterior mean and sd of ``w`` by quadrature on a 2-D grid."""
    g0 = np.linspace(-2.0, 4.0, 401)
    g1 = np.linspace(-3.0, 3.0, 401)
    w = jnp.asarray(np.stack(np.meshgrid(g0, g1, indexing="ij"), -1).reshape(-1, 2))
    energy = jax.vmap(lambda x: ENERGY(params, x))(w)
    resid = jnp.asarray(y)[None, :] - w[:, :1] - w[:, 1:] * jnp.asarray(t)[None, :]
    log_post = -energy - 0.5 * jnp.sum(resid**2, axis=1) / SIGMA_Y**2
    prob = np.array(jnp.exp(log_post - log_post.max()), dtype=float)
    prob /= prob.sum()
    wn = np.asarray(w)
    mean = prob @ wn
    sd = np.sqrt(prob @ (wn - mean) ** 2)
    return {"mean": mean, "sd": sd, "grid": (g0, g1), "prob": prob.reshape(401, 401)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the workflow; returns posterior means, R-hats and z-scores of the three routes."""
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    num_samples = 500 if args.quick else 3_000
    num_warmup = 300 if args.quick else 1_000
    num_chains = 4
    with Timer() as t_fit:
        fit = ebm_ppl.fit(ENERGY, ENERGY.init(jax.random.key(args.seed), 2),
                          prior_draws(4_000, args.seed),
                          ebm_ppl.objectives.denoising_score_matching(0.1), optax.adam(3e-3),
                          num_steps=400 if args.quick else 3_000, batch_size=256,
                          seed=args.seed, progress=False)
    params = fit.params
    rng = np.random.default_rng(args.seed + 1)
    y = W_TRUE[0] + W_TRUE[1] * T + SIGMA_Y * rng.normal(size=T.size)
    model = make_model(params)
    t, yj = jnp.asarray(T), jnp.asarray(y)
    key = jax.random.key(args.seed)
    runs, seconds = {}, {}

    with Timer() as timer:
        mcmc = MCMC(NUTS(model), num_warmup=num_warmup, num_samples=num_samples,
                    num_chains=num_chains, chain_method="vectorized", progress_bar=False)
        mcmc.run(jax.random.fold_in(key, 1), t, yj)
        runs["numpyro NUTS"] = az.from_numpyro(mcmc)
    seconds["numpyro NUTS"] = timer.seconds
    with Timer() as timer:
        mcmc_bj = MCMC(ebm_ppl.numpyro.BlackJAXKernel("nuts", model), num_warmup=num_warmup,
                       num_samples=num_samples, num_chains=num_chains,
                       chain_method="vectorized", progress_bar=False)
        mcmc_bj.run(jax.random.fold_in(key, 2), t, yj)
        runs["BlackJAXKernel(nuts) in MCMC"] = az.from_numpyro(mcmc_bj)
    seconds["BlackJAXKernel(nuts) in MCMC"] = timer.seconds
    with Timer() as timer:
        pot = ebm_ppl.Potential.from_model(model, t, yj)
        runs["ebm_ppl.sample(nuts)"] = ebm_ppl.sample(
            pot, ebm_ppl.kernels.nuts(0.1), None, num_samples=num_samples,
            num_warmup=num_warmup, num_chains=num_chains, seed=args.seed + 3, progress=False)
    seconds["ebm_ppl.sample(nuts)"] = timer.seconds

    reference = grid_posterior(params, T, y)
    k = 2 * len(runs) + 2 * 3  # each route vs the grid, and the three pairs
    z_crit = critical_z(k)
    results: dict[str, Any] = {"grid_mean": reference["mean"], "grid_sd": reference["sd"],
                               "z_critical": z_crit, "fit_seconds": t_fit.seconds,
                               "dsm_final_loss": float(np.mean(fit.history["loss"][-20:]))}
    print(f"DSM prior trained in {t_fit.seconds:.1f} s; data y = {np.round(y, 3).tolist()}")
    print(f"grid posterior: mean {np.round(reference['mean'], 4).tolist()}, "
          f"sd {np.round(reference['sd'], 4).tolist()}; critical z (k={k}) {z_crit:.2f}")
    means, mcses = {}, {}
    for name, idata in runs.items():
        summ = az.summary(idata, var_names=["w"], round_to="none")
        mean = summ["mean"].to_numpy()
        mcse = summ["mcse_mean"].to_numpy()
        means[name], mcses[name] = mean, mcse
        results[name] = {
            "mean": mean, "mcse": mcse, "sd": summ["sd"].to_numpy(),
            "rhat_max": float(summ["r_hat"].max()), "ess_bulk_min": float(summ["ess_bulk"].min()),
            "z_grid": (mean - reference["mean"]) / mcse, "seconds": seconds[name],
            "divergences": int(np.asarray(idata.sample_stats["diverging"]).sum()),
        }
        print(f"--- {name} ({seconds[name]:.1f} s)")
        print(summ.round(4).to_string())
        print(f"    z vs grid {np.round(results[name]['z_grid'], 2).tolist()}, divergences "
              f"{results[name]['divergences']}")
    names = list(runs)
    pair_z = {}
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = names[i], names[j]
            pair_z[f"{a} vs {b}"] = (means[a] - means[b]) / np.hypot(mcses[a], mcses[b])
    results["pairwise_z"] = pair_z
    for label, z in pair_z.items():
        print(f"pairwise z, {label}: {np.round(z, 2).tolist()}")
    results["max_abs_z_grid"] = float(max(np.abs(results[n]["z_grid"]).max() for n in names))
    results["max_abs_z_pairwise"] = float(max(np.abs(z).max() for z in pair_z.values()))
    results["rhat_max"] = float(max(results[n]["rhat_max"] for n in names))
    _plot(runs, reference, params, args.out)
    save_json(results, args.out)
    return results


def _plot(runs: dict[str, Any], reference: dict[str, Any], params: Any, out: Any) -> None:
    g0, g1 = reference["grid"]
    gw = jnp.asarray(np.stack(np.meshgrid(g0, g1, indexing="ij"), -1).reshape(-1, 2))
    prior = np.exp(-np.asarray(jax.vmap(lambda x: ENERGY(params, x))(gw))).reshape(401, 401)
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2), sharex=True, sharey=True)
    ax = axes[0]
    pts = prior_draws(1_000, 123)
    ax.plot(pts[:, 0], pts[:, 1], ".", ms=2, color="0.6", label="prior belief draws")
    ax.contour(g0, g1, prior.T, levels=6, colors="C0", linewidths=0.8)
    ax.contour(g0, g1, reference["prob"].T, levels=6, colors="C3", linewidths=0.8)
    ax.set_title("learned prior exp(-E) (blue), grid posterior (red)", fontsize=9)
    ax.legend(fontsize=7)
    for ax, (name, idata) in zip(axes[1:], runs.items()):
        w = idata.posterior["w"].values.reshape(-1, 2)
        ax.plot(w[:, 0], w[:, 1], ".", ms=1.5, alpha=0.4)
        ax.contour(g0, g1, reference["prob"].T, levels=6, colors="C3", linewidths=0.8)
        ax.set_title(name, fontsize=9)
    for ax in axes:
        ax.set_xlim(-2, 3)
        ax.set_ylim(-1.5, 3)
        ax.set_xlabel("w0")
    axes[0].set_ylabel("w1")
    fig.tight_layout()
    fig.savefig(out / "posterior_routes.png", dpi=110)
    plt.close(fig)
    ax = az.plot_trace(runs["ebm_ppl.sample(nuts)"], var_names=["w"])
    ax.ravel()[0].figure.savefig(out / "trace_ebm_ppl_sample.png", dpi=90)
    plt.close("all")


if __name__ == "__main__":
    main()
