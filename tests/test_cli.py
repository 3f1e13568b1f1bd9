"""The ``ebm-ppl`` command line: help, errors as one line, train → sample → report."""

import subprocess
import sys

import arviz as az
import pytest

from ebm_ppl.cli import main


@pytest.mark.parametrize("command", ["demo", "train", "sample", "report"])
def test_help_of_each_command_has_examples(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"ebm-ppl {command}" in out


def test_top_level_help_lists_commands():
    res = subprocess.run([sys.executable, "-m", "ebm_ppl.cli", "--help"], capture_output=True,
                         text=True, check=True)
    for command in ("demo", "train", "sample", "report"):
        assert command in res.stdout


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "no_such.npy", "--steps", "1"], "no_such.npy"),
        (["train", "--data", "moons_of_jupiter", "--steps", "1"], "two_moons"),
        (["sample", "not_a_model_dir"], "model.json missing"),
        (["report", "missing.nc"], "no such file"),
    ],
)
def test_bad_files_give_one_line_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv + ["--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "two_moons", "--objective", "mle"],
        ["train", "--data", "two_moons", "--steps", "0"],
        ["sample", "x", "--step-size", "-1"],
        ["sample", "x", "--kernel", "gibbs"],
        ["demo", "--warmup", "-3"],
    ],
)
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_corrupt_netcdf_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"not a netcdf file")
    assert main(["report", str(bad), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "could not read" in err and len(err.strip().splitlines()) == 1


def test_train_sample_report_round_trip(tmp_path, capsys):
    model = tmp_path / "model"
    assert main(["train", "--data", "two_moons", "--n", "300", "--steps", "60", "--hidden",
                 "16", "16", "--batch-size", "64", "--out", str(model), "--quiet"]) == 0
    assert (model / "model.json").is_file()
    nc = tmp_path / "draws.nc"
    assert main(["sample", str(model), "--kernel", "mala", "--samples", "50", "--warmup",
                 "30", "--chains", "2", "--out", str(nc), "--quiet", "--step-size",
                 "0.1"]) == 0
    idata = az.from_netcdf(str(nc))
    assert idata.posterior["x"].shape == (2, 50, 2)
    assert main(["report", str(nc), "--out", str(tmp_path / "report"), "--quiet"]) == 0
    assert (tmp_path / "report" / "index.html").is_file()
    out = capsys.readouterr().out
    assert "model written" in out and "report written" in out
