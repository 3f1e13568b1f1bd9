"""The ``ebm-ppl`` command line: help with defaults, every objective and kernel end to end,
and no traceback for any input a user can type (one line, exit code 2)."""

from __future__ import annotations

import subprocess
import sys

import arviz as az
import numpy as np
import pytest
import xarray as xr
from conftest import run_cli

from ebm_ppl.cli import main
from ebm_ppl.cli.parser import KERNELS, OBJECTIVES

TINY_TRAIN = ["--n", "64", "--steps", "3", "--hidden", "8", "--batch-size", "32", "--quiet",
              "--cd-steps", "2"]
TINY_SAMPLE = ["--samples", "20", "--warmup", "10", "--chains", "2", "--quiet"]


run = run_cli


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "model"
    assert main(["train", "--data", "two_moons", "--out", str(folder), *TINY_TRAIN]) == 0
    return folder


@pytest.fixture(scope="module")
def draws(model_dir):
    nc = model_dir.parent / "draws.nc"
    assert main(["sample", str(model_dir), "--out", str(nc), "--kernel", "mala",
                 *TINY_SAMPLE]) == 0
    return nc


@pytest.mark.parametrize("command", ["demo", "train", "sample", "report"])
def test_help_of_each_command_has_examples(command, capsys):
    code, out, _ = run([command, "--help"], capsys)
    assert code == 0
    assert "examples:" in out and f"ebm-ppl {command}" in out


def _option_entries(help_text: str) -> dict[str, str]:
    """Option -> its help entry (continuation lines joined)."""
    entries: dict[str, str] = {}
    current = None
    for line in help_text.splitlines():
        stripped = line.strip()
        if line.startswith("  -") and stripped.startswith("--"):
            current = stripped.split()[0]
            entries[current] = stripped
        elif current is not None and line.startswith("    ") and stripped:
            entries[current] += " " + stripped
        else:
            current = None
    return entries


@pytest.mark.parametrize(
    "command, defaults",
    [
        ("demo", {"--steps": "2000", "--learning-rate": "0.005", "--chains": "32",
                  "--warmup": "500", "--step-size": "0.03", "--activation": "swish",
                  "--quadratic": "0.1", "--objective": "dsm", "--seed": "0",
                  "--sigma": "0.1"}),
        ("train", {"--steps": "2000; ncsn 8000", "--learning-rate": "0.005",
                   "--schedule": "cosine", "--batch-size": "256",
                   "--activation": "swish", "--quadratic": "0.1", "--sigma": "0.2",
                   "--hidden": "64 64; ncsn 128 128", "--cd-steps": "20", "--levels": "10",
                   "--cd-kernel": "mala", "--cd-step-size": "0.01",
                   "--sigma-max": "1.0", "--sigma-min": "0.02"}),
        ("sample", {"--chains": "16; anneal 4", "--warmup": "500", "--step-size": "0.01",
                    "--kernel": "auto", "--samples": "1000", "--thin": "auto",
                    "--steps-per-level": "100", "--step-scale": "0.1"}),
        ("report", {"--out": "ebm-ppl-report", "--model": "None"}),
    ],
)
def test_help_shows_every_default(command, defaults, capsys):
    _, out, _ = run([command, "--help"], capsys)
    entries = _option_entries(out)
    for option, default in defaults.items():
        assert f"(default: {default})" in entries[option], (option, entries[option])


@pytest.mark.parametrize("name", ["sm", "ssm"])
@pytest.mark.parametrize("sigma", ["0", "0.3"])
def test_sigma_is_the_data_noise_of_sm_and_ssm(name, sigma):
    """``--sigma`` reaches score_matching / sliced_score_matching (0: exact, the loss does
    not depend on the key), as the help says."""
    import jax
    import jax.numpy as jnp

    from ebm_ppl.cli.commands import make_objective
    from ebm_ppl.cli.parser import build_parser
    from ebm_ppl.objectives import score_matching, sliced_score_matching

    args = build_parser().parse_args(["train", "--data", "two_moons", "--objective", name,
                                      "--sigma", sigma])
    built = make_objective(args)
    factory = score_matching if name == "sm" else sliced_score_matching
    energy = lambda p, x: 0.5 * p * jnp.sum(x**2)  # noqa: E731
    data = jax.random.normal(jax.random.key(0), (64, 2))
    got = [float(built.loss(1.0, data, jax.random.key(k), energy)[0]) for k in (1, 2)]
    want = float(factory(sigma=float(sigma)).loss(1.0, data, jax.random.key(1), energy)[0])
    assert got[0] == want
    assert (got[0] == got[1]) == (sigma == "0" and name == "sm")


@pytest.mark.parametrize("kernel", ["mala", "ula", "pt"])
def test_cd_kernel_reaches_the_objective_and_the_metadata(kernel):
    """``--cd-kernel`` picks the kernel of CD's persistent chains (default mala, whose
    negatives follow the model), with ``--cd-step-size``, and the model folder records it."""
    import jax
    import jax.numpy as jnp

    from ebm_ppl.cli.commands import make_objective, model_metadata
    from ebm_ppl.cli.parser import build_parser
    from ebm_ppl.kernels import mala, parallel_tempering, tempered_ladder, ula
    from ebm_ppl.objectives import contrastive_divergence

    extra = {"mala": [], "ula": ["--cd-kernel", "ula"],
             "pt": ["--cd-kernel", "pt", "--cd-temperatures", "3",
                    "--cd-max-temperature", "9"]}[kernel]
    args = build_parser().parse_args(["train", "--data", "two_moons", "--objective", "cd",
                                      "--cd-steps", "3", "--cd-step-size", "0.05", *extra])
    built = make_objective(args)
    betas = tempered_ladder(3, 9.0)

    def pt(step):
        return parallel_tempering(mala(step), betas=betas,
                                  replica_parameters={"step_size": step / betas})

    factory = {"mala": mala, "ula": ula, "pt": pt}[kernel]
    want_objective = contrastive_divergence(factory(0.05), num_steps=3, persistent=True,
                                            energy_regularization=0.1)
    energy = lambda p, x: 0.5 * p * jnp.sum(x**2)  # noqa: E731
    data = jax.random.normal(jax.random.key(0), (64, 2))
    got, want = (
        float(o.loss(1.0, data, jax.random.key(1), energy,
                     o.init(jax.random.key(2), 1.0, data))[1][0]["acceptance_rate"])
        for o in (built, want_objective))
    assert got == want
    assert (got < 1.0) == (kernel != "ula")  # ULA accepts every finite step
    metadata = model_metadata(args, "two_moons")
    assert metadata["cd_kernel"] == kernel
    assert ("cd_max_temperature" in metadata) == (kernel == "pt")
    if kernel == "pt":
        assert built.init(jax.random.key(2), 1.0, data).buffer.shape == (10_000, 3, 2)


@pytest.mark.parametrize("flags, message", [
    (["--cd-temperatures", "1"], "--cd-temperatures must be at least 2"),
    (["--cd-max-temperature", "1"], "--cd-max-temperature must be > 1"),
])
def test_cd_pt_options_are_checked(flags, message, capsys):
    from ebm_ppl.cli import main

    code = main(["train", "--data", "two_moons", "--objective", "cd", "--cd-kernel", "pt",
                 "--steps", "1", *flags])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_learning_rate_schedule(schedule):
    """``--schedule cosine`` decays Adam's step from ``--learning-rate`` to a tenth of it
    over ``--steps`` (half-way: 0.55), ``constant`` keeps it. With a constant gradient
    Adam's normalised step is 1, so each update is minus the step size of its step."""
    import jax.numpy as jnp
    import numpy as np

    from ebm_ppl.cli.commands import make_optimizer
    from ebm_ppl.cli.parser import build_parser

    args = build_parser().parse_args(["train", "--data", "two_moons", "--steps", "100",
                                      "--learning-rate", "0.02", "--schedule", schedule])
    optimizer = make_optimizer(args)
    state = optimizer.init(jnp.zeros(()))
    sizes = []
    for _ in range(101):
        update, state = optimizer.update(jnp.ones(()), state)
        sizes.append(-float(update))
    want = [0.02, 0.011, 0.002] if schedule == "cosine" else [0.02] * 3
    np.testing.assert_allclose([sizes[0], sizes[50], sizes[100]], want, rtol=1e-5)


def test_top_level_help_lists_commands():
    res = subprocess.run([sys.executable, "-m", "ebm_ppl.cli", "--help"], capture_output=True,
                         text=True, check=True)
    for command in ("demo", "train", "sample", "report"):
        assert command in res.stdout


def test_no_command_prints_help_and_fails(capsys):
    code, out, _ = run([], capsys)
    assert code == 2 and "COMMAND" in out


@pytest.mark.slow
def test_every_objective_and_kernel_end_to_end(tmp_path, capsys):
    """Each --objective trains and each --kernel samples (nce crashed before: its
    parameters were wrapped twice)."""
    for objective in OBJECTIVES:
        folder = tmp_path / objective
        code, out, err = run(["train", "--data", "two_moons", "--objective", objective,
                              "--out", str(folder), *TINY_TRAIN], capsys)
        assert code == 0, err
        assert "model written" in out
    for kernel in KERNELS:
        nc = tmp_path / f"{kernel}.nc"
        code, _, err = run(["sample", str(tmp_path / "nce"), "--kernel", kernel,
                            "--step-size", "0.1", "--out", str(nc), *TINY_SAMPLE,
                            "--warmup", "0"], capsys)
        assert code == 0, err
        assert az.from_netcdf(str(nc)).posterior["x"].shape == (2, 20, 2)


@pytest.mark.slow
def test_train_sample_report_with_model_and_data(model_dir, draws, tmp_path, capsys):
    out = tmp_path / "report"
    code, stdout, err = run(["report", str(draws), "--model", str(model_dir), "--data",
                             "two_moons", "--n", "200", "--seed", "1", "--out", str(out),
                             "--quiet"], capsys)
    assert code == 0, err
    page = (out / "index.html").read_text()
    assert "Model vs data" in page and "KSD goodness of fit" in page and "MMD" in page
    assert "KSD p-value (pooled)" in page
    for figure in ("density.png", "ksd.png", "training.png"):
        assert (out / figure).is_file(), figure
    assert "report written" in stdout


def _foreign_netcdf(path):
    xr.Dataset({"temperature": ("time", np.arange(5.0))}).to_netcdf(path)
    return path


def _three_dim_draws(path):
    az.from_dict(posterior={"x": np.zeros((2, 30, 3))}).to_netcdf(str(path))
    return path


BAD_INVOCATIONS = {
    "negative quadratic": ["train", "--data", "two_moons", "--quadratic", "-1"],
    "unknown objective": ["train", "--data", "two_moons", "--objective", "mle"],
    "dsm without noise": ["train", "--data", "two_moons", "--sigma", "0"],
    "negative sigma": ["train", "--data", "two_moons", "--objective", "sm", "--sigma", "-0.1"],
    "zero steps": ["train", "--data", "two_moons", "--steps", "0"],
    "infinite learning rate": ["train", "--data", "two_moons", "--learning-rate", "inf"],
    "negative seed": ["train", "--data", "two_moons", "--seed", "-1"],
    "missing data file": ["train", "--data", "{tmp}/no_such.npy"],
    "unknown data set": ["train", "--data", "moons_of_jupiter"],
    "data with NaN": ["train", "--data", "{tmp}/nan.csv"],
    "unwritable out": ["train", "--data", "two_moons", "--steps", "1", "--out",
                       "{tmp}/a_file/model"],
    "ncsn sigma-min above sigma-max": ["train", "--data", "two_moons", "--objective", "ncsn",
                                       "--sigma-min", "2"],
    "ncsn with one level": ["train", "--data", "two_moons", "--objective", "ncsn", "--levels",
                            "1"],
    "ncsn in the demo": ["demo", "--objective", "ncsn"],
    "anneal a model without levels": ["sample", "{model}", "--kernel", "anneal"],
    "anneal with MCMC options": ["sample", "{model}", "--kernel", "anneal", "--thin", "5"],
    "negative warm-up": ["sample", "--warmup", "-5", "x"],
    "negative demo warm-up": ["demo", "--warmup", "-3"],
    "nan step size": ["sample", "{model}", "--step-size", "nan"],
    "unknown kernel": ["sample", "{model}", "--kernel", "gibbs"],
    "missing model folder": ["sample", "{tmp}/nowhere"],
    "folder that is not a model": ["sample", "{tmp}"],
    "corrupted model": ["sample", "{tmp}/broken_model"],
    "sample to unwritable out": ["sample", "{model}", "--out", "{tmp}/a_file/x.nc"],
    "missing netCDF": ["report", "{tmp}/missing.nc"],
    "garbage netCDF": ["report", "{tmp}/garbage.nc"],
    "netCDF that is not ours": ["report", "{tmp}/foreign.nc"],
    "data without model": ["report", "{draws}", "--data", "two_moons"],
    "draws of another dimension": ["report", "{tmp}/three.nc", "--model", "{model}"],
    "report model that is not one": ["report", "{draws}", "--model", "{tmp}"],
    "report data of another dimension": ["report", "{draws}", "--model", "{model}", "--data",
                                         "{tmp}/three_columns.csv"],
}


@pytest.fixture
def bad_inputs(tmp_path, model_dir, draws):
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "nan.csv").write_text("1,2\nnan,3\n4,5\n")
    (tmp_path / "three_columns.csv").write_text("1,2,3\n4,5,6\n7,8,9\n")
    (tmp_path / "garbage.nc").write_bytes(b"not a netcdf file")
    _foreign_netcdf(tmp_path / "foreign.nc")
    _three_dim_draws(tmp_path / "three.nc")
    broken = tmp_path / "broken_model"
    broken.mkdir()
    for path in model_dir.iterdir():
        content = path.read_bytes()
        (broken / path.name).write_bytes(content[: len(content) // 2]
                                         if path.suffix == ".npz" else content)
    return {"tmp": str(tmp_path), "model": str(model_dir), "draws": str(draws)}


@pytest.mark.parametrize("name", list(BAD_INVOCATIONS))
def test_bad_input_is_one_line_and_exit_code_2(name, bad_inputs, capsys, monkeypatch):
    monkeypatch.chdir(bad_inputs["tmp"])
    argv = [arg.format(**bad_inputs) for arg in BAD_INVOCATIONS[name]] + ["--quiet"]
    code, _, err = run(argv, capsys)
    assert code == 2, f"{name}: exit code {code}, stderr {err!r}"
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert errors[0].startswith(f"ebm-ppl {argv[0]}: error:") or "usage: ebm-ppl" in err


def test_argument_error_prints_the_usage_of_its_command(capsys):
    _, _, err = run(["sample", "--warmup", "-5", "x"], capsys)
    assert "usage: ebm-ppl sample" in err
    assert "--warmup: expected an integer >= 0, got '-5'" in err


def test_error_messages_name_the_problem(bad_inputs, capsys):
    expected = {
        "missing data file": "no_such.npy",
        "unknown data set": "two_moons",
        "folder that is not a model": "is not a model folder",
        "corrupted model": "corrupted or partial",
        "netCDF that is not ours": "holds no posterior",
        "garbage netCDF": "could not read",
        "draws of another dimension": "dimension 3",
        "unwritable out": "cannot create the model folder",
        "dsm without noise": "--objective dsm needs --sigma > 0",
        "ncsn sigma-min above sigma-max": "--sigma-min (2) must be smaller than --sigma-max",
        "ncsn with one level": "--levels must be at least 2",
        "anneal a model without levels": "--kernel anneal needs a model trained with "
                                          "--objective ncsn",
    }
    for name, message in expected.items():
        argv = [arg.format(**bad_inputs) for arg in BAD_INVOCATIONS[name]] + ["--quiet"]
        _, _, err = run(argv, capsys)
        assert message in err, (name, err)
