"""The ``train``, ``sample`` and ``report`` commands, over the public API.

Each ``cmd_*`` takes the parsed arguments and returns the exit code; a user error raises
:class:`CLIError` (or a library ``ValueError``/``OSError``), which :func:`ebm_ppl.cli.main`
prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import arviz
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ebm_ppl.cli.parser import (
    ANNEAL_CHAINS,
    MAX_AUTO_THIN,
    PILOT_DRAWS,
    SAMPLE_CHAINS,
    SAMPLE_DEFAULTS,
)
from ebm_ppl.datasets import load as load_data
from ebm_ppl.diagnostics.summaries import summary
from ebm_ppl.kernels import Kernel, mala, parallel_tempering, tempered_ladder
from ebm_ppl.kernels.registry import make_kernel
from ebm_ppl.model_io import load, read_history, read_model_config, save
from ebm_ppl.nn import mlp_energy, noise_conditional_mlp_energy
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
from ebm_ppl.sampling import annealed_langevin, sample
from ebm_ppl.training import FitResult, fit

__all__ = ["CLIError", "cmd_report", "cmd_sample", "cmd_train", "draw_annealed", "make_kernel",
           "make_objective", "make_optimizer", "model_levels", "noise_levels", "train"]



class CLIError(Exception):
    """A user error reported as one line, with exit code 2."""


def noise_levels(args: argparse.Namespace) -> tuple[float, ...]:
    r"""The ``--levels`` noise levels of ``--objective ncsn``, largest first:
    :math:`\sigma_\ell = \sigma_{\max} (\sigma_{\min}/\sigma_{\max})^{(\ell-1)/(L-1)}`."""
    if args.levels < 2:
        raise CLIError(f"--levels must be at least 2 for --objective ncsn, got {args.levels} "
                       "(one level is --objective dsm)")
    if args.sigma_min >= args.sigma_max:
        raise CLIError(f"--sigma-min ({args.sigma_min:g}) must be smaller than --sigma-max "
                       f"({args.sigma_max:g})")
    return tuple(float(s) for s in np.geomspace(args.sigma_max, args.sigma_min, args.levels))


def make_cd_kernel(args: argparse.Namespace) -> Kernel:
    r"""The kernel of ``--objective cd``'s persistent chains (``--cd-kernel``).

    ``pt``: :func:`~ebm_ppl.kernels.parallel_tempering` over ``mala(--cd-step-size)``
    on the geometric ladder of ``--cd-temperatures`` from 1 to
    :math:`1/T_{\max}` (``--cd-max-temperature``), replica :math:`k` stepping
    :math:`h / \beta_k` (a tempered target is :math:`1/\beta_k` times wider in
    variance).
    """
    if args.cd_kernel != "pt":
        return make_kernel(args.cd_kernel, args.cd_step_size)
    if args.cd_temperatures < 2:
        raise CLIError(f"--cd-temperatures must be at least 2 for --cd-kernel pt, got "
                       f"{args.cd_temperatures}")
    if args.cd_max_temperature <= 1:
        raise CLIError(f"--cd-max-temperature must be > 1, got {args.cd_max_temperature:g}")
    betas = tempered_ladder(args.cd_temperatures, args.cd_max_temperature)
    return parallel_tempering(mala(args.cd_step_size), betas=betas,
                              replica_parameters={"step_size": args.cd_step_size / betas})


def make_objective(args: argparse.Namespace) -> Objective:
    """The objective named by ``--objective`` with its options."""
    if args.objective == "ncsn":
        return denoising_score_matching(noise_levels(args), noise_conditional=True)
    if args.objective == "cd":
        return contrastive_divergence(make_cd_kernel(args),
                                      num_steps=args.cd_steps,
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
    """Fit an MLP energy to ``data`` with the objective of ``args``.

    For ``--objective ncsn`` the energy is noise-conditional and the potential returned is
    its slice at the smallest level (``at_sigma``); the levels go in the model's metadata.
    """
    objective = make_objective(args)
    options = {"activation": args.activation, "quadratic": args.quadratic}
    if args.objective == "ncsn":
        energy = noise_conditional_mlp_energy(tuple(args.hidden), **options)
    else:
        energy = mlp_energy(tuple(args.hidden), **options)
    params = energy.init(args.seed, data.shape[1])
    result = fit(energy, params, data, objective, make_optimizer(args),
                 num_steps=args.steps, batch_size=min(args.batch_size, len(data)),
                 seed=args.seed, progress=not args.quiet)
    if args.objective == "ncsn":
        energy = energy.at_sigma(noise_levels(args)[-1])
    return Potential.from_energy(energy, result.params, example=jnp.zeros(data.shape[1])), result


def model_metadata(args: argparse.Namespace, data_name: str) -> dict[str, Any]:
    """What ``ebm-ppl train`` records with a model (the data and how it was trained)."""
    options: dict[str, Any] = {}
    if args.objective in ("sm", "ssm", "dsm"):
        options = {"sigma": args.sigma}
    elif args.objective == "cd":
        options = {"cd_kernel": args.cd_kernel, "cd_steps": args.cd_steps,
                   "cd_step_size": args.cd_step_size,
                   "cd_regularization": args.cd_regularization}
        if args.cd_kernel == "pt":
            options.update(cd_temperatures=args.cd_temperatures,
                           cd_max_temperature=args.cd_max_temperature)
    elif args.objective == "ncsn":  # 'ebm-ppl sample' anneals over these
        options = {"sigmas": list(noise_levels(args))}
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


def model_levels(model_dir: str | os.PathLike[str]) -> tuple[float, ...] | None:
    """The noise levels of a model trained with ``--objective ncsn`` (else ``None``)."""
    config = read_model_config(model_dir)
    sigmas = config["metadata"].get("sigmas")
    if config["energy"].get("type") != "noise_conditional_mlp" or not sigmas:
        return None
    return tuple(float(s) for s in sigmas)


def draw_annealed(pot: Potential, levels: tuple[float, ...], *, num_chains: int,
                  num_samples: int, steps_per_level: int = 100, step_scale: float = 0.1,
                  seed: int = 0) -> arviz.InferenceData:
    """``num_chains × num_samples`` independent annealed Langevin draws of an ncsn model
    (``pot`` its smallest-level slice, :func:`model_levels` its levels), each run started
    from ``N(0, levels[0]² I)``: what ``ebm-ppl sample --kernel anneal`` writes."""
    init = levels[0] * jax.random.normal(jax.random.key(seed),
                                         (num_chains * num_samples, *pot.example.shape),
                                         pot.example.dtype)
    return annealed_langevin(pot.fn.model, pot.energy_params, levels, init,
                             steps_per_level=steps_per_level, step_scale=step_scale,
                             seed=seed + 1, num_chains=num_chains)


def _sample_annealed(args: argparse.Namespace, pot: Potential,
                     levels: tuple[float, ...]) -> arviz.InferenceData:
    """``--kernel anneal``, after refusing the MCMC options it does not use."""
    unused = [f"--{name.replace('_', '-')}" for name, default in SAMPLE_DEFAULTS.items()
              if getattr(args, name) != default]
    if unused:
        verb = "does" if len(unused) == 1 else "do"
        raise CLIError(f"{', '.join(unused)} {verb} not apply to --kernel anneal (its options "
                       "are --steps-per-level and --step-scale); leave them out")
    return draw_annealed(pot, levels, num_chains=args.chains or ANNEAL_CHAINS,
                         num_samples=args.samples,
                         steps_per_level=args.steps_per_level, step_scale=args.step_scale,
                         seed=args.seed)


def cmd_sample(args: argparse.Namespace) -> int:
    """``ebm-ppl sample``: sample a model folder into an InferenceData netCDF file."""
    pot = load(args.model)
    levels = model_levels(args.model)
    kernel = args.kernel if args.kernel != "auto" else ("anneal" if levels else "mala")
    if kernel == "anneal" and levels is None:
        raise CLIError(f"--kernel anneal needs a model trained with --objective ncsn (one "
                       f"with noise levels); {args.model!r} has none, use --kernel mala")
    out = Path(args.out)
    writable_folder(out.parent, "output folder")
    if kernel == "anneal":
        idata = _sample_annealed(args, pot, levels)
    else:
        if levels:
            print(f"note: --kernel {kernel} samples the model's smallest noise level only "
                  f"(sigma {levels[-1]:g}), where the mass of separated regions can be off; "
                  "--kernel anneal draws the model", file=sys.stderr)
        chains = args.chains or SAMPLE_CHAINS
        run = partial(sample, pot, make_kernel(kernel, args.step_size),
                      jnp.zeros(pot.example.shape), num_warmup=args.warmup, num_chains=chains,
                      seed=args.seed, jitter=1.0)
        thin = args.thin
        if thin == "auto":
            with warnings.catch_warnings():  # the pilot's own warnings are not the run's
                warnings.simplefilter("ignore")
                pilot = run(num_samples=PILOT_DRAWS, progress=False)
            thin, tau = auto_thin(pilot)
            print(f"note: --thin auto: the pilot's autocorrelation time is {tau:.1f} steps, "
                  f"thin {thin}" + (" (the most --thin auto picks; the chains mix slowly, "
                                    "set --thin yourself to go further)"
                                    if thin == MAX_AUTO_THIN else ""), file=sys.stderr)
        idata = run(num_samples=args.samples, thin=thin, progress=not args.quiet)
    idata.to_netcdf(str(out))
    result = summary(idata, pot, seed=args.seed)
    print(result)
    hint = mixing_hint(result, args)
    if hint:
        print(hint, file=sys.stderr)
    print(f"InferenceData written to {out}")
    return 0


def auto_thin(pilot: arviz.InferenceData) -> tuple[int, float]:
    r"""``(thin, tau)``: the pilot's integrated autocorrelation time and the thin it sets.

    :math:`\tau = C N / \min \mathrm{ESS}_\text{bulk}` over the posterior's elements
    (``C`` chains of ``N`` draws; ArviZ's rank-normalised bulk ESS), and
    ``thin = clip(ceil(tau), 1, MAX_AUTO_THIN)``: draws ``thin`` steps apart are then about
    independent, so ``--samples`` kept draws carry about as much information as draws
    can.
    """
    ess = arviz.ess(pilot, method="bulk")
    values = np.concatenate([np.ravel(ess[name].values) for name in ess.data_vars])
    size = pilot.posterior.sizes["chain"] * pilot.posterior.sizes["draw"]
    tau = float(size / np.nanmin(values)) if np.all(np.isfinite(values)) else float("inf")
    return int(np.clip(np.ceil(tau), 1, MAX_AUTO_THIN)), tau


def mixing_hint(result: Any, args: argparse.Namespace) -> str:
    """One line naming the flags to change when the run's R-hat or ESS check failed."""
    table = result.verdict.set_index("check")
    failed = [check for check in ("R-hat (max)", "ESS bulk (min)", "ESS tail (min)")
              if check in table.index and table.loc[check, "status"] != "pass"]
    if not failed:
        return ""
    return (f"hint: {' and '.join(failed)} did not pass: the chains disagree or mix slowly "
            "(a model with several separated modes?); raise --chains (every mode needs "
            "chains of its own), --samples or --thin, or --warmup")


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
