"""Mutations of the kernels' maths (see ``tools/mutants/base.py`` for the fields)."""

from tools.mutants.base import Mutant

__all__ = ["MUTANTS"]

MUTANTS: list[Mutant] = [
    Mutant(
        name="kernels.ula_noise_variance",
        path="ebm_ppl/kernels/ula.py",
        old="scale = jnp.sqrt(2.0 * step_size * temperature)",
        new="scale = jnp.sqrt(step_size * temperature)",
        why="ULA noise sqrt(h T) instead of sqrt(2 h T)",
        tests=("tests/test_kernels.py",),
    ),
]
