"""``ebm-ppl`` command line: demo, train, sample, report (argparse over the public API)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser"]

OBJECTIVES = ("cd", "sm", "dsm", "ssm", "nce")
KERNELS = ("ula", "mala", "hmc", "nuts", "mh")
MODEL_FILE = "model.json"


class CLIError(Exception):
    """An error reported as one line, with exit code 2."""


# ---------------------------------------------------------------------- helpers
def _objective(name: str, args: argparse.Namespace):
    from ebm_ppl import kernels, objectives

    if name == "sm":
        return objectives.score_matching()
    if name == "dsm":
        return objectives.denoising_score_matching(args.sigma)
    if name == "ssm":
        return objectives.sliced_score_matching()
    if name == "nce":
        return objectives.nce()
    if name == "cd":
        return objectives.contrastive_divergence(
            kernels.ula(args.cd_step_size), num_steps=args.cd_steps, persistent=True
        )
    raise CLIError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {name!r}")


def _kernel(name: str, step_size: float):
    from ebm_ppl import kernels

    if name == "ula":
        return kernels.ula(step_size)
    if name == "mala":
        return kernels.mala(step_size)
    if name == "hmc":
        return kernels.hmc(step_size, 10)
    if name == "nuts":
        return kernels.nuts(step_size)
    if name == "mh":
        return kernels.random_walk(step_size)
    raise CLIError(f"--kernel must be one of {', '.join(KERNELS)}, got {name!r}")


def _train(args: argparse.Namespace, data, progress: bool):
    """Fit an MLP energy to ``data`` with the chosen objective; returns (energy, result)."""
    import optax

    from ebm_ppl import fit, nn, objectives

    energy = nn.mlp_energy(tuple(args.hidden), activation=args.activation,
                           quadratic=args.quadratic)
    params = energy.init(args.seed, data.shape[1])
    if args.objective == "nce":
        params = objectives.nce_params(params)
    result = fit(
        energy, params, data, _objective(args.objective, args),
        optax.adam(args.learning_rate), num_steps=args.steps, batch_size=args.batch_size,
        seed=args.seed, progress=progress,
    )
    return energy, result


def _save_model(out: Path, energy, result, meta: dict[str, Any]) -> None:
    from ebm_ppl.checkpoint import save_checkpoint

    out.mkdir(parents=True, exist_ok=True)
    config = {"hidden": list(energy.hidden), "activation": energy.activation,
              "quadratic": energy.quadratic, **meta}
    save_checkpoint(out, result.steps, result.params, metadata=config, keep=1)
    (out / MODEL_FILE).write_text(json.dumps(config, indent=2))
    np_history = {k: v.tolist() for k, v in result.history.items()}
    (out / "history.json").write_text(json.dumps(np_history))


def _load_model(path: Path):
    import jax

    from ebm_ppl import nn
    from ebm_ppl.checkpoint import restore_checkpoint
    from ebm_ppl.errors import CheckpointError

    config_path = path / MODEL_FILE
    if not config_path.is_file():
        raise CLIError(f"{path} is not a model written by 'ebm-ppl train' ({MODEL_FILE} missing)")
    config = json.loads(config_path.read_text())
    energy = nn.mlp_energy(tuple(config["hidden"]), activation=config["activation"],
                           quadratic=config["quadratic"])
    template = jax.eval_shape(lambda: energy.init(0, config["dim"]))
    template = jax.tree.map(lambda s: jax.numpy.zeros(s.shape, s.dtype), template)
    try:
        params = restore_checkpoint(path, template).tree
    except CheckpointError as err:
        raise CLIError(str(err)) from None
    return energy, params, config


def _sample_and_report(energy, params, data, args, out_dir: Path, fit_result=None,
                       kernel_names=("ula", "mala")):
    import jax.numpy as jnp
    import numpy as np

    import ebm_ppl

    pot = ebm_ppl.Potential.from_energy(energy, params, example=jnp.zeros(data.shape[1]))
    rng = np.random.default_rng(args.seed)
    init = jnp.asarray(data[rng.choice(len(data), args.chains, replace=False)])
    results = {}
    for name in kernel_names:
        kernel = _kernel(name, args.step_size)
        t0 = time.perf_counter()
        idata = ebm_ppl.sample(pot, kernel, init, num_samples=args.samples,
                               num_warmup=args.warmup, num_chains=args.chains,
                               seed=args.seed, thin=args.thin, progress=not args.quiet)
        elapsed = time.perf_counter() - t0
        summary = ebm_ppl.diagnostics.summary(idata, pot, seed=args.seed)
        print(f"\n== {name.upper()} ({args.chains} chains x {args.samples} draws, "
              f"{elapsed:.1f} s) ==")
        print(summary)
        sub = out_dir / name
        sub.mkdir(parents=True, exist_ok=True)
        idata.to_netcdf(str(sub / "inference_data.nc"))
        index = ebm_ppl.report(idata, sub, pot=pot, data=data, fit_result=fit_result,
                               summary=summary, title=f"ebm_ppl demo: {name.upper()}",
                               seed=args.seed)
        results[name] = index
    return results


# ---------------------------------------------------------------------- commands
def cmd_demo(args: argparse.Namespace) -> int:
    from ebm_ppl import datasets

    out = Path(args.out)
    data = datasets.load("two_moons", n=args.n, seed=args.seed)
    print(f"Training an MLP energy on two moons ({len(data)} points, objective "
          f"{args.objective}, {args.steps} steps)...")
    t0 = time.perf_counter()
    energy, result = _train(args, data, progress=not args.quiet)
    print(f"  final loss {float(result.history['loss'][-1]):.4f} "
          f"({time.perf_counter() - t0:.1f} s)")
    reports = _sample_and_report(energy, result.params, data, args, out, fit_result=result)
    _save_model(out / "model", energy, result, {"dim": 2, "data": "two_moons",
                                                "objective": args.objective})
    print("\nReports:")
    for name, path in reports.items():
        print(f"  {name}: {path}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ebm_ppl import datasets

    try:
        data = datasets.load(args.data, n=args.n, seed=args.seed)
    except (ValueError, FileNotFoundError, ImportError) as err:
        raise CLIError(str(err)) from None
    energy, result = _train(args, data, progress=not args.quiet)
    out = Path(args.out)
    _save_model(out, energy, result, {"dim": int(data.shape[1]), "data": args.data,
                                      "objective": args.objective})
    print(f"trained {args.steps} steps, final loss {float(result.history['loss'][-1]):.4f}; "
          f"model written to {out}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import jax.numpy as jnp

    import ebm_ppl

    energy, params, config = _load_model(Path(args.checkpoint))
    pot = ebm_ppl.Potential.from_energy(energy, params, example=jnp.zeros(config["dim"]))
    kernel = _kernel(args.kernel, args.step_size)
    idata = ebm_ppl.sample(pot, kernel, jnp.zeros(config["dim"]), num_samples=args.samples,
                           num_warmup=args.warmup, num_chains=args.chains, seed=args.seed,
                           thin=args.thin, progress=not args.quiet, jitter=1.0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    idata.to_netcdf(str(out))
    print(ebm_ppl.diagnostics.summary(idata, pot, seed=args.seed))
    print(f"InferenceData written to {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ebm_ppl.report import render_from_netcdf

    path = Path(args.path)
    if not path.is_file():
        raise CLIError(f"no such file: {path}")
    try:
        index = render_from_netcdf(path, args.out)
    except (OSError, ValueError) as err:
        raise CLIError(f"could not read {path} as InferenceData netCDF: {err}") from None
    print(f"report written to {index}")
    return 0


# ---------------------------------------------------------------------- parser
def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _add_training(p: argparse.ArgumentParser, steps: int, objective: str) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--objective", choices=OBJECTIVES, default=objective,
                   help="training objective (default: %(default)s)")
    g.add_argument("--steps", type=_positive_int, default=steps, help="optimizer steps")
    g.add_argument("--batch-size", type=_positive_int, default=256)
    g.add_argument("--learning-rate", type=_positive_float, default=1e-3)
    g.add_argument("--hidden", type=_positive_int, nargs="+", default=[64, 64],
                   help="hidden layer widths of the MLP energy")
    g.add_argument("--activation", default="swish",
                   choices=("swish", "softplus", "tanh", "elu"))
    g.add_argument("--quadratic", type=float, default=0.1,
                   help="weight of the confining ½‖x‖² term (keeps exp(-E) normalisable)")
    g.add_argument("--sigma", type=_positive_float, default=0.1, help="DSM noise level")
    g.add_argument("--cd-steps", type=_positive_int, default=20, help="CD Langevin steps")
    g.add_argument("--cd-step-size", type=_positive_float, default=0.01)
    g.add_argument("--n", type=_positive_int, default=None, help="number of data points")


def _add_sampling(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampling")
    g.add_argument("--chains", type=_positive_int, default=4)
    g.add_argument("--samples", type=_positive_int, default=1000)
    g.add_argument("--warmup", type=int, default=500)
    g.add_argument("--step-size", type=_positive_float, default=0.01,
                   help="initial step size (adapted during warm-up except for ULA; the "
                   "random-walk scale for mh)")
    g.add_argument("--thin", type=_positive_int, default=1, help="keep every thin-th step")


def build_parser() -> argparse.ArgumentParser:
    """The ``ebm-ppl`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="ebm-ppl",
        description="Train, sample and diagnose energy-based models in JAX.",
        epilog="Run 'ebm-ppl COMMAND --help' for the options and examples of a command.",
    )
    from ebm_ppl._version import __version__

    parser.add_argument("--version", action="version", version=f"ebm_ppl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    common.add_argument("--quiet", action="store_true", help="no progress bars")

    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "demo", parents=[common], formatter_class=fmt,
        help="train on two moons, sample with ULA and MALA, diagnose, write a report",
        description="Train an MLP energy on the embedded two-moons data set, sample it with "
        "ULA and MALA (4 chains), print the diagnostic summary with its verdicts and write "
        "reports to ./ebm-ppl-demo/.\n\nexamples:\n  ebm-ppl demo\n"
        "  ebm-ppl demo --objective ssm --steps 3000 --out my-demo",
    )
    _add_training(p, steps=2000, objective="dsm")
    _add_sampling(p)
    p.add_argument("--out", default="ebm-ppl-demo", help="output folder")
    p.set_defaults(func=cmd_demo, n=2000, step_size=0.03, thin=5)

    p = sub.add_parser(
        "train", parents=[common], formatter_class=fmt, help="train an MLP energy",
        description="Train an MLP energy on a data set and write a model folder.\n\n"
        "examples:\n  ebm-ppl train --data two_moons --objective dsm --out model\n"
        "  ebm-ppl train --data points.npy --objective nce --steps 5000 --out model",
    )
    p.add_argument("--data", required=True,
                   help="a data set name (two_moons, 8gaussians, rings, checkerboard, "
                   "swiss_roll, digits) or a .npy/.csv file of shape (n, d)")
    p.add_argument("--out", default="ebm-ppl-model", help="model folder to write")
    _add_training(p, steps=2000, objective="dsm")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "sample", parents=[common], formatter_class=fmt,
        help="sample a trained model, write InferenceData (netCDF)",
        description="Sample the energy of a model folder written by 'ebm-ppl train'.\n\n"
        "examples:\n  ebm-ppl sample model --kernel mala --out draws.nc\n"
        "  ebm-ppl sample model --kernel nuts --step-size 0.1 --chains 8",
    )
    p.add_argument("checkpoint", help="model folder written by 'ebm-ppl train'")
    p.add_argument("--kernel", choices=KERNELS, default="mala")
    p.add_argument("--out", default="samples.nc", help="netCDF file to write")
    _add_sampling(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "report", parents=[common], formatter_class=fmt,
        help="render a report from a saved InferenceData (.nc)",
        description="Render index.html and report.md from an InferenceData netCDF file.\n\n"
        "examples:\n  ebm-ppl report samples.nc --out report",
    )
    p.add_argument("path", help="InferenceData netCDF file")
    p.add_argument("--out", default="ebm-ppl-report", help="output folder")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ebm-ppl`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if hasattr(args, "warmup") and args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        return args.func(args)
    except CLIError as err:
        print(f"ebm-ppl {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ebm-ppl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
