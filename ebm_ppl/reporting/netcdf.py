"""Reports of saved runs: an InferenceData netCDF file, optionally with its model folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np

from ebm_ppl.diagnostics._samples import posterior_array
from ebm_ppl.model_io import load, read_model_config
from ebm_ppl.reporting.assemble import report

__all__ = ["noise_conditional_notes", "read_inference_data", "render_from_netcdf"]


def read_inference_data(path: str | os.PathLike[str]) -> az.InferenceData:
    """Read an ``arviz.InferenceData`` netCDF file that has a ``posterior`` group.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    ValueError
        If the file is not netCDF, or holds no ``posterior`` with ``(chain, draw)`` dims.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such netCDF file: {path}")
    try:
        idata = az.from_netcdf(str(path))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"could not read {path} as InferenceData netCDF ({err})") from None
    posterior = getattr(idata, "posterior", None)
    if posterior is None or not posterior.data_vars or not {"chain", "draw"} <= set(
        posterior.dims
    ):
        raise ValueError(
            f"{path} holds no posterior with (chain, draw) dimensions; expected an "
            "InferenceData written by 'ebm-ppl sample' or idata.to_netcdf"
        )
    return idata


def render_from_netcdf(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    model_dir: str | os.PathLike[str] | None = None,
    data: Any = None,
    **kwargs: Any,
) -> Path:
    """Load an ``InferenceData`` netCDF file and write its report (``ebm-ppl report``).

    With the model folder the draws came from, the report adds everything that needs the
    model's score: the KSD test of the draws, the energy in the drift check, the density
    contours; with data too, the model-versus-data tests
    (:func:`~ebm_ppl.reporting.model_vs_data`).

    Parameters
    ----------
    path
        A ``.nc`` file written by ``idata.to_netcdf`` (``ebm-ppl sample`` writes one).
    out_dir
        Output folder.
    model_dir
        A model folder (:func:`ebm_ppl.save`, ``ebm-ppl train``), or None.
    data
        Data ``(n, d)`` of the model's dimension, or None.
    **kwargs
        Passed to :func:`~ebm_ppl.report`.

    Returns
    -------
    pathlib.Path
        Path of the ``index.html`` that :func:`~ebm_ppl.report` wrote.

    Raises
    ------
    FileNotFoundError
        If ``path`` or ``model_dir`` does not exist.
    ValueError
        If the file is not an InferenceData with a posterior, or its draws do not have
        the model's dimension.
    """
    idata = read_inference_data(path)
    pot = None
    notes = list(kwargs.pop("notes", ()))
    if model_dir is not None:
        notes += noise_conditional_notes(model_dir)
        pot = load(model_dir)
        expected = int(np.prod(pot.example.shape))
        got = posterior_array(idata).shape[-1]
        if got != expected:
            raise ValueError(
                f"the draws in {path} have dimension {got} but the model in {model_dir} has "
                f"dimension {expected}; pass the model the draws came from"
            )
    return report(idata, out_dir, pot=pot, data=data, notes=notes, **kwargs)


def noise_conditional_notes(model_dir: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """What the KSD verdict means for a noise-conditional (``--objective ncsn``) model.

    Such a model is a family of energies over noise levels, drawn by annealed Langevin
    dynamics; its potential (what KSD and the density contours use) is the smallest level
    alone. ``[]`` for any other model.
    """
    sigmas = read_model_config(model_dir)["metadata"].get("sigmas")
    if not sigmas:
        return []
    text = (
        f"This model is a noise-conditional energy with {len(sigmas)} noise levels, drawn "
        "by annealed Langevin dynamics. The KSD test and the density contours use its "
        f"smallest level alone (sigma = {min(sigmas):g}): they ask whether the draws are "
        "exact draws of that one level's density. Annealed draws end at that level after "
        "a fixed number of steps per level, so they are not exact draws of it, and a small "
        "KSD p-value is expected even when the draws reproduce the data well. Whether "
        "the draws look like the data is what the 'Model vs data' MMD test checks (give "
        "--data); read the KSD verdict of such a model as a check of the last level only."
    )
    return [("KSD and a noise-conditional energy", text)]
