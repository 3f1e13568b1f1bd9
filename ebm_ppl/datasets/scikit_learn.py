"""Scikit-learn's 8×8 handwritten digits (an optional dependency, imported on use)."""

from __future__ import annotations

import numpy as np

from ebm_ppl._validation import check_int
from ebm_ppl.datasets.toy import seeded_rng

__all__ = ["digits"]


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
        idx = seeded_rng(seed).choice(len(x), size=n, replace=False)
        x, y = x[idx], y[idx]
    x = np.ascontiguousarray(x, dtype=np.float32)
    return (x, y) if return_labels else x
