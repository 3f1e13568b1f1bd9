"""Parallel tempering (``ebm_ppl.kernels.parallel_tempering``) and its ladder tools.

* Mixture of four 2-D Gaussians 10 apart (sd 0.5, weights 0.1/0.2/0.3/0.4; barriers of
  about (5/0.5)^2/2 = 50 nats): from one start in the lightest mode, PT(MALA) puts the
  right mass in every mode (z-checks from the ArviZ ESS of the mode indicators, k = 4),
  and plain MALA from the same start fails those same checks.
* Exactness of the swap: replicas started at exact draws of their tempered targets
  (``N(0, 1/beta)``) keep those marginals after a swap-only step of either parity and
  after one full step (z-checks of ``E[x^2] = 1/beta``); the reported swap acceptance
  equals ``min(1, exp((b_i - b_{i+1}) (l_{i+1} - l_i)))`` computed in NumPy.
* Cached log densities and gradients follow the replicas' temperatures after swaps and
  after a change of ladder (MALA, HMC, random walk, and a base state without a
  ``logdensity`` field); DEO parity alternates, SEO's is random; round trips counted on
  a constructed permutation sequence; argument errors; jit == no-jit; inside
  ``ebm_ppl.sample``.
* ``adapt_ladder`` on closed-form barriers: a linear barrier gives the equal-spacing
  ladder at once; a logarithmic one converges to the geometric ladder.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_z, critical_z

import ebm_ppl
from ebm_ppl import kernels
from ebm_ppl.diagnostics import mode_weights as mode_weights_of
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.kernels.tempering import (
    init_replicas,
    replica_step_sizes,
    swap_rejection_rates,
    swap_replicas,
    track_round_trips,
    with_betas,
    with_replica_step_sizes,
)

MEANS = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
WEIGHTS = np.array([0.1, 0.2, 0.3, 0.4])
SD = 0.5


def mixture_logdensity(x):
    d = x - jnp.asarray(MEANS, x.dtype)
    logits = jnp.log(jnp.asarray(WEIGHTS, x.dtype)) - 0.5 * jnp.sum(d * d, -1) / SD**2
    return jax.scipy.special.logsumexp(logits)


def gaussian_logdensity(x):
    return -0.5 * jnp.sum(x * x)


def quartic_logdensity(x):
    """Non-Gaussian, so that gradients differ from position to position."""
    return -0.5 * jnp.sum(x * x) - 0.1 * jnp.sum(x**4) + 0.3 * x[0] * x[1]


@partial(jax.jit, static_argnames=("logdensity_fn", "num_steps"))
def trajectory(kernel, positions, rng_key, logdensity_fn, num_steps):
    """Chains from ``positions``: final states, and every step's positions and infos
    stacked ``(num_steps, num_chains, ...)``."""
    num_chains = positions.shape[0]
    states = kernels.init_chains(kernel, logdensity_fn, positions)

    def body(states, key):
        states, infos = kernels.step_chains(kernel, logdensity_fn, states,
                                            jax.random.split(key, num_chains))
        return states, (states.position, infos)

    return jax.lax.scan(body, states, jax.random.split(rng_key, num_steps))


def mode_weights(positions):
    """Fraction of draws nearest each mean and its MCSE (ArviZ ESS of the indicator);
    ``positions`` is ``(chain, draw, 2)``."""
    nearest = np.argmin(((positions[..., None, :] - MEANS) ** 2).sum(-1), -1)
    estimates, mcses = [], []
    for mode in range(len(MEANS)):
        indicator = (nearest == mode).astype(float)
        estimates.append(indicator.mean())
        ess = float(az.ess(indicator)) if indicator.std() > 0 else 1.0
        mcses.append(indicator.std() / np.sqrt(ess))
    return np.array(estimates), np.array(mcses)


def mixture_pt(swap="deo"):
    betas = kernels.tempered_ladder(8, 100.0)
    # MALA's step size scales like the variance, 1/beta
    return kernels.parallel_tempering(kernels.mala(0.12), betas=betas, swap=swap,
                                      replica_parameters={"step_size": 0.12 / betas})


def test_mixture_mode_weights_pt_right_mala_wrong():
    key_pt, key_mala = jax.random.split(jax.random.key(2901))
    start = jnp.zeros((16, 2))  # every chain in the lightest mode
    burn = 400
    _, (positions, infos) = trajectory(mixture_pt(), start, key_pt,
                                       logdensity_fn=mixture_logdensity, num_steps=2000)
    draws = np.asarray(positions, np.float64)[burn:].swapaxes(0, 1)
    estimates, mcses = mode_weights(draws)
    labels = [f"weight[{m}]" for m in range(4)]
    assert_z(estimates, WEIGHTS, mcses, labels)
    assert np.all(np.asarray(infos.round_trips[-1]) > 0)

    _, (positions, _) = trajectory(kernels.mala(0.12), start, key_mala,
                                   logdensity_fn=mixture_logdensity, num_steps=2000)
    mala = np.asarray(positions, np.float64)[burn:].swapaxes(0, 1)
    mala_estimates, _ = mode_weights(mala)
    # at the tolerance that PT passes, MALA (stuck in its mode) fails
    with pytest.raises(AssertionError, match="z-scores above"):
        assert_z(mala_estimates, WEIGHTS, mcses, labels)


# ------------------------------------------------------------------ exactness of swaps
SWAP_BETAS = np.array([1.0, 0.5, 0.2, 0.05])
NUM_SYSTEMS = 20_000


def _exact_tempered_states(pt, rng_key):
    """``NUM_SYSTEMS`` PT states with replica ``k`` at an exact draw of ``N(0, 1/b_k)``."""
    z = jax.random.normal(rng_key, (NUM_SYSTEMS, len(SWAP_BETAS), 1))
    positions = z / jnp.sqrt(jnp.asarray(SWAP_BETAS, jnp.float32))[:, None]
    return jax.vmap(lambda x: init_replicas(pt, x, gaussian_logdensity))(positions)


def _second_moment_checks(states, tag):
    x = np.asarray(states.replicas.position[..., 0], np.float64)  # (systems, K)
    squares = x**2
    estimates = squares.mean(0)
    mcses = squares.std(0, ddof=1) / np.sqrt(len(x))
    return (list(estimates), list(1.0 / SWAP_BETAS), list(mcses),
            [f"{tag} E[x_{k}^2]" for k in range(len(SWAP_BETAS))])


def test_swaps_and_full_steps_keep_the_tempered_marginals():
    key_init, key_even, key_odd, key_step = jax.random.split(jax.random.key(2902), 4)
    betas = jnp.asarray(SWAP_BETAS, jnp.float32)
    pt = kernels.parallel_tempering(kernels.mala(0.8), betas=betas,
                                    replica_parameters={"step_size": 0.8 / betas})
    start = _exact_tempered_states(pt, key_init)
    checks = [[], [], [], []]
    for parity, key in ((0, key_even), (1, key_odd)):
        keys = jax.random.split(key, NUM_SYSTEMS)
        swapped, acceptance = jax.jit(jax.vmap(
            lambda k, s, parity=parity: swap_replicas(k, s, gaussian_logdensity, parity)
        ))(keys, start)
        # the reported acceptance is the closed form, in float64
        x = np.asarray(start.replicas.position[..., 0], np.float64)
        ell = -0.5 * x**2
        closed = np.minimum(1.0, np.exp((SWAP_BETAS[:-1] - SWAP_BETAS[1:])
                                        * (ell[:, 1:] - ell[:, :-1])))
        proposed = np.arange(len(SWAP_BETAS) - 1) % 2 == parity
        acceptance = np.asarray(acceptance, np.float64)
        assert np.all(np.isnan(acceptance[:, ~proposed]))
        np.testing.assert_allclose(acceptance[:, proposed], closed[:, proposed],
                                   rtol=1e-4, atol=1e-6)
        for check, part in zip(checks, _second_moment_checks(swapped, f"parity {parity}")):
            check.extend(part)
    stepped, _ = jax.jit(jax.vmap(lambda k, s: pt.step(k, s, gaussian_logdensity)))(
        jax.random.split(key_step, NUM_SYSTEMS), start
    )
    for check, part in zip(checks, _second_moment_checks(stepped, "full step")):
        check.extend(part)
    assert_z(*checks)


# ------------------------------------------------------------------ cached values
class _PositionOnlyState(NamedTuple):
    position: jax.Array
    logp: jax.Array  # cached under a name the wrapper does not know


def _position_only_init(position, logdensity_fn):
    return _PositionOnlyState(position, logdensity_fn(position))


def _position_only_step(rng_key, state, logdensity_fn, scale):
    key_move, key_accept = jax.random.split(rng_key)
    proposal = state.position + scale * jax.random.normal(key_move, state.position.shape)
    logp = logdensity_fn(proposal)
    rate = jnp.exp(jnp.minimum(logp - state.logp, 0.0))
    accept = jax.random.uniform(key_accept) < rate
    new = jax.tree.map(lambda a, b: jnp.where(accept, a, b),
                       _PositionOnlyState(proposal, logp), state)
    return new, kernels.ULAInfo(rate, jnp.asarray(False))


POSITION_ONLY = Kernel(name="position_only", init_fn=_position_only_init,
                       kernel_fn=_position_only_step, parameters={"scale": jnp.asarray(0.8)})

CACHE_KERNELS = {
    "mala": lambda: kernels.mala(0.3),
    "hmc": lambda: kernels.hmc(0.3, 3),
    "random_walk": lambda: kernels.random_walk(0.8),
    "position_only": lambda: POSITION_ONLY,
}


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.slow) if name in ("hmc", "random_walk") else name
    for name in CACHE_KERNELS])  # mala and a state without a cache in the default run
def test_cached_logdensity_and_gradient_follow_the_temperature(name):
    old_betas = jnp.asarray([1.0, 0.6, 0.3, 0.1])
    new_betas = jnp.asarray([1.0, 0.5, 0.25, 0.05])
    pt = kernels.parallel_tempering(CACHE_KERNELS[name](), betas=old_betas)
    # init caches beta = 1; the first step rescales the caches to the new ladder
    states, _ = trajectory(with_betas(pt, new_betas), jnp.zeros((8, 2)), jax.random.key(2903),
                           logdensity_fn=quartic_logdensity, num_steps=30)
    assert np.any(np.asarray(states.labels) != np.arange(4)), "no swap happened"
    x = states.replicas.position  # (chain, K, 2)
    ell = jax.vmap(jax.vmap(quartic_logdensity))(x)
    cached = states.replicas.logp if name == "position_only" else states.replicas.logdensity
    np.testing.assert_allclose(cached, new_betas * ell, rtol=1e-5, atol=1e-5)
    if hasattr(states.replicas, "logdensity_grad"):
        grad = jax.vmap(jax.vmap(jax.grad(quartic_logdensity)))(x)
        np.testing.assert_allclose(states.replicas.logdensity_grad,
                                   new_betas[:, None] * grad, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(states.position, x[:, 0])
    np.testing.assert_allclose(states.logdensity, ell[:, 0], rtol=1e-6)
    np.testing.assert_array_equal(states.betas, np.broadcast_to(new_betas, (8, 4)))


# ------------------------------------------------------------------ swap schedule
@pytest.mark.parametrize("swap", ["deo", "seo"])
def test_swap_parity(swap):
    betas = kernels.tempered_ladder(6, 20.0)
    pt = kernels.parallel_tempering(kernels.mala(0.3), betas=betas, swap=swap)
    _, (_, infos) = trajectory(pt, jnp.zeros((1, 2)), jax.random.key(2904),
                               logdensity_fn=gaussian_logdensity, num_steps=40)
    proposed = ~np.isnan(np.asarray(infos.swap_acceptance[:, 0]))  # (steps, K - 1)
    even = np.arange(5) % 2 == 0
    is_even = np.all(proposed == even, axis=1)
    is_odd = np.all(proposed == ~even, axis=1)
    assert np.all(is_even | is_odd)
    if swap == "deo":
        np.testing.assert_array_equal(is_even, np.arange(40) % 2 == 0)
    else:  # random parity: both kinds of step, not strictly alternating
        assert is_even.any() and is_odd.any()
        assert not np.array_equal(is_even, np.arange(40) % 2 == 0)
    rates = swap_rejection_rates(infos.swap_acceptance)
    assert rates.shape == (5,) and np.all((rates >= 0) & (rates <= 1))


def test_round_trips_on_a_constructed_sequence():
    identity, swap01, swap12 = [0, 1, 2], [1, 0, 2], [0, 2, 1]
    labels = jnp.arange(3, dtype=jnp.int32)
    directions = jnp.asarray([1, 0, 0], jnp.int32)
    round_trips = jnp.zeros((), jnp.int32)
    # label 0: up one and back (no trip), then cold -> hot -> cold (one trip);
    # label 2 starts hot, visits slot 1 and returns hot (no trip: never cold);
    # label 1 reaches cold at the first swap, then goes hot and back (second trip)
    sequence = [swap01, swap01, identity, swap01, swap12, swap12, swap01,
                swap12, swap12, swap01]
    expected = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2]
    counts = []
    for permutation in sequence:
        labels, directions, round_trips = track_round_trips(
            jnp.asarray(permutation), labels, directions, round_trips)
        counts.append(int(round_trips))
    assert counts == expected
    np.testing.assert_array_equal(labels, [1, 0, 2])


# ------------------------------------------------------------------ interface
@pytest.mark.slow
def test_jit_equals_no_jit_and_the_cold_replica_is_the_position():
    pt = mixture_pt()
    state = pt.init(jnp.asarray([0.3, -0.2]), mixture_logdensity)
    keys = jax.random.split(jax.random.key(2905), 3)
    eager, jitted = state, state
    step = jax.jit(pt.step, static_argnums=2)
    for key in keys:
        eager, eager_info = pt.step(key, eager, mixture_logdensity)
        jitted, jitted_info = step(key, jitted, mixture_logdensity)
    for a, b in zip(jax.tree.leaves((eager, eager_info)), jax.tree.leaves((jitted, jitted_info))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert eager.position.shape == (2,)
    np.testing.assert_array_equal(eager.position, eager.replicas.position[0])
    assert int(eager.step) == 3


@pytest.mark.parametrize("base", ["mala", pytest.param("hmc", marks=pytest.mark.slow),
                                  pytest.param("random_walk", marks=pytest.mark.slow)])
def test_inside_sample(base):
    make = {"mala": lambda: kernels.mala(0.2), "hmc": lambda: kernels.hmc(0.2, 4),
            "random_walk": lambda: kernels.random_walk(0.5)}[base]
    pot = ebm_ppl.Potential.from_logdensity(quartic_logdensity)
    pt = kernels.parallel_tempering(make(), 4, 10.0)
    idata = ebm_ppl.sample(pot, pt, jnp.zeros(2), num_warmup=0, num_samples=30,
                           num_chains=2, progress=False, seed=3)
    x = idata.posterior["x"].values
    assert x.shape == (2, 30, 2)
    lp = jax.vmap(jax.vmap(quartic_logdensity))(jnp.asarray(x))
    np.testing.assert_allclose(idata.sample_stats["lp"].values, lp, rtol=1e-5, atol=1e-5)
    rates = idata.sample_stats["acceptance_rate"].values
    assert np.all((rates >= 0) & (rates <= 1)) and rates.mean() > 0.2


def test_replica_step_sizes():
    betas = kernels.tempered_ladder(3, 9.0)
    pt = kernels.parallel_tempering(kernels.mala(0.1), betas=betas)
    np.testing.assert_allclose(replica_step_sizes(pt), [0.1, 0.1, 0.1])
    pt = with_replica_step_sizes(pt, 0.1 / betas)
    np.testing.assert_allclose(replica_step_sizes(pt), [0.1, 0.3, 0.9], rtol=1e-6)
    rw = kernels.parallel_tempering(kernels.random_walk(0.5), betas=betas,
                                    replica_parameters={"scale": 0.5 / jnp.sqrt(betas)})
    np.testing.assert_allclose(replica_step_sizes(rw), [0.5, 0.5 * 3**0.5, 1.5], rtol=1e-6)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(num_temperatures=1, max_temperature=10.0), ValueError,
     r"num_temperatures must be an integer >= 2, got 1"),
    (dict(num_temperatures=2.5, max_temperature=10.0), ValueError,
     r"num_temperatures must be an integer >= 2, got 2.5"),
    (dict(max_temperature=1.0), ValueError, r"max_temperature must be a finite number > 1"),
    (dict(max_temperature=float("inf")), ValueError, r"max_temperature must be a finite"),
    (dict(), ValueError, r"max_temperature must be given when betas is None"),
    (dict(max_temperature=10.0, swap="random"), ValueError,
     r"swap must be one of \('deo', 'seo'\), got 'random'"),
    (dict(betas=[1.0, 0.5], max_temperature=10.0), ValueError,
     r"pass either max_temperature or betas, not both"),
    (dict(betas=[0.9, 0.5]), ValueError, r"betas must start at 1"),
    (dict(betas=[1.0, 0.5, 0.7]), ValueError, r"betas must be strictly decreasing"),
    (dict(betas=[1.0, 0.0]), ValueError, r"betas must lie in \(0, 1\]"),
    (dict(betas=[1.0]), ValueError, r"betas must be a 1-D array of at least 2"),
    (dict(betas=[1.0, 0.5], num_temperatures=3), ValueError,
     r"num_temperatures must equal len\(betas\)=2, got 3"),
    (dict(max_temperature=10.0, replica_parameters={"step_size": [0.1, 0.2]}), ValueError,
     r"replica_parameters\['step_size'\] must have a leading axis of length "
     r"num_temperatures=8, got shape \(2,\)"),
    (dict(max_temperature=10.0, replica_parameters={"stepsize": np.ones(8)}), ValueError,
     r"replica_parameters has unknown parameter 'stepsize'"),
    (dict(max_temperature=10.0, replica_parameters={"step_size": -np.ones(8)}), ValueError,
     r"replica_parameters\['step_size'\] must be finite and > 0"),
    (dict(max_temperature=10.0, replica_parameters=[0.1]), TypeError,
     r"replica_parameters must be a dict"),
])
def test_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        kernels.parallel_tempering(kernels.mala(0.1), **kwargs)


def test_kernel_errors():
    with pytest.raises(TypeError, match="kernel must be an ebm_ppl.kernels kernel"):
        kernels.parallel_tempering("mala", max_temperature=10.0)
    pt = kernels.parallel_tempering(kernels.mala(0.1), max_temperature=10.0)
    with pytest.raises(ValueError, match="must not itself be a parallel_tempering kernel"):
        kernels.parallel_tempering(pt, max_temperature=10.0)
    with pytest.raises(TypeError, match="kernel must be a parallel_tempering kernel"):
        with_betas(kernels.mala(0.1), [1.0, 0.5])
    with pytest.raises(ValueError, match=r"betas must have shape \(8,\), got \(2,\)"):
        with_betas(pt, [1.0, 0.5])
    with pytest.raises(ValueError, match="positions must have a leading axis of length 8"):
        init_replicas(pt, jnp.zeros((3, 2)), gaussian_logdensity)


# ------------------------------------------------------------------ ladder
def test_tempered_ladder_is_geometric():
    betas = np.asarray(kernels.tempered_ladder(5, 16.0), np.float64)
    np.testing.assert_allclose(betas, [1.0, 0.5, 0.25, 0.125, 0.0625], rtol=1e-6)
    with pytest.raises(ValueError, match="num_temperatures must be an integer >= 2, got 1"):
        kernels.tempered_ladder(1, 10.0)
    with pytest.raises(ValueError, match="max_temperature must be a finite number > 1, got 0.5"):
        kernels.tempered_ladder(4, 0.5)


def test_adapt_ladder_linear_barrier_equalises_at_once():
    # barrier Lambda(beta) = c (beta - beta_min): pair rejection r_i = c (b_i - b_{i+1})
    c = 0.8
    betas = kernels.tempered_ladder(6, 50.0)
    rates = c * (betas[:-1] - betas[1:])
    new = np.asarray(kernels.adapt_ladder(betas, rates), np.float64)
    np.testing.assert_allclose(new, np.linspace(1.0, 1 / 50.0, 6), rtol=1e-5)
    new_rates = c * (new[:-1] - new[1:])
    np.testing.assert_allclose(new_rates, np.full(5, c * (1 - 1 / 50.0) / 5), rtol=1e-4)
    # equal rates: a fixed point; no barrier at all: unchanged
    np.testing.assert_allclose(kernels.adapt_ladder(betas, jnp.full(5, 0.3)), betas,
                               rtol=1e-5)
    np.testing.assert_array_equal(kernels.adapt_ladder(betas, jnp.zeros(5)), betas)


def test_adapt_ladder_log_barrier_converges_to_geometric():
    # Lambda(beta) = c log(beta): rejection c log(b_i / b_{i+1}), equal on geometric ladders
    c = 0.2
    betas = jnp.linspace(1.0, 0.01, 7)
    update = jax.jit(lambda b: kernels.adapt_ladder(b, c * jnp.log(b[:-1] / b[1:])))
    for _ in range(60):
        betas = update(betas)
    np.testing.assert_allclose(betas, kernels.tempered_ladder(7, 100.0), rtol=1e-3)


@pytest.mark.parametrize("betas, rates, match", [
    ([1.0, 0.5, 0.1], [0.1], r"swap_rejection_rates must have shape \(2,\)"),
    ([1.0, 0.5, 0.1], [0.1, 1.5], r"swap_rejection_rates must lie in \[0, 1\]"),
    ([1.0, 0.5, 0.1], [0.1, float("nan")], r"swap_rejection_rates must lie in \[0, 1\]"),
    ([1.0, 0.1, 0.5], [0.1, 0.1], r"betas must be strictly decreasing"),
])
def test_adapt_ladder_errors(betas, rates, match):
    with pytest.raises(ValueError, match=match):
        kernels.adapt_ladder(betas, rates)


# ------------------------------------------------------------------ larger study
@pytest.mark.slow
def test_mixture_study_deo_beats_seo_and_ladder_adaptation_equalises():
    """64 chains x 6000 steps: both schemes get the mode weights right (k = 8), DEO
    makes more round trips than SEO (two-sample z over chains), and three rounds of
    :func:`adapt_ladder` halve the spread of the swap rejection rates."""
    key_deo, key_seo, key_adapt = jax.random.split(jax.random.key(2906), 3)
    start = jnp.zeros((64, 2))
    estimates, mcses, trips = [], [], {}
    for swap, key in (("deo", key_deo), ("seo", key_seo)):
        states, (positions, _) = trajectory(mixture_pt(swap), start, key,
                                            logdensity_fn=mixture_logdensity, num_steps=6000)
        est, se = mode_weights(np.asarray(positions, np.float64)[1000:].swapaxes(0, 1))
        estimates.extend(est)
        mcses.extend(se)
        trips[swap] = np.asarray(states.round_trips, np.float64)
    assert_z(estimates, np.tile(WEIGHTS, 2), mcses,
             [f"{s} weight[{m}]" for s in ("deo", "seo") for m in range(4)])
    difference = trips["deo"].mean() - trips["seo"].mean()
    se = np.sqrt(trips["deo"].var(ddof=1) / 64 + trips["seo"].var(ddof=1) / 64)
    assert difference / se > critical_z(1)

    pt = mixture_pt()
    spreads = []
    for key in jax.random.split(key_adapt, 4):
        _, (_, infos) = trajectory(pt, start, key, logdensity_fn=mixture_logdensity,
                                   num_steps=1500)
        rates = swap_rejection_rates(infos.swap_acceptance[300:])
        spreads.append(float(rates.max() - rates.min()))
        betas = kernels.adapt_ladder(pt.parameters["betas"], rates)
        pt = with_replica_step_sizes(with_betas(pt, betas), 0.12 / betas)
    assert spreads[-1] < spreads[0] / 2, spreads


@pytest.mark.slow
def test_ten_dimensional_two_modes_from_the_light_mode():
    """The issue's >= 10-D goal: two Gaussians at -4 e_1 and +4 e_1 in 10-D (sd 0.5, a
    32-nat barrier), weights 0.3 / 0.7, every chain started in the light mode; parallel
    tempering with its default warm-up gets the weights at their MCSE (and within 0.05)."""
    means = np.zeros((2, 10))
    means[0, 0], means[1, 0] = -4.0, 4.0
    log_w = jnp.log(jnp.array([0.3, 0.7]))

    def energy(x):
        return -jax.scipy.special.logsumexp(
            log_w - 0.5 * jnp.sum((x - jnp.asarray(means)) ** 2, -1) / 0.25)

    pot = ebm_ppl.Potential.from_energy(energy, example=jnp.zeros(10))
    pt = kernels.parallel_tempering(kernels.mala(0.1), num_temperatures=8,
                                    max_temperature=100.0)
    idata = ebm_ppl.sample(pot, pt, jnp.asarray(means[0]), num_samples=1500, num_warmup=500,
                           num_chains=8, seed=0, progress=False, check_target=False)
    found = mode_weights_of(idata, centers=means, expected=np.array([0.3, 0.7]))
    assert np.all(np.abs(found.z) < 4), found
    assert np.all(np.abs(found.weights - [0.3, 0.7]) < 0.05), found
