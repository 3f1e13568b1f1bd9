r"""End-of-run checks of :func:`ebm_ppl.sample`: a :class:`~ebm_ppl.SamplingWarning` for
each way a finished run can be wrong without failing, naming the chains and the fix (as
Stan and NumPyro print after sampling).

Checks (all on the kept draws):

* **blown-up chains** — a draw that is not finite or has :math:`|x| > 10^{10}`
  (:data:`HUGE`; ULA with a too-large step from a far start freezes near
  :math:`10^{11}`, where its next step overflows);
* **stuck chains** — a chain whose position never changed over at least
  :data:`MIN_DRAWS_STUCK` kept draws (every proposal rejected or every step divergent);
* **divergences** — more than :data:`MAX_DIVERGENT_FRACTION` (1 %) of the kept
  transitions divergent;
* **R-hat** — ArviZ's rank-normalised split :math:`\hat R` (computed here with NumPy
  as ``arviz.rhat`` does, :func:`rank_rhat`) above :data:`MAX_RHAT`
  (1.05) for some element of the first :data:`MAX_RHAT_CHAINS` (64) chains (fewer, down
  to :data:`MIN_RHAT_CHAINS` (8), when that would rank more than :data:`MAX_RHAT_VALUES`
  values: :func:`rhat_chains`), with at least 2 chains of at least :data:`MIN_DRAWS_RHAT`
  draws (shorter runs give an :math:`\hat R` too noisy to judge);
* **parallel tempering** (runs whose ``sample_stats`` have ``swap_acceptance`` and
  ``round_trips``) — a neighbour pair whose swaps were accepted in under
  :data:`MIN_SWAP_ACCEPTANCE` (1 %) of at least :data:`MIN_SWAP_PROPOSALS` proposals (a
  gap in the ladder that replicas cannot cross), and chains where no replica completed a
  round trip coldest → hottest → coldest over at least :data:`MIN_DRAWS_PER_TEMPERATURE`
  (20) kept draws per temperature (about five times the :math:`\approx 4K` steps a
  round trip takes on a ladder with swap rates near 0.5): in both cases what the hot
  replicas explore does not reach the cold chain, which may keep the mass of the mode
  it started in;
* **short window warm-up** — :func:`warn_short_warmup`: window adaptation with fewer
  than :data:`~ebm_ppl.adaptation.MIN_WINDOW_WARMUP` (150) warm-up steps, Stan's
  75 + 25 + 50 default windows (shorter warm-ups squeeze the windows, and under 20
  steps the mass matrix is not adapted at all).

Silence them with ``warnings.simplefilter("ignore", ebm_ppl.SamplingWarning)``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from ebm_ppl.adaptation import MIN_WINDOW_WARMUP, Warmup
from ebm_ppl.errors import SamplingWarning

__all__ = [
    "HUGE",
    "MAX_DIVERGENT_FRACTION",
    "MAX_RHAT",
    "MAX_RHAT_CHAINS",
    "MAX_RHAT_VALUES",
    "MIN_RHAT_CHAINS",
    "MIN_DRAWS_RHAT",
    "MIN_DRAWS_PER_TEMPERATURE",
    "MIN_DRAWS_STUCK",
    "MIN_SWAP_ACCEPTANCE",
    "MIN_SWAP_PROPOSALS",
    "rank_rhat",
    "rhat_chains",
    "run_problems",
    "warn_run_problems",
    "warn_short_warmup",
]

#: Largest credible magnitude of a draw (float32 overflows near 3e38; a chain this far
#: out has blown up).
HUGE = 1e10
#: Fewest kept draws for an unmoved chain to count as stuck: random-walk MH at its
#: optimal acceptance 0.234 stays put 50 times in a row with probability 0.766**50 ≈ 2e-6.
MIN_DRAWS_STUCK = 50
#: Largest tolerated fraction of divergent transitions.
MAX_DIVERGENT_FRACTION = 0.01
#: Largest tolerated R-hat (Vehtari et al. 2021 recommend 1.01 for final results; 1.05
#: flags runs that have clearly not mixed).
MAX_RHAT = 1.05
#: Fewest draws per chain for the R-hat check.
MIN_DRAWS_RHAT = 100
#: Chains used by the R-hat check (the first ones): rank-normalised R-hat sorts every
#: value, so on 1000 chains it would dominate the fixed cost of a call
#: (benchmarks/profile_fixed_cost.py); 64 chains judge mixing just as well.
MAX_RHAT_CHAINS = 64
#: Values the R-hat check ranks at most (chains × draws × elements): fewer chains, down
#: to :data:`MIN_RHAT_CHAINS`, for high-dimensional runs (50-D, 200 draws: 13 chains).
MAX_RHAT_VALUES = 2**17
#: Fewest chains the R-hat check uses when there are that many.
MIN_RHAT_CHAINS = 8
#: Smallest tolerated mean swap acceptance of a neighbour pair of a tempering ladder
#: (an adapted ladder equalises the rates, typically at 0.2 – 0.8).
MIN_SWAP_ACCEPTANCE = 0.01
#: Fewest recorded swap proposals of a pair (over all chains) for that check.
MIN_SWAP_PROPOSALS = 100
#: Fewest kept draws per temperature for the round-trip check.
MIN_DRAWS_PER_TEMPERATURE = 20


def rhat_chains(num_draws: int, num_elements: int) -> int:
    """Chains the R-hat check uses for runs of ``num_draws`` draws of ``num_elements``
    numbers: as many as :data:`MAX_RHAT_VALUES` allows, between
    :data:`MIN_RHAT_CHAINS` and :data:`MAX_RHAT_CHAINS`."""
    fit = MAX_RHAT_VALUES // max(1, num_draws * num_elements)
    return int(min(MAX_RHAT_CHAINS, max(MIN_RHAT_CHAINS, fit)))


def _numeric(variables: Mapping[str, Any]) -> list[tuple[str, np.ndarray]]:
    """``(name, values (chain, draw, k))`` of the numeric variables (booleans skipped)."""
    out = []
    for name in variables:
        values = np.asarray(variables[name])
        if np.issubdtype(values.dtype, np.number):
            out.append((name, values.reshape(values.shape[0], values.shape[1], -1)))
    return out


def _blown_up(values: np.ndarray) -> np.ndarray:
    """Chains with a draw that is not finite or exceeds :data:`HUGE` in magnitude (the
    maximum and minimum are NaN when a draw is NaN, and NaN fails both comparisons)."""
    with np.errstate(invalid="ignore"):
        inside = (np.max(values, axis=(1, 2)) <= HUGE) & (np.min(values, axis=(1, 2)) >= -HUGE)
    return ~inside


def _stuck(values: np.ndarray) -> np.ndarray:
    """Chains whose every draw equals their first (only chains whose last draw does are
    compared in full)."""
    stuck = np.all(values[:, -1] == values[:, 0], axis=1)
    candidates = np.flatnonzero(stuck)
    if candidates.size:
        block = values[candidates]
        stuck[candidates] = np.all(block == block[:, :1], axis=(1, 2))
    return stuck


def _blom(ranks: np.ndarray, n: int) -> np.ndarray:
    r"""Blom's normal scores :math:`\Phi^{-1}((r - 3/8) / (n + 1/4))` of ranks out of ``n``."""
    return special.ndtri((ranks - 3 / 8) / (n - 2 * 3 / 8 + 1))


@functools.lru_cache(maxsize=8)
def _blom_table(n: int) -> np.ndarray:
    """Blom's scores of the ranks ``1..n``, read-only (the R-hat checks of runs of one
    size share it; ``ndtri`` of 25 600 values costs 0.4 ms)."""
    table = _blom(np.arange(1.0, n + 1), n)
    table.flags.writeable = False
    return table


def _scores(ordered: np.ndarray, order: np.ndarray, table: np.ndarray) -> np.ndarray:
    r"""Normal scores of the average ranks of every row, in the rows' original order.

    ``ordered`` holds each row sorted, ``order`` the sorting permutation (any one), and
    ``table`` the scores of the ranks ``1..n``. A group of ties at sorted positions
    ``first..last`` has the rank ``(first + last) / 2 + 1`` (``scipy.stats.rankdata``'s
    ``method="average"``); the scores are those ArviZ computes, value for value.
    """
    num_rows, n = ordered.shape
    sorted_scores = np.broadcast_to(table, (num_rows, n))
    pairs = np.flatnonzero(ordered[:, 1:] == ordered[:, :-1])  # sorted value == next one
    if pairs.size:  # ties are few: handle the groups sparsely
        row, pos = np.divmod(pairs, n - 1)
        start = np.ones(pairs.size, bool)  # a pair that does not continue a group
        start[1:] = (np.diff(pos) != 1) | (np.diff(row) != 0)
        end = np.append(start[1:], True)
        first, last = pos[start], pos[end] + 1  # each group spans first..last (sorted)
        lengths = last - first + 1
        group = np.repeat(np.arange(first.size), lengths)
        columns = first[group] + np.arange(lengths.sum()) - np.repeat(
            np.cumsum(lengths) - lengths, lengths)
        sorted_scores = sorted_scores.copy()
        sorted_scores[row[start][group], columns] = _blom((first + last) / 2 + 1, n)[group]
    scores = np.empty(num_rows * n)
    scores[(order + np.arange(num_rows)[:, None] * n).ravel()] = sorted_scores.ravel()
    return scores.reshape(num_rows, n)


def _rhat_of_z(z: np.ndarray, num_draws: int) -> np.ndarray:
    r"""Gelman–Rubin :math:`\hat R` of every row of ``z (k, chains * num_draws)``."""
    z = z.reshape(z.shape[0], -1, num_draws)
    between = num_draws * np.var(np.mean(z, axis=2), axis=1, ddof=1)
    within = np.mean(np.var(z, axis=2, ddof=1), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt((between / within + num_draws - 1) / num_draws)


def rank_rhat(values: ArrayLike) -> np.ndarray:
    r"""Rank-normalised split :math:`\hat R` of every element, as ``arviz.rhat`` (its default
    ``method="rank"``) computes it, vectorised over elements.

    Each chain is split in halves (:math:`2m` chains of :math:`n` draws); the draws of an
    element are replaced by the normal scores of their ranks
    :math:`z = \Phi^{-1}((r - 3/8) / (2mn + 1/4))` (bulk) and of the ranks of
    :math:`|x - \operatorname{median}(x)|` (tail); for each,
    :math:`\hat R = \sqrt{(B / W + n - 1) / n}` with :math:`B = n\,\mathrm{Var}(\bar z_j)`
    and :math:`W` the mean within-chain variance, and the larger of the two is returned
    (Vehtari et al. 2021, https://arxiv.org/abs/1903.08008). Agrees with ``arviz.rhat`` to
    floating-point rounding; used by the end-of-run check, where ArviZ's xarray machinery
    would cost more than the computation.

    Parameters
    ----------
    values
        Draws of shape ``(chain, draw, ...)``, at least 2 chains and 4 draws.

    Returns
    -------
    numpy.ndarray
        :math:`\hat R` of shape ``values.shape[2:]`` (NaN for a constant element or one
        with a NaN draw).
    """
    values = np.asarray(values)
    num_chains, num_draws = values.shape[:2]
    flat = values.reshape(num_chains, num_draws, -1)
    half = num_draws // 2
    split = np.concatenate([flat[:, :half], flat[:, num_draws - half:]], axis=0)
    rows = np.ascontiguousarray(np.moveaxis(split, 2, 0)).reshape(flat.shape[2], -1)
    order = np.argsort(rows, axis=1)
    ordered = np.take_along_axis(rows, order, axis=1)
    n = rows.shape[1]  # even (2 * chains * half): the median is the mean of the middle two
    table = _blom_table(n)
    bulk = _rhat_of_z(_scores(ordered, order, table), half)
    median = np.mean(ordered[:, n // 2 - 1:n // 2 + 1], axis=1, keepdims=True)  # np.median's
    # |x - median| in the order of x falls then rises: a stable sort of two runs is cheap
    folded = np.abs(ordered - median)
    tail_order = np.argsort(folded, axis=1, kind="stable")
    tail = _rhat_of_z(_scores(np.take_along_axis(folded, tail_order, axis=1),
                              np.take_along_axis(order, tail_order, axis=1), table), half)
    rhat = np.where(tail > bulk, tail, bulk)
    rhat[np.isnan(ordered[:, -1])] = np.nan  # NaN sorts last; ArviZ gives NaN for it
    return rhat.reshape(values.shape[2:])


def _rhat_problem(variables: list[tuple[str, np.ndarray]]) -> str | None:
    """Message for the worst element with R-hat above the limit, or None (on the first
    :func:`rhat_chains` chains)."""
    worst_name, worst_value, worst_index, worst_draws = None, MAX_RHAT, 0, None
    num_elements = sum(int(np.prod(values.shape[2:])) for _, values in variables)
    num_chains = rhat_chains(variables[0][1].shape[1] if variables else 0, num_elements)
    for name, values in variables:
        values = values[:num_chains]
        flat = np.ravel(rank_rhat(values))
        if flat.size and np.nanmax(flat, initial=-np.inf) > worst_value:
            worst_name, worst_index = name, int(np.nanargmax(flat))
            worst_value, worst_draws = float(flat[worst_index]), values
    if worst_name is None:
        return None
    element = np.asarray(worst_draws[:, :, worst_index], dtype=float)
    means = element.mean(axis=1)
    outlier = int(np.argmax(np.abs(means - np.median(means))))
    return (
        f"R-hat is {worst_value:.3g} (> {MAX_RHAT}) for {worst_name!r}: the chains disagree "
        f"(chain {outlier} most, mean {means[outlier]:.3g} against the median "
        f"{np.median(means):.3g}); the target may be multimodal, each chain keeping the "
        "mass of the mode it started in: sample it with "
        "ebm_ppl.kernels.parallel_tempering(kernel, max_temperature=...), or run a longer "
        "warm-up and more draws from other starts"
    )


def run_problems(posterior: Mapping[str, Any], sample_stats: Mapping[str, Any]) -> list[str]:
    """One message per problem found in a finished run (empty for a healthy run).

    ``posterior`` and ``sample_stats`` map names to ``(chain, draw, ...)`` arrays: the
    groups of an InferenceData (:class:`xarray.Dataset`) or plain dicts of arrays.
    """
    variables = _numeric(posterior)
    first = np.asarray(posterior[next(iter(posterior))]) if len(posterior) else None
    if first is None:
        return []
    num_chains, num_draws = first.shape[:2]
    blown_mask = np.zeros(num_chains, bool)
    for _, values in variables:
        blown_mask |= _blown_up(values)
    blown = np.flatnonzero(blown_mask).tolist()
    problems = []
    if blown:
        problems.append(
            f"chain(s) {blown} blew up: draws are not finite or exceed |x| > {HUGE:g}; "
            "use a smaller step size (ULA is unstable above 2/λ_max), start closer to the "
            "mode, or check that the energy is bounded below"
        )
    if num_draws >= MIN_DRAWS_STUCK:
        unmoved = np.ones(num_chains, bool)
        for _, values in variables:
            unmoved &= _stuck(values)
        stuck = [c for c in np.flatnonzero(unmoved).tolist() if c not in blown]
        if stuck:
            problems.append(
                f"chain(s) {stuck} never moved over their {num_draws} draws (every "
                "proposal rejected or divergent); use a smaller step size or proposal "
                "scale, adapt it during warm-up, or start inside the bulk of the target"
            )
    if "diverging" in sample_stats:
        diverging = np.asarray(sample_stats["diverging"], bool)
        fraction = np.count_nonzero(diverging) / diverging.size  # = diverging.mean()
        if fraction > MAX_DIVERGENT_FRACTION:
            counts = diverging.sum(axis=1)
            which = {c: int(n) for c, n in enumerate(counts) if n}
            problems.append(
                f"{100 * fraction:.3g} % of the transitions diverged (> "
                f"{100 * MAX_DIVERGENT_FRACTION:g} %; per chain {which}); the estimates may "
                "be biased: reduce the step size (or raise target_acceptance_rate), "
                "reparameterise, or check the energy for NaN/inf regions"
            )
    if num_chains >= 2 and num_draws >= MIN_DRAWS_RHAT and not blown:
        message = _rhat_problem(variables)
        if message is not None:
            problems.append(message)
    if "swap_acceptance" in sample_stats and "round_trips" in sample_stats:
        problems.extend(_tempering_problems(sample_stats))
    return problems


def _tempering_problems(sample_stats: Mapping[str, Any]) -> list[str]:
    """Messages for a ladder gap and for chains without a round trip (parallel
    tempering's ``swap_acceptance``: ``(chain, draw, K - 1)``, NaN where a pair was not
    proposed; ``round_trips``: ``(chain, draw)``, cumulative)."""
    swaps = np.asarray(sample_stats["swap_acceptance"], dtype=float)
    trips = np.asarray(sample_stats["round_trips"])
    num_draws = trips.shape[1]
    num_temperatures = swaps.shape[-1] + 1
    problems = []
    per_pair = swaps.reshape(-1, num_temperatures - 1)
    proposals = np.isfinite(per_pair).sum(axis=0)
    with np.errstate(invalid="ignore"):
        rates = np.nansum(per_pair, axis=0) / proposals
    gaps = [i for i in range(num_temperatures - 1)
            if proposals[i] >= MIN_SWAP_PROPOSALS and rates[i] < MIN_SWAP_ACCEPTANCE]
    if gaps:
        worst = min(gaps, key=lambda i: rates[i])
        problems.append(
            f"parallel tempering: swaps between temperatures {worst} and {worst + 1} of "
            f"the ladder (0 = coldest) were accepted in {100 * rates[worst]:.2g} % of "
            f"{int(proposals[worst])} proposals (pairs under {100 * MIN_SWAP_ACCEPTANCE:g} "
            f"%: {gaps}), a gap the replicas cannot cross, so the cold chain may keep the "
            "mass of the mode it started in: use more temperatures (num_temperatures=...) "
            "or a longer warm-up, which adapts the ladder towards equal swap rates"
        )
    if num_draws >= MIN_DRAWS_PER_TEMPERATURE * num_temperatures:
        gained = trips[:, -1].astype(np.int64) - trips[:, 0].astype(np.int64)
        none = np.flatnonzero(gained == 0).tolist()
        if none:
            problems.append(
                f"parallel tempering: in chain(s) {none} no replica made a round trip "
                f"coldest → hottest → coldest over the {num_draws} kept draws, so what the "
                "hot replicas explore never reaches the cold chain, which may keep the "
                "mass of the mode it started in: use more temperatures "
                "(num_temperatures=...) or a longer warm-up, check sample_stats"
                "['swap_acceptance'] for the pair that blocks, and run more draws"
            )
    return problems


def warn_run_problems(posterior: Mapping[str, Any], sample_stats: Mapping[str, Any],
                      stacklevel: int = 3) -> None:
    """Issue one :class:`~ebm_ppl.SamplingWarning` per problem of :func:`run_problems`."""
    for message in run_problems(posterior, sample_stats):
        warnings.warn(message, SamplingWarning, stacklevel=stacklevel)


def warn_short_warmup(warmup: Warmup | None, num_warmup: int, stacklevel: int = 3) -> None:
    """Warn when a warm-up gets fewer steps than its schedule needs (window adaptation:
    ``MIN_WINDOW_WARMUP``; ``warmup.min_warmup``)."""
    if warmup is not None and 0 < num_warmup < warmup.min_warmup:
        warnings.warn(
            f"num_warmup={num_warmup} is too short for window adaptation of the step size "
            f"and mass matrix (Stan's windows need {MIN_WINDOW_WARMUP}: 75 + 25 + 50 "
            "steps; shorter warm-ups squeeze them, and under 20 steps the mass matrix is "
            f"not adapted); use num_warmup >= {MIN_WINDOW_WARMUP}",
            SamplingWarning,
            stacklevel=stacklevel,
        )
