"""ebm_ppl: energy-based models as first-class citizens of the JAX PPL stack."""

from ebm_ppl import datasets, kernels, nn
from ebm_ppl.inference_data import concat_draws
from ebm_ppl.potential import Potential
from ebm_ppl.sampling import sample

__version__ = "0.1.0"

__all__ = ["Potential", "concat_draws", "datasets", "kernels", "nn", "sample", "__version__"]
