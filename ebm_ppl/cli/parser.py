"""The ``ebm-ppl`` argument parser: every option with its type check and default."""

from __future__ import annotations

import argparse
from functools import partial

from ebm_ppl._names import ACTIVATIONS, DATASETS, KERNELS
from ebm_ppl._version import __version__

__all__ = ["ANNEAL_CHAINS", "KERNELS", "MAX_AUTO_THIN", "OBJECTIVES", "PILOT_DRAWS",
           "SAMPLE_CHAINS", "SAMPLE_DEFAULTS", "SCHEDULES", "TRAIN_DEFAULTS", "thin_value",
           "build_parser"]

#: ``--objective`` choices: contrastive divergence, score matching, denoising SM, sliced
#: SM, noise-contrastive estimation, and multi-scale DSM of a noise-conditional energy.
OBJECTIVES = ("cd", "sm", "dsm", "ssm", "nce", "ncsn")
#: ``--schedule`` choices (learning-rate schedules of ``train``).
SCHEDULES = ("cosine", "constant")
#: ``--kernel`` choices of ``sample`` (the kernel registry's names, plus ``auto`` and
#: ``anneal``): :data:`ebm_ppl._names.KERNELS`.
#: ``ebm-ppl sample``'s defaults of the options that annealing does not use.
SAMPLE_DEFAULTS = {"warmup": 500, "step_size": 0.01, "thin": "auto"}
#: ``ebm-ppl sample --chains`` by default: MCMC kernels, annealing (independent draws).
SAMPLE_CHAINS, ANNEAL_CHAINS = 16, 4
#: ``--thin auto``: draws per chain of the pilot run, and the largest thin it picks.
PILOT_DRAWS, MAX_AUTO_THIN = 200, 20


#: ``ebm-ppl train``'s defaults that depend on ``--objective`` (option -> objective ->
#: value; ``"*"`` for every other objective). The noise-conditional energy of ``ncsn``
#: learns ten levels at once: with 2000 steps and 64×64 units its draws of the rings were
#: a disc, with 8000 steps and 128×128 four rings (examples/README.md, table 09); each of
#: its steps is cheap.
TRAIN_DEFAULTS: dict[str, dict[str, object]] = {
    "steps": {"*": 2000, "ncsn": 8000},
    "hidden": {"*": [64, 64], "ncsn": [128, 128]},
}


def _per_objective(option: str) -> str:
    values = TRAIN_DEFAULTS[option]

    def show(value: object) -> str:
        return " ".join(map(str, value)) if isinstance(value, list) else str(value)

    return f"(default: {show(values['*'])}; " + ", ".join(
        f"{name} {show(v)}" for name, v in values.items() if name != "*") + ")"


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples' line breaks and appends ``(default: ...)`` to every option
    (except where the help states a default that depends on other options)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None and action.help and "(default:" in action.help:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Fills in the defaults that depend on ``--objective`` (:data:`TRAIN_DEFAULTS`)."""

    def parse_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201
        parsed = super().parse_args(args, namespace)
        for option, values in TRAIN_DEFAULTS.items():
            if hasattr(parsed, option) and getattr(parsed, option) is None:
                value = values.get(parsed.objective, values["*"])
                setattr(parsed, option, list(value) if isinstance(value, list) else value)
        return parsed


def _number(text: str, minimum: float, strict: bool) -> float:
    expectation = f"a number {'>' if strict else '>='} {minimum:g}"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expectation}, got {text!r}") from None
    if not (value > minimum if strict else value >= minimum) or value != value or abs(
        value
    ) == float("inf"):
        raise argparse.ArgumentTypeError(f"expected {expectation}, got {text!r}")
    return value


def _integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _number(text, 0.0, strict=True)


def nonnegative_float(text: str) -> float:
    """A finite number >= 0."""
    return _number(text, 0.0, strict=False)


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _integer(text, 1)


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    return _integer(text, 0)


def _add_training(p: argparse.ArgumentParser, objective: str, sigma: float = 0.2,
                  objectives: tuple[str, ...] = OBJECTIVES) -> None:
    """Training options; with ``ncsn`` among ``objectives``, ``--steps`` and ``--hidden``
    default per objective (:data:`TRAIN_DEFAULTS`), else to the common values."""
    per_objective = "ncsn" in objectives
    g = p.add_argument_group("training")
    g.add_argument("--objective", choices=objectives, default=objective,
                   help="training objective: contrastive divergence, score matching, "
                   "denoising SM, sliced SM, noise-contrastive estimation"
                   + (" or ncsn: multi-scale DSM of a noise-conditional energy over "
                      "--levels noise levels, drawn by annealing ('ebm-ppl sample')"
                      if "ncsn" in objectives else ""))
    g.add_argument("--steps", type=positive_int,
                   default=None if per_objective else TRAIN_DEFAULTS["steps"]["*"],
                   help="optimizer steps"
                   + (" " + _per_objective("steps") if per_objective else ""))
    g.add_argument("--batch-size", type=positive_int, default=256, help="minibatch size")
    g.add_argument("--learning-rate", type=positive_float, default=5e-3,
                   help="Adam step size (the peak of the schedule)")
    g.add_argument("--schedule", choices=SCHEDULES, default="cosine",
                   help="learning-rate schedule: cosine decay from --learning-rate to a tenth "
                   "of it over --steps, or constant (examples/README.md, table 09)")
    g.add_argument("--hidden", type=positive_int, nargs="+",
                   default=None if per_objective else list(TRAIN_DEFAULTS["hidden"]["*"]),
                   help="hidden layer widths of the MLP energy"
                   + (" " + _per_objective("hidden") if per_objective else ""))
    g.add_argument("--activation", default="swish", choices=ACTIVATIONS,
                   help="activation of the MLP (smooth ones only)")
    g.add_argument("--quadratic", type=nonnegative_float, default=0.1,
                   help="weight of the confining ½‖x‖² term (keeps exp(-E) normalisable)")
    g.add_argument("--sigma", type=nonnegative_float, default=sigma,
                   help="noise level of the score objectives: DSM's sigma, and the "
                   "Gaussian noise added to the data for sm and ssm (0: exact score "
                   "matching)" + ("" if sigma <= 0.1 else ". Without noise, or with 0.1, "
                                  "the relative mass of separated modes came out wrong in "
                                  "training (examples/README.md, table 09)")
                   + (". The demo trains at 0.1, where its ULA-versus-MALA comparison is "
                      "measured; its draws' mode masses are less exact than at 0.2"
                      if sigma <= 0.1 else ""))
    if "ncsn" in objectives:
        g.add_argument("--levels", type=positive_int, default=10,
                       help="ncsn: number of noise levels, geometric from --sigma-max down "
                       "to --sigma-min")
        g.add_argument("--sigma-max", type=positive_float, default=1.0,
                       help="ncsn: the largest noise level (about the data's spread)")
        g.add_argument("--sigma-min", type=positive_float, default=0.02,
                       help="ncsn: the smallest noise level (the detail the draws keep)")
    g.add_argument("--cd-kernel", choices=("mala", "ula", "pt"), default="mala",
                   help="kernel of CD's persistent chains: mala (exact: the negatives "
                        "follow the model, as the draws of `ebm-ppl sample` do), ula "
                        "(no accept/reject: the model learns to fit the data through "
                        "ULA's biased law) or pt (parallel tempering over mala: hot "
                        "replicas carry the negatives between separated modes; "
                        "--cd-temperatures times the cost)")
    g.add_argument("--cd-temperatures", type=positive_int, default=4,
                   help="--cd-kernel pt: number of temperatures (replicas), at least 2")
    g.add_argument("--cd-max-temperature", type=positive_float, default=20.0,
                   help="--cd-kernel pt: the hottest temperature (> 1; about the height "
                        "in nats of the barriers between the model's modes); the ladder "
                        "is geometric and replica k steps --cd-step-size times its "
                        "temperature")
    g.add_argument("--cd-steps", type=positive_int, default=20,
                   help="kernel steps per CD update")
    g.add_argument("--cd-step-size", type=positive_float, default=0.01,
                   help="step size of CD's kernel")
    g.add_argument("--cd-regularization", type=nonnegative_float, default=0.1,
                   help="weight of CD's energy-magnitude penalty (0: plain likelihood "
                        "gradient)")
    g.add_argument("--n", type=positive_int, default=None,
                   help="number of data points (all rows of a file when not given)")


def thin_value(text: str) -> int | str:
    """``auto`` or an integer >= 1."""
    return "auto" if text == "auto" else _integer(text, 1)


def _add_sampling(p: argparse.ArgumentParser, sample_command: bool = False
                  ) -> argparse._ArgumentGroup:
    g = p.add_argument_group("sampling")
    if sample_command:
        g.add_argument("--chains", type=positive_int, default=None,
                       help="number of chains: they run vectorised, and several chains "
                       "per mode let R-hat see a multimodal model; fewer with anneal, whose "
                       f"draws are independent (default: {SAMPLE_CHAINS}; anneal "
                       f"{ANNEAL_CHAINS})")
    else:
        g.add_argument("--chains", type=positive_int, default=4, help="number of chains")
    g.add_argument("--samples", type=positive_int, default=1000, help="draws kept per chain")
    g.add_argument("--warmup", type=nonnegative_int, default=SAMPLE_DEFAULTS["warmup"],
                   help="warm-up steps per chain (step-size adaptation)")
    g.add_argument("--step-size", type=positive_float, default=SAMPLE_DEFAULTS["step_size"],
                   help="initial step size (adapted during warm-up except for ULA; the "
                   "random-walk scale for mh)")
    if sample_command:
        g.add_argument("--thin", type=thin_value, default=SAMPLE_DEFAULTS["thin"],
                       help="keep every thin-th step; auto (default): a short pilot run "
                       "measures the autocorrelation time tau and thin = ceil(tau), at most "
                       f"{MAX_AUTO_THIN}, so kept draws are nearly "
                       "independent")
    else:
        g.add_argument("--thin", type=positive_int, default=1,
                       help="keep every thin-th step")
    return g


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--seed", type=nonnegative_int, default=0, help="random seed")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The ``ebm-ppl`` argument parser (commands demo, train, sample, report)."""
    parser = _Parser(
        prog="ebm-ppl",
        description="Train, sample and diagnose energy-based models in JAX.",
        epilog="Run 'ebm-ppl COMMAND --help' for the options and examples of a command.",
    )
    parser.add_argument("--version", action="version", version=f"ebm_ppl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # every command shares the common options and the help formatter
    command = partial(sub.add_parser, parents=[_common()], formatter_class=_Formatter)

    p = command(
        "demo",
        help="train on two moons, sample with ULA and MALA, diagnose, write a report",
        description="Train an MLP energy on the embedded two-moons data set, sample it with "
        "ULA and MALA, print the diagnostic summaries with their verdicts and write "
        "OUT/index.html (ULA beside MALA) with a full report of each run.\n\nexamples:\n"
        "  ebm-ppl demo\n  ebm-ppl demo --objective ssm --steps 3000 --out my-demo",
    )
    # the demo's ULA-versus-MALA claims (README) are measured at sigma 0.1
    _add_training(p, objective="dsm", sigma=0.1,
                  objectives=tuple(o for o in OBJECTIVES if o != "ncsn"))
    _add_sampling(p)
    p.add_argument("--out", default="ebm-ppl-demo", help="output folder")
    p.set_defaults(n=2000, chains=32, step_size=0.03, thin=40)

    p = command(
        "train", help="train an MLP energy",
        description="Train an MLP energy on a data set and write a model folder (read it "
        "in Python with ebm_ppl.load).\n\n"
        "examples:\n  ebm-ppl train --data two_moons --objective dsm --out model\n"
        "  ebm-ppl train --data points.npy --objective nce --steps 5000 --out model",
    )
    p.add_argument("--data", required=True,
                   help=f"a data set name ({', '.join(DATASETS)}) or a .npy/.csv/.txt file "
                   "of shape (n, d)")
    p.add_argument("--out", default="ebm-ppl-model", help="model folder to write")
    _add_training(p, objective="dsm")

    p = command(
        "sample",
        help="sample a trained model, write InferenceData (netCDF)",
        description="Sample the energy of a model folder (ebm-ppl train, ebm_ppl.save).\n\n"
        "examples:\n  ebm-ppl sample model --kernel mala --out draws.nc\n"
        "  ebm-ppl sample model --kernel nuts --step-size 0.1 --chains 8\n"
        "  ebm-ppl sample ncsn-model --chains 10 --samples 100   # annealed Langevin",
    )
    p.add_argument("model", help="model folder written by 'ebm-ppl train' or ebm_ppl.save")
    p.add_argument("--kernel", choices=("auto", *KERNELS, "anneal"), default="auto",
                   help="MCMC kernel; auto: anneal for a model trained with --objective "
                   "ncsn, mala otherwise. anneal: annealed Langevin over the model's noise "
                   "levels, every draw an independent run from N(0, sigma_max^2 I) "
                   "(ebm_ppl.sampling.annealed_langevin)")
    p.add_argument("--out", default="samples.nc", help="netCDF file to write")
    g = _add_sampling(p, sample_command=True)
    g.add_argument("--steps-per-level", type=positive_int, default=100,
                   help="anneal: Langevin steps at each noise level")
    g.add_argument("--step-scale", type=positive_float, default=0.1,
                   help="anneal: the step at level sigma is step-scale * sigma^2")

    p = command(
        "report",
        help="render a report from a saved InferenceData (.nc)",
        description="Render index.html and report.md from an InferenceData netCDF file. "
        "With --model the report adds the KSD test of the draws and the density contours; "
        "with --data too, the model-versus-data tests.\n\n"
        "examples:\n  ebm-ppl report samples.nc --out report\n"
        "  ebm-ppl report samples.nc --model model --data two_moons --seed 1",
    )
    p.add_argument("path", help="InferenceData netCDF file")
    p.add_argument("--model", default=None, help="the model folder the draws came from")
    p.add_argument("--data", default=None,
                   help="data to test the model and the draws against: a data set name "
                   "(drawn with --seed: use another seed than training for held-out points) "
                   "or a .npy/.csv/.txt file")
    p.add_argument("--n", type=positive_int, default=None,
                   help="number of data points (all rows of a file when not given)")
    p.add_argument("--out", default="ebm-ppl-report", help="output folder")
    return parser
