"""The one table from kernel names to constructors, read by the command line, AIS,
contrastive divergence's CLI option and anything else that takes a kernel by name.

Each entry builds a kernel from one number, its step size (the proposal scale for
``"mh"``); other hyper-parameters take the defaults listed here. The facts that decide
how a kernel may be used (``Kernel.exact``, ``Kernel.gradient_based``) live on the
kernel itself, so code never tests a kernel's *name* to learn them.

The names are kept in :data:`ebm_ppl._names.KERNELS` too, so that ``ebm-ppl --help``
lists them without importing JAX; :data:`REGISTRY` must have exactly those keys.
"""

from __future__ import annotations

from collections.abc import Callable

from ebm_ppl._names import KERNELS
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.kernels.blackjax import hmc, mala, nuts
from ebm_ppl.kernels.mh import random_walk
from ebm_ppl.kernels.ula import ula

__all__ = ["HMC_STEPS", "REGISTRY", "make_kernel"]

#: Leapfrog steps per HMC transition when HMC is built by name.
HMC_STEPS = 10


def _hmc(step_size: float) -> Kernel:
    return hmc(step_size, HMC_STEPS)


#: Kernel name -> constructor of one argument (the step size; the scale for ``mh``).
REGISTRY: dict[str, Callable[[float], Kernel]] = {
    "ula": ula,
    "mala": mala,
    "hmc": _hmc,
    "nuts": nuts,
    "mh": random_walk,
}

if tuple(REGISTRY) != KERNELS:  # one list of names, kept in ebm_ppl._names
    raise ImportError("ebm_ppl._names.KERNELS and kernels.registry.REGISTRY disagree")


def make_kernel(name: str, step_size: float) -> Kernel:
    """The kernel called ``name`` (one of :data:`REGISTRY`) at ``step_size``.

    Raises
    ------
    ValueError
        If ``name`` is not in the registry (the message lists the names).
    """
    if name not in REGISTRY:
        raise ValueError(f"kernel must be one of {tuple(REGISTRY)}, got {name!r}")
    return REGISTRY[name](step_size)
