"""Curated mutations of ebm_ppl's maths, one module per area (see ``tools/mutate.py``)."""

from __future__ import annotations

from tools.mutants import (
    adaptation,
    diagnostics,
    kernels,
    numpyro_kernels,
    objectives,
    sampling,
)
from tools.mutants.base import Mutant

__all__ = ["Mutant", "all_mutants"]


def all_mutants() -> list[Mutant]:
    """Every mutant of every area module, in a fixed order."""
    out: list[Mutant] = []
    for module in (kernels, numpyro_kernels, adaptation, sampling, objectives, diagnostics):
        out.extend(module.MUTANTS)
    return out
