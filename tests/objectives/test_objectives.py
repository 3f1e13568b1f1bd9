"""Tests of ebm_ppl.objectives: closed-form recovery, gradients, state, user loops, errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import optax
import pytest
from scipy.stats import norm

from ebm_ppl import fit
from ebm_ppl.kernels import mala, ula
from ebm_ppl.objectives import (
    CDState,
    EmptyState,
    contrastive_divergence,
    denoising_score_matching,
    nce,
    nce_params,
    score_matching,
    sliced_score_matching,
)

# ----------------------------------------------------------------------- fixtures
TRUE_MEAN = np.array([1.0, -2.0])
TRUE_SCALE = np.array([0.5, 2.0])
N_DATA = 10_000
ALPHA = 1e-3


def gaussian_energy(params, x):
    """E(x) = ½ (x-μ)ᵀ diag(P) (x-μ), P = exp(log_prec)."""
    return 0.5 * jnp.sum(jnp.exp(params["log_prec"]) * (x - params["mu"]) ** 2)


def init_params():
    return {"mu": jnp.zeros(2), "log_prec": jnp.zeros(2)}


def gaussian_data(n=N_DATA, seed=0):
    rng = np.random.default_rng(seed)
    return TRUE_MEAN + TRUE_SCALE * rng.normal(size=(n, 2))


def z_crit(num_checks):
    """Bonferroni two-sided critical value at family-wise level ALPHA."""
    return norm.ppf(1 - ALPHA / (2 * num_checks))


def mlp_energy(params, x):
    """A tiny 2 -> 8 -> 1 tanh network (smooth, so Hessians are meaningful)."""
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.sum(h @ params["w2"]) + 0.1 * jnp.sum(x**2)


def mlp_params(seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    return {
        "w1": jax.random.normal(k1, (2, 8)) / np.sqrt(2),
        "b1": jax.random.normal(k2, (8,)) * 0.1,
        "w2": jax.random.normal(k3, (8, 1)) / np.sqrt(8),
    }


# ----------------------------------------------------------------------- closed form
# Each run is full-batch Adam with a cosine-decayed rate, so the optimisation error is
# negligible; the error left is the data's sampling error (sd of the MLE: s/sqrt(n) for
# the mean, P*sqrt(2/n) for the precision) inflated by the objective's own Monte-Carlo
# noise (`inflation`, the ratio of its asymptotic sd to the MLE's).
STEPS = 300
RECOVERY = {
    # name: (objective, expected precision as a function of the data variance, inflation)
    # (DSM's z/σ term makes its gradient noise grow like 1/σ: σ = 0.1 keeps it moderate;
    # its known bias, precision 1/(s² + σ²), is part of the expectation)
    "score_matching": (score_matching(), lambda var: 1 / var, 1.0),
    "dsm": (denoising_score_matching(0.1), lambda var: 1 / (var + 0.1**2), 3.0),
    "ssm_gaussian": (sliced_score_matching(2), lambda var: 1 / var, 1.5),
    "nce": (nce(), lambda var: 1 / var, 2.0),
}


@pytest.mark.parametrize(
    "name", [n if n != "nce" else pytest.param(n, marks=pytest.mark.slow) for n in RECOVERY])
def test_recovers_gaussian_parameters(name):
    objective, expected_precision, inflation = RECOVERY[name]
    data = gaussian_data()
    optimizer = optax.adam(optax.cosine_decay_schedule(0.3, STEPS, alpha=0.01))
    result = fit(gaussian_energy, init_params(), data, objective, optimizer,
                 num_steps=STEPS, batch_size=N_DATA, progress=False)
    mu = np.asarray(result.params["mu"])
    prec = np.exp(np.asarray(result.params["log_prec"]))
    sample_var = data.var(0)
    z = z_crit(4)
    # against the truth, with the data's sampling error
    sd_mu = inflation * TRUE_SCALE / np.sqrt(N_DATA)
    true_prec = expected_precision(TRUE_SCALE**2)
    sd_prec = inflation * true_prec * np.sqrt(2 / N_DATA)
    assert np.all(np.abs(mu - TRUE_MEAN) < z * sd_mu), (mu, TRUE_MEAN)
    assert np.all(np.abs(prec - true_prec) < z * sd_prec), (prec, true_prec)
    assert np.all(np.abs(prec / true_prec - 1) < 0.05)  # "within a few percent"
    if name == "score_matching":
        # SM is exactly the MLE for a Gaussian: only optimisation error remains, and it
        # is a small fraction (1/4) of the MLE's standard error
        sample_prec = expected_precision(sample_var)
        assert np.all(np.abs(mu - data.mean(0)) < 0.25 * TRUE_SCALE / np.sqrt(N_DATA))
        assert np.all(np.abs(prec / sample_prec - 1) < 0.25 * np.sqrt(2 / N_DATA))
    if name == "nce":
        # self-normalisation: log Z matches the learned energy's log normaliser and the
        # true one (log Z = d/2 log 2π - ½ Σ log P)
        log_z = float(result.trained_params["log_z"])
        analytic = np.log(2 * np.pi) - 0.5 * np.sum(np.log(prec))
        truth = np.log(2 * np.pi) + np.sum(np.log(TRUE_SCALE))
        assert abs(log_z - analytic) < 0.05
        assert abs(log_z - truth) < 0.05
        # the history records log_z before each update
        np.testing.assert_allclose(result.history["log_z"][-1], log_z, atol=1e-3)


def test_multiscale_dsm_with_noise_conditional_energy():
    """E(x, σ) = ½ (x-μ)²/(v+σ²) is the exact noisy-data energy at every level: v → s²."""
    sigmas = (1.0, 0.5, 0.1)
    seen = []

    def conditional_energy(params, x, sigma):
        seen.append(sigma.shape)
        var = jnp.exp(params["log_var"]) + sigma**2
        return 0.5 * jnp.sum((x - params["mu"]) ** 2 / var)

    data = gaussian_data(n=5000)
    params = {"mu": jnp.zeros(2), "log_var": jnp.zeros(2)}
    objective = denoising_score_matching(sigmas, noise_conditional=True)
    optimizer = optax.adam(optax.cosine_decay_schedule(0.1, STEPS, alpha=0.01))
    result = fit(conditional_energy, params, data, objective, optimizer,
                 num_steps=STEPS, batch_size=5000, progress=False)
    assert seen and all(shape == () for shape in seen)
    var = np.exp(np.asarray(result.params["log_var"]))
    np.testing.assert_allclose(var, TRUE_SCALE**2, rtol=0.1)
    np.testing.assert_allclose(result.params["mu"], TRUE_MEAN, atol=0.1)
    assert np.all(np.isin(np.round(result.history["sigma"], 3), np.round(sigmas, 3)) |
                  (result.history["sigma"] < 1.0))


@pytest.mark.slow
def test_pcd_with_mala_recovers_gaussian_parameters():
    data = gaussian_data(n=5000)
    objective = contrastive_divergence(mala(0.3), num_steps=20, buffer_size=2000,
                                       reinit_prob=0.02, energy_regularization=0.0)
    steps = 3000
    optimizer = optax.adam(optax.cosine_decay_schedule(0.02, steps, alpha=0.01))
    result = fit(gaussian_energy, init_params(), data, objective, optimizer,
                 num_steps=steps, batch_size=500, progress=False)
    prec = np.exp(np.asarray(result.params["log_prec"]))
    np.testing.assert_allclose(result.params["mu"], TRUE_MEAN, atol=0.15)
    np.testing.assert_allclose(prec, 1 / TRUE_SCALE**2, rtol=0.1)
    assert 0.3 < result.history["acceptance_rate"][-100:].mean() <= 1.0


# ----------------------------------------------------------------------- gradients
def dense_sm_loss(params, batch):
    """Independent implementation: dense Hessian via jax.hessian."""
    def per(x):
        g = jax.grad(mlp_energy, argnums=1)(params, x)
        h = jax.hessian(mlp_energy, argnums=1)(params, x)
        return 0.5 * jnp.sum(g**2) - jnp.trace(h)
    return jnp.mean(jax.vmap(per)(batch))


def dense_ssm_loss(params, batch, v, variance_reduced):
    def per(x, vs):
        g = jax.grad(mlp_energy, argnums=1)(params, x)
        h = jax.hessian(mlp_energy, argnums=1)(params, x)
        quad = jnp.einsum("pi,ij,pj->p", vs, h, vs)
        first = 0.5 * jnp.sum(g**2) if variance_reduced else jnp.mean(0.5 * (vs @ g) ** 2)
        return first - jnp.mean(quad)
    return jnp.mean(jax.vmap(per)(batch, v))


@pytest.fixture(scope="module")
def small_batch():
    return jax.random.normal(jax.random.key(42), (16, 2))


def test_score_matching_matches_dense_hessian(small_batch):
    params = mlp_params()
    key = jax.random.key(0)
    (value, _), grads = jitted(score_matching())[1](params, small_batch, key, mlp_energy)
    ref_value, ref_grads = jax.jit(jax.value_and_grad(dense_sm_loss))(params, small_batch)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5, atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                 grads, ref_grads)


@pytest.mark.parametrize("variance_reduced", [True, False])
@pytest.mark.parametrize("projection", ["gaussian", "rademacher"])
def test_sliced_score_matching_matches_dense_hessian(small_batch, variance_reduced, projection):
    params = mlp_params()
    key = jax.random.key(3)
    objective = sliced_score_matching(3, variance_reduced, projection=projection)
    (value, _), grads = jitted(objective)[1](params, small_batch, key, mlp_energy)
    shape = (small_batch.shape[0], 3, 2)
    v = (jax.random.normal(key, shape) if projection == "gaussian"
         else jax.random.rademacher(key, shape, jnp.float32))
    ref_value, ref_grads = jax.jit(jax.value_and_grad(dense_ssm_loss), static_argnums=3)(
        params, small_batch, v, variance_reduced)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5, atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                 grads, ref_grads)


def test_sliced_score_matching_is_unbiased_for_score_matching(small_batch):
    """Averaged over many projections, SSM's value tends to SM's (MC error bound)."""
    params = mlp_params()
    sm_value = score_matching().loss(params, small_batch, jax.random.key(0), mlp_energy)[0]
    objective = sliced_score_matching(1, projection="gaussian")
    values = jax.jit(jax.vmap(lambda k: objective.loss(params, small_batch, k, mlp_energy)[0]))(
        jax.random.split(jax.random.key(1), 2000))
    mcse = np.std(values) / np.sqrt(values.size)
    assert abs(np.mean(values) - sm_value) < z_crit(1) * mcse


def jitted(objective):
    """The objective's loss (and its gradient), jitted with energy_fn static."""
    return jax.jit(objective.loss, static_argnums=3), jax.jit(
        jax.value_and_grad(objective.loss, has_aux=True), static_argnums=3)


def directional_fd(loss_fn, params, eps=1e-3):
    """Central finite difference of loss_fn along a fixed random direction."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(99), len(leaves))
    direction = jax.tree.unflatten(
        treedef, [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)])
    shift = lambda s: jax.tree.map(lambda p, d: p + s * d, params, direction)  # noqa: E731
    params64 = lambda t: jax.tree.map(lambda x: np.asarray(x, np.float64), t)  # noqa: E731
    fd = (float(loss_fn(shift(eps))) - float(loss_fn(shift(-eps)))) / (2 * eps)
    grads = jax.grad(loss_fn)(params)
    analytic = sum(np.sum(params64(g) * params64(d)) for g, d in
                   zip(jax.tree.leaves(grads), jax.tree.leaves(direction), strict=True))
    return fd, analytic


# CD is checked against its defining formula (tests/objectives/): its *value* depends on the params
# through the negatives too, a dependence its gradient deliberately drops.
@pytest.mark.parametrize("name", ["dsm", "dsm_multiscale", "nce", "nce_numpyro"])
def test_gradients_match_finite_differences(small_batch, name):
    params = mlp_params()
    key = jax.random.key(7)
    objectives = {
        "dsm": denoising_score_matching(0.3),
        "dsm_multiscale": denoising_score_matching([1.0, 0.3]),
        "nce": nce(),
        "nce_numpyro": nce(dist.Normal(jnp.zeros(2), 2.0).to_event(1), noise_ratio=2),
    }
    objective = objectives[name]
    trainable = objective.to_trainable(params)
    state = objective.init(jax.random.key(1), trainable, small_batch)

    @jax.jit
    def loss_fn(p):
        return objective.loss(p, small_batch, key, mlp_energy, state)[0]

    fd, analytic = directional_fd(loss_fn, trainable)
    np.testing.assert_allclose(fd, analytic, rtol=2e-2, atol=2e-3)


# CD's gradient against its defining formula (data mean of ∇θE minus the negatives'
# mean, by hand, with and without the energy penalty) is in the default run:
# tests/objectives/test_contrastive_divergence_reference.py.


# ----------------------------------------------------------------------- CD state
def test_cd_buffer_is_threaded_state():
    data = jnp.asarray(gaussian_data(n=100))
    objective = contrastive_divergence(ula(0.01), 2, buffer_size=50, reinit_prob=0.0,
                                       num_negatives=20)
    state = objective.init(jax.random.key(0), init_params(), data)
    assert isinstance(state, CDState) and state.buffer.shape == (50, 2)
    # the initial buffer is uniform over the data range
    assert jnp.all(state.buffer >= data.min(0)) and jnp.all(state.buffer <= data.max(0))
    loss = jitted(objective)[0]
    _, (_, s1) = loss(init_params(), data, jax.random.key(1), gaussian_energy, state)
    assert int(s1.pointer) == 20
    np.testing.assert_array_equal(s1.buffer[20:], state.buffer[20:])
    assert not np.array_equal(s1.buffer[:20], state.buffer[:20])
    _, (_, s2) = loss(init_params(), data, jax.random.key(2), gaussian_energy, s1)
    _, (_, s3) = loss(init_params(), data, jax.random.key(3), gaussian_energy, s2)
    assert int(s3.pointer) == 10  # cyclic: 60 mod 50
    # the loss is pure: same inputs, same outputs
    again = loss(init_params(), data, jax.random.key(1), gaussian_energy, state)
    np.testing.assert_array_equal(again[1][1].buffer, s1.buffer)


def test_cd_reinit_with_numpyro_init_distribution():
    noise = dist.Normal(jnp.full(2, 100.0), 0.01).to_event(1)
    objective = contrastive_divergence(ula(1e-6), 1, buffer_size=40, reinit_prob=1.0,
                                       init_distribution=noise)
    state = objective.init(jax.random.key(0), init_params())  # shape from the distribution
    state = state._replace(buffer=jnp.zeros_like(state.buffer))
    data = jnp.asarray(gaussian_data(n=40))
    _, (_, new) = jitted(objective)[0](init_params(), data, jax.random.key(1), gaussian_energy,
                                       state)
    np.testing.assert_allclose(new.buffer, 100.0, atol=0.1)  # every chain restarted


def test_empty_state_and_stateless_call(small_batch):
    objective = score_matching()
    state = objective.init(jax.random.key(0), mlp_params())
    assert state == EmptyState() and jax.tree.leaves(state) == []
    out = objective.loss(mlp_params(), small_batch, jax.random.key(0), mlp_energy)
    assert out[1][1] == EmptyState()


# ----------------------------------------------------------------------- user loop
@pytest.mark.parametrize("name", ["sm", "pcd", "nce"])
def test_user_written_optax_loop(name):
    """Each objective works in a hand-written jit + lax.scan optax loop (no fit)."""
    data = jnp.asarray(gaussian_data(n=2000))
    objective = {
        "sm": score_matching(),
        "pcd": contrastive_divergence(ula(0.05), 10, buffer_size=512),
        "nce": nce(),
    }[name]
    params = objective.to_trainable(init_params())
    key_init, key_loop = jax.random.split(jax.random.key(0))
    state = objective.init(key_init, params, data)
    optimizer = optax.adam(0.05)
    opt_state = optimizer.init(params)

    @jax.jit
    def train(params, opt_state, state, key):
        def step(carry, k):
            params, opt_state, state = carry
            k_batch, k_loss = jax.random.split(k)
            batch = data[jax.random.choice(k_batch, data.shape[0], (256,), replace=False)]
            (value, (metrics, state)), grads = jax.value_and_grad(
                objective.loss, has_aux=True)(params, batch, k_loss, gaussian_energy, state)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, state), value
        return jax.lax.scan(step, (params, opt_state, state), jax.random.split(key, 300))

    (params, _, _), values = train(params, opt_state, state, key_loop)
    mu = objective.to_energy_params(params)["mu"]
    np.testing.assert_allclose(mu, TRUE_MEAN, atol=0.25)
    if name == "nce":
        assert set(params) == {"energy", "log_z"}


@pytest.mark.parametrize("sigma", [0.0, 0.5])
@pytest.mark.parametrize("name", ["sm", "ssm"])
def test_score_matching_with_noise_targets_the_smoothed_law(name, sigma):
    """On 1-D data of variance s², E = x²/(2v) has loss m₂/(2v²) − 1/v with m₂ the mean
    square of the (noisy) batch; so m₂ read off the loss must be s² + σ² up to its
    Monte-Carlo error sd = (s² + σ²) √(2/n) (Rademacher projections: v²=1 exactly)."""
    n, s2 = 200_000, 2.0
    obj = (score_matching(sigma=sigma) if name == "sm"
           else sliced_score_matching(projection="rademacher", sigma=sigma))
    x = jnp.sqrt(s2) * jax.random.normal(jax.random.key(0), (n, 1))
    target = s2 + sigma**2
    value, _ = obj.loss(jnp.log(target), x, jax.random.key(1),
                        lambda p, y: 0.5 * jnp.sum(y**2) / jnp.exp(p))
    m2 = 2 * target**2 * (float(value) + 1 / target)
    z = (m2 - target) / (target * np.sqrt(2 / n))
    assert abs(z) < 4, (m2, target, z)
    if sigma == 0.0:  # exact SM draws no noise: the key does not matter
        again, _ = obj.loss(jnp.log(target), x, jax.random.key(2),
                            lambda p, y: 0.5 * jnp.sum(y**2) / jnp.exp(p))
        assert name == "ssm" or float(again) == float(value)


# ----------------------------------------------------------------------- failures
@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: denoising_score_matching(-0.1), "sigma must be finite and > 0"),
        (lambda: denoising_score_matching([]), "non-empty sequence"),
        (lambda: denoising_score_matching("a"), "sigma must be a number > 0"),
        (lambda: score_matching(sigma=-0.1), "sigma must be a finite number >= 0"),
        (lambda: sliced_score_matching(sigma=float("nan")), "sigma must be a finite number"),
        (lambda: sliced_score_matching(0), "num_projections must be an integer >= 1, got 0"),
        (lambda: sliced_score_matching(projection="sphere"),
         r"projection must be one of \('gaussian', 'rademacher'\), got 'sphere'"),
        (lambda: nce(noise_ratio=0), "noise_ratio must be an integer >= 1"),
        (lambda: contrastive_divergence(ula(0.1), 0), "num_steps must be an integer >= 1"),
        (lambda: contrastive_divergence(ula(0.1), 5, reinit_prob=1.5),
         r"reinit_prob must be a number in \[0, 1\], got 1.5"),
        (lambda: contrastive_divergence(ula(0.1), 5, energy_regularization=-1),
         "energy_regularization must be a finite number >= 0"),
        (lambda: contrastive_divergence(ula(0.1), 5, buffer_size=10, num_negatives=20),
         "num_negatives must be <= buffer_size=10, got 20"),
    ],
)
def test_factories_reject_bad_arguments(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: nce(noise="gauss"), "noise must be a NumPyro distribution"),
        (lambda: contrastive_divergence("ula", 5), "kernel must be an ebm_ppl.kernels kernel"),
        (lambda: contrastive_divergence(ula(0.1), 5, init_distribution=3),
         "init_distribution must be a NumPyro distribution or None, got int"),
    ],
)
def test_factories_reject_wrong_types(factory, match):
    with pytest.raises(TypeError, match=match):
        factory()


def test_nce_params_are_lifted_once():
    """to_trainable of already-lifted NCE parameters is the identity (fit may get either)."""
    objective = nce()
    lifted = objective.to_trainable(init_params())
    assert set(lifted) == {"energy", "log_z"}
    assert objective.to_trainable(lifted) is lifted
    assert objective.to_energy_params(lifted) is lifted["energy"]


def test_runtime_errors_are_clear(small_batch):
    with pytest.raises(ValueError, match="nce params must be the dict"):
        nce().loss(mlp_params(), small_batch, jax.random.key(0), mlp_energy, None)
    with pytest.raises(ValueError, match="needs data to fit it"):
        nce().init(jax.random.key(0), nce_params(mlp_params()))
    cd = contrastive_divergence(ula(0.1), 2)
    with pytest.raises(ValueError, match="needs data"):
        cd.init(jax.random.key(0), mlp_params())
    with pytest.raises(ValueError, match="persistent contrastive_divergence needs its state"):
        cd.loss(mlp_params(), small_batch, jax.random.key(0), mlp_energy)
    small = contrastive_divergence(ula(0.1), 2, buffer_size=8)
    state = small.init(jax.random.key(0), mlp_params(), small_batch)
    with pytest.raises(ValueError, match=r"batch of negatives \(16\) is larger than the replay"):
        small.loss(mlp_params(), small_batch, jax.random.key(0), mlp_energy, state)
