r"""Defaults that train well? Every objective on every built-in 2-D data set, by MMD.

With the command line's default settings (``ebm-ppl train --data NAME --objective OBJ``:
its MLP energy, Adam learning rate and schedule, number of steps, batch size, noise level
and contrastive-divergence sampler, read from :func:`ebm_ppl.cli.build_parser` and built
by the CLI's own ``make_objective`` / ``make_optimizer``, so the table follows the CLI),
each objective trains the same energy on each toy data set of :mod:`ebm_ppl.datasets`
(``fit``'s other defaults: shuffled minibatches).
Draws of the trained energy are compared with held-out data by
:func:`ebm_ppl.diagnostics.mmd_test` and by the median distance from a draw to its
nearest held-out point, next to three references that need no energy at all:

* **Gaussian fit**: draws from :math:`\mathcal N(\bar x, S)` of the training data (what an
  energy that learned only the first two moments would give);
* **KDE**: draws from a Gaussian kernel density estimate of the training data with
  Scott's bandwidth :math:`h = n^{-1/(d+4)}` times the data covariance (as
  ``scipy.stats.gaussian_kde``), i.e. a training point plus :math:`\mathcal N(0, h^2 S)`;
* **held-out**: a second independent held-out set (the noise floor of the two metrics).

The **ncsn** row is ``ebm-ppl train --objective ncsn`` (its own defaults: a
noise-conditional MLP of 128×128 units trained by multi-scale denoising score matching
over ten noise levels from 1 to 0.02 for 8000 steps) drawn as ``ebm-ppl sample`` draws it:
annealed Langevin dynamics (:func:`ebm_ppl.sampling.annealed_langevin`) from
``N(0, I)``, no chains from training points (the annealing itself has to place the mass).

Protocol (fixed per data set so that rows compare): one draw of ``3 n`` points
(``ebm_ppl.datasets.load(name, 3 n, seed)``, standardised) split into training, held-out
and floor sets of ``n`` (the CLI's default ``n``). The MMD uses the Gaussian kernel with
one length scale per data set, the median pairwise distance of the held-out set, and a
second, local MMD at a tenth of it (the first sees where the mass is, the second the
shape: a blurred disc over the rings passes the first and fails the second). Model
draws: :func:`ebm_ppl.sample` with MALA (dual-averaging warm-up of the step size), 100
chains started at random training points (``ebm-ppl sample`` starts them at N(0, I)
instead, so its draws can differ), thinned; so the MMD mostly measures the shape around
each mode, less the mass *between* well separated modes (a chain rarely crosses). Each model is also tested against the held-out data with
:func:`ebm_ppl.diagnostics.goodness_of_fit` (KSD; no sampling).

Run ``python examples/09_objective_table.py [--quick] [--out DIR] [--datasets a,b] [--seeds
0,1,2]`` (with several seeds each cell is the median over them, and the MMD tables show
the range: one training run is noisy, the minibatch order alone moved some cells 5×).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import argparse  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _common import Timer, parse_args, save_json  # noqa: E402

import ebm_ppl  # noqa: E402
from ebm_ppl.cli import build_parser  # noqa: E402
from ebm_ppl.cli.commands import draw_annealed, make_optimizer, noise_levels  # noqa: E402
from ebm_ppl.cli.commands import make_objective as cli_make_objective  # noqa: E402
from ebm_ppl.cli.commands import train as cli_train  # noqa: E402
from ebm_ppl.diagnostics.modes import kmeans  # noqa: E402

NAME = "09_objective_table"
DATASETS = ("two_moons", "8gaussians", "rings", "checkerboard", "swiss_roll")
OBJECTIVES = ("cd", "cd-pt", "sm", "dsm", "ssm", "nce")
#: Rows that are an objective with other CLI settings: ``cd-pt`` is
#: ``ebm-ppl train --objective cd --cd-kernel pt`` (PT-CD, parallel-tempering negatives).
ROW_SETTINGS = {"cd-pt": {"objective": "cd", "cd_kernel": "pt"}}
#: Data sets whose separated modes get a mass table: name -> (number of modes, feature
#: that separates them: the point itself for 8 Gaussians, its radius for the rings).
#: The true masses are the generators': 1/8 each, and ring k of 4 gets k/10
#: (:func:`ebm_ppl.datasets.rings` spreads points uniformly in arc length).
MASS_DATASETS = {"8gaussians": (8, "point"), "rings": (4, "radius")}
#: Draws kept per chain for the mass table (100 chains: 4000 draws).
MASS_DRAWS_PER_CHAIN = 40
#: The parallel-tempering sampler of the mass table (mass-aware: chains from N(0, I)
#: cross between modes through the hot replicas): temperatures, hottest temperature.
MASS_PT = (8, 50.0)
BASELINES = ("gaussian", "kde", "held-out")
#: The CLI's noise-conditional objective, drawn by annealed Langevin dynamics as
#: ``ebm-ppl sample`` draws it.
NCSN = "ncsn"
MODELS = (*OBJECTIVES, NCSN)
#: MALA chains, draws kept per chain, thinning and warm-up of the model draws.
NUM_CHAINS, DRAWS_PER_CHAIN, THIN, WARMUP = 100, 10, 20, 500
#: Length scale of the second, local MMD as a fraction of the median distance: the
#: median-heuristic kernel sees the large-scale mass and is blind to thin structure (a
#: disc of draws over the rings data set passes it), the local one sees the shape.
LOCAL_SCALE = 0.1
#: Permutations of the MMD test and bootstrap replicates of the KSD test.
NUM_PERMUTATIONS = 200


def cli_defaults(dataset: str, objective: str = "dsm") -> argparse.Namespace:
    """The settings ``ebm-ppl train --data DATASET --objective OBJECTIVE`` uses (its
    parser's defaults)."""
    return build_parser().parse_args(["train", "--data", dataset, "--objective", objective])


def make_objective(name: str, args: argparse.Namespace) -> Any:
    """The objective of row ``name`` as ``ebm-ppl train --objective NAME`` builds it from
    ``args`` (with the row's :data:`ROW_SETTINGS`)."""
    settings = ROW_SETTINGS.get(name, {"objective": name})
    return cli_make_objective(argparse.Namespace(**{**vars(args), **settings}))


def mode_features(x: np.ndarray, kind: str) -> np.ndarray:
    """What separates the modes: the point, or its radius (as a column)."""
    return x if kind == "point" else np.linalg.norm(x, axis=1, keepdims=True)


def mode_mass(draws: np.ndarray, centers: np.ndarray, kind: str) -> np.ndarray:
    """Fraction of ``draws`` nearest to each of ``centers`` (in :func:`mode_features`)."""
    feats = mode_features(draws[np.all(np.isfinite(draws), axis=1)], kind)
    labels = np.argmin(((feats[:, None] - centers[None]) ** 2).sum(-1), axis=1)
    return np.bincount(labels, minlength=len(centers)) / max(len(labels), 1)


def pt_draws(pot: Any, dim: int, seed: int) -> np.ndarray:
    """Draws of ``pot`` by parallel tempering over MALA (``MASS_PT``; default warm-up:
    per-replica step sizes and the ladder), chains started at N(0, I)."""
    num, t_max = MASS_PT
    kernel = ebm_ppl.kernels.parallel_tempering(ebm_ppl.kernels.mala(0.01),
                                                num_temperatures=num, max_temperature=t_max)
    init = jax.random.normal(jax.random.key(seed), (NUM_CHAINS, dim))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a poor model may warn; the mass table reports it
        idata = ebm_ppl.sample(pot, kernel, init, num_samples=MASS_DRAWS_PER_CHAIN,
                               num_warmup=WARMUP, thin=THIN, num_chains=NUM_CHAINS,
                               seed=seed, progress=False)
    return idata.posterior["x"].values.reshape(-1, dim)


def nearest_distance(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Distance from each row of ``points`` to its nearest row of ``reference``."""
    d2 = (np.sum(points**2, 1)[:, None] + np.sum(reference**2, 1)[None, :]
          - 2.0 * points @ reference.T)
    return np.sqrt(np.maximum(d2.min(axis=1), 0.0))


def median_distance(x: np.ndarray) -> float:
    """Median pairwise distance of the rows of ``x`` (the MMD length scale)."""
    d2 = np.sum((x[:, None] - x[None]) ** 2, axis=-1)
    return float(np.sqrt(np.median(d2[np.triu_indices(len(x), 1)])))


def baseline_draws(train: np.ndarray, floor: np.ndarray, n: int,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Gaussian fit, Scott-bandwidth KDE and the second held-out set."""
    mean, cov = train.mean(0), np.cov(train, rowvar=False)
    h = len(train) ** (-1.0 / (train.shape[1] + 4))
    kde = train[rng.integers(len(train), size=n)] + rng.multivariate_normal(
        np.zeros(train.shape[1]), h**2 * cov, size=n)
    return {"gaussian": rng.multivariate_normal(mean, cov, size=n), "kde": kde,
            "held-out": floor[:n]}


def model_draws(energy: Any, params: Any, train: np.ndarray, step_size: float,
                seed: int) -> tuple[np.ndarray, Any, float]:
    """MALA draws ``(NUM_CHAINS * DRAWS_PER_CHAIN, d)`` of the trained energy."""
    pot = ebm_ppl.Potential.from_energy(energy, params, example=jnp.zeros(train.shape[1]))
    rng = np.random.default_rng(seed)
    init = jnp.asarray(train[rng.choice(len(train), NUM_CHAINS, replace=False)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a poor model may warn; the MMD reports it
        idata = ebm_ppl.sample(pot, ebm_ppl.kernels.mala(step_size), init,
                               num_samples=DRAWS_PER_CHAIN, num_warmup=WARMUP, thin=THIN,
                               num_chains=NUM_CHAINS, seed=seed, progress=False)
    draws = idata.posterior["x"].values.reshape(-1, train.shape[1])
    return draws, pot, float(idata.sample_stats["acceptance_rate"].mean())


def score(draws: np.ndarray, held_out: np.ndarray, ell: float, seed: int) -> dict[str, Any]:
    """MMD test (fixed length scale ``ell``) and nearest-neighbour distances to held-out."""
    if not np.all(np.isfinite(draws)):
        return {"mmd2": float("nan"), "mmd_p_value": float("nan"),
                "mmd2_local": float("nan"), "mmd_local_p_value": float("nan"),
                "median_nn": float("nan"), "finite": False}
    test, local = (ebm_ppl.diagnostics.mmd_test(draws, held_out, bandwidth=scale * ell,
                                                seed=seed, num_permutations=NUM_PERMUTATIONS)
                   for scale in (1.0, LOCAL_SCALE))
    return {"mmd2": test.statistic, "mmd_p_value": test.p_value,
            "mmd2_local": local.statistic, "mmd_local_p_value": local.p_value,
            "median_nn": float(np.median(nearest_distance(draws, held_out))), "finite": True}


def run_dataset(dataset: str, quick: bool, seed: int,
                models: Sequence[str] = MODELS) -> tuple[dict[str, Any], dict]:
    """Train every objective of ``models`` on one data set; returns its table column and
    draws. On :data:`MASS_DATASETS` each cell also gets ``mass_tv``, the total-variation
    distance between the row's mass per mode and the generator's (trained energies
    drawn by :func:`pt_draws`; ncsn and the baselines by their own draws)."""
    args = cli_defaults(dataset)
    num_steps = 200 if quick else args.steps
    args.steps = num_steps  # the learning-rate schedule spans the steps actually run
    n = args.n or ebm_ppl.datasets.DEFAULT_N
    data = ebm_ppl.datasets.load(dataset, n=3 * n, seed=seed)
    train, held_out, floor = data[:n], data[n:2 * n], data[2 * n:]
    ell = median_distance(held_out)
    rng = np.random.default_rng(seed)
    draws = baseline_draws(train, floor, NUM_CHAINS * DRAWS_PER_CHAIN, rng)
    column: dict[str, Any] = {"bandwidth": ell, "num_steps": num_steps, "n": n}
    mass = None
    if dataset in MASS_DATASETS:
        num_modes, kind = MASS_DATASETS[dataset]
        centers = kmeans(mode_features(held_out, kind), num_modes,
                                                   seed)
        if kind == "point":
            data_mass = np.full(num_modes, 1.0 / num_modes)
        else:  # ring k (by radius) has mass proportional to k
            rank = np.argsort(np.argsort(centers[:, 0])) + 1.0
            data_mass = rank / rank.sum()
        column["true_mass"] = data_mass.tolist()

        def mass(x: np.ndarray) -> dict[str, Any]:
            found = mode_mass(x, centers, kind)
            return {"mass": found.tolist(),
                    "mass_tv": float(0.5 * np.abs(found - data_mass).sum())}
    for name, x in draws.items():
        column[name] = score(x, held_out, ell, seed)
        if mass is not None:
            column[name].update(mass(x))
    energy = ebm_ppl.nn.mlp_energy(tuple(args.hidden), args.activation,
                                   quadratic=args.quadratic)
    params0 = energy.init(jax.random.key(seed), train.shape[1])
    for name in (m for m in OBJECTIVES if m in models):
        with Timer() as timer:
            result = ebm_ppl.fit(energy, params0, train, make_objective(name, args),
                                 make_optimizer(args), num_steps=num_steps,
                                 batch_size=args.batch_size, seed=seed, progress=False)
        loss = np.asarray(result.history["loss"])
        x, pot, acceptance = model_draws(energy, result.params, train, 0.01, seed)
        draws[name] = x
        cell = score(x, held_out, ell, seed)
        gof = ebm_ppl.diagnostics.goodness_of_fit(pot, held_out, seed=seed, max_points=500,
                                                  num_bootstrap=NUM_PERMUTATIONS)
        cell.update({"train_seconds": timer.seconds, "final_loss": float(np.mean(loss[-20:])),
                     "losses_finite": bool(np.all(np.isfinite(loss))),
                     "mala_acceptance": acceptance, "ksd": gof.ksd,
                     "ksd_p_value": gof.p_value})
        if mass is not None and cell["finite"]:
            cell.update(mass(pt_draws(pot, train.shape[1], seed)))
        column[name] = cell
        print(f"  {dataset:12s} {name:5s} MMD² {cell['mmd2']:.5f} (p {cell['mmd_p_value']:.3f})"
              f"  median NN {cell['median_nn']:.4f}  KSD {gof.ksd:.3f} (p {gof.p_value:.3f})"
              + (f"  mass TV {cell['mass_tv']:.3f}" if "mass_tv" in cell else "")
              + f"  {timer.seconds:.1f} s", flush=True)
    if NCSN not in models:
        return column, {"held_out": held_out, **draws}
    with Timer() as timer:
        x, pot, rejected, losses_finite = ncsn_draws(dataset, train, quick, seed)
    draws[NCSN] = x
    cell = score(x, held_out, ell, seed)
    gof = ebm_ppl.diagnostics.goodness_of_fit(pot, held_out, seed=seed, max_points=500,
                                              num_bootstrap=NUM_PERMUTATIONS)
    cell.update({"train_seconds": timer.seconds, "rejected_steps": rejected,
                 "losses_finite": losses_finite, "ksd": gof.ksd, "ksd_p_value": gof.p_value})
    if mass is not None:
        cell.update(mass(x))
    column[NCSN] = cell
    print(f"  {dataset:12s} {NCSN:4s} MMD² {cell['mmd2']:.5f} (p {cell['mmd_p_value']:.3f})"
          f"  median NN {cell['median_nn']:.4f}  {timer.seconds:.1f} s", flush=True)
    for name in BASELINES:
        print(f"  {dataset:12s} {name:8s} MMD² {column[name]['mmd2']:.5f} (p "
              f"{column[name]['mmd_p_value']:.3f})  median NN {column[name]['median_nn']:.4f}",
              flush=True)
    return column, {"held_out": held_out, **draws}


def ncsn_draws(dataset: str, train: np.ndarray, quick: bool,
               seed: int) -> tuple[np.ndarray, Any, int, bool]:
    """The ``ncsn`` row: ``ebm-ppl train --objective ncsn`` (the CLI's own ``train`` with
    its defaults for that objective), drawn by the CLI's ``draw_annealed`` (1000
    annealed runs from ``N(0, sigma_max^2 I)``). Returns the draws, the potential of the
    smallest level (for the KSD test), the number of rejected Langevin steps and whether
    every training loss was finite."""
    args = cli_defaults(dataset, NCSN)
    args.steps = 200 if quick else args.steps  # the schedule spans the steps actually run
    args.seed, args.quiet = seed, True
    pot, result = cli_train(args, train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rejected steps are counted in the results
        idata = draw_annealed(pot, noise_levels(args), num_chains=1,
                              num_samples=NUM_CHAINS * DRAWS_PER_CHAIN, seed=seed)
    return (idata.posterior["x"].values[0], pot,
            int(idata.sample_stats["rejected"].values.sum()),
            bool(np.all(np.isfinite(np.asarray(result.history["loss"])))))


def combine(columns: list[dict[str, Any]]) -> dict[str, Any]:
    """One column from the columns of several seeds: the median of every number, ``all``
    of every flag, and ``<key>_min`` / ``<key>_max`` of the MMDs (``per_seed`` keeps the
    columns themselves)."""
    def merge(values: list[Any]) -> Any:
        if isinstance(values[0], dict):
            out = {k: merge([v[k] for v in values]) for k in values[0]}
            for key in ("mmd2", "mmd2_local"):
                if key in values[0]:
                    out[f"{key}_min"] = float(min(v[key] for v in values))
                    out[f"{key}_max"] = float(max(v[key] for v in values))
            return out
        if isinstance(values[0], (bool, np.bool_)):
            return bool(all(values))
        return float(np.median(values))

    return {**merge(columns), "per_seed": columns}


def markdown(results: dict[str, Any], key: str, scale: float, digits: int,
             spread: bool = False) -> str:
    """One Markdown table: rows objectives + baselines, columns data sets (with
    ``spread``, each cell is ``median (min – max)`` over the seeds)."""
    datasets = [d for d in DATASETS if d in results["datasets"]
                and key in results["datasets"][d]["held-out"]]
    lines = ["| | " + " | ".join(datasets) + " |", "|---|" + "---|" * len(datasets)]
    for row in (*MODELS, *BASELINES):
        if not all(key in results["datasets"][d].get(row, {}) for d in datasets):
            continue
        cells = []
        for d in datasets:
            cell = results["datasets"][d][row]
            text = f"{cell[key] * scale:.{digits}f}"
            if spread and len(results["seeds"]) > 1:
                text += (f" ({cell[key + '_min'] * scale:.{digits}f} – "
                         f"{cell[key + '_max'] * scale:.{digits}f})")
            cells.append(text)
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the table; returns per data set and row the MMD², p-values and NN distances."""
    argv = list(argv) if argv is not None else None
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--datasets", default=",".join(DATASETS))
    extra.add_argument("--models", default=",".join(MODELS),
                       help="comma-separated rows to train (default: all)")
    extra.add_argument("--seeds", default=None,
                       help="comma-separated seeds; each cell is the median over them")
    known, rest = extra.parse_known_args(argv)
    args = parse_args(NAME, __doc__.splitlines()[0], rest)
    try:
        seeds = ([args.seed] if known.seeds is None
                 else [int(s) for s in known.seeds.split(",") if s.strip()])
    except ValueError:
        raise SystemExit(f"--seeds must be comma-separated integers, got {known.seeds!r}") from None
    if not seeds:
        raise SystemExit("--seeds must name at least one seed")
    chosen = [d.strip() for d in known.datasets.split(",") if d.strip()]
    unknown = sorted(set(chosen) - set(DATASETS))
    if unknown:
        raise SystemExit(f"--datasets must name data sets among {list(DATASETS)}, got {unknown}")
    models = [m.strip() for m in known.models.split(",") if m.strip()]
    if not models or set(models) - set(MODELS):
        raise SystemExit(f"--models must name rows among {list(MODELS)}, got {models}")
    results: dict[str, Any] = {"datasets": {}, "quick": args.quick, "seeds": seeds,
                               "models": models,
                               "cli_defaults": vars(cli_defaults(chosen[0]))}
    results["cli_defaults"].pop("func", None)
    all_draws = {}
    with Timer() as timer:
        for dataset in chosen:
            columns = []
            for seed in seeds:
                column, draws = run_dataset(dataset, args.quick, seed, models)
                columns.append(column)
                all_draws.setdefault(dataset, draws)  # the figure shows the first seed
            results["datasets"][dataset] = combine(columns)
    results["seconds"] = timer.seconds
    if "two_moons" in results["datasets"] and {"cd", "dsm"} <= set(models):
        moons = results["datasets"]["two_moons"]
        results["two_moons_cd_over_dsm_median_nn"] = moons["cd"]["median_nn"] / moons["dsm"][
            "median_nn"]
    print(f"\nMMD² × 1000 to held-out data ({timer.seconds:.0f} s; seeds {seeds})\n"
          + markdown(results, "mmd2", 1e3, 2, spread=True))
    print(f"\nMMD² × 1000 at {LOCAL_SCALE} × the median length scale\n"
          + markdown(results, "mmd2_local", 1e3, 2, spread=True))
    print("\nmedian distance from a draw to its nearest held-out point\n"
          + markdown(results, "median_nn", 1.0, 3))
    if set(MASS_DATASETS) & set(chosen):
        print("\nmass per mode: total-variation distance to the true masses (trained "
              "energies drawn by parallel tempering from N(0, I))\n"
              + markdown(results, "mass_tv", 1.0, 3))
    _plot(all_draws, args.out)
    save_json(results, args.out)
    return results


def _plot(all_draws: dict[str, dict[str, np.ndarray]], out: Any) -> None:
    first = next(iter(all_draws.values()))
    rows = [r for r in ("held_out", *MODELS, "gaussian", "kde") if r in first]
    fig, axes = plt.subplots(len(all_draws), len(rows), squeeze=False,
                             figsize=(2.2 * len(rows), 2.2 * len(all_draws)))
    for i, (dataset, draws) in enumerate(all_draws.items()):
        for j, row in enumerate(rows):
            ax = axes[i, j]
            x = draws[row]
            ax.plot(x[:, 0], x[:, 1], ".", ms=1, color="C0" if row == "held_out" else "C1")
            ax.set_xlim(-3, 3)
            ax.set_ylim(-3, 3)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(row, fontsize=9)
        axes[i, 0].set_ylabel(dataset, fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "objective_table.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
