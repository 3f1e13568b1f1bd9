"""``ebm_ppl.report``: a self-contained HTML page and a Markdown report with PNG figures.

Figures are drawn on :class:`matplotlib.figure.Figure` objects (Agg canvas via
``Figure.savefig``), never through ``pyplot``'s global state, so a report never changes
the user's backend or leaks open figures.
"""

from __future__ import annotations

import base64
import html
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ebm_ppl.potential import Potential

__all__ = ["report", "render_from_netcdf", "FIGURE_DPI"]

#: Resolution of the PNGs (readable on screen, small enough to embed in the HTML).
FIGURE_DPI = 100
#: Coordinates shown in trace, rank and pair plots.
_MAX_DIMS = 4
#: Points drawn in scatter plots (thinned evenly).
_MAX_POINTS = 2000
#: Grid resolution of the density contours of 2-D energies.
_GRID = 120

_STATUS_COLOURS = {"pass": "#2e7d32", "warn": "#ef6c00", "fail": "#c62828", "n/a": "#757575"}


# ----------------------------------------------------------------------- helpers
def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=FIGURE_DPI, format="png")
    return path


def _flat_draws(idata: Any) -> tuple[np.ndarray, list[str]]:
    """Up to ``_MAX_DIMS`` scalar components ``(chain, draw, k)`` and their labels."""
    post = idata.posterior
    arrays, labels = [], []
    for name in post.data_vars:
        values = np.asarray(post[name].values, dtype=float)
        flat = values.reshape(values.shape[0], values.shape[1], -1)
        extra = values.shape[2:]
        for j in range(flat.shape[-1]):
            if len(labels) >= _MAX_DIMS:
                break
            index = np.unravel_index(j, extra) if extra else ()
            labels.append(f"{name}[{','.join(map(str, index))}]" if extra else str(name))
            arrays.append(flat[..., j])
    return np.stack(arrays, axis=-1), labels


def _display_idata(idata: Any) -> Any:
    """InferenceData with at most ``_MAX_DIMS`` scalar variables (for ArviZ plots)."""
    from ebm_ppl.inference_data import az

    draws, labels = _flat_draws(idata)
    posterior = {label: draws[..., j] for j, label in enumerate(labels)}
    stats = {}
    if hasattr(idata, "sample_stats"):
        for name in ("energy", "diverging", "lp"):
            if name in idata.sample_stats:
                stats[name] = np.asarray(idata.sample_stats[name].values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.from_dict(posterior=posterior, sample_stats=stats or None)


def _trace_plot(idata: Any, path: Path) -> Path:
    from ebm_ppl.inference_data import az

    disp = _display_idata(idata)
    k = len(disp.posterior.data_vars)
    fig = _figure(10, 2.2 * k)
    axes = np.asarray(fig.subplots(k, 2, squeeze=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        az.plot_trace(disp, axes=axes, compact=False, show=False)
    return _save(fig, path)


def _rank_plot(idata: Any, path: Path) -> Path:
    from ebm_ppl.inference_data import az

    disp = _display_idata(idata)
    k = len(disp.posterior.data_vars)
    fig = _figure(3.2 * k, 3)
    axes = np.asarray(fig.subplots(1, k, squeeze=False))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        az.plot_rank(disp, ax=axes, show=False)
    return _save(fig, path)


def _energy_plot(idata: Any, path: Path) -> Path:
    from ebm_ppl.inference_data import az

    fig = _figure(6, 4)
    ax = fig.subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        az.plot_energy(idata, ax=ax, show=False)
    ax.set_title("Energy transition vs marginal energy (BFMI per chain in legend)")
    return _save(fig, path)


def _thin_points(points: np.ndarray, limit: int = _MAX_POINTS) -> np.ndarray:
    step = max(1, math.ceil(points.shape[0] / limit))
    return points[::step]


def _pair_plot(idata: Any, path: Path) -> Path:
    draws, labels = _flat_draws(idata)
    k = len(labels)
    points = _thin_points(draws.reshape(-1, k))
    fig = _figure(2.4 * k + 0.5, 2.4 * k)
    axes = np.asarray(fig.subplots(k, k, squeeze=False))
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            if i == j:
                ax.hist(points[:, i], bins=40, color="#4c72b0", alpha=0.8)
            elif i > j:
                ax.scatter(points[:, j], points[:, i], s=3, alpha=0.3, color="#4c72b0")
            else:
                ax.set_axis_off()
                continue
            if i == k - 1:
                ax.set_xlabel(labels[j])
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i])
    fig.suptitle("Pair plot (pooled chains)")
    return _save(fig, path)


def _density_plot(
    idata: Any, path: Path, pot: Potential | None, data: np.ndarray | None
) -> Path:
    import jax

    draws, labels = _flat_draws(idata)
    samples = _thin_points(draws[..., :2].reshape(-1, 2))
    clouds = [samples] + ([data] if data is not None else [])
    both = np.concatenate(clouds)
    lo, hi = np.quantile(both, 0.005, axis=0), np.quantile(both, 0.995, axis=0)
    pad = 0.15 * (hi - lo) + 1e-6
    lo, hi = lo - pad, hi + pad
    fig = _figure(6.5, 5.5)
    ax = fig.subplots()
    if pot is not None:
        gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], _GRID), np.linspace(lo[1], hi[1], _GRID))
        grid = np.stack([gx.ravel(), gy.ravel()], axis=-1).astype(np.float32)
        logp = np.asarray(jax.jit(jax.vmap(pot.logdensity_fn))(grid), dtype=float)
        logp = np.where(np.isfinite(logp), logp, -np.inf).reshape(gx.shape)
        dens = np.exp(logp - np.max(logp))
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


def _ksd_plot(summary: Any, path: Path) -> Path:
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
    for ax in (ax1, ax2):
        ax.set_xticks(c)
    return _save(fig, path)


def _history(fit_result: Any) -> dict[str, np.ndarray]:
    history = getattr(fit_result, "history", fit_result)
    if not isinstance(history, dict):
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
        if arr.ndim == 1 and arr.size > 0:
            out[str(name)] = arr
    return out


def _training_plot(history: dict[str, np.ndarray], path: Path) -> Path:
    names = ["loss"] + [n for n in history if n != "loss"] if "loss" in history else list(history)
    names = names[:6]
    fig = _figure(4 * min(len(names), 3), 3 * math.ceil(len(names) / 3))
    axes = np.asarray(fig.subplots(math.ceil(len(names) / 3), min(len(names), 3),
                                   squeeze=False)).ravel()
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


# ----------------------------------------------------------------------- documents
def _verdict_html(verdict: Any) -> str:
    rows = []
    for _, r in verdict.iterrows():
        colour = _STATUS_COLOURS.get(r["status"], "#757575")
        rows.append(
            f"<tr><td>{html.escape(str(r['check']))}</td><td>{html.escape(str(r['value']))}</td>"
            f"<td class='status' style='background:{colour}'>{html.escape(str(r['status']))}"
            f"</td><td>{html.escape(str(r['rule']))}</td></tr>"
        )
    return ("<table class='verdict'><thead><tr><th>check</th><th>value</th><th>status</th>"
            "<th>rule</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f0f0f0; }
td.status { color: white; font-weight: bold; text-align: center; }
.overall { font-size: 1.3em; font-weight: bold; padding: 0.4em 0.8em; color: white;
           display: inline-block; border-radius: 4px; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
"""


def _write_documents(
    out: Path, title: str, summary: Any, figures: list[tuple[str, Path, str]],
    extra_md: list[str],
) -> Path:
    md = [f"# {title}", "", summary.to_markdown(), ""]
    md += extra_md
    md += ["## Figures", ""]
    for heading, path, caption in figures:
        md += [f"### {heading}", "", f"![{heading}]({path.name})", "", caption, ""]
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")

    colour = _STATUS_COLOURS[summary.status]
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p><span class='overall' style='background:{colour}'>Overall: "
        f"{summary.status.upper()}</span></p>",
        "<h2>Verdict</h2>", _verdict_html(summary.verdict),
        "<h2>Chains</h2>", summary.chains.to_html(index=False, float_format="%.4g"),
        "<h2>Posterior</h2>", summary.posterior.to_html(float_format="%.4g"),
    ]
    for block in extra_md:
        if block.startswith("## "):
            body.append(f"<h2>{html.escape(block[3:])}</h2>")
        elif block:
            body.append(f"<pre>{html.escape(block)}</pre>")
    body.append("<h2>Figures</h2>")
    for heading, path, caption in figures:
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        body.append(
            f"<figure id='{path.stem}'><h3>{html.escape(heading)}</h3>"
            f"<img alt='{path.name}' title='{path.name}' data-file='{path.name}' "
            f"src='data:image/png;base64,{encoded}'/>"
            f"<figcaption>{html.escape(caption)} (<code>{path.name}</code>)</figcaption></figure>"
        )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body) + "</body></html>"
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def report(
    idata: Any,
    out_dir: str | Path,
    pot: Potential | None = None,
    data: Any = None,
    fit_result: Any = None,
    *,
    ula_bias: Any = None,
    summary: Any = None,
    title: str = "ebm_ppl report",
    seed: int = 0,
) -> Path:
    """Write ``index.html`` (self-contained) and ``report.md`` with PNG figures.

    Contents: the verdict table (R-hat, ESS, divergences, KSD p-value, ULA bias, drift)
    with pass/warn/fail, per-chain and posterior tables, and the figures

    * ``trace.png`` and ``rank.png`` (``az.plot_trace``, ``az.plot_rank``; first 4
      coordinates);
    * ``energy.png`` (``az.plot_energy``, with BFMI) when ``sample_stats`` has ``energy``;
    * ``pair.png`` (up to 4 coordinates);
    * ``density.png`` for 2-D positions: samples (and ``data``) over contours of
      :math:`\\exp(-E)` when ``pot`` is given;
    * ``ksd.png``: KSD statistic and p-value per chain (needs ``pot``);
    * ``training.png``: curves of ``fit_result.history`` (name -> per-step array).

    Parameters
    ----------
    idata
        ``arviz.InferenceData`` (posterior, ideally from :func:`ebm_ppl.sample`).
    out_dir
        Output folder (created).
    pot
        The sampled potential: enables KSD, energy-based drift, density contours.
    data
        Optional ``(n, 2)`` training data drawn in the density plot.
    fit_result
        Anything with a ``history`` dict (or the dict itself), e.g. ``ebm_ppl.fit``'s
        result; duck-typed.
    ula_bias
        A :class:`~ebm_ppl.diagnostics.ULABiasResult` to include.
    summary
        A precomputed :class:`~ebm_ppl.diagnostics.DiagnosticSummary` (else computed).
    title
        Page title.
    seed
        Seed of the KSD bootstrap.

    Returns
    -------
    pathlib.Path
        Path of ``index.html``.

    Examples
    --------
    >>> import jax.numpy as jnp, ebm_ppl, tempfile
    >>> pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))
    >>> idata = ebm_ppl.sample(pot, ebm_ppl.kernels.mala(0.5), jnp.zeros(2), progress=False)
    >>> path = report(idata, tempfile.mkdtemp(), pot=pot)  # doctest: +SKIP
    """
    from ebm_ppl.diagnostics.summary import summary as diagnostic_summary
    from ebm_ppl.inference_data import read_config

    if not hasattr(idata, "posterior"):
        raise TypeError(f"idata must be an arviz.InferenceData, got {type(idata).__name__}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if summary is None:
        summary = diagnostic_summary(idata, pot, ula_bias=ula_bias, seed=seed)
    data_arr = None
    if data is not None:
        data_arr = np.asarray(data, dtype=float)
        if data_arr.ndim != 2:
            raise ValueError(f"data must have shape (n, d), got {data_arr.shape}")

    plots: list[tuple[str, str, Callable[[Path], Path], str]] = [
        ("Trace", "trace.png", lambda p: _trace_plot(idata, p),
         "Marginal densities per chain (left) and draws against iteration (right)."),
        ("Rank plot", "rank.png", lambda p: _rank_plot(idata, p),
         "Rank histograms per chain: roughly uniform when the chains mix."),
    ]
    if hasattr(idata, "sample_stats") and "energy" in idata.sample_stats:
        plots.append(("Energy / BFMI", "energy.png", lambda p: _energy_plot(idata, p),
                      "Marginal energy vs energy transitions; BFMI < 0.3 signals poor "
                      "exploration."))
    draws, labels = _flat_draws(idata)
    if len(labels) >= 2:
        plots.append(("Pair plot", "pair.png", lambda p: _pair_plot(idata, p),
                      "Pairwise scatter of the first coordinates (pooled chains)."))
    total_dim = sum(int(np.prod(idata.posterior[v].shape[2:])) for v in idata.posterior.data_vars)
    if total_dim == 2:
        plots.append(("Samples vs density", "density.png",
                      lambda p: _density_plot(idata, p, pot, data_arr),
                      "Samples (orange)" + (", data (black)" if data_arr is not None else "")
                      + (" over contours of exp(-E)." if pot is not None else ".")))
    if summary.ksd_test is not None and "ksd_p_value" in summary.chains:
        plots.append(("Kernel Stein discrepancy", "ksd.png", lambda p: _ksd_plot(summary, p),
                      "IMQ KSD test per chain (Markov wild bootstrap)."))
    history = _history(fit_result) if fit_result is not None else {}
    if history:
        plots.append(("Training curves", "training.png",
                      lambda p: _training_plot(history, p),
                      "Per-step training metrics with a moving average."))

    figures = []
    for heading, name, draw_fn, caption in plots:
        try:
            path = draw_fn(out / name)
        except Exception as err:  # noqa: BLE001 - a failed figure must not lose the report
            warnings.warn(f"report: could not draw {name} ({type(err).__name__}: {err})",
                          RuntimeWarning, stacklevel=2)
            continue
        figures.append((heading, path, caption))

    extra = []
    config = read_config(idata)
    if config:
        keys = ("kernel", "num_chains", "num_samples", "num_warmup", "thin", "step_size",
                "sampling_time_s", "seed")
        lines = [f"- {k}: {config[k]}" for k in keys if k in config]
        extra += ["## Run configuration", "\n".join(lines), ""]
    if ula_bias is not None:
        extra += ["## ULA bias", str(ula_bias), ""]
    return _write_documents(out, title, summary, figures, extra)


def render_from_netcdf(path: str | Path, out_dir: str | Path, **kwargs: Any) -> Path:
    """Load an ``InferenceData`` netCDF file and write its report (``ebm-ppl report``).

    Parameters
    ----------
    path
        A ``.nc`` file written by ``idata.to_netcdf``.
    out_dir
        Output folder.
    **kwargs
        Passed to :func:`report`.

    Returns
    -------
    pathlib.Path
        Path of ``index.html``.
    """
    from ebm_ppl.inference_data import az

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such netCDF file: {path}")
    idata = az.from_netcdf(str(path))
    return report(idata, out_dir, **kwargs)
