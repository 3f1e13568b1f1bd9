"""The 2-D toy densities of the literature (FFJORD, score matching, NCSN), in pure NumPy.

Each generator is seeded with ``np.random.default_rng(seed)`` (no global state), shuffles
its rows and, by default, standardises the cloud (see :mod:`ebm_ppl.datasets`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ebm_ppl._validation import check_int, check_nonnegative, check_positive

__all__ = ["checkerboard", "eight_gaussians", "rings", "seeded_rng", "swiss_roll", "two_moons"]


def seeded_rng(seed: Any) -> np.random.Generator:
    """``np.random.default_rng(seed)`` for an integer ``seed >= 0`` (else ``ValueError``)."""
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


_SHARED_DOC = """standardize
        Centre and rescale to total variance 2.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``(n, 2)``.

    Raises
    ------
    ValueError
        If an argument is out of range.
"""


def _shared_doc(fn: Callable) -> Callable:
    """Fill the ``{shared}`` slot of ``fn``'s docstring (``standardize``, Returns, Raises)."""
    if fn.__doc__:  # None under ``python -OO``
        fn.__doc__ = fn.__doc__.replace("    {shared}\n", "    " + _SHARED_DOC)
    return fn


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
    rng = seeded_rng(seed)
    n_upper = n - n // 2
    t = rng.uniform(0.0, np.pi, size=n)
    upper = np.stack([np.cos(t[:n_upper]), np.sin(t[:n_upper])], axis=1)
    lower = np.stack([1.0 - np.cos(t[n_upper:]), 0.5 - np.sin(t[n_upper:])], axis=1)
    x = np.concatenate([upper, lower]) + noise * rng.standard_normal((n, 2))
    return _finish(x, rng, standardize)


@_shared_doc
def eight_gaussians(n: int, noise: float = 0.1, seed: int = 0, *, num_modes: int = 8,
                    radius: float = 1.0, standardize: bool = True) -> np.ndarray:
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
    {shared}

    Examples
    --------
    >>> eight_gaussians(5).dtype
    dtype('float32')
    """
    n = check_int("n", n, 1)
    noise = check_nonnegative("noise", noise)
    num_modes = check_int("num_modes", num_modes, 1)
    radius = check_positive("radius", radius)
    rng = seeded_rng(seed)
    angles = 2.0 * np.pi * rng.integers(0, num_modes, size=n) / num_modes
    centres = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    x = centres + noise * radius * rng.standard_normal((n, 2))
    return _finish(x, rng, standardize)


@_shared_doc
def rings(n: int, noise: float = 0.05, seed: int = 0, *, num_rings: int = 4,
          standardize: bool = True) -> np.ndarray:
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
    {shared}

    Examples
    --------
    >>> rings(3, num_rings=2).shape
    (3, 2)
    """
    n = check_int("n", n, 1)
    noise = check_nonnegative("noise", noise)
    num_rings = check_int("num_rings", num_rings, 1)
    rng = seeded_rng(seed)
    radii = np.arange(1, num_rings + 1, dtype=np.float64)
    ring = rng.choice(num_rings, size=n, p=radii / radii.sum())
    t = rng.uniform(0.0, 2.0 * np.pi, size=n)
    x = radii[ring, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    x = x + noise * rng.standard_normal((n, 2))
    return _finish(x, rng, standardize)


@_shared_doc
def checkerboard(n: int, seed: int = 0, *, num_cells: int = 4,
                 standardize: bool = True) -> np.ndarray:
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
    {shared}

    Examples
    --------
    >>> bool(checkerboard(2, standardize=False).min() >= 0)
    True
    """
    n = check_int("n", n, 1)
    num_cells = check_int("num_cells", num_cells, 2)
    rng = seeded_rng(seed)
    i, j = np.meshgrid(np.arange(num_cells), np.arange(num_cells), indexing="ij")
    dark = np.stack([i.ravel(), j.ravel()], axis=1)[(i + j).ravel() % 2 == 0]
    cells = dark[rng.integers(0, len(dark), size=n)]
    x = cells + rng.uniform(0.0, 1.0, size=(n, 2))
    return _finish(x, rng, standardize)


@_shared_doc
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
    {shared}

    Examples
    --------
    >>> swiss_roll(10).shape
    (10, 2)
    """
    n = check_int("n", n, 1)
    noise = check_nonnegative("noise", noise)
    rng = seeded_rng(seed)
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.uniform(0.0, 1.0, size=n))
    x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    x = x + noise * rng.standard_normal((n, 2))
    return _finish(x, rng, standardize)
