"""Warnings for suspicious but legal input, raised before any sampling."""

import warnings

import jax.numpy as jnp
import pytest

import ebm_ppl
from ebm_ppl import ImproperTargetWarning, StepSizeWarning

PRECISION = jnp.array([1.0, 10.0])  # λ_max = 10: ULA is stable for h < 0.2


def quadratic(x):
    return 0.5 * jnp.sum(PRECISION * x**2)


def _run(energy, kernel, init=None):
    pot = ebm_ppl.Potential.from_energy(energy)
    init = jnp.ones(2) if init is None else init
    return ebm_ppl.sample(pot, kernel, init, num_samples=5, num_warmup=0, progress=False)


def test_ula_step_above_stability_limit_warns():
    with pytest.warns(StepSizeWarning, match=r"2/λ_max ≈ 0.2") as record:
        idata = _run(quadratic, ebm_ppl.kernels.ula(0.21))
    assert len([w for w in record if w.category is StepSizeWarning]) == 1
    assert idata.posterior["x"].shape == (4, 5, 2)  # a warning, not an error


def test_ula_step_below_limit_and_exact_kernels_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ula = _run(quadratic, ebm_ppl.kernels.ula(0.19))
        mala = _run(quadratic, ebm_ppl.kernels.mala(0.5))  # the limit is a ULA matter
    assert ula.posterior["x"].shape == mala.posterior["x"].shape == (4, 5, 2)


@pytest.mark.parametrize("init", [jnp.zeros(2), jnp.array([3.0, -2.0])])
def test_linear_energy_is_flagged_improper(init):
    theta = jnp.array([1.0, -0.5])
    with pytest.warns(ImproperTargetWarning, match="improper") as record:
        _run(lambda x: jnp.dot(theta, x), ebm_ppl.kernels.mala(0.1), init)
    assert any(w.category is ImproperTargetWarning for w in record)


def test_proper_targets_are_not_flagged():
    def heavy_tailed(x):  # Student-t like: proper, log density decreases away from 0
        return 1.5 * jnp.log1p(jnp.sum(x**2))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runs = [_run(heavy_tailed, ebm_ppl.kernels.mala(0.1), jnp.array([2.0, 1.0])),
                _run(quadratic, ebm_ppl.kernels.mala(0.1), jnp.array([2.0, 1.0]))]
    assert all(run.posterior["x"].shape == (4, 5, 2) for run in runs)


def test_check_target_false_silences_the_probe():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pot = ebm_ppl.Potential.from_energy(quadratic)
        idata = ebm_ppl.sample(pot, ebm_ppl.kernels.ula(0.5), jnp.ones(2), num_samples=5,
                               num_warmup=0, progress=False, check_target=False)
    assert idata.posterior["x"].shape == (4, 5, 2)
