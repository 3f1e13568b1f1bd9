"""Diagnostics beyond R-hat: kernel Stein discrepancy, ULA bias, AIS log Z, drift."""

from ebm_ppl.diagnostics.ksd import KSDResult, KSDTestResult, ksd, ksd_test

__all__ = ["KSDResult", "KSDTestResult", "ksd", "ksd_test"]
