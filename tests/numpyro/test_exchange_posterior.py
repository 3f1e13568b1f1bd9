"""The exchange algorithm targets the right posterior: fast default-run checks.

Laws tested (closed forms; ``tests/kernels/test_exchange.py`` has the long slow runs)
-----------------------------------------------------------------------------
* ``kernels.exchange`` with exact auxiliary draws is an exact MCMC kernel, so it leaves
  the posterior invariant. Family ``E_tau(x) = tau |x|^2 / 2`` on R^2 (``N(0, I / tau)``,
  ``Z = 2 pi / tau``), prior ``Gamma(a, b)``, ``n`` points: posterior
  ``Gamma(a + n d / 2, b + S / 2)``. Many chains start at exact posterior draws and make
  ``K`` transitions; their final states are i.i.d. posterior draws, checked against the
  Gamma mean and variance with ``mcse = sd / sqrt(num_chains)`` (STYLE: final states of
  independent chains). The proposal is an independence sampler, whose Hastings term
  does not cancel (the default random walk is the symmetric special case).
* ``numpyro.Exchange`` (double Metropolis–Hastings: auxiliary data by inner MALA chains
  in the unconstrained space of a ``positive`` support) on
  ``E_theta(x) = theta x - 2 log x`` at temperature ``T = 2``: ``p_theta`` is
  ``Gamma(1 + 2 / T, theta / T) = Gamma(2, theta / 2)``, so with ``theta ~ Gamma(a, b)``
  the posterior is ``Gamma(a + 2 n, b + sum(x) / 2)``. The normaliser ratio depends on
  ``T`` (``Z_T(theta) ∝ theta^-(1 + 2/T)``), the inner chains need the log-Jacobian of
  ``exp``, and the auxiliary data must be mapped back to the support: a bug in any of
  these moves the posterior by many standard errors. Same invariance design.

Every check: ``z = |estimate - truth| / mcse`` below ``norm.ppf(1 - alpha / (2 k))``,
``alpha = 1e-3`` (``conftest.assert_z``). The proposals have the posterior's scale (acceptance about
one half), so ``K`` transitions move a wrong kernel's chains far.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from conftest import assert_z, iid_mean_checks
from numpyro.distributions import constraints
from numpyro.infer import MCMC

import ebm_ppl
from ebm_ppl import kernels
from ebm_ppl.numpyro import EnergyDistribution, Exchange

# ---------------------------------------------------------------- kernels.exchange
A, B, D, N = 2.0, 1.0, 2, 30
X = jax.random.normal(jax.random.key(31), (N, D)) / np.sqrt(2.0)
POST_A, POST_B = A + N * D / 2, B + float(jnp.sum(X**2)) / 2
POST_MEAN, POST_VAR = POST_A / POST_B, POST_A / POST_B**2
NUM_CHAINS, NUM_STEPS = 4000, 8


def precision_energy(tau, x):
    """``E_tau(x) = tau |x|^2 / 2``."""
    return 0.5 * tau * jnp.sum(x**2)


def gamma_log_prior(tau):
    return jnp.where(tau > 0, dist.Gamma(A, B).log_prob(jnp.abs(tau)), -jnp.inf)


def exact_gaussian(rng_key, tau):
    """One exact draw of ``p_tau = N(0, I / tau)``."""
    return jax.random.normal(rng_key, (D,)) / jnp.sqrt(tau)


POT = ebm_ppl.Potential.from_energy_family(precision_energy, X, gamma_log_prior)


@jax.jit
def _final_states(kernel, start, rng_key):
    states, infos = kernels.run_chains(kernel, POT.logdensity_fn, start,
                                       jax.random.split(rng_key, NUM_STEPS))
    return states.position, jnp.mean(infos.acceptance_rate)


def test_exact_exchange_leaves_the_conjugate_posterior_invariant():
    """Exact auxiliary draws and an independence proposal ``N(mean, (1.5 sd)^2)`` (its
    Hastings term does not cancel): K transitions from exact Gamma posterior draws keep
    the Gamma posterior (mean and variance of the final states of 4000 chains)."""
    key_start, key_run = jax.random.split(jax.random.key(32))
    start = jax.random.gamma(key_start, POST_A, (NUM_CHAINS,)) / POST_B
    proposal = kernels.independent(dist.Normal(POST_MEAN, 1.5 * float(np.sqrt(POST_VAR))))
    kernel = kernels.exchange(precision_energy, X, proposal=proposal,
                              exact_sampler=exact_gaussian)
    final, rate = _final_states(kernel, start, key_run)
    assert 0.2 < float(rate) < 0.95  # the chains move: the check has power
    est, tru, se, lab = iid_mean_checks(np.asarray(final)[:, None], np.array([POST_MEAN]),
                                        np.array([[POST_VAR]]))
    assert_z(est, tru, se, lab)


# ---------------------------------------------------------------- numpyro.Exchange
GA, GB, GN, T = 2.0, 1.0, 20, 2.0
# p_theta = Gamma(2, theta / 2) at theta = 1
G_DATA = 2.0 * jax.random.gamma(jax.random.key(33), 2.0, (GN, 1))
G_POST_A, G_POST_B = GA + 2 * GN, GB + float(jnp.sum(G_DATA)) / 2
G_MEAN, G_VAR = G_POST_A / G_POST_B, G_POST_A / G_POST_B**2


def gamma_energy(theta, v):
    """``E_theta(v) = theta v - 2 log v`` on v > 0 (with T = 2: ``Gamma(2, theta / 2)``)."""
    return jnp.sum(theta * v - 2.0 * jnp.log(v))


def gamma_shape_model(x):
    theta = numpyro.sample("theta", dist.Gamma(GA, GB))
    numpyro.sample("x", EnergyDistribution(gamma_energy, params=theta, event_shape=(1,),
                                           support=constraints.positive, temperature=T),
                   obs=x)


def test_numpyro_exchange_leaves_the_posterior_invariant():
    """Inner MALA chains (10 steps from the data, in log space): K transitions of 2000
    vectorized chains from exact posterior draws keep Gamma(a + 2n, b + sum(x) / 2)."""
    num_chains, num_steps = 2000, 6
    key_start, key_run = jax.random.split(jax.random.key(34))
    theta = jax.random.gamma(key_start, G_POST_A, (num_chains,)) / G_POST_B
    kernel = Exchange(gamma_shape_model, inner_steps=10, scale=float(1 / np.sqrt(G_POST_A)),
                      adapt_scale=False)
    mcmc = MCMC(kernel, num_warmup=0, num_samples=num_steps, num_chains=num_chains,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(key_run, G_DATA, init_params={"theta": jnp.log(theta)})
    stats = mcmc.get_extra_fields(group_by_chain=True)
    accept = np.asarray(stats["accept_prob"], np.float64)
    assert 0.2 < accept.mean() < 0.95
    assert float(stats["inner_accept_prob"].mean()) > 0.5
    # running mean acceptance (no warm-up: over every transition)
    np.testing.assert_allclose(mcmc.last_state.mean_accept_prob, accept.mean(axis=1),
                               rtol=1e-5, atol=1e-6)
    final = np.exp(np.asarray(mcmc.last_state.z["theta"], np.float64))
    est, tru, se, lab = iid_mean_checks(final[:, None], np.array([G_MEAN]),
                                        np.array([[G_VAR]]))
    assert_z(est, tru, se, lab)


def test_numpyro_exchange_warmup_adapts_the_scale_towards_the_target():
    """Robbins–Monro on log(scale) towards 0.3: from a scale of 1e-3 every proposal is
    accepted, so warm-up must grow the scale (by far more than 10x: the gain sums to
    about 0.7 * sum(i^-0.6) ~ 6 in log scale over 40 iterations at acceptance 1)."""
    kernel = Exchange(gamma_shape_model, inner_steps=1, scale=1e-3)
    mcmc = MCMC(kernel, num_warmup=40, num_samples=1, num_chains=1,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(35), G_DATA)
    scale = np.asarray(mcmc.last_state.scale)
    assert scale > 1e-2, scale


def test_numpyro_exchange_warmup_is_the_robbins_monro_recursion():
    """The scale after warm-up equals ``log s_{t+1} = log s_t + (t + 1)^-0.6 (a_t - 0.3)``
    replayed in NumPy from the recorded acceptance probabilities (the shared
    ``adaptation.robbins_monro`` warm-up, fed by the adapter)."""
    num_warmup, start = 12, 0.05
    kernel = Exchange(gamma_shape_model, inner_steps=1, scale=start)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=1, num_chains=1,
                chain_method="vectorized", progress_bar=False)
    mcmc.warmup(jax.random.key(36), G_DATA, collect_warmup=True,
                extra_fields=("accept_prob",))
    accept = np.asarray(mcmc.get_extra_fields()["accept_prob"], np.float64).ravel()
    log_scale = np.log(start)
    for t, a in enumerate(accept[:num_warmup]):
        log_scale += (t + 1.0) ** -0.6 * (a - 0.3)
    np.testing.assert_allclose(np.asarray(mcmc.last_state.scale).ravel()[0],
                               np.exp(log_scale), rtol=1e-4)
