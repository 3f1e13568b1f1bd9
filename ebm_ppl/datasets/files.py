"""A user's own data matrix from a ``.npy``, ``.csv`` or ``.txt`` file (never unpickled)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FILE_EXTENSIONS", "DatasetFileNotFoundError", "load_array"]

#: File extensions accepted by :func:`load_array`.
FILE_EXTENSIONS: tuple[str, ...] = (".npy", ".csv", ".txt")


class DatasetFileNotFoundError(FileNotFoundError, ValueError):
    """A data file does not exist (both a ``FileNotFoundError`` and a ``ValueError``)."""


def _read_text(path: Path, delimiter: str | None) -> np.ndarray:
    """Parse a delimited text file of numbers, with one optional header line.

    The first line is a header only if *none* of its fields parses as a number (``x,y``);
    a first line with some numbers (``NA,2.0`` or ``1.0,2.0x``) is data, so a bad value
    in it is an error naming its line, as on any other line.
    """
    with path.open(encoding="utf-8") as f:
        numbered = [
            (number, line) for number, line in enumerate(f.read().splitlines(), start=1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
    if not numbered:
        raise ValueError(f"data file {str(path)!r} is empty; expected a 2-D (n, d) array")

    def fields(line: str) -> list[str]:
        return [s.strip() for s in (line.split(delimiter) if delimiter else line.split())]

    def is_number(field: str) -> bool:
        try:
            float(field)
        except ValueError:
            return False
        return True

    if not any(is_number(s) for s in fields(numbered[0][1])):
        numbered = numbered[1:]  # header
    if not numbered:
        return np.zeros((0, 0))
    lines = [line for _, line in numbered]
    try:  # fast path
        return np.loadtxt(lines, delimiter=delimiter, ndmin=2, dtype=np.float64)
    except ValueError:
        pass
    # slow path: find the offending row for the error message
    rows = [fields(line) for line in lines]
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise ValueError(
            f"data file {str(path)!r} has rows of different lengths {sorted(widths)}; "
            "expected a 2-D (n, d) table"
        )
    for (number, _), row in zip(numbered, rows):
        bad = [s for s in row if not is_number(s)]
        if bad:
            raise ValueError(
                f"data file {str(path)!r} must contain only numbers, got {bad[0]!r} on line "
                f"{number}"
            )
    return np.array([[float(s) for s in row] for row in rows], dtype=np.float64)


def load_array(path: str | os.PathLike[str], *, dtype: Any = np.float32) -> np.ndarray:
    """Load a user's data matrix ``(n, d)`` from a ``.npy``, ``.csv`` or ``.txt`` file.

    ``.npy`` is read with ``allow_pickle=False``; ``.csv`` is comma separated and
    ``.txt`` whitespace separated, each with one optional header line (a first line
    none of whose fields is a number; a first line with some numbers is data, and a bad
    value in it is an error naming the line). Blank lines and lines starting with ``#`` are
    ignored.

    Parameters
    ----------
    path
        File path.
    dtype
        Floating dtype of the result (``float32`` by default, like the generators).

    Returns
    -------
    numpy.ndarray
        Array of shape ``(n, d)``, ``n >= 2``, all finite.

    Raises
    ------
    DatasetFileNotFoundError
        If the file does not exist (a subclass of both ``FileNotFoundError`` and
        ``ValueError``).
    ValueError
        If the extension is unknown, the content is not numeric, the array is not 2-D
        with at least two rows, or some values are not finite.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = p.write_text("a,b\\n1,2\\n3,4\\n")
    >>> load_array(p).tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in FILE_EXTENSIONS:
        raise ValueError(
            f"data file extension must be one of {FILE_EXTENSIONS}, got {suffix or 'none'!r} "
            f"for {str(p)!r}"
        )
    if not p.is_file():
        raise DatasetFileNotFoundError(f"data file {str(p)!r} does not exist")
    if suffix == ".npy":
        try:
            raw = np.load(p, allow_pickle=False)
        except ValueError as err:  # object arrays need pickle
            raise ValueError(
                f"data file {str(p)!r} must hold a numeric array, got unreadable or object "
                f"content ({err})"
            ) from err
        if not isinstance(raw, np.ndarray):
            raise ValueError(f"data file {str(p)!r} must hold one array, got {type(raw).__name__}")
        if raw.dtype == np.bool_ or not (
            np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)
        ):
            raise ValueError(
                f"data file {str(p)!r} must hold real numbers (integer or float), got dtype "
                f"{raw.dtype}"
            )
    else:
        raw = _read_text(p, "," if suffix == ".csv" else None)
    if raw.ndim != 2 or raw.shape[0] < 2 or raw.shape[1] < 1:
        raise ValueError(
            f"data must be a 2-D array of shape (n, d) with n >= 2 and d >= 1, got shape "
            f"{raw.shape} from {str(p)!r}"
        )
    if not np.all(np.isfinite(raw)):
        bad = int(np.sum(~np.all(np.isfinite(raw), axis=1)))
        raise ValueError(
            f"data must be finite, got {bad} row(s) with NaN or infinite values in {str(p)!r}"
        )
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(raw, dtype=dtype)
    if not np.all(np.isfinite(out)):
        raise ValueError(
            f"data must be finite in {np.dtype(dtype).name}, got values that overflow it in "
            f"{str(p)!r}"
        )
    return out
