"""``drift_check``'s z-scores are standard normal on stationary chains.

The drift test compares the first and last segment means with batch-means standard
errors (Flegal & Jones 2010). On stationary i.i.d. chains its z-scores must have
variance about 1: with 14 batches per segment the ratio is t-like (about 26 degrees of
freedom, variance below 1.1), so the variance over 200 chains lies within chi-square
bounds of 1 (lower) and 1.1 (upper) at level 1e-3. A standard error that is too small
would flag stationary chains as drifting.
"""

from __future__ import annotations

import arviz as az
import numpy as np
from scipy import stats

from ebm_ppl import diagnostics

ALPHA = 1e-3


def test_drift_z_scores_have_unit_variance_on_stationary_chains():
    chains, draws = 200, 1000
    x = np.random.default_rng(70).normal(size=(chains, draws, 1))
    res = diagnostics.drift_check(az.from_dict(posterior={"x": x}), warn=False)
    z = res.table.loc[res.table.quantity == "norm", "z"].to_numpy()
    assert z.shape == (chains,)
    lo = stats.chi2.ppf(ALPHA / 2, chains - 1) / (chains - 1)
    hi = 1.1 * stats.chi2.ppf(1 - ALPHA / 2, chains - 1) / (chains - 1)
    assert lo < np.var(z, ddof=1) < hi, np.var(z, ddof=1)
    assert not res.drifting
