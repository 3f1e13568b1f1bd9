"""ebm_ppl: energy-based models as first-class citizens of the JAX PPL stack.

Energies become potentials (:class:`Potential`), are sampled with :mod:`ebm_ppl.kernels`
through :func:`sample` into ArviZ, trained with :mod:`ebm_ppl.objectives` through
:func:`fit`, and checked with :mod:`ebm_ppl.diagnostics` and :func:`report`.

The package root imports its parts on first use (PEP 562 ``__getattr__``), so
``import ebm_ppl`` and ``ebm-ppl --help`` do not pay for JAX, NumPyro, ArviZ and
matplotlib until a name that needs them is touched: ``ebm_ppl.sample`` imports the
sampling stack, ``ebm_ppl.report`` the reporting stack. Every public name below behaves
as if imported eagerly (``from ebm_ppl import sample``, ``ebm_ppl.kernels.mala``,
``dir(ebm_ppl)``). Type checkers read the eager imports from ``__init__.pyi``.
"""

from __future__ import annotations

import importlib
from typing import Any

from ebm_ppl._version import __version__

#: Public subpackages, imported on first attribute access.
_SUBPACKAGES = ("adaptation", "datasets", "diagnostics", "kernels", "model", "nn", "numpyro",
                "objectives")

#: Public name -> module that defines it.
_NAMES = {
    "CheckpointError": "ebm_ppl.errors",
    "FitDivergenceError": "ebm_ppl.errors",
    "ImproperTargetWarning": "ebm_ppl.errors",
    "IntractableNormaliserError": "ebm_ppl.errors",
    "SamplingWarning": "ebm_ppl.errors",
    "StepSizeWarning": "ebm_ppl.errors",
    "concat_draws": "ebm_ppl.inference_data",
    "load": "ebm_ppl.model_io",
    "save": "ebm_ppl.model_io",
    "add_posterior_predictive": "ebm_ppl.model.groups",
    "sample_prior": "ebm_ppl.numpyro.prior",
    "Potential": "ebm_ppl.potential",
    "report": "ebm_ppl.reporting",
    "sample": "ebm_ppl.sampling",
    "FitResult": "ebm_ppl.training",
    "fit": "ebm_ppl.training",
}

__all__ = [
    "CheckpointError",
    "FitDivergenceError",
    "FitResult",
    "ImproperTargetWarning",
    "IntractableNormaliserError",
    "Potential",
    "SamplingWarning",
    "StepSizeWarning",
    "__version__",
    "adaptation",
    "add_posterior_predictive",
    "concat_draws",
    "datasets",
    "diagnostics",
    "fit",
    "kernels",
    "load",
    "model",
    "nn",
    "numpyro",
    "objectives",
    "report",
    "sample",
    "sample_prior",
    "save",
]
if set(__all__) != {*_NAMES, *_SUBPACKAGES, "__version__"}:  # one list, checked at import
    raise ImportError("ebm_ppl.__all__ and its lazy import tables disagree")


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        value = importlib.import_module(f"ebm_ppl.{name}")
    elif name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    else:
        raise AttributeError(f"module 'ebm_ppl' has no attribute {name!r}")
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
