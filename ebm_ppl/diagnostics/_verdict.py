"""One-line text of a hypothesis test's result, shared by the tests' ``__str__``."""

from __future__ import annotations

__all__ = ["verdict_line"]


def verdict_line(name: str, statistic: str, p_value: float, reject: bool, null: str,
                 alpha: float, details: str) -> str:
    """``NAME(STATISTIC, p=P: reject|no evidence against 'NULL' at alpha=A; DETAILS)``."""
    verdict = "reject" if reject else "no evidence against"
    return (f"{name}({statistic}, p={p_value:.3g}: {verdict} '{null}' at alpha={alpha:g}; "
            f"{details})")
