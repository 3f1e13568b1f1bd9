"""ebm_ppl: energy-based models as first-class citizens of the JAX PPL stack.

Energies become potentials (:class:`Potential`), are sampled with :mod:`ebm_ppl.kernels`
through :func:`sample` into ArviZ, trained with :mod:`ebm_ppl.objectives` through
:func:`fit`, and checked with :mod:`ebm_ppl.diagnostics` and :func:`report`.
"""

from ebm_ppl import datasets, diagnostics, kernels, nn, numpyro, objectives  # noqa: E402
from ebm_ppl._version import __version__  # noqa: E402
from ebm_ppl.errors import (  # noqa: E402
    CheckpointError,
    FitDivergenceError,
    ImproperTargetWarning,
    IntractableNormaliserError,
    SamplingWarning,
    StepSizeWarning,
)
from ebm_ppl.inference_data import concat_draws  # noqa: E402
from ebm_ppl.model_io import load, save  # noqa: E402
from ebm_ppl.numpyro.groups import add_posterior_predictive  # noqa: E402
from ebm_ppl.numpyro.prior import sample_prior  # noqa: E402
from ebm_ppl.potential import Potential  # noqa: E402
from ebm_ppl.reporting import report  # noqa: E402
from ebm_ppl.sampling import sample  # noqa: E402
from ebm_ppl.training import FitResult, fit  # noqa: E402

__all__ = [
    "CheckpointError",
    "FitDivergenceError",
    "ImproperTargetWarning",
    "IntractableNormaliserError",
    "SamplingWarning",
    "StepSizeWarning",
    "add_posterior_predictive",
    "FitResult",
    "Potential",
    "concat_draws",
    "datasets",
    "diagnostics",
    "fit",
    "kernels",
    "load",
    "nn",
    "numpyro",
    "objectives",
    "report",
    "sample",
    "sample_prior",
    "save",
    "__version__",
]
