"""``report``: compute what is missing, draw the figures, write the documents."""

from __future__ import annotations

import math
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ebm_ppl.diagnostics._samples import posterior_array
from ebm_ppl.diagnostics.goodness_of_fit import goodness_of_fit
from ebm_ppl.diagnostics.mmd import mmd_test
from ebm_ppl.diagnostics.summaries import RULES, p_value_status
from ebm_ppl.diagnostics.summaries import summary as diagnostic_summary
from ebm_ppl.inference_data import read_config
from ebm_ppl.potential import Potential
from ebm_ppl.reporting import figures
from ebm_ppl.reporting.documents import ReportFigure, Section, write_run_documents

__all__ = ["log_z_table", "report", "model_vs_data"]

#: Points per sample used by the model-versus-data tests (their cost is quadratic).
MAX_TEST_POINTS = 1000
#: Bootstrap replicates / permutations of the model-versus-data tests.
NUM_RESAMPLES = 500
#: Run configuration entries shown in the report.
_CONFIG_KEYS = ("kernel", "num_chains", "num_samples", "num_warmup", "thin", "step_size",
                "sampling_time_s", "seed")
#: File names of the report's own figures, which ``images`` may not reuse.
FIGURE_FILES = ("trace.png", "rank.png", "energy.png", "pair.png", "density.png", "ksd.png",
                "training.png")


def _even_subsample(draws: np.ndarray, limit: int) -> np.ndarray:
    """``(chain, k, d)`` with evenly spaced draws of each chain, ``chain * k <= limit``."""
    per_chain = max(1, limit // draws.shape[0])
    step = max(1, -(-draws.shape[1] // per_chain))
    return draws[:, ::step][:, :per_chain]


def log_z_table(estimates: Sequence[Any]) -> pd.DataFrame:
    r"""Rows ``method``, ``log Z``, ``standard error`` of each estimate (its class name
    without ``Result``: ``AIS``, ``SMC``), and with two estimates a row with their
    difference in combined standard errors, :math:`z = |a - b| / \sqrt{s_a^2 + s_b^2}`."""
    rows = []
    for est in estimates:
        if not (hasattr(est, "log_z") and hasattr(est, "stderr")):
            raise TypeError(f"log_z entries must have log_z and stderr (ais_log_z, smc_log_z "
                            f"results), got {type(est).__name__}")
        rows.append((type(est).__name__.removesuffix("Result"), f"{float(est.log_z):.4f}",
                     f"{float(est.stderr):.4f}"))
    if len(estimates) == 2:
        a, b = estimates
        z = abs(float(a.log_z) - float(b.log_z)) / math.hypot(float(a.stderr), float(b.stderr))
        rows.append(("difference", f"{float(a.log_z) - float(b.log_z):+.4f}", f"z = {z:.2f}"))
    return pd.DataFrame(rows, columns=["method", "log Z", "standard error"])


def model_vs_data(
    idata: Any, pot: Potential, data: np.ndarray, *, seed: int = 0
) -> pd.DataFrame:
    """Does the model fit the data, and do the draws look like the data?

    Two tests, each on at most :data:`MAX_TEST_POINTS` points per sample:
    :func:`~ebm_ppl.diagnostics.goodness_of_fit` (kernel Stein discrepancy of the data
    under the model's score; no sampling involved) and
    :func:`~ebm_ppl.diagnostics.mmd_test` (draws against data, evenly thinned chains).
    Held-out data make both meaningful; the training data make them lenient.

    Returns
    -------
    pandas.DataFrame
        Rows ``check``, ``value``, ``status`` (the p-value rule of the verdict,
        :func:`~ebm_ppl.diagnostics.summaries.p_value_status`), ``rule``.
    """
    gof = goodness_of_fit(pot, data, seed=seed, num_bootstrap=NUM_RESAMPLES,
                          max_points=MAX_TEST_POINTS)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(data), min(len(data), MAX_TEST_POINTS), replace=False)
    draws = _even_subsample(posterior_array(idata, pot), MAX_TEST_POINTS)
    mmd = mmd_test(draws, data[rows], seed=seed, num_permutations=NUM_RESAMPLES)
    table = [
        ("Data under the model (KSD goodness of fit)",
         f"p = {gof.p_value:.3g} (n·KSD² {gof.statistic:.3g}, {gof.num_points} points)",
         p_value_status(gof.p_value), RULES["p_value"]),
        ("Draws vs data (MMD two-sample test)",
         f"p = {mmd.p_value:.3g} (MMD {mmd.mmd:.3g}, {mmd.num_samples} draws, "
         f"{mmd.num_data} points)", p_value_status(mmd.p_value), RULES["p_value"]),
    ]
    return pd.DataFrame(table, columns=["check", "value", "status", "rule"])


def _plots(
    idata: Any, pot: Potential | None, data: np.ndarray | None, summary: Any,
    history: dict[str, np.ndarray],
) -> list[tuple[str, str, Callable[[Path], Path], str]]:
    """(heading, file name, drawing function, caption) of every figure that applies."""
    plots = [
        ("Trace", "trace.png", lambda p: figures.trace_plot(idata, p),
         "Marginal densities per chain (left) and draws against iteration (right)."),
        ("Rank plot", "rank.png", lambda p: figures.rank_plot(idata, p),
         "Rank histograms per chain: roughly uniform when the chains mix."),
    ]
    if hasattr(idata, "sample_stats") and "energy" in idata.sample_stats:
        plots.append(("Energy / BFMI", "energy.png", lambda p: figures.energy_plot(idata, p),
                      "Marginal energy vs energy transitions; BFMI < 0.3 signals poor "
                      "exploration."))
    if len(figures.flat_draws(idata)[1]) >= 2:
        plots.append(("Pair plot", "pair.png", lambda p: figures.pair_plot(idata, p),
                      "Pairwise scatter of the first coordinates (pooled chains)."))
    total_dim = sum(int(np.prod(idata.posterior[v].shape[2:])) for v in idata.posterior.data_vars)
    if total_dim == 2:
        plots.append(("Samples vs density", "density.png",
                      lambda p: figures.density_plot(idata, p, pot, data),
                      "Samples (orange)" + (", data (black)" if data is not None else "")
                      + (" over contours of exp(-E)." if pot is not None else ".")))
    if summary.ksd_test is not None and "ksd_p_value" in summary.chains:
        plots.append(("Kernel Stein discrepancy", "ksd.png",
                      lambda p: figures.ksd_plot(summary, p),
                      "IMQ KSD test per chain (Markov wild bootstrap)."))
    if history:
        plots.append(("Training curves", "training.png",
                      lambda p: figures.training_plot(history, p),
                      "Per-step training metrics with a moving average."))
    return plots


def _draw(plots: list[tuple[str, str, Callable[[Path], Path], str]], out: Path):
    drawn = []
    for heading, name, draw_fn, caption in plots:
        try:
            path = draw_fn(out / name)
        except Exception as err:  # noqa: BLE001 - a failed figure must not lose the report
            warnings.warn(f"report: could not draw {name} ({type(err).__name__}: {err})",
                          RuntimeWarning, stacklevel=3)
            continue
        drawn.append(ReportFigure(heading, path, caption))
    return drawn


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
    notes: Sequence[tuple[str, str]] = (),
    log_z: Sequence[Any] = (),
    images: Sequence[tuple[str, str | Path]] = (),
) -> Path:
    """Write ``index.html`` (self-contained) and ``report.md`` with PNG figures.

    Contents: the verdict table (R-hat, ESS, divergences, KSD p-value, ULA bias, drift)
    with pass/warn/fail, per-chain and posterior tables, with ``pot`` and ``data`` a
    "Model vs data" table (:func:`model_vs_data`), and the figures

    * ``trace.png`` and ``rank.png`` (``az.plot_trace``, ``az.plot_rank``; first 4
      coordinates);
    * ``energy.png`` (``az.plot_energy``, with BFMI) when ``sample_stats`` has ``energy``;
    * ``pair.png`` (up to 4 coordinates);
    * ``density.png`` for 2-D positions: samples (and ``data``) over contours of
      :math:`\\exp(-E)` when ``pot`` is given;
    * ``ksd.png``: KSD statistic and p-value per chain (needs ``pot``);
    * ``training.png``: the meaningful curves of ``fit_result.history``
      (:func:`~ebm_ppl.reporting.figures.training_curves`);
    * the caller's own PNGs, ``images``.

    Parameters
    ----------
    idata
        ``arviz.InferenceData`` (posterior, ideally from :func:`ebm_ppl.sample`).
    out_dir
        Output folder (created).
    pot
        The sampled potential: enables KSD, energy-based drift, density contours.
    data
        Optional data ``(n, d)``: drawn in the density plot, and with ``pot`` tested
        against the model and the draws (held-out data give the honest answer).
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
        Seed of the KSD bootstrap and of the model-versus-data tests.
    notes
        ``(heading, text)`` pairs shown as sections after the tables (what a check
        means for this model, say).
    log_z
        Estimates of :math:`\\log Z` to show side by side in a "Normalising constant"
        table (:func:`~ebm_ppl.diagnostics.ais_log_z`,
        :func:`~ebm_ppl.diagnostics.smc_log_z`: anything with ``log_z`` and
        ``stderr``); with two, their difference in combined standard errors.
    images
        ``(title, path)`` pairs of PNG files drawn by the caller (posterior completions
        of an image model, say), placed after the report's own figures under their
        titles; each file is copied into ``out_dir`` unless it is already there, so
        its name must differ from the report's own (:data:`FIGURE_FILES`).

    Returns
    -------
    pathlib.Path
        Path of ``index.html``, the page that links nothing outside ``out_dir``;
        ``report.md`` and the PNG figures are written beside it.

    Raises
    ------
    TypeError
        If ``idata`` is not an InferenceData.
    ValueError
        If ``data`` is not a 2-D array, or a file of ``images`` does not exist.

    Examples
    --------
    >>> import jax.numpy as jnp, ebm_ppl, tempfile
    >>> pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))
    >>> idata = ebm_ppl.sample(pot, ebm_ppl.kernels.mala(0.5), jnp.zeros(2), progress=False)
    >>> path = report(idata, tempfile.mkdtemp(), pot=pot)  # doctest: +SKIP
    """
    if not hasattr(idata, "posterior"):
        raise TypeError(f"idata must be an arviz.InferenceData, got {type(idata).__name__}")
    data_arr = None
    if data is not None:
        data_arr = np.asarray(data, dtype=float)
        if data_arr.ndim != 2:
            raise ValueError(f"data must have shape (n, d), got {data_arr.shape}")
    extra = _check_images(images)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if summary is None:
        summary = diagnostic_summary(idata, pot, ula_bias=ula_bias, seed=seed)

    sections = []
    config = read_config(idata)
    if config:
        lines = [f"- {k}: {config[k]}" for k in _CONFIG_KEYS if k in config]
        sections.append(Section("Run configuration", "\n".join(lines)))
    if pot is not None and data_arr is not None and pot.postprocess_fn is None:
        sections.append(Section("Model vs data", table=model_vs_data(
            idata, pot, data_arr, seed=seed)))
    if ula_bias is not None:
        sections.append(Section("ULA bias", str(ula_bias)))
    if log_z:
        sections.append(Section("Normalising constant", table=log_z_table(log_z)))
    sections += [Section(heading, text) for heading, text in notes]
    history = figures.training_curves(fit_result) if fit_result is not None else {}
    drawn = _draw(_plots(idata, pot, data_arr, summary, history), out)
    drawn += [ReportFigure(heading, _copy_into(path, out), "") for heading, path in extra]
    return write_run_documents(out, title, summary, drawn, sections)


def _check_images(images: Sequence[tuple[str, str | Path]]) -> list[tuple[str, Path]]:
    """``images`` as ``(title, Path)`` pairs; raises before any work if a file is missing."""
    checked = []
    for entry in images:
        if not (isinstance(entry, (tuple, list)) and len(entry) == 2):
            raise ValueError(f"images must hold (title, path) pairs, got {entry!r}")
        heading, path = str(entry[0]), Path(entry[1])
        if not path.is_file():
            raise ValueError(f"images: the file {str(path)!r} of {heading!r} does not exist")
        if path.suffix.lower() != ".png" or path.name in FIGURE_FILES:
            raise ValueError(f"images must be .png files not named like the report's own "
                             f"figures {FIGURE_FILES}, got {path.name!r}")
        checked.append((heading, path))
    return checked


def _copy_into(path: Path, out: Path) -> Path:
    """``path`` itself when it lies in ``out``, else its copy there (same name)."""
    target = out / path.name
    if path.resolve() != target.resolve():
        shutil.copyfile(path, target)
    return target
