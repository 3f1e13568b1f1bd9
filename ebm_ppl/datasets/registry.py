"""``load``: one entry point from a data set name or a file path to an array."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ebm_ppl._names import DATASETS
from ebm_ppl._validation import check_int
from ebm_ppl.datasets.files import FILE_EXTENSIONS, load_array
from ebm_ppl.datasets.scikit_learn import digits
from ebm_ppl.datasets.toy import (
    checkerboard,
    eight_gaussians,
    rings,
    seeded_rng,
    swiss_roll,
    two_moons,
)

__all__ = ["DATASETS", "DEFAULT_N", "load"]


#: Number of points :func:`load` draws from a toy generator when ``n`` is not given.
DEFAULT_N = 1000

_ALIASES = {
    "moons": "two_moons",
    "eight_gaussians": "8gaussians",
    "8_gaussians": "8gaussians",
    "circles": "rings",
    "swissroll": "swiss_roll",
}

_GENERATORS: dict[str, Callable[..., np.ndarray]] = {
    "two_moons": two_moons,
    "8gaussians": eight_gaussians,
    "rings": rings,
    "checkerboard": checkerboard,
    "swiss_roll": swiss_roll,
}


def _looks_like_path(name: str | os.PathLike[str]) -> bool:
    if isinstance(name, os.PathLike):
        return True
    return (
        os.sep in name
        or (os.altsep is not None and os.altsep in name)
        or Path(name).suffix.lower() in FILE_EXTENSIONS
        or os.path.exists(name)
    )


def load(
    name_or_path: str | os.PathLike[str],
    n: int | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> np.ndarray:
    """Load a named data set or a file, as a ``float32`` array ``(n, d)``.

    Parameters
    ----------
    name_or_path
        One of :data:`DATASETS` (``"two_moons"``, ``"8gaussians"``, ``"rings"``,
        ``"checkerboard"``, ``"swiss_roll"``, ``"digits"``; case and ``-``/``_``
        insensitive) or the path of a ``.npy``/``.csv``/``.txt`` file.
    n
        Number of rows. Toy generators draw ``n`` points (1000 when ``None``); digits and
        files return all rows when ``None``, else a random subset of ``n`` rows (without
        replacement) chosen with ``seed``.
    seed
        Seed of ``np.random.default_rng``.
    **kwargs
        Passed to the generator (``noise=``, ``num_rings=``, ``standardize=``, ...) or to
        :func:`digits` (``scale=``); not accepted for files.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``(n, d)``.

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the allowed names), or as raised by
        the generator or :func:`load_array`.

    Examples
    --------
    >>> load("8gaussians", n=16, seed=3).shape
    (16, 2)
    """
    if not isinstance(name_or_path, str | os.PathLike):
        raise ValueError(
            f"name_or_path must be one of {DATASETS} or a file path, got "
            f"{type(name_or_path).__name__}"
        )
    if _looks_like_path(name_or_path):
        if kwargs:
            raise ValueError(
                f"keyword arguments are only for named data sets, got {sorted(kwargs)} for "
                f"the file {str(name_or_path)!r}"
            )
        x = load_array(name_or_path)
        if n is None:
            return x
        n = check_int("n", n, 1)
        if n > len(x):
            raise ValueError(f"n must be <= {len(x)} (the rows in the file), got {n}")
        return x[seeded_rng(seed).choice(len(x), size=n, replace=False)]
    key = name_or_path.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key == "digits":
        return digits(n, seed, **kwargs)  # type: ignore[return-value]
    if key not in _GENERATORS:
        raise ValueError(
            f"data set name must be one of {DATASETS} or a path to a .npy/.csv/.txt file, "
            f"got {name_or_path!r}"
        )
    return _GENERATORS[key](DEFAULT_N if n is None else n, seed=seed, **kwargs)
