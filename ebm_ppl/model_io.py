"""Model folders: one format for ``ebm_ppl.save``/``ebm_ppl.load`` and ``ebm-ppl train``.

A model folder holds

* ``model.json``: what rebuilds the energy (its type and configuration), the position
  dimension, the parameter dtype, the temperature and free-form ``metadata`` (the data
  set, the objective...);
* the parameters as a pickle-free checkpoint (``ckpt-<step>.npz`` + ``.json``, see
  :mod:`ebm_ppl.training.checkpoint`);
* optionally ``history.json``: the training curves, name -> list of per-step values.

Only energies whose configuration can be written as JSON are supported: the MLP
energies of :mod:`ebm_ppl.nn` (``mlp_energy``, and a noise-conditional energy fixed at
one σ with ``at_sigma``). A model folder therefore never runs code from the file (no
pickle); an arbitrary Python energy is saved with its own code plus
:func:`~ebm_ppl.training.save_checkpoint` of its parameters.

A model of ``ebm-ppl train --objective ncsn`` is saved as its slice at the smallest noise
level, with all its levels in ``read_model_config(folder)["metadata"]["sigmas"]``; draw it
as ``ebm-ppl sample`` does, by annealing over them::

    pot = ebm_ppl.load(folder)
    sigmas = read_model_config(folder)["metadata"]["sigmas"]
    idata = ebm_ppl.sampling.annealed_langevin(
        pot.fn.model, pot.energy_params, sigmas,
        sigmas[0] * jax.random.normal(jax.random.key(0), (1000, pot.example.shape[0])))

Examples
--------
>>> import jax, tempfile, ebm_ppl
>>> energy = ebm_ppl.nn.mlp_energy((16,), quadratic=0.1)
>>> pot = ebm_ppl.Potential.from_energy(energy, energy.init(0, 2))
>>> folder = ebm_ppl.save(pot, tempfile.mkdtemp())
>>> ebm_ppl.load(folder).example.shape
(2,)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ebm_ppl._version import __version__
from ebm_ppl.nn import FixedSigmaEnergy, MLPEnergy, NoiseConditionalMLPEnergy
from ebm_ppl.potential import Potential
from ebm_ppl.training.checkpoint import restore_checkpoint, save_checkpoint

__all__ = ["HISTORY_FILE", "MODEL_FILE", "load", "read_history", "read_model_config", "save"]

#: The file that makes a folder a model folder.
MODEL_FILE = "model.json"
#: Training curves (optional).
HISTORY_FILE = "history.json"
FORMAT = "ebm_ppl-model"
FORMAT_VERSION = 1


def _energy_config(energy: Any) -> dict[str, Any]:
    if isinstance(energy, MLPEnergy):
        return {"type": "mlp", "hidden": list(energy.hidden), "activation": energy.activation,
                "quadratic": energy.quadratic}
    if isinstance(energy, FixedSigmaEnergy):
        model = energy.model
        return {"type": "noise_conditional_mlp", "hidden": list(model.hidden),
                "activation": model.activation, "quadratic": model.quadratic,
                "scale_by_sigma": model.scale_by_sigma, "sigma": energy.sigma}
    raise TypeError(
        "save supports potentials of the energies of ebm_ppl.nn (mlp_energy, or "
        "noise_conditional_mlp_energy(...).at_sigma(sigma)), got an energy of type "
        f"{type(energy).__name__}; save your own energy's parameters with "
        "ebm_ppl.training.save_checkpoint"
    )


def _build_energy(config: dict[str, Any]) -> MLPEnergy | FixedSigmaEnergy:
    kind = config.get("type")
    common = {"hidden": tuple(config["hidden"]), "activation": config["activation"],
              "quadratic": config["quadratic"]}
    if kind == "mlp":
        return MLPEnergy(**common)
    if kind == "noise_conditional_mlp":
        model = NoiseConditionalMLPEnergy(**common, scale_by_sigma=config["scale_by_sigma"])
        return model.at_sigma(config["sigma"])
    raise ValueError(f"energy type must be 'mlp' or 'noise_conditional_mlp', got {kind!r}")


def save(
    pot: Potential,
    model_dir: str | os.PathLike[str],
    *,
    metadata: dict[str, Any] | None = None,
    history: dict[str, Any] | None = None,
    step: int = 0,
) -> Path:
    """Write ``pot`` as a model folder that :func:`load` and ``ebm-ppl sample`` read.

    Parameters
    ----------
    pot
        A potential built with :meth:`Potential.from_energy` from an energy of
        :mod:`ebm_ppl.nn` and its parameters.
    model_dir
        The folder (created; an earlier model in it is replaced).
    metadata
        JSON-serialisable facts to keep with the model (data set, objective...).
    history
        Training curves, name -> per-step values (``ebm_ppl.fit(...).history``).
    step
        Training step of the parameters (names the checkpoint).

    Returns
    -------
    pathlib.Path
        The folder.

    Raises
    ------
    TypeError
        If ``pot`` is not a potential of an :mod:`ebm_ppl.nn` energy with parameters.
    OSError
        If the folder cannot be written.
    """
    if not isinstance(pot, Potential):
        raise TypeError(f"pot must be an ebm_ppl.Potential, got {type(pot).__name__}")
    if pot.kind != "energy" or not pot.has_params:
        raise TypeError(
            "save needs a potential built with Potential.from_energy(energy, params) from an "
            f"ebm_ppl.nn energy, got a {pot.kind} potential"
            + ("" if pot.has_params else " without params")
        )
    energy_config = _energy_config(pot.fn)
    params = pot.energy_params
    dtype = str(jax.tree.leaves(params)[0].dtype)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "ebm_ppl_version": __version__,
        "energy": energy_config,
        "dim": pot.fn.position_dim(params),
        "dtype": dtype,
        "temperature": float(pot.temperature),
        "metadata": dict(metadata or {}),
    }
    folder = Path(model_dir)
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(folder, step, params, metadata={"model": FORMAT}, keep=1)
    if history is not None:
        curves = {str(k): np.asarray(v, dtype=float).tolist() for k, v in dict(history).items()}
        (folder / HISTORY_FILE).write_text(json.dumps(curves), encoding="utf-8")
    # written last: the manifest that makes the folder a model
    (folder / MODEL_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder


def read_model_config(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The content of ``model.json``, in the current layout (older flat files upgraded).

    Raises
    ------
    FileNotFoundError
        If ``model_dir`` does not exist.
    ValueError
        If it is not a model folder or its ``model.json`` is unreadable.
    """
    folder = Path(model_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {str(folder)!r} does not exist")
    path = folder / MODEL_FILE
    if not path.is_file():
        raise ValueError(
            f"{str(folder)!r} is not a model folder ({MODEL_FILE} missing); write one with "
            "ebm_ppl.save or 'ebm-ppl train'"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        if "energy" not in config:  # the flat layout of ebm_ppl 0.1's 'ebm-ppl train'
            extra = {k: v for k, v in config.items()
                     if k not in ("hidden", "activation", "quadratic", "dim")}
            config = {"energy": {"type": "mlp", "hidden": config["hidden"],
                                 "activation": config["activation"],
                                 "quadratic": config["quadratic"]},
                      "dim": config["dim"], "metadata": extra}
        config.setdefault("dtype", "float32")
        config.setdefault("temperature", 1.0)
        config.setdefault("metadata", {})
        int(config["dim"])
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(
            f"{str(path)!r} is not a valid model description ({type(err).__name__}: {err})"
        ) from None
    return config


def read_history(model_dir: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The training curves saved with the model (empty when there are none)."""
    path = Path(model_dir) / HISTORY_FILE
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): np.asarray(v, dtype=float) for k, v in raw.items()}
    except (ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{str(path)!r} is not a valid training history ({err})") from None


def load(model_dir: str | os.PathLike[str]) -> Potential:
    """The :class:`~ebm_ppl.Potential` of a model folder (:func:`save`, ``ebm-ppl train``).

    Parameters
    ----------
    model_dir
        The folder.

    Returns
    -------
    Potential
        ``Potential.from_energy(energy, params, temperature)`` with the saved energy and
        parameters, its ``example`` a position of the saved dimension.

    Raises
    ------
    FileNotFoundError
        If the folder does not exist.
    ValueError
        If it is not a model folder, its description is invalid, or its parameters are
        missing, corrupted or do not match the description
        (:class:`~ebm_ppl.CheckpointError`, a ``ValueError``).
    """
    config = read_model_config(model_dir)
    try:
        energy = _build_energy(config["energy"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"{str(model_dir)!r} has an invalid energy description ({err})") from None
    dim, dtype = int(config["dim"]), jnp.dtype(config["dtype"])
    template = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype),
                            jax.eval_shape(lambda: energy.init(0, dim, dtype)))
    params = restore_checkpoint(model_dir, template).tree
    return Potential.from_energy(energy, params, config["temperature"],
                                 example=jnp.zeros(dim, dtype))
