r"""Infer the temperature of a given energy from new data: the exchange algorithm.

An energy :math:`E_0(x)` (here a 2-D double well) is known; new data are believed to come
from its tempered law :math:`p_T(x) = e^{-E_0(x)/T} / Z(T)` at an unknown temperature
:math:`T`. The posterior :math:`p(T \mid x) \propto \pi(T) \prod_i e^{-E_0(x_i)/T} / Z(T)^n`
is *doubly intractable*: :math:`Z(T)` has no closed form and changes with :math:`T`.

1. The model ``T ~ LogNormal(0, 0.5)``, ``x ~ EnergyDistribution(E_0, temperature=T)``
   (observed) is refused by NumPyro's NUTS: :class:`ebm_ppl.IntractableNormaliserError`
   (the unnormalised ``log_prob`` would silently give a wrong posterior).
2. :class:`ebm_ppl.numpyro.Exchange` samples it (Murray et al. 2006; auxiliary data by
   inner MALA chains started from the observed data, Liang 2010), 4 chains, ArviZ
   diagnostics (R-hat, ESS, MCSE, inner acceptance).
3. The exact answer: in 2-D, :math:`\log Z(T)` is computed by grid quadrature for each
   :math:`T` of a grid, which gives :math:`p(T \mid x)` by 1-D quadrature. The exchange
   posterior mean and standard deviation must agree within Monte-Carlo error
   (z-scores, Bonferroni, :math:`\alpha = 10^{-3}`).

Run ``python examples/08_energy_parameters.py [--quick] [--out DIR] [--seed N]``.
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
from _common import Timer, critical_z, parse_args, save_json  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402

import ebm_ppl  # noqa: E402

NAME = "08_energy_parameters"
#: Temperature of the new data, and the prior LogNormal(0, 0.5) on T.
T_TRUE = 0.7
PRIOR = dist.LogNormal(0.0, 0.5)
#: Quadrature box and resolution for Z(T) (the density is negligible outside).
BOX = ((-3.0, 3.0), (-4.0, 4.0))
GRID = 241
#: Steps of every inner MALA chain (the posterior with twice as many agrees: see README).
INNER_STEPS = 40


def energy(x: jax.Array) -> jax.Array:
    """A 2-D double well: wells at ``x1 = ±1``, coupled Gaussian ``x2``."""
    return (x[0] ** 2 - 1.0) ** 2 + 0.5 * (x[1] - 0.5 * x[0]) ** 2


def model(x: jax.Array) -> None:
    t = numpyro.sample("T", PRIOR)
    numpyro.sample("x", ebm_ppl.numpyro.EnergyDistribution(energy, event_shape=(2,),
                                                          temperature=t), obs=x)


def _grid() -> tuple[np.ndarray, np.ndarray, float]:
    axes = [np.linspace(lo, hi, GRID) for lo, hi in BOX]
    g1, g2 = np.meshgrid(*axes, indexing="ij")
    points = np.stack([g1.ravel(), g2.ravel()], axis=1)
    cell = float((axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0]))
    return points, np.asarray(jax.vmap(energy)(jnp.asarray(points)), np.float64), cell


def exact_data(n: int, seed: int) -> np.ndarray:
    """``n`` draws of ``p_T`` at ``T_TRUE``: grid cells by their probability, uniform
    jitter inside the cell (exact up to the grid resolution)."""
    points, energies, _ = _grid()
    rng = np.random.default_rng(seed)
    w = np.exp(-(energies - energies.min()) / T_TRUE)
    idx = rng.choice(len(points), size=n, p=w / w.sum())
    step = np.array([(hi - lo) / (GRID - 1) for lo, hi in BOX])
    return (points[idx] + rng.uniform(-0.5, 0.5, (n, 2)) * step).astype(np.float32)


def exact_posterior(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``p(T | x)`` on a grid of T: ``log Z(T)`` by 2-D quadrature for each T."""
    _, energies, cell = _grid()
    temps = np.linspace(0.3, 1.6, 1300)
    log_z = np.array([np.log(np.sum(np.exp(-(energies - energies.min()) / t)) * cell)
                      - energies.min() / t for t in temps])
    sum_e = float(np.sum(jax.vmap(energy)(jnp.asarray(x))))
    logp = np.asarray(PRIOR.log_prob(temps)) - sum_e / temps - len(x) * log_z
    w = np.exp(logp - logp.max())
    return temps, w / np.trapezoid(w, temps)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    n = 60 if args.quick else 200
    num_warmup, num_samples = (300, 600) if args.quick else (1_000, 3_000)
    x = exact_data(n, args.seed)
    temps, density = exact_posterior(x)
    exact_mean = float(np.trapezoid(temps * density, temps))
    exact_sd = float(np.sqrt(np.trapezoid((temps - exact_mean) ** 2 * density, temps)))

    try:  # 1. the naive route is refused
        MCMC(NUTS(model), num_warmup=5, num_samples=5, progress_bar=False).run(
            jax.random.key(args.seed), jnp.asarray(x))
        refused = ""
    except ebm_ppl.IntractableNormaliserError as err:
        refused = str(err)

    # 2. the exchange algorithm
    kernel = ebm_ppl.numpyro.Exchange(model, inner_steps=INNER_STEPS)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=4,
                chain_method="vectorized", progress_bar=False)
    with Timer() as timer:
        mcmc.run(jax.random.key(args.seed + 1), jnp.asarray(x))
    idata = az.from_numpyro(mcmc)
    summary = az.summary(idata, var_names=["T"])
    draws = idata.posterior["T"].values.astype(np.float64)

    # 3. agreement with the exact posterior (mean, and variance about the exact mean)
    checks = {}
    for label, values, truth in (("mean", draws, exact_mean),
                                 ("var", (draws - exact_mean) ** 2, exact_sd**2)):
        se = values.std(ddof=1) / np.sqrt(float(az.ess(values)))
        checks[label] = float(abs(values.mean() - truth) / se)
    results = {
        "n": n, "T_true": T_TRUE, "exact_mean": exact_mean, "exact_sd": exact_sd,
        "exchange_mean": float(draws.mean()), "exchange_sd": float(draws.std()),
        "z": checks, "critical_z": critical_z(2),
        "r_hat": float(summary["r_hat"].iloc[0]), "ess_bulk": float(summary["ess_bulk"].iloc[0]),
        "acceptance_rate": float(idata.sample_stats["acceptance_rate"].mean()),
        "inner_acceptance_rate": float(idata.sample_stats["inner_accept_prob"].mean()),
        "nuts_refused": bool(refused), "sampling_time_s": timer.seconds,
    }
    print(summary.to_string())
    print({k: v for k, v in results.items() if k != "z"}, "z:", checks)
    _plot(draws, temps, density, args.out)
    save_json(results, args.out)

    assert refused and "Exchange" in refused, "NUTS must refuse the latent temperature"
    assert max(checks.values()) <= critical_z(2), f"exchange vs exact: z = {checks}"
    assert results["r_hat"] < 1.05, results["r_hat"]
    return results


def _plot(draws: np.ndarray, temps: np.ndarray, density: np.ndarray, out: Any) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(draws.ravel(), bins=60, density=True, alpha=0.5, label="exchange (4 chains)")
    ax.plot(temps, density, "k", label="exact (quadrature)")
    ax.axvline(T_TRUE, color="r", ls="--", label="T of the data")
    ax.set_xlabel("temperature T")
    ax.set_xlim(temps[density > 1e-4 * density.max()][[0, -1]])
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "posterior_T.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
