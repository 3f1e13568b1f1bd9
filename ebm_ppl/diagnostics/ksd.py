r"""Kernel Stein discrepancy (KSD); its wild-bootstrap test is in :mod:`.stein_test`.

The Langevin Stein kernel built on a base kernel :math:`k` and the score
:math:`s = \nabla \log p` of the target,

.. math::

    k_p(x, y) = s(x)^\top s(y)\, k(x, y) + s(x)^\top \nabla_y k(x, y)
                + s(y)^\top \nabla_x k(x, y) + \operatorname{tr} \nabla_x \nabla_y k(x, y),

has :math:`\mathbb E_{x, y \sim p}[k_p(x, y)] = 0`, and
:math:`\mathrm{KSD}^2(q \,\|\, p) = \mathbb E_{x, y \sim q}[k_p(x, y)]` is zero iff
:math:`q = p` (for the IMQ kernel with :math:`\beta \in (-1, 0)` it also controls weak
convergence, Gorham & Mackey 2017). Only the score is needed, never the normaliser: the
natural check of an energy-based model.

All sums over pairs are computed block by block (``lax.map`` over row blocks; only a
``(block, n)`` slice of the kernel matrix exists at a time), from inner products, so
``n = 10^5`` draws run in memory linear in ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ebm_ppl._types import Array
from ebm_ppl.diagnostics._samples import as_chains, batched_scores
from ebm_ppl.potential import Potential

__all__ = [
    "KSDResult",
    "KERNELS",
    "STATISTICS",
    "ksd",
    "stein_kernel_matrix",
    "median_bandwidth",
]

#: Base kernels: inverse multiquadric ``(c² + |x-y|²)^β`` and Gaussian RBF
#: ``exp(-|x-y|² / (2ℓ²))``.
KERNELS = ("imq", "rbf")
#: ``"u"``: unbiased U-statistic (pairs ``i ≠ j``); ``"v"``: V-statistic (all pairs, ≥ 0).
STATISTICS = ("u", "v")

#: Largest number of kernel-matrix entries held at once (row block × n); 2²² float32
#: entries are 16 MiB per intermediate matrix.
_MAX_BLOCK_ENTRIES = 2**22
#: Points used to estimate the median pairwise distance (RBF bandwidth): an evenly spaced
#: subsample keeps the O(m²) cost bounded; the median is stable at this size.
_MEDIAN_SUBSAMPLE = 1000


class KSDResult(NamedTuple):
    r"""Kernel Stein discrepancy of a sample set (pooled) and of each chain.

    Attributes
    ----------
    ksd
        :math:`\sqrt{\max(\widehat{\mathrm{KSD}^2}, 0)}` of the pooled draws.
    ksd_squared
        The U- or V-statistic estimate of :math:`\mathrm{KSD}^2` (a U-statistic can be
        slightly negative).
    per_chain
        :math:`\widehat{\mathrm{KSD}^2}` of each chain, shape ``(chain,)`` (one entry for
        a plain sample set).
    num_samples
        Number of pooled draws.
    kernel, statistic
        The base kernel and the estimator used.
    bandwidth
        RBF length scale :math:`\ell` (NaN for IMQ).
    """

    ksd: float
    ksd_squared: float
    per_chain: np.ndarray
    num_samples: int
    kernel: str
    statistic: str
    bandwidth: float


def _stein_block(
    xr: Array, sr: Array, xc: Array, sc: Array, kernel: str, c: float, beta: float,
    bandwidth: Array,
) -> Array:
    """Stein kernel matrix between rows ``xr`` (B, d) and columns ``xc`` (n, d).

    Everything is expressed with inner products (no ``(B, n, d)`` tensor):
    :math:`|x-y|^2 = |x|^2 + |y|^2 - 2x^\\top y` and
    :math:`(s_x - s_y)^\\top (x - y) = s_x^\\top x - s_x^\\top y - s_y^\\top x + s_y^\\top y`.
    """
    d = xr.shape[-1]
    xx = jnp.sum(xr * xr, axis=1)[:, None]
    yy = jnp.sum(xc * xc, axis=1)[None, :]
    r2 = jnp.maximum(xx + yy - 2.0 * xr @ xc.T, 0.0)
    ss = sr @ sc.T
    dr = (
        jnp.sum(sr * xr, axis=1)[:, None]
        - sr @ xc.T
        - xr @ sc.T
        + jnp.sum(sc * xc, axis=1)[None, :]
    )
    if kernel == "imq":
        # k = u^β, u = c² + r²; ∇_x k = 2β u^{β-1} (x-y) = -∇_y k;
        # tr ∇_x∇_y k = -4β(β-1) u^{β-2} r² - 2βd u^{β-1}
        u = c**2 + r2
        return (
            u**beta * ss
            - 2.0 * beta * u ** (beta - 1.0) * dr
            - 4.0 * beta * (beta - 1.0) * u ** (beta - 2.0) * r2
            - 2.0 * beta * d * u ** (beta - 1.0)
        )
    # rbf: k = exp(-r²/(2ℓ²)); ∇_x k = -k (x-y)/ℓ² = -∇_y k; tr = k (d/ℓ² - r²/ℓ⁴)
    inv = 1.0 / bandwidth**2
    k = jnp.exp(-0.5 * r2 * inv)
    return k * (ss + dr * inv + d * inv - r2 * inv**2)


def stein_kernel_matrix(
    x: Array, scores: Array, kernel: str = "imq", *, c: float = 1.0, beta: float = -0.5,
    bandwidth: float | None = None,
) -> Array:
    r"""The full ``(n, n)`` Langevin Stein kernel matrix :math:`k_p(x_i, x_j)`.

    For small ``n`` and for tests; :func:`ksd` never forms it.

    Parameters
    ----------
    x, scores
        Draws and their scores :math:`\nabla \log p(x_i)`, shape ``(n, d)``.
    kernel, c, beta, bandwidth
        As in :func:`ksd`.
    """
    _check_kernel(kernel, c, beta)
    x = jnp.asarray(x)
    scores = jnp.asarray(scores, x.dtype)
    ell = median_bandwidth(x) if bandwidth is None and kernel == "rbf" else bandwidth
    ell = jnp.asarray(1.0 if ell is None else ell, x.dtype)
    return _stein_block(x, scores, x, scores, kernel, c, beta, ell)


def median_bandwidth(x: Array) -> Array:
    r"""Median heuristic :math:`\ell = \operatorname{median}_{i<j} |x_i - x_j|`.

    Computed on at most 1000 evenly spaced rows of ``x`` (Gretton et al. 2012;
    Garreau, Jitkrittum & Kanagawa 2017, https://arxiv.org/abs/1707.07269).
    """
    x = jnp.asarray(x)
    n = x.shape[0]
    if n > _MEDIAN_SUBSAMPLE:
        x = x[jnp.linspace(0, n - 1, _MEDIAN_SUBSAMPLE).astype(jnp.int32)]
    m = x.shape[0]
    sq = jnp.sum(x * x, axis=1)
    r2 = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    iu = jnp.triu_indices(m, k=1)
    med = jnp.sqrt(jnp.median(r2[iu]))
    return jnp.where(med > 0, med, 1.0)


# ----------------------------------------------------------------------- sums
def _block_size(n: int, num_weights: int, block_size: int | None) -> int:
    if block_size is not None:
        return max(1, min(int(block_size), n))
    return max(1, min(n, _MAX_BLOCK_ENTRIES // max(n * max(num_weights, 1), 1)))


@partial(jax.jit, static_argnames=("kernel", "include_diag", "block_size", "c", "beta"))
def _weighted_sums(
    x: Array, s: Array, weights: Array, bandwidth: Array, *, kernel: str, include_diag: bool,
    block_size: int, c: float, beta: float,
) -> Array:
    r""":math:`\sum_{i,j} w_{im} w_{jm} k_p(x_i, x_j)` for each column ``m`` of ``weights``.

    ``weights`` has shape ``(n, M)``; pairs ``i = j`` are left out unless
    ``include_diag``. Rows are processed ``block_size`` at a time under ``lax.map``.
    """
    n, d = x.shape
    num_blocks = math.ceil(n / block_size)
    pad = num_blocks * block_size - n
    xr = jnp.pad(x, ((0, pad), (0, 0))).reshape(num_blocks, block_size, d)
    sr = jnp.pad(s, ((0, pad), (0, 0))).reshape(num_blocks, block_size, d)
    wr = jnp.pad(weights, ((0, pad), (0, 0))).reshape(num_blocks, block_size, -1)
    rows = jnp.arange(num_blocks * block_size).reshape(num_blocks, block_size)
    cols = jnp.arange(n)

    def one_block(args):
        xb, sb, wb, ib = args
        kp = _stein_block(xb, sb, x, s, kernel, c, beta, bandwidth)
        if not include_diag:
            kp = jnp.where(ib[:, None] == cols[None, :], 0.0, kp)
        return jnp.sum(wb * (kp @ weights), axis=0)

    return jnp.sum(jax.lax.map(one_block, (xr, sr, wr, rows)), axis=0)


def _check_kernel(kernel: str, c: float, beta: float) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if not (isinstance(c, (int, float)) and c > 0):
        raise ValueError(f"c must be a number > 0, got {c!r}")
    if not (isinstance(beta, (int, float)) and -1.0 < beta < 0.0):
        raise ValueError(f"beta must be in (-1, 0), got {beta!r}")


def _check_statistic(statistic: str) -> None:
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")


def _prepare(
    samples: Any, score_fn: Callable | Potential | None, thin: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Chains ``(C, N, d)``, their scores, and whether the input had chains."""
    pot = score_fn if isinstance(score_fn, Potential) else None
    if score_fn is None:
        raise ValueError("score_fn is required: a callable x -> grad log p(x) or a Potential")
    chains, has_chains = as_chains(samples, pot)
    if isinstance(thin, bool) or not isinstance(thin, (int, np.integer)) or thin < 1:
        raise ValueError(f"thin must be an integer >= 1, got {thin!r}")
    chains = chains[:, ::thin]
    num_chains, num_draws, d = chains.shape
    if num_draws < 2:
        raise ValueError(f"need at least 2 draws per chain, got {num_draws}")
    if not np.all(np.isfinite(chains)):
        raise ValueError("samples contain non-finite values; KSD is undefined")
    scores = np.asarray(batched_scores(score_fn, chains.reshape(-1, d)))
    scores = scores.reshape(num_chains, num_draws, d)
    # Stein kernels are translation invariant: centring improves float32 accuracy
    chains = chains - chains.reshape(-1, d).mean(axis=0)
    return chains, scores, has_chains


def _resolve_bandwidth(x: np.ndarray, kernel: str, bandwidth: float | None) -> Array:
    if kernel != "rbf":
        return jnp.asarray(jnp.nan, x.dtype)
    if bandwidth is None:
        return median_bandwidth(jnp.asarray(x))
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth!r}")
    return jnp.asarray(bandwidth, x.dtype)


def _ksd2(x: Array, s: Array, ell: Array, kernel: str, statistic: str, c: float, beta: float,
          block_size: int | None) -> Array:
    n = x.shape[0]
    ones = jnp.ones((n, 1), x.dtype)
    total = _weighted_sums(
        jnp.asarray(x), jnp.asarray(s), ones, ell, kernel=kernel,
        include_diag=statistic == "v", block_size=_block_size(n, 1, block_size), c=c, beta=beta,
    )[0]
    return total / float(n * (n - 1) if statistic == "u" else n * n)


@partial(jax.jit, static_argnames=("kernel", "statistic", "c", "beta", "block_size"))
def _ksd2_chains(chains: Array, scores: Array, ell: Array, *, kernel: str, statistic: str,
                 c: float, beta: float, block_size: int | None) -> Array:
    """Per-chain KSD² under ``lax.map``: one chain's ``(block, n)`` slice at a time."""
    return jax.lax.map(
        lambda xs: _ksd2(xs[0], xs[1], ell, kernel, statistic, c, beta, block_size),
        (chains, scores),
    )


# ----------------------------------------------------------------------- public
def ksd(
    samples: Any,
    score_fn: Callable | Potential | None,
    kernel: str = "imq",
    *,
    statistic: str = "u",
    c: float = 1.0,
    beta: float = -0.5,
    bandwidth: float | None = None,
    thin: int = 1,
    block_size: int | None = None,
) -> KSDResult:
    r"""Kernel Stein discrepancy of draws against an unnormalised density.

    .. math::

        \widehat{\mathrm{KSD}^2}_U = \frac{1}{n(n-1)} \sum_{i \ne j} k_p(x_i, x_j), \qquad
        \widehat{\mathrm{KSD}^2}_V = \frac{1}{n^2} \sum_{i, j} k_p(x_i, x_j),

    with the Langevin Stein kernel :math:`k_p` of the module docstring on the base kernel

    * ``"imq"``: :math:`k(x, y) = (c^2 + \|x - y\|^2)^\beta`, default :math:`c = 1,
      \beta = -\tfrac12` (Gorham & Mackey 2017: for :math:`\beta \in (-1, 0)` the KSD
      detects non-convergence, which the Gaussian kernel does not in :math:`d \ge 3`);
    * ``"rbf"``: :math:`k(x, y) = \exp(-\|x - y\|^2 / (2\ell^2))` with the median
      heuristic :math:`\ell` unless ``bandwidth`` is given.

    Parameters
    ----------
    samples
        Draws: ``(n,)``, ``(n, d)``, ``(chain, draw, d)`` or an ``arviz.InferenceData``
        (its posterior, flattened per draw; see ``score_fn``). The posterior of a
        ``Potential.from_model`` potential holds constrained sites: its latent sites are
        mapped back to the unconstrained space the potential's score lives on
        (deterministic sites are left out).
    score_fn
        :math:`\nabla \log p`: a :class:`~ebm_ppl.Potential` (its ``score``, pytree
        positions flattened in leaf order) or a callable mapping one position ``(d,)`` to
        its score ``(d,)``.
    kernel
        ``"imq"`` or ``"rbf"``.
    statistic
        ``"u"`` (unbiased, may be < 0) or ``"v"`` (biased upwards by
        :math:`O(1/n)`, always ≥ 0).
    c, beta
        IMQ parameters, :math:`c > 0`, :math:`\beta \in (-1, 0)`.
    bandwidth
        RBF length scale :math:`\ell`; median heuristic of the pooled draws when None.
    thin
        Keep every ``thin``-th draw of each chain.
    block_size
        Rows of the kernel matrix per block (default: about :math:`2^{22}/n`).

    Returns
    -------
    KSDResult
        Pooled ``ksd`` and ``ksd_squared``, plus ``per_chain`` :math:`\widehat{\mathrm{KSD}^2}`.

    Raises
    ------
    ValueError
        For an unknown kernel or statistic, invalid kernel parameters, or non-finite
        draws.

    Notes
    -----
    Cost :math:`O(n^2 d)` time, :math:`O(n \cdot \text{block})` memory. Scores are
    evaluated once per draw under ``jit(vmap)``. Under :math:`p` each term has mean zero
    (Stein's identity), so the U-statistic is unbiased for 0 on exact draws.

    References
    ----------
    Liu, Lee & Jordan (2016), *A kernelized Stein discrepancy for goodness-of-fit tests*,
    https://arxiv.org/abs/1602.03253
    Chwialkowski, Strathmann & Gretton (2016), *A kernel test of goodness of fit*,
    https://arxiv.org/abs/1602.02964
    Gorham & Mackey (2017), *Measuring sample quality with kernels*,
    https://arxiv.org/abs/1703.01717

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> x = jax.random.normal(jax.random.key(0), (500, 2))
    >>> res = ksd(x, lambda x: -x)
    >>> res.ksd < 0.1
    True
    """
    _check_kernel(kernel, c, beta)
    _check_statistic(statistic)
    chains, scores, _ = _prepare(samples, score_fn, thin)
    num_chains, num_draws, d = chains.shape
    pooled_x = chains.reshape(-1, d)
    pooled_s = scores.reshape(-1, d)
    ell = _resolve_bandwidth(pooled_x, kernel, bandwidth)
    pooled = float(_ksd2(pooled_x, pooled_s, ell, kernel, statistic, c, beta, block_size))
    if num_chains == 1:
        per_chain = np.array([pooled])
    else:
        per_chain = np.asarray(_ksd2_chains(
            jnp.asarray(chains), jnp.asarray(scores), ell, kernel=kernel, statistic=statistic,
            c=c, beta=beta, block_size=block_size,
        ), dtype=float)
    return KSDResult(
        ksd=math.sqrt(max(pooled, 0.0)),
        ksd_squared=pooled,
        per_chain=per_chain,
        num_samples=int(pooled_x.shape[0]),
        kernel=kernel,
        statistic=statistic,
        bandwidth=float(ell),
    )
