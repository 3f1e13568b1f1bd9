"""Annealed Langevin dynamics (``ebm_ppl.sampling.annealed_langevin``) against the exact
variance recursion of ULA on Gaussian levels."""

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_ppl import SamplingWarning
from ebm_ppl.nn import noise_conditional_mlp_energy
from ebm_ppl.sampling import annealed_langevin

S2 = np.array([1.0, 0.25])  # data variances per coordinate


def gaussian_levels(params, x, sigma):
    """Exact noise-conditional energy of N(0, diag(S2)) data: the smoothed law is
    N(0, diag(S2 + sigma^2))."""
    return 0.5 * jnp.sum(x**2 / (params + sigma**2))


def exact_variance(v0, sigmas, steps, scale):
    """ULA's variance recursion V <- (1 - a/v)^2 V + 2a through every level."""
    v = np.array(v0, dtype=float)
    for sigma in sigmas:
        a, target = scale * sigma**2, S2 + sigma**2
        for _ in range(steps):
            v = (1 - a / target) ** 2 * v + 2 * a
    return v


def test_variance_follows_the_ula_recursion():
    """20 000 chains from N(0, 4 I) through three levels: the sample variance of each
    coordinate matches the exact recursion (z-score of a normal variance, |z| < 4), and
    differs from the stationary variance of the last level by more than the noise — the
    test can tell a run that did not anneal from one that did."""
    n, sigmas, steps, scale = 20_000, [2.0, 0.7, 0.2], 30, 0.05
    init = 2.0 * jax.random.normal(jax.random.key(0), (n, 2))
    idata = annealed_langevin(gaussian_levels, jnp.asarray(S2), sigmas, init,
                              steps_per_level=steps, step_scale=scale, seed=1)
    x = idata.posterior["x"].values[0]
    assert x.shape == (n, 2)
    want = exact_variance([4.0, 4.0], sigmas, steps, scale)
    var = x.var(axis=0, ddof=1)
    z = (var - want) / (want * math.sqrt(2 / (n - 1)))
    assert np.all(np.abs(z) < 4), (var, want, z)
    assert np.all(np.abs(x.mean(axis=0)) / np.sqrt(want / n) < 4)
    # one level only (no annealing) ends elsewhere: the recursion is what the draws follow
    one_level = exact_variance([4.0, 4.0], sigmas[-1:], steps, scale)
    z_wrong = (var - one_level) / (one_level * math.sqrt(2 / (n - 1)))
    assert np.max(np.abs(z_wrong)) > 10, z_wrong
    assert int(idata.sample_stats["rejected"].values.sum()) == 0


def test_same_seed_same_draws_and_noise_conditional_mlp():
    model = noise_conditional_mlp_energy((16,), "swish", quadratic=0.1)
    params = model.init(jax.random.key(0), 2)
    init = jax.random.normal(jax.random.key(1), (64, 2))
    a = annealed_langevin(model, params, [1.0, 0.1], init, steps_per_level=10, seed=3)
    b = annealed_langevin(model, params, [1.0, 0.1], init, steps_per_level=10, seed=3)
    c = annealed_langevin(model, params, [1.0, 0.1], init, steps_per_level=10, seed=4)
    np.testing.assert_array_equal(a.posterior["x"].values, b.posterior["x"].values)
    assert not np.array_equal(a.posterior["x"].values, c.posterior["x"].values)
    config = a.attrs["ebm_ppl_config"]
    assert "annealed_langevin" in config and "step_scale" in config


def test_num_chains_only_shapes_the_draws():
    """``num_chains`` splits the same independent draws into ArviZ chains, in order."""
    model = noise_conditional_mlp_energy((8,), "swish", quadratic=0.1)
    params = model.init(jax.random.key(0), 2)
    init = jax.random.normal(jax.random.key(1), (12, 2))
    one = annealed_langevin(model, params, [1.0, 0.1], init, steps_per_level=5, seed=2)
    three = annealed_langevin(model, params, [1.0, 0.1], init, steps_per_level=5, seed=2,
                              num_chains=3)
    assert three.posterior["x"].shape == (3, 4, 2)
    assert three.sample_stats["rejected"].shape == (3, 4)
    np.testing.assert_array_equal(three.posterior["x"].values.reshape(1, 12, 2),
                                  one.posterior["x"].values)


@pytest.mark.parametrize("sigmas, match", [
    ([], "non-empty"), ([1.0, 1.0], "strictly decreasing"), ([0.1, 1.0], "strictly decreasing"),
    ([1.0, -0.1], "> 0"), ([1.0, float("nan")], "> 0"), ("abc", "sequence of numbers"),
])
def test_bad_sigmas_raise(sigmas, match):
    with pytest.raises(ValueError, match=match):
        annealed_langevin(gaussian_levels, jnp.asarray(S2), sigmas, jnp.zeros((4, 2)))


@pytest.mark.parametrize("kwargs, match", [
    ({"init": jnp.zeros(4)}, "num_draws, d"),
    ({"init": jnp.zeros((4, 2), jnp.int32)}, "floating"),
    ({"init": jnp.full((4, 2), jnp.nan)}, "non-finite"),
    ({"steps_per_level": 0}, "steps_per_level"),
    ({"step_scale": 0.0}, "step_scale"),
    ({"num_chains": 3}, "must divide the number of draws 4"),
    ({"num_chains": 0}, "num_chains"),
])
def test_bad_arguments_raise(kwargs, match):
    args = {"init": jnp.zeros((4, 2)), **kwargs}
    init = args.pop("init")
    with pytest.raises(ValueError, match=match):
        annealed_langevin(gaussian_levels, jnp.asarray(S2), [1.0, 0.1], init, **args)


def test_unstable_steps_are_rejected_and_warned():
    """A step far above 2 / curvature blows up: the chains keep their last finite
    position, count the rejections, and the call warns with the fix."""
    with pytest.warns(SamplingWarning, match="lower step_scale"):
        idata = annealed_langevin(gaussian_levels, jnp.asarray(S2), [1.0, 0.1],
                                  jnp.ones((8, 2)), steps_per_level=200, step_scale=1e6)
    assert np.all(np.isfinite(idata.posterior["x"].values))
    assert int(idata.sample_stats["rejected"].values.sum()) > 0


def test_no_warning_on_a_clean_run():
    with warnings.catch_warnings():
        warnings.simplefilter("error", SamplingWarning)
        annealed_langevin(gaussian_levels, jnp.asarray(S2), [1.0, 0.1], jnp.zeros((8, 2)),
                          steps_per_level=5)
