"""The maths of warm-up adaptation against independent references (issue #26).

* Stan's window schedule, written out from the Stan Reference Manual (not BlackJAX).
* Window adaptation, dual averaging of the step size and Robbins–Monro scale adaptation
  fed a fixed sequence of positions and acceptance rates equal a NumPy float64
  re-implementation of the recursions step by step (float32 precision).
* Through :func:`ebm_ppl.sample`: the stored warm-up (``save_warmup``) replayed through
  the reference gives the step sizes the chains used and the tuned inverse mass matrix
  (so the driver feeds the post-transition position and the transition's acceptance
  rate); HMC with a fixed trajectory on a Gaussian of scales 1 and 100 mixes only if it
  samples with the adapted mass matrix; MALA reaches its target acceptance rate.
"""

from __future__ import annotations

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_z

import ebm_ppl
from ebm_ppl import adaptation, kernels
from ebm_ppl.sampling.resume import restore_state

# Hoffman & Gelman (2014) / BlackJAX defaults of dual averaging.
T0, GAMMA, KAPPA = 10.0, 0.05, 0.75
#: Robbins–Monro gain exponent of the "scale" scheme.
RM_EXPONENT = 0.6
RTOL = 1e-3  # float32 recursions against float64; every mutant moves values by O(1)


# ------------------------------------------------------------------ references
def stan_windows(num_warmup: int) -> list[tuple[int, int]]:
    """Slow windows ``[start, end)`` of Stan's schedule (Reference Manual, *Automatic
    parameter tuning*): initial buffer 75, first window 25, terminal buffer 50 (15 % /
    75 % / 10 % below 150 steps); each window doubles, and one whose successor would
    not fit before the terminal buffer is stretched to it; none below 20 steps."""
    if num_warmup < 20:
        return []
    if num_warmup < 150:
        init, term = int(0.15 * num_warmup), int(0.1 * num_warmup)
        size = num_warmup - init - term
    else:
        init, term, size = 75, 50, 25
    end_all, start, windows = num_warmup - term, init, []
    while start < end_all:
        end = start + size
        if end + 2 * size > end_all:
            end = end_all
        windows.append((start, end))
        start, size = end, 2 * size
    return windows


class DualAveraging:
    """Hoffman & Gelman (2014), section 3.2.1, as BlackJAX computes it: ``mu = log(10
    h0)``, ``Hbar_t = (1 - 1/(t + t0)) Hbar_{t-1} + (delta - alpha_t)/(t + t0)``,
    ``log h_{t+1} = mu - sqrt(t)/gamma Hbar_t``, and the average
    ``t^-kappa log h_t + (1 - t^-kappa) avg`` of the iterate *before* the update."""

    def __init__(self, step_size: float, target: float) -> None:
        self.target = target
        self.restart(step_size)

    def restart(self, step_size: float) -> None:
        self.log_h, self.avg, self.t, self.err = np.log(step_size), 0.0, 1, 0.0
        self.mu = np.log(10.0 * step_size)

    def update(self, acceptance_rate: float) -> None:
        t = self.t
        self.err = (1 - 1 / (t + T0)) * self.err + (self.target - acceptance_rate) / (t + T0)
        eta = t ** -KAPPA
        self.avg = eta * self.log_h + (1 - eta) * self.avg
        self.log_h = self.mu - np.sqrt(t) / GAMMA * self.err
        self.t += 1

    @property
    def final(self) -> float:
        return float(np.exp(self.avg))


def reference_window(positions, rates, step_size, imm, target, dense=False):
    """Step size and inverse mass matrix after each warm-up update of the "window"
    scheme (``dense`` False: diagonal); ``positions[s]`` is fed at update ``s``."""
    n = len(rates)
    ends = {end - 1: (start, end) for start, end in stan_windows(n)}
    da = DualAveraging(step_size, target)
    imm = np.asarray(imm, np.float64)
    steps, imms = [], []
    for s in range(n):
        da.update(rates[s])
        if s in ends:
            start, end = ends[s]
            window = np.asarray(positions[start:end], np.float64)
            m = end - start
            cov = np.atleast_2d(np.cov(window, rowvar=False))
            reg = m / (m + 5.0) * cov + 1e-3 * 5.0 / (m + 5.0) * np.eye(cov.shape[0])
            imm = reg if dense else np.diag(reg)
            da.restart(da.final)
        steps.append(da.final if s == n - 1 else float(np.exp(da.log_h)))
        imms.append(imm)
    return np.array(steps), np.array(imms)


def reference_step_size(rates, step_size, target):
    """Step size after each update of the "step_size" scheme (averaged at the end)."""
    da, steps = DualAveraging(step_size, target), []
    for s, rate in enumerate(rates):
        da.update(rate)
        steps.append(da.final if s == len(rates) - 1 else float(np.exp(da.log_h)))
    return np.array(steps)


def reference_scale(rates, scale, target):
    """Robbins–Monro: ``log s_{t+1} = log s_t + (t + 1)^-0.6 (alpha_t - delta)``."""
    log_s, out = np.log(scale), []
    for t, rate in enumerate(rates):
        log_s += (t + 1.0) ** -RM_EXPONENT * (rate - target)
        out.append(np.exp(log_s))
    return np.array(out)


def _rates(seed, n, target, sd=0.15):
    """Acceptance rates scattered around ``target`` (clipped to [0, 1])."""
    return np.clip(target + sd * np.random.default_rng(seed).standard_normal(n), 0.0, 1.0)


def _adapt(kernel, positions, rates, extra=0):
    """Run the kernel's default warm-up's ``update`` over ``positions``/``rates`` (plus
    ``extra`` updates past the warm-up); the kernel after each update."""
    num_warmup = positions.shape[0] - extra
    kernel = kernel.with_defaults(jnp.zeros(positions.shape[1]))

    @jax.jit
    def run(kernel, positions, rates):
        warmup = kernel.default_warmup
        state = warmup.init(kernel, positions[0], num_warmup)

        def body(carry, inputs):
            kernel, state = warmup.update(*carry, *inputs)
            return (kernel, state), kernel

        return jax.lax.scan(body, (kernel, state), (positions, rates))[1]

    return run(kernel, jnp.asarray(positions, jnp.float32), jnp.asarray(rates, jnp.float32))


# ------------------------------------------------------------------ schedule
def test_stan_reference_schedule_is_the_documented_one():
    """The reference itself: Stan's manual example, 1000 steps = 75 + 25, 50, 100, 200,
    500 + 50."""
    assert stan_windows(1000) == [(75, 100), (100, 150), (150, 250), (250, 450), (450, 950)]
    assert stan_windows(100) == [(15, 90)]
    assert stan_windows(19) == []


def test_window_stage_is_stans_schedule():
    """:func:`adaptation.window_stage` marks exactly the steps of Stan's slow windows
    and their last steps, for squeezed, default and long warm-ups."""
    stages = jax.jit(jax.vmap(adaptation.window_stage, (0, None)))
    for n in (19, 20, 60, 149, 150, 200, 320, 500, 1000, 1500):
        slow_got, end_got = (np.asarray(a, int)[:n] for a in stages(jnp.arange(1500), n))
        slow, end = np.zeros(n, int), np.zeros(n, int)
        for start, stop in stan_windows(n):
            slow[start:stop] = 1
            end[stop - 1] = 1
        np.testing.assert_array_equal(slow_got, slow, err_msg=f"slow, num_warmup={n}")
        np.testing.assert_array_equal(end_got, end, err_msg=f"window end, num_warmup={n}")


# ------------------------------------------------------------------ recursions
@pytest.mark.parametrize("dense", [False, True])
def test_window_adaptation_equals_the_reference(dense):
    """200 updates (slow windows 75-100 and 100-150): the step size after every update
    (dual averaging, restarted from its average at each window end, averaged at the
    end) and the regularised Welford estimate of each window, diagonal or dense."""
    n, target = 200, 0.8
    rng = np.random.default_rng(0)
    positions = rng.standard_normal((n, 3)) * np.array([1.0, 10.0, 0.1])
    positions[:, 1] += 0.5 * positions[:, 0]  # a correlation for the dense estimate
    rates = _rates(1, n, target)
    kernel = kernels.hmc(0.3, 3, dense_mass=dense)
    history = _adapt(kernel, positions, rates)
    imm0 = np.eye(3) if dense else np.ones(3)
    steps, imms = reference_window(positions, rates, 0.3, imm0, target, dense)
    np.testing.assert_allclose(history.parameters["step_size"], steps, rtol=RTOL)
    np.testing.assert_allclose(history.parameters["inverse_mass_matrix"], imms,
                               rtol=RTOL, atol=1e-7)


def test_step_size_adaptation_equals_the_reference():
    """MALA's "step_size" scheme: dual averaging after every update, the average after
    the last one, and no change on updates past ``num_warmup``."""
    n, extra = 60, 3
    rates = _rates(2, n + extra, 0.574, sd=0.25)
    kernel = kernels.mala(0.3)
    history = _adapt(kernel, np.zeros((n + extra, 2)), rates, extra=extra)
    steps = reference_step_size(rates[:n], 0.3, 0.574)
    got = np.asarray(history.parameters["step_size"])
    np.testing.assert_allclose(got[:n], steps, rtol=RTOL)
    np.testing.assert_array_equal(got[n:], got[n - 1])


def test_scale_adaptation_equals_robbins_monro():
    """Random-walk MH: the proposal scale after every update, from 0.3 towards
    acceptance 0.234, frozen past ``num_warmup``."""
    n, extra = 40, 2
    walk = kernels.random_walk(0.3)
    target = walk.target_acceptance_rate
    rates = _rates(3, n + extra, target, sd=0.2)
    history = _adapt(walk, np.zeros((n + extra, 2)), rates, extra=extra)
    got = np.asarray(history.scale)
    np.testing.assert_allclose(got[:n], reference_scale(rates[:n], 0.3, target), rtol=RTOL)
    np.testing.assert_array_equal(got[n:], got[n - 1])


# ------------------------------------------------------------------ through sample
SCALES = np.array([1.0, 100.0])


def _scaled_energy(x):
    return 0.5 * jnp.sum((x / jnp.asarray(SCALES, x.dtype)) ** 2)


SCALED = ebm_ppl.Potential.from_energy(_scaled_energy)
HMC_WARMUP, HMC_SAMPLES, HMC_CHAINS = 1000, 1000, 4


@pytest.fixture(scope="module")
def scaled_run():
    """HMC with 3 leapfrog steps on N(0, diag(1, 100^2)), chains started at exact
    draws, warm-up kept."""
    init = jax.random.normal(jax.random.key(0), (HMC_CHAINS, 2)) * jnp.asarray(SCALES)
    kernel = kernels.hmc(0.5, 3)
    idata = ebm_ppl.sample(SCALED, kernel, init, num_samples=HMC_SAMPLES,
                           num_warmup=HMC_WARMUP, num_chains=HMC_CHAINS, progress=False,
                           seed=1, save_warmup=True)
    _, tuned, _, _, _ = restore_state(idata, SCALED, kernel)
    return idata, tuned


def test_sample_warmup_replays_through_the_reference(scaled_run):
    """Each chain's stored warm-up (positions after each transition and its acceptance
    rate) fed to the reference gives the step size the chain used at every warm-up
    step and after it, and the inverse mass matrix it samples with."""
    idata, tuned = scaled_run
    warm_x = idata.warmup_posterior["x"].values
    warm_stats = idata.warmup_sample_stats
    for c in range(HMC_CHAINS):
        rates = warm_stats["acceptance_rate"].values[c].astype(np.float64)
        steps, imms = reference_window(warm_x[c], rates, 0.5, np.ones(2), 0.8)
        used = np.concatenate([[0.5], steps[:-1]])  # step t uses the kernel after t - 1
        np.testing.assert_allclose(warm_stats["step_size"].values[c], used, rtol=RTOL)
        np.testing.assert_allclose(idata.sample_stats["step_size"].values[c, 0], steps[-1],
                                   rtol=RTOL)
        np.testing.assert_allclose(tuned.parameters["inverse_mass_matrix"][c], imms[-1],
                                   rtol=RTOL)


def test_hmc_samples_with_the_adapted_mass_matrix(scaled_run):
    """With a fixed 3-step trajectory, the scale-100 coordinate mixes only under the
    adapted mass matrix (whitened, each draw moves it by about one sd: ESS/N of order 1);
    with the identity mass the step size is set by the scale-1 coordinate and the
    scale-100 one random-walks by about 3 step sizes per draw (ESS/N about 1e-3). So
    ESS/N > 0.1 for both coordinates; means and variances match (ESS-based MCSE)."""
    idata, _ = scaled_run
    x = idata.posterior["x"].values  # (chain, draw, 2)
    est, tru, se, lab = [], [], [], []
    for j, scale in enumerate(SCALES):
        for name, values, truth in (("mean", x[..., j], 0.0),
                                    ("var", x[..., j] ** 2, scale ** 2)):
            ess = float(az.ess(values))
            if name == "mean":
                assert ess > 0.1 * values.size, (j, ess)
            est.append(values.mean())
            tru.append(truth)
            se.append(values.std() / np.sqrt(ess))
            lab.append(f"{name}[{j}]")
    assert_z(est, tru, se, lab)


@pytest.mark.slow  # 16000 warm-up steps; its mutant is also caught by the step-size reference
def test_mala_reaches_its_target_acceptance_after_warmup():
    """``sample(pot, kernels.mala(h))`` on a 10-d standard Gaussian, 16 chains started
    at exact draws: the mean acceptance rate of the sampling phase equals 0.574 within
    its standard error across chains (which includes the chains' different adapted
    step sizes). Dual averaging's finite-warm-up bias (the acceptance at the averaged
    step size; +0.02 after 500 steps) is about 0.002 after 16000, below that error."""
    num_chains = 16
    pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x ** 2))
    init = jax.random.normal(jax.random.key(1), (num_chains, 10))
    idata = ebm_ppl.sample(pot, kernels.mala(0.5), init, num_samples=2000, num_warmup=16000,
                           num_chains=num_chains, progress=False, seed=0)
    per_chain = idata.sample_stats["acceptance_rate"].values.mean(axis=1)
    se = per_chain.std(ddof=1) / np.sqrt(num_chains)
    assert_z([per_chain.mean()], [0.574], [se], ["acceptance"])
