"""``sample(Potential.from_model(...))`` in the default run: draws come back constrained,
and the potential carries the log-Jacobian of the unconstrained transform.

Model: ``s ~ LogNormal(0.3, 0.5)`` and ``r ~ Exponential(2)``, no data, so the posterior
is the prior. MALA (fixed step size: one compiled chunk) runs on ``(log s, log r)``:

* ``E[s] = exp(0.3 + 0.5^2 / 2)``, ``Var[s] = (exp(0.5^2) - 1) exp(0.6 + 0.5^2)``;
* ``E[r] = 1/2``, ``Var[r] = 1/4``.

Without the Jacobian the chain on ``log s`` targets ``N(0.3 - 0.25, 0.5^2)`` (mean of
``s`` 1.19, not 1.53) and the one on ``log r`` is improper; unconstrained draws are
negative. Checks use ``mcse = sd / sqrt(ESS)`` (ArviZ ESS), Bonferroni over 4 checks.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import numpyro
import numpyro.distributions as dist
from conftest import assert_z

import ebm_ppl
from ebm_ppl import kernels

MU, SIGMA, RATE = 0.3, 0.5, 2.0
S_MEAN = float(np.exp(MU + SIGMA**2 / 2))
S_VAR = float((np.exp(SIGMA**2) - 1.0) * np.exp(2 * MU + SIGMA**2))
R_MEAN, R_VAR = 1.0 / RATE, 1.0 / RATE**2


def positive_model():
    numpyro.sample("s", dist.LogNormal(MU, SIGMA))
    numpyro.sample("r", dist.Exponential(RATE))


def test_model_draws_are_constrained_with_the_jacobian():
    """Sites named as in the model, all draws > 0, means and variances of ``s`` and ``r``
    match the closed forms (4 checks)."""
    pot = ebm_ppl.Potential.from_model(positive_model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = ebm_ppl.sample(pot, kernels.mala(0.5), None, num_samples=1000,
                               num_warmup=100, adapt=False, num_chains=4, seed=21,
                               progress=False, check_target=False)
    post = idata.posterior
    assert set(post.data_vars) == {"s", "r"}
    assert post["s"].dims == ("chain", "draw")
    assert np.all(post["s"].values > 0) and np.all(post["r"].values > 0)
    est, tru, se, labels = [], [], [], []
    for name, mean, var in (("s", S_MEAN, S_VAR), ("r", R_MEAN, R_VAR)):
        draws = post[name].values.astype(np.float64)
        for label, values, truth in (("mean", draws, mean), ("var", (draws - mean) ** 2, var)):
            est.append(values.mean())
            tru.append(truth)
            se.append(values.std(ddof=1) / np.sqrt(float(az.ess(values))))
            labels.append(f"{label}[{name}]")
    assert_z(est, tru, se, labels)
