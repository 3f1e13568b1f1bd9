"""The exchange algorithm (``kernels.exchange``, ``numpyro.Exchange``) against exact
posteriors of doubly-intractable models.

Laws tested
-----------
* Conjugate scale family ``E_tau(x) = tau |x|^2 / 2`` on R^d, ``tau ~ Gamma(a, b)``, n
  observations: posterior ``Gamma(a + n d / 2, b + sum |x_i|^2 / 2)``. Exact auxiliary
  draws make the algorithm exact; inner MCMC is biased towards the prior (inflated
  posterior spread) with a bias that shrinks as ``inner_steps`` grows.
* Two-parameter family ``E(x) = t1 x + t2 x^2`` (a Gaussian with ``Z = sqrt(pi / t2)
  exp(t1^2 / (4 t2))``): posterior by grid quadrature.
* NumPyro route: ``s ~ HalfNormal(3)``, ``x ~ EnergyDistribution(x^2 / (2 s^2))``,
  posterior of ``s`` by quadrature of the normalised Gaussian likelihood.

Tolerances: z-scores with ``mcse = sd / sqrt(ESS)`` (conftest.assert_z, alpha = 1e-3).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from conftest import assert_z, count_compiles, critical_z, z_scores
from numpyro.infer import MCMC

import ebm_ppl
from ebm_ppl import kernels
from ebm_ppl.numpyro import EnergyDistribution, Exchange

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------- conjugate Gamma case
A, B, D, N, TAU = 2.0, 1.0, 2, 50, 2.0
X = jax.random.normal(jax.random.key(1), (N, D)) / np.sqrt(TAU)
POST_A, POST_B = A + N * D / 2, B + float(jnp.sum(X**2)) / 2
POST_MEAN, POST_VAR = POST_A / POST_B, POST_A / POST_B**2


def precision_energy(tau, x):
    """``E_tau(x) = tau |x|^2 / 2``."""
    return 0.5 * tau * jnp.sum(x**2)


def gamma_log_prior(tau):
    return jnp.where(tau > 0, dist.Gamma(A, B).log_prob(jnp.abs(tau)), -jnp.inf)


def exact_gaussian(rng_key, tau):
    """One exact draw of ``p_tau = N(0, I / tau)``."""
    return jax.random.normal(rng_key, (D,)) / jnp.sqrt(tau)


GAMMA_POT = ebm_ppl.Potential.from_energy_family(precision_energy, X, gamma_log_prior)


def moment_checks(draws, mean, var, name):
    """Estimates, truths, MCSEs and labels of the mean and variance of MCMC draws
    ``(chain, draw)``; the variance as the mean of ``(x - mean)^2``."""
    est, tru, se, lab = [], [], [], []
    for label, values, truth in (("mean", draws, mean), ("var", (draws - mean) ** 2, var)):
        values = np.asarray(values, np.float64)
        est.append(values.mean())
        tru.append(truth)
        se.append(values.std(ddof=1) / np.sqrt(float(az.ess(values))))
        lab.append(f"{label}[{name}]")
    return est, tru, se, lab


def run_gamma(kernel, seed, num_samples=600, num_chains=4):
    return ebm_ppl.sample(GAMMA_POT, kernel, jnp.asarray(1.5), num_samples=num_samples,
                          num_warmup=200, num_chains=num_chains, seed=seed, progress=False)


@pytest.mark.slow
def test_exact_auxiliary_sampler_gives_the_conjugate_posterior():
    """With exact auxiliary draws the exchange algorithm is exact: mean and variance of
    tau match Gamma(a + nd/2, b + S/2)."""
    kernel = kernels.exchange(precision_energy, X, 0.3, exact_sampler=exact_gaussian)
    idata = run_gamma(kernel, seed=11)
    draws = idata.posterior["x"].values
    assert_z(*moment_checks(draws, POST_MEAN, POST_VAR, "tau"))
    assert 0.1 < float(idata.sample_stats["acceptance_rate"].mean()) < 0.9


@pytest.mark.slow
def test_inner_mcmc_gives_the_conjugate_posterior():
    """Inner MALA chains (curvature-matched step, 20 steps from the data) reproduce the
    posterior within Monte-Carlo error."""
    kernel = kernels.exchange(precision_energy, X, 0.3, inner_steps=20)
    idata = run_gamma(kernel, seed=12)
    assert_z(*moment_checks(idata.posterior["x"].values, POST_MEAN, POST_VAR, "tau"))


@pytest.mark.slow
def test_inner_mcmc_bias_shrinks_with_inner_steps():
    """One inner step leaves the auxiliary data close to the observed data, so the
    posterior is pulled towards the prior (variance inflated): the test rejects K=1 (it
    can fail) and accepts K=16, and the variance error falls monotonically."""
    errors, zs = [], []
    for steps in (1, 4, 16):
        idata = run_gamma(kernels.exchange(precision_energy, X, 0.3, inner_steps=steps),
                          seed=13, num_samples=1000)
        est, tru, se, _ = moment_checks(idata.posterior["x"].values, POST_MEAN, POST_VAR, "tau")
        errors.append(abs(est[1] - tru[1]))
        zs.append(z_scores(est, tru, se))
    assert errors[0] > errors[1] > errors[2]
    assert zs[0][1] > critical_z(2)
    assert np.all(zs[2] <= critical_z(2)), zs[2]


@pytest.mark.slow
def test_second_run_compiles_nothing_and_resume_works():
    """Compile once (a new kernel object, another seed, same shapes), and ``resume``
    continues the chains (same kernel as the test above: its compilation is reused)."""
    kernel = kernels.exchange(precision_energy, X, 0.3, inner_steps=20)
    first = run_gamma(kernel, seed=0, num_samples=20)
    with count_compiles() as compiled:
        run_gamma(kernels.exchange(precision_energy, X, 0.5, inner_steps=20), seed=1,
                  num_samples=30)
    assert compiled == []
    more = ebm_ppl.sample(GAMMA_POT, kernel, num_samples=10, resume=first, progress=False)
    assert more.posterior["x"].shape == (4, 10)


def test_exchange_validates_its_arguments():
    with pytest.raises(TypeError, match="energy_fn must be callable"):
        kernels.exchange(3.0, X)
    with pytest.raises(ValueError, match="inner_steps must be an integer >= 1, got 0"):
        kernels.exchange(precision_energy, X, inner_steps=0)
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        kernels.exchange(precision_energy, X, scale=-1.0)
    with pytest.raises(ValueError, match="leading axis indexes the data points"):
        kernels.exchange(precision_energy, jnp.asarray(1.0))
    with pytest.raises(TypeError, match="inner_kernel must be an ebm_ppl kernel"):
        kernels.exchange(precision_energy, X, inner_kernel="mala")
    with pytest.raises(TypeError, match="proposal must be an ebm_ppl.kernels.Proposal"):
        kernels.exchange(precision_energy, X, proposal=0.3)
    with pytest.raises(TypeError, match="log_prior_fn must be callable"):
        ebm_ppl.Potential.from_energy_family(precision_energy, X, None)


@pytest.mark.slow
def test_inner_steps_check_flags_too_few_steps():
    """``inner_steps_check`` passes K=16 and flags K=1 (its posterior moves with 2K)."""
    good = kernels.inner_steps_check(
        GAMMA_POT, kernels.exchange(precision_energy, X, 0.3, inner_steps=16),
        jnp.asarray(1.5), num_samples=1000, num_warmup=200, num_chains=4, seed=5)
    assert good.passed and 0.5 < good.inner_acceptance_rate <= 1.0
    bad = kernels.inner_steps_check(
        GAMMA_POT, kernels.exchange(precision_energy, X, 0.3, inner_steps=1),
        jnp.asarray(1.5), num_samples=1000, num_warmup=200, num_chains=4, seed=5)
    assert not bad.passed


# ---------------------------------------------------------------- two-parameter family
Y = 1.0 + 0.5 * jax.random.normal(jax.random.key(7), (30,))


def quadratic_energy(theta, x):
    """``E(x) = t1 x + t2 x^2``: ``N(-t1 / (2 t2), 1 / (2 t2))`` for ``t2 > 0``."""
    return theta[0] * x + theta[1] * x**2


def family_log_prior(theta):
    t1, t2 = theta[0], theta[1]
    lp = dist.Normal(0.0, 5.0).log_prob(t1) + dist.Gamma(2.0, 0.5).log_prob(jnp.abs(t2))
    return jnp.where(t2 > 0, lp, -jnp.inf)


def family_quadrature():
    """Posterior means and variances of (t1, t2) on a 600 x 600 grid."""
    t1 = np.linspace(-14.0, 2.0, 600)
    t2 = np.linspace(0.05, 8.0, 600)
    g1, g2 = np.meshgrid(t1, t2, indexing="ij")
    y = np.asarray(Y, np.float64)
    log_z = 0.5 * np.log(np.pi / g2) + g1**2 / (4 * g2)
    logp = (-g1 * y.sum() - g2 * (y**2).sum() - len(y) * log_z
            - g1**2 / 50.0 + np.log(g2) - 0.5 * g2)
    w = np.exp(logp - logp.max())
    w /= w.sum()
    means = np.array([(w * g1).sum(), (w * g2).sum()])
    var = np.array([(w * (g1 - means[0]) ** 2).sum(), (w * (g2 - means[1]) ** 2).sum()])
    return means, var


@pytest.mark.slow
def test_two_parameter_family_matches_quadrature():
    means, var = family_quadrature()
    pot = ebm_ppl.Potential.from_energy_family(quadratic_energy, Y, family_log_prior)
    kernel = kernels.exchange(quadratic_energy, Y, 0.3, inner_steps=20)
    idata = ebm_ppl.sample(pot, kernel, jnp.array([-3.0, 2.0]), num_samples=2000,
                           num_warmup=500, num_chains=4, seed=21, progress=False)
    draws = idata.posterior["x"].values
    checks = [moment_checks(draws[..., i], means[i], var[i], f"t{i + 1}") for i in range(2)]
    assert_z(*(sum((c[j] for c in checks), []) for j in range(4)))


# ---------------------------------------------------------------- NumPyro route
S_DATA = 2.0 * jax.random.normal(jax.random.key(0), (50, 1))


def scale_model(x):
    s = numpyro.sample("s", dist.HalfNormal(3.0))
    energy = EnergyDistribution(lambda p, v: 0.5 * jnp.sum(v**2) / p**2, params=s,
                                event_shape=(1,))
    numpyro.sample("x", energy, obs=x)


def scale_quadrature():
    grid = np.linspace(0.3, 8.0, 8000)
    x = np.asarray(S_DATA, np.float64).ravel()
    logp = (np.log(2.0) - 0.5 * (grid / 3.0) ** 2 - len(x) * np.log(grid)
            - 0.5 * np.sum(x**2) / grid**2)
    w = np.exp(logp - logp.max())
    w /= w.sum()
    mean = (w * grid).sum()
    return mean, (w * (grid - mean) ** 2).sum()


def run_numpyro(num_warmup, num_samples, seed):
    mcmc = MCMC(Exchange(scale_model, inner_steps=20), num_warmup=num_warmup,
                num_samples=num_samples, num_chains=4, chain_method="vectorized",
                progress_bar=False)
    mcmc.run(jax.random.key(seed), S_DATA)
    return az.from_numpyro(mcmc)


@pytest.mark.slow
def test_numpyro_exchange_runs_and_reports_inner_acceptance():
    """A short vectorized run: ArviZ reads lp, acceptance and the inner acceptance."""
    idata = run_numpyro(50, 50, seed=3)
    stats = idata.sample_stats
    assert {"lp", "acceptance_rate", "diverging", "inner_accept_prob"} <= set(stats.data_vars)
    inner = stats["inner_accept_prob"].values
    assert np.all((inner >= 0) & (inner <= 1)) and inner.mean() > 0.5
    assert np.all(idata.posterior["s"].values > 0)


@pytest.mark.slow
def test_numpyro_exchange_matches_the_exact_posterior():
    """The model that NUTS gets wrong (mean near 9): Exchange agrees with quadrature."""
    mean, var = scale_quadrature()
    idata = run_numpyro(500, 2000, seed=4)
    assert_z(*moment_checks(idata.posterior["s"].values, mean, var, "s"))


@pytest.mark.slow
def test_example_08_quick_mode():
    """examples/08_energy_parameters.py runs in quick mode and asserts its claims."""
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "08_energy_parameters.py"),
                          "--quick"], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
