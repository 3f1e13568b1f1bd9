"""Mutation check: apply each curated bug to the maths and see whether the tests catch it.

Usage (from the repository root)::

    python -m tools.mutate                 # every mutant, report table on stdout
    python -m tools.mutate --list          # the mutants, no test run
    python -m tools.mutate --only kernels.ula_noise_scale,objectives.dsm_sign
    python -m tools.mutate --area objectives --out mutation-report.md
    python -m tools.mutate --full          # confirm survivors with the whole default run

Why a curated list and not ``mutmut``/``cosmic-ray``: those tools mutate every operator of
every line (thousands of mutants over 16k lines, most of them in validation and
formatting code, or equivalent), and each mutant costs a JAX compile-heavy test run; a
full run would take days on 2 cores. A curated list holds the bugs a developer would
actually write in the *maths* (a sign, a factor of 2, a missing Hastings term, a swapped
key), names the tests that should catch each, and runs in well under an hour.

Each mutant is applied to a private copy of the tree (``ebm_ppl``, ``tests``,
``examples``, ``pyproject.toml``) made in a temporary folder, so the working tree is
never edited and concurrent work is not disturbed. The copy is put first on
``PYTHONPATH``, so it shadows an editable install. For each mutant the runner:

1. runs the mutant's listed tests (all in the default run, ``-m 'not slow'``) with
   ``-x``; a failure there means the default run fails: **caught**;
2. with ``--full``, runs the whole default run when those pass, to find out whether any
   other default test catches it; otherwise the mutant is reported **missed**.

A mutant whose ``old`` text is not found exactly once is reported **stale** (the list
has rotted); ``tests/test_mutation_list.py`` keeps that from happening unnoticed.
Exit status: 0 when every mutant is caught, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tools.mutants import Mutant, all_mutants

__all__ = ["apply", "main", "run_mutant"]

ROOT = Path(__file__).resolve().parent.parent
#: What the copy holds: enough for the default test run.
COPIED = ("ebm_ppl", "tests", "examples", "pyproject.toml", "README.md", "tools", "benchmarks")


def apply(source: str, mutant: Mutant) -> str:
    """The mutated text of ``source``; ``ValueError`` unless ``old`` occurs exactly once."""
    count = source.count(mutant.old)
    if count != 1:
        raise ValueError(f"{mutant.name}: expected 1 occurrence of old text in {mutant.path}, found {count}")
    return source.replace(mutant.old, mutant.new)


def _copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "*.egg-info")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / name)


def _pytest(copy: Path, targets: list[str], timeout: float, workers: int) -> tuple[int, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("MPLBACKEND", "Agg")
    env["EBM_PPL_MUTATION_COPY"] = str(copy)
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
    cmd += ["-n", str(workers if workers > 1 else 0)]
    cmd += targets
    try:
        proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, "timeout"
    tail = (proc.stdout + proc.stderr).strip().splitlines()
    return proc.returncode, (tail[-1] if tail else "")


def run_mutant(mutant: Mutant, full: bool = False, timeout: float = 900.0, workers: int = 1) -> dict:
    """Apply one mutant in a fresh copy and run its tests; a result record."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ebm-ppl-mutant-") as tmp:
        copy = Path(tmp)
        _copy_tree(copy)
        target = copy / mutant.path
        try:
            target.write_text(apply(target.read_text(), mutant))
        except ValueError as err:
            return {"name": mutant.name, "status": "stale", "by": str(err), "seconds": 0.0}
        # The copy must shadow any installed ebm_ppl: check before trusting a pass.
        probe = subprocess.run(
            [sys.executable, "-c", "import ebm_ppl, sys; sys.stdout.write(ebm_ppl.__file__)"],
            cwd=copy, capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": str(copy)},
        )
        if not probe.stdout.startswith(str(copy)):
            raise RuntimeError(f"the mutated copy does not shadow ebm_ppl: {probe.stdout or probe.stderr}")
        rc, last = _pytest(copy, list(mutant.tests), timeout, workers)
        if rc == 5:
            status, by = "missed", "its listed tests collect nothing"
        elif rc == 124:
            status, by = "caught", "listed tests (timeout)"
        elif rc != 0:
            status, by = "caught", "listed tests"
        else:
            status, by = "missed", ""
            if full:
                rc, last = _pytest(copy, [], timeout * 4, 2)
                if rc not in (0, 5):
                    status, by = "caught", "default run"
    return {
        "name": mutant.name,
        "status": status,
        "by": by,
        "summary": last,
        "seconds": time.perf_counter() - start,
        "why": mutant.why,
        "path": mutant.path,
    }


def _table(results: list[dict]) -> str:
    lines = ["| mutant | file | bug | result | caught by | s |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| `{r['name']}` | `{r.get('path', '')}` | {r.get('why', '')} | **{r['status']}** | "
            f"{r['by']} | {r['seconds']:.0f} |"
        )
    caught = sum(r["status"] == "caught" for r in results)
    lines.append("")
    lines.append(f"{caught} of {len(results)} mutants caught.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutate", description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--only", default="", help="comma-separated mutant names")
    parser.add_argument("--area", default="", help="only mutants whose name starts with AREA.")
    parser.add_argument("--full", action="store_true", help="confirm survivors with the whole default run")
    parser.add_argument("--workers", type=int, default=1, help="pytest-xdist workers per mutant (default 1)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per listed-test run")
    parser.add_argument("--out", default="", help="also write the Markdown table here")
    args = parser.parse_args(argv)

    mutants = all_mutants()
    names = [m.name for m in mutants]
    if len(set(names)) != len(names):
        parser.error("mutant names are not unique")
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - set(names)
        if unknown:
            parser.error(f"unknown mutants: {sorted(unknown)}")
        mutants = [m for m in mutants if m.name in wanted]
    if args.area:
        mutants = [m for m in mutants if m.name.startswith(args.area + ".")]
    if args.list:
        for m in mutants:
            print(f"{m.name:45s} {m.path:45s} {m.why}")
        print(f"{len(mutants)} mutants")
        return 0
    results: list[dict] = []

    def one(mutant: Mutant) -> dict:
        result = run_mutant(mutant, full=args.full, timeout=args.timeout, workers=args.workers)
        print(f"{result['status']:6s} {mutant.name} ({result['seconds']:.0f} s) {result.get('summary', '')}",
              flush=True)
        return result

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(one, mutants))
    table = _table(results)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")
    return 0 if all(r["status"] == "caught" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
