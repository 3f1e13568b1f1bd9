"""Markov kernels sharing one ``init``/``step`` interface.

Own code: :func:`ula`, :func:`mh` (with :func:`random_walk`, :func:`independent`).
BlackJAX adapters: :func:`mala`, :func:`hmc`, :func:`nuts`, :func:`barker`, and
:func:`from_blackjax` for any other BlackJAX algorithm. Wrappers:
:func:`parallel_tempering` (replica exchange over any of them).

:func:`inner_steps_check` (and :class:`InnerStepsCheck`), the exchange kernel's
diagnostic, moved to :mod:`ebm_ppl.diagnostics` (it samples, so it sits above
:mod:`ebm_ppl.sampling`); ``ebm_ppl.kernels.inner_steps_check`` still resolves to it,
imported on first access (PEP 562), so this package does not import the layers above it.
"""

import importlib
from typing import Any

from ebm_ppl.kernels.base import ADAPTATIONS, Kernel
from ebm_ppl.kernels.blackjax import barker, hmc, mala, nuts
from ebm_ppl.kernels.chains import init_chains, run_chains, run_from_states, step_chains
from ebm_ppl.kernels.exchange import ExchangeInfo, ExchangeState, exchange
from ebm_ppl.kernels.from_blackjax import from_blackjax
from ebm_ppl.kernels.mh import MHInfo, MHState, Proposal, independent, mh, random_walk
from ebm_ppl.kernels.tempering import (
    ParallelTemperingInfo,
    ParallelTemperingState,
    adapt_ladder,
    parallel_tempering,
    tempered_ladder,
)
from ebm_ppl.kernels.ula import ULAInfo, ULAState, ula

__all__ = [
    "ADAPTATIONS",
    "ExchangeInfo",
    "ExchangeState",
    "Kernel",
    "MHInfo",
    "MHState",
    "ParallelTemperingInfo",
    "ParallelTemperingState",
    "Proposal",
    "ULAInfo",
    "ULAState",
    "adapt_ladder",
    "barker",
    "from_blackjax",
    "exchange",
    "hmc",
    "independent",
    "init_chains",
    "mala",
    "mh",
    "nuts",
    "parallel_tempering",
    "random_walk",
    "run_chains",
    "run_from_states",
    "step_chains",
    "tempered_ladder",
    "ula",
]

#: Names that moved up to :mod:`ebm_ppl.diagnostics`, resolved there on first access.
_MOVED = {"InnerStepsCheck": "ebm_ppl.diagnostics", "inner_steps_check": "ebm_ppl.diagnostics"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'ebm_ppl.kernels' has no attribute {name!r}")
