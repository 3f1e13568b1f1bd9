"""``ebm_ppl.numpyro.ULA`` at a temperature other than 1 (issue 26).

Law tested (seed 000 / ``conftest.gaussian_ula_covariance``): ULA
``x <- x - h U'(x) + sqrt(2 h T) xi`` on ``U(x) = lam (x - m)^2 / 2`` (NumPyro's potential
of ``x ~ Normal(m, lam^-1/2)``) has the stationary law ``N(m, T 2 / (lam (2 - h lam)))``;
with ``h lam = 1/2`` and ``T = 2`` the variance is ``2/3`` (exact tempered target:
``T / lam = 1/2``). 2000 vectorized chains start at exact draws of that law and make 10
transitions through NumPyro's ``MCMC``; their final states are i.i.d. draws of it:
mean and variance z-scores (``mcse = sd / sqrt(num_chains)``, Bonferroni, alpha =
1e-3). The test has power: it rejects the exact tempered variance ``1/2`` and the
untempered ULA variance ``1/3`` at this sample size.
"""

from __future__ import annotations

import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
from conftest import assert_z, critical_z, gaussian_ula_covariance, iid_mean_checks, z_scores
from numpyro.infer import MCMC

from ebm_ppl.numpyro import ULA

M, LAM, H, T = 1.0, 4.0, 0.125, 2.0


def normal_model():
    numpyro.sample("x", dist.Normal(M, 1.0 / np.sqrt(LAM)))


def test_ula_samples_its_tempered_biased_law():
    num_chains = 2000
    var = float(gaussian_ula_covariance(np.array([[LAM]]), H, T)[0, 0])  # 2/3
    key_start, key_run = jax.random.split(jax.random.key(41))
    start = M + np.sqrt(var) * jax.random.normal(key_start, (num_chains,))
    mcmc = MCMC(ULA(normal_model, step_size=H, temperature=T), num_warmup=0, num_samples=10,
                num_chains=num_chains, chain_method="vectorized", progress_bar=False)
    mcmc.run(key_run, init_params={"x": start})
    final = np.asarray(mcmc.last_state.z["x"], np.float64)[:, None]
    est, tru, se, lab = iid_mean_checks(final, np.array([M]), np.array([[var]]))
    assert_z(est, tru, se, lab, k=4)
    # power: the exact tempered variance T / lam and ULA's law at T = 1 are rejected
    for wrong in (T / LAM, var / T):
        assert z_scores(est[1:], [wrong], se[1:])[0] > critical_z(4), wrong
