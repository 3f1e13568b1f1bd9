"""Tests of ``ebm_ppl.sample``: posterior moments with warm-up, ULA's biased law through
the driver, reproducibility, compilation reuse and argument validation.

Laws tested
-----------
* Correlated 2-D Gaussian ``N(MU, COV)`` and the 1-D mixture
  ``0.3 N(-1.2, 0.5^2) + 0.7 N(1.2, 0.5^2)`` (modes that every kernel
  must cross; with +-1.5 MALA and NUTS reach R-hat ~1.08 in 2000 draws): means and
  variances within Monte-Carlo error ``sd / sqrt(ESS)`` (ArviZ ESS), R-hat < 1.05.
* ULA (4000 chains, last draw): ``N(mu, V diag(2/(lambda(2 - eta lambda))) V^T)`` and
  not ``N(mu, H^-1)`` near the stability limit.
"""

from __future__ import annotations

import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import (
    assert_z,
    correlated_gaussian_draws,
    count_compiles,
    critical_z,
    gaussian_ula_covariance,
    iid_mean_checks,
    z_scores,
)

import ebm_ppl
from ebm_ppl import kernels

MU = np.array([0.5, -1.0])
COV = np.array([[1.0, 0.8], [0.8, 1.5]])
PRECISION = np.linalg.inv(COV)

MIX_WEIGHTS = np.array([0.3, 0.7])
MIX_MEANS = np.array([-1.2, 1.2])  # barrier: density ratio ~0.08 to the main mode
MIX_SD = 0.5
MIX_MEAN = float(MIX_WEIGHTS @ MIX_MEANS)
MIX_VAR = float(MIX_WEIGHTS @ (MIX_SD**2 + MIX_MEANS**2) - MIX_MEAN**2)


def gaussian_energy(x):
    """``E = (x - MU)^T COV^-1 (x - MU) / 2``."""
    d = x - jnp.asarray(MU, x.dtype)
    return 0.5 * d @ jnp.asarray(PRECISION, x.dtype) @ d


def mixture_energy(x):
    """``E = -log(0.3 N(x; -1.2, 0.5^2) + 0.7 N(x; 1.2, 0.5^2))`` up to a constant."""
    z = (x[0] - jnp.asarray(MIX_MEANS, x.dtype)) / MIX_SD
    return -jax.scipy.special.logsumexp(jnp.log(jnp.asarray(MIX_WEIGHTS, x.dtype)) - 0.5 * z**2)


GAUSSIAN = ebm_ppl.Potential.from_energy(gaussian_energy)
MIXTURE = ebm_ppl.Potential.from_energy(mixture_energy)

KERNELS = {
    "mala": lambda: kernels.mala(0.3),
    "hmc": lambda: kernels.hmc(0.3, 5),
    "nuts": lambda: kernels.nuts(0.3),
    "random_walk": lambda: kernels.random_walk(1.0),
}


def _ess_checks(draws: np.ndarray, mean: float, var: float, label: str):
    """Mean and variance checks of ``(chain, draw)`` draws with ``mcse = sd / sqrt(ESS)``."""
    draws = np.asarray(draws, dtype=np.float64)
    sq = (draws - mean) ** 2
    est, tru, se, lab = [], [], [], []
    for values, truth, name in ((draws, mean, "mean"), (sq, var, "var")):
        ess = float(az.ess(values))
        est.append(values.mean())
        tru.append(truth)
        se.append(values.std(ddof=1) / np.sqrt(ess))
        lab.append(f"{name}[{label}]")
    return est, tru, se, lab


def _run(pot, name, init, seed, **kwargs):
    options = dict(num_samples=2000, num_warmup=1000, num_chains=4, progress=False)
    options.update(kwargs)
    return ebm_ppl.sample(pot, KERNELS[name](), init, seed=seed, **options)


CASES = [
    pytest.param("gaussian", "mala"),
    pytest.param("gaussian", "random_walk"),
    pytest.param("mixture", "hmc"),
    pytest.param("mixture", "random_walk"),
    pytest.param("gaussian", "nuts", marks=pytest.mark.slow),
    pytest.param("gaussian", "hmc", marks=pytest.mark.slow),
    pytest.param("mixture", "nuts", marks=pytest.mark.slow),
    pytest.param("mixture", "mala", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("target, name", CASES)
def test_sample_posterior_moments_with_warmup(target, name):
    """Means and variances of every coordinate match the target within ``sd/sqrt(ESS)``
    (k = 2 per coordinate), R-hat < 1.05, and no divergence on these smooth targets."""
    if target == "gaussian":
        idata = _run(GAUSSIAN, name, jnp.zeros(2), seed=101)
        truths = [(MU[i], COV[i, i]) for i in range(2)]
    else:
        idata = _run(MIXTURE, name, jnp.zeros(1), seed=102)
        truths = [(MIX_MEAN, MIX_VAR)]
    x = idata.posterior["x"].values
    assert x.shape[:2] == (4, 2000)
    checks = [[], [], [], []]
    for i, (mean, var) in enumerate(truths):
        for acc, item in zip(checks, _ess_checks(x[..., i], mean, var, str(i))):
            acc.extend(item)
    assert_z(*checks)
    rhat = az.rhat(idata)["x"].values
    assert np.all(rhat < 1.05), f"R-hat {rhat}"
    assert int(idata.sample_stats["diverging"].sum()) == 0


# ------------------------------------------------------------------ ULA through sample
HESSIAN = np.array([[2.0, 0.8], [0.8, 1.0]])
H_MU = np.array([1.0, -0.5])
LIMIT = 2.0 / np.linalg.eigvalsh(HESSIAN).max()


def quadratic_energy(x):
    """``E = (x - mu)^T H (x - mu) / 2`` (seed 000)."""
    d = x - jnp.asarray(H_MU, x.dtype)
    return 0.5 * d @ jnp.asarray(HESSIAN, x.dtype) @ d


def test_ula_through_sample_matches_biased_law_not_exact():
    """4000 ULA chains through ``ebm_ppl.sample`` at 0.9 x the stability limit; the last
    draw of each chain follows ``N(mu, V diag(2/(lambda(2 - eta lambda))) V^T)`` (5 checks)
    and the exact covariance ``H^-1`` is rejected at this sample size."""
    key = jax.random.key(103)
    key_init, key_sample = jax.random.split(key)
    num_chains, step_size = 4000, 0.9 * LIMIT
    init = correlated_gaussian_draws(key_init, H_MU, np.linalg.inv(HESSIAN), num_chains)
    idata = ebm_ppl.sample(
        ebm_ppl.Potential.from_energy(quadratic_energy), kernels.ula(step_size), init,
        num_samples=1, num_warmup=300, num_chains=num_chains, seed=key_sample, progress=False,
    )
    x = idata.posterior["x"].values[:, -1, :]
    est, tru, se, labels = iid_mean_checks(x, H_MU, gaussian_ula_covariance(HESSIAN, step_size))
    assert_z(est, tru, se, labels)
    _, exact, _, _ = iid_mean_checks(x, H_MU, np.linalg.inv(HESSIAN))
    assert z_scores(est[2:], exact[2:], se[2:]).max() > critical_z(5)


# ------------------------------------------------------------------ interface
def _small(seed=0, **kwargs):
    options = dict(num_samples=50, num_warmup=50, num_chains=4, progress=False)
    options.update(kwargs)
    return ebm_ppl.sample(GAUSSIAN, kernels.mala(0.3), jnp.zeros(2), seed=seed, **options)


def test_sample_output_structure():
    """Posterior ``x`` has dims (chain, draw, x_dim_0); sample_stats has the ArviZ names."""
    idata = _small()
    assert idata.posterior["x"].dims == ("chain", "draw", "x_dim_0")
    assert idata.posterior["x"].shape == (4, 50, 2)
    for stat in ("lp", "acceptance_rate", "diverging", "step_size"):
        assert stat in idata.sample_stats
    lp = idata.sample_stats["lp"].values
    expected = -jax.vmap(gaussian_energy)(jnp.asarray(idata.posterior["x"].values.reshape(-1, 2)))
    np.testing.assert_allclose(lp.ravel(), np.asarray(expected), rtol=1e-4, atol=1e-4)


def test_same_seed_same_draws_different_seed_different_draws():
    """Sampling is a pure function of the seed."""
    a = _small(seed=7).posterior["x"].values
    b = _small(seed=7).posterior["x"].values
    c = _small(seed=8).posterior["x"].values
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_second_call_compiles_nothing():
    """A second call with another seed, step size, ``num_samples``, ``num_warmup`` (within
    one chunk), init and ``thin`` (both > 1: ``thin=1`` has its own fast path) reuses
    every compiled computation (MALA: dual-averaging warm-up)."""
    _small(seed=0, thin=2)
    with count_compiles() as compiled:
        idata = ebm_ppl.sample(
            GAUSSIAN, kernels.mala(0.5), jnp.ones(2), num_samples=130, num_warmup=80,
            num_chains=4, seed=9, thin=3, progress=False,
        )
    assert compiled == []
    assert idata.posterior["x"].shape == (4, 130, 2)


def test_warmup_over_several_chunks_compiles_chunk_once_per_scheme():
    """One call whose warm-up spans 3 chunks compiles ``_run_chunk`` twice: once for the
    warm-up scheme and once for sampling (fresh energy, so nothing is cached)."""
    def energy(x):
        return 0.5 * jnp.sum(x**2)

    with count_compiles() as compiled:
        ebm_ppl.sample(
            ebm_ppl.Potential.from_energy(energy), kernels.mala(0.3), jnp.zeros(2),
            num_samples=50, num_warmup=250, num_chains=4, progress=False,
        )
    assert compiled.count("jit(_run_chunk)") == 2


@pytest.mark.slow
def test_second_call_nuts_compiles_nothing_same_warmup_length():
    """NUTS (window adaptation): another seed, init, ``num_samples`` and ``thin`` compile
    nothing."""
    def run(seed, init, thin, num_samples):
        return ebm_ppl.sample(
            GAUSSIAN, kernels.nuts(0.3), init, num_samples=num_samples, num_warmup=150,
            num_chains=4, seed=seed, thin=thin, progress=False,
        )

    run(0, jnp.zeros(2), 1, 50)
    with count_compiles() as compiled:
        run(1, jnp.ones(2), 1, 130)
    assert compiled == []


@pytest.mark.slow
def test_second_call_nuts_other_warmup_length_compiles_nothing():
    """NUTS with another ``num_warmup`` compiles nothing either: the window schedule is
    computed inside the trace (``adaptation.window_stage``), not by BlackJAX's
    ``build_schedule``, whose ``jnp.array(list)`` compiled a cast per length."""
    def run(num_warmup):
        return ebm_ppl.sample(
            GAUSSIAN, kernels.nuts(0.3), jnp.zeros(2), num_samples=50, num_warmup=num_warmup,
            num_chains=4, progress=False,
        )

    run(160)
    with count_compiles() as compiled:
        run(150)
    assert compiled == []


# ------------------------------------------------------------------ bad input
def positive_orthant_energy(x):
    """Standard normal restricted to ``x >= 0`` (energy ``inf`` outside)."""
    return jnp.where(jnp.all(x >= 0), 0.5 * jnp.sum(x**2), jnp.inf)


def test_non_finite_start_names_the_chain():
    """A batch init with chain 2 outside the support raises ``ValueError`` naming it."""
    pot = ebm_ppl.Potential.from_energy(positive_orthant_energy)
    init = jnp.array([[1.0, 1.0], [0.5, 2.0], [-1.0, 1.0], [1.0, 0.3]])
    with pytest.raises(ValueError, match=r"not finite at the initial position of chain\(s\) \[2\]"):
        ebm_ppl.sample(pot, kernels.mala(0.1), init, num_chains=4, progress=False)


def test_nan_region_counted_as_divergent_in_sample():
    """HMC through ``sample`` on a target that is NaN for ``x[0] > 3``: draws stay finite
    and outside the region, and ``diverging`` counts the failed proposals."""
    def energy(x):
        return jnp.where(x[0] > 3.0, jnp.nan, 0.5 * jnp.sum(x**2))

    idata = ebm_ppl.sample(
        ebm_ppl.Potential.from_energy(energy), kernels.hmc(0.5, 5), jnp.array([2.5, 0.0]),
        num_samples=200, num_warmup=0, num_chains=4, adapt=False, progress=False, seed=104,
    )
    x = idata.posterior["x"].values
    assert np.all(np.isfinite(x)) and np.all(x[..., 0] <= 3.0)
    assert np.all(np.isfinite(idata.sample_stats["lp"].values))
    assert int(idata.sample_stats["diverging"].sum()) > 0


def test_non_scalar_energy_raises_in_sample():
    """An energy returning a vector is rejected before any compute."""
    pot = ebm_ppl.Potential.from_energy(lambda x: x**2)
    with pytest.raises(ValueError, match="must return a scalar"):
        ebm_ppl.sample(pot, kernels.mala(0.1), jnp.zeros(2), progress=False)


def test_wrong_init_shape_raises():
    """Init shapes are checked against the potential's example, or by tracing."""
    pot = ebm_ppl.Potential.from_energy(gaussian_energy, example=jnp.zeros(2))
    with pytest.raises(ValueError, match="init must have the structure and shapes"):
        ebm_ppl.sample(pot, kernels.mala(0.1), jnp.zeros(3), progress=False)
    with pytest.raises(ValueError, match="could not be traced"):
        ebm_ppl.sample(GAUSSIAN, kernels.mala(0.1), jnp.zeros(3), progress=False)


@pytest.mark.parametrize(
    "argument, value, message",
    [
        ("num_chains", 0, "num_chains must be an integer >= 1, got 0"),
        ("num_samples", 0, "num_samples must be an integer >= 1, got 0"),
        ("thin", 0, "thin must be an integer >= 1, got 0"),
        ("num_warmup", -1, "num_warmup must be an integer >= 0, got -1"),
        ("num_chains", 2.5, "num_chains must be an integer >= 1, got 2.5"),
        ("jitter", -1.0, "jitter must be a finite number >= 0"),
        ("seed", -1, "seed must be a non-negative integer or a jax.random key, got -1"),
    ],
)
def test_bad_arguments_raise(argument, value, message):
    """Integer arguments, jitter and seed are validated with a message naming them."""
    with pytest.raises(ValueError, match=message):
        ebm_ppl.sample(GAUSSIAN, kernels.mala(0.1), jnp.zeros(2), progress=False,
                       **{argument: value})


def test_seed_of_wrong_type_raises_type_error():
    """A seed that is neither an integer nor a key is a ``TypeError`` (the one
    ``as_key`` conversion, shared with ``fit``)."""
    with pytest.raises(TypeError, match="seed must be an integer or a jax.random key"):
        ebm_ppl.sample(GAUSSIAN, kernels.mala(0.1), jnp.zeros(2), progress=False, seed="zero")


@pytest.mark.parametrize("seed", [0, 12345, 2**31 - 1, 2**31, 2**40, np.int64(7)])
def test_integer_seed_is_jax_random_key_of_it(seed):
    """``as_key`` (compiled for int32 seeds, eager beyond) gives ``jax.random.key(seed)``."""
    from ebm_ppl._validation import as_key

    got, want = as_key(seed), jax.random.key(int(seed))
    assert np.array_equal(jax.random.key_data(got), jax.random.key_data(want))
    assert jax.random.key_impl(got) == jax.random.key_impl(want)


def test_init_none_for_energy_raises():
    """An energy has no prior to draw initial positions from."""
    with pytest.raises(ValueError, match="init is required for a potential built from an energy"):
        ebm_ppl.sample(GAUSSIAN, kernels.mala(0.1), None, progress=False)


def test_wrong_types_raise():
    """``pot`` and ``kernel`` must be ebm_ppl objects."""
    with pytest.raises(TypeError, match="pot must be an ebm_ppl.Potential"):
        ebm_ppl.sample(gaussian_energy, kernels.mala(0.1), jnp.zeros(2), progress=False)
    with pytest.raises(TypeError, match="kernel must be an ebm_ppl.kernels kernel"):
        ebm_ppl.sample(GAUSSIAN, "nuts", jnp.zeros(2), progress=False)


def test_no_warnings_on_a_normal_run():
    """A plain run emits no warnings (ArviZ's short-run notices are silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _small(seed=3, num_samples=10, num_warmup=10)
