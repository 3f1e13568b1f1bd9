"""ebm_ppl: energy-based models as first-class citizens of the JAX PPL stack."""

from ebm_ppl import kernels
from ebm_ppl.potential import Potential
from ebm_ppl.sampling import sample

__version__ = "0.1.0"

__all__ = ["Potential", "kernels", "sample", "__version__"]
