"""The ``Mutant`` record shared by the area modules."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Mutant"]


class Mutant(NamedTuple):
    """One realistic one-line bug.

    Attributes
    ----------
    name : str
        Short unique identifier (``area.what``).
    path : str
        File, relative to the repository root, that the mutation edits.
    old : str
        Exact text that must occur exactly once in ``path``.
    new : str
        Replacement text.
    why : str
        The bug a developer could plausibly write, in a few words.
    tests : tuple of str
        pytest node ids or files (all in the default run) expected to catch it; the
        runner tries these first, then the whole default run if they pass.
    """

    name: str
    path: str
    old: str
    new: str
    why: str
    tests: tuple[str, ...]
