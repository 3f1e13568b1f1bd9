"""``diagnostics.summary`` says "fail" on bad runs, not only "pass" on a healthy one.

The runs are built in NumPy (no sampler): exact draws of N(0, I) (healthy), chains
stuck in different places (R-hat), a very sticky AR(1) chain (ESS), exact draws at the
wrong scale (KSD), and a healthy run with divergences. Each bad run is chosen so far
from the thresholds that its verdict does not depend on the seed.
"""

from __future__ import annotations

import types

import arviz as az
import jax.numpy as jnp
import numpy as np
import pytest

import ebm_ppl
from ebm_ppl import diagnostics

NUM_CHAINS, NUM_DRAWS = 4, 400
#: Small KSD test settings shared by the calls with a potential (one compilation).
KSD = dict(max_ksd_points=160, num_bootstrap=99)


def _run(draws: np.ndarray, diverging: np.ndarray | None = None):
    stats = {"lp": -0.5 * np.sum(draws**2, axis=-1),
             "acceptance_rate": np.full(draws.shape[:2], 0.8)}
    if diverging is not None:
        stats["diverging"] = diverging
    return az.from_dict(posterior={"x": draws}, sample_stats=stats)


def _verdict(result) -> dict[str, str]:
    return dict(zip(result.verdict["check"], result.verdict["status"]))


@pytest.fixture(scope="module")
def pot():
    return ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))


def _normal(seed: int, scale: float = 1.0) -> np.ndarray:
    return scale * np.random.default_rng(seed).normal(size=(NUM_CHAINS, NUM_DRAWS, 2))


def test_healthy_run_passes_and_wrong_scale_fails(pot):
    good = diagnostics.summary(_run(_normal(60)), pot, **KSD)
    verdict = _verdict(good)
    for check in ("R-hat (max)", "ESS bulk (min)", "ESS tail (min)", "Drift / improper target"):
        assert verdict[check] == "pass", (check, verdict)
    assert verdict["KSD p-value (pooled)"] in ("pass", "warn")
    assert good.status in ("pass", "warn")
    # draws of N(0, 4 I) against N(0, I): every mixing check passes, the KSD test fails
    bad = diagnostics.summary(_run(_normal(61, scale=2.0)), pot, **KSD)
    verdict = _verdict(bad)
    assert verdict["R-hat (max)"] == "pass" and verdict["ESS bulk (min)"] == "pass"
    assert verdict["KSD p-value (pooled)"] == "fail", bad.ksd_test
    assert bad.status == "fail"


def test_non_mixing_chains_fail_r_hat():
    """Chains centred at 0, 0, 3, 3: R-hat far above 1.05."""
    draws = _normal(62) + np.array([0.0, 0.0, 3.0, 3.0])[:, None, None]
    res = diagnostics.summary(_run(draws))
    verdict = _verdict(res)
    assert float(res.posterior["r_hat"].max()) > 1.5
    assert verdict["R-hat (max)"] == "fail" and res.status == "fail"


def test_sticky_chains_fail_ess():
    """AR(1) with rho = 0.995: ESS about 4 * 400 / 400 = 4 draws, far below 100."""
    rng = np.random.default_rng(63)
    rho = 0.995
    e = rng.normal(size=(NUM_CHAINS, NUM_DRAWS, 2))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0]
    for t in range(1, NUM_DRAWS):
        x[:, t] = rho * x[:, t - 1] + np.sqrt(1 - rho**2) * e[:, t]
    res = diagnostics.summary(_run(x))
    verdict = _verdict(res)
    assert float(res.posterior["ess_bulk"].min()) < 50
    assert verdict["ESS bulk (min)"] == "fail" and res.status == "fail"


def test_divergence_fraction_is_over_all_draws():
    """8 divergences in 1600 draws (0.5 %) warn; 40 (2.5 %) fail; none pass."""
    draws = _normal(64)
    status = {}
    for count in (0, 8, 40):
        diverging = np.zeros((NUM_CHAINS, NUM_DRAWS), bool)
        diverging[1, :count] = True
        status[count] = _verdict(diagnostics.summary(_run(draws, diverging)))["Divergences"]
    assert status == {0: "pass", 8: "warn", 40: "fail"}


@pytest.mark.parametrize(("bias", "mcse", "expected"), [
    (0.01, 0.005, "pass"),   # 0.01 + 2 * 0.005 < 0.05
    (0.04, 0.01, "warn"),    # 0.04 < 0.05 but 0.04 + 0.02 > 0.05: not resolved
    (-0.2, 0.01, "fail"),    # 0.2 - 0.02 > 0.05
    (0.06, 0.01, "warn"),    # 0.06 > 0.05 but 0.06 - 0.02 < 0.05
])
def test_ula_bias_verdict_uses_the_mcse(bias, mcse, expected):
    result = types.SimpleNamespace(max_var_rel_bias=bias, max_var_rel_bias_mcse=mcse,
                                   tolerance=0.05)
    res = diagnostics.summary(_run(_normal(65)), ula_bias=result)
    assert _verdict(res)["ULA variance bias"] == expected
    assert res.status == ("fail" if expected == "fail" else res.status)
