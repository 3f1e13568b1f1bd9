"""Mutations of the NumPyro kernels' and exchange maths (see ``tools/mutants/base.py``)."""

from tools.mutants.base import Mutant

__all__ = ["MUTANTS"]

MUTANTS: list[Mutant] = []
