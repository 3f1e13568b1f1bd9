r"""ULA on a correlated Gaussian energy: the stationary covariance law and its bias.

Reproduces seed 000 (``shared/seeds/000_*.txt``, "Langevin on a Gaussian"): the unadjusted
Langevin algorithm (ULA)

.. math:: x \leftarrow x - \eta \nabla E(x) + \sqrt{2\eta}\, z, \qquad
          E(x) = \tfrac12 (x-\mu)^\top H (x-\mu),

is a Gaussian AR(1) chain :math:`x - \mu \leftarrow (I - \eta H)(x - \mu) + \sqrt{2\eta} z`.
Its mean converges to :math:`\mu` (no bias in the mean) but its stationary covariance
solves :math:`\Sigma = (I-\eta H)\Sigma(I-\eta H) + 2\eta I`, i.e. with
:math:`H = V \Lambda V^\top`

.. math:: \Sigma_\eta = V \operatorname{diag}\!\Big(\frac{2}{\lambda_i (2 - \eta\lambda_i)}\Big) V^\top,

stable only for :math:`\eta < 2/\lambda_{\max}`; the target is :math:`H^{-1}`.

Where the seed text is wrong or incomplete
------------------------------------------
* It treats only :math:`H = I` (result :math:`2/(2-\eta)\,I`) and does not state the
  stability limit; for a non-diagonal :math:`H` the bias is different along each
  eigenvector, so the covariance is not a scalar multiple of :math:`H^{-1}` and its
  correlation is wrong too.
* It does not say that the bias vanishes with a Metropolis correction: MALA with the same
  proposal (and the same :math:`\eta`, up to the stability limit) has :math:`H^{-1}` as its
  exact stationary covariance.

What this script shows
----------------------
For step sizes up to 0.95 of :math:`2/\lambda_{\max}`, ``num_chains`` independent
chains (``jax.vmap`` of :func:`ebm_ppl.kernels.ula`'s ``step``) are run to stationarity
and the covariance of their final states is compared with the law (z-scores from the
exact sampling variance of a Gaussian covariance, :math:`\operatorname{Var} S_{ij} =
(\Sigma_{ii}\Sigma_{jj} + \Sigma_{ij}^2)/n`), and with :math:`H^{-1}` (rejected at large
:math:`\eta`). MALA (:func:`ebm_ppl.kernels.mala`, same fixed :math:`\eta`) matches
:math:`H^{-1}`. Finally :func:`ebm_ppl.diagnostics.ula_bias` estimates the bias from
:func:`ebm_ppl.sample` runs without knowing the law.

Run ``python examples/01_ula_gaussian_bias.py [--quick] [--out DIR]``.
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
from _common import Timer, critical_z, parse_args, save_json  # noqa: E402

import ebm_ppl  # noqa: E402

NAME = "01_ula_gaussian_bias"

#: The Gaussian energy: mean and a non-diagonal precision matrix (eigenvalues ~2.44, ~0.56).
MU = np.array([1.0, -0.5])
H = np.array([[2.0, 0.8], [0.8, 1.0]])
#: Step sizes as fractions of the stability limit 2 / lambda_max.
FRACTIONS = (0.05, 0.2, 0.4, 0.6, 0.8, 0.95)


def covariance_law(h: np.ndarray, eta: float) -> np.ndarray:
    """Stationary ULA covariance ``V diag(2 / (lam (2 - eta lam))) V^T`` of the AR(1) chain."""
    lam, vec = np.linalg.eigh(h)
    if np.any(eta * lam >= 2.0):
        raise ValueError(f"eta={eta} is beyond the stability limit 2/lambda_max={2 / lam.max()}")
    return (vec * (2.0 / (lam * (2.0 - eta * lam)))) @ vec.T


def covariance_z(draws: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample covariance entries (11, 12, 22) of iid ``draws`` and their z-scores vs ``sigma``.

    Uses the Gaussian sampling variance ``Var S_ij = (S_ii S_jj + S_ij^2) / n`` under the
    hypothesis ``sigma``.
    """
    n = draws.shape[0]
    emp = np.cov(draws, rowvar=False)
    idx = [(0, 0), (0, 1), (1, 1)]
    est = np.array([emp[i, j] for i, j in idx])
    truth = np.array([sigma[i, j] for i, j in idx])
    se = np.array([np.sqrt((sigma[i, i] * sigma[j, j] + sigma[i, j] ** 2) / n) for i, j in idx])
    return est, (est - truth) / se


@jax.jit(static_argnames=("num_steps",))
def run_final_states(kernel: Any, pot: Any, x0: jax.Array, key: jax.Array,
                     num_steps: int) -> jax.Array:
    """Final positions of ``len(x0)`` independent chains after ``num_steps`` kernel steps.

    ``kernel`` and ``pot`` are pytrees (their numeric parameters are traced), so one
    compilation serves every step size.
    """
    states = jax.vmap(lambda x: kernel.init(x, pot.logdensity_fn))(x0)

    def body(states, step_key):
        keys = jax.random.split(step_key, x0.shape[0])
        states, _ = jax.vmap(lambda k, s: kernel.step(k, s, pot.logdensity_fn))(keys, states)
        return states, None

    states, _ = jax.lax.scan(body, states, jax.random.split(key, num_steps))
    return states.position


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the example; returns the covariance estimates, z-scores and ula_bias output."""
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    num_chains = 2_000 if args.quick else 40_000
    h_inv = np.linalg.inv(H)
    lam, vec = np.linalg.eigh(H)
    limit = 2.0 / lam.max()
    etas = [f * limit for f in FRACTIONS]
    mu, hj = jnp.asarray(MU), jnp.asarray(H)

    def energy(x):
        return 0.5 * (x - mu) @ hj @ (x - mu)

    pot = ebm_ppl.Potential.from_energy(energy, example=jnp.zeros(2))
    key = jax.random.key(args.seed)
    # all chains start far from the mode: the burn-in must forget the start
    x0 = jnp.tile(jnp.asarray(MU + np.array([3.0, -3.0])), (num_chains, 1))
    k = 3 * len(etas)
    z_crit = critical_z(k)
    rows = []
    with Timer() as timer:
        # 12 e-folds of the slowest mode (1 - eta lam_min) at the smallest eta for ULA,
        # 3x as many for MALA (rejections slow it down); the same for every eta
        burn = int(np.ceil(12.0 / (min(etas) * lam.min())))
        for i, eta in enumerate(etas):
            key_ula, key_mala = jax.random.split(jax.random.fold_in(key, i))
            ula_draws = np.asarray(run_final_states(ebm_ppl.kernels.ula(eta), pot, x0,
                                                    key_ula, num_steps=burn))
            mala_draws = np.asarray(run_final_states(ebm_ppl.kernels.mala(eta), pot, x0,
                                                     key_mala, num_steps=3 * burn))
            law = covariance_law(H, eta)
            est, z_law = covariance_z(ula_draws, law)
            _, z_exact = covariance_z(ula_draws, h_inv)
            mala_est, z_mala = covariance_z(mala_draws, h_inv)
            mean_se = np.sqrt(np.diag(law) / num_chains)
            rows.append({
                "eta": eta, "fraction_of_limit": FRACTIONS[i], "steps": burn,
                "cov_ula": est, "cov_law": law[[0, 0, 1], [0, 1, 1]],
                "cov_exact": h_inv[[0, 0, 1], [0, 1, 1]], "z_law": z_law,
                "z_exact": z_exact, "cov_mala": mala_est, "z_mala_exact": z_mala,
                "mean_z": (ula_draws.mean(0) - MU) / mean_se,
                # variance along each eigenvector, relative to the exact 1/lambda
                "eig_var_ratio_ula": np.einsum("ni,ij,nj->n", vec.T,
                                               np.cov(ula_draws, rowvar=False), vec.T) * lam,
                "eig_var_ratio_mala": np.einsum("ni,ij,nj->n", vec.T,
                                                np.cov(mala_draws, rowvar=False), vec.T) * lam,
            })
    print(f"H = {H.tolist()}, eigenvalues {lam.round(4).tolist()}, "
          f"stability limit 2/lambda_max = {limit:.4f}; {num_chains} chains per step size")
    print(f"Bonferroni critical z (alpha=1e-3, k={k}) = {z_crit:.2f}")
    print(f"{'eta':>7} {'cov11 ula/law/exact':>26} {'cov12 ula/law/exact':>26} "
          f"{'max|z| law':>10} {'max|z| H^-1':>11} {'MALA max|z| H^-1':>16}")
    for r in rows:
        cells = [f"{r['cov_ula'][j]:.3f}/{r['cov_law'][j]:.3f}/{r['cov_exact'][j]:.3f}"
                 for j in (0, 1)]
        print(f"{r['eta']:7.4f} {cells[0]:>26} {cells[1]:>26} {np.abs(r['z_law']).max():10.2f} "
              f"{np.abs(r['z_exact']).max():11.2f} {np.abs(r['z_mala_exact']).max():16.2f}")
    print(f"chains: {timer.seconds:.1f} s")

    # ula_bias: estimate the bias from ebm_ppl.sample runs (MALA reference), law unknown
    eta_diag = etas[3]
    with Timer() as timer_bias:
        bias = ebm_ppl.diagnostics.ula_bias(
            pot, eta_diag, jnp.asarray(MU), num_samples=500 if args.quick else 5000,
            num_warmup=300 if args.quick else 1000, num_chains=4, seed=args.seed,
            compute_ksd=not args.quick,
        )
    law_rel = np.diag(covariance_law(H, eta_diag)) / np.diag(h_inv) - 1.0
    print(bias)
    print(bias.table[["mean_bias", "mean_bias_z", "var_ula", "var_reference", "var_rel_bias",
                      "var_rel_bias_mcse"]].to_string())
    print(f"law's relative variance bias per coordinate at eta={eta_diag:.4f}: "
          f"{law_rel.round(4).tolist()} ({timer_bias.seconds:.1f} s)")

    _plot(rows, lam, limit, args.out)
    results = {
        "etas": np.array(etas), "limit": limit, "eigenvalues": lam, "num_chains": num_chains,
        "z_critical": z_crit,
        "max_abs_z_law": np.array([np.abs(r["z_law"]).max() for r in rows]),
        "max_abs_z_exact": np.array([np.abs(r["z_exact"]).max() for r in rows]),
        "max_abs_z_mala_exact": np.array([np.abs(r["z_mala_exact"]).max() for r in rows]),
        "max_abs_mean_z": np.array([np.abs(r["mean_z"]).max() for r in rows]),
        "cov_ula": np.array([r["cov_ula"] for r in rows]),
        "cov_law": np.array([r["cov_law"] for r in rows]),
        "ula_bias_step_size": eta_diag,
        "ula_bias_var_rel": np.asarray(bias.table["var_rel_bias"]),
        "ula_bias_var_rel_mcse": np.asarray(bias.table["var_rel_bias_mcse"]),
        "law_var_rel": law_rel,
        "ula_bias_suggested_step_size": bias.suggested_step_size,
        "seconds": timer.seconds + timer_bias.seconds,
    }
    save_json(results, args.out)
    return results


def _plot(rows: list[dict[str, Any]], lam: np.ndarray, limit: float, out: Any) -> None:
    etas = np.array([r["eta"] for r in rows])
    grid = np.linspace(0, 0.99 * limit, 200)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    for i, color in zip(range(2), ("C0", "C1")):
        ax.plot(grid, 2.0 / (2.0 - grid * lam[i]), color=color,
                label=rf"law $2/(2-\eta\lambda)$, $\lambda={lam[i]:.2f}$")
        ax.plot(etas, [r["eig_var_ratio_ula"][i] for r in rows], "o", color=color,
                label=f"ULA, eigvec {i + 1}")
        ax.plot(etas, [r["eig_var_ratio_mala"][i] for r in rows], "x", color=color, ms=8,
                label=f"MALA, eigvec {i + 1}")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axvline(limit, color="r", ls="--", lw=0.8, label=r"$2/\lambda_{\max}$")
    ax.set_xlabel(r"step size $\eta$")
    ax.set_ylabel(r"$\lambda\, v^\top \hat\Sigma v$ (1 = exact)")
    ax.set_yscale("log")
    ax.set_title("ULA variance along eigenvectors vs the law")
    ax.legend(fontsize=7)
    ax = axes[1]
    t = np.linspace(0, 2 * np.pi, 200)
    circle = np.stack([np.cos(t), np.sin(t)])
    last = rows[-1]
    for sigma, style, label in (
        (np.linalg.inv(H), "k-", r"exact $H^{-1}$"),
        (covariance_law(H, last["eta"]), "C3--", rf"ULA law, $\eta={last['eta']:.3f}$"),
    ):
        ell = MU[:, None] + 2 * np.linalg.cholesky(sigma) @ circle
        ax.plot(ell[0], ell[1], style, label=label + " (2 sd)")
    s11, s12, s22 = last["cov_ula"]
    emp = np.array([[s11, s12], [s12, s22]])
    ell = MU[:, None] + 2 * np.linalg.cholesky(emp) @ circle
    ax.plot(ell[0], ell[1], "C0:", lw=2, label="ULA empirical (2 sd)")
    ax.set_aspect("equal")
    ax.set_title(rf"covariance ellipses at $\eta = {last['fraction_of_limit']}\cdot 2/\lambda_{{\max}}$")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ula_covariance_law.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
