"""Reports: a self-contained HTML page and a Markdown file with PNG figures.

* :mod:`~ebm_ppl.reporting.assemble`: :func:`report` (one run) and :func:`model_vs_data`;
* :mod:`~ebm_ppl.reporting.figures`: the figures, each on its own matplotlib ``Figure``;
* :mod:`~ebm_ppl.reporting.documents`: the HTML/Markdown writers, and the side-by-side
  page of several runs (:func:`write_comparison_page`, the demo's ``index.html``);
* :mod:`~ebm_ppl.reporting.netcdf`: reports of saved runs (``ebm-ppl report``).
"""

from ebm_ppl.reporting.assemble import model_vs_data, report
from ebm_ppl.reporting.documents import ComparedRun, write_comparison_page
from ebm_ppl.reporting.figures import FIGURE_DPI, training_curves
from ebm_ppl.reporting.netcdf import read_inference_data, render_from_netcdf

__all__ = [
    "FIGURE_DPI",
    "ComparedRun",
    "model_vs_data",
    "read_inference_data",
    "render_from_netcdf",
    "report",
    "training_curves",
    "write_comparison_page",
]
