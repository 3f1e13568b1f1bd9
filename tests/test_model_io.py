"""ebm_ppl.save / ebm_ppl.load: one model-folder format for Python and the command line."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ebm_ppl
from ebm_ppl.cli import main
from ebm_ppl.nn import mlp_energy, noise_conditional_mlp_energy


@pytest.fixture(scope="module")
def pot():
    energy = mlp_energy((8,), "softplus", quadratic=0.2)
    params = energy.init(jax.random.key(3), 2)
    return ebm_ppl.Potential.from_energy(energy, params, temperature=0.5,
                                         example=jnp.zeros(2))


def _grid():
    return jax.random.normal(jax.random.key(0), (7, 2))


def test_save_load_round_trip(pot, tmp_path):
    folder = ebm_ppl.save(pot, tmp_path / "m", metadata={"note": "hi"},
                          history={"loss": [3.0, 2.0]}, step=5)
    loaded = ebm_ppl.load(folder)
    assert isinstance(loaded, ebm_ppl.Potential)
    assert loaded.fn == pot.fn and float(loaded.temperature) == 0.5
    assert loaded.example.shape == (2,)
    x = _grid()
    np.testing.assert_array_equal(jax.vmap(loaded.logdensity_fn)(x),
                                  jax.vmap(pot.logdensity_fn)(x))
    config = json.loads((folder / "model.json").read_text())
    assert config["metadata"] == {"note": "hi"} and config["energy"]["type"] == "mlp"
    assert ebm_ppl.model_io.read_history(folder)["loss"].tolist() == [3.0, 2.0]
    # no pickle anywhere: the arrays load with allow_pickle=False
    (npz,) = folder.glob("*.npz")
    with np.load(npz, allow_pickle=False) as arrays:
        assert len(arrays.files) == len(jax.tree.leaves(pot.params))


def test_noise_conditional_energy_at_sigma_round_trips(tmp_path):
    model = noise_conditional_mlp_energy((8,), quadratic=0.1)
    energy = model.at_sigma(0.05)
    pot = ebm_ppl.Potential.from_energy(energy, energy.init(0, 3))
    loaded = ebm_ppl.load(ebm_ppl.save(pot, tmp_path / "nc"))
    assert loaded.fn == energy and loaded.example.shape == (3,)
    x = jnp.ones(3)
    assert float(loaded.logdensity_fn(x)) == pytest.approx(float(pot.logdensity_fn(x)))


def test_model_trained_on_the_command_line_loads_in_python(tmp_path, capsys):
    folder = tmp_path / "cli-model"
    assert main(["train", "--data", "two_moons", "--n", "64", "--steps", "3", "--hidden",
                 "8", "--batch-size", "32", "--out", str(folder), "--quiet"]) == 0
    loaded = ebm_ppl.load(folder)
    assert loaded.fn == mlp_energy((8,), "swish", quadratic=0.1)
    assert np.isfinite(float(loaded.logdensity_fn(jnp.zeros(2))))
    config = ebm_ppl.model_io.read_model_config(folder)
    assert config["metadata"]["data"] == "two_moons" and config["metadata"]["steps"] == 3
    assert config["metadata"]["sigma"] == 0.2  # the objective's options are kept too
    assert len(ebm_ppl.model_io.read_history(folder)["loss"]) == 3


@pytest.mark.slow
def test_model_saved_in_python_samples_on_the_command_line(pot, tmp_path, capsys):
    folder = ebm_ppl.save(pot, tmp_path / "py-model")
    nc = tmp_path / "draws.nc"
    assert main(["sample", str(folder), "--kernel", "mala", "--samples", "20", "--warmup",
                 "10", "--chains", "2", "--out", str(nc), "--quiet"]) == 0
    assert nc.is_file()


def test_flat_model_json_of_version_0_1_still_loads(pot, tmp_path):
    folder = ebm_ppl.save(pot, tmp_path / "old")
    (folder / "model.json").write_text(json.dumps(
        {"hidden": [8], "activation": "softplus", "quadratic": 0.2, "dim": 2,
         "data": "two_moons", "objective": "dsm"}))
    loaded = ebm_ppl.load(folder)
    assert float(loaded.temperature) == 1.0 and loaded.fn == pot.fn
    assert ebm_ppl.model_io.read_model_config(folder)["metadata"]["objective"] == "dsm"


def test_save_refuses_what_it_cannot_describe(pot, tmp_path):
    lam = ebm_ppl.Potential.from_energy(lambda p, x: jnp.sum(p * x**2), jnp.ones(2))
    with pytest.raises(TypeError, match="save supports potentials of the energies of ebm_ppl.nn"):
        ebm_ppl.save(lam, tmp_path / "a")
    logd = ebm_ppl.Potential.from_logdensity(lambda x: -jnp.sum(x**2))
    with pytest.raises(TypeError, match="got a logdensity potential"):
        ebm_ppl.save(logd, tmp_path / "b")
    with pytest.raises(TypeError, match="pot must be an ebm_ppl.Potential, got dict"):
        ebm_ppl.save({}, tmp_path / "c")


def test_load_errors(pot, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ebm_ppl.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"is not a model folder \(model.json missing\)"):
        ebm_ppl.load(tmp_path / "empty")
    folder = ebm_ppl.save(pot, tmp_path / "m")
    config = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not a valid model description"):
        ebm_ppl.load(folder)
    config["energy"]["hidden"] = [9]
    (folder / "model.json").write_text(json.dumps(config))
    with pytest.raises(ebm_ppl.CheckpointError, match="shape"):
        ebm_ppl.load(folder)
    config["energy"]["type"] = "transformer"
    (folder / "model.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="energy type must be 'mlp' or 'noise_conditional_mlp'"):
        ebm_ppl.load(folder)


def test_print_potential_is_a_short_summary(pot):
    text = str(pot)
    assert text == ("Potential(kind='energy', fn=MLPEnergy(hidden=(8,), activation='softplus', "
                    "quadratic=0.2), params=33 values in 4 arrays, position=float32[2], "
                    "temperature=0.5)")
    assert "Array" not in text and len(text) < 200
