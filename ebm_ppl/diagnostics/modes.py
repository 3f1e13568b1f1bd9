r"""Mode weights of a multimodal run: the check that kernel Stein discrepancy cannot make.

KSD sees the target only through its score, which is blind to the relative mass of
well-separated modes (Wenliang & Kanagawa 2020): draws that put the wrong weight on each
of several distant Gaussians have nearly the score of the right mixture, so
:func:`~ebm_ppl.diagnostics.ksd_test` passes them. :func:`mode_weights` looks at the
weights directly. It clusters the pooled draws (k-means, or given ``centers``), turns each
chain into one indicator series per mode, and asks two questions:

* do the chains agree on the weights? The rank-normalised R-hat of each indicator
  (:func:`ebm_ppl.sampling.health.rank_rhat`, as ``arviz.rhat``) above ``max_rhat`` —
  enormous when every chain stays in the mode it started in — means they do not;
* with ``expected`` weights, are the pooled weights right? :math:`z_k = |\hat w_k -
  w_k| / \mathrm{mcse}_k`, :math:`\mathrm{mcse}_k = \mathrm{sd}_k / \sqrt{\mathrm{ESS}_k}`
  (ArviZ's bulk ESS of the indicator), against the Bonferroni critical value
  :math:`\Phi^{-1}(1 - \alpha / 2K)`.

References
----------
Wenliang & Kanagawa (2020), *Blindness of score-based methods to isolated components and
mixing proportions*, https://arxiv.org/abs/2011.03093.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import arviz as az
import numpy as np
from scipy import stats as scipy_stats

from ebm_ppl.diagnostics._samples import as_chains
from ebm_ppl.potential import Potential
from ebm_ppl.sampling.health import rank_rhat

__all__ = ["ModeWeightsResult", "mode_weights", "kmeans"]

#: Largest R-hat of a mode indicator for chains that agree on the weights.
MAX_RHAT = 1.05
#: Points k-means fits its centres on (evenly spaced through the pooled draws).
MAX_FIT_POINTS = 20_000
#: Lloyd iterations of :func:`kmeans`.
KMEANS_ITERATIONS = 50


class ModeWeightsResult(NamedTuple):
    """What :func:`mode_weights` found.

    Attributes
    ----------
    centers
        ``(K, d)`` mode centres.
    weights
        ``(K,)`` pooled fraction of draws nearest each centre.
    chain_weights
        ``(chain, K)`` the same per chain.
    mcse
        ``(K,)`` Monte-Carlo standard error of each pooled weight.
    r_hat
        ``(K,)`` rank-normalised R-hat of each mode indicator (enormous, or ``inf``, when
        every chain stays in its own modes).
    expected, z
        The given weights and the z-scores of the pooled weights against them (None).
    status
        ``"fail"`` when the chains disagree or a weight is off, else ``"pass"``.
    """

    centers: np.ndarray
    weights: np.ndarray
    chain_weights: np.ndarray
    mcse: np.ndarray
    r_hat: np.ndarray
    expected: np.ndarray | None
    z: np.ndarray | None
    status: str

    def __str__(self) -> str:
        parts = [f"mode weights {np.round(self.weights, 3).tolist()}",
                 f"R-hat {np.round(self.r_hat, 3).tolist()}"]
        if self.z is not None:
            parts.append(f"expected {np.round(self.expected, 3).tolist()}, "
                         f"max z {np.max(self.z):.2f}")
        return f"Mode weights: {self.status.upper()} (" + "; ".join(parts) + ")"


def kmeans(points: np.ndarray, num_clusters: int, seed: int = 0) -> np.ndarray:
    """``(num_clusters, d)`` k-means centres of ``points`` ``(n, d)`` (k-means++ start,
    :data:`KMEANS_ITERATIONS` Lloyd steps; deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    points = np.asarray(points, np.float64)
    centers = [points[rng.integers(len(points))]]
    for _ in range(1, num_clusters):
        d2 = np.min(((points[:, None, :] - np.asarray(centers)[None]) ** 2).sum(-1), axis=1)
        centers.append(points[rng.choice(len(points), p=d2 / d2.sum())])
    centers = np.asarray(centers)
    for _ in range(KMEANS_ITERATIONS):
        labels = _nearest(points, centers)
        new = np.asarray([points[labels == k].mean(axis=0) if np.any(labels == k)
                          else centers[k] for k in range(num_clusters)])
        if np.allclose(new, centers):
            break
        centers = new
    return centers


def _nearest(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    return np.argmin(((points[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)


def mode_weights(
    samples: Any,
    pot: Potential | None = None,
    *,
    centers: Any = None,
    num_modes: int | None = None,
    expected: Any = None,
    max_rhat: float = MAX_RHAT,
    alpha: float = 1e-3,
    seed: int = 0,
) -> ModeWeightsResult:
    """Per-mode weights of a run and whether the chains agree on them.

    Parameters
    ----------
    samples
        An InferenceData (``pot`` maps model sites as in :func:`ksd`) or a
        ``(chain, draw, d)`` array; at least 2 chains.
    pot
        The potential, for InferenceData of models; optional.
    centers
        ``(K, d)`` known mode centres; otherwise ``num_modes`` centres from k-means.
    num_modes
        Number of modes ``K >= 2`` for k-means (when ``centers`` is None).
    expected
        ``(K,)`` true weights in the order of ``centers`` (None: no weight test).
    max_rhat
        Largest tolerated R-hat of a mode indicator.
    alpha
        Family-wise false-alarm probability of the weight z-tests.
    seed
        Seed of k-means.

    Returns
    -------
    ModeWeightsResult

    Raises
    ------
    ValueError
        If neither ``centers`` nor a ``num_modes >= 2`` is given, shapes disagree, there
        is one chain only, or ``expected`` is not a probability vector.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> stuck = np.stack([rng.normal(m, 0.5, (500, 1)) for m in (-5, -5, 5, 5)])
    >>> mode_weights(stuck, centers=[[-5.0], [5.0]]).status
    'fail'
    """
    draws, _ = as_chains(samples, pot)
    draws = np.asarray(draws, np.float64)
    if draws.ndim != 3 or draws.shape[0] < 2:
        raise ValueError("mode_weights needs at least 2 chains of draws (chain, draw, d), got "
                         f"shape {draws.shape}")
    num_chains, num_draws, dim = draws.shape
    pooled = draws.reshape(-1, dim)
    if centers is not None:
        centers = np.atleast_2d(np.asarray(centers, np.float64))
        if centers.shape[1] != dim or centers.shape[0] < 2:
            raise ValueError(f"centers must have shape (K >= 2, {dim}), got {centers.shape}")
    else:
        if isinstance(num_modes, bool) or not isinstance(num_modes, int) or num_modes < 2:
            raise ValueError("give centers=(K, d) or num_modes >= 2 (k-means), got "
                             f"num_modes={num_modes!r}")
        step = max(1, len(pooled) // MAX_FIT_POINTS)
        centers = kmeans(pooled[::step], num_modes, seed)
    num_modes = centers.shape[0]
    labels = _nearest(pooled, centers).reshape(num_chains, num_draws)
    indicators = (labels[..., None] == np.arange(num_modes)).astype(np.float64)
    weights = indicators.mean(axis=(0, 1))
    chain_weights = indicators.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_hat = np.asarray(rank_rhat(indicators), np.float64).reshape(num_modes)
    # a mode no chain leaves (or never visits) has zero within-chain variance: R-hat is
    # then infinite where the chains disagree, and 1 where they agree
    disagree = np.ptp(chain_weights, axis=0) > 0
    r_hat = np.where(np.isfinite(r_hat), r_hat, np.where(disagree, np.inf, 1.0))
    ess = np.asarray([float(az.ess(indicators[..., k], method="bulk"))
                      if np.ptp(indicators[..., k]) > 0 else float(num_chains)
                      for k in range(num_modes)])
    ess = np.where(np.isfinite(ess) & (ess > 0), ess, float(num_chains))
    mcse = np.sqrt(weights * (1 - weights)) / np.sqrt(ess)
    status = "fail" if np.any(r_hat > max_rhat) else "pass"
    z = None
    if expected is not None:
        expected = np.asarray(expected, np.float64)
        if expected.shape != (num_modes,) or np.any(expected < 0) or not np.isclose(
                expected.sum(), 1.0):
            raise ValueError(f"expected must be {num_modes} weights summing to 1, got "
                             f"{expected.tolist()}")
        z = np.abs(weights - expected) / np.maximum(mcse, 1e-12)
        if np.any(z > scipy_stats.norm.ppf(1 - alpha / (2 * num_modes))):
            status = "fail"
    return ModeWeightsResult(centers, weights, chain_weights, mcse, r_hat, expected, z, status)
