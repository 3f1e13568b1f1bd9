"""BlackJAXKernel / MH as drop-ins for NumPyro's HMC, NUTS and BarkerMH.

The models are those NumPyro's own MCMC suite checks (a Gaussian potential, correlated
Gaussians needing a dense mass matrix, logistic regression, conjugate Beta–Bernoulli,
Dirichlet–categorical and Beta–binomial posteriors, an improper prior, a change point),
written here with exact or asymptotic posterior moments and Monte-Carlo z-scores:
``z = |estimate - truth| / mcse``, ``mcse = sd / sqrt(ess)`` (ArviZ bulk ESS), variances as
means of ``(x - truth_mean)**2``; a check fails when ``z > norm.ppf(1 - alpha / (2k))``,
``alpha = 1e-3``, ``k`` the checks of the test. Heavy runs are ``slow``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from conftest import assert_z
from numpyro.infer import MCMC, init_to_value
from scipy.stats import norm

from ebm_ppl.adaptation import warmup_schedule
from ebm_ppl.numpyro import MH, BlackJAXKernel

ALPHA = 1e-3


def z_crit(num_checks: int) -> float:
    return float(norm.ppf(1.0 - ALPHA / (2 * num_checks)))


def z_scores(draws, mean, var):
    """z of the mean and of the mean squared deviation; ``draws`` is (chain, draw)."""
    draws = np.asarray(draws, np.float64)
    out = []
    for values, truth in ((draws, mean), ((draws - mean) ** 2, var)):
        mcse = values.std() / np.sqrt(float(az.ess(values)))
        out.append(abs(values.mean() - truth) / mcse)
    return out


def run(kernel, *args, num_warmup=500, num_samples=1000, num_chains=4, seed=0, **kwargs):
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(seed), *args, **kwargs)
    return mcmc


# ---------------------------------------------------------------- Gaussian potential
def shifted_potential(z):
    """N(1, 0.5^2): the potential of NumPyro's unnormalised-normal test."""
    return 0.5 * jnp.sum(((z - 1.0) / 0.5) ** 2)


GAUSSIAN_KERNELS = {
    "hmc": lambda dense: BlackJAXKernel("hmc", potential_fn=shifted_potential,
                                       trajectory_length=8.0, dense_mass=dense),
    "nuts": lambda dense: BlackJAXKernel("nuts", potential_fn=shifted_potential,
                                        dense_mass=dense),
    "mala": lambda dense: BlackJAXKernel("mala", potential_fn=shifted_potential),
    "mh": lambda dense: MH(potential_fn=shifted_potential, step_size=0.1),
}


@pytest.mark.parametrize("name, dense", [
    ("hmc", False), ("nuts", False), ("mala", False), ("mh", False),
    pytest.param("hmc", True, marks=pytest.mark.slow),
    pytest.param("nuts", True, marks=pytest.mark.slow),
])
@pytest.mark.slow
def test_gaussian_potential(name, dense):
    mcmc = run(GAUSSIAN_KERNELS[name](dense), init_params=jnp.zeros(4), num_warmup=400,
               num_samples=600)
    x = mcmc.get_samples(group_by_chain=True)
    z_mean, z_var = z_scores(x, 1.0, 0.25)
    assert max(z_mean, z_var) < z_crit(2), (z_mean, z_var)


@pytest.mark.slow
def test_hmc_with_trajectory_length_gets_the_sd_right():
    """NumPyro's unnormalised-normal run at full length. With 10 fixed leapfrog steps,
    dual averaging settled where the trajectory is an exact half-turn (sd 0.059 instead
    of 0.5, issue 17); the number of steps now follows the trajectory length."""
    good = run(BlackJAXKernel("hmc", potential_fn=shifted_potential, trajectory_length=8.0),
               init_params=jnp.zeros(4), num_warmup=1000, num_samples=2000)
    z_mean, z_var = z_scores(good.get_samples(group_by_chain=True), 1.0, 0.25)
    assert max(z_mean, z_var) < z_crit(2), (z_mean, z_var)


# ---------------------------------------------------------------- conjugate models
def beta_bernoulli(data):
    p = numpyro.sample("p", dist.Beta(jnp.array([1.1, 1.1]), jnp.array([1.1, 1.1])))
    numpyro.sample("obs", dist.Bernoulli(p), obs=data)


@pytest.mark.parametrize("name", ["mala", pytest.param("hmc", marks=pytest.mark.slow),
                                  pytest.param("nuts", marks=pytest.mark.slow)])
@pytest.mark.slow
def test_beta_bernoulli(name):
    data = dist.Bernoulli(jnp.array([0.9, 0.1])).sample(jax.random.key(1), (1000,))
    # NumPyro's own test uses tau = 0.1; with leapfrog steps of tau / L (as NumPyro) that is
    # a tenth of a posterior sd per transition after mass adaptation (ESS ~ 10 per chain).
    # With tau = 0.5 from a uniform start, the first trajectories (gradient ~ 500) shoot
    # to |logit p| > 15, where float32 Bernoulli probabilities saturate and the log
    # density is off by units (as binomial_stable): a chain stuck there drove its step
    # size to 0. So HMC starts at the posterior mode.
    kwargs = {"trajectory_length": 0.5,
              "init_strategy": init_to_value(values={"p": jnp.array([0.9, 0.1])})} \
        if name == "hmc" else {}
    mcmc = run(BlackJAXKernel(name, beta_bernoulli, **kwargs), data, seed=2)
    p = np.asarray(mcmc.get_samples(group_by_chain=True)["p"])
    ones = np.asarray(data.sum(0), np.float64)
    a, b = 1.1 + ones, 1.1 + 1000 - ones
    crit = z_crit(4)
    for j in range(2):
        mean, var = a[j] / (a[j] + b[j]), a[j] * b[j] / ((a[j] + b[j]) ** 2 * (a[j] + b[j] + 1))
        assert max(z_scores(p[..., j], mean, var)) < crit, j


def dirichlet_categorical(data):
    p = numpyro.sample("p", dist.Dirichlet(jnp.ones(3)))
    numpyro.sample("obs", dist.Categorical(p), obs=data)


@pytest.mark.slow
@pytest.mark.parametrize("name, dense", [("hmc", False), ("nuts", True), ("mala", False)])
def test_dirichlet_categorical(name, dense):
    data = dist.Categorical(jnp.array([0.1, 0.6, 0.3])).sample(jax.random.key(1), (2000,))
    kwargs = {"trajectory_length": 1.0} if name == "hmc" else {}
    if name != "mala":
        kwargs["dense_mass"] = dense
    mcmc = run(BlackJAXKernel(name, dirichlet_categorical, **kwargs), data, num_warmup=300,
               num_samples=3000, seed=2)
    p = np.asarray(mcmc.get_samples(group_by_chain=True)["p"])
    alpha = 1.0 + np.bincount(np.asarray(data), minlength=3)
    total = alpha.sum()
    for j in range(3):
        mean = alpha[j] / total
        var = mean * (1 - mean) / (total + 1)
        assert max(z_scores(p[..., j], mean, var)) < z_crit(6), j


@pytest.mark.skipif(not jax.config.jax_enable_x64,
                    reason="run in float64 in its own interpreter by test_binomial_stable")
@pytest.mark.parametrize("logits", [True, False])
def test_binomial_stable_in_float64(logits):
    """Beta(1, 1) prior, 3849 successes in 5e6 trials: posterior Beta(3850, 4996152)."""
    def model(n, k):
        p = numpyro.sample("p", dist.Beta(1.0, 1.0))
        likelihood = dist.Binomial(n, logits=jax.scipy.special.logit(p)) if logits \
            else dist.Binomial(n, probs=p)
        numpyro.sample("obs", likelihood, obs=k)

    mcmc = run(BlackJAXKernel("nuts", model), 5_000_000, 3849, num_warmup=300,
               num_samples=500, seed=2)
    p = mcmc.get_samples(group_by_chain=True)["p"]
    assert p.dtype == jnp.float64
    a, b = 3850.0, 5_000_000 - 3849 + 1.0
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    assert float(az.rhat(np.asarray(p))) < 1.01
    assert max(z_scores(p, mean, var)) < z_crit(2)


@pytest.mark.slow
def test_binomial_stable():
    """In float32 the log density (lgamma(5e6) ~ 7e7, spacing ~ 8) cannot resolve this
    posterior: NumPyro's NUTS and ours both leave every chain stuck (R-hat > 2), which
    is why NumPyro's own test is an x64 one. x64 is process-wide, so the check runs in a
    fresh interpreter with ``JAX_ENABLE_X64=1``."""
    env = {**os.environ, "JAX_ENABLE_X64": "1"}
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0",
                          __file__, "-m", "slow or not slow", "-k",
                          "binomial_stable_in_float64"],
                         env=env, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0 and "2 passed" in res.stdout, res.stdout[-3000:]


# ---------------------------------------------------------------- mass matrix
def last_window(num_warmup: int) -> slice:
    """The warm-up iterations of the last slow window of Stan's schedule (the draws the
    final inverse mass matrix is estimated from)."""
    ends = np.flatnonzero(warmup_schedule(num_warmup)[:, 1])
    return slice(int(ends[-2]) + 1, int(ends[-1]) + 1)


def window_covariance_checks(window, cov, estimate, label):
    """z-checks of an adapted (regularised) covariance block against the truth.

    ``window``: the ``(n, d)`` draws of the last slow window of one chain. The estimate is
    Stan's ``n / (n + 5) S + 1e-3 * 5 / (n + 5) I`` with ``S`` their sample covariance,
    so its expectation is that expression at ``S = cov``, and the standard error of entry
    ``(i, j)`` is ``n / (n + 5)`` times the MCSE of the mean of
    ``(x_i - m_i)(x_j - m_j)`` over the window (ArviZ ESS of that product series).
    """
    window = np.asarray(window, np.float64)
    n, d = window.shape
    shrink = n / (n + 5.0)
    centred = window - window.mean(axis=0)
    est, tru, se, lab = [], [], [], []
    for i in range(d):
        for j in range(i, d):
            prod = centred[:, i] * centred[:, j]
            est.append(float(estimate[i, j]) if np.ndim(estimate) == 2 else float(estimate[i]))
            tru.append(shrink * cov[i, j] + 1e-3 * (1 - shrink) * (i == j))
            se.append(shrink * prod.std(ddof=1) / np.sqrt(float(az.ess(prod[None]))))
            lab.append(f"{label}[{i},{j}]")
    return est, tru, se, lab


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hmc", "nuts", "mala"])
@pytest.mark.parametrize("rho", [-0.7, 0.8])
def test_dense_mass_matrix_is_learned(name, rho):
    cov = jnp.array([[10.0, rho], [rho, 0.1]])

    def model():
        numpyro.sample("x", dist.MultivariateNormal(jnp.zeros(2), covariance_matrix=cov))

    # HMC with tau = 2 and no jitter: the leapfrog step is tau / L, as NumPyro's. With
    # the nominal step instead, dual averaging settled near eps ~ 1.5, L = 2: a
    # half-turn of the whitened Gaussian, ESS of x^2 ~ 450 of 5000 draws
    kwargs = {"trajectory_length": 2.0} if name == "hmc" else {}
    num_warmup = 3000
    mcmc = MCMC(BlackJAXKernel(name, model, dense_mass=True, **kwargs), num_warmup=num_warmup,
                num_samples=2000, num_chains=2, chain_method="vectorized", progress_bar=False)
    mcmc.warmup(jax.random.key(0), collect_warmup=True)
    warm = np.asarray(mcmc.get_samples(group_by_chain=True)["x"])
    adapt = mcmc.last_state.adapt_state
    imm, sqrt = adapt.inverse_mass_matrix, adapt.mass_matrix_sqrt
    if name != "mala":  # flat for mala, as NumPyro's BarkerMH
        imm, sqrt = imm[("x",)], sqrt[("x",)]
    mass = jnp.einsum("cij,ckj->cik", sqrt, sqrt)
    np.testing.assert_allclose(jnp.linalg.inv(mass), imm, rtol=1e-3, atol=1e-5)
    # the adapted matrix is the regularised covariance of the last slow window: z-checks
    # against the Monte-Carlo error of that window's draws
    checks = ([], [], [], [])
    for chain in range(2):
        for acc, part in zip(checks, window_covariance_checks(
                warm[chain][last_window(num_warmup)], np.asarray(cov), imm[chain],
                f"imm{chain}")):
            acc.extend(part)
    assert_z(*checks)
    mcmc.run(jax.random.key(1))
    x = np.asarray(mcmc.get_samples(group_by_chain=True)["x"])
    crit = z_crit(4)
    for j in range(2):
        assert max(z_scores(x[..., j], 0.0, float(cov[j, j]))) < crit, j


# ---------------------------------------------------------------- NumPyro's state and fields
def two_sites():
    numpyro.sample("a", dist.Normal(0.0, 2.0))
    numpyro.sample("b", dist.Normal(jnp.zeros(2), 1.0))


@pytest.mark.slow
def test_numpyro_fields_and_arviz_sample_stats():
    mcmc = run(BlackJAXKernel("nuts", two_sites, dense_mass=True), num_warmup=150,
               num_samples=50, num_chains=2,
               extra_fields=("num_steps", "adapt_state.step_size", "energy", "mean_accept_prob"))
    stats = mcmc.get_extra_fields(group_by_chain=True)
    for field in ("num_steps", "adapt_state.step_size", "diverging", "accept_prob", "energy"):
        assert stats[field].shape == (2, 50), field
    assert np.all(np.asarray(stats["num_steps"]) >= 1)
    imm = mcmc.last_state.adapt_state.inverse_mass_matrix
    assert set(imm) == {("a", "b")} and imm[("a", "b")].shape == (2, 3, 3)
    sqrt = mcmc.last_state.adapt_state.mass_matrix_sqrt[("a", "b")][0]
    np.testing.assert_allclose(sqrt @ sqrt.T, jnp.linalg.inv(imm[("a", "b")][0]), rtol=1e-3,
                               atol=1e-4)
    idata = az.from_numpyro(mcmc)
    assert {"lp", "acceptance_rate", "diverging", "step_size", "n_steps", "tree_depth",
            "energy"} <= set(idata.sample_stats.data_vars)


@pytest.mark.slow
def test_max_tree_depth_pair_bounds_warmup_and_sampling():
    def wide():  # badly scaled: a tiny fixed step needs long trees
        numpyro.sample("x", dist.Normal(0.0, 100.0))

    kernel = BlackJAXKernel("nuts", wide, step_size=0.01, adapt_step_size=False,
                            adapt_mass_matrix=False, max_tree_depth=(3, 6))
    mcmc = MCMC(kernel, num_warmup=20, num_samples=20, progress_bar=False)
    mcmc.warmup(jax.random.key(0), collect_warmup=True, extra_fields=("num_steps",))
    assert int(mcmc.get_extra_fields()["num_steps"].max()) <= 2**3 - 1
    mcmc.run(jax.random.key(1), extra_fields=("num_steps",))
    assert int(mcmc.get_extra_fields()["num_steps"].max()) > 2**3 - 1


def test_traced_target_accept_prob_equals_concrete():
    def steps(target, step_size):
        kernel = BlackJAXKernel("mala", potential_fn=shifted_potential, step_size=step_size,
                                target_accept_prob=target)
        state = kernel.init(jax.random.key(0), 30, init_params=jnp.zeros(2))
        state = jax.lax.fori_loop(0, 30, lambda _, s: kernel.sample(s, (), {}), state)
        return state.adapt_state.step_size

    traced = jax.jit(steps)(0.6, 1.0)
    np.testing.assert_allclose(traced, steps(0.6, 1.0), rtol=1e-5)


@pytest.mark.slow
def test_mh_scale_is_adapted_during_warmup():
    adapted = run(MH(potential_fn=shifted_potential, step_size=0.01), init_params=jnp.zeros(4),
                  num_warmup=400, num_samples=400)
    scale = np.asarray(adapted.get_extra_fields()["adapt_state.step_size"])
    assert scale.min() > 0.1  # grew from 0.01 towards 0.234 acceptance
    assert abs(float(adapted.get_extra_fields()["accept_prob"].mean()) - 0.234) < 0.1
    fixed = run(MH(potential_fn=shifted_potential, step_size=0.01, adapt_step_size=False),
                init_params=jnp.zeros(4), num_warmup=10, num_samples=10)
    np.testing.assert_allclose(fixed.get_extra_fields()["adapt_state.step_size"], 0.01,
                               rtol=1e-6)


@pytest.mark.slow
def test_mass_only_adaptation_pins_the_step_size():
    mcmc = run(BlackJAXKernel("hmc", potential_fn=shifted_potential, step_size=0.3,
                              adapt_step_size=False), init_params=jnp.zeros((4, 2)),
               num_warmup=200, num_samples=10)
    np.testing.assert_allclose(mcmc.get_extra_fields()["adapt_state.step_size"], 0.3, rtol=1e-6)
    imm = np.asarray(mcmc.last_state.adapt_state.inverse_mass_matrix)
    assert np.all(np.abs(imm - 1.0) > 1e-3)  # estimated, not the identity


@pytest.mark.slow
def test_forward_mode_differentiation_and_init_strategy():
    def loop_model():  # lax.while_loop: not reverse-differentiable
        x = numpyro.sample("x", dist.Normal(0.0, 1.0))
        y = jax.lax.while_loop(lambda c: c[1] < 3, lambda c: (c[0] + x, c[1] + 1), (0.0, 0))[0]
        numpyro.factor("f", -0.5 * (y / 3.0 - 1.0) ** 2)

    kernel = BlackJAXKernel("mala", loop_model, forward_mode_differentiation=True,
                            init_strategy=init_to_value(values={"x": 0.25}))
    state = kernel.init(jax.random.key(0), 10)
    np.testing.assert_allclose(state.z["x"], 0.25)
    state = jax.jit(kernel.sample, static_argnums=(1, 2))(state, (), None)
    assert np.isfinite(float(state.potential_energy))
    with pytest.raises(ValueError, match="Reverse-mode differentiation does not work"):
        BlackJAXKernel("mala", loop_model).sample(BlackJAXKernel("mala", loop_model).init(
            jax.random.key(0), 10), (), None)


def test_heuristic_step_size_moves_the_start():
    kernel = BlackJAXKernel("nuts", potential_fn=lambda z: 0.5 * jnp.sum((z / 0.01) ** 2),
                            find_heuristic_step_size=True)
    state = kernel.init(jax.random.key(0), 10, init_params=jnp.ones(2) * 0.01)
    assert float(state.adapt_state.step_size) < 0.1


@pytest.mark.parametrize("kwargs, match", [
    (dict(algorithm="mala", trajectory_length=1.0), "trajectory_length has no meaning for mala"),
    (dict(algorithm="mala", num_steps=3), "num_steps, step_size_jitter and max_tree_depth"),
    (dict(algorithm="ghmc", dense_mass=True), "dense_mass has no meaning for ghmc"),
    (dict(algorithm="rmh", inverse_mass_matrix=jnp.ones(1)), "no mass matrix"),
    (dict(algorithm="nuts", num_steps=5), "num_steps and step_size_jitter have no meaning"),
    (dict(algorithm="hmc", max_tree_depth=5), "max_tree_depth has no meaning for hmc"),
    (dict(algorithm="hmc", trajectory_length=None), "At least one of trajectory_length and"),
    (dict(algorithm="nuts", max_tree_depth=(5, 0)), "max_tree_depth must be an integer"),
    (dict(algorithm="nuts", max_tree_depth=5, max_num_doublings=5), "not both"),
    (dict(algorithm="rmh", regularize_mass_matrix=False),
     "regularize_mass_matrix has no meaning for rmh"),
    (dict(algorithm="nuts", kinetic_fn=lambda r: r), "kinetic_fn has no meaning"),
    (dict(algorithm="nuts", target_accept_prob=1.0), r"target_accept_prob must be in \(0, 1\)"),
    (dict(algorithm="hmc", trajectory_length=-1.0), "trajectory_length must be"),
    (dict(algorithm="ghmc", trajectory_length=1.0, step_size=0.1, momentum_inverse_scale=1.0,
          alpha=0.1, delta=0.1), "trajectory_length has no meaning for ghmc"),
])
def test_arguments_without_meaning_are_refused(kwargs, match):
    algorithm = kwargs.pop("algorithm")
    with pytest.raises(ValueError, match=match):
        BlackJAXKernel(algorithm, two_sites, **kwargs)


def four_sites():
    numpyro.sample("x", dist.Normal(0, 1))
    numpyro.sample("y", dist.Normal(0, 1).expand([4]))
    numpyro.sample("w", dist.Normal(0, 1).expand([2, 5]))
    numpyro.sample("z", dist.Normal(0, 1).expand([1]))


@pytest.mark.parametrize("dense_mass, layout", [
    (False, {("w", "x", "y", "z"): (16,)}),
    (True, {("w", "x", "y", "z"): (16, 16)}),
    ([("y", "w", "z", "x")], {("y", "w", "z", "x"): (16, 16)}),
    ([("x", "w"), ("y",)], {("x", "w"): (11, 11), ("y",): (4, 4), ("z",): (1,)}),
    ([("z",), ("w",), ("y",)], {("w",): (10, 10), ("x",): (1,), ("y",): (4, 4),
                                ("z",): (1, 1)}),
])
def test_dense_mass_groups_give_numpyros_layout(dense_mass, layout):
    """A dense block per group (in the group's order), one diagonal for the rest."""
    state = BlackJAXKernel("nuts", four_sites, dense_mass=dense_mass).init(jax.random.key(0), 1)
    blocks = state.adapt_state.inverse_mass_matrix
    assert {key: value.shape for key, value in blocks.items()} == layout
    for value in blocks.values():  # identity to start with
        expected = np.eye(value.shape[0]) if value.ndim == 2 else np.ones(value.shape)
        np.testing.assert_array_equal(value, expected)
    sqrt, sqrt_inv = state.adapt_state.mass_matrix_sqrt, state.adapt_state.mass_matrix_sqrt_inv
    assert set(sqrt) == set(sqrt_inv) == set(layout)


def block_model(cov):
    w = numpyro.sample("w", dist.Normal(0, 100).expand([2]).to_event(1))
    x = numpyro.sample("x", dist.Normal(0, 100).expand([1]).to_event(1))
    y = numpyro.sample("y", dist.Normal(0, 100).expand([1]).to_event(1))
    z = numpyro.sample("z", dist.Normal(0, 100).expand([1]).to_event(1))
    numpyro.sample("obs", dist.MultivariateNormal(jnp.zeros(5), cov),
                   obs=jnp.concatenate([w, x, y, z]))


@pytest.mark.slow
@pytest.mark.parametrize("xy", [("x", "y"), ("y", "x")])
def test_block_mass_matrix_learns_each_blocks_covariance(xy):
    """With groups (w), (x, y) and z left diagonal the adapted blocks estimate the
    posterior covariance of each block (posterior ≈ N(0, cov): the prior sd is 100);
    off-block entries stay exactly zero in the flat matrix the kernel uses. Each entry is
    z-checked against the Monte-Carlo error of the last slow window's draws (a diagonal
    estimate of a block, off-diagonal 0.5 or 1.0, is many standard errors away)."""
    cov = np.zeros((5, 5))
    cov[:2, :2] = [[1.5, 0.5], [0.5, 1.5]]
    cov[2:4, 2:4] = [[2.0, 1.0], [1.0, 3.0]]
    cov[4, 4] = 2.5
    num_warmup = 1000
    mcmc = MCMC(BlackJAXKernel("nuts", block_model, dense_mass=[("w",), xy]),
                num_warmup=num_warmup, num_samples=1, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    mcmc.warmup(jax.random.key(0), jnp.asarray(cov), collect_warmup=True)
    draws = mcmc.get_samples(group_by_chain=True)
    window = last_window(num_warmup)
    blocks = mcmc.last_state.adapt_state.inverse_mass_matrix
    order = [2, 3] if xy == ("x", "y") else [3, 2]
    checks = ([], [], [], [])
    for chain in range(2):
        for label, sites, index in ((("w",), ("w",), [0, 1]), (xy, xy, order),
                                    (("z",), ("z",), [4])):
            values = np.concatenate([np.asarray(draws[s][chain]) for s in sites], axis=-1)
            for acc, part in zip(checks, window_covariance_checks(
                    values[window], cov[np.ix_(index, index)], blocks[label][chain],
                    f"{chain}:{''.join(label)}")):
                acc.extend(part)
    assert_z(*checks)
    flat = np.asarray(mcmc.last_state.adapt_state.kernel.parameters["inverse_mass_matrix"][0])
    assert flat.shape == (5, 5)
    assert np.all(flat[:2, 2:] == 0) and np.all(flat[2:4, 4] == 0)


@pytest.mark.parametrize("dense_mass", [[("x",)], False])
def test_inverse_mass_matrix_by_site_groups(dense_mass):
    """NumPyro's dict ``inverse_mass_matrix={("x",): ...}``: named sites start there,
    the others at the identity; with adaptation off it is what the kernel keeps."""
    def model():
        numpyro.sample("x", dist.Normal(0, 1).expand([3]))
        numpyro.sample("z", dist.Normal(0, 1).expand([2]))

    given = jnp.arange(1.0, 4.0)
    kernel = BlackJAXKernel("nuts", model, dense_mass=dense_mass,
                            inverse_mass_matrix={("x",): given}, adapt_mass_matrix=False)
    blocks = kernel.init(jax.random.key(0), 5).adapt_state.inverse_mass_matrix
    assert set(blocks) == {("x",), ("z",)}
    np.testing.assert_allclose(blocks[("x",)], np.diag(given) if dense_mass else given)
    np.testing.assert_allclose(blocks[("z",)], np.ones(2))


def test_site_group_errors():
    with pytest.raises(ValueError, match=r"dense_mass names sites \['q'\]"):
        BlackJAXKernel("nuts", two_sites, dense_mass=[("q",)]).init(jax.random.key(0), 1)
    with pytest.raises(ValueError, match="a site in two groups"):
        BlackJAXKernel("nuts", two_sites, dense_mass=[("a",), ("a", "b")]).init(
            jax.random.key(0), 1)
    with pytest.raises(ValueError, match="need a model"):
        BlackJAXKernel("nuts", potential_fn=shifted_potential, dense_mass=[("a",)]).init(
            jax.random.key(0), 1, init_params=jnp.zeros(2))
    with pytest.raises(ValueError, match=r"must have shape \(2,\)"):
        BlackJAXKernel("nuts", two_sites, inverse_mass_matrix={("b",): jnp.ones(3)}).init(
            jax.random.key(0), 1)


def test_mh_argument_errors():
    with pytest.raises(ValueError, match="as proposal or as step_size, got both"):
        MH(potential_fn=shifted_potential, proposal=0.1, step_size=0.1)
    with pytest.raises(ValueError, match=r"target_accept_prob must be in \(0, 1\)"):
        MH(potential_fn=shifted_potential, target_accept_prob=0.0)


@pytest.mark.slow
def test_mclmc_is_tuned_by_its_own_tuner():
    """Dual averaging drove MCLMC's step size to 1e25 (issue 13); its own tuner does not."""
    mcmc = run(BlackJAXKernel("mclmc", two_sites, L=1.0, step_size=0.5), num_warmup=500,
               num_samples=2000, num_chains=4)
    step = np.asarray(mcmc.get_extra_fields()["adapt_state.step_size"])
    assert np.all((step > 0.05) & (step < 10.0))
    samples = mcmc.get_samples(group_by_chain=True)
    crit = z_crit(4)
    assert max(z_scores(samples["a"], 0.0, 4.0)) < crit
    assert max(z_scores(samples["b"][..., 0], 0.0, 1.0)) < crit


def test_regularize_mass_matrix_false_reaches_the_warmup():
    """``regularize_mass_matrix=False`` is carried by the warm-up the adapter builds from
    NumPyro's arguments (the estimate rule itself: ``tests/adaptation/test_adaptation.py``)."""
    assert BlackJAXKernel("nuts", two_sites)._warmup.regularize is True
    kernel = BlackJAXKernel("nuts", two_sites, regularize_mass_matrix=False)
    kernel.init(jax.random.key(0), 10)
    assert kernel._warmup.regularize is False and kernel._warmup.name == "window"


def test_hmc_integrates_with_trajectory_length_over_num_steps():
    """As NumPyro's HMC: L = ceil(tau / eps) steps of size tau / L, so nominal steps of
    1.0 and 1.5 with tau = 2 (both L = 2) make the same transitions."""
    def draws(step_size):
        kernel = BlackJAXKernel("hmc", potential_fn=shifted_potential, trajectory_length=2.0,
                                step_size=step_size, adapt_step_size=False,
                                adapt_mass_matrix=False)
        mcmc = MCMC(kernel, num_warmup=0, num_samples=30, progress_bar=False)
        mcmc.run(jax.random.key(0), init_params=jnp.zeros(2), extra_fields=("num_steps",))
        return mcmc.get_samples(), mcmc.get_extra_fields()["num_steps"]

    (a, steps_a), (b, steps_b) = draws(1.0), draws(1.5)
    np.testing.assert_array_equal(steps_a, steps_b)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert set(np.asarray(steps_a).tolist()) == {2}


def test_hmc_given_num_steps_and_trajectory_length_warns_and_fixes_the_step():
    """NumPyro's meaning: the step size is tau / num_steps and is not adapted."""
    with pytest.warns(UserWarning, match="If both"):
        kernel = BlackJAXKernel("hmc", potential_fn=shifted_potential, num_steps=4,
                                trajectory_length=2.0)
    mcmc = MCMC(kernel, num_warmup=20, num_samples=10, progress_bar=False)
    mcmc.run(jax.random.key(0), init_params=jnp.zeros(2),
             extra_fields=("num_steps", "adapt_state.step_size"))
    fields = mcmc.get_extra_fields()
    assert set(np.asarray(fields["num_steps"]).tolist()) == {4}
    np.testing.assert_allclose(fields["adapt_state.step_size"], 0.5)
