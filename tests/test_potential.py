"""Tests of ``ebm_ppl.Potential``: sign conventions, temperature, parameters, log
densities and NumPyro models, sampled end to end and read by ArviZ.

Laws tested
-----------
* ``potential = E/T = -logdensity`` and ``score = -grad E / T`` (exact identities).
* Model ``mu ~ N(0, 1)``, ``s ~ HalfNormal(1)``, ``y_i ~ N(mu, 1)`` (20 observations):
  posterior ``mu ~ N(sum(y) / 21, 1 / 21)`` and ``s ~ HalfNormal(1)`` (mean
  ``sqrt(2/pi)``, variance ``1 - 2/pi``), through NUTS in the unconstrained space.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import arviz as az  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
import pytest  # noqa: E402
from conftest import assert_z, count_compiles  # noqa: E402

import ebm_ppl  # noqa: E402
from ebm_ppl import kernels  # noqa: E402


def quadratic(params, x):
    """``E(params, x) = a * |x - b|^2 / 2`` with ``params = {"a", "b"}``."""
    return 0.5 * params["a"] * jnp.sum((x - params["b"]) ** 2)


X = jnp.array([0.3, -1.2, 2.0])


def test_signs_of_energy_potential():
    """``logdensity = -E/T``, ``potential = E/T``, ``energy_fn = E``, ``score = -grad E/T``."""
    params = {"a": jnp.asarray(2.0), "b": jnp.asarray(0.5)}
    for temperature in (1.0, 0.5, 3.0):
        pot = ebm_ppl.Potential.from_energy(quadratic, params, temperature=temperature)
        energy = quadratic(params, X)
        np.testing.assert_allclose(pot.logdensity_fn(X), -energy / temperature, rtol=1e-6)
        np.testing.assert_allclose(pot.potential_fn(X), energy / temperature, rtol=1e-6)
        np.testing.assert_allclose(pot.energy_fn(X), energy, rtol=1e-6)
        grad_energy = jax.grad(quadratic, argnums=1)(params, X)
        np.testing.assert_allclose(pot.score(X), -grad_energy / temperature, rtol=1e-6)
        np.testing.assert_allclose(pot.score(X), -2.0 * (X - 0.5) / temperature, rtol=1e-6)


def test_with_params_changes_values_without_retracing():
    """``with_params`` swaps parameter values; a jitted consumer is traced once."""
    pot = ebm_ppl.Potential.from_energy(quadratic, {"a": 1.0, "b": 0.0})
    traces = []

    @jax.jit
    def logdensity(pot, x):
        traces.append(1)
        return pot.logdensity_fn(x)

    first = logdensity(pot, X)
    second = logdensity(pot.with_params({"a": 3.0, "b": 1.0}), X)
    np.testing.assert_allclose(first, -0.5 * jnp.sum(X**2), rtol=1e-6)
    np.testing.assert_allclose(second, -1.5 * jnp.sum((X - 1.0) ** 2), rtol=1e-6)
    assert len(traces) == 1
    with pytest.raises(ValueError, match="built without params"):
        ebm_ppl.Potential.from_energy(lambda x: jnp.sum(x**2)).with_params({"a": 1.0})


def test_from_logdensity_signs():
    """A log density is used as is: ``potential = -log p``, ``score = grad log p``."""
    pot = ebm_ppl.Potential.from_logdensity(lambda x: -jnp.sum(jnp.abs(x)))
    np.testing.assert_allclose(pot.logdensity_fn(X), -3.5, rtol=1e-6)
    np.testing.assert_allclose(pot.potential_fn(X), 3.5, rtol=1e-6)
    np.testing.assert_allclose(pot.score(X), -jnp.sign(X), rtol=1e-6)


def test_from_energy_validation():
    """Non-scalar energies (with ``example``), bad temperatures and non-callables raise."""
    with pytest.raises(ValueError, match="must return a scalar, got shape"):
        ebm_ppl.Potential.from_energy(lambda x: x**2, example=jnp.zeros(2))
    with pytest.raises(ValueError, match="must return a scalar"):
        ebm_ppl.Potential.from_logdensity(lambda x: x, example=jnp.zeros(3))
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature must be a finite scalar > 0"):
            ebm_ppl.Potential.from_energy(lambda x: jnp.sum(x**2), temperature=bad)
    with pytest.raises(TypeError, match="energy_fn must be callable"):
        ebm_ppl.Potential.from_energy(3.0)
    with pytest.raises(ValueError, match="could not be traced"):
        ebm_ppl.Potential.from_energy(lambda x: x @ jnp.ones((2, 2)) @ x, example=jnp.zeros(3))


def test_temperature_of_potential_tempers_the_law():
    """``p ∝ exp(-E/T)``: ULA-free check on a Gaussian, ``score`` of ``E = |x|^2/2`` at
    ``T`` is ``-x/T``, i.e. the tempered law is ``N(0, T I)``."""
    pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), temperature=4.0)
    np.testing.assert_allclose(pot.score(X), -X / 4.0, rtol=1e-6)


# ------------------------------------------------------------------ NumPyro model
Y = np.asarray(
    jax.random.normal(jax.random.key(2024), (20,)) + 0.8, dtype=np.float32
)  # 20 observations


def model(y):
    """``mu ~ N(0, 1)``, ``s ~ HalfNormal(1)`` (not in the likelihood), ``y ~ N(mu, 1)``."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("s", dist.HalfNormal(1.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


@pytest.fixture(scope="module")
def model_idata():
    """NUTS on the model through ``ebm_ppl.sample`` with ``init=None`` (model init)."""
    pot = ebm_ppl.Potential.from_model(model, jnp.asarray(Y))
    return ebm_ppl.sample(
        pot, kernels.nuts(0.5), None, num_samples=1000, num_warmup=150, num_chains=4,
        seed=301, progress=False,
    )


@pytest.mark.slow
def test_from_model_posterior_closed_form(model_idata):
    """Sites are named as in the model and constrained (``s > 0``); the posterior matches
    ``mu ~ N(sum y / 21, 1/21)`` and ``s ~ HalfNormal(1)``: 4 checks (means, variances)
    with ``mcse = sd / sqrt(ESS)``."""
    post = model_idata.posterior
    assert set(post.data_vars) == {"mu", "s"}
    assert post["mu"].dims == ("chain", "draw")
    assert np.all(post["s"].values > 0)
    mu_mean, mu_var = float(Y.sum() / 21.0), 1.0 / 21.0
    s_mean, s_var = float(np.sqrt(2.0 / np.pi)), 1.0 - 2.0 / np.pi
    est, tru, se, labels = [], [], [], []
    for name, mean, var in (("mu", mu_mean, mu_var), ("s", s_mean, s_var)):
        draws = post[name].values.astype(np.float64)
        for label, values, truth in (("mean", draws, mean), ("var", (draws - mean) ** 2, var)):
            est.append(values.mean())
            tru.append(truth)
            se.append(values.std(ddof=1) / np.sqrt(float(az.ess(values))))
            labels.append(f"{label}[{name}]")
    assert_z(est, tru, se, labels)
    assert np.all(az.rhat(model_idata).to_array().values < 1.05)


@pytest.mark.slow
def test_arviz_works_on_model_result(model_idata):
    """``az.summary``, ``az.plot_trace`` and ``az.plot_energy`` accept the result."""
    summary = az.summary(model_idata)
    assert {"mu", "s"} <= set(summary.index)
    assert {"mean", "sd", "ess_bulk", "r_hat"} <= set(summary.columns)
    az.plot_trace(model_idata)
    az.plot_energy(model_idata)
    plt.close("all")


def test_model_constrain_and_potential():
    """``constrain`` maps the unconstrained ``s`` through ``exp``; the potential includes
    the log-Jacobian: ``U(mu, log s) = -log N(mu) - log HN(s) - log s - sum log N(y|mu)``."""
    pot = ebm_ppl.Potential.from_model(model, jnp.asarray(Y))
    assert set(pot.example) == {"mu", "s"}
    z = {"mu": jnp.asarray(0.4), "s": jnp.asarray(np.log(0.7), dtype=jnp.float32)}
    np.testing.assert_allclose(pot.constrain(z)["s"], 0.7, rtol=1e-6)
    expected = -(
        dist.Normal(0.0, 1.0).log_prob(0.4)
        + dist.HalfNormal(1.0).log_prob(0.7)
        + jnp.log(0.7)
        + dist.Normal(0.4, 1.0).log_prob(jnp.asarray(Y)).sum()
    )
    np.testing.assert_allclose(pot.potential_fn(z), expected, rtol=1e-5)
    np.testing.assert_allclose(pot.logdensity_fn(z), -expected, rtol=1e-5)


@pytest.mark.slow
def test_model_second_call_compiles_nothing():
    """A second ``sample`` call on a model potential (another seed, ``init=None``) compiles
    nothing: constrain and the model's init strategy are compiled once."""
    pot = ebm_ppl.Potential.from_model(model, jnp.asarray(Y))

    def run(seed):
        return ebm_ppl.sample(pot, kernels.random_walk(0.5), None, num_samples=20, num_warmup=20,
                              num_chains=4, seed=seed, progress=False)

    run(0)
    with count_compiles() as compiled:
        run(1)
    assert compiled == []


def test_new_from_model_on_same_shaped_data_compiles_nothing():
    """Compile once: the data are traced leaves of a model potential and the model its
    static part, so a *new* ``from_model`` on other data of the same shape reuses every
    program of the first run."""
    def run(pot, seed):
        return ebm_ppl.sample(pot, kernels.random_walk(0.5), None, num_samples=20,
                              num_warmup=20, num_chains=4, seed=seed, progress=False)

    run(ebm_ppl.Potential.from_model(model, jnp.asarray(Y)), 0)
    with count_compiles() as compiled:
        pot = ebm_ppl.Potential.from_model(model, jnp.asarray(Y) + 1.0)
        idata = run(pot, 1)
    assert compiled == []
    assert set(idata.posterior.data_vars) == {"mu", "s"}
    np.testing.assert_allclose(pot.model_args[0], Y + 1.0, rtol=1e-6)
    assert pot.model is model and pot.model_kwargs == {}


def test_model_with_numpy_on_data_falls_back_to_a_closure():
    """A model that calls NumPy on its data cannot take traced data: it still works
    (NumPyro's closure over the data), with the same potential values."""
    def numpy_model(y):
        mu = numpyro.sample("mu", dist.Normal(float(np.mean(y)), 1.0))
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    pot = ebm_ppl.Potential.from_model(numpy_model, np.asarray(Y))
    z = {"mu": jnp.asarray(0.4)}
    expected = -(dist.Normal(float(np.mean(Y)), 1.0).log_prob(0.4)
                 + dist.Normal(0.4, 1.0).log_prob(jnp.asarray(Y)).sum())
    np.testing.assert_allclose(pot.potential_fn(z), expected, rtol=1e-5)
    assert pot.params is None


def test_energy_family_and_sign_helpers():
    """``from_energy_family``: ``log pi(theta) - sum_i E_theta(x_i)``; the one sign flip
    ``logdensity_from_energy(E, T) = -E/T``."""
    from ebm_ppl.potential import logdensity_from_energy, potential_from_logdensity

    data = jnp.array([[1.0, 2.0], [0.5, -1.0]])
    pot = ebm_ppl.Potential.from_energy_family(
        lambda tau, x: 0.5 * tau * jnp.sum(x**2), data, lambda tau: -tau)
    np.testing.assert_allclose(pot.logdensity_fn(jnp.asarray(2.0)), -2.0 - 6.25, rtol=1e-6)
    np.testing.assert_allclose(logdensity_from_energy(3.0, 2.0), -1.5)
    np.testing.assert_allclose(potential_from_logdensity(-1.5), 1.5)


def test_untraceable_energy_message_names_the_form_with_params():
    with pytest.raises(ValueError, match=r"on an example of shape .*fn\(params, x\)"):
        ebm_ppl.Potential.from_energy(lambda p, x: p["w"].foo(x), {"w": jnp.ones(2)},
                                      example=jnp.zeros(2))
    with pytest.raises(ValueError, match=r"on an example of shape .*fn\(x\), jax-traceable"):
        ebm_ppl.Potential.from_energy(lambda x: x.foo(), example=jnp.zeros(2))
