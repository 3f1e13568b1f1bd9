"""Writers of the report documents: ``index.html`` (self-contained) and ``report.md``.

One run's report (:func:`write_run_documents`) and the side-by-side page of several runs
(:func:`write_comparison_page`, the demo's ``index.html``) share the verdict table, the
colours and the style sheet defined here.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ebm_ppl.diagnostics.summaries import dataframe_to_markdown, worst_status

__all__ = ["ComparedRun", "ReportFigure", "Section", "write_comparison_page", "write_run_documents"]

#: Background colour of each verdict status.
STATUS_COLOURS = {"pass": "#2e7d32", "warn": "#ef6c00", "fail": "#c62828", "n/a": "#757575"}

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f0f0f0; }
td.status { color: white; font-weight: bold; text-align: center; }
.overall { font-size: 1.3em; font-weight: bold; padding: 0.4em 0.8em; color: white;
           display: inline-block; border-radius: 4px; }
figure { margin: 1.5em 0; }
figure img, .run img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
.runs { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 2em; }
"""


class ReportFigure(NamedTuple):
    """A PNG of the report with its heading and caption."""

    heading: str
    path: Path
    caption: str


class Section(NamedTuple):
    """An extra section: a heading, free text and/or a check/value/status/rule table."""

    heading: str
    text: str = ""
    table: Any = None


class ComparedRun(NamedTuple):
    """One column of :func:`write_comparison_page`.

    Attributes
    ----------
    name
        Column heading (``"ULA"``).
    summary
        The run's :class:`~ebm_ppl.diagnostics.DiagnosticSummary`.
    report
        Path of the run's full ``index.html``.
    figure
        A PNG shown under the verdict (the density plot), or None.
    note
        One line under the heading (chains, draws, time).
    """

    name: str
    summary: Any
    report: Path
    figure: Path | None = None
    note: str = ""


def verdict_html(verdict: Any) -> str:
    """An HTML table of a check/value/status/rule DataFrame, statuses coloured."""
    rows = []
    for _, r in verdict.iterrows():
        colour = STATUS_COLOURS.get(r["status"], STATUS_COLOURS["n/a"])
        rows.append(
            f"<tr><td>{html.escape(str(r['check']))}</td><td>{html.escape(str(r['value']))}</td>"
            f"<td class='status' style='background:{colour}'>{html.escape(str(r['status']))}"
            f"</td><td>{html.escape(str(r['rule']))}</td></tr>"
        )
    return ("<table class='verdict'><thead><tr><th>check</th><th>value</th><th>status</th>"
            "<th>rule</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _overall_html(status: str, label: str = "Overall") -> str:
    return (f"<span class='overall' style='background:{STATUS_COLOURS[status]}'>{label}: "
            f"{status.upper()}</span>")


def _page(title: str, body: Sequence[str]) -> str:
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>")


def _section_markdown(section: Section) -> list[str]:
    md = [f"## {section.heading}", ""]
    if section.text:
        md += [section.text, ""]
    if section.table is not None:
        md += [dataframe_to_markdown(section.table, index=False), ""]
    return md


def _section_html(section: Section) -> list[str]:
    body = [f"<h2>{html.escape(section.heading)}</h2>"]
    if section.text:
        body.append(f"<pre>{html.escape(section.text)}</pre>")
    if section.table is not None:
        verdict = "status" in section.table.columns
        body.append(verdict_html(section.table) if verdict
                    else section.table.to_html(index=False))
    return body


def _figure_html(figure: ReportFigure) -> str:
    name = figure.path.name
    encoded = base64.b64encode(figure.path.read_bytes()).decode("ascii")
    return (f"<figure id='{figure.path.stem}'><h3>{html.escape(figure.heading)}</h3>"
            f"<img alt='{name}' title='{name}' data-file='{name}' "
            f"src='data:image/png;base64,{encoded}'/>"
            f"<figcaption>{html.escape(figure.caption)} (<code>{name}</code>)</figcaption>"
            "</figure>")


def _headline(summary: Any, sections: Sequence[Section]) -> list[tuple[str, str]]:
    """(label, status) of every verdict on the page: the sampler's, then each section
    table's with a ``status`` column (e.g. "Model vs data"). One entry is "Overall"."""
    checked = [(s.heading, worst_status(s.table["status"])) for s in sections
               if s.table is not None and "status" in getattr(s.table, "columns", ())]
    if not checked:
        return [("Overall", summary.status)]
    return [("Sampler", summary.status), *checked]


def write_run_documents(
    out: Path, title: str, summary: Any, figures: Sequence[ReportFigure],
    sections: Sequence[Section] = (),
) -> Path:
    """Write ``report.md`` and the self-contained ``index.html`` of one run.

    Both hold the summary's verdict, chain and posterior tables, the extra ``sections``
    and the figures (embedded as base64 in the HTML, linked in the Markdown). The
    headline covers every check on the page: "Overall: PASS" when the sampler's verdict
    is the only one, otherwise one badge per verdict ("Sampler: PASS · Model vs data:
    FAIL"), so a failing section table can never hide under a passing headline.

    Returns
    -------
    pathlib.Path
        Path of ``index.html``.
    """
    headline = _headline(summary, sections)
    text = summary.to_markdown()
    if len(headline) > 1:  # the headline covers every check on the page, each named
        combined = " · ".join(f"{label}: {status.upper()}" for label, status in headline)
        text = text.replace(f"**Overall: {summary.status.upper()}**", f"**{combined}**", 1)
    md = [f"# {title}", "", text, ""]
    for section in sections:
        md += _section_markdown(section)
    md += ["## Figures", ""]
    for fig in figures:
        md += [f"### {fig.heading}", "", f"![{fig.heading}]({fig.path.name})", "",
               fig.caption, ""]
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")

    body = [
        f"<h1>{html.escape(title)}</h1>",
        "<p>" + " ".join(_overall_html(status, label) for label, status in headline) + "</p>",
        "<h2>Verdict</h2>", verdict_html(summary.verdict),
        "<h2>Chains</h2>", summary.chains.to_html(index=False, float_format="%.4g"),
        "<h2>Posterior</h2>", summary.posterior.to_html(float_format="%.4g"),
    ]
    for section in sections:
        body += _section_html(section)
    body.append("<h2>Figures</h2>")
    body += [_figure_html(fig) for fig in figures]
    index = out / "index.html"
    index.write_text(_page(title, body), encoding="utf-8")
    return index


def _ksd_sentence(summary: Any) -> str:
    test = summary.ksd_test
    if test is None:
        return "KSD test: not computed (no potential)."
    verdict = "rejects" if test.p_value < 0.05 else "does not reject"
    return (f"KSD test: statistic {test.statistic:.4g}, pooled p-value {test.p_value:.3g}: "
            f"it {verdict} that the draws follow the model.")


def write_comparison_page(
    out: Path, title: str, runs: Sequence[ComparedRun], intro: str = ""
) -> Path:
    """Write ``out/index.html``: the runs side by side, each linking its full report.

    Each column shows the run's overall status, its verdict table, a sentence on its
    KSD test and its figure (linked, not embedded, relative to ``out``).

    Returns
    -------
    pathlib.Path
        Path of ``index.html``.
    """
    body = [f"<h1>{html.escape(title)}</h1>"]
    if intro:
        body.append(f"<p>{html.escape(intro)}</p>")
    body.append("<div class='runs'>")
    for run in runs:
        link = Path(os.path.relpath(run.report, out)).as_posix()
        column = [f"<div class='run' id='{html.escape(run.name.lower())}'>",
                  f"<h2>{html.escape(run.name)}</h2>"]
        if run.note:
            column.append(f"<p>{html.escape(run.note)}</p>")
        column += [f"<p>{_overall_html(run.summary.status, 'Verdict')}</p>",
                   verdict_html(run.summary.verdict),
                   f"<p>{html.escape(_ksd_sentence(run.summary))}</p>"]
        if run.figure is not None:
            src = Path(os.path.relpath(run.figure, out)).as_posix()
            column.append(f"<img alt='{html.escape(run.name)} density' src='{src}'/>")
        column += [f"<p><a href='{link}'>Full {html.escape(run.name)} report</a></p>",
                   "</div>"]
        body += column
    body.append("</div>")
    index = out / "index.html"
    index.write_text(_page(title, body), encoding="utf-8")
    return index
