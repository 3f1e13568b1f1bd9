"""Markov kernels sharing one ``init``/``step`` interface.

Own code: :func:`ula`, :func:`mh` (with :func:`random_walk`, :func:`independent`).
BlackJAX adapters: :func:`mala`, :func:`hmc`, :func:`nuts`, :func:`barker`.
"""

from ebm_ppl.kernels.base import ADAPTATIONS, Kernel
from ebm_ppl.kernels.blackjax import barker, hmc, mala, nuts
from ebm_ppl.kernels.mh import MHInfo, MHState, Proposal, independent, mh, random_walk
from ebm_ppl.kernels.ula import ULAInfo, ULAState, ula

__all__ = [
    "ADAPTATIONS",
    "Kernel",
    "MHInfo",
    "MHState",
    "Proposal",
    "ULAInfo",
    "ULAState",
    "barker",
    "hmc",
    "independent",
    "mala",
    "mh",
    "nuts",
    "random_walk",
    "ula",
]
