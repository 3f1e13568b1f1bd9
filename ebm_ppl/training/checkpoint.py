"""Pickle-free checkpoints: pytree leaves in ``.npz``, structure and metadata in JSON.

A checkpoint of step ``s`` in ``directory`` is the pair ``ckpt-<s>.npz`` (the leaves,
``leaf_0, leaf_1, ...`` plus named free-form ``extras``) and ``ckpt-<s>.json`` (the
manifest: step, leaf shapes/dtypes, PRNG-key implementations, the SHA-256 of the npz,
library versions and user metadata). Both are written atomically (temporary file,
``fsync``, ``os.replace``), npz first: the manifest is the commit marker, so a run
killed mid-write leaves at worst an orphan npz and the previous checkpoint intact.
Restoring needs a *template* pytree (the freshly initialised state of the same model),
in the spirit of ``equinox.tree_deserialise_leaves``; nothing is unpickled.

PRNG keys (typed ``jax.random.key`` arrays) are saved as ``jax.random.key_data`` with
their implementation name and rebuilt with ``jax.random.wrap_key_data``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from ebm_ppl.errors import CheckpointError, CorruptCheckpointError

__all__ = [
    "Checkpoint",
    "FitCheckpoints",
    "save_checkpoint",
    "restore_checkpoint",
    "list_checkpoints",
    "latest_checkpoint",
]

FORMAT = "ebm_ppl-checkpoint"
FORMAT_VERSION = 1
_NAME = re.compile(r"^ckpt-(\d+)\.json$")


class Checkpoint(NamedTuple):
    """A restored checkpoint."""

    step: int
    tree: Any
    extras: dict[str, np.ndarray]
    metadata: dict[str, Any]
    path: Path


def _is_key(leaf: Any) -> bool:
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _encode(leaf: Any) -> tuple[np.ndarray, dict[str, Any]]:
    if _is_key(leaf):
        data = np.asarray(jax.random.key_data(leaf))
        return data, {"kind": "key", "impl": str(jax.random.key_impl(leaf)),
                      "shape": list(np.shape(leaf)), "dtype": "key"}
    arr = np.asarray(leaf)
    info = {"kind": "array", "shape": list(arr.shape), "dtype": str(arr.dtype)}
    if arr.dtype.kind == "V" or arr.dtype.name not in np.sctypeDict:  # ml_dtypes (bfloat16...)
        info["kind"] = "view"
        arr = arr.view(f"u{arr.dtype.itemsize}")
    return arr, info


def _decode(arr: np.ndarray, info: dict[str, Any], template: Any, name: str) -> Any:
    if info["kind"] == "key":
        if not _is_key(template):
            raise CheckpointError(f"checkpoint leaf {name} is a PRNG key but the template's is not")
        return jax.random.wrap_key_data(arr, impl=info["impl"])
    t_arr = np.asarray(template)
    if list(t_arr.shape) != list(info["shape"]):
        raise CheckpointError(
            f"checkpoint leaf {name} has shape {tuple(info['shape'])} but the current run "
            f"expects {t_arr.shape}; the checkpoint belongs to a different model or data"
        )
    if info["kind"] == "view":
        arr = arr.view(t_arr.dtype)
    if str(arr.dtype) != str(t_arr.dtype):
        raise CheckpointError(
            f"checkpoint leaf {name} has dtype {arr.dtype} but the current run expects "
            f"{t_arr.dtype}"
        )
    return jax.numpy.asarray(arr)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def list_checkpoints(directory: str | os.PathLike) -> list[int]:
    """Steps of the committed checkpoints (those with a manifest) in ``directory``, sorted."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    steps = [int(m.group(1)) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return sorted(steps)


def latest_checkpoint(directory: str | os.PathLike) -> int | None:
    """Step of the newest committed checkpoint, or None."""
    steps = list_checkpoints(directory)
    return steps[-1] if steps else None


def save_checkpoint(
    directory: str | os.PathLike,
    step: int,
    tree: Any,
    *,
    extras: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    keep: int = 3,
) -> Path:
    """Write the checkpoint of ``step`` atomically and keep the newest ``keep`` ones.

    Parameters
    ----------
    directory
        Created if missing.
    step
        Integer >= 0, part of the file names.
    tree
        Pytree of arrays and PRNG keys (restored against a template of the same shape).
    extras
        Named arrays of any shape (training history...), restored as numpy arrays.
    metadata
        JSON-serialisable dict stored in the manifest.
    keep
        Number of newest checkpoints to keep (>= 1); older ones are deleted.

    Returns
    -------
    Path
        The manifest's path.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    leaves, treedef = jax.tree.flatten(tree)
    arrays: dict[str, np.ndarray] = {}
    infos = []
    for i, leaf in enumerate(leaves):
        arr, info = _encode(leaf)
        arrays[f"leaf_{i}"] = arr
        infos.append(info)
    extras = {} if extras is None else extras
    for name, value in extras.items():
        arrays[f"extra/{name}"] = np.asarray(value)
    stem = f"ckpt-{int(step):010d}"
    npz_path = directory / f"{stem}.npz"
    _atomic_write(npz_path, lambda f: np.savez(f, **arrays))
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "step": int(step),
        "npz": npz_path.name,
        "sha256": _sha256(npz_path),
        "treedef": str(treedef),
        "leaves": infos,
        "extras": sorted(extras),
        "metadata": metadata or {},
        "versions": {"jax": jax.__version__, "numpy": np.__version__},
    }
    json_path = directory / f"{stem}.json"
    _atomic_write(json_path, lambda f: f.write(json.dumps(manifest, indent=1).encode()))
    for old in list_checkpoints(directory)[:-keep]:
        for suffix in (".json", ".npz"):
            path = directory / f"ckpt-{old:010d}{suffix}"
            if path.exists():
                path.unlink()
    return json_path


def restore_checkpoint(
    directory: str | os.PathLike, template: Any, step: int | None = None
) -> Checkpoint:
    """Read the checkpoint of ``step`` (default: the newest) against ``template``.

    Raises
    ------
    CorruptCheckpointError
        (a :class:`~ebm_ppl.CheckpointError`) if the manifest or npz is unreadable,
        truncated or fails its SHA-256 check. Older checkpoints in the directory are
        untouched and can be restored by passing their ``step``.
    CheckpointError
        If there is no checkpoint, or it does not match ``template``'s structure, shapes
        or dtypes.
    """
    directory = Path(directory)
    steps = list_checkpoints(directory)
    if not steps:
        raise CheckpointError(f"no checkpoint found in {str(directory)!r}")
    if step is None:
        step = steps[-1]
    if step not in steps:
        raise CheckpointError(f"no checkpoint of step {step} in {str(directory)!r}; found {steps}")
    json_path = directory / f"ckpt-{step:010d}.json"
    older = [s for s in steps if s < step]
    hint = f" (older checkpoints: steps {older})" if older else ""
    try:
        manifest = json.loads(json_path.read_text())
        if manifest.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} manifest")
        npz_path = directory / manifest["npz"]
        if not npz_path.exists():
            raise FileNotFoundError(f"{npz_path.name} is missing")
        if _sha256(npz_path) != manifest["sha256"]:
            raise ValueError(f"{npz_path.name} does not match its SHA-256 (truncated or altered)")
        with np.load(npz_path, allow_pickle=False) as npz:
            stored = {name: npz[name] for name in npz.files}
        expected = [f"leaf_{i}" for i in range(len(manifest["leaves"]))]
        expected += [f"extra/{name}" for name in manifest["extras"]]
        missing = [name for name in expected if name not in stored]
        if missing:
            raise ValueError(f"{npz_path.name} lacks the arrays {missing}")
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - any read failure means a corrupt checkpoint
        raise CorruptCheckpointError(
            f"checkpoint {json_path.name} in {str(directory)!r} is corrupted or partial "
            f"({type(err).__name__}: {err}){hint}"
        ) from err
    t_leaves, t_treedef = jax.tree.flatten(template)
    infos = manifest["leaves"]
    if len(infos) != len(t_leaves):
        raise CheckpointError(
            f"checkpoint {json_path.name} has {len(infos)} leaves but the current run expects "
            f"{len(t_leaves)}; the checkpoint belongs to a different model, optimizer or "
            "objective"
        )
    leaves = [
        _decode(stored[f"leaf_{i}"], info, t_leaf, f"#{i}")
        for i, (info, t_leaf) in enumerate(zip(infos, t_leaves, strict=True))
    ]
    extras = {name: stored[f"extra/{name}"] for name in manifest["extras"]}
    return Checkpoint(
        step=int(manifest["step"]),
        tree=jax.tree.unflatten(t_treedef, leaves),
        extras=extras,
        metadata=manifest["metadata"],
        path=json_path,
    )


class FitCheckpoints(NamedTuple):
    """How :func:`ebm_ppl.fit` checkpoints a run: the whole training state and the root
    key as the tree, the history so far as extras, the run's settings as metadata."""

    directory: Path
    every: int
    keep: int
    metadata: dict[str, Any]

    def save(self, state: Any, root_key: Any, history: dict[str, np.ndarray]) -> None:
        """Write the checkpoint of ``state.step``."""
        save_checkpoint(
            self.directory, int(state.step), {"state": state, "rng_key": root_key},
            extras={f"history/{k}": v for k, v in history.items()},
            metadata=self.metadata, keep=self.keep,
        )

    def resume(self, state: Any, root_key: Any) -> tuple[Any, Any, dict[str, np.ndarray]] | None:
        """``(state, root_key, history)`` of the newest readable checkpoint, or None when
        the directory holds none. ``state`` and ``root_key`` are the templates.

        A corrupted newest checkpoint is skipped with a warning; any other
        :class:`~ebm_ppl.CheckpointError` (a checkpoint of another model) is raised.
        """
        steps = list_checkpoints(self.directory)
        if not steps:
            return None
        template = {"state": state, "rng_key": root_key}
        skipped = []
        for step in reversed(steps):
            try:
                ckpt = restore_checkpoint(self.directory, template, step)
            except CorruptCheckpointError as err:
                skipped.append(str(err))
                continue
            if skipped:
                warnings.warn(
                    f"skipped unreadable checkpoint(s): {' | '.join(skipped)}; resuming from "
                    f"step {ckpt.step}",
                    stacklevel=4,
                )
            self._check_compatible(ckpt, root_key)
            history = {k.removeprefix("history/"): v for k, v in ckpt.extras.items()}
            return ckpt.tree["state"], ckpt.tree["rng_key"], history
        raise CheckpointError(
            f"every checkpoint in {str(self.directory)!r} is unreadable: {' | '.join(skipped)}"
        )

    def _check_compatible(self, ckpt: Checkpoint, root_key: Any) -> None:
        saved_objective = ckpt.metadata.get("objective")
        if saved_objective is not None and saved_objective != self.metadata["objective"]:
            raise CheckpointError(
                f"checkpoint in {str(self.directory)!r} was trained with the objective "
                f"{saved_objective!r}, got {self.metadata['objective']!r}; use another "
                "checkpoint_dir"
            )
        saved_shape = ckpt.metadata.get("data_shape")
        if saved_shape is not None and saved_shape != self.metadata["data_shape"]:
            raise CheckpointError(
                f"checkpoint in {str(self.directory)!r} was trained on examples of shape "
                f"{tuple(saved_shape)}, got data of shape {tuple(self.metadata['data_shape'])}"
            )
        saved_key = np.asarray(jax.random.key_data(ckpt.tree["rng_key"]))
        if not np.array_equal(saved_key, np.asarray(jax.random.key_data(root_key))):
            warnings.warn(
                f"resuming from a checkpoint of seed {ckpt.metadata.get('seed')}; its key is "
                f"used, not seed={self.metadata.get('seed')}",
                stacklevel=5,
            )
