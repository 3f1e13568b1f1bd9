"""A bounded memory of checks that passed, keyed on what they depend on.

``sample`` checks the potential at the start (:meth:`Potential.check`) and ``fit`` checks
the energy under the objective; both trace the function, which costs milliseconds per
call. A check depends only on the function, its static fields and the abstract types of
its inputs (what ``jax.jit`` keys on), so a repeated call with the same ones skips it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

__all__ = ["PassedChecks", "abstract_signature"]


def abstract_signature(*trees: Any) -> tuple:
    """The tree structures and leaf types (``jax.typeof``: shape, dtype, weak type) of
    ``trees``; static fields of a pytree are part of its structure."""
    out = []
    for tree in trees:
        leaves, treedef = jax.tree.flatten(tree)
        out.append((treedef, tuple(map(jax.typeof, leaves))))
    return tuple(out)


class PassedChecks:
    """The signatures whose check passed, oldest first, at most ``max_size`` of them."""

    def __init__(self, max_size: int) -> None:
        self._passed: dict[Any, None] = {}
        self.max_size = max_size

    def run(self, signature: Callable[[], Any], check: Callable[[], None]) -> None:
        """Run ``check()`` unless ``signature()`` passed before; a signature that cannot
        be built or hashed (an unhashable static field) means checking every time. A
        check that raises is not remembered."""
        try:
            key = signature()
            hash(key)
        except TypeError:
            check()
            return
        if key in self._passed:
            return
        check()
        if len(self._passed) >= self.max_size:
            del self._passed[next(iter(self._passed))]
        self._passed[key] = None
