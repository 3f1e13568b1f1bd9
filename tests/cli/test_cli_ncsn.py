"""``ebm-ppl train --objective ncsn`` and ``ebm-ppl sample`` of such a model: the levels
are kept in the model folder, sampling anneals over them by default, and the command line
draws exactly what the documented Python recipe draws."""

from __future__ import annotations

import json

import arviz as az
import jax
import numpy as np
import pytest
from conftest import run_cli

import ebm_ppl
from ebm_ppl.cli import main
from ebm_ppl.nn import FixedSigmaEnergy

TINY = ["--n", "64", "--steps", "3", "--hidden", "8", "--batch-size", "32", "--quiet"]
LEVELS = ["--levels", "4", "--sigma-max", "1.5", "--sigma-min", "0.05"]


run = run_cli


@pytest.fixture(scope="module")
def ncsn_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ncsn") / "model"
    assert main(["train", "--data", "rings", "--objective", "ncsn", "--out", str(folder),
                 *TINY, *LEVELS]) == 0
    return folder


def test_model_folder_keeps_the_levels(ncsn_dir):
    config = json.loads((ncsn_dir / "model.json").read_text())
    want = np.geomspace(1.5, 0.05, 4)
    np.testing.assert_allclose(config["metadata"]["sigmas"], want, rtol=1e-12)
    assert config["metadata"]["objective"] == "ncsn"
    pot = ebm_ppl.load(ncsn_dir)
    assert isinstance(pot.fn, FixedSigmaEnergy)
    assert pot.fn.sigma == pytest.approx(0.05)  # the potential is the smallest level


def test_default_kernel_anneals_and_matches_the_python_recipe(ncsn_dir, tmp_path, capsys):
    """``auto`` anneals an ncsn model; the draws equal ``annealed_langevin`` called as
    the model_io docstring tells Python users (init ``sigma_max · N(0, I)`` from
    ``key(seed)``, sampler seed ``seed + 1``)."""
    nc = tmp_path / "draws.nc"
    code, _, err = run(["sample", str(ncsn_dir), "--chains", "3", "--samples", "5",
                        "--steps-per-level", "7", "--step-scale", "0.05", "--seed", "4",
                        "--quiet", "--out", str(nc)], capsys)
    assert code == 0, err
    idata = az.from_netcdf(str(nc))
    assert idata.posterior["x"].shape == (3, 5, 2)
    assert "annealed_langevin" in idata.attrs["ebm_ppl_config"]
    assert int(idata.sample_stats["rejected"].sum()) == 0

    pot = ebm_ppl.load(ncsn_dir)
    sigmas = json.loads((ncsn_dir / "model.json").read_text())["metadata"]["sigmas"]
    init = sigmas[0] * jax.random.normal(jax.random.key(4), (15, 2))
    want = ebm_ppl.sampling.annealed_langevin(pot.fn.model, pot.energy_params, sigmas, init,
                                              steps_per_level=7, step_scale=0.05, seed=5,
                                              num_chains=3)
    np.testing.assert_array_equal(idata.posterior["x"].values, want.posterior["x"].values)


def test_mcmc_kernel_on_an_ncsn_model_says_what_it_samples(ncsn_dir, tmp_path, capsys):
    nc = tmp_path / "mala.nc"
    code, _, err = run(["sample", str(ncsn_dir), "--kernel", "mala", "--chains", "2",
                        "--samples", "10", "--warmup", "0", "--quiet", "--out", str(nc)],
                       capsys)
    assert code == 0, err
    assert "smallest noise level only (sigma 0.05)" in err and "--kernel anneal" in err
    assert az.from_netcdf(str(nc)).posterior["x"].shape == (2, 10, 2)


@pytest.mark.parametrize("options, named", [(["--warmup", "10"], "--warmup does not"),
                                            (["--thin", "2", "--step-size", "0.1"],
                                             "--step-size, --thin do not")])
def test_anneal_refuses_mcmc_options(ncsn_dir, tmp_path, capsys, options, named):
    code, _, err = run(["sample", str(ncsn_dir), "--kernel", "anneal", *options, "--quiet",
                        "--out", str(tmp_path / "x.nc")], capsys)
    assert code == 2
    assert named in err and "--steps-per-level" in err
    assert "Traceback" not in err


def test_report_of_an_ncsn_model_explains_its_ksd_verdict(ncsn_dir, tmp_path, capsys):
    """The KSD verdict of an annealed noise-conditional model is read at its smallest
    level; the report says so (issue #27), and says nothing of the kind for other models."""
    nc = tmp_path / "draws.nc"
    code, _, err = run(["sample", str(ncsn_dir), "--chains", "2", "--samples", "5",
                        "--steps-per-level", "3", "--out", str(nc), "--quiet"], capsys)
    assert code == 0, err
    code, _, err = run(["report", str(nc), "--model", str(ncsn_dir), "--out",
                        str(tmp_path / "rep"), "--quiet"], capsys)
    assert code == 0, err
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## KSD and a noise-conditional energy" in md
    assert "smallest level alone (sigma = 0.05)" in md
    from ebm_ppl.reporting.netcdf import noise_conditional_notes

    plain = tmp_path / "plain"
    ebm_ppl.save(ebm_ppl.load(ncsn_dir), plain)  # a plain potential keeps no levels
    assert noise_conditional_notes(plain) == []
