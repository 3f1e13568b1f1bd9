"""Conversion to ArviZ: the only module that builds ``arviz.InferenceData`` from draws
(converters only; callers import ``arviz`` themselves).

ebm_ppl pins ArviZ 0.23 (``InferenceData``); ArviZ 1.x returns ``xarray.DataTree`` and
would only need changes here.
"""

from __future__ import annotations

import datetime
import json
import re
import warnings
from typing import Any

import arviz
import blackjax
import jax
import numpy as np
import numpyro
import xarray as xr

from ebm_ppl._version import __version__

__all__ = [
    "concat_draws",
    "position_names",
    "read_config",
    "run_attrs",
    "to_inference_data",
    "training_inference_data",
]

CONFIG_ATTR = "ebm_ppl_config"


def _sanitize(name: str) -> str:
    name = re.sub(r"[^0-9a-zA-Z_]+", "_", name).strip("_")
    return name or "x"


def position_names(tree: Any) -> list[str]:
    """Variable names for the leaves of a position pytree.

    A bare array is ``"x"``; a dict uses its keys; other pytrees use their key paths
    (``"[0]"`` becomes ``"x_0"``).
    """

    paths = jax.tree_util.tree_flatten_with_path(tree)[0]
    if len(paths) == 1 and not paths[0][0]:
        return ["x"]
    names = []
    for path, _ in paths:
        parts = []
        for entry in path:
            for attr in ("key", "name", "idx"):
                if hasattr(entry, attr):
                    parts.append(str(getattr(entry, attr)))
                    break
        name = _sanitize("_".join(parts))
        if name[0].isdigit():
            name = "x_" + name
        names.append(name)
    if len(set(names)) != len(names):
        names = [f"{n}_{i}" for i, n in enumerate(names)]
    return names


def run_attrs(config: dict[str, Any]) -> dict[str, Any]:
    """netCDF-safe attrs: versions plus the run configuration as a JSON string."""
    attrs = {
        "inference_library": "ebm_ppl",
        "inference_library_version": __version__,
        "jax_version": jax.__version__,
        "blackjax_version": blackjax.__version__,
        "numpyro_version": numpyro.__version__,
        CONFIG_ATTR: json.dumps(config, default=_json_default, sort_keys=True),
    }
    return attrs


def read_config(idata: arviz.InferenceData) -> dict[str, Any]:
    """The run configuration stored by :func:`ebm_ppl.sample` (empty if absent)."""
    sources = [idata.attrs] + [
        getattr(idata, group).attrs for group in ("posterior", "sample_stats")
        if hasattr(idata, group)
    ]
    for attrs in sources:
        raw = attrs.get(CONFIG_ATTR)
        if raw:
            return json.loads(raw)
    return {}


def _json_default(value: Any) -> Any:
    arr = np.asarray(value)
    return arr.tolist()


def _group_attrs() -> dict[str, str]:
    """The attrs ``arviz.from_dict`` gives every group: creation time and ArviZ version."""
    return {
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "arviz_version": arviz.__version__,
    }


def _dataset(variables: dict[str, Any]) -> xr.Dataset:
    """``arviz.dict_to_dataset`` without its per-variable DataArrays: dims ``(chain, draw,
    <name>_dim_0, ...)`` with integer coordinates from ``data.index_origin``, built as one
    :class:`xarray.Dataset` (the same names, order, dims, coords, dtypes and values; a
    variable named as its own dimension becomes that dimension's index)."""
    origin = arviz.rcParams["data.index_origin"]
    ordered: dict[str, xr.Variable] = {}
    for name, values in variables.items():
        array = np.asarray(values)
        if array.ndim < 2:  # arviz's two_de: a vector is one chain of draws
            array = array.reshape(1, -1) if array.ndim == 1 else array.reshape(1, 1)
        dims = ("chain", "draw", *[f"{name}_dim_{i}" for i in range(array.ndim - 2)])
        for dim, size in zip(dims, array.shape):
            if dim not in ordered:  # each coordinate just before its first variable
                ordered[dim] = xr.IndexVariable((dim,), np.arange(origin, size + origin))
        ordered[name] = xr.Variable(dims, array)
    return xr.Dataset(ordered, attrs=_group_attrs())


def to_inference_data(
    posterior: dict[str, np.ndarray],
    sample_stats: dict[str, np.ndarray],
    *,
    warmup_posterior: dict[str, np.ndarray] | None = None,
    warmup_sample_stats: dict[str, np.ndarray] | None = None,
    attrs: dict[str, Any] | None = None,
) -> arviz.InferenceData:
    """Build an InferenceData from ``(chain, draw, ...)`` arrays.

    The groups are what ``arviz.from_dict`` builds from the same arrays (names, dims
    ``(chain, draw, <name>_dim_0, ...)``, integer coords, the ``created_at`` and
    ``arviz_version`` attrs of each group), made directly as :class:`xarray.Dataset`
    objects: ``from_dict`` makes and aligns one DataArray per variable, which on short
    runs costs more than the sampling.

    Parameters
    ----------
    posterior, sample_stats
        Name -> array of shape ``(chain, draw, ...)``. Stat names follow ArviZ
        (``lp``, ``acceptance_rate``, ``diverging``, ``step_size``, ``energy``,
        ``n_steps``, ``tree_depth``).
    warmup_posterior, warmup_sample_stats
        Optional warm-up draws, stored as ``warmup_*`` groups.
    attrs
        Global attributes (run configuration, versions).
    """
    groups = {"posterior": posterior, "sample_stats": sample_stats}
    if warmup_posterior is not None:  # from_dict's save_warmup: only with warmup_posterior
        groups["warmup_posterior"] = warmup_posterior
        groups["warmup_sample_stats"] = warmup_sample_stats
    datasets = {name: _dataset(data) for name, data in groups.items() if data}
    attrs = {k: v for k, v in (attrs or {}).items() if k not in ("created_at", "arviz_version")}
    return arviz.InferenceData(attrs=attrs, **datasets)


def concat_draws(*runs: arviz.InferenceData) -> arviz.InferenceData:
    """Join runs continued with ``sample(..., resume=previous)`` along ``draw``.

    ``arviz.concat`` refuses groups without a ``draw`` dimension; the ``sampler_state``
    group of the *last* run (the state after all draws) is kept, so the result can be
    resumed again.

    Examples
    --------
    >>> # first = sample(pot, k, x0); second = sample(pot, k, resume=first)
    >>> # both = concat_draws(first, second)
    """
    if not runs:
        raise ValueError("concat_draws needs at least one InferenceData")
    stripped = []
    for run in runs:
        groups = [g for g in run.groups() if g != "sampler_state"]
        stripped.append(arviz.InferenceData(**{g: getattr(run, g) for g in groups},
                                         attrs=dict(run.attrs)))
    joined = arviz.concat(*stripped, dim="draw", reset_dim=True) if len(stripped) > 1 \
        else stripped[0]
    if hasattr(runs[-1], "sampler_state"):
        joined.add_groups({"sampler_state": runs[-1].sampler_state})
    return joined


def training_inference_data(
    history: dict[str, np.ndarray], steps: np.ndarray, objective_name: str
) -> arviz.InferenceData:
    """Training curves as an InferenceData with one group ``training`` (dim ``step``)."""
    data = {
        name: (("step",), np.asarray(values)) for name, values in history.items()
        if name != "step"
    }
    dataset = xr.Dataset(data, coords={"step": steps}, attrs={"objective": objective_name})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*training.*", category=UserWarning)
        return arviz.InferenceData(training=dataset)
