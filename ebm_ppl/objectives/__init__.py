"""Training objectives for energy-based models (pure losses over ``energy_fn(params, x)``).

Every objective is an :class:`Objective` ``(init, loss)`` pair:
``state = objective.init(rng_key, params, data=None)`` and
``loss(params, batch, rng_key, energy_fn, state) -> (value, (metrics, new_state))``.
"""

from ebm_ppl.objectives.base import EmptyState, Objective, empty_init
from ebm_ppl.objectives.contrastive_divergence import CDState, contrastive_divergence
from ebm_ppl.objectives.nce import NCEState, nce, nce_params
from ebm_ppl.objectives.score_matching import (
    PROJECTIONS,
    denoising_score_matching,
    score_matching,
    sliced_score_matching,
)

__all__ = [
    "CDState",
    "EmptyState",
    "NCEState",
    "Objective",
    "PROJECTIONS",
    "contrastive_divergence",
    "denoising_score_matching",
    "empty_init",
    "nce",
    "nce_params",
    "score_matching",
    "sliced_score_matching",
]
