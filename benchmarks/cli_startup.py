"""Start-up cost of ``import ebm_ppl`` and of the ``ebm-ppl`` command, against JAX's stack.

Each case runs in a fresh Python process (the only honest way to time an import), ``--repeat``
times; the table gives the median wall time and its ratio to ``import jax, numpyro,
blackjax`` measured in the same run. Goals (issue #27): ``ebm-ppl --help`` and an argument
error under 1 s; ``import ebm_ppl`` within 1.2× of the JAX stack.

Run on an idle machine (the 1-minute load average is printed beside the figures)::

    python benchmarks/cli_startup.py --repeat 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

__all__ = ["CASES", "main"]

_CLI = [sys.executable, "-c", "import sys; from ebm_ppl.cli import main; sys.exit(main())"]

#: (label, argv) of each case; the first is the reference of the ratios.
CASES: list[tuple[str, list[str]]] = [
    ("import jax, numpyro, blackjax", [sys.executable, "-c", "import jax, numpyro, blackjax"]),
    ("import ebm_ppl", [sys.executable, "-c", "import ebm_ppl"]),
    ("from ebm_ppl import Potential, sample (sampling stack loaded)",
     [sys.executable, "-c", "from ebm_ppl import Potential, sample"]),
    ("ebm-ppl --help", [*_CLI, "--help"]),
    ("ebm-ppl train --steps -1 (argument error)", [*_CLI, "train", "--steps", "-1"]),
]


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=False, env={**os.environ, "MPLBACKEND": "Agg"})
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    medians = {}
    for label, case in CASES:
        _time(case)  # warm the file-system cache
        medians[label] = statistics.median(_time(case) for _ in range(args.repeat))
    reference = medians[CASES[0][0]]
    print(f"load average (1 min) at start {load:.2f}, at end {os.getloadavg()[0]:.2f}; "
          f"{os.cpu_count()} CPUs; median of {args.repeat} fresh processes")
    print("| case | wall s | × JAX stack |")
    print("|---|---|---|")
    for label, value in medians.items():
        print(f"| {label} | {value:.3f} | {value / reference:.2f} |")


if __name__ == "__main__":
    main()
