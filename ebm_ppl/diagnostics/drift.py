r"""Improper-target and drift detection.

An improper target (``∫ exp(-E) = ∞``, e.g. the linear energy :math:`E(x) = \theta^\top x`
of seed 001) has no stationary law: Langevin drifts like
:math:`x_N \sim \mathcal N(-N h \theta, (1 + 2Nh) I)` forever, and R-hat computed on
chains that drift together can look fine. :func:`drift_check` tests each chain for a
persistent trend in the norm :math:`\|x\|` and in the energy, and raises an
:class:`ImproperTargetWarning` instead of letting a "posterior" through.
"""

from __future__ import annotations

import warnings
from statistics import NormalDist
from typing import Any, NamedTuple

import jax
import numpy as np
import pandas as pd

from ebm_ppl.diagnostics._samples import posterior_array
from ebm_ppl.errors import ImproperTargetWarning
from ebm_ppl.potential import Potential

__all__ = ["DriftResult", "drift_check"]


class DriftResult(NamedTuple):
    r"""Per-chain drift statistics.

    Attributes
    ----------
    drifting
        True if any chain drifts in any monitored quantity (the gate fails).
    table
        ``pandas.DataFrame`` with one row per (chain, quantity): first- and last-segment
        means, their difference, its z-score, the number of segment pairs out of order
        (``inversions``) and whether they follow a ``trend``, the least-squares slope per
        draw, and the ``drift`` flag.
    per_chain
        ``(chain,)`` boolean flags.
    threshold
        The z threshold used (Bonferroni-corrected normal quantile).
    """

    drifting: bool
    table: Any
    per_chain: np.ndarray
    threshold: float

    def __str__(self) -> str:
        status = "DRIFTING (improper target?)" if self.drifting else "no drift"
        flagged = np.flatnonzero(self.per_chain).tolist()
        return f"drift check: {status}; chains flagged: {flagged}"


def _segment_stats(values: np.ndarray, num_segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Segment means and batch-means standard errors, vectorised over chains.

    ``values`` is ``(chain, draw)``; returns ``(chain, num_segments)`` means and errors.
    Each segment of ``L`` draws is cut into :math:`b = \\lfloor\\sqrt L\\rfloor` batches;
    the error is :math:`\\mathrm{sd}(\\text{batch means})/\\sqrt b` (Flegal & Jones 2010),
    which absorbs autocorrelation and, conservatively, any trend inside the segment.
    """
    num_chains, num_draws = values.shape
    length = num_draws // num_segments
    segs = values[:, : length * num_segments].reshape(num_chains, num_segments, length)
    means = segs.mean(axis=-1)
    b = max(int(np.sqrt(length)), 2)
    blen = length // b
    batches = segs[..., : b * blen].reshape(num_chains, num_segments, b, blen).mean(axis=-1)
    se = batches.std(axis=-1, ddof=1) / np.sqrt(b)
    return means, se


def drift_check(
    idata: Any,
    pot: Potential | None = None,
    *,
    alpha: float = 1e-3,
    num_segments: int = 5,
    max_inversions: int = 1,
    warn: bool = True,
) -> DriftResult:
    r"""Flag chains whose norm or energy keeps trending.

    For each chain and each quantity :math:`q_t` (the norm :math:`\|x_t\|`, and the
    energy :math:`E(x_t)` from ``pot``, or :math:`-\text{lp}` from ``sample_stats`` when
    no potential is given), the draws are cut into ``num_segments`` segments. A chain
    drifts when both

    * the last and first segment means differ significantly,
      :math:`|z| = |\bar q_{\text{last}} - \bar q_{\text{first}}| /
      \sqrt{\mathrm{se}_\text{first}^2 + \mathrm{se}_\text{last}^2} > z^\star` with
      batch-means errors and :math:`z^\star = \Phi^{-1}(1 - \alpha / (2 k))`,
      :math:`k` = chains × quantities (Bonferroni), and
    * the segment means follow the trend: at most ``max_inversions`` of the
      :math:`\binom{K}{2}` pairs of segments are out of order (Kendall's
      :math:`\tau \ge 1 - 4\,\text{max\_inversions}/(K(K-1))`), which separates a
      persistent trend from a single jump between modes.

    Non-finite draws also count as drift.

    Parameters
    ----------
    idata
        ``arviz.InferenceData`` with a posterior (and ``sample_stats.lp``).
    pot
        Optional potential to evaluate the energy on the draws.
    alpha
        Family-wise false-alarm level.
    num_segments
        Number :math:`K \ge 3` of segments.
    max_inversions
        Pairs of segment means allowed out of order. For :math:`K = 5` and 1 inversion a
        stationary chain passes the order condition with probability 1/12 only, on top
        of the z-test.
    warn
        Emit an :class:`ImproperTargetWarning` when drift is found.

    Returns
    -------
    DriftResult

    Raises
    ------
    ValueError
        For ``alpha`` outside (0, 1), fewer than 3 segments, or too few draws.

    Examples
    --------
    >>> import jax.numpy as jnp, ebm_ppl
    >>> pot = ebm_ppl.Potential.from_energy(lambda x: jnp.sum(x))      # improper
    >>> idata = ebm_ppl.sample(pot, ebm_ppl.kernels.ula(0.1), jnp.zeros(2),
    ...                        num_samples=500, num_warmup=0, progress=False)
    >>> drift_check(idata, warn=False).drifting
    True
    """
    if not (isinstance(alpha, (int, float)) and 0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if isinstance(num_segments, bool) or not isinstance(num_segments, int) or num_segments < 3:
        raise ValueError(f"num_segments must be an integer >= 3, got {num_segments!r}")
    draws = posterior_array(idata, None if pot is None or pot.postprocess_fn else pot)
    num_chains, num_draws, _ = draws.shape
    if num_draws < 4 * num_segments:
        raise ValueError(
            f"need at least {4 * num_segments} draws per chain for {num_segments} segments, "
            f"got {num_draws}"
        )
    quantities = {"norm": np.linalg.norm(draws.astype(float), axis=-1)}
    if pot is not None and pot.postprocess_fn is None:
        energy = jax.jit(jax.vmap(jax.vmap(pot.energy_fn)))(draws)
        quantities["energy"] = np.asarray(energy, dtype=float)
    elif hasattr(idata, "sample_stats") and "lp" in idata.sample_stats:
        quantities["energy"] = -np.asarray(idata.sample_stats["lp"].values, dtype=float)

    k = num_chains * len(quantities)
    threshold = NormalDist().inv_cdf(1.0 - alpha / (2.0 * k))
    rows = []
    flags = np.zeros(num_chains, dtype=bool)
    t = np.arange(num_draws, dtype=float)
    for name, values in quantities.items():
        finite = np.all(np.isfinite(values), axis=1)
        safe = np.where(np.isfinite(values), values, 0.0)
        means, se = _segment_stats(safe, num_segments)
        diff = means[:, -1] - means[:, 0]
        scale = np.sqrt(se[:, 0] ** 2 + se[:, -1] ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(scale > 0, diff / scale, np.where(diff != 0, np.inf, 0.0))
        iu = np.triu_indices(num_segments, k=1)
        later_minus_earlier = (means[:, None, :] - means[:, :, None])[:, iu[0], iu[1]]
        inversions = np.minimum((later_minus_earlier <= 0).sum(axis=1),
                                (later_minus_earlier >= 0).sum(axis=1))
        monotone = inversions <= max_inversions
        tc = t - t.mean()
        slope = ((safe - safe.mean(axis=1, keepdims=True)) @ tc) / (tc @ tc)
        drift = ((np.abs(z) > threshold) & monotone) | ~finite
        flags |= drift
        for c in range(num_chains):
            rows.append({
                "chain": c, "quantity": name, "first_mean": means[c, 0],
                "last_mean": means[c, -1], "difference": diff[c], "z": z[c],
                "inversions": int(inversions[c]), "trend": bool(monotone[c]),
                "slope_per_draw": slope[c],
                "finite": bool(finite[c]), "drift": bool(drift[c]),
            })
    table = pd.DataFrame(rows)
    result = DriftResult(bool(flags.any()), table, flags, float(threshold))
    if warn and result.drifting:
        warnings.warn(
            f"chains {np.flatnonzero(flags).tolist()} keep drifting (persistent trend in "
            f"{sorted(set(table.loc[table.drift, 'quantity']))}, |z| > {threshold:.2f}): the "
            "target may be improper (not normalisable) or the sampler unstable; the "
            "posterior summaries are not meaningful",
            ImproperTargetWarning,
            stacklevel=2,
        )
    return result
