"""The report's headline covers every verdict on the page (issue #27: "Overall: PASS"
above a failing model-vs-data table)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from ebm_ppl.diagnostics.summaries import worst_status
from ebm_ppl.reporting.documents import Section, write_run_documents


def _summary(status: str) -> SimpleNamespace:
    verdict = pd.DataFrame([("R-hat (max)", "1.001", status, "<= 1.01 pass")],
                           columns=["check", "value", "status", "rule"])
    return SimpleNamespace(
        status=status, verdict=verdict,
        chains=pd.DataFrame({"chain": [0]}), posterior=pd.DataFrame({"mean": [0.0]}),
        to_markdown=lambda: f"**Overall: {status.upper()}**\n\n### Verdict\n",
    )


def _model_vs_data(status: str) -> Section:
    table = pd.DataFrame([("Draws vs data (MMD two-sample test)", "p = 0.002", status, "p rule")],
                         columns=["check", "value", "status", "rule"])
    return Section("Model vs data", table=table)


def test_failing_section_table_shows_in_the_headline(tmp_path):
    index = write_run_documents(tmp_path, "run", _summary("pass"), [],
                                [Section("Run configuration", "kernel: mala"),
                                 _model_vs_data("fail")])
    page, md = index.read_text(), (tmp_path / "report.md").read_text()
    assert "Sampler: PASS · Model vs data: FAIL" in md
    assert "Overall: PASS" not in md and "Overall: PASS" not in page
    assert "Sampler: PASS" in page and "Model vs data: FAIL" in page


def test_sampler_verdict_alone_is_the_overall_one(tmp_path):
    index = write_run_documents(tmp_path, "run", _summary("warn"), [],
                                [Section("Run configuration", "kernel: mala")])
    assert "Overall: WARN" in index.read_text()
    assert "**Overall: WARN**" in (tmp_path / "report.md").read_text()


def test_worst_status_orders_fail_over_warn_over_pass():
    assert worst_status(["pass", "fail", "warn"]) == "fail"
    assert worst_status(["pass", "warn", "n/a"]) == "warn"
    assert worst_status(["n/a"]) == "pass"
