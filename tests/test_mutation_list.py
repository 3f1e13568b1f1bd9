"""The curated mutation list of ``tools/mutate.py`` stays applicable to the source."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.mutants import all_mutants
from tools.mutate import apply

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    "EBM_PPL_MUTATION_COPY" in os.environ, reason="inside a mutated copy the list cannot apply"
)


def test_every_mutant_applies_once_and_names_existing_tests():
    mutants = all_mutants()
    assert len(mutants) >= 40
    names = [m.name for m in mutants]
    assert len(set(names)) == len(names), "mutant names must be unique"
    for m in mutants:
        source = (ROOT / m.path).read_text()
        mutated = apply(source, m)
        assert mutated != source, m.name
        assert m.tests, f"{m.name} lists no tests"
        for node in m.tests:
            assert (ROOT / node.split("::")[0]).exists(), f"{m.name}: {node} does not exist"


def test_apply_refuses_ambiguous_or_missing_text():
    from tools.mutants import Mutant

    m = Mutant("x.y", "f.py", "a", "b", "why", ("tests",))
    with pytest.raises(ValueError, match="found 2"):
        apply("a a", m)
    with pytest.raises(ValueError, match="found 0"):
        apply("c", m)
