"""Run every example script in ``--quick`` mode and check its key numerical claim.

Each example exposes ``main(argv) -> dict``; it is imported from its file (the names
start with digits) and called with ``["--quick", "--out", tmp_path]``, like NumPyro's
``test/test_examples.py`` but in-process to pay the JAX import once. Tolerances are
Monte-Carlo z-scores against Bonferroni critical values (alpha = 1e-3, computed by the
examples from their number of checks), except where stated.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (its folder on ``sys.path`` for ``_common``)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name: str, tmp_path: Path) -> dict:
    out = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = load(name).main(["--quick", "--out", str(out)])
    assert (out / "results.json").exists()
    assert list(out.glob("*.png")), f"{name} wrote no figure"
    return results


def test_01_ula_covariance_law(tmp_path: Path) -> None:
    r = run("01_ula_gaussian_bias", tmp_path)
    # the law V diag(2 / (lam (2 - eta lam))) V^T holds at every step size ...
    assert np.all(r["max_abs_z_law"] < r["z_critical"]), r["max_abs_z_law"]
    assert np.all(r["max_abs_mean_z"] < r["z_critical"]), r["max_abs_mean_z"]
    # ... the exact covariance H^-1 is rejected at the largest one (the test can fail) ...
    assert r["max_abs_z_exact"][-1] > r["z_critical"]
    # ... and MALA at the same step sizes has no bias
    assert np.all(r["max_abs_z_mala_exact"] < r["z_critical"]), r["max_abs_z_mala_exact"]
    # ula_bias (no knowledge of the law) sees the predicted relative variance bias
    z = (r["ula_bias_var_rel"] - r["law_var_rel"]) / r["ula_bias_var_rel_mcse"]
    assert np.all(np.abs(z) < 4.0), z


def test_02_linear_energy_law_and_drift(tmp_path: Path) -> None:
    r = run("02_linear_energy_drift", tmp_path)
    assert np.all(r["max_abs_z_law"] < r["z_critical"]), r["max_abs_z_law"]
    assert np.all(r["max_abs_z_text"] > r["z_critical"]), r["max_abs_z_text"]
    assert r["drifting"] and r["warned"]
    assert r["summary_status"] == "fail"


def test_03_independent_mh_mixture(tmp_path: Path) -> None:
    r = run("03_mh_mixture_independent", tmp_path)
    assert abs(r["hastings"]["z_truth"]) < r["z_critical"]
    assert 0.0 < r["hastings"]["acceptance_rate"] < 1.0
    # without the Hastings term the chain targets p * q instead of p
    assert abs(r["no_hastings"]["z_pq"]) < r["z_critical"]
    assert abs(r["no_hastings"]["z_truth"]) > r["z_critical"]


def test_04_mh_vs_hmc(tmp_path: Path) -> None:
    r = run("04_mh_vs_hmc_rosenbrock", tmp_path)
    for name in ("mh", "hmc"):
        assert np.all(np.abs(r[name]["z_mean"]) < r["z_critical"]), (name, r[name]["z_mean"])
        assert r[name]["min_ess_bulk"] > 10
    assert r["hmc"]["acceptance_rate"] > 0.5


def test_05_langevin_temperature(tmp_path: Path) -> None:
    r = run("05_langevin_temperature", tmp_path)
    for name in ("text update (eps, eps^2)", "ula(eps^2, temperature=0.5)"):
        ratio = r[name]["variance_ratio"]
        assert np.all(np.abs(r[name]["z"]) < r["z_critical"]), (name, r[name]["z"])
        assert np.all(np.abs(ratio - 0.5) < 0.03), ratio  # halved (0.5 + O(eps^2) + MC)
        assert np.all(np.abs(r[name]["z_vs_one"]) > r["z_critical"])
    assert np.all(np.abs(r["ula(eps^2/2, temperature=1)"]["z"]) < r["z_critical"])


def test_06_training_objectives(tmp_path: Path) -> None:
    r = run("06_training_objectives", tmp_path)
    for name in ("CD", "SM", "DSM", "SSM", "NCE"):
        assert r[name]["all_losses_finite"], name
        assert np.isfinite(r[name]["mmd2"]) and r[name]["seconds_per_step"] > 0
    nce = r["NCE"]
    # learned log Z vs AIS: AIS error (4 stderr) plus 0.15 nats for the finite NCE training
    assert abs(nce["log_z_difference"]) < 4 * nce["log_z_ais_stderr"] + 0.15, nce
    # the best objectives beat a Gaussian fit to the data
    assert min(r[n]["mmd2"] for n in ("CD", "SM", "NCE")) < r["mmd2_gaussian"]


def test_07_bayesian_workflow(tmp_path: Path) -> None:
    r = run("07_bayesian_workflow", tmp_path)
    assert r["max_abs_z_grid"] < r["z_critical"], r["max_abs_z_grid"]
    assert r["max_abs_z_pairwise"] < r["z_critical"], r["max_abs_z_pairwise"]
    assert r["rhat_max"] < 1.05


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("[0-9]*.py")))
def test_example_runs_as_script(name: str, tmp_path: Path) -> None:
    """Full command-line path in a subprocess (``--quick``), as a user would run it."""
    import subprocess

    proc = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--quick", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "results.json").exists()
