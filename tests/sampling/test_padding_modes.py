"""The two ways a compiled chunk skips the steps past the end of a run
(``ebm_ppl._platform.padding_mode``: ``lax.cond`` on CPU, compute-and-discard on
accelerators) give the same draws and the same fit. CI has no accelerator, so the
accelerator mode is forced here on CPU."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ebm_ppl
from ebm_ppl._platform import fit_padding_mode, padding_mode
from ebm_ppl.sampling import driver
from ebm_ppl.training import fitting

POT = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2))


def test_cpu_uses_cond_and_accelerators_select():
    assert padding_mode() == "cond"  # the test machines are CPUs
    assert padding_mode(jax.devices("cpu")) == "cond"

    class FakeGPU:
        platform = "gpu"

    assert padding_mode([FakeGPU()]) == "select"
    # fit on CPU computes and discards too when the last chunk's padding is <= 5 % of
    # the run (no cond around the step: faster on CPU as well), else keeps the cond
    assert fit_padding_mode(None, 2000, 50) == "select"
    assert fit_padding_mode(None, 1010, 50) == "select"  # 40 padding steps <= 50.5
    assert fit_padding_mode(None, 73, 50) == "cond"
    assert fit_padding_mode([FakeGPU()], 73, 50) == "select"


@pytest.mark.parametrize("kernel, options", [
    pytest.param(ebm_ppl.kernels.mala(0.5),
                 {"num_samples": 130, "num_warmup": 150, "thin": 2}, marks=pytest.mark.slow),
    pytest.param(ebm_ppl.kernels.nuts(0.5), {"num_samples": 70, "num_warmup": 160},
                 marks=pytest.mark.slow),
    (ebm_ppl.kernels.ula(0.1), {"num_samples": 50, "num_warmup": 0}),
])
def test_sample_draws_are_bitwise_equal(kernel, options, monkeypatch):
    """Partial chunks in warm-up (dual averaging, windows) and sampling, thinning."""
    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ebm_ppl.sample(POT, kernel, jnp.zeros(2), num_chains=3, seed=3,
                                  progress=False, **options)

    cond = run()
    monkeypatch.setattr(driver, "padding_mode", lambda devices=None: "select")
    select = run()
    for group in ("posterior", "sample_stats"):
        for name in cond[group].data_vars:
            np.testing.assert_array_equal(select[group][name].values, cond[group][name].values)


def test_fit_is_equal_up_to_rounding(monkeypatch):
    """Up to 73 steps (a partial last chunk), held-out loss every 10 steps and early
    stopping: the same steps run and the same history, to float32 rounding."""
    data = np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32)
    energy = ebm_ppl.nn.mlp_energy((8,), quadratic=0.1)
    params = energy.init(0, 2)

    def run(patience):  # held-out data unlike the training data: its loss soon rises
        return ebm_ppl.fit(energy, params, data,
                           ebm_ppl.objectives.denoising_score_matching(0.2),
                           optax.adam(5e-2), num_steps=73, batch_size=64, progress=False,
                           validation_data=3 * data[:50] + 4, validate_every=10,
                           patience=patience)

    cond = [run(1)]  # 27 padding steps of 73: the cond on CPU
    monkeypatch.setattr(fitting, "fit_padding_mode", lambda *args: "select")
    select = [run(1)]
    for a, b in zip(cond, select, strict=True):
        assert a.steps == b.steps and a.stopped_early == b.stopped_early
        assert set(a.history) == set(b.history)
        for name in a.history:
            np.testing.assert_allclose(b.history[name], a.history[name], rtol=1e-5, atol=1e-6)
        jax.tree.map(lambda x, y: np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-6),
                     a.params, b.params)
    assert cond[0].stopped_early and cond[0].steps < 73  # the early stop is exercised
