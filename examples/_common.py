"""Helpers shared by the example scripts (argument parsing, output folder, small stats).

Not part of the library: each example imports only what it needs from here so that the
scripts stay short and read as the seed texts' demonstrations.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = [
    "ALPHA",
    "critical_z",
    "parse_args",
    "rbf_mmd2",
    "save_json",
    "Timer",
]

#: Family-wise false-alarm probability of the Monte-Carlo checks (as in the test suite).
ALPHA = 1e-3

EXAMPLES_DIR = Path(__file__).resolve().parent


def critical_z(k: int, alpha: float = ALPHA) -> float:
    """Two-sided Bonferroni critical value ``Phi^{-1}(1 - alpha / (2 k))`` for ``k`` checks."""
    return NormalDist().inv_cdf(1.0 - alpha / (2.0 * max(int(k), 1)))


def parse_args(name: str, description: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``[--quick] [--out DIR] [--seed N]``; create and return the output folder.

    The default output folder is ``examples/output/<name>/``.
    """
    parser = argparse.ArgumentParser(prog=f"{name}.py", description=description)
    parser.add_argument("--quick", action="store_true",
                        help="reduced sizes (used by the test suite)")
    parser.add_argument("--out", type=Path, default=EXAMPLES_DIR / "output" / name,
                        help="folder for figures and results.json")
    parser.add_argument("--seed", type=int, default=0, help="integer seed of the run")
    args = parser.parse_args(list(argv) if argv is not None else None)
    args.out = Path(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return _jsonable(np.asarray(value).tolist())
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # jax arrays
        return _jsonable(np.asarray(value).tolist())
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def save_json(results: dict[str, Any], out: Path) -> None:
    """Write ``results`` (numbers, arrays, nested dicts) to ``out / results.json``."""
    (out / "results.json").write_text(json.dumps(_jsonable(results), indent=2))


class Timer:
    """Wall-clock timer: ``with Timer() as t: ...; t.seconds``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = float("nan")
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def rbf_mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float | None = None) -> float:
    r"""Unbiased squared maximum mean discrepancy with a Gaussian (RBF) kernel.

    .. math::

        \widehat{\mathrm{MMD}}^2 = \frac{1}{m(m-1)}\sum_{i\ne j} k(x_i, x_j)
        + \frac{1}{n(n-1)}\sum_{i\ne j} k(y_i, y_j) - \frac{2}{mn}\sum_{i,j} k(x_i, y_j),
        \qquad k(a, b) = \exp\!\big(-\|a-b\|^2 / (2\ell^2)\big).

    ``bandwidth`` :math:`\ell` defaults to the median heuristic of Gretton et al. (2012),
    :math:`\ell^2 = \operatorname{median}\|a-b\|^2 / 2` over the pooled sample.
    Computed in numpy; meant for a few thousand points.
    """
    x = np.asarray(x, float).reshape(len(x), -1)
    y = np.asarray(y, float).reshape(len(y), -1)
    pooled = np.concatenate([x, y])
    d2 = np.sum((pooled[:, None, :] - pooled[None, :, :]) ** 2, axis=-1)
    if bandwidth is None:
        bandwidth = float(np.sqrt(0.5 * np.median(d2[np.triu_indices(len(pooled), 1)])))
    k = np.exp(-d2 / (2.0 * bandwidth**2))
    m, n = len(x), len(y)
    kxx, kyy, kxy = k[:m, :m], k[m:, m:], k[:m, m:]
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2.0 * kxy.mean()
    )
