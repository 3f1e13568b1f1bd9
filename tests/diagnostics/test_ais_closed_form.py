"""AIS log Z of a Gaussian whose normaliser is known, in the default run.

The slow tests of ``tests/diagnostics/test_diagnostics.py`` use 100 temperatures and 1000 chains;
here a short path (20 temperatures, 300 chains) keeps each run cheap while the weights
stay spread enough that the log-mean-exp, the temperature increments and the standard
error all matter. Each of ``R`` independent runs is z-scored against its own reported
standard error; their pooled mean against ``stderr / sqrt(R)``; and the spread of the
runs against the reported standard error (chi-square bounds). Family-wise alpha = 1e-3.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from scipy import stats

import ebm_ppl
from ebm_ppl import diagnostics

ALPHA = 1e-3
MU = np.array([1.0, -1.0])
PREC = np.array([[2.0, 0.5], [0.5, 1.0]])
#: log of the normaliser of exp(-(x - mu)' P (x - mu) / 2) in two dimensions.
LOG_Z = float(np.log(2 * np.pi) - 0.5 * np.log(np.linalg.det(PREC)))
NUM_RUNS = 8


def _pot() -> ebm_ppl.Potential:
    mu, prec = jnp.asarray(MU, jnp.float32), jnp.asarray(PREC, jnp.float32)
    return ebm_ppl.Potential.from_energy(lambda x: 0.5 * (x - mu) @ prec @ (x - mu),
                                         example=jnp.zeros(2))


def test_ais_log_z_of_a_gaussian_against_its_error_and_the_spread_of_runs():
    pot = _pot()
    runs = [diagnostics.ais_log_z(pot, num_temps=20, num_chains=300, kernel="mala",
                                  step_size=0.5, seed=40 + r) for r in range(NUM_RUNS)]
    log_z = np.array([r.log_z for r in runs])
    se = np.array([r.stderr for r in runs])
    assert np.all(se > 0) and all(r.num_dropped == 0 for r in runs)
    for r in runs:  # the default sigmoid path starts at the base and ends at the target
        assert r.betas[0] == 0.0 and r.betas[-1] == 1.0 and len(r.betas) == 21
        assert r.ess > 30  # weights not degenerate: the standard error is meaningful
    k = NUM_RUNS + 2
    crit = stats.norm.ppf(1 - ALPHA / (2 * k))
    z = np.abs(log_z - LOG_Z) / se
    assert np.all(z < crit), (log_z, LOG_Z, z)
    pooled = abs(log_z.mean() - LOG_Z) / np.sqrt(np.mean(se**2) / NUM_RUNS)
    assert pooled < crit, (log_z.mean(), LOG_Z, pooled)
    # spread of independent runs vs the reported error: s^2 / se^2 ~ chi2(R-1)
    ratio = (NUM_RUNS - 1) * log_z.var(ddof=1) / np.mean(se**2)
    lo, hi = stats.chi2.ppf([ALPHA / (2 * k), 1 - ALPHA / (2 * k)], NUM_RUNS - 1)
    assert lo < ratio < hi, (ratio, lo, hi, log_z.std(ddof=1), se.mean())
