"""Statistical and interface tests of ``ebm_ppl.kernels`` used directly (vmap x scan).

Laws tested
-----------
* ULA on ``E = (x-mu)^T H (x-mu) / 2`` (seed 000): mean ``mu``, stationary covariance
  ``T V diag(2 / (lambda (2 - eta lambda))) V^T``; the exact ``H^-1`` is rejected.
* ULA on the linear energy ``E = theta . x`` from ``x0 ~ N(0, I)`` (seed 001):
  ``x_N ~ N(-N eta theta, (1 + 2 N eta) I)``; the seed text's law is rejected.
* Invariance: one (or a few) steps of an exact kernel started at exact draws of a
  correlated Gaussian leave the law unchanged (KS tests); MH without the Hastings term
  and ULA with a large step are rejected by the same test.
"""

from __future__ import annotations

import math

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from conftest import (
    ALPHA,
    assert_z,
    correlated_gaussian_draws,
    critical_z,
    gaussian_ula_covariance,
    iid_mean_checks,
    run_chains,
    z_scores,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import ebm_ppl
from ebm_ppl import kernels
from ebm_ppl.kernels.mh import Proposal, _independent_sample

# ------------------------------------------------------------------ shared targets
MU = np.array([1.0, -0.5])
HESSIAN = np.array([[2.0, 0.8], [0.8, 1.0]])  # eigenvalues 2.443 and 0.557
COV = np.linalg.inv(HESSIAN)
STABILITY_LIMIT = 2.0 / np.linalg.eigvalsh(HESSIAN).max()


def gaussian_logdensity(x):
    """``log p = -(x - mu)^T H (x - mu) / 2`` for the module's correlated Gaussian."""
    d = x - jnp.asarray(MU, x.dtype)
    return -0.5 * d @ jnp.asarray(HESSIAN, x.dtype) @ d


def all_kernels():
    """One instance of every kernel, with step sizes suited to the Gaussian target."""
    return {
        "ula": kernels.ula(0.1),
        "mala": kernels.mala(0.5),
        "hmc": kernels.hmc(0.3, 5),
        "nuts": kernels.nuts(0.4),
        "random_walk": kernels.random_walk(0.8),
        "independent": kernels.independent(dist.Normal(jnp.ones(2), 2.0).to_event(1)),
        "barker": kernels.barker(0.5),
    }


KERNEL_NAMES = list(all_kernels())


# ------------------------------------------------------------------ 1. ULA on a Gaussian
def _ula_final_states(step_size, temperature, seed, num_chains=4000, num_steps=300):
    key = jax.random.key(seed)
    key_init, key_run = jax.random.split(key)
    start = correlated_gaussian_draws(key_init, MU, COV, num_chains)
    kernel = kernels.ula(step_size, temperature=temperature)
    states, infos = run_chains(kernel, gaussian_logdensity, start, key_run, num_steps)
    assert not bool(jnp.any(infos.is_divergent))
    return np.asarray(states.position)


@pytest.mark.parametrize(
    "fraction_of_limit, temperature",
    [(0.05, 1.0), (0.3, 1.0), (0.9, 1.0), (0.3, 0.5)],
    ids=["small", "medium", "near-limit", "medium-T0.5"],
)
def test_ula_gaussian_stationary_law(fraction_of_limit, temperature):
    """ULA's final states match ``N(mu, T V diag(2/(lambda(2-eta lambda))) V^T)``.

    4000 independent chains start at exact draws of ``N(mu, H^-1)`` and run 300 steps (the
    covariance contracts by ``(1 - eta lambda)^2`` per step, so the start is forgotten);
    five checks: two means and three covariance entries.
    """
    step_size = fraction_of_limit * STABILITY_LIMIT
    x = _ula_final_states(step_size, temperature, seed=11)
    truth_cov = gaussian_ula_covariance(HESSIAN, step_size, temperature)
    est, tru, se, labels = iid_mean_checks(x, MU, truth_cov)
    assert_z(est, tru, se, labels)


@pytest.mark.parametrize("fraction_of_limit", [0.3, 0.9])
def test_ula_gaussian_rejects_exact_covariance(fraction_of_limit):
    """The same test (same seed and sample size) rejects the exact covariance ``H^-1``.

    This proves that the stationary-law test above can fail: at ``eta = 0.3`` and
    ``0.9`` times the stability limit ``2/lambda_max`` the ULA bias is detected.
    """
    step_size = fraction_of_limit * STABILITY_LIMIT
    x = _ula_final_states(step_size, 1.0, seed=11)
    est, tru, se, _ = iid_mean_checks(x, MU, COV)
    z = z_scores(est[2:], tru[2:], se[2:])
    assert z.max() > critical_z(5), f"exact covariance not rejected: z={z}"


def test_ula_temperature_scales_covariance_not_mean():
    """At ``T = 2`` the covariance doubles: ``T = 1``'s law is rejected, ``T = 2``'s is not."""
    step_size = 0.3 * STABILITY_LIMIT
    x = _ula_final_states(step_size, 2.0, seed=12)
    est, tru, se, labels = iid_mean_checks(x, MU, gaussian_ula_covariance(HESSIAN, step_size, 2.0))
    assert_z(est, tru, se, labels)
    _, tru1, _, _ = iid_mean_checks(x, MU, gaussian_ula_covariance(HESSIAN, step_size, 1.0))
    assert z_scores(est[2:], tru1[2:], se[2:]).max() > critical_z(5)


# ------------------------------------------------------------------ 2. linear energy
THETA = np.array([1.0, -2.0])
LINEAR_STEP = 0.1


def linear_logdensity(x):
    """``log p = -theta . x`` (improper: ULA drifts along ``-theta`` for ever)."""
    return -jnp.dot(jnp.asarray(THETA, x.dtype), x)


def _linear_final_states(num_steps, seed=21, num_chains=4000):
    key = jax.random.key(seed)
    key_init, key_run = jax.random.split(key)
    x0 = jax.random.normal(key_init, (num_chains, 2))
    states, _ = run_chains(kernels.ula(LINEAR_STEP), linear_logdensity, x0, key_run, num_steps)
    return np.asarray(states.position)


def _linear_checks(x, mean, var):
    est, tru, se, labels = iid_mean_checks(x, mean, np.diag(var))
    keep = [i for i, lab in enumerate(labels) if lab != "cov[0,1]"]
    return est[keep], tru[keep], se[keep], [labels[i] for i in keep]


@pytest.mark.parametrize("num_steps", [1, 5, 50])
def test_ula_linear_energy_law(num_steps):
    """After ``N`` ULA steps on ``E = theta . x`` from ``x0 ~ N(0, I)``:
    ``x_N ~ N(-N eta theta, (1 + 2 N eta) I)`` (seed 001, corrected). Four checks: two
    means and two variances; the seed text's ``N(+N eta theta, 2 eta (N + 1) I)`` is
    rejected at the same sample size."""
    x = _linear_final_states(num_steps)
    mean = -num_steps * LINEAR_STEP * THETA
    var = np.full(2, 1.0 + 2.0 * num_steps * LINEAR_STEP)
    assert_z(*_linear_checks(x, mean, var))
    wrong_mean = num_steps * LINEAR_STEP * THETA
    wrong_var = np.full(2, 2.0 * LINEAR_STEP * (num_steps + 1))
    est, tru, se, _ = _linear_checks(x, wrong_mean, wrong_var)
    assert z_scores(est, tru, se).max() > critical_z(4)


# ------------------------------------------------------------------ 3. invariance
INV_COV = np.array([[1.0, 0.8], [0.8, 1.5]])
INV_MU = np.array([0.5, -1.0])
INV_PRECISION = np.linalg.inv(INV_COV)


def invariance_logdensity(x):
    """Correlated 2-D Gaussian ``N(INV_MU, INV_COV)``."""
    d = x - jnp.asarray(INV_MU, x.dtype)
    return -0.5 * d @ jnp.asarray(INV_PRECISION, x.dtype) @ d


#: Projections compared with their exact 1-D normal laws: x0, x1 and x0 + x1.
PROJECTIONS = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def _ks_pvalues(x):
    """KS p-values of the three projections against their exact normal laws."""
    pvals = []
    for w in PROJECTIONS:
        loc, scale = w @ INV_MU, math.sqrt(w @ INV_COV @ w)
        pvals.append(stats.kstest(np.asarray(x, np.float64) @ w, "norm", args=(loc, scale)).pvalue)
    return np.array(pvals)


def _invariance_run(kernel, num_steps, seed, num_chains=5000):
    key = jax.random.key(seed)
    key_init, key_run = jax.random.split(key)
    start = correlated_gaussian_draws(key_init, INV_MU, INV_COV, num_chains)
    states, infos = run_chains(kernel, invariance_logdensity, start, key_run, num_steps)
    return np.asarray(states.position), infos


INVARIANT = {
    "mala": (lambda: kernels.mala(0.8), 1),
    "hmc": (lambda: kernels.hmc(0.4, 7), 1),
    "nuts": (lambda: kernels.nuts(0.5), 1),
    "random_walk": (lambda: kernels.random_walk(1.0), 3),
    "independent": (lambda: kernels.independent(dist.Normal(jnp.ones(2), 2.0).to_event(1)), 3),
    "barker": (lambda: kernels.barker(0.8), 1),
    # preconditioners unlike Sigma, so that the Hastings term of C matters
    "mala_dense_mass": (lambda: kernels.mala(
        0.8, inverse_mass_matrix=jnp.array([[2.0, -0.6], [-0.6, 0.5]]),
        adapt_mass_matrix=False), 1),
    "mala_diagonal_mass": (lambda: kernels.mala(
        0.4, inverse_mass_matrix=jnp.array([3.0, 0.3]), adapt_mass_matrix=False), 1),
}


@pytest.mark.parametrize("name", list(INVARIANT))
def test_exact_kernel_leaves_target_invariant(name):
    """Chains started at exact draws of ``N(mu, Sigma)`` still follow it after the step(s).

    5000 chains; KS tests of x0, x1 and x0 + x1 against their exact normal laws, each at
    level ``alpha / 3``. The kernel must also move (acceptance rate well above 0).
    """
    factory, num_steps = INVARIANT[name]
    x, infos = _invariance_run(factory(), num_steps, seed=31)
    pvals = _ks_pvalues(x)
    assert pvals.min() > ALPHA / len(PROJECTIONS), f"KS p-values {pvals}"
    assert float(jnp.mean(infos.acceptance_rate)) > 0.2
    assert not bool(jnp.any(infos.is_divergent))


def test_invariance_test_rejects_mh_without_hastings_term():
    """Independent MH with the off-centre ``N(1, 2^2)`` proposal but *no* Hastings term
    targets ``p q`` instead of ``p``: the invariance test rejects it (tiny p-value)."""
    proposal = dist.Normal(jnp.ones(2), 2.0).to_event(1)
    wrong = kernels.mh(Proposal(sample_fn=_independent_sample, params=proposal, symmetric=True))
    x, _ = _invariance_run(wrong, 30, seed=31)
    assert _ks_pvalues(x).min() < 1e-8
    # the correct kernel passes at the same size and number of steps
    x, _ = _invariance_run(kernels.independent(proposal), 30, seed=31)
    assert _ks_pvalues(x).min() > ALPHA / len(PROJECTIONS)


def test_invariance_test_rejects_ula_with_large_step():
    """ULA is not exact: with ``eta = 0.5`` its one-step covariance from the target is
    ``Sigma + eta^2 Sigma^-1``; after 10 steps the KS test rejects it."""
    x, _ = _invariance_run(kernels.ula(0.5), 10, seed=31)
    assert _ks_pvalues(x).min() < 1e-8


# ------------------------------------------------------------------ 5. interface
def _one_step(kernel, key, x):
    state = kernel.init(x, gaussian_logdensity)
    return kernel.step(key, state, gaussian_logdensity)


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_kernel_jit_equals_eager_and_info_fields(name):
    """One step under ``jit`` equals the eager step on the same key; info has
    ``acceptance_rate`` in [0, 1] and a boolean ``is_divergent``."""
    kernel = all_kernels()[name]
    key = jax.random.key(5)
    x = jnp.array([0.3, -0.2])
    eager_state, eager_info = _one_step(kernel, key, x)
    jit_state, jit_info = jax.jit(_one_step)(kernel, key, x)
    np.testing.assert_allclose(jit_state.position, eager_state.position, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jit_info.acceptance_rate, eager_info.acceptance_rate, rtol=1e-5)
    for info in (eager_info, jit_info):
        assert 0.0 <= float(info.acceptance_rate) <= 1.0
        assert jnp.asarray(info.is_divergent).dtype == jnp.bool_
        assert not bool(info.is_divergent)
    assert np.all(np.isfinite(np.asarray(jit_state.position)))


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_kernel_vmap_equals_loop(name):
    """``vmap`` over 3 chains (own keys and starts) equals a Python loop of single steps."""
    kernel = all_kernels()[name]
    keys = jax.random.split(jax.random.key(6), 3)
    xs = jnp.array([[0.3, -0.2], [1.0, 0.5], [-1.0, 2.0]])
    step = jax.jit(_one_step)
    batched, batched_info = jax.jit(jax.vmap(_one_step, (None, 0, 0)))(kernel, keys, xs)
    for c in range(3):
        single, single_info = step(kernel, keys[c], xs[c])
        np.testing.assert_allclose(batched.position[c], single.position, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            batched_info.acceptance_rate[c], single_info.acceptance_rate, rtol=1e-5, atol=1e-6
        )


def test_kernel_step_size_is_traced_not_static():
    """A kernel is a pytree: changing the step size reuses the compiled step."""
    traces = []

    @jax.jit
    def run(kernel, key, x):
        traces.append(1)
        return _one_step(kernel, key, x)

    key, x = jax.random.key(0), jnp.zeros(2)
    a, _ = run(kernels.mala(0.1), key, x)
    b, _ = run(kernels.mala(0.7), key, x)
    assert len(traces) == 1
    assert not np.allclose(a.position, b.position)


# ------------------------------------------------------------------ 6. bad input
FACTORIES = {
    "ula": lambda s: kernels.ula(s),
    "ula_temperature": lambda s: kernels.ula(0.1, temperature=s),
    "mala": lambda s: kernels.mala(s),
    "hmc": lambda s: kernels.hmc(s, 5),
    "nuts": lambda s: kernels.nuts(s),
    "barker": lambda s: kernels.barker(s),
    "random_walk": lambda s: kernels.random_walk(s),
}


@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan"), float("inf")])
@pytest.mark.parametrize("name", list(FACTORIES))
def test_kernel_factories_reject_bad_step_size(name, bad):
    """Every factory raises ``ValueError`` naming the argument for a step size <= 0 / NaN."""
    with pytest.raises(ValueError, match=r"(step_size|temperature|scale) must be a finite number > 0"):
        FACTORIES[name](bad)


def test_kernel_factories_reject_bad_other_arguments():
    """Integer arguments, proposals and distributions are validated at construction."""
    with pytest.raises(ValueError, match="num_integration_steps must be an integer >= 1"):
        kernels.hmc(0.1, 0)
    with pytest.raises(ValueError, match="max_num_doublings must be an integer >= 1"):
        kernels.nuts(0.1, max_num_doublings=0)
    with pytest.raises(TypeError, match="distribution must be a NumPyro distribution"):
        kernels.independent(3.0)
    with pytest.raises(TypeError, match="proposal must be an ebm_ppl.kernels.Proposal"):
        kernels.mh(lambda key, x: x)
    with pytest.raises(TypeError, match=r"random_walk\(scale\) and independent\(distribution\) "
                       "already return MH kernels"):
        kernels.mh(kernels.mala(0.1))
    with pytest.raises(ValueError, match="inverse_mass_matrix must be a 1-D diagonal"):
        kernels.nuts(0.1, inverse_mass_matrix=jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="asymmetric Proposal needs log_prob_fn"):
        Proposal(sample_fn=_independent_sample, params=None)


def nan_region_logdensity(x):
    """Standard normal, but NaN (not -inf) where ``x[0] > 3``."""
    return jnp.where(x[0] > 3.0, jnp.nan, -0.5 * jnp.sum(x**2))


@pytest.mark.parametrize(
    "kernel",
    [
        kernels.ula(0.1),
        kernels.mala(0.1),
        kernels.barker(0.1),
        kernels.hmc(0.2, 3),
        kernels.nuts(0.2),
        kernels.random_walk(1.0),
    ],
    ids=["ula", "mala", "barker", "hmc", "nuts", "random_walk"],
)
def test_nan_region_does_not_poison_chains(kernel):
    """Proposals into a NaN region are rejected and flagged ``is_divergent``; positions
    and log densities stay finite and outside the region."""
    start = jnp.tile(jnp.array([2.9, 0.0]), (200, 1))
    states, infos = run_chains(kernel, nan_region_logdensity, start, jax.random.key(41), 20)
    position = np.asarray(states.position)
    assert np.all(np.isfinite(position))
    assert np.all(np.isfinite(np.asarray(states.logdensity)))
    assert np.all(position[:, 0] <= 3.0)
    assert int(jnp.sum(infos.is_divergent)) > 0
    if kernel.name != "nuts":  # NUTS may still move inside the valid part of its tree
        # a divergent step is never accepted
            assert float(jnp.max(jnp.where(infos.is_divergent, infos.acceptance_rate, 0.0))) == 0.0


# ------------------------------------------------------------------ 8. property-based
def standard_normal_logdensity(x):
    """``log N(x; 0, I)`` up to a constant, for any shape."""
    return -0.5 * jnp.sum(x**2)


@settings(max_examples=5, deadline=None)
@given(
    dim=st.integers(1, 4),
    name=st.sampled_from(KERNEL_NAMES),
    seed=st.integers(0, 2**31 - 1),
    spread=st.floats(0.1, 3.0),
)
@pytest.mark.slow
def test_kernels_finite_and_reproducible_property(dim, name, seed, spread):
    """On ``N(0, I_d)`` in float32, from starts of any spread, 5 steps of any kernel keep
    finite float32 positions, and the same key reproduces the same draws."""
    kernel = {
        **all_kernels(),
        "independent": kernels.independent(dist.Normal(jnp.ones(dim), 2.0).to_event(1)),
    }[name]
    start = spread * jnp.linspace(-1.0, 1.0, 2 * dim, dtype=jnp.float32).reshape(2, dim)
    key = jax.random.key(seed)
    first, _ = run_chains(kernel, standard_normal_logdensity, start, key, 5)
    second, _ = run_chains(kernel, standard_normal_logdensity, start, key, 5)
    assert first.position.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(first.position)))
    np.testing.assert_array_equal(np.asarray(first.position), np.asarray(second.position))


# ------------------------------------------------------------------ 7. MH of MH, MALA
def test_mh_of_an_mh_kernel_returns_it():
    """``mh(random_walk(s))`` is ``random_walk(s)`` (issue 13); options given to ``mh``
    are applied to a rebuilt kernel on the same proposal."""
    walk = kernels.random_walk(0.5)
    assert kernels.mh(walk) is walk
    imh = kernels.independent(dist.Normal(jnp.zeros(2), 2.0).to_event(1))
    assert kernels.mh(imh) is imh
    fixed = kernels.mh(walk, adapt_scale=False)
    assert fixed.adaptation == "none" and walk.adaptation == "scale"
    assert float(fixed.scale) == 0.5
    assert kernels.mh(walk, target_acceptance_rate=0.3).target_acceptance_rate == 0.3


def test_kernel_scale_is_read_through_the_kernel_and_written_through_the_proposal():
    """``Kernel.scale`` reads the proposal's scale; ``Proposal.with_scale`` writes it
    (dtype kept), which is what Robbins–Monro warm-up does; kernels without one report
    None and the warm-up refuses them."""
    walk = kernels.random_walk(0.5)
    wider = walk.replace(proposal=walk.parameters["proposal"].with_scale(2.0))
    assert float(wider.scale) == 2.0 and float(walk.scale) == 0.5
    assert wider.scale.dtype == walk.scale.dtype
    assert kernels.mala(0.1).scale is None
    with pytest.raises(ValueError, match="has no proposal"):
        ebm_ppl.adaptation.robbins_monro().init(kernels.mala(0.1), jnp.zeros(2), 10)


def test_mala_draws_equal_blackjax_mala():
    """Our MALA (NaN-safe info) makes the draws of ``blackjax.mala`` for the same keys,
    over 50 steps of 3 chains on the correlated Gaussian."""
    step_size, num_steps = 0.4, 50
    reference = blackjax.mala(gaussian_logdensity, step_size)
    ours = kernels.mala(step_size)
    keys = jax.random.split(jax.random.key(51), (num_steps, 3))
    start = jnp.array([[0.0, 0.0], [1.0, -1.0], [2.0, 0.5]])

    def run(init_fn, step_fn):
        def body(states, step_keys):
            return jax.vmap(step_fn)(step_keys, states)

        return jax.lax.scan(body, jax.vmap(init_fn)(start), keys)

    ref_states, ref_infos = jax.jit(lambda: run(reference.init, reference.step))()
    our_states, our_infos = jax.jit(lambda: run(
        lambda x: ours.init(x, gaussian_logdensity),
        lambda k, s: ours.step(k, s, gaussian_logdensity)))()
    np.testing.assert_allclose(our_states.position, ref_states.position, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(our_infos.is_accepted, ref_infos.is_accepted)
    assert 0 < float(jnp.mean(our_infos.is_accepted)) < 1  # both branches exercised


def test_run_chains_matches_explicit_keys():
    """``run_chains`` with ``(T,)`` keys equals the same run with the ``(T, C)`` keys it
    derives (``split(keys[t], C)``), and returns ``(T, C)`` infos."""
    step_keys = jax.random.split(jax.random.key(52), 20)
    start = jnp.zeros((4, 2))
    kernel = kernels.mala(0.5)
    a, infos = kernels.run_chains(kernel, gaussian_logdensity, start, step_keys)
    explicit = jax.vmap(lambda k: jax.random.split(k, 4))(step_keys)
    b, _ = kernels.run_chains(kernel, gaussian_logdensity, start, explicit)
    np.testing.assert_array_equal(a.position, b.position)
    assert infos.acceptance_rate.shape == (20, 4)


@pytest.mark.slow
@pytest.mark.parametrize("make", [
    lambda imm: kernels.barker(1.0, inverse_mass_matrix=imm),
    lambda imm: kernels.from_blackjax(blackjax.barker_proposal, step_size=1.0,
                                      inverse_mass_matrix=imm),
], ids=["barker", "from_blackjax"])
@pytest.mark.parametrize("dense", [False, True])
def test_barker_preconditions_with_the_inverse_mass_matrix(make, dense):
    """With M^{-1} = Sigma, Barker on N(0, Sigma) is Barker on N(0, I) in whitened
    coordinates: the same mean acceptance (BlackJAX 1.7 reads its argument as M; passed
    as is, Sigma gave acceptance 0.07 against 0.85 whitened)."""
    cov = jnp.array([[10.0, 0.8], [0.8, 0.1]]) if dense else jnp.array([10.0, 0.1])
    prec = jnp.linalg.inv(cov) if dense else jnp.diag(1.0 / cov)

    def acceptance(kernel, logdensity):
        state = kernel.init(jnp.zeros(2), logdensity)

        def body(state, key):
            state, info = kernel.step(key, state, logdensity)
            return state, info.acceptance_rate

        _, rates = jax.lax.scan(body, state, jax.random.split(jax.random.key(0), 4000))
        return float(rates.mean())

    target = acceptance(make(cov), lambda x: -0.5 * x @ prec @ x)
    whitened = acceptance(make(jnp.eye(2) if dense else jnp.ones(2)), lambda x: -0.5 * x @ x)
    # 4000 steps: the acceptance means have Monte-Carlo sd ~ 0.006 each
    assert abs(target - whitened) < 0.03, (target, whitened)
    assert whitened > 0.75


def test_preconditioned_mala_with_identity_is_mala_and_adapts_only_when_asked():
    """MALA preconditioned by the identity makes BlackJAX's MALA proposals (same keys:
    same draws up to rounding); ``mala(h)`` stays plain MALA with step-size warm-up, a
    mass argument switches on window adaptation (as ``hmc``)."""
    plain = kernels.mala(0.5)
    identity = kernels.mala(0.5, inverse_mass_matrix=jnp.ones(2), adapt_mass_matrix=False)
    keys = jax.random.split(jax.random.key(3), 50)

    def run(kernel):
        state = kernel.init(jnp.array([0.3, -1.0]), gaussian_logdensity)
        return jax.lax.scan(lambda s, k: kernel.step(k, s, gaussian_logdensity), state, keys)

    (_, plain_info), (_, ident_info) = run(plain), run(identity)
    np.testing.assert_array_equal(plain_info.is_accepted, ident_info.is_accepted)
    assert plain.adaptation == "step_size" and identity.adaptation == "step_size"
    assert kernels.mala(0.5, dense_mass=True).adaptation == "window"
    assert kernels.mala(0.5, dense_mass=True).dense_mass


@pytest.mark.slow
def test_preconditioned_mala_in_sample_learns_a_dense_mass_matrix():
    """``sample`` with ``mala(h, dense_mass=True)`` on N(0, [[10, .8], [.8, .1]]) (condition
    number ~200): window adaptation whitens the target, so both variances are right
    within Monte-Carlo error and the bulk ESS is over 1000 of 4000 draws (plain MALA:
    36 on the same run)."""
    import arviz as az

    import ebm_ppl

    cov = jnp.array([[10.0, 0.8], [0.8, 0.1]])
    prec = jnp.linalg.inv(cov)
    pot = ebm_ppl.Potential.from_logdensity(lambda x: -0.5 * x @ prec @ x)
    idata = ebm_ppl.sample(pot, kernels.mala(0.1, dense_mass=True), jnp.zeros(2),
                           num_samples=1000, num_warmup=1000, num_chains=4, progress=False)
    draws = next(iter(idata.posterior.data_vars.values())).values
    assert float(az.ess(draws[..., 0] ** 2)) > 1000
    for j in range(2):
        sq = np.asarray(draws[..., j], np.float64) ** 2
        mcse = sq.std() / np.sqrt(float(az.ess(sq)))
        assert abs(sq.mean() - float(cov[j, j])) / mcse < critical_z(2), j
