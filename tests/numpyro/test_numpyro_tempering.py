"""``ebm_ppl.numpyro.ParallelTempering``: parallel tempering run by NumPyro's MCMC.

Laws tested
-----------
* Two-mode prior ``0.3 N(-4, 0.5^2) + 0.7 N(4, 0.5^2)`` (a barrier of (4/0.5)^2/2 = 32
  nats), every chain started in the light mode: PT(MALA) puts weight 0.7 on the heavy
  mode and has mean ``0.3 (-4) + 0.7 (4) = 1.6`` (z-scores with the ArviZ ESS of the
  mode indicator and of ``x``), and NumPyro-style MALA (``BlackJAXKernel("mala")``)
  from the same start fails the same weight check (it never leaves its start mode).
* Warm-up adapts: the per-replica step sizes end distinct and increasing up the
  ladder, the ladder's inner temperatures move off the geometric start (end points
  kept), and ``adapt_state.step_size`` is the cold replica's; ``arviz.from_numpyro``
  gets ``lp``, ``acceptance_rate``, ``step_size`` and the swap statistics.
* An energy prior (``EnergyDistribution`` of a two-mode energy, equal weights) with a
  Normal likelihood: the posterior is a two-component Gaussian mixture in closed form
  (conjugate per component); its mode weight and mean are matched from the light mode.
* ``potential_fn=`` in 2-D with a random-walk base kernel and per-replica scales (no
  warm-up: the ladder is kept), mode weight by z-score.
* A traced ``target_accept_prob`` (0.3, the kernel built under ``jit``) steers every
  replica's acceptance to it, not to the kernel's default 0.574 nor to the mirror image
  ``2 * 0.574 - 0.3``.
* Argument errors, one sentence each.
"""

from __future__ import annotations

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from conftest import assert_z, critical_z, z_scores
from numpyro.infer import MCMC

from ebm_ppl import kernels
from ebm_ppl.numpyro import BlackJAXKernel, EnergyDistribution, ParallelTempering

WEIGHTS = jnp.array([0.3, 0.7])
MEANS = jnp.array([-4.0, 4.0])
SD = 0.5
NUM_CHAINS, NUM_WARMUP, NUM_SAMPLES = 4, 500, 1500
NUM_TEMPERATURES, MAX_TEMPERATURE = 6, 64.0


def mixture_prior():
    components = dist.Normal(MEANS, SD)
    numpyro.sample("x", dist.MixtureSameFamily(dist.Categorical(probs=WEIGHTS), components))


def light_mode_start(value=-4.0, shape=()):
    return jnp.full((NUM_CHAINS, *shape), value)


def mode_weight(indicator):
    """Mean of a (chain, draw) indicator and its MCSE from the ArviZ ESS (NaN: constant)."""
    indicator = np.asarray(indicator, np.float64)
    sd = indicator.std()
    ess = float(az.ess(indicator, method="mean")) if sd > 0 else np.nan
    return indicator.mean(), sd / np.sqrt(ess)


def mean_and_mcse(x):
    x = np.asarray(x, np.float64)
    return x.mean(), x.std() / np.sqrt(float(az.ess(x, method="mean")))


# ---------------------------------------------------------------- multimodal prior
@pytest.mark.slow
def test_mixture_prior_from_the_light_mode():
    """One run (a compilation is most of the cost) for three groups of checks."""
    pt = ParallelTempering(kernels.mala(0.1), mixture_prior, num_temperatures=NUM_TEMPERATURES,
                           max_temperature=MAX_TEMPERATURE)
    mcmc = MCMC(pt, num_warmup=NUM_WARMUP, num_samples=NUM_SAMPLES, num_chains=NUM_CHAINS,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(0), init_params={"x": light_mode_start()})
    x = mcmc.get_samples(group_by_chain=True)["x"]
    weight, weight_se = mode_weight(x > 0)
    mean, mean_se = mean_and_mcse(x)
    z = assert_z([weight, mean], [0.7, float(jnp.sum(WEIGHTS * MEANS))],
                 [weight_se, mean_se], ["heavy-mode weight", "mean"])
    print(f"PT(MALA): weight {weight:.3f} +- {weight_se:.3f}, mean {mean:.3f} +- "
          f"{mean_se:.3f}, z = {np.round(z, 2)}")
    check_warmup_tuned_every_replica_and_the_ladder(mcmc.last_state)
    check_arviz_gets_numpyro_and_swap_statistics(mcmc)


def test_numpyro_style_mala_fails_the_same_weight_check():
    mala = MCMC(BlackJAXKernel("mala", mixture_prior, adapt_mass_matrix=False),
                num_warmup=NUM_WARMUP, num_samples=NUM_SAMPLES, num_chains=NUM_CHAINS,
                chain_method="vectorized", progress_bar=False)
    mala.run(jax.random.key(0), init_params={"x": light_mode_start()})
    x = np.asarray(mala.get_samples(group_by_chain=True)["x"])
    weight, weight_se = mode_weight(x > 0)
    # every draw in the start mode leaves a constant indicator with no spread to
    # estimate: take the binomial sd of the truth over all draws instead (an MCSE at
    # least this small; it still rejects)
    weight_se = weight_se if np.isfinite(weight_se) else np.sqrt(0.7 * 0.3 / x.size)
    z = z_scores([weight], [0.7], [weight_se])[0]
    print(f"MALA: weight {weight:.3f}, z = {z:.1f}")
    assert z > critical_z(2), (weight, z)


def check_warmup_tuned_every_replica_and_the_ladder(state):
    kernel = state.adapt_state.kernel
    step_sizes = np.asarray(kernel.parameters["kernel"].step_size)  # (chain, K)
    betas = np.asarray(kernel.parameters["betas"])
    start = np.asarray(kernels.tempered_ladder(NUM_TEMPERATURES, MAX_TEMPERATURE))
    assert step_sizes.shape == betas.shape == (NUM_CHAINS, NUM_TEMPERATURES)
    # hotter replicas are wider: dual averaging gives each its own, larger, step
    assert np.all(np.diff(step_sizes, axis=1) > 0), step_sizes
    assert np.all(step_sizes[:, -1] > 10 * step_sizes[:, 0]), step_sizes
    # the ladder was re-spaced (end points kept) and the replicas' state follows it
    np.testing.assert_allclose(betas[:, [0, -1]],
                               np.broadcast_to(start[[0, -1]], (NUM_CHAINS, 2)), rtol=1e-6)
    assert np.all(np.abs(betas[:, 1:-1] - start[1:-1]).max(axis=1) > 0.02), betas
    np.testing.assert_allclose(state.inner.betas, betas, rtol=1e-6)
    # NumPyro's step size is the cold replica's
    np.testing.assert_allclose(state.adapt_state.step_size, step_sizes[:, 0], rtol=1e-6)
    assert np.all(np.asarray(state.round_trips) > 0)
    print(f"step sizes (chain 0) {np.round(step_sizes[0], 3)}; betas (chain 0) "
          f"{np.round(betas[0], 3)} from {np.round(start, 3)}; round trips "
          f"{np.asarray(state.round_trips)}")


def check_arviz_gets_numpyro_and_swap_statistics(mcmc):
    idata = az.from_numpyro(mcmc)
    stats = idata.sample_stats
    for name in ("lp", "acceptance_rate", "diverging", "step_size", "swap_acceptance",
                 "replica_acceptance", "round_trips"):
        assert name in stats, name
    assert stats["swap_acceptance"].shape == (NUM_CHAINS, NUM_SAMPLES, NUM_TEMPERATURES - 1)
    swap = stats["swap_acceptance"].values
    # DEO: each pair is proposed every other step, so half the entries are NaN
    np.testing.assert_allclose(np.isnan(swap).mean(axis=(0, 1)), 0.5, atol=1e-3)
    assert np.all((swap[~np.isnan(swap)] >= 0) & (swap[~np.isnan(swap)] <= 1))
    np.testing.assert_allclose(stats["acceptance_rate"].values,
                               stats["replica_acceptance"].values[..., 0])
    assert idata.posterior["x"].shape == (NUM_CHAINS, NUM_SAMPLES)
    print(f"mean swap acceptance per pair {np.round(np.nanmean(swap, axis=(0, 1)), 3)}")


# ---------------------------------------------------------------- energy prior + data
Y = jnp.array([-1.0, 0.0, 1.0, 2.0])  # mean 0.5: favours the +4 mode
SIGMA_Y = 3.0


def mixture_energy(x):
    """Equal-weight two-mode energy (unnormalised: ``log Z`` cancels in MCMC)."""
    return -jax.scipy.special.logsumexp(-0.5 * ((x[0] - MEANS) / SD) ** 2)


def energy_prior_model(y):
    x = numpyro.sample("x", EnergyDistribution(mixture_energy))
    numpyro.sample("y", dist.Normal(x[0], SIGMA_Y), obs=y)


def closed_form_posterior():
    """Per component: Gaussian prior x Gaussian likelihood of ``ybar``."""
    n, ybar = Y.shape[0], float(jnp.mean(Y))
    var = 1.0 / (1.0 / SD**2 + n / SIGMA_Y**2)
    means = var * (np.asarray(MEANS) / SD**2 + n * ybar / SIGMA_Y**2)
    marginal = SD**2 + SIGMA_Y**2 / n
    log_w = -0.5 * (ybar - np.asarray(MEANS)) ** 2 / marginal
    weights = np.exp(log_w - np.logaddexp(*log_w))
    return weights, means


@pytest.mark.slow
def test_energy_prior_with_likelihood_matches_the_closed_form_posterior():
    weights, means = closed_form_posterior()
    pt = ParallelTempering(kernels.mala(0.1), energy_prior_model, num_temperatures=5,
                           max_temperature=MAX_TEMPERATURE)
    mcmc = MCMC(pt, num_warmup=NUM_WARMUP, num_samples=NUM_SAMPLES, num_chains=NUM_CHAINS,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(1), Y, init_params={"x": light_mode_start(shape=(1,))})
    x = mcmc.get_samples(group_by_chain=True)["x"][..., 0]
    weight, weight_se = mode_weight(x > 0)
    mean, mean_se = mean_and_mcse(x)
    z = assert_z([weight, mean], [weights[1], float(weights @ means)], [weight_se, mean_se],
                 ["posterior weight of +4", "posterior mean"])
    print(f"posterior weight {weight:.3f} (truth {weights[1]:.3f}), mean {mean:.3f} "
          f"(truth {float(weights @ means):.3f}), z = {np.round(z, 2)}")


# ---------------------------------------------------------------- potential_fn
def mixture_potential_2d(z):
    d2 = jnp.sum((z - MEANS[:, None]) ** 2, axis=-1)  # modes at (-4, -4) and (4, 4)
    return -jax.scipy.special.logsumexp(jnp.log(WEIGHTS) - 0.5 * d2 / SD**2)


def test_potential_fn_with_a_random_walk_and_replica_scales():
    betas = kernels.tempered_ladder(NUM_TEMPERATURES, MAX_TEMPERATURE)
    pt = ParallelTempering(kernels.random_walk(0.5), potential_fn=mixture_potential_2d,
                           betas=betas, replica_parameters={"scale": 0.6 / jnp.sqrt(betas)})
    mcmc = MCMC(pt, num_warmup=200, num_samples=NUM_SAMPLES, num_chains=NUM_CHAINS,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(2), init_params=light_mode_start(shape=(2,)))
    z = mcmc.get_samples(group_by_chain=True)
    weight, weight_se = mode_weight(z[..., 0] > 0)
    score = assert_z([weight], [0.7], [weight_se], ["heavy-mode weight"])
    print(f"PT(random walk), potential_fn: weight {weight:.3f} +- {weight_se:.3f}, "
          f"z = {score[0]:.2f}")
    state = mcmc.last_state
    # no warm-up for a random walk: ladder and scales as given; NumPyro's step size is
    # the cold replica's scale
    np.testing.assert_allclose(state.inner.betas, np.broadcast_to(betas, (4, 6)), rtol=1e-6)
    np.testing.assert_allclose(state.adapt_state.step_size, 0.6, rtol=1e-6)


# ---------------------------------------------------------------- traced target
def standard_normal_potential(z):
    return 0.5 * jnp.sum(z**2)


@jax.jit
def _traced_target_run(target):
    pt = ParallelTempering(kernels.mala(0.5), potential_fn=standard_normal_potential,
                           num_temperatures=3, max_temperature=4.0, target_accept_prob=target)
    keys = jax.random.split(jax.random.key(3), NUM_CHAINS)
    state = pt.init(keys, 200, init_params=jnp.zeros((NUM_CHAINS, 2)))

    def body(state, _):
        state = pt.sample(state, (), {})
        return state, state.replica_acceptance

    _, acceptance = jax.lax.scan(body, state, None, length=400)
    return acceptance[200:]


def test_traced_target_steers_every_replica():
    default = kernels.mala(0.5).target_acceptance_rate
    rates = np.asarray(_traced_target_run(0.3)).mean(axis=(0, 1))  # per replica
    mirror = 2 * default - 0.3
    print(f"replica acceptance with target 0.3: {np.round(rates, 3)}")
    for rate in rates:
        assert abs(rate - 0.3) < min(abs(rate - default), abs(rate - mirror)), rates


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(("kernel", "kwargs", "error", "match"), [
    ("mala", {"max_temperature": 10.0}, TypeError, "ebm_ppl.kernels.mala"),
    (object(), {"max_temperature": 10.0}, TypeError, "must be an ebm_ppl.kernels kernel"),
    (kernels.mala(0.1), {}, ValueError, "max_temperature must be given"),
    (kernels.mala(0.1), {"max_temperature": 10.0, "betas": [1.0, 0.5]}, ValueError,
     "either max_temperature or betas"),
    (kernels.parallel_tempering(kernels.mala(0.1), 3, 10.0), {"max_temperature": 10.0},
     ValueError, "must not itself be a parallel_tempering"),
    (kernels.mala(0.1), {"betas": [1.0, 1.5]}, ValueError, "betas must lie in"),
    (kernels.mala(0.1), {"max_temperature": 10.0, "swap": "random"}, ValueError,
     "swap must be one of"),
    (kernels.mala(0.1), {"max_temperature": 10.0, "target_accept_prob": 1.5}, ValueError,
     "target_accept_prob must be in"),
])
def test_argument_errors(kernel, kwargs, error, match):
    with pytest.raises(error, match=match):
        ParallelTempering(kernel, mixture_prior, **kwargs)


def test_model_and_init_errors():
    with pytest.raises(ValueError, match="needs a model or a potential_fn"):
        ParallelTempering(kernels.mala(0.1), max_temperature=10.0)
    pt = ParallelTempering(kernels.mala(0.1), potential_fn=mixture_potential_2d,
                           max_temperature=10.0)
    with pytest.raises(ValueError, match="init_params must be given"):
        MCMC(pt, num_warmup=1, num_samples=1, progress_bar=False).run(jax.random.key(0))
    assert "warmup='none'" in repr(ParallelTempering(kernels.mala(0.1), mixture_prior,
                                                     max_temperature=10.0, adapt=False))
    assert "warmup='tempering'" in repr(pt)


def test_hmc_replicas_get_their_own_mass_matrices():
    """Over HMC (whose own warm-up is window adaptation) each replica's diagonal inverse
    mass matrix is estimated: about sd^2 / beta_k per coordinate (within a factor 2)."""
    scales = jnp.array([1.0, 4.0])
    pt = ParallelTempering(kernels.hmc(0.3, 5), potential_fn=lambda z: 0.5 * jnp.sum(
        (z / scales) ** 2), num_temperatures=3, max_temperature=4.0)
    mcmc = MCMC(pt, num_warmup=400, num_samples=10, progress_bar=False)
    mcmc.run(jax.random.key(3), init_params=jnp.zeros(2))
    kernel = mcmc.last_state.adapt_state.kernel
    imm = np.asarray(kernel.parameters["kernel"].parameters["inverse_mass_matrix"])
    betas = np.asarray(kernel.parameters["betas"])
    assert imm.shape == (3, 2)
    ratio = imm * betas[:, None] / np.asarray(scales) ** 2
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio
