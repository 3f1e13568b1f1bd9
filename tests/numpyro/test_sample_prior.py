"""``ebm_ppl.sample_prior``: EnergyDistribution sites by MCMC, the rest ancestrally, into
``prior`` / ``prior_predictive`` groups that ArviZ's prior predictive checks read."""

from __future__ import annotations

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from scipy import stats

from ebm_ppl.errors import IntractableNormaliserError
from ebm_ppl.kernels import mala
from ebm_ppl.numpyro import EnergyDistribution
from ebm_ppl.numpyro.prior import sample_prior

#: Prior energy E(z) = (z - M)^2 / (2 V0): a N(M, V0) prior known only by its energy.
M, V0, S = 1.0, 0.5, 1.0
N_OBS = 3


def gaussian_energy(z):
    return jnp.sum((z - M) ** 2) / (2 * V0)


def learned_prior_model(y=None, w=None):
    z = numpyro.sample("z", EnergyDistribution(gaussian_energy, event_shape=(1,)))
    with numpyro.plate("obs", N_OBS):
        numpyro.sample("y", dist.Normal(z[0], S), obs=y)
    # an observed energy site with fixed params: its prior predictive is drawn by MCMC
    numpyro.sample("w", EnergyDistribution(gaussian_energy, event_shape=(1,)), obs=w)


def z_score(values: np.ndarray, truth: float) -> float:
    """|mean - truth| / MCSE with ArviZ's ESS of ``(chain, draw)`` values."""
    ess = float(az.ess(values))
    return abs(values.mean() - truth) / (values.std() / np.sqrt(ess))


def var_z_score(values: np.ndarray, mean: float, truth: float) -> float:
    sq = (values - mean) ** 2
    ess = float(az.ess(sq))
    return abs(sq.mean() - truth) / (sq.std() / np.sqrt(ess))


@pytest.fixture(scope="module")
def learned():
    return sample_prior(learned_prior_model, np.zeros(N_OBS), np.ones(1), kernel=mala(0.5),
                        num_samples=1000, num_warmup=300, num_chains=4, seed=0)


@pytest.mark.slow  # MCMC on the energy prior: ~8 s of CPU
def test_groups_and_dims(learned):
    assert {"prior", "prior_predictive", "observed_data", "sample_stats_prior"} <= set(
        learned.groups()
    )
    assert list(learned.prior.data_vars) == ["z"]
    assert sorted(learned.prior_predictive.data_vars) == ["w", "y"]
    assert learned.prior_predictive["y"].dims == ("chain", "draw", "obs")
    assert learned.prior["z"].shape == (4, 1000, 1)
    np.testing.assert_array_equal(learned.observed_data["y"].values, np.zeros(N_OBS))


@pytest.mark.slow  # MCMC on the energy prior: ~8 s of CPU
def test_prior_predictive_closed_form(learned):
    r"""z ~ N(M, V0) by MCMC on its energy, y | z ~ N(z, S²) ancestrally:
    y ~ N(M, V0 + S²); w ~ N(M, V0) by MCMC. Means and variances by ESS-based z-scores
    (Bonferroni over 5 checks, alpha = 1e-3); the prior variance V0 alone is rejected
    for y (proves the check can fail: the likelihood noise is really added)."""
    z_max = stats.norm.ppf(1 - 1e-3 / (2 * 5))
    z = learned.prior["z"].values[..., 0]
    y0 = learned.prior_predictive["y"].values[..., 0]
    w = learned.prior_predictive["w"].values[..., 0]
    assert z_score(z, M) < z_max
    assert var_z_score(z, M, V0) < z_max
    assert z_score(y0, M) < z_max
    assert var_z_score(y0, M, V0 + S**2) < z_max
    assert z_score(w, M) < z_max
    assert var_z_score(y0, M, V0) > z_max


@pytest.mark.slow  # MCMC on the energy prior: ~8 s of CPU
def test_plot_ppc_on_prior(learned):
    az.plot_ppc(learned, group="prior", var_names=["y"], num_pp_samples=20)


def plain_model(y=None):
    z = numpyro.sample("z", dist.Normal(0.0, 1.0))
    with numpyro.plate("obs", N_OBS):
        numpyro.sample("y", dist.Normal(z, 1.0), obs=y)


def test_ordinary_model_is_ancestral_like_from_numpyro():
    """Without energy sites: i.i.d. draws, the layout of ``az.from_numpyro(prior=...)``,
    y ~ N(0, 2) (z-scores on i.i.d. draws; the variance 1 of z alone is rejected)."""
    idata = sample_prior(plain_model, np.zeros(N_OBS), num_samples=2000, seed=1)
    assert "sample_stats_prior" not in idata.groups()
    prior = numpyro.infer.Predictive(plain_model, num_samples=2000)(jax.random.key(0))
    ref = az.from_numpyro(prior=prior)
    assert idata.prior["z"].dims == ref.prior["z"].dims == ("chain", "draw")
    assert idata.prior["z"].shape == ref.prior["z"].shape == (1, 2000)
    y0 = idata.prior_predictive["y"].values[..., 0].ravel()
    n = y0.size
    z_max = stats.norm.ppf(1 - 1e-3 / (2 * 3))
    assert abs(y0.mean()) / np.sqrt(2.0 / n) < z_max
    sq = y0**2
    assert abs(sq.mean() - 2.0) / (sq.std() / np.sqrt(n)) < z_max
    assert abs(sq.mean() - 1.0) / (sq.std() / np.sqrt(n)) > z_max


def test_energy_params_depending_on_latent_sites_raise():
    def model():
        scale = numpyro.sample("scale", dist.HalfNormal(1.0))
        numpyro.sample("z", EnergyDistribution(lambda p, x: jnp.sum(x**2) / p, params=scale,
                                               event_shape=(1,)))

    with pytest.raises(IntractableNormaliserError, match="depend on latent"):
        sample_prior(model, num_samples=10)


def test_argument_errors():
    with pytest.raises(ValueError, match="num_samples"):
        sample_prior(plain_model, num_samples=0)
    with pytest.raises(TypeError, match="model must be callable"):
        sample_prior("model")


@pytest.mark.slow  # NUTS compile
def test_default_kernel_is_nuts():
    idata = sample_prior(learned_prior_model, np.zeros(N_OBS), np.ones(1), num_samples=50,
                         num_warmup=50, num_chains=2, seed=2)
    assert idata.prior["z"].shape == (2, 50, 1)
    assert "n_steps" in idata.sample_stats_prior or "tree_depth" in idata.sample_stats_prior
