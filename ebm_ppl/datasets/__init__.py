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

from ebm_ppl.datasets.files import FILE_EXTENSIONS, DatasetFileNotFoundError, load_array
from ebm_ppl.datasets.registry import DATASETS, DEFAULT_N, load
from ebm_ppl.datasets.scikit_learn import digits
from ebm_ppl.datasets.toy import checkerboard, eight_gaussians, rings, swiss_roll, two_moons

__all__ = [
    "DATASETS",
    "DEFAULT_N",
    "FILE_EXTENSIONS",
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
