r"""Langevin on a linear energy: the law of :math:`x_N`, the seed's wrong formula, and drift.

Reproduces seed 001 (``shared/seeds/001_*.txt``): :math:`E(x) = \theta \cdot x` in 2-D,
:math:`x_0 \sim \mathcal N(0, I)`, Langevin steps of size :math:`\eta`.

Where the seed text is wrong
----------------------------
* It writes the update as :math:`x - \eta \nabla_x \log p + \sqrt{2\eta}\,\epsilon`
  (wrong sign: that climbs the energy) and gets a mean :math:`+N\eta\theta`.
* Its closed form :math:`x_N = N\eta\theta + \sqrt{2\eta}\,\mathcal N(0, (N+1) I)` gives
  variance :math:`2\eta(N+1)`, i.e. it treats :math:`x_0` as having variance
  :math:`2\eta` instead of 1.
* It "checks" the formula with a single draw, which cannot distinguish the two.
* It does not notice that :math:`\exp(-\theta\cdot x)` is improper: there is no
  stationary law, the chain drifts forever.

Correct law (standard Langevin :math:`x \leftarrow x - \eta\nabla E + \sqrt{2\eta} z`,
:math:`\nabla E = \theta`): :math:`x_N = x_0 - N\eta\theta + \sqrt{2\eta}\sum_{k<N} z_k`, so

.. math:: x_N \sim \mathcal N\big(-N\eta\theta,\ (1 + 2N\eta)\, I\big).

What this script shows
----------------------
``num_chains`` independent chains of :func:`ebm_ppl.kernels.ula` are run for small
:math:`N`; the mean and variance of :math:`x_N` are compared with both formulas using
Monte-Carlo z-scores (mean: :math:`\sqrt{v/n}`; variance: :math:`v\sqrt{2/(n-1)}`). The
correct law is accepted at every :math:`N`, the text's is rejected. Then an ordinary
:func:`ebm_ppl.sample` run on the improper target is passed to
:func:`ebm_ppl.diagnostics.drift_check` (and :func:`ebm_ppl.diagnostics.summary`), which
flag the drift with an :class:`~ebm_ppl.ImproperTargetWarning`
(:func:`ebm_ppl.sample` itself already warns, from a probe of the log density along the
score before sampling).

Run ``python examples/02_linear_energy_drift.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import warnings  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _common import Timer, critical_z, parse_args, save_json  # noqa: E402

import ebm_ppl  # noqa: E402

NAME = "02_linear_energy_drift"
THETA = np.array([1.0, -0.5])
ETA = 0.1
#: Numbers of steps N; the formulas differ most at small N (variance 1 + 2N eta vs 2 eta (N+1)).
NS = (0, 1, 2, 5, 10, 20, 50)


@jax.jit
def trajectories(kernel: Any, pot: Any, x0: jax.Array, key: jax.Array) -> jax.Array:
    """Positions ``(max(NS) + 1, chains, 2)`` of independent ULA chains started at ``x0``."""
    states = jax.vmap(lambda x: kernel.init(x, pot.logdensity_fn))(x0)

    def body(states, step_key):
        keys = jax.random.split(step_key, x0.shape[0])
        states, _ = jax.vmap(lambda k, s: kernel.step(k, s, pot.logdensity_fn))(keys, states)
        return states, states.position

    _, path = jax.lax.scan(body, states, jax.random.split(key, max(NS)))
    return jnp.concatenate([x0[None], path])


def moment_z(draws: np.ndarray, mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-coordinate z-scores of the sample mean and variance of iid ``draws`` under
    ``N(mean, var)``."""
    n = draws.shape[0]
    z_mean = (draws.mean(0) - mean) / np.sqrt(var / n)
    z_var = (draws.var(0, ddof=1) - var) / (var * np.sqrt(2.0 / (n - 1)))
    return z_mean, z_var


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the example; returns z-scores of both formulas and the drift verdict."""
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    num_chains = 5_000 if args.quick else 50_000
    theta = jnp.asarray(THETA)
    pot = ebm_ppl.Potential.from_energy(lambda x: theta @ x, example=jnp.zeros(2))
    key_x0, key_run = jax.random.split(jax.random.key(args.seed))
    x0 = jax.random.normal(key_x0, (num_chains, 2))
    with Timer() as timer:
        path = np.asarray(trajectories(ebm_ppl.kernels.ula(ETA), pot, x0, key_run))
    k = 4 * len(NS)  # mean and variance, two coordinates, each N
    z_crit = critical_z(k)
    rows = []
    for n_steps in NS:
        draws = path[n_steps]
        law = (-n_steps * ETA * THETA, np.full(2, 1.0 + 2.0 * n_steps * ETA))
        text = (n_steps * ETA * THETA, np.full(2, 2.0 * ETA * (n_steps + 1)))
        zl, zlv = moment_z(draws, *law)
        zt, ztv = moment_z(draws, *text)
        rows.append({"N": n_steps, "mean": draws.mean(0), "var": draws.var(0, ddof=1),
                     "law_mean": law[0], "law_var": law[1], "text_mean": text[0],
                     "text_var": text[1],
                     "max_abs_z_law": float(np.abs(np.concatenate([zl, zlv])).max()),
                     "max_abs_z_text": float(np.abs(np.concatenate([zt, ztv])).max())})
    print(f"theta={THETA.tolist()}, eta={ETA}, {num_chains} chains "
          f"({timer.seconds:.1f} s); critical z (k={k}) = {z_crit:.2f}")
    print(f"{'N':>3} {'mean x1 (emp/law/text)':>26} {'var x1 (emp/law/text)':>24} "
          f"{'max|z| law':>10} {'max|z| text':>11}")
    for r in rows:
        print(f"{r['N']:3d} {r['mean'][0]:8.3f}/{r['law_mean'][0]:6.2f}/{r['text_mean'][0]:6.2f}"
              f"   {r['var'][0]:7.3f}/{r['law_var'][0]:5.2f}/{r['text_var'][0]:5.2f}"
              f" {r['max_abs_z_law']:10.2f} {r['max_abs_z_text']:11.1f}")

    # the library's view: an ordinary sample() run on the improper target
    num_samples = 400 if args.quick else 2000
    improper = ebm_ppl.ImproperTargetWarning
    with warnings.catch_warnings(record=True) as caught_sample:
        warnings.simplefilter("always")
        idata = ebm_ppl.sample(pot, ebm_ppl.kernels.ula(ETA), jnp.zeros(2),
                               num_samples=num_samples, num_warmup=0, num_chains=4,
                               seed=args.seed, progress=False)
    sample_warned = [w for w in caught_sample if issubclass(w.category, improper)]
    for w in sample_warned:
        print(f"sample() ImproperTargetWarning: {w.message}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drift = ebm_ppl.diagnostics.drift_check(idata, pot)
    warned = [w for w in caught if issubclass(w.category, improper)]
    for w in warned:
        print(f"drift_check ImproperTargetWarning: {w.message}")
    print(drift)
    print(drift.table[["chain", "quantity", "z", "inversions", "slope_per_draw",
                       "drift"]].to_string(index=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        diag = ebm_ppl.diagnostics.summary(idata, pot, max_ksd_samples=200, num_bootstrap=200)
    print(f"diagnostics.summary status: {diag.status}")
    print(diag.verdict.to_string())
    slope = drift.table.loc[drift.table.quantity == "norm", "slope_per_draw"].mean()
    print(f"mean slope of |x| per draw {slope:.4f} vs eta*|theta| = "
          f"{ETA * np.linalg.norm(THETA):.4f}")

    _plot(rows, path, idata, args.out)
    results = {
        "num_chains": num_chains, "Ns": np.array(NS), "z_critical": z_crit,
        "max_abs_z_law": np.array([r["max_abs_z_law"] for r in rows]),
        "max_abs_z_text": np.array([r["max_abs_z_text"] for r in rows]),
        "drifting": bool(drift.drifting), "warned": bool(warned),
        "drift_chains_flagged": int(drift.table.loc[drift.table["drift"], "chain"].nunique()),
        "num_sample_chains": 4, "num_sample_draws": num_samples,
        "sample_warned": bool(sample_warned),
        "summary_status": str(diag.status), "norm_slope_per_draw": float(slope),
    }
    save_json(results, args.out)
    return results


def _plot(rows: list[dict[str, Any]], path: np.ndarray, idata: Any, out: Any) -> None:
    ns = np.array([r["N"] for r in rows])
    grid = np.arange(0, max(NS) + 1)
    n = path.shape[1]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ax = axes[0]
    emp = path[:, :, 0].mean(1)
    ax.plot(grid, -grid * ETA * THETA[0], "C0-", label=r"law $-N\eta\theta_1$")
    ax.plot(grid, grid * ETA * THETA[0], "C3--", label=r"text $+N\eta\theta_1$")
    ax.errorbar(ns, emp[ns], yerr=3 * path[ns, :, 0].std(1) / np.sqrt(n), fmt="ko", ms=4,
                label="ULA chains (±3 se)")
    ax.set_xlabel("N")
    ax.set_ylabel(r"mean of $x_{N,1}$")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(grid, 1 + 2 * grid * ETA, "C0-", label=r"law $1 + 2N\eta$")
    ax.plot(grid, 2 * ETA * (grid + 1), "C3--", label=r"text $2\eta(N+1)$")
    ax.plot(ns, path[ns, :, 0].var(1), "ko", ms=4, label="ULA chains")
    ax.set_xlabel("N")
    ax.set_ylabel(r"variance of $x_{N,1}$")
    ax.legend(fontsize=8)
    ax = axes[2]
    x = idata.posterior["x"].values
    for c in range(x.shape[0]):
        ax.plot(np.linalg.norm(x[c], axis=-1), lw=0.7, label=f"chain {c}")
    ax.set_xlabel("draw")
    ax.set_ylabel(r"$\|x\|$")
    ax.set_title("sample() on exp(-θ·x): drifts forever")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "linear_energy_law.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
