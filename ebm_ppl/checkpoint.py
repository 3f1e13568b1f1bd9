"""Deprecated location of :mod:`ebm_ppl.training.checkpoint` (kept so that
``from ebm_ppl.checkpoint import save_checkpoint`` still works); import from
:mod:`ebm_ppl.training.checkpoint`."""

from ebm_ppl.training.checkpoint import (  # noqa: F401
    Checkpoint,
    latest_checkpoint,
    list_checkpoints,
    restore_checkpoint,
    save_checkpoint,
)

__all__ = [
    "Checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "restore_checkpoint",
    "save_checkpoint",
]
