"""End-of-run warnings (issue 13, "no silent wrong answers"): ``sample`` and
``ais_log_z`` say when a finished run went wrong, naming the chains and the fix.

Each warning is shown to fire on a run that is wrong in that way, and a healthy run
emits none (so the warnings can fail both ways).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ebm_ppl
from ebm_ppl import SamplingWarning, kernels
from ebm_ppl.diagnostics.ais import ais_log_z

GAUSSIAN = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))


def _messages(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, SamplingWarning)]


@pytest.mark.slow
def test_healthy_run_emits_no_warning():
    """MALA and HMC (window warm-up of 150 steps) on a Gaussian: no warning at all."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kernel in (kernels.mala(0.5), kernels.hmc(0.5, 3)):
            ebm_ppl.sample(GAUSSIAN, kernel, jnp.zeros(2), num_samples=200, num_warmup=150,
                           progress=False, seed=1)


def test_blown_up_ula_chain_is_named():
    """ULA at 1.25x its stability limit from a far start grows geometrically and freezes
    near overflow; the warning names the chains and says to lower the step size."""
    with pytest.warns(SamplingWarning, match=r"chain\(s\) \[0, 1\] blew up.*smaller step size"):
        ebm_ppl.sample(GAUSSIAN, kernels.ula(2.5), jnp.full(2, 1e3), num_samples=100,
                       num_warmup=0, num_chains=2, jitter=0.0, progress=False,
                       check_target=False)


def test_stuck_chain_is_named():
    """Random-walk MH with a scale of 1e3 (not adapted) rejects every proposal."""
    with pytest.warns(SamplingWarning, match=r"chain\(s\) \[0, 1\] never moved over their 60"):
        ebm_ppl.sample(GAUSSIAN, kernels.mh(kernels.random_walk(1e3), adapt_scale=False),
                       jnp.zeros(2), num_samples=60, num_warmup=0, num_chains=2,
                       progress=False)


def test_divergences_above_one_percent_warn():
    """HMC on a target that is NaN beyond x0 > 0.5: many proposals diverge."""
    pot = ebm_ppl.Potential.from_energy(
        lambda x: jnp.where(x[0] > 0.5, jnp.nan, 0.5 * jnp.sum(x**2)))
    with pytest.warns(SamplingWarning, match=r"% of the transitions diverged.*reduce the step"):
        ebm_ppl.sample(pot, kernels.hmc(0.5, 5), jnp.zeros(2), num_samples=60, num_warmup=0,
                       num_chains=2, adapt=False, progress=False)


def test_rhat_above_limit_names_the_odd_chain():
    """Two modes at +-6 with sd 0.5 (barrier ~72 nats): MALA chains started in different
    modes never meet; R-hat is large and the warning names the lone chain 2."""
    def energy(x):
        return -jax.scipy.special.logsumexp(-0.5 * ((x[0] - jnp.array([-6.0, 6.0])) / 0.5) ** 2)

    init = jnp.array([[-6.0], [-6.0], [6.0]])
    with pytest.warns(SamplingWarning, match=r"R-hat is .* for 'x'.*\(chain 2 most.*multimodal"
                      r".*parallel_tempering\(kernel"):
        ebm_ppl.sample(ebm_ppl.Potential.from_energy(energy), kernels.mala(0.3), init,
                       num_samples=100, num_warmup=50, num_chains=3, progress=False)


@pytest.mark.slow
def test_short_window_warmup_warns_only_for_window_adaptation():
    """NUTS with 50 warm-up steps warns; MALA (dual averaging only) does not."""
    with pytest.warns(SamplingWarning, match="num_warmup=50 is too short for window"):
        ebm_ppl.sample(GAUSSIAN, kernels.hmc(0.5, 3), jnp.zeros(2), num_samples=20,
                       num_warmup=50, progress=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ebm_ppl.sample(GAUSSIAN, kernels.mala(0.5), jnp.zeros(2), num_samples=20,
                       num_warmup=50, progress=False)
    assert _messages(record) == []


def test_ais_counts_dropped_particles():
    """Particles that cross a NaN region get a non-finite log weight: they are counted
    in ``num_dropped`` and a warning says how many; the estimate uses the others."""
    pot = ebm_ppl.Potential.from_energy(
        lambda x: jnp.where(x[0] > 2.0, jnp.nan, 0.5 * jnp.sum(x**2)), example=jnp.zeros(2))
    with pytest.warns(SamplingWarning, match=r"\d+ of 200 AIS particles had a non-finite"):
        result = ais_log_z(pot, num_temps=10, num_chains=200, seed=2)
    assert 0 < result.num_dropped < 200
    assert np.isfinite(result.log_z)
    assert int(np.sum(~np.isfinite(result.log_weights))) == result.num_dropped


@pytest.mark.slow
def test_ais_warns_for_a_kernel_without_metropolis_correction():
    """ULA does not leave each tempered target invariant: AIS warns; MALA does not."""
    with pytest.warns(SamplingWarning, match="'ula' has no Metropolis correction"):
        ais_log_z(GAUSSIAN, num_temps=5, num_chains=50, kernel=kernels.ula(0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ais_log_z(GAUSSIAN, num_temps=5, num_chains=50, kernel=kernels.mala(0.1))


def _two_modes(dim: int) -> ebm_ppl.Potential:
    """Modes at x_0 = -6 and +6 (sd 0.5), standard normal in the other coordinates."""
    return ebm_ppl.Potential.from_energy(
        lambda x: -jax.scipy.special.logsumexp(-0.5 * ((x[0] - jnp.array([-6.0, 6.0])) / 0.5)
                                               ** 2) + 0.5 * jnp.sum(x[1:] ** 2),
        example=jnp.zeros(dim))


def test_tempering_ladder_gap_and_no_round_trip_are_named():
    """Two temperatures, 1 and 10^6, no warm-up (so no ladder adaptation), in 10-D: the
    hot replica spreads over a region 1000 times wider than the modes, its swaps with the
    cold one are accepted about 0.2 % of the time, and no replica makes a round trip.
    Both warnings fire, naming the pair and the chains."""
    pt = kernels.parallel_tempering(kernels.mala(0.3), num_temperatures=2,
                                    max_temperature=1e6)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ebm_ppl.sample(_two_modes(10), pt, jnp.zeros(10).at[0].set(-6.0), num_samples=400,
                       num_warmup=0,
                       num_chains=2, progress=False, seed=0, check_target=False)
    messages = _messages(record)
    assert any("swaps between temperatures 0 and 1" in m and "pairs under 1 %: [0]" in m
               and "num_temperatures" in m for m in messages), messages
    assert any("chain(s) [0, 1] no replica made a round trip" in m for m in messages), messages


@pytest.mark.slow
def test_healthy_tempering_run_has_no_tempering_warning():
    """An adapted ladder on the same target: swap rates well above 1 %, round trips in
    every chain, so neither tempering warning fires (the checks can fail both ways)."""
    pt = kernels.parallel_tempering(kernels.mala(0.3), num_temperatures=6,
                                    max_temperature=200.0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        idata = ebm_ppl.sample(_two_modes(2), pt, jnp.array([-6.0, 0.0]), num_samples=400,
                               num_warmup=300, num_chains=2, progress=False, seed=0,
                               check_target=False)
    assert not [m for m in _messages(record) if "parallel tempering" in m], _messages(record)
    assert np.all(idata.sample_stats["round_trips"].values[:, -1]
                  > idata.sample_stats["round_trips"].values[:, 0])


@pytest.mark.parametrize("rate, proposals, expect", [
    (0.009, 100, True), (0.011, 100, False), (0.0, 99, False)])
def test_tempering_gap_threshold(rate, proposals, expect):
    """The gap check's bounds: a pair under 1 % of at least 100 recorded proposals
    (NaN = not proposed) is named; 1.1 %, or fewer proposals, is not."""
    from ebm_ppl.sampling.health import run_problems

    swaps = np.full((1, 200, 2), np.nan)
    swaps[0, :proposals, 1] = rate
    swaps[0, :, 0] = 0.5
    stats = {"swap_acceptance": swaps, "round_trips": np.arange(200)[None]}
    messages = run_problems({"x": np.random.default_rng(0).normal(size=(1, 200))}, stats)
    assert any("temperatures 1 and 2" in m for m in messages) == expect, messages


@pytest.mark.parametrize("num_draws, expect", [(60, True), (59, False)])
def test_round_trip_check_needs_twenty_draws_per_temperature(num_draws, expect):
    """Three temperatures: a chain without a new round trip is named from 60 kept draws;
    a chain whose count rose is not."""
    from ebm_ppl.sampling.health import run_problems

    trips = np.zeros((2, num_draws), int)
    trips[1, -1] = 1
    stats = {"swap_acceptance": np.full((2, num_draws, 2), 0.5), "round_trips": trips + 3}
    messages = run_problems({"x": np.random.default_rng(0).normal(size=(2, num_draws))}, stats)
    assert any("chain(s) [0] no replica" in m for m in messages) == expect, messages
