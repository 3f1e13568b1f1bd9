"""``ebm-ppl demo``: the side-by-side page, and the README's claim about the demo.

README: "ULA at step size 0.03 mixes (R-hat ≈ 1.00) but its kernel Stein discrepancy test
fails — the O(h) bias of the unadjusted chain — while MALA on the same energy passes."
The slow test runs the demo exactly as ``ebm-ppl demo`` does (default options) and checks
each part of that sentence; the quick one runs a tiny demo and checks the page.
"""

from __future__ import annotations

import re

import pytest

import ebm_ppl
from ebm_ppl.cli import main
from ebm_ppl.cli.demo import run_demo
from ebm_ppl.cli.parser import build_parser
from ebm_ppl.diagnostics.summaries import THRESHOLDS


def _quiet(*_: object) -> None:
    pass


def _check_page(index) -> str:
    out = index.parent
    page = index.read_text()
    assert page.count("<table class='verdict'>") == 2
    assert page.count("KSD test: statistic") == 2
    for name in ("ula", "mala"):
        assert f"href='{name}/index.html'" in page and (out / name / "index.html").is_file()
        assert f"src='{name}/density.png'" in page and (out / name / "density.png").is_file()
        assert (out / name / "inference_data.nc").is_file()
    # ULA's column comes first, beside MALA's
    assert page.index("<h2>ULA</h2>") < page.index("<h2>MALA</h2>")
    assert isinstance(ebm_ppl.load(out / "model"), ebm_ppl.Potential)
    return page


@pytest.mark.slow
def test_demo_writes_the_side_by_side_page(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--quiet", "--out", str(out), "--steps", "20", "--n", "200", "--hidden",
            "8", "--batch-size", "64", "--chains", "4", "--samples", "60", "--warmup", "0",
            "--thin", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"ULA beside MALA: {out / 'index.html'}" in printed
    assert re.search(r"== MALA \(4 chains x 60 draws", printed)
    _check_page(out / "index.html")


@pytest.mark.slow
def test_readme_claim_about_the_demo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_demo(build_parser().parse_args(["demo", "--quiet"]), log=_quiet)
    assert result.index.resolve() == (tmp_path / "ebm-ppl-demo" / "index.html").resolve()
    _check_page(result.index)
    ula, mala = result.runs["ula"].summary, result.runs["mala"].summary
    # ULA mixes: R-hat passes ...
    assert float(ula.posterior["r_hat"].max()) <= THRESHOLDS["r_hat_pass"]
    # ... but its KSD test fails (p below the warn level, so the verdict says "fail")
    assert ula.ksd_test.p_value < THRESHOLDS["ksd_p_warn"]
    assert ula.verdict.set_index("check").loc["KSD p-value (pooled)", "status"] == "fail"
    # MALA on the same energy passes every check on the first run
    assert mala.status == "pass", mala.verdict
    assert mala.ksd_test.p_value >= THRESHOLDS["ksd_p_pass"]
    assert float(mala.posterior["r_hat"].max()) <= THRESHOLDS["r_hat_pass"]
