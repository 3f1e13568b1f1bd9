"""Markov kernels sharing one ``init``/``step`` interface.

Own code: :func:`ula`, :func:`mh` (with :func:`random_walk`, :func:`independent`).
BlackJAX adapters: :func:`mala`, :func:`hmc`, :func:`nuts`, :func:`barker`, and
:func:`from_blackjax` for any other BlackJAX algorithm. Wrappers:
:func:`parallel_tempering` (replica exchange over any of them).
"""

from ebm_ppl.kernels.base import ADAPTATIONS, Kernel
from ebm_ppl.kernels.blackjax import barker, hmc, mala, nuts
from ebm_ppl.kernels.chains import init_chains, run_chains, step_chains
from ebm_ppl.kernels.exchange import ExchangeInfo, ExchangeState, exchange
from ebm_ppl.kernels.exchange_check import InnerStepsCheck, inner_steps_check
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
    "InnerStepsCheck",
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
    "inner_steps_check",
    "mala",
    "mh",
    "nuts",
    "parallel_tempering",
    "random_walk",
    "run_chains",
    "step_chains",
    "tempered_ladder",
    "ula",
]
