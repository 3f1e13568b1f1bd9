r"""Does the model fit the data? The kernel Stein discrepancy test of data under a model.

:func:`~ebm_ppl.diagnostics.ksd_test` on *sampler draws* checks the sampler against the
model. The same statistic on *held-out data* checks the model against the data: under
:math:`H_0: y_i \sim p_\theta` (i.i.d.) Stein's identity gives
:math:`\mathbb E[k_p(y, y')] = 0`, and the test needs only the model's score
:math:`\nabla \log p_\theta = -\nabla E_\theta / T`, never its normaliser nor a single
MCMC draw (Liu, Lee & Jordan 2016; Chwialkowski, Strathmann & Gretton 2016).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import numpy as np

from ebm_ppl._types import PRNGKey
from ebm_ppl._validation import as_key, check_int
from ebm_ppl.diagnostics._verdict import verdict_line
from ebm_ppl.diagnostics.ksd import KERNELS
from ebm_ppl.diagnostics.stein_test import ksd_test
from ebm_ppl.potential import Potential

__all__ = ["GoodnessOfFitResult", "goodness_of_fit"]


class GoodnessOfFitResult(NamedTuple):
    r"""Result of :func:`goodness_of_fit`.

    Attributes
    ----------
    statistic
        :math:`n\,\widehat{\mathrm{KSD}^2_u}` of the data under the model.
    ksd
        :math:`\sqrt{\max(\widehat{\mathrm{KSD}^2_u}, 0)}` (a size-free measure of misfit).
    p_value
        Wild-bootstrap p-value.
    reject
        ``p_value < alpha``: the data are unlikely under the model.
    alpha
        Level of the test.
    num_points
        Number of data points used (after ``max_points``).
    kernel
        Base kernel of the Stein kernel (``"imq"`` or ``"rbf"``).
    """

    statistic: float
    ksd: float
    p_value: float
    reject: bool
    alpha: float
    num_points: int
    kernel: str

    def __str__(self) -> str:
        return verdict_line("GoodnessOfFitResult", f"KSD={self.ksd:.4g}", self.p_value,
                            self.reject, "data ~ model", self.alpha,
                            f"n={self.num_points}, kernel={self.kernel}")


def _data_points(data: Any) -> np.ndarray:
    arr = np.asarray(data)
    if not np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_:
        raise ValueError(f"data must be a real array of shape (n, d), got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"data must have shape (n,) or (n, d), got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"data must hold at least 2 points, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("data contain non-finite values; the test is undefined")
    return arr


def goodness_of_fit(
    pot: Potential,
    data: Any,
    *,
    seed: int | PRNGKey = 0,
    num_bootstrap: int = 1000,
    alpha: float = 0.05,
    kernel: str = "imq",
    max_points: int | None = 2000,
) -> GoodnessOfFitResult:
    r"""Kernel Stein discrepancy test of held-out data under the model ``pot``.

    Tests :math:`H_0`: the rows :math:`y_1, \dots, y_n` of ``data`` are i.i.d. draws of
    :math:`p(y) \propto \exp(-E(y)/T)`, with the statistic
    :math:`n\,\widehat{\mathrm{KSD}^2_u} = \frac{1}{n-1}\sum_{i \ne j} k_p(y_i, y_j)`
    (the Langevin Stein kernel :math:`k_p` of :mod:`ebm_ppl.diagnostics.ksd`, built on
    ``pot.score``) and a Rademacher wild-bootstrap p-value (the data are independent).
    This is :func:`~ebm_ppl.diagnostics.ksd_test` with the data in place of the draws.

    No sampling is needed: it checks the *model*, not a sampler. Pair it with
    :func:`~ebm_ppl.diagnostics.mmd_test` (draws against data) to tell a wrong model from
    a sampler that does not reach it.

    Parameters
    ----------
    pot
        A :class:`~ebm_ppl.Potential` over data points (from ``from_energy`` or
        ``from_logdensity``), e.g. a trained energy.
    data
        Held-out data, shape ``(n,)`` or ``(n, d)``. Use points the model was not
        trained on: training points make the test lenient.
    seed
        Integer seed or ``jax.random`` key (subsampling and bootstrap weights).
    num_bootstrap
        Bootstrap replicates (>= 1).
    alpha
        Level: ``reject = p_value < alpha``.
    kernel
        Base kernel: ``"imq"`` (default; :math:`(1 + \|x-y\|^2)^{-1/2}`) or ``"rbf"``
        (median-heuristic Gaussian).
    max_points
        Use at most this many rows, drawn at random without replacement (the cost is
        :math:`O(n^2(d + B))`); None uses all.

    Returns
    -------
    GoodnessOfFitResult
        ``statistic``, ``ksd``, ``p_value`` and ``reject``.

    Raises
    ------
    ValueError
        If ``pot`` was built from a NumPyro model (its positions are latent variables,
        not data points), if the data do not have the potential's dimension, have fewer
        than 2 rows or non-finite values, or for invalid test settings.
    TypeError
        If ``pot`` is not a :class:`~ebm_ppl.Potential` or ``seed`` is not a seed.

    Notes
    -----
    The wild bootstrap of a degenerate U-statistic is asymptotically exact
    (Arcones & Giné 1992); at :math:`n \approx 100` its false-positive rate is close to
    ``alpha`` (see ``tests/diagnostics/test_goodness_of_fit.py``). A small p-value says the data are
    unlikely under the model; a large one is not proof of fit (the power grows with
    :math:`n`). The temperature of ``pot`` is part of the model: :math:`T \ne 1`
    tests :math:`p^{1/T}`.

    References
    ----------
    Liu, Lee & Jordan (2016), https://arxiv.org/abs/1602.03253
    Chwialkowski, Strathmann & Gretton (2016), https://arxiv.org/abs/1602.02964

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from ebm_ppl import Potential
    >>> pot = Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2))
    >>> data = jax.random.normal(jax.random.key(0), (300, 2)) + 1.0
    >>> goodness_of_fit(pot, data).reject
    True
    """
    if not isinstance(pot, Potential):
        raise TypeError(f"pot must be an ebm_ppl.Potential, got {type(pot).__name__}")
    if pot.postprocess_fn is not None:
        raise ValueError(
            "pot must be a density over data points (Potential.from_energy or "
            "from_logdensity), got a Potential.from_model whose positions are latent "
            "variables; check a model's fit with posterior predictive checks instead"
        )
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    num_bootstrap = check_int("num_bootstrap", num_bootstrap, 1)
    if max_points is not None:
        max_points = check_int("max_points", max_points, 2)
    points = _data_points(data)
    if pot.example is not None:
        size = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(pot.example))
        if size != points.shape[1]:
            raise ValueError(
                f"data must have {size} columns (the potential's dimension), got "
                f"{points.shape[1]}"
            )
    key_subsample, key_test = jax.random.split(as_key(seed))
    if max_points is not None and points.shape[0] > max_points:
        rows = np.asarray(jax.random.choice(key_subsample, points.shape[0], (max_points,),
                                            replace=False))
        points = points[np.sort(rows)]
    result = ksd_test(points, pot, seed=key_test, num_bootstrap=num_bootstrap, alpha=alpha,
                      kernel=kernel, bootstrap="rademacher")
    n = result.num_samples
    return GoodnessOfFitResult(
        statistic=result.statistic,
        ksd=math.sqrt(max(result.statistic / n, 0.0)),
        p_value=result.p_value,
        reject=result.reject,
        alpha=result.alpha,
        num_points=n,
        kernel=kernel,
    )
