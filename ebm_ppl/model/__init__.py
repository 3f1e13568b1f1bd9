"""The model layer: energies inside NumPyro models, and a model's ArviZ groups.

Owns

* :class:`EnergyDistribution` (:mod:`~ebm_ppl.model.distribution`): an energy as a
  NumPyro distribution, ``log_prob = -E/T``, with the normaliser guard
  (:func:`check_normalisers`, :func:`intractable_sites`; the guard itself lives below
  :mod:`ebm_ppl.potential`, in :mod:`ebm_ppl._normaliser`, because
  :meth:`~ebm_ppl.Potential.from_model` calls it);
* the groups ``az.from_numpyro`` builds, for a ``Potential.from_model`` posterior
  (:mod:`~ebm_ppl.model.groups`): :func:`add_model_groups` (``log_likelihood``,
  ``observed_data``, ``constant_data``) and :func:`add_posterior_predictive`.

Layer: above :mod:`ebm_ppl.potential`, below :mod:`ebm_ppl.sampling` (whose ``sample``
adds the model groups), :mod:`ebm_ppl.diagnostics` and :mod:`ebm_ppl.numpyro` (the
MCMCKernel adapters, which re-export :class:`EnergyDistribution` and the groups as
``ebm_ppl.numpyro.*``). It may import ``potential``, ``_potential_parts``,
``_normaliser``, ``_types``, ``_validation``, ``_tree``, ``errors``,
``inference_data``, NumPyro and ArviZ; never ``sampling``, ``numpyro`` (this package's),
``kernels``, ``diagnostics``, ``training`` or ``cli`` (``tests/test_import_layers.py``).
"""

from ebm_ppl.model.distribution import (
    EnergyDistribution,
    check_normalisers,
    energy_sites,
    intractable_sites,
)
from ebm_ppl.model.groups import (
    add_model_groups,
    add_posterior_predictive,
    dataset_of,
    model_dims,
    model_parts,
    release_observations,
    unconstrained_posterior,
)

__all__ = [
    "EnergyDistribution",
    "add_model_groups",
    "add_posterior_predictive",
    "check_normalisers",
    "dataset_of",
    "energy_sites",
    "intractable_sites",
    "model_dims",
    "model_parts",
    "release_observations",
    "unconstrained_posterior",
]
