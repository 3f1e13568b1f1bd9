"""Small data sets for energy-based models: 2-D toys, digits and the user's own files.

Every toy generator is pure NumPy, seeded with ``np.random.default_rng(seed)`` (no global
state, no download) and returns a ``float32`` array of shape ``(n, 2)``. By default the
points are *standardised*: centred on their mean and divided by one common scale, the
root mean of the per-coordinate variances, so the cloud has total variance ``d`` (2)
without distorting its shape (a per-axis rescaling would squash the moons or the roll).

The toys follow the density-estimation literature (FFJORD, score matching, NCSN): they
are cheap, visual and multi-modal, which is what stresses an EBM sampler.

=================  ==========================================================
name               generator
=================  ==========================================================
``"two_moons"``    :func:`two_moons`, two interleaved half circles
``"8gaussians"``   :func:`eight_gaussians`, eight modes on a circle
``"rings"``        :func:`rings`, concentric circles
``"checkerboard"`` :func:`checkerboard`, uniform on the dark squares of a board
``"swiss_roll"``   :func:`swiss_roll`, a 2-D spiral
``"digits"``       :func:`digits`, scikit-learn's 8×8 digits (64-D, optional extra)
=================  ==========================================================

:func:`load` maps one of these names, or the path of a ``.npy``/``.csv``/``.txt`` file
(:func:`load_array`), to an array.

References
----------
Grathwohl et al. (2019), FFJORD, https://arxiv.org/abs/1810.01367 (toy densities).
Song & Ermon (2019), NCSN, https://arxiv.org/abs/1907.05600.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ebm_ppl._validation import check_int, check_nonnegative, check_positive

__all__ = [
    "DATASETS",
    "DatasetFileNotFoundError",
    "checkerboard",
    "digits",
    "eight_gaussians",
    "load",
    "load_array",
    "rings",
    "swiss_roll",
    "two_moons",
]

#: Names accepted by :func:`load`.
DATASETS: tuple[str, ...] = (
    "two_moons",
    "8gaussians",
    "rings",
    "checkerboard",
    "swiss_roll",
    "digits",
)

#: File extensions accepted by :func:`load_array`.
FILE_EXTENSIONS: tuple[str, ...] = (".npy", ".csv", ".txt")

#: Number of points :func:`load` draws from a toy generator when ``n`` is not given.
DEFAULT_N = 1000

_ALIASES = {
    "moons": "two_moons",
    "eight_gaussians": "8gaussians",
    "8_gaussians": "8gaussians",
    "circles": "rings",
    "swissroll": "swiss_roll",
}


class DatasetFileNotFoundError(FileNotFoundError, ValueError):
    """A data file does not exist (both a ``FileNotFoundError`` and a ``ValueError``)."""


# ----------------------------------------------------------------------------- helpers
def _rng(seed: Any) -> np.random.Generator:
    return np.random.default_rng(check_int("seed", seed, 0))


def _standardize(x: np.ndarray) -> np.ndarray:
    """Centre ``x`` and divide by one scale so that the total variance is ``d``."""
    x = x - x.mean(axis=0)
    scale = np.sqrt(np.mean(x.var(axis=0)))
    return x / scale if scale > 0 else x


def _finish(x: np.ndarray, rng: np.random.Generator, standardize: bool) -> np.ndarray:
    x = x[rng.permutation(len(x))]
    if standardize:
        x = _standardize(x)
    return np.ascontiguousarray(x, dtype=np.float32)


# ----------------------------------------------------------------------------- toys
def two_moons(n: int, noise: float = 0.1, seed: int = 0, *, standardize: bool = True) -> np.ndarray:
    r"""Two interleaved half circles (scikit-learn's ``make_moons``, re-implemented).

    The upper moon is :math:`(\cos t, \sin t)`, the lower one
    :math:`(1 - \cos t, \tfrac12 - \sin t)`, :math:`t \sim U(0, \pi)`; then
    :math:`\mathcal N(0, \text{noise}^2 I)` is added.

    Parameters
    ----------
    n
        Number of points (``ceil(n/2)`` on the upper moon).
    noise
        Standard deviation of the Gaussian noise, in the moons' native units (radius 1).
    seed
        Seed of ``np.random.default_rng``.
    standardize
        Centre and rescale to total variance 2 (see the module docstring).

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``(n, 2)``, rows shuffled.

    Raises
    ------
    ValueError
        If ``n < 1``, ``noise < 0`` or ``seed`` is not a non-negative integer.

    Examples
    --------
    >>> two_moons(4, seed=1).shape
    (4, 2)
    """
    n = check_int("n", n, 1)
    noise = check_nonnegative("noise", noise)
    rng = _rng(seed)
    n_upper = n - n // 2
    t = rng.uniform(0.0, np.pi, size=n)
    upper = np.stack([np.cos(t[:n_upper]), np.sin(t[:n_upper])], axis=1)
    lower = np.stack([1.0 - np.cos(t[n_upper:]), 0.5 - np.sin(t[n_upper:])], axis=1)
    x = np.concatenate([upper, lower]) + noise * rng.standard_normal((n, 2))
    return _finish(x, rng, standardize)


def eight_gaussians(
    n: int,
    noise: float = 0.1,
    seed: int = 0,
    *,
    num_modes: int = 8,
    radius: float = 1.0,
    standardize: bool = True,
) -> np.ndarray:
    r"""A mixture of ``num_modes`` equal Gaussians centred on a circle.

    Mode :math:`k` is centred at :math:`r(\cos 2\pi k/K, \sin 2\pi k/K)` with isotropic
    standard deviation ``noise``; each point picks its mode uniformly.

    Parameters
    ----------
    n
        Number of points.
    noise
        Standard deviation of each mode, in units of the circle's ``radius`` = 1.
    seed
        Seed of ``np.random.default_rng``.
    num_modes
        Number of modes ``K`` (8 gives the classic "8 Gaussians").
    radius
        Radius ``r`` of the circle of centres (before standardisation).
    standardize
        Centre and rescale to total variance 2.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``(n, 2)``.

    Raises
    ------
    ValueError
        If an argument is out of range.

    Examples
    --------
    >>> eight_gaussians(5).dtype
    dtype('float32')
    """
    n = check_int("n", n, 1)
    noise = check_nonnegative("noise", noise)
    num_modes = check_int("num_modes", num_modes, 1)
    radius = check_positive("radius", radius)
    rng = _rng(seed)
    angles = 2.0 * np.pi * rng.integers(0, num_modes, size=n) / num_modes
    centres = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    x = centres + noise * radius * rng.standard_normal((n, 2))
    return _finish(x, rng, standardize)


def rings(
    n: int,
    noise: float = 0.05,
    seed: int = 0,
    *,
    num_rings: int = 4,
    standardize: bool = True,
) -> np.ndarray:
    r"""Concentric circles of radii :math:`1, 2, \dots, \text{num\_rings}`.

    Points are spread uniformly in arc length (ring :math:`k` gets a share proportional
    to its radius), then Gaussian noise is added radially and tangentially.

    Parameters
    ----------
    n
        Number of points.
    noise
        Standard deviation of the isotropic Gaussian noise, in units of the ring spacing.
    seed
        Seed of ``np.random.default_rng``.
    num_rings
        Number of circles.
    standardize
        Centre and rescale to total variance 2.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``(n, 2)``.

    Raises
    ------
    ValueError
        If an argument is out of range.

    Examples
    --------
    >>> rings(3, num_rings=2).shape
    (3, 2)
    """
    n = check_int("n", n, 1)
    noise = check_nonnegative("noise", noise)
    num_rings = check_int("num_rings", num_rings, 1)
    rng = _rng(seed)
    radii = np.arange(1, num_rings + 1, dtype=np.float64)
    ring = rng.choice(num_rings, size=n, p=radii / radii.sum())
    t = rng.uniform(0.0, 2.0 * np.pi, size=n)
    x = radii[ring, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    x = x + noise * rng.standard_normal((n, 2))
    return _finish(x, rng, standardize)


def checkerboard(
    n: int,
    seed: int = 0,
    *,
    num_cells: int = 4,
    standardize: bool = True,
) -> np.ndarray:
    r"""Uniform density on the "dark" squares of a ``num_cells × num_cells`` board.

    Cell :math:`(i, j)` is dark when :math:`i + j` is even; each point picks a dark cell
    uniformly and a uniform position inside it. The density is discontinuous, a hard
    case for score-based training.

    Parameters
    ----------
    n
        Number of points.
    seed
        Seed of ``np.random.default_rng``.
    num_cells
        Cells per side (4 gives the FFJORD board with 8 dark squares); must be >= 2.
    standardize
        Centre and rescale to total variance 2.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``(n, 2)``.

    Raises
    ------
    ValueError
        If an argument is out of range.

    Examples
    --------
    >>> bool(checkerboard(2, standardize=False).min() >= 0)
    True
    """
    n = check_int("n", n, 1)
    num_cells = check_int("num_cells", num_cells, 2)
    rng = _rng(seed)
    i, j = np.meshgrid(np.arange(num_cells), np.arange(num_cells), indexing="ij")
    dark = np.stack([i.ravel(), j.ravel()], axis=1)[(i + j).ravel() % 2 == 0]
    cells = dark[rng.integers(0, len(dark), size=n)]
    x = cells + rng.uniform(0.0, 1.0, size=(n, 2))
    return _finish(x, rng, standardize)


def swiss_roll(n: int, noise: float = 0.5, seed: int = 0, *, standardize: bool = True) -> np.ndarray:
    r"""The 2-D Swiss roll: the spiral :math:`t(\cos t, \sin t)`.

    As in scikit-learn's ``make_swiss_roll`` (its ``x`` and ``z`` coordinates),
    :math:`t = \tfrac{3\pi}{2}(1 + 2u)`, :math:`u \sim U(0, 1)`, so the radius runs from
    about 4.7 to 14.1; Gaussian noise is added in those native units.

    Parameters
    ----------
    n
        Number of points.
    noise
        Standard deviation of the Gaussian noise, in native units (the arms are about
        6.3 apart).
    seed
        Seed of ``np.random.default_rng``.
    standardize
        Centre and rescale to total variance 2.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``(n, 2)``.

    Raises
    ------
    ValueError
        If an argument is out of range.

    Examples
    --------
    >>> swiss_roll(10).shape
    (10, 2)
    """
    n = check_int("n", n, 1)
    noise = check_nonnegative("noise", noise)
    rng = _rng(seed)
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.uniform(0.0, 1.0, size=n))
    x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    x = x + noise * rng.standard_normal((n, 2))
    return _finish(x, rng, standardize)


# ----------------------------------------------------------------------------- digits
def digits(
    n: int | None = None,
    seed: int = 0,
    *,
    scale: str = "unit",
    return_labels: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Scikit-learn's 8×8 handwritten digits (1797 images, 64 features, no download).

    The data ship with scikit-learn, which is an optional dependency
    (``pip install "ebm_ppl[datasets]"`` or ``pip install scikit-learn``).

    Parameters
    ----------
    n
        Number of images; ``None`` returns all 1797 in their original order, an integer
        returns a random subset (without replacement) drawn with ``seed``.
    seed
        Seed of ``np.random.default_rng`` for the subset.
    scale
        ``"unit"``: pixel intensities 0..16 divided by 16, in ``[0, 1]``;
        ``"standardize"``: each pixel centred and divided by its standard deviation
        over the full data set (always-blank pixels stay 0); ``"raw"``: 0..16.
    return_labels
        Also return the ``int64`` class labels (0..9).

    Returns
    -------
    numpy.ndarray or tuple of numpy.ndarray
        ``float32`` array of shape ``(n, 64)``, and the labels of shape ``(n,)`` when
        ``return_labels``.

    Raises
    ------
    ImportError
        If scikit-learn is not installed.
    ValueError
        If ``scale`` is unknown or ``n`` is out of range.

    Examples
    --------
    >>> digits(5).shape  # doctest: +SKIP
    (5, 64)
    """
    scales = ("unit", "standardize", "raw")
    if scale not in scales:
        raise ValueError(f"scale must be one of {scales}, got {scale!r}")
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError(
            "digits() needs scikit-learn, which is not installed; install it with "
            "`pip install scikit-learn` (or the extra `pip install \"ebm_ppl[datasets]\"`)"
        ) from err
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    if scale == "unit":
        x = x / 16.0
    elif scale == "standardize":
        sd = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    if n is not None:
        n = check_int("n", n, 1)
        if n > len(x):
            raise ValueError(f"n must be <= {len(x)} (the number of digits), got {n}")
        idx = _rng(seed).choice(len(x), size=n, replace=False)
        x, y = x[idx], y[idx]
    x = np.ascontiguousarray(x, dtype=np.float32)
    return (x, y) if return_labels else x


# ----------------------------------------------------------------------------- files
def _read_text(path: Path, delimiter: str | None) -> np.ndarray:
    """Parse a delimited text file of numbers, skipping one optional header line."""
    with path.open(encoding="utf-8") as f:
        lines = [
            line for line in f.read().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
    if not lines:
        raise ValueError(f"data file {str(path)!r} is empty; expected a 2-D (n, d) array")

    def fields(line: str) -> list[str]:
        return [s.strip() for s in (line.split(delimiter) if delimiter else line.split())]

    def is_number(field: str) -> bool:
        try:
            float(field)
        except ValueError:
            return False
        return True

    if not all(is_number(s) for s in fields(lines[0])):
        lines = lines[1:]  # header
    if not lines:
        return np.zeros((0, 0))
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
    for i, row in enumerate(rows):
        bad = [s for s in row if not is_number(s)]
        if bad:
            raise ValueError(
                f"data file {str(path)!r} must contain only numbers, got {bad[0]!r} on data "
                f"row {i + 1}"
            )
    return np.array([[float(s) for s in row] for row in rows], dtype=np.float64)


def load_array(path: str | os.PathLike[str], *, dtype: Any = np.float32) -> np.ndarray:
    """Load a user's data matrix ``(n, d)`` from a ``.npy``, ``.csv`` or ``.txt`` file.

    ``.npy`` is read with ``allow_pickle=False``; ``.csv`` is comma separated and
    ``.txt`` whitespace separated, each with one optional header line (detected when
    its first line is not all numbers). Blank lines and lines starting with ``#`` are
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


# ----------------------------------------------------------------------------- registry
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
        return x[_rng(seed).choice(len(x), size=n, replace=False)]
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
