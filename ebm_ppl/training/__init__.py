"""Training energies: :func:`fit` and its parts.

Data flows through the modules in this order: :mod:`~ebm_ppl.training.data` (checks,
on-device shuffling, held-out batches) feeds the compiled chunks of
:mod:`~ebm_ppl.training.loop` (one optax step, the ``lax.scan`` chunk, the driver with
progress, checkpoints and Ctrl-C), spread over devices by
:mod:`~ebm_ppl.training.parallel` and saved by :mod:`~ebm_ppl.training.checkpoint`;
:mod:`~ebm_ppl.training.fitting` holds the public :func:`fit`, which returns a
:class:`~ebm_ppl.training.result.FitResult`.
"""

from ebm_ppl.training.checkpoint import (
    Checkpoint,
    latest_checkpoint,
    list_checkpoints,
    restore_checkpoint,
    save_checkpoint,
)
from ebm_ppl.training.fitting import DEFAULT_OPTIMIZER, fit
from ebm_ppl.training.loop import FitState
from ebm_ppl.training.result import FitResult

__all__ = [
    "Checkpoint",
    "DEFAULT_OPTIMIZER",
    "FitResult",
    "FitState",
    "fit",
    "latest_checkpoint",
    "list_checkpoints",
    "restore_checkpoint",
    "save_checkpoint",
]
