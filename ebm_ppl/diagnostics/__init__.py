"""Diagnostics beyond R-hat for energy-based models.

* :func:`ksd`, :func:`ksd_test`: kernel Stein discrepancy and its wild-bootstrap
  goodness-of-fit test (needs only the score, not the normaliser);
* :func:`ula_bias`: step-size bias of the unadjusted Langevin algorithm;
* :func:`ais_log_z`: annealed importance sampling estimate of :math:`\\log Z`;
* :func:`smc_log_z`: adaptive tempered SMC estimate of :math:`\\log Z`, and draws;
* :func:`goodness_of_fit`: KSD test of held-out data under the model (no sampling);
* :func:`mmd_test`: two-sample MMD test, model draws against data (permutation p-value);
* :func:`mode_weights`: per-mode weights and whether the chains agree on them (what KSD
  cannot see in a multimodal run);
* :func:`drift_check`: improper-target / drift detection (:class:`ImproperTargetWarning`);
* :func:`summary`: ArviZ summary + per-chain table + pass/warn/fail verdict;
* :func:`inner_steps_check`: whether an exchange kernel's ``inner_steps`` is enough.

R-hat and ESS come from ArviZ.
"""

from ebm_ppl.diagnostics.ais import AISResult, ais_log_z, annealing_schedule
from ebm_ppl.diagnostics.drift import DriftResult, drift_check
from ebm_ppl.diagnostics.exchange_check import InnerStepsCheck, inner_steps_check
from ebm_ppl.diagnostics.goodness_of_fit import GoodnessOfFitResult, goodness_of_fit
from ebm_ppl.diagnostics.ksd import KSDResult, ksd, median_bandwidth, stein_kernel_matrix
from ebm_ppl.diagnostics.mmd import MMDTestResult, mmd_test
from ebm_ppl.diagnostics.modes import ModeWeightsResult, mode_weights
from ebm_ppl.diagnostics.smc import SMCResult, SMCRun, smc_log_z, tempered_smc
from ebm_ppl.diagnostics.stein_test import KSDTestResult, ksd_test
from ebm_ppl.diagnostics.summaries import DiagnosticSummary, dataframe_to_markdown, summary
from ebm_ppl.diagnostics.ula_bias import ULABiasResult, moment_errors, ula_bias

__all__ = [
    "AISResult",
    "DiagnosticSummary",
    "DriftResult",
    "GoodnessOfFitResult",
    "InnerStepsCheck",
    "KSDResult",
    "KSDTestResult",
    "MMDTestResult",
    "ModeWeightsResult",
    "SMCResult",
    "SMCRun",
    "ULABiasResult",
    "ais_log_z",
    "annealing_schedule",
    "dataframe_to_markdown",
    "drift_check",
    "goodness_of_fit",
    "inner_steps_check",
    "ksd",
    "ksd_test",
    "median_bandwidth",
    "mmd_test",
    "mode_weights",
    "moment_errors",
    "smc_log_z",
    "stein_kernel_matrix",
    "summary",
    "tempered_smc",
    "ula_bias",
]
