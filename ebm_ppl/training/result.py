""":class:`FitResult`, what :func:`ebm_ppl.fit` returns, and its training history."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from ebm_ppl._types import Params, PRNGKey
from ebm_ppl.inference_data import training_inference_data

__all__ = ["FitResult", "concat_history"]

#: Number of last steps whose finite losses are averaged into the summary's final loss.
_LAST_STEPS = 10


def concat_history(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One history from per-chunk histories (``{}`` when there is none).

    An entry missing from some chunks (``val_loss`` when a run resumed from a checkpoint
    saved without ``validation_data``, say) is NaN at their steps.
    """
    keys = sorted({k for h in chunks for k in h})

    def column(h: dict[str, np.ndarray], key: str) -> np.ndarray:
        if key in h:
            return h[key]
        return np.full(len(h["step"]), np.nan)

    return {k: np.concatenate([column(h, k) for h in chunks]) for k in keys}


def _shapes(tree: Any) -> str:
    leaves = jax.tree.leaves(tree)
    size = sum(int(np.size(leaf)) for leaf in leaves)
    described = jax.tree.map(lambda leaf: f"{np.asarray(leaf).dtype}{list(np.shape(leaf))}", tree)
    text = str(described)
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{len(leaves)} arrays, {size:,} values: {text}"


def _last_mean(values: np.ndarray | None) -> float | None:
    if values is None:
        return None
    finite = values[np.isfinite(values)]
    return float(finite[-_LAST_STEPS:].mean()) if finite.size else None


@dataclasses.dataclass(frozen=True, repr=False)
class FitResult:
    """Outcome of :func:`ebm_ppl.fit`.

    ``print(result)`` shows a short summary (objective, steps, final losses, parameter
    shapes); the attributes hold everything.

    Attributes
    ----------
    params
        The energy's trained parameters (use with ``energy_fn(params, x)`` /
        :meth:`ebm_ppl.Potential.from_energy`).
    trained_params
        Everything the optimizer trained; differs from ``params`` for objectives with
        extra parameters (:func:`~ebm_ppl.objectives.nce`: ``trained_params["log_z"]``).
    opt_state, objective_state
        Final optimizer and objective states (CD's replay buffer...).
    history
        ``dict`` of numpy arrays, one entry per step: ``step``, ``loss``, ``grad_norm``,
        ``skipped`` (non-finite step whose update was dropped), the objective's metrics
        and, with ``validation_data``, ``val_loss`` and ``val_<metric>`` (NaN at the
        steps without an evaluation).
    steps
        Number of optimizer steps done (including resumed ones).
    rng_key
        The run's root key (from ``seed`` unless resumed).
    interrupted
        True when the run stopped on Ctrl-C (``KeyboardInterrupt``).
    objective_name
        ``objective.name``.
    stopped_early
        True when early stopping on the validation loss ended the run.
    best_val_loss
        Lowest held-out loss seen (NaN without ``validation_data``).
    """

    params: Params
    trained_params: Params
    opt_state: Any
    objective_state: Any
    history: dict[str, np.ndarray]
    steps: int
    rng_key: PRNGKey
    interrupted: bool = False
    objective_name: str = "objective"
    stopped_early: bool = False
    best_val_loss: float = float("nan")

    def to_inference_data(self):
        """Training curves as an ``arviz.InferenceData`` with one group ``training``.

        Every history entry is a variable with dimension ``step``.
        """
        steps = self.history.get("step", np.arange(self.steps))
        return training_inference_data(self.history, steps, self.objective_name)

    def __repr__(self) -> str:
        lines = [f"FitResult({self.objective_name}, {self.steps} steps"
                 + (", interrupted" if self.interrupted else "")
                 + (", stopped early" if self.stopped_early else "") + ")"]
        loss = _last_mean(self.history.get("loss"))
        if loss is not None:
            lines.append(f"  final loss: {loss:.6g} (mean of the last finite steps, "
                         f"up to {_LAST_STEPS})")
        if "val_loss" in self.history:
            val = self.history["val_loss"]
            evaluated = val[np.isfinite(val)]
            if evaluated.size:
                lines.append(f"  validation loss: last {evaluated[-1]:.6g}, "
                             f"best {self.best_val_loss:.6g}")
        skipped = self.history.get("skipped")
        if skipped is not None and skipped.any():
            lines.append(f"  skipped non-finite steps: {int(skipped.sum())}")
        lines.append(f"  params: {_shapes(self.params)}")
        return "\n".join(lines)
