"""AIS decides whether a kernel biases its estimate from the kernel's facts, not its name
(issue #28: ``from_blackjax`` names MCLMC ``"blackjax.mclmc"``, which a name table missed,
so AIS with MCLMC was silently biased)."""

from __future__ import annotations

import blackjax
import jax.numpy as jnp
import pytest

import ebm_ppl
from ebm_ppl import kernels
from ebm_ppl.kernels.registry import REGISTRY, make_kernel


def _pot():
    return ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))


@pytest.mark.parametrize("kernel", [
    kernels.ula(0.1),
    kernels.from_blackjax(blackjax.mclmc, L=1.0, step_size=0.5),
], ids=["ula", "blackjax.mclmc"])
def test_ais_warns_for_every_inexact_kernel(kernel):
    assert kernel.exact is False
    with pytest.warns(ebm_ppl.SamplingWarning, match="no Metropolis correction"):
        ebm_ppl.diagnostics.ais_log_z(_pot(), num_temps=3, num_chains=4, kernel=kernel)


def test_exact_kernels_are_exact():
    for kernel in (kernels.mala(0.1), kernels.hmc(0.1, 3), kernels.nuts(0.1),
                   kernels.random_walk(0.1),
                   kernels.from_blackjax(blackjax.mala, step_size=0.1),
                   kernels.from_blackjax(blackjax.hmc, step_size=0.1, num_integration_steps=2)):
        assert kernel.exact is True
    assert kernels.random_walk(0.1).gradient_based is False
    assert kernels.mala(0.1).gradient_based is True


def test_registry_is_the_one_name_table():
    from ebm_ppl._names import KERNELS
    from ebm_ppl.cli.parser import build_parser

    assert tuple(REGISTRY) == KERNELS
    assert make_kernel("hmc", 0.2).name == "hmc" and make_kernel("mh", 0.3).scale == 0.3
    with pytest.raises(ValueError, match="kernel must be one of"):
        make_kernel("gibbs", 0.1)
    sample_kernel = next(a for a in build_parser()._subparsers._group_actions[0]
                         .choices["sample"]._actions if a.dest == "kernel")
    assert set(KERNELS) <= set(sample_kernel.choices)
