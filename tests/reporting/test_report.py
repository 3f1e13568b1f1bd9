"""Tests of ebm_ppl.reporting: files written, PNGs decode, HTML embeds every figure."""

from __future__ import annotations

import re

import jax.numpy as jnp
import matplotlib.image as mpimg
import numpy as np
import pytest

import ebm_ppl
from ebm_ppl.reporting import (
    ComparedRun,
    render_from_netcdf,
    report,
    training_curves,
    write_comparison_page,
)


@pytest.fixture(scope="module")
def run():
    def energy(x):
        return 0.5 * jnp.sum((x - jnp.array([1.0, 0.0])) ** 2 / jnp.array([1.0, 0.3]))

    pot = ebm_ppl.Potential.from_energy(energy, example=jnp.zeros(2))
    idata = ebm_ppl.sample(pot, ebm_ppl.kernels.hmc(0.3, 5), jnp.zeros(2), num_samples=300,
                           num_warmup=200, num_chains=2, seed=0, progress=False)
    return pot, idata


def _check_outputs(index, expected):
    out = index.parent
    assert index.name == "index.html" and index.exists()
    assert (out / "report.md").exists()
    page = index.read_text()
    md = (out / "report.md").read_text()
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert set(expected) <= set(pngs), pngs
    for name in pngs:
        path = out / name
        assert path.stat().st_size > 1000
        image = mpimg.imread(path)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert np.ptp(image) > 0  # not a blank canvas
        assert f"data-file='{name}'" in page
        assert f"]({name})" in md
    # every figure is embedded (self-contained page, no external image references)
    assert len(re.findall(r"src='data:image/png;base64,", page)) == len(pngs)
    assert "Verdict" in page and ("Overall" in page or "Sampler: " in page)
    return page, md


@pytest.mark.slow
def test_report_writes_all_figures(run, tmp_path):
    pot, idata = run
    data = np.random.default_rng(0).normal(size=(200, 2)) * [1.0, 0.55] + [1.0, 0.0]

    class FitResult:
        history = {"loss": np.linspace(2.0, 0.5, 300), "grad_norm": np.ones(300)}

    index = report(idata, tmp_path / "rep", pot=pot, data=data, fit_result=FitResult())
    page, md = _check_outputs(index, ["trace.png", "rank.png", "energy.png", "pair.png",
                                      "density.png", "ksd.png", "training.png"])
    for check in ("R-hat", "ESS bulk", "Divergences", "KSD p-value", "ULA variance bias",
                  "Drift", "Model vs data", "KSD goodness of fit", "MMD two-sample test"):
        assert check in page and check in md
    assert ebm_ppl.report is report


def test_render_from_netcdf_without_potential(run, tmp_path):
    _, idata = run
    path = tmp_path / "run.nc"
    idata.to_netcdf(str(path))
    index = render_from_netcdf(path, tmp_path / "from_nc")
    _check_outputs(index, ["trace.png", "rank.png", "pair.png", "density.png"])
    assert not (tmp_path / "from_nc" / "ksd.png").exists()
    with pytest.raises(FileNotFoundError, match="no such netCDF"):
        render_from_netcdf(tmp_path / "missing.nc", tmp_path / "x")


def test_report_accepts_history_dict_and_rejects_bad_input(run, tmp_path):
    _, idata = run
    index = report(idata, tmp_path / "hist", fit_result={"loss": [3.0, 2.0, 1.0, 0.5]})
    assert (index.parent / "training.png").exists()
    with pytest.raises(TypeError, match="InferenceData"):
        report({"x": 1}, tmp_path / "bad")
    with pytest.raises(ValueError, match="data must have shape"):
        report(idata, tmp_path / "bad2", data=np.zeros(5))


def test_training_plot_shows_only_meaningful_curves():
    n = 50
    history = {"step": np.arange(n), "sigma": np.full(n, 0.1), "loss": np.linspace(3, 1, n),
               "grad_norm": np.linspace(1, 2, n), "nan_metric": np.full(n, np.nan),
               "time": np.linspace(0, 9, n), "accuracy": np.r_[np.nan, np.linspace(.5, .9, n - 1)]}
    assert list(training_curves(history)) == ["loss", "grad_norm", "accuracy"]
    assert list(training_curves({"loss": [1.0]})) == ["loss"]


def test_verdict_rules_come_from_the_thresholds(run):
    from ebm_ppl.diagnostics import summaries as summary_module

    pot, idata = run
    table = ebm_ppl.diagnostics.summary(idata, pot).verdict.set_index("check")
    assert table.loc["R-hat (max)", "rule"] == "<= 1.01 pass, <= 1.05 warn"
    assert table.loc["Divergences", "rule"] == "0 pass, <= 1% warn"
    assert set(summary_module.RULES.values()) >= set(table["rule"])


def test_comparison_page_links_runs_side_by_side(run, tmp_path):
    pot, idata = run
    summary = ebm_ppl.diagnostics.summary(idata, pot, num_bootstrap=50)
    runs = []
    for name in ("ula", "mala"):
        (tmp_path / name).mkdir()
        index = tmp_path / name / "index.html"
        index.write_text("full report")
        runs.append(ComparedRun(name.upper(), summary, index, index.parent / "density.png",
                                note="2 chains"))
    page = write_comparison_page(tmp_path, "side by side", runs, "intro").read_text()
    assert page.count("<table class='verdict'>") == 2
    assert "href='ula/index.html'" in page and "href='mala/index.html'" in page
    assert "src='ula/density.png'" in page and "src='mala/density.png'" in page
    assert page.count("KSD test: statistic") == 2
