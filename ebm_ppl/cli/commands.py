"""The ``train``, ``sample`` and ``report`` commands, over the public API.

Each ``cmd_*`` takes the parsed arguments and returns the exit code; a user error raises
:class:`CLIError` (or a library ``ValueError``/``OSError``), which :func:`ebm_ppl.cli.main`
prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
import optax

from ebm_ppl.datasets import load as load_data
from ebm_ppl.diagnostics.summaries import summary
from ebm_ppl.kernels import Kernel, hmc, mala, nuts, random_walk, ula
from ebm_ppl.model_io import load, read_history, save
from ebm_ppl.nn import mlp_energy
from ebm_ppl.objectives import (
    Objective,
    contrastive_divergence,
    denoising_score_matching,
    nce,
    score_matching,
    sliced_score_matching,
)
from ebm_ppl.potential import Potential
from ebm_ppl.reporting import read_inference_data, render_from_netcdf
from ebm_ppl.sampling import sample
from ebm_ppl.training import FitResult, fit

__all__ = ["CLIError", "cmd_report", "cmd_sample", "cmd_train", "make_kernel",
           "make_objective", "make_optimizer", "train"]

#: Integration steps of the CLI's HMC kernel.
HMC_STEPS = 10


class CLIError(Exception):
    """A user error reported as one line, with exit code 2."""


def make_objective(args: argparse.Namespace) -> Objective:
    """The objective named by ``--objective`` with its options."""
    if args.objective == "cd":
        return contrastive_divergence(ula(args.cd_step_size), num_steps=args.cd_steps,
                                      persistent=True,
                                      energy_regularization=args.cd_regularization)
    if args.objective == "dsm" and args.sigma == 0:
        raise CLIError("--objective dsm needs --sigma > 0 (--sigma 0, exact score matching "
                       "of the data, is for sm and ssm)")
    builders = {"sm": lambda: score_matching(sigma=args.sigma),
                "ssm": lambda: sliced_score_matching(sigma=args.sigma), "nce": nce,
                "dsm": lambda: denoising_score_matching(args.sigma)}
    return builders[args.objective]()


def make_optimizer(args: argparse.Namespace) -> optax.GradientTransformation:
    r"""Adam at ``--learning-rate`` with the ``--schedule`` of ``args``.

    ``cosine``: :math:`\eta_t = \eta\,[0.1 + 0.9 \cdot \tfrac12(1 + \cos(\pi t / T))]`
    over the :math:`T` = ``--steps`` steps (``optax.cosine_decay_schedule`` with
    ``alpha=0.1``); ``constant``: :math:`\eta_t = \eta`.
    """
    if args.schedule == "cosine":
        return optax.adam(optax.cosine_decay_schedule(args.learning_rate, args.steps,
                                                      alpha=0.1))
    return optax.adam(args.learning_rate)


def make_kernel(name: str, step_size: float) -> Kernel:
    """The kernel named by ``--kernel`` at ``step_size`` (the scale for ``mh``)."""
    builders = {"ula": ula, "mala": mala, "nuts": nuts, "mh": random_walk,
                "hmc": lambda h: hmc(h, HMC_STEPS)}
    return builders[name](step_size)


def writable_folder(path: str | os.PathLike[str], what: str) -> Path:
    """Create ``path`` (and its parents) and check it can be written, before any work."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CLIError(f"cannot create the {what} {str(folder)!r} ({err.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise CLIError(f"cannot write to the {what} {str(folder)!r} (permission denied)")
    return folder


def read_data(name: str, n: int | None, seed: int) -> np.ndarray:
    """A data set name or file, as ``datasets.load`` reads it (errors as one line)."""
    try:
        return load_data(name, n=n, seed=seed)
    except (ValueError, OSError, ImportError) as err:
        raise CLIError(str(err)) from None


def train(args: argparse.Namespace, data: np.ndarray) -> tuple[Potential, FitResult]:
    """Fit an MLP energy to ``data`` with the objective of ``args``."""
    energy = mlp_energy(tuple(args.hidden), args.activation, quadratic=args.quadratic)
    params = energy.init(args.seed, data.shape[1])
    result = fit(energy, params, data, make_objective(args), make_optimizer(args),
                 num_steps=args.steps, batch_size=min(args.batch_size, len(data)),
                 seed=args.seed, progress=not args.quiet)
    return Potential.from_energy(energy, result.params, example=jnp.zeros(data.shape[1])), result


def model_metadata(args: argparse.Namespace, data_name: str) -> dict[str, Any]:
    """What ``ebm-ppl train`` records with a model (the data and how it was trained)."""
    options: dict[str, Any] = {}
    if args.objective in ("sm", "ssm", "dsm"):
        options = {"sigma": args.sigma}
    elif args.objective == "cd":
        options = {"cd_steps": args.cd_steps, "cd_step_size": args.cd_step_size,
                   "cd_regularization": args.cd_regularization}
    return {"data": data_name, "objective": args.objective, **options, "steps": args.steps,
            "learning_rate": args.learning_rate, "schedule": args.schedule,
            "batch_size": args.batch_size,
            "seed": args.seed}


def cmd_train(args: argparse.Namespace) -> int:
    """``ebm-ppl train``: fit an energy and write a model folder."""
    data = read_data(args.data, args.n, args.seed)
    out = writable_folder(args.out, "model folder")
    pot, result = train(args, data)
    save(pot, out, metadata=model_metadata(args, args.data), history=result.history,
         step=result.steps)
    print(f"trained {args.steps} steps, final loss {float(result.history['loss'][-1]):.4f}; "
          f"model written to {out}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """``ebm-ppl sample``: sample a model folder into an InferenceData netCDF file."""
    pot = load(args.model)
    out = Path(args.out)
    writable_folder(out.parent, "output folder")
    idata = sample(pot, make_kernel(args.kernel, args.step_size), jnp.zeros(pot.example.shape),
                   num_samples=args.samples, num_warmup=args.warmup, num_chains=args.chains,
                   seed=args.seed, thin=args.thin, progress=not args.quiet, jitter=1.0)
    idata.to_netcdf(str(out))
    print(summary(idata, pot, seed=args.seed))
    print(f"InferenceData written to {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``ebm-ppl report``: the report of a netCDF file, with its model and data if given."""
    read_inference_data(args.path)  # a bad file fails before the model and data are read
    if args.data is not None and args.model is None:
        raise CLIError("--data needs --model (the data are tested against the model)")
    data = None if args.data is None else read_data(args.data, args.n, args.seed)
    history = {} if args.model is None else read_history(args.model)
    out = writable_folder(args.out, "output folder")
    index = render_from_netcdf(args.path, out, model_dir=args.model, data=data,
                               fit_result=history or None, seed=args.seed)
    print(f"report written to {index}")
    return 0
