"""``str(ULABiasResult)`` says what was not computed instead of printing ``nan``."""

from __future__ import annotations

import dataclasses

from ebm_ppl.diagnostics.ula_bias import ULABiasResult

VALUES = dict(step_size=0.05, table=None, max_var_rel_bias=0.02, max_var_rel_bias_mcse=0.01,
              max_abs_mean_bias_z=0.5, ksd_ula=float("nan"), ksd_reference=float("nan"),
              ksd_gap=float("nan"), suggested_step_size=0.03, tolerance=0.05,
              reference="mala", ula=None, reference_idata=None)


def _result(**changes):
    names = [f.name for f in dataclasses.fields(ULABiasResult)] if dataclasses.is_dataclass(
        ULABiasResult) else list(ULABiasResult._fields)
    return ULABiasResult(**{k: {**VALUES, **changes}[k] for k in names})


def test_no_nan_when_ksd_was_not_computed():
    text = str(_result())
    assert "nan" not in text and "KSD not computed (compute_ksd=False)" in text


def test_ksd_gap_shown_when_computed():
    assert "KSD gap 0.012" in str(_result(ksd_gap=0.012))
