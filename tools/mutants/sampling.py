"""Mutations of the sampling maths (see ``tools/mutants/__init__.py`` for the fields)."""

from tools.mutants.base import Mutant

__all__ = ["MUTANTS"]

MUTANTS: list[Mutant] = []
