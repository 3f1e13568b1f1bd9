"""Names the command line needs before anything heavy is imported (no JAX here).

``ebm-ppl --help`` and argument errors must answer in well under a second, so the
parser reads its choices from this module instead of from :mod:`ebm_ppl.datasets`,
:mod:`ebm_ppl.nn` and :mod:`ebm_ppl.kernels.registry`, which import JAX. Those modules
use the same tuples (and check it at import).
"""

from __future__ import annotations

__all__ = ["ACTIVATIONS", "DATASETS", "KERNELS"]

#: Names accepted by :func:`ebm_ppl.datasets.load`.
DATASETS: tuple[str, ...] = (
    "two_moons",
    "8gaussians",
    "rings",
    "checkerboard",
    "swiss_roll",
    "digits",
)

#: Activation names of :mod:`ebm_ppl.nn` (smooth ones only; see that package's docstring).
ACTIVATIONS: tuple[str, ...] = ("swish", "softplus", "tanh", "elu")

#: Kernel names of :data:`ebm_ppl.kernels.registry.REGISTRY` (``--kernel`` of the CLI).
KERNELS: tuple[str, ...] = ("ula", "mala", "hmc", "nuts", "mh")
