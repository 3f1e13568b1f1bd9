"""The guard against EnergyDistribution sites whose parameters depend on latent sites.

Law: with ``s ~ HalfNormal(3)`` and ``x ~ EnergyDistribution(0.5 x^2 / s^2, params=s)``
observed, the model's density omits ``-n log Z(s) = -n log(s sqrt(2 pi))``, so every
ordinary sampler targets a wrong posterior. Every route (NumPyro NUTS and HMC,
``Potential.from_model``, the ebm_ppl NumPyro kernels) must raise
``IntractableNormaliserError`` naming the site; fixed parameters, parameters computed
from data only and latent energy sites with fixed parameters stay allowed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import HMC, MCMC, NUTS

import ebm_ppl
from ebm_ppl.model.distribution import intractable_sites
from ebm_ppl.numpyro import MH, ULA, BlackJAXKernel, EnergyDistribution

DATA = 2.0 * jax.random.normal(jax.random.key(0), (40, 1))
MATCH = r"site\(s\) \['x'\].*normaliser log Z.*ebm_ppl\.numpyro\.Exchange"


def scale_energy(s, x):
    """``E_s(x) = |x|^2 / (2 s^2)``: a Gaussian of scale ``s``, ``Z(s) = s sqrt(2 pi)``."""
    return 0.5 * jnp.sum(x**2) / s**2


def latent_scale(x):
    """The trap: the energy's parameter is a latent site."""
    s = numpyro.sample("s", dist.HalfNormal(3.0))
    numpyro.sample("x", EnergyDistribution(scale_energy, params=s, event_shape=(1,)), obs=x)


def latent_temperature(x):
    """Same trap through the temperature: ``p ∝ exp(-E/T)`` with ``T`` latent."""
    t = numpyro.sample("t", dist.HalfNormal(3.0))
    energy = EnergyDistribution(lambda x: 0.5 * jnp.sum(x**2), event_shape=(1,), temperature=t)
    numpyro.sample("x", energy, obs=x)


def allowed(x):
    """Fixed params, params from data only, and a latent energy site with fixed params."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("z", EnergyDistribution(scale_energy, params=2.0, event_shape=(1,)))
    data_scale = jnp.std(x)
    energy = EnergyDistribution(lambda p, v: scale_energy(p, v - mu), params=data_scale,
                                event_shape=(1,))
    numpyro.sample("x", energy, obs=x)


@pytest.mark.parametrize("kernel_cls", [NUTS, HMC], ids=["NUTS", "HMC"])
def test_numpyro_gradient_kernels_raise_naming_the_site(kernel_cls):
    """NumPyro's own NUTS/HMC stop at model initialisation (first gradient): the
    custom-JVP guard on the params receives a non-zero tangent."""
    mcmc = MCMC(kernel_cls(latent_scale), num_warmup=5, num_samples=5, progress_bar=False)
    with pytest.raises(ebm_ppl.IntractableNormaliserError, match=MATCH):
        mcmc.run(jax.random.key(1), DATA)


def test_temperature_is_guarded_too():
    mcmc = MCMC(NUTS(latent_temperature), num_warmup=5, num_samples=5, progress_bar=False)
    with pytest.raises(ebm_ppl.IntractableNormaliserError, match=r"\['x'\]"):
        mcmc.run(jax.random.key(1), DATA)
    with pytest.raises(ebm_ppl.IntractableNormaliserError, match=r"\['x'\]"):
        ebm_ppl.Potential.from_model(latent_temperature, DATA)


def test_from_model_raises_before_any_gradient():
    """The trace-time check (no differentiation) names the site; gradient-free samplers
    built on from_model (MH) are stopped here."""
    with pytest.raises(ebm_ppl.IntractableNormaliserError, match=MATCH):
        ebm_ppl.Potential.from_model(latent_scale, DATA)
    assert intractable_sites(latent_scale, (DATA,)) == {"x": True}
    assert intractable_sites(allowed, (DATA,)) == {}


@pytest.mark.parametrize(
    "make", [lambda m: MH(m, proposal=0.3),
             lambda m: ULA(m, step_size=0.01),
             lambda m: BlackJAXKernel("mala", m, step_size=0.01)],
    ids=["MH", "ULA", "BlackJAX-mala"],
)
def test_ebm_ppl_numpyro_kernels_raise(make):
    """The ebm_ppl NumPyro kernels raise, gradient-free MH included."""
    mcmc = MCMC(make(latent_scale), num_warmup=5, num_samples=5, progress_bar=False)
    with pytest.raises(ebm_ppl.IntractableNormaliserError, match=r"\['x'\]"):
        mcmc.run(jax.random.key(1), DATA)


def test_latent_energy_site_with_latent_params_is_caught():
    """A latent EnergyDistribution whose params are latent is also doubly intractable."""
    def model():
        s = numpyro.sample("s", dist.HalfNormal(3.0))
        numpyro.sample("w", EnergyDistribution(scale_energy, params=s, event_shape=(1,)))

    assert intractable_sites(model) == {"w": False}
    with pytest.raises(ebm_ppl.IntractableNormaliserError, match=r"\['w'\]"):
        ebm_ppl.Potential.from_model(model)


def test_differentiating_log_prob_in_params_raises():
    """Training through ``log_prob`` (missing ``grad log Z``) raises; the energy itself is
    differentiable as usual."""
    x = jnp.ones((3, 1))

    def nll(s):
        return -EnergyDistribution(scale_energy, params=s, event_shape=(1,)).log_prob(x).sum()

    with pytest.raises(ebm_ppl.IntractableNormaliserError, match="EnergyDistribution site"):
        jax.grad(nll)(1.5)
    np.testing.assert_allclose(nll(1.5), 3 * 0.5 / 1.5**2, rtol=1e-6)
    np.testing.assert_allclose(jax.grad(scale_energy)(1.5, x[0]), -1.0 / 1.5**3, rtol=1e-6)


def test_allowed_cases_build():
    """Fixed/data-only params and a latent energy site with fixed params: from_model
    builds and differentiates (the guard does not fire)."""
    pot = ebm_ppl.Potential.from_model(allowed, DATA)
    z = {"mu": jnp.asarray(0.1), "z": jnp.asarray([0.3])}
    assert np.isfinite(pot.logdensity_fn(z))
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(pot.score(z)))


@pytest.mark.slow
def test_allowed_cases_run_with_nuts():
    """NumPyro NUTS runs on the allowed model."""
    mcmc = MCMC(NUTS(allowed), num_warmup=20, num_samples=20, progress_bar=False)
    mcmc.run(jax.random.key(2), DATA)
    assert set(mcmc.get_samples()) == {"mu", "z"}


def test_exchange_kernel_is_not_stopped():
    """The supported route: the guard does not fire under ebm_ppl.numpyro.Exchange (its
    initialisation traces the model; sampling is tested in test_exchange.py)."""
    kernel = ebm_ppl.numpyro.Exchange(latent_scale, inner_steps=3)
    state = kernel.init(jax.random.key(3), 5, None, (DATA,), {})
    assert kernel.sites == ("x",)
    assert np.isfinite(state.potential_energy)
