"""``sample(..., warmup=)``: an explicit warm-up object from ``ebm_ppl.adaptation`` replaces
the kernel's own (issue #28), equal warm-ups share compiled code, and anything else is
refused."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import count_compiles

import ebm_ppl
from ebm_ppl import adaptation, kernels

POT = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2 / jnp.array([1.0, 4.0])),
                                    example=jnp.zeros(2))
KW = dict(num_samples=20, num_warmup=200, num_chains=2, seed=0, progress=False)


def _config(idata):
    return json.loads(idata.attrs["ebm_ppl_config"])


def test_default_is_the_kernels_own():
    assert kernels.hmc(0.1, 3).default_warmup == adaptation.window(0.8)
    assert kernels.mala(0.1).default_warmup == adaptation.dual_averaging(0.574)
    assert kernels.random_walk(0.1).default_warmup == adaptation.robbins_monro(0.234)
    assert kernels.ula(0.1).default_warmup == adaptation.none()
    assert _config(ebm_ppl.sample(POT, kernels.hmc(0.1, 3), jnp.zeros(2), **KW))[
        "adaptation"] == "window"


def test_none_keeps_the_given_step_size():
    idata = ebm_ppl.sample(POT, kernels.mala(0.05), jnp.zeros(2), warmup=adaptation.none(), **KW)
    np.testing.assert_allclose(idata.sample_stats["step_size"].values, 0.05, rtol=1e-6)
    assert _config(idata)["adaptation"] == "none"


def test_dual_averaging_on_hmc_keeps_the_identity_mass_matrix():
    idata = ebm_ppl.sample(POT, kernels.hmc(0.1, 3), jnp.zeros(2),
                           warmup=adaptation.dual_averaging(0.65), **KW)
    assert _config(idata)["adaptation"] == "step_size"
    imm = idata.sampler_state  # the tuned kernels are stored for resume; the step moved
    assert imm is not None
    assert not np.allclose(idata.sample_stats["step_size"].values, 0.1)


def test_equal_warmups_share_compiled_code():
    first = adaptation.dual_averaging(0.7)
    ebm_ppl.sample(POT, kernels.mala(0.1), jnp.zeros(2), warmup=first, **KW)
    with count_compiles() as compiled:
        ebm_ppl.sample(POT, kernels.mala(0.2), jnp.zeros(2), warmup=adaptation.dual_averaging(0.7),
                       **{**KW, "seed": 1})
    assert not [name for name in compiled if "run_chunk" in name], compiled


def test_bad_warmup_is_refused():
    with pytest.raises(TypeError, match="warmup must be an ebm_ppl.adaptation warm-up"):
        ebm_ppl.sample(POT, kernels.mala(0.1), jnp.zeros(2), warmup="window", **KW)
    with pytest.raises(ValueError, match="target_acceptance_rate"):
        adaptation.window(1.5)
    with pytest.raises(ValueError, match="has no proposal"):
        ebm_ppl.sample(POT, kernels.mala(0.1), jnp.zeros(2), warmup=adaptation.robbins_monro(),
                       **KW)
