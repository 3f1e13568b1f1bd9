"""A NumPyro model's posterior from ``ebm_ppl.sample`` carries the groups of
``az.from_numpyro`` (log_likelihood, observed/constant data, posterior predictive) with
the same names, dims and coords; Stein diagnostics unconstrain model draws themselves."""

from __future__ import annotations

import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from scipy import stats

import ebm_ppl
from ebm_ppl.diagnostics import ksd, ksd_test, summary
from ebm_ppl.errors import SamplingWarning
from ebm_ppl.model.groups import add_model_groups, add_posterior_predictive, model_parts
from ebm_ppl.numpyro import EnergyDistribution

#: Bonferroni z threshold for alpha = 1e-3 over the checks of one test.
Z_MAX = stats.norm.ppf(1 - 1e-3 / (2 * 4))

N_OBS = 12
RNG = np.random.default_rng(0)
X = RNG.normal(size=N_OBS)
Y = 0.7 * X + 0.5 * RNG.normal(size=N_OBS)


def regression(x, y=None):
    a = numpyro.sample("a", dist.Normal(0.0, 1.0))
    s = numpyro.sample("s", dist.HalfNormal(1.0))
    with numpyro.plate("obs", x.shape[0]):
        mu = numpyro.deterministic("mu", a * x)
        numpyro.sample("y", dist.Normal(mu, s), obs=y)


def fake_posterior(num_chains: int, num_draws: int, seed: int = 0) -> az.InferenceData:
    """Constrained draws shaped like ``ebm_ppl.sample``'s posterior (no MCMC needed)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0.7, 0.1, (num_chains, num_draws)).astype(np.float32)
    s = rng.lognormal(np.log(0.5), 0.1, (num_chains, num_draws)).astype(np.float32)
    return az.from_dict(posterior={"a": a, "s": s, "mu": a[..., None] * X.astype(np.float32)})


@pytest.fixture(scope="module")
def pot():
    return ebm_ppl.Potential.from_model(regression, X, Y)


class _DrawsAsMCMC:
    """The part of ``numpyro.infer.MCMC`` that ``az.from_numpyro`` reads, over given
    draws: the reference converter runs on exactly our draws (no second sampler)."""

    def __init__(self, model, posterior, *args, **kwargs):
        self._draws = {k: np.asarray(v.values) for k, v in posterior.data_vars.items()}
        self.num_chains, self.num_samples = posterior.sizes["chain"], posterior.sizes["draw"]
        self.thinning = 1
        self.sampler = type("Sampler", (), {"model": staticmethod(model)})()
        self._args, self._kwargs = args, kwargs

    def get_samples(self, group_by_chain=False):
        if group_by_chain:
            return self._draws
        return {k: v.reshape(-1, *v.shape[2:]) for k, v in self._draws.items()}

    def get_extra_fields(self, group_by_chain=False):
        return {}


def _layout(dataset):
    return {
        name: (var.dims, var.shape, {d: list(dataset[d].values) for d in var.dims})
        for name, var in dataset.data_vars.items()
    }


def _assert_like_from_numpyro(ours, ref, groups):
    for group in groups:
        assert group in ours.groups() and group in ref.groups(), group
        assert _layout(getattr(ours, group)) == _layout(getattr(ref, group)), group


def test_same_groups_names_dims_values_as_from_numpyro(pot):
    """On the same draws, every group of ``az.from_numpyro`` is reproduced: names, dims
    (the plate ``obs``), coords, shapes, and the values of the deterministic groups."""
    posterior = fake_posterior(2, 20)
    ours = add_model_groups(posterior, pot, constant_data={"x": X})
    ref = az.from_numpyro(_DrawsAsMCMC(regression, posterior.posterior, X, Y),
                          constant_data={"x": X})
    _assert_like_from_numpyro(
        ours, ref, ("posterior", "log_likelihood", "observed_data", "constant_data")
    )
    assert ours.posterior["mu"].dims == ("chain", "draw", "obs")
    np.testing.assert_allclose(ours.log_likelihood["y"].values, ref.log_likelihood["y"].values,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ours.observed_data["y"].values, Y)


@pytest.mark.slow
def test_sample_then_groups_like_numpyro_mcmc(pot):
    """End to end: ``ebm_ppl.sample`` + groups against NumPyro's NUTS +
    ``az.from_numpyro`` (with Predictive), then ``az.loo``, ``az.waic``, ``az.plot_ppc``."""
    idata = ebm_ppl.sample(pot, ebm_ppl.kernels.mala(0.1), num_samples=100, num_warmup=100,
                           num_chains=2, seed=0, progress=False)
    assert {"log_likelihood", "observed_data"} <= set(idata.groups())  # sample adds them
    ours = add_model_groups(idata, pot, posterior_predictive=True, seed=1,
                            constant_data={"x": X})
    mcmc = numpyro.infer.MCMC(numpyro.infer.NUTS(regression), num_warmup=20, num_samples=100,
                              num_chains=2, chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(0), X, Y)
    predictive = numpyro.infer.Predictive(regression, mcmc.get_samples(), return_sites=["y"])
    ref = az.from_numpyro(mcmc, posterior_predictive=predictive(jax.random.key(1), X),
                          constant_data={"x": X})
    _assert_like_from_numpyro(ours, ref, ("posterior", "log_likelihood", "observed_data",
                                          "constant_data", "posterior_predictive"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        loo, waic = az.loo(ours), az.waic(ours)
    assert np.isfinite(loo.elpd_loo) and np.isfinite(waic.elpd_waic)
    az.plot_ppc(ours, num_pp_samples=20)


def test_loo_waic_and_ppc_work(pot):
    idata = add_model_groups(fake_posterior(2, 50), pot, posterior_predictive=True, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        loo = az.loo(idata)
        waic = az.waic(idata)
    assert np.isfinite(loo.elpd_loo) and np.isfinite(waic.elpd_waic)
    assert loo.n_data_points == N_OBS
    az.plot_ppc(idata, num_pp_samples=20)


def test_log_likelihood_is_pointwise_normal_logpdf(pot):
    """Exact: the group equals scipy's log density of each observation at each draw."""
    idata = add_model_groups(fake_posterior(2, 30), pot)
    post = idata.posterior
    expected = stats.norm.logpdf(
        Y, post["a"].values[..., None] * X, post["s"].values[..., None]
    )
    np.testing.assert_allclose(idata.log_likelihood["y"].values, expected, rtol=1e-4,
                               atol=1e-4)
    assert "posterior_predictive" not in idata.groups()


def test_posterior_predictive_draws_the_likelihood(pot):
    r"""Replicates given each draw are :math:`N(a x, s^2)`: standardised residuals have
    mean 0 and variance 1 (z-scores over i.i.d. replicates); the same check rejects the
    replicates when the scale is misread (proves it can fail)."""
    idata = add_posterior_predictive(fake_posterior(4, 250), pot, seed=3)
    post = idata.posterior
    y_rep = idata.posterior_predictive["y"].values
    assert y_rep.shape == (4, 250, N_OBS)
    resid = (y_rep - post["a"].values[..., None] * X) / post["s"].values[..., None]
    n = resid.size

    def z_scores(r):
        z_mean = r.mean() / np.sqrt(1.0 / n)
        var = np.mean(r**2)
        z_var = (var - 1.0) / np.sqrt(np.var(r**2) / n)
        return abs(z_mean), abs(z_var)

    assert max(z_scores(resid)) < Z_MAX
    assert z_scores(resid * 1.1)[1] > Z_MAX


def test_energy_observed_site_left_out_of_predictive_with_warning():
    energy = lambda v: 0.5 * jnp.sum(v**2)  # noqa: E731

    def model(y, w):
        a = numpyro.sample("a", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(a, 1.0), obs=y)
        numpyro.sample("w", EnergyDistribution(energy, event_shape=(2,)), obs=w)

    pot = ebm_ppl.Potential.from_model(model, jnp.asarray(0.3), jnp.ones(2))
    idata = az.from_dict(posterior={"a": np.zeros((1, 5), np.float32)})
    with pytest.warns(SamplingWarning, match=r"\['w'\] left out"):
        out = add_posterior_predictive(idata, pot, seed=0)
    assert list(out.posterior_predictive.data_vars) == ["y"]


def test_errors(pot):
    energy_pot = ebm_ppl.Potential.from_energy(lambda x: jnp.sum(x**2), example=jnp.zeros(2))
    with pytest.raises(ValueError, match="Potential.from_model"):
        model_parts(energy_pot)
    with pytest.raises(ValueError, match="latent sites"):
        add_model_groups(az.from_dict(posterior={"b": np.zeros((1, 3))}), pot)

    def no_obs():
        numpyro.sample("a", dist.Normal(0.0, 1.0))

    idata = az.from_dict(posterior={"a": np.zeros((1, 3), np.float32)})
    with pytest.raises(ValueError, match="observed site"):
        add_posterior_predictive(idata, ebm_ppl.Potential.from_model(no_obs))


# ------------------------------------------------------------------ diagnostics
def conjugate(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("tau", dist.LogNormal(0.0, 1.0))  # untouched by the data: prior
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


Y_CONJ = np.array([0.3, 1.2, 0.8, -0.1])


def exact_posterior(num_draws: int, shift: float = 0.0, seed: int = 0) -> az.InferenceData:
    """I.i.d. exact posterior draws, constrained (``tau > 0``), as one chain."""
    rng = np.random.default_rng(seed)
    n = Y_CONJ.size
    mu = rng.normal(Y_CONJ.sum() / (n + 1) + shift, np.sqrt(1.0 / (n + 1)), (1, num_draws))
    tau = np.exp(rng.normal(0.0, 1.0, (1, num_draws)))
    return az.from_dict(posterior={"mu": mu.astype(np.float32), "tau": tau.astype(np.float32)})


def test_ksd_unconstrains_model_draws():
    """``ksd`` on the InferenceData equals ``ksd`` on the draws unconstrained by hand
    (``log tau``), in the potential's leaf order (mu, tau)."""
    pot = ebm_ppl.Potential.from_model(conjugate, Y_CONJ)
    idata = exact_posterior(300)
    by_hand = np.stack([idata.posterior["mu"].values[0],
                        np.log(idata.posterior["tau"].values[0])], axis=-1)
    assert ksd(idata, pot).ksd_squared == pytest.approx(ksd(by_hand, pot).ksd_squared,
                                                        rel=1e-4, abs=1e-6)


def test_ksd_test_and_summary_on_model_posterior():
    """Exact draws pass the KSD test (level 1 %), draws of a posterior shifted by 0.5
    fail it (the test can fail); ``summary`` reports the KSD row instead of n/a."""
    pot = ebm_ppl.Potential.from_model(conjugate, Y_CONJ)
    options = dict(seed=0, bootstrap="rademacher", num_bootstrap=500, alpha=0.01)
    good = ksd_test(exact_posterior(300, seed=1), pot, **options)
    bad = ksd_test(exact_posterior(300, shift=0.5, seed=1), pot, **options)
    assert not good.reject and bad.reject
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = summary(exact_posterior(200, seed=2), pot, num_bootstrap=100)
    assert result.ksd_test is not None
    row = result.verdict[result.verdict["check"].str.startswith("KSD")].iloc[0]
    assert row["value"] != "n/a" and row["status"] != "n/a"


@pytest.mark.slow  # matplotlib figures: ~5 s of CPU
def test_report_shows_ksd_for_model_posterior(tmp_path):
    """``report`` on a model posterior computes the KSD row (it was n/a)."""
    pot = ebm_ppl.Potential.from_model(conjugate, Y_CONJ)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ebm_ppl.report(exact_posterior(100, seed=3), tmp_path, pot=pot)
    markdown = (tmp_path / "report.md").read_text()
    ksd_rows = [line for line in markdown.splitlines() if line.startswith("| KSD")]
    assert ksd_rows and "n/a" not in ksd_rows[0]
