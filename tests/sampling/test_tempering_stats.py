"""Parallel tempering inside ``sample``: its swap statistics reach ``sample_stats``
(issue #29: per-pair swap acceptance and round trips recorded)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from conftest import count_compiles

import ebm_ppl
from ebm_ppl import kernels


def test_swap_acceptance_and_round_trips_are_sample_stats():
    pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))
    pt = kernels.parallel_tempering(kernels.mala(0.5), num_temperatures=4, max_temperature=8.0)
    idata = ebm_ppl.sample(pot, pt, jnp.zeros(2), num_samples=40, num_warmup=0, num_chains=2,
                           progress=False)
    stats = idata.sample_stats
    swap = stats["swap_acceptance"].values
    assert swap.shape == (2, 40, 3)
    # deterministic even/odd swaps: at every step exactly the pairs of one parity are tried
    proposed = ~np.isnan(swap)
    assert np.all(proposed[:, :, 0] != proposed[:, :, 1])
    assert np.all(proposed[:, :, 0] == proposed[:, :, 2])
    assert np.all((swap[proposed] >= 0) & (swap[proposed] <= 1))
    assert stats["replica_acceptance"].values.shape == (2, 40, 4)
    trips = stats["round_trips"].values
    assert np.all(np.diff(trips, axis=1) >= 0)


def test_second_call_compiles_nothing():
    """Another seed, init, ``num_samples`` and ladder (same length) reuse every compiled
    computation, the tempering warm-up included."""
    pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))

    def run(seed, init, num_samples, max_temperature):
        pt = kernels.parallel_tempering(kernels.mala(0.5), num_temperatures=3,
                                        max_temperature=max_temperature)
        return ebm_ppl.sample(pot, pt, init, num_samples=num_samples, num_warmup=60,
                              num_chains=2, seed=seed, progress=False)

    run(0, jnp.zeros(2), 40, 8.0)
    with count_compiles() as compiled:
        idata = run(1, jnp.ones(2), 70, 12.0)
    assert compiled == []
    assert idata.posterior["x"].shape == (2, 70, 2)
    # the cold replica's step size, as ArviZ's step_size (not NaN)
    step = idata.sample_stats["step_size"].values
    assert np.all(np.isfinite(step)) and np.all(step > 0) and np.all(step < 5)
