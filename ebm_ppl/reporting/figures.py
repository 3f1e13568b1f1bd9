"""The figures of a report, each drawn on its own :class:`matplotlib.figure.Figure`.

Figures never go through ``pyplot``'s global state (Agg canvas via ``Figure.savefig``), so
a report never changes the user's backend or leaks open figures. Each ``*_plot`` function
takes what it draws and the PNG path to write, and returns that path.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import arviz as az
import jax
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ebm_ppl.potential import Potential

__all__ = [
    "FIGURE_DPI",
    "density_plot",
    "energy_plot",
    "flat_draws",
    "ksd_plot",
    "pair_plot",
    "rank_plot",
    "trace_plot",
    "training_curves",
    "training_plot",
]

#: Resolution of the PNGs (readable on screen, small enough to embed in the HTML).
FIGURE_DPI = 100
#: Coordinates shown in trace, rank and pair plots.
MAX_DIMS = 4
#: Points drawn in scatter plots (thinned evenly).
MAX_POINTS = 2000
#: Grid resolution of the density contours of 2-D energies.
GRID = 120
#: History entries that count steps or time rather than measure training.
_BOOKKEEPING = frozenset({"step", "steps", "iteration", "epoch", "time", "wall_time"})
#: Training curves drawn at most (the loss first).
_MAX_CURVES = 6


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=FIGURE_DPI, format="png")
    return path


def flat_draws(idata: Any, max_dims: int = MAX_DIMS) -> tuple[np.ndarray, list[str]]:
    """The first ``max_dims`` scalar components ``(chain, draw, k)`` and their labels."""
    post = idata.posterior
    arrays, labels = [], []
    for name in post.data_vars:
        values = np.asarray(post[name].values, dtype=float)
        flat = values.reshape(values.shape[0], values.shape[1], -1)
        extra = values.shape[2:]
        for j in range(flat.shape[-1]):
            if len(labels) >= max_dims:
                break
            index = np.unravel_index(j, extra) if extra else ()
            labels.append(f"{name}[{','.join(map(str, index))}]" if extra else str(name))
            arrays.append(flat[..., j])
    return np.stack(arrays, axis=-1), labels


def _dataset(arrays: dict[str, np.ndarray]) -> xr.Dataset:
    return xr.Dataset({name: (("chain", "draw"), value) for name, value in arrays.items()})


def _display_idata(idata: Any) -> az.InferenceData:
    """The first :data:`MAX_DIMS` scalars as variables, with divergences for the markers."""
    draws, labels = flat_draws(idata)
    groups = {"posterior": _dataset({label: draws[..., j] for j, label in enumerate(labels)})}
    stats = getattr(idata, "sample_stats", {})
    kept = {name: np.asarray(stats[name].values) for name in ("diverging", "lp")
            if name in stats and np.ndim(stats[name]) == 2}
    if kept:
        groups["sample_stats"] = _dataset(kept)
    return az.InferenceData(**groups)


def trace_plot(idata: Any, path: Path) -> Path:
    """``az.plot_trace`` of the first coordinates: densities per chain and draws."""
    display = _display_idata(idata)
    k = len(display.posterior.data_vars)
    fig = _figure(10, 2.2 * k)
    axes = np.asarray(fig.subplots(k, 2, squeeze=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        az.plot_trace(display, axes=axes, compact=False, show=False)
    return _save(fig, path)


def rank_plot(idata: Any, path: Path) -> Path:
    """``az.plot_rank``: rank histograms per chain, uniform when the chains mix."""
    display = _display_idata(idata)
    k = len(display.posterior.data_vars)
    fig = _figure(3.2 * k, 3)
    axes = np.asarray(fig.subplots(1, k, squeeze=False))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        az.plot_rank(display, ax=axes, show=False)
    return _save(fig, path)


def energy_plot(idata: Any, path: Path) -> Path:
    """``az.plot_energy``: marginal energy against energy transitions, BFMI per chain."""
    fig = _figure(6, 4)
    ax = fig.subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        az.plot_energy(idata, ax=ax, show=False)
    ax.set_title("Energy transition vs marginal energy (BFMI per chain in legend)")
    return _save(fig, path)


def _thin_points(points: np.ndarray, limit: int = MAX_POINTS) -> np.ndarray:
    return points[:: max(1, math.ceil(points.shape[0] / limit))]


def pair_plot(idata: Any, path: Path) -> Path:
    """Histograms on the diagonal, pairwise scatter below it (pooled chains)."""
    draws, labels = flat_draws(idata)
    k = len(labels)
    points = _thin_points(draws.reshape(-1, k))
    fig = _figure(2.4 * k + 0.5, 2.4 * k)
    axes = np.asarray(fig.subplots(k, k, squeeze=False))
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            if i < j:
                ax.set_axis_off()
                continue
            if i == j:
                ax.hist(points[:, i], bins=40, color="#4c72b0", alpha=0.8)
            else:
                ax.scatter(points[:, j], points[:, i], s=3, alpha=0.3, color="#4c72b0")
            if i == k - 1:
                ax.set_xlabel(labels[j])
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i])
    fig.suptitle("Pair plot (pooled chains)")
    return _save(fig, path)


def _density_grid(pot: Potential, lo: np.ndarray, hi: np.ndarray):
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], GRID), np.linspace(lo[1], hi[1], GRID))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=-1).astype(np.float32)
    logp = np.asarray(jax.jit(jax.vmap(pot.logdensity_fn))(grid), dtype=float)
    logp = np.where(np.isfinite(logp), logp, -np.inf).reshape(gx.shape)
    return gx, gy, np.exp(logp - np.max(logp))


def density_plot(
    idata: Any, path: Path, pot: Potential | None = None, data: np.ndarray | None = None
) -> Path:
    r"""Samples (and data) of a 2-D position over contours of :math:`\exp(-E)`."""
    draws, labels = flat_draws(idata)
    samples = _thin_points(draws[..., :2].reshape(-1, 2))
    both = np.concatenate([samples] + ([data] if data is not None else []))
    lo, hi = np.quantile(both, 0.005, axis=0), np.quantile(both, 0.995, axis=0)
    pad = 0.15 * (hi - lo) + 1e-6
    lo, hi = lo - pad, hi + pad
    fig = _figure(6.5, 5.5)
    ax = fig.subplots()
    if pot is not None:
        gx, gy, dens = _density_grid(pot, lo, hi)
        cs = ax.contourf(gx, gy, dens, levels=12, cmap="Blues", alpha=0.85)
        fig.colorbar(cs, ax=ax, label="exp(-E) (rescaled)")
    if data is not None:
        ax.scatter(data[:, 0], data[:, 1], s=6, color="black", alpha=0.5, label="data")
    ax.scatter(samples[:, 0], samples[:, 1], s=6, color="#dd8452", alpha=0.5, label="samples")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.legend(loc="upper right")
    ax.set_title("Samples" + (" and data" if data is not None else "")
                 + (" over the model density" if pot is not None else ""))
    return _save(fig, path)


def ksd_plot(summary: Any, path: Path) -> Path:
    """KSD statistic and test p-value per chain (bars coloured by the verdict rule)."""
    chains = summary.chains
    fig = _figure(8, 3.2)
    ax1, ax2 = fig.subplots(1, 2)
    c = chains["chain"].to_numpy()
    ax1.bar(c, chains["ksd_statistic"].to_numpy(), color="#4c72b0")
    ax1.set_xlabel("chain")
    ax1.set_ylabel("n · KSD² (IMQ)")
    ax1.set_title("KSD statistic per chain")
    p = chains["ksd_p_value"].to_numpy()
    colours = ["#c62828" if v < 0.01 else "#ef6c00" if v < 0.05 else "#2e7d32" for v in p]
    ax2.bar(c, p, color=colours)
    ax2.axhline(0.05, color="black", ls="--", lw=1, label="0.05")
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("chain")
    ax2.set_ylabel("p-value")
    ax2.set_title(f"KSD test p-value (pooled {summary.ksd_test.p_value:.3g})")
    ax2.legend()
    if len(c) <= 16:
        for ax in (ax1, ax2):
            ax.set_xticks(c)
    return _save(fig, path)


def training_curves(fit_result: Any) -> dict[str, np.ndarray]:
    """The meaningful curves of a training history, the loss first.

    ``fit_result`` is anything with a ``history`` mapping (``ebm_ppl.fit``'s result) or
    the mapping itself, name -> per-step values. Kept: 1-D numeric entries with a finite
    value that change over the run. Dropped: step counters and clocks (``step``,
    ``time``...), constant columns (a fixed noise level, say) and entries that are all
    non-finite; at most six curves.
    """
    history = getattr(fit_result, "history", fit_result)
    try:
        history = dict(history)
    except (TypeError, ValueError):
        return {}
    out = {}
    for name, values in history.items():
        try:
            arr = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            continue
        finite = arr[np.isfinite(arr)] if arr.ndim == 1 else arr[:0]
        if str(name).lower() in _BOOKKEEPING or finite.size == 0:
            continue
        if arr.size > 1 and np.ptp(finite) == 0:
            continue
        out[str(name)] = arr
    names = sorted(out, key=lambda n: n != "loss")[:_MAX_CURVES]
    return {name: out[name] for name in names}


def training_plot(history: dict[str, np.ndarray], path: Path) -> Path:
    """One panel per curve of :func:`training_curves`, with a moving average."""
    names = list(history)
    cols, rows = min(len(names), 3), math.ceil(len(names) / 3)
    fig = _figure(4 * cols, 3 * rows)
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, name in zip(axes, names):
        values = history[name]
        steps = np.arange(values.size)
        ax.plot(steps, values, lw=0.8, alpha=0.5, color="#4c72b0")
        window = max(1, values.size // 50)
        if window > 1:
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1:], smooth, color="#c44e52", lw=1.5, label="moving avg")
            ax.legend()
        ax.set_title(name)
        ax.set_xlabel("step")
    for ax in axes[len(names):]:
        ax.set_axis_off()
    return _save(fig, path)
