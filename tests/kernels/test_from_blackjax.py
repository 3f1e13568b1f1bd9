"""Tests of ebm_ppl.kernels.from_blackjax: any BlackJAX algorithm as an ebm_ppl kernel.

Invariance checks start many independent chains at exact draws of a Gaussian target and
take a few transitions: an exact kernel keeps the target, so the final states are still
i.i.d. draws of it, and ``z = |mean - truth| / (sd / sqrt(n))`` (variances as means of
``(x - mu)**2``) is standard normal. A test fails when a z-score exceeds the Bonferroni
threshold ``norm.ppf(1 - alpha / (2k))``, ``alpha = 1e-3``, ``k`` checks.
"""

from __future__ import annotations

import arviz as az
import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from ebm_ppl import Potential, sample
from ebm_ppl.adaptation import mclmc_warmup
from ebm_ppl.kernels import Kernel, from_blackjax
from ebm_ppl.kernels.from_blackjax import WARMUPS, check_kernel

ALPHA = 1e-3
MEAN = jnp.array([1.0, -0.5])
SD = jnp.array([1.0, 2.0])
NUM_CHAINS = 2000


def logdensity(x):
    return -0.5 * jnp.sum(((x - MEAN) / SD) ** 2)


def random_walk_step(rng_key, position):
    return position + 0.8 * jax.random.normal(rng_key, position.shape)


ALGORITHMS = {
    "mala": lambda: from_blackjax(blackjax.mala, step_size=0.5),
    # GHMC's init draws the momentum from N(0, I): stationary from the start only with
    # momentum_inverse_scale = 1 (the joint law of position and momentum is what is kept)
    "ghmc": lambda: from_blackjax(blackjax.ghmc, step_size=0.3,
                                  momentum_inverse_scale=jnp.ones(2), alpha=0.3, delta=0.2),
    "rmh": lambda: from_blackjax(blackjax.rmh, proposal_generator=random_walk_step),
    "hmc": lambda: from_blackjax(blackjax.hmc, step_size=0.3, num_integration_steps=5),
    "nuts": lambda: from_blackjax("nuts", step_size=0.5),
    "barker": lambda: from_blackjax(blackjax.barker_proposal, step_size=0.8),
    "mclmc": lambda: from_blackjax(blackjax.mclmc, L=2.0, step_size=0.1),
}
QUICK = ("mala", "rmh")


@jax.jit
def run_chains(kernel, key, num_steps_marker):
    """``len(num_steps_marker)`` transitions of NUM_CHAINS chains started at exact draws."""
    key_init, key_run = jax.random.split(key)
    x0 = MEAN + SD * jax.random.normal(key_init, (NUM_CHAINS, 2))
    states = jax.vmap(lambda x: kernel.init(x, logdensity))(x0)

    def body(states, key):
        keys = jax.random.split(key, NUM_CHAINS)
        states, info = jax.vmap(lambda k, s: kernel.step(k, s, logdensity))(keys, states)
        return states, (info.acceptance_rate, info.is_divergent)

    keys = jax.random.split(key_run, num_steps_marker.shape[0])
    states, (rate, divergent) = jax.lax.scan(body, states, keys)
    return states.position, rate, divergent


def moment_z(draws, mean, var):
    """z-scores of the means and of the means of (x - mean)**2, i.i.d. draws (n, d)."""
    draws = np.asarray(draws, np.float64)
    n = draws.shape[0]
    sq = (draws - mean) ** 2
    z_mean = np.abs(draws.mean(0) - mean) / (draws.std(0) / np.sqrt(n))
    z_var = np.abs(sq.mean(0) - var) / (sq.std(0) / np.sqrt(n))
    return np.concatenate([z_mean, z_var])


def z_crit(k):
    return float(norm.ppf(1 - ALPHA / (2 * k)))


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=() if n in QUICK else pytest.mark.slow) for n in ALGORITHMS
])
def test_transitions_keep_the_gaussian_target(name):
    kernel = ALGORITHMS[name]()
    positions, rate, divergent = run_chains(kernel, jax.random.key(11), jnp.zeros(4))
    z = moment_z(positions, np.asarray(MEAN), np.asarray(SD) ** 2)
    assert np.all(z < z_crit(z.size)), (name, z)
    assert float(rate.mean()) > 0.3
    assert not bool(divergent.any())


def test_invariance_check_rejects_a_wrong_target():
    """Same sample size, a variance 15 % off: the check above must fail (power)."""
    kernel = ALGORITHMS["mala"]()
    positions, _, _ = run_chains(kernel, jax.random.key(11), jnp.zeros(4))
    z = moment_z(positions, np.asarray(MEAN), 1.15 * np.asarray(SD) ** 2)
    assert np.any(z > z_crit(z.size))


def test_parameters_are_traced_and_a_new_step_size_compiles_nothing():
    traces = []

    @jax.jit
    def one_step(kernel, key):
        traces.append(1)
        state = kernel.init(MEAN, logdensity)
        return kernel.step(key, state, logdensity)[0].position

    kernel = from_blackjax(blackjax.hmc, step_size=0.3, num_integration_steps=5)
    assert set(kernel.parameters) == {"step_size", "inverse_mass_matrix"}
    assert dict(kernel.static_parameters)["num_integration_steps"] == 5
    one_step(kernel, jax.random.key(0))
    one_step(kernel.replace(step_size=0.1), jax.random.key(0))
    one_step(from_blackjax(blackjax.hmc, step_size=0.2, num_integration_steps=5),
             jax.random.key(0))
    assert len(traces) == 1


def test_name_adaptation_and_target_follow_the_table():
    for name in ("mala", "nuts", "barker", "ghmc", "mclmc", "rmh"):
        kernel = {"mala": ALGORITHMS["mala"], "nuts": ALGORITHMS["nuts"],
                  "barker": ALGORITHMS["barker"], "ghmc": ALGORITHMS["ghmc"],
                  "mclmc": ALGORITHMS["mclmc"], "rmh": ALGORITHMS["rmh"]}[name]()
        scheme, target = WARMUPS.get(name, ("none", 0.8))
        assert kernel.adaptation == scheme
        assert kernel.target_acceptance_rate == target
    assert from_blackjax("rmh", proposal_generator=random_walk_step).adaptation == "none"
    assert from_blackjax(blackjax.mala, step_size=0.1, adaptation="none").adaptation == "none"
    kernel = from_blackjax(blackjax.mala, step_size=0.1, target_acceptance_rate=0.7)
    assert kernel.target_acceptance_rate == 0.7
    assert isinstance(kernel, Kernel) and kernel.name == "blackjax.mala"


def test_non_finite_transition_is_undone_and_reported():
    """MCLMC has no accept step: a move into a NaN region is undone and flagged."""

    def cliff(x):  # NaN beyond x[0] > 1.5
        return jnp.where(x[0] > 1.5, jnp.nan, logdensity(x))

    kernel = from_blackjax(blackjax.mclmc, L=2.0, step_size=0.5)
    state = kernel.init(jnp.array([1.4, 0.0]), cliff)

    def body(state, key):
        state, info = kernel.step(key, state, cliff)
        return state, (state.position, info.is_divergent, info.acceptance_rate)

    _, (positions, divergent, rate) = jax.jit(lambda s: jax.lax.scan(
        body, s, jax.random.split(jax.random.key(3), 30)))(state)
    assert bool(jnp.all(jnp.isfinite(positions)))
    assert bool(jnp.all(positions[:, 0] <= 1.5))
    assert int(divergent.sum()) > 0
    assert bool(jnp.all((rate >= 0) & (rate <= 1)))


@pytest.mark.slow
def test_mclmc_tuner_gives_a_usable_step_size_and_l():
    kernel = ALGORITHMS["mclmc"]()
    state = kernel.init(MEAN, logdensity)
    state, tuned = jax.jit(
        lambda s: mclmc_warmup(kernel, jax.random.key(5), s, logdensity, 600)
    )(state)
    step_size, L = float(tuned.parameters["step_size"]), float(tuned.parameters["L"])
    assert 0.05 < step_size < 10.0 and 0.05 < L < 20.0
    imm = np.asarray(tuned.parameters["inverse_mass_matrix"])
    np.testing.assert_allclose(imm, np.asarray(SD) ** 2, rtol=0.6)


def test_argument_errors():
    with pytest.raises(TypeError, match=r"needs the parameter\(s\) \['num_integration_steps'"):
        from_blackjax(blackjax.hmc, step_size=0.1)
    with pytest.raises(TypeError, match="unexpected parameter"):
        from_blackjax(blackjax.mala, step_size=0.1, momentum=3)
    with pytest.raises(TypeError, match="already bound to a log density"):
        from_blackjax(blackjax.mala(logdensity, step_size=0.1))
    with pytest.raises(TypeError, match="BlackJAX top-level sampling algorithm"):
        from_blackjax(object())
    with pytest.raises(ValueError, match="must name a BlackJAX sampling algorithm"):
        from_blackjax("not_an_algorithm")
    with pytest.raises(ValueError, match="adaptation must be one of"):
        from_blackjax(blackjax.mala, step_size=0.1, adaptation="magic")
    with pytest.raises(ValueError, match=r"adaptation='window' tunes"):
        from_blackjax(blackjax.mala, step_size=0.1, adaptation="window")
    with pytest.raises(ValueError, match="step_size"):
        from_blackjax(blackjax.mala, step_size=-0.1)
    with pytest.raises(ValueError, match="target_acceptance_rate"):
        from_blackjax(blackjax.mala, step_size=0.1, target_acceptance_rate=1.5)
    with pytest.raises(TypeError, match="must be a number, an array"):
        from_blackjax(blackjax.rmh, proposal_generator=[random_walk_step])


def test_check_kernel_shows_the_from_blackjax_call():
    check_kernel(ALGORITHMS["mala"]())
    with pytest.raises(TypeError, match=r"from_blackjax\(blackjax\.nuts, step_size=\.\.\.\)"):
        check_kernel(blackjax.nuts)
    with pytest.raises(
        TypeError,
        match=r"from_blackjax\(blackjax\.ghmc, step_size=\.\.\., momentum_inverse_scale=\.\.\.",
    ):
        check_kernel(blackjax.ghmc)
    with pytest.raises(TypeError, match="SamplingAlgorithm bound to a log density"):
        check_kernel(blackjax.nuts(logdensity, 0.1, jnp.ones(2)))
    with pytest.raises(TypeError, match="kernel must be an ebm_ppl.kernels kernel"):
        check_kernel("nuts")


# ---------------------------------------------------------------- through ebm_ppl.sample
def test_sample_names_the_from_blackjax_call_for_a_bare_algorithm():
    pot = Potential.from_logdensity(logdensity)
    with pytest.raises(TypeError, match=r"from_blackjax\(blackjax\.nuts, step_size=\.\.\.\)"):
        sample(pot, blackjax.nuts, jnp.zeros(2), num_samples=10, num_warmup=10)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ghmc", "mclmc"])
def test_sample_runs_and_tunes_from_blackjax_kernels(name):
    """ghmc: dual averaging of its step size; mclmc: BlackJAX's own tuner (issue 13: dual
    averaging drove its step size to 1e25 and froze the chains)."""
    pot = Potential.from_logdensity(logdensity)
    idata = sample(pot, ALGORITHMS[name](), MEAN, num_samples=1000, num_warmup=500,
                   num_chains=4, progress=False, seed=2)
    step = idata.sample_stats["step_size"].values
    assert np.all((step > 0.01) & (step < 10.0)), step[:, 0]
    x = idata.posterior["x"].values
    crit = z_crit(4)
    for j in range(2):
        draws = x[..., j]
        for values, truth in ((draws, float(MEAN[j])),
                              ((draws - float(MEAN[j])) ** 2, float(SD[j]) ** 2)):
            mcse = values.std() / np.sqrt(float(az.ess(values)))
            assert abs(values.mean() - truth) / mcse < crit, (name, j)
