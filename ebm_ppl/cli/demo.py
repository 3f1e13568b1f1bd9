"""``ebm-ppl demo``: train on two moons, sample with ULA and MALA, compare, report.

The point of the demo is one picture: ULA (no accept/reject step) at a moderate step
size mixes, so R-hat looks fine, yet its kernel Stein discrepancy test rejects that the
draws follow the model (the :math:`O(h)` bias of the unadjusted chain), while MALA on
the same energy passes. ``OUT/index.html`` shows the two verdicts and density plots side
by side and links the full report of each run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from ebm_ppl.cli.commands import make_kernel, model_metadata, train, writable_folder
from ebm_ppl.datasets import two_moons
from ebm_ppl.diagnostics.summaries import summary
from ebm_ppl.model_io import save
from ebm_ppl.potential import Potential
from ebm_ppl.reporting import ComparedRun, report, write_comparison_page
from ebm_ppl.sampling import sample

__all__ = ["DemoResult", "DemoRun", "cmd_demo", "run_demo"]

#: The two samplers compared.
DEMO_KERNELS = ("ula", "mala")
#: Draws in the pooled KSD test (evenly thinned chains): enough power to see ULA's bias
#: at step size 0.03 (p < 0.01 where 2000 draws give p near 0.05); the test costs
#: :math:`O(n^2)`, a few seconds here.
KSD_POINTS = 4000

_INTRO = (
    "An MLP energy trained on two moons, sampled by two kernels from the same starting "
    "points. ULA has no accept/reject step: at this step size its chains mix (R-hat near "
    "1) but settle on a biased law, which the kernel Stein discrepancy test against the "
    "model's score detects. MALA adds the Metropolis correction and samples the model."
)


class DemoRun(NamedTuple):
    """One sampler's run: its draws, diagnostic summary, report and sampling time."""

    name: str
    idata: Any
    summary: Any
    report: Path
    seconds: float


class DemoResult(NamedTuple):
    """What :func:`run_demo` produced: the page, the runs, the trained potential."""

    index: Path
    runs: dict[str, DemoRun]
    pot: Potential
    fit_result: Any


def _sample_one(name: str, pot: Potential, init: Any, data: np.ndarray,
                args: argparse.Namespace, out: Path, fit_result: Any) -> DemoRun:
    start = time.perf_counter()
    idata = sample(pot, make_kernel(name, args.step_size), init, num_samples=args.samples,
                   num_warmup=args.warmup, num_chains=args.chains, seed=args.seed,
                   thin=args.thin, progress=not args.quiet)
    seconds = time.perf_counter() - start
    diag = summary(idata, pot, seed=args.seed, max_ksd_points=KSD_POINTS)
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    idata.to_netcdf(str(folder / "inference_data.nc"))
    index = report(idata, folder, pot=pot, data=data, fit_result=fit_result, summary=diag,
                   title=f"ebm_ppl demo: {name.upper()}", seed=args.seed)
    return DemoRun(name, idata, diag, index, seconds)


def run_demo(args: argparse.Namespace, log: Any = print) -> DemoResult:
    """Train, sample with each of :data:`DEMO_KERNELS`, write the reports and the page.

    Parameters
    ----------
    args
        The parsed ``ebm-ppl demo`` options (``build_parser().parse_args(["demo", ...])``).
    log
        Where progress lines go (``print``; a no-op in tests).

    Returns
    -------
    DemoResult
    """
    out = writable_folder(args.out, "output folder")
    data = two_moons(args.n, seed=args.seed)
    log(f"Training an MLP energy on two moons ({len(data)} points, objective "
        f"{args.objective}, {args.steps} steps)...")
    start = time.perf_counter()
    pot, result = train(args, data)
    log(f"  final loss {float(result.history['loss'][-1]):.4f} "
        f"({time.perf_counter() - start:.1f} s)")
    save(pot, out / "model", metadata=model_metadata(args, "two_moons"),
         history=result.history, step=result.steps)
    rows = np.random.default_rng(args.seed).choice(len(data), args.chains,
                                                   replace=args.chains > len(data))
    init = jnp.asarray(data[rows])
    runs = {}
    for name in DEMO_KERNELS:
        run = _sample_one(name, pot, init, data, args, out, result)
        log(f"\n== {name.upper()} ({args.chains} chains x {args.samples} draws, "
            f"{run.seconds:.1f} s) ==\n{run.summary}")
        runs[name] = run
    columns = [
        ComparedRun(name.upper(), run.summary, run.report,
                    figure=run.report.parent / "density.png",
                    note=f"{args.chains} chains × {args.samples} draws (thin {args.thin}), "
                    f"step size {args.step_size:g}{' (adapted)' if name != 'ula' else ''}")
        for name, run in runs.items()
    ]
    index = write_comparison_page(out, "ebm_ppl demo: ULA beside MALA", columns, _INTRO)
    return DemoResult(index, runs, pot, result)


def cmd_demo(args: argparse.Namespace) -> int:
    """``ebm-ppl demo``."""
    result = run_demo(args)
    print(f"\nULA beside MALA: {result.index}")
    for name, run in result.runs.items():
        print(f"  {name} report: {run.report}")
    return 0
