"""Run the ebm_ppl benchmarks and write ``benchmarks.json`` and ``benchmarks.md``.

Usage::

    python benchmarks/run.py [--quick] [--out benchmarks/results] [--only sampling,compile]

``--quick`` (1000 chains × 200 steps, NUTS 100 × 100) is meant to finish in under five
minutes on two idle CPU cores; the full run uses 1000 × 1000 (NUTS 100 × 200).

Benchmarks: :mod:`bench_sampling` (issue #7), :mod:`bench_compile` (issue #9) and, when
``benchmarks/bench_training.py`` exists and exposes ``run(quick: bool) -> list[dict]``,
the training benchmark.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

__all__ = ["main", "to_markdown"]

BENCHES = ("sampling", "compile", "training")

_SAMPLING_COLUMNS = [
    ("target", "target"), ("algorithm", "alg"), ("impl", "implementation"),
    ("chains", "chains"), ("steps", "steps"), ("first_call_s", "1st call s"),
    ("compile_s", "compile s"), ("steady_s", "steady s"), ("loop_s", "loop s"),
    ("evals_per_s", "grad evals/s"), ("ess_min", "min ESS"), ("ess_per_s", "ESS/s"),
    ("bytes_per_chain", "stored B/chain"), ("rss_delta_mib", "maxRSS Δ MiB"),
    ("ratio_vs_hand", "ratio vs hand"), ("note", "note"),
]
_COMPILE_COLUMNS = [
    ("case", "case"), ("call", "call"), ("wall_s", "wall s"), ("xla_compiles", "XLA compiles"),
    ("xla_compile_s", "XLA compile s"), ("cache_hits", "disk-cache hits"), ("note", "note"),
]


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value == 0:
            return "0"
        magnitude = abs(value)
        if magnitude >= 1e5:
            return f"{value:.3g}"
        if magnitude >= 100:
            return f"{value:.0f}"
        if magnitude >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value).replace("|", "\\|")


def _table(rows: Sequence[dict], columns: Sequence[tuple[str, str]]) -> str:
    used = [(key, title) for key, title in columns if any(key in r for r in rows)]
    lines = ["| " + " | ".join(title for _, title in used) + " |",
             "|" + "|".join("---" for _ in used) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_format(row.get(key)) for key, _ in used) + " |")
    return "\n".join(lines)


def to_markdown(results: dict[str, Any]) -> str:
    """Markdown report: one table per benchmark, plus the run's metadata."""
    meta = results["meta"]
    out = [
        "# ebm_ppl benchmarks",
        "",
        f"Mode: {'quick' if meta['quick'] else 'full'}; {meta['date']}; total wall "
        f"{meta['wall_s']:.0f} s, CPU (user+sys, this process and its children) "
        f"{meta['cpu_s']:.0f} s, peak RSS {meta['peak_rss_mib']:.0f} MiB, 1-minute load "
        f"average {meta['load_average_1min'][0]:.2f} at the start and "
        f"{meta['load_average_1min'][1]:.2f} at the end.",
        "",
        "Platform: " + ", ".join(f"{k} {v}" for k, v in meta["platform"].items()),
        "",
    ]
    for name, rows in results["benchmarks"].items():
        out += [f"## {name}", ""]
        if isinstance(rows, dict) and "error" in rows:
            out += [f"Failed: `{rows['error']}`", ""]
            continue
        if name == "sampling":
            out += [_table(rows, _SAMPLING_COLUMNS), ""]
        elif name == "compile":
            out += [_table(rows, _COMPILE_COLUMNS), ""]
        else:
            keys: list[str] = []
            for r in rows:
                keys += [k for k in r if k not in keys]
            out += [_table(rows, [(k, k) for k in keys]), ""]
    return "\n".join(out)


def _load(name: str) -> Callable[..., list[dict]] | None:
    module_name = f"bench_{name}"
    if not (HERE / f"{module_name}.py").exists():
        return None
    module = importlib.import_module(module_name)
    fn = getattr(module, "run", None)
    return fn if callable(fn) else None


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_rss_mib() -> float:
    """Peak resident set size of this process (a high-water mark), in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (< 5 min)")
    parser.add_argument("--out", type=Path, default=HERE / "results",
                        help="output folder (default: benchmarks/results)")
    parser.add_argument("--only", default=",".join(BENCHES),
                        help=f"comma-separated subset of {', '.join(BENCHES)}")
    args = parser.parse_args(argv)
    selected = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = set(selected) - set(BENCHES)
    if unknown:
        parser.error(f"--only must name benchmarks among {list(BENCHES)}, got {sorted(unknown)}")

    from _common import platform_info

    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    results: dict[str, Any] = {"meta": {}, "benchmarks": {}}
    status = 0
    for name in selected:
        fn = _load(name)
        if fn is None:
            print(f"[run] {name}: benchmarks/bench_{name}.py with run(quick) not found; skipped")
            continue
        t0 = time.perf_counter()
        try:
            results["benchmarks"][name] = fn(quick=args.quick)
        except Exception as err:  # noqa: BLE001 - one failing bench must not lose the others
            traceback.print_exc()
            results["benchmarks"][name] = {"error": f"{type(err).__name__}: {err}"}
            status = 1
        print(f"[run] {name}: {time.perf_counter() - t0:.1f} s")
    results["meta"] = {
        "quick": args.quick,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "wall_s": time.perf_counter() - started,
        "cpu_s": _cpu_seconds(),
        "peak_rss_mib": _peak_rss_mib(),
        "load_average_1min": [load_start, os.getloadavg()[0]],
        "platform": platform_info(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmarks.json").write_text(
        json.dumps(results, indent=1, default=float) + "\n")
    (args.out / "benchmarks.md").write_text(to_markdown(results) + "\n")
    print(f"[run] wrote {args.out / 'benchmarks.json'} and {args.out / 'benchmarks.md'} "
          f"in {results['meta']['wall_s']:.0f} s")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
