"""Warm-up of parallel tempering through the warm-up module (issue #29): per-replica step
sizes reach their target acceptance and the ladder moves towards equal swap rates."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ebm_ppl
from ebm_ppl import adaptation, kernels

#: Two modes 8 apart (sd 0.5) in 2-D: hot replicas need much larger steps than cold ones.
MEANS = jnp.array([[-4.0, 0.0], [4.0, 0.0]])


def energy(x):
    return -jax.scipy.special.logsumexp(-0.5 * jnp.sum((x - MEANS) ** 2, axis=-1) / 0.25)


POT = ebm_ppl.Potential.from_energy(energy, example=jnp.zeros(2))


def test_default_warmup_of_pt_is_tempering_and_validates():
    pt = kernels.parallel_tempering(kernels.mala(0.1), num_temperatures=4, max_temperature=30.0)
    assert isinstance(pt.default_warmup, adaptation.TemperingWarmup)
    walk = kernels.parallel_tempering(kernels.random_walk(0.5), num_temperatures=3,
                                      max_temperature=5.0)
    assert walk.default_warmup.name == "none"
    with pytest.raises(ValueError, match="parallel_tempering kernel with a step size"):
        adaptation.tempering().init(kernels.mala(0.1), jnp.zeros(2), 10)
    with pytest.raises(ValueError, match="ladder_updates must be an integer"):
        adaptation.tempering(ladder_updates=-1)


@pytest.mark.slow  # two compiled PT runs (about 30 s on 2 cores)
def test_replica_step_sizes_reach_the_target_and_the_ladder_equalises_swaps():
    pt = kernels.parallel_tempering(kernels.mala(0.05), num_temperatures=6,
                                    max_temperature=60.0)
    idata = ebm_ppl.sample(POT, pt, jnp.zeros(2), num_samples=400, num_warmup=800,
                           num_chains=8, seed=3, progress=False)
    stats = idata.sample_stats
    # each replica's own acceptance after warm-up: near 0.574; z from the spread over chains
    replica = stats["replica_acceptance"].values.mean(axis=1)          # (chain, K)
    mean, se = replica.mean(axis=0), replica.std(axis=0, ddof=1) / np.sqrt(replica.shape[0])
    # dual averaging stops slightly off target after a finite warm-up (about 0.02 after
    # a few hundred steps, tests/adaptation/test_adaptation_maths.py): allow that bias
    assert np.all(np.abs(mean - 0.574) < 0.05 + 4 * se), (mean, se)
    config = __import__("json").loads(idata.attrs["ebm_ppl_config"])
    assert config["adaptation"] == "tempering"
    # swap acceptance per pair after ladder adaptation: spread smaller than on the
    # geometric ladder the kernel started with
    adapted = np.nanmean(stats["swap_acceptance"].values, axis=(0, 1))
    geometric = ebm_ppl.sample(POT, pt, jnp.zeros(2), num_samples=400, num_warmup=800,
                               num_chains=8, seed=3, progress=False,
                               warmup=adaptation.tempering(ladder_updates=0))
    before = np.nanmean(geometric.sample_stats["swap_acceptance"].values, axis=(0, 1))
    assert np.ptp(adapted) < np.ptp(before), (adapted, before)
