"""NumPyro side of ebm_ppl: energies as distributions, ebm_ppl kernels as MCMC kernels.

* :class:`EnergyDistribution`: ``log_prob = -E/T`` at any ``numpyro.sample`` site.
* :class:`ULA`, :class:`MH`, :class:`BlackJAXKernel`:
  :class:`numpyro.infer.mcmc.MCMCKernel` s run by :class:`numpyro.infer.MCMC`
  (``chain_method="vectorized"`` included); :func:`arviz.from_numpyro` works on the
  result.
* :class:`Exchange`: the exchange algorithm for models whose EnergyDistribution
  parameters depend on latent sites (doubly-intractable posteriors).
* :class:`ParallelTempering`: parallel tempering over any ebm_ppl kernel, for
  multimodal models (energy priors); the cold replica is the recorded chain.
"""

from ebm_ppl.model.distribution import EnergyDistribution
from ebm_ppl.model.groups import add_model_groups, add_posterior_predictive
from ebm_ppl.numpyro.exchange import Exchange
from ebm_ppl.numpyro.kernels import MH, ULA, BlackJAXKernel, EBMKernel, EBMKernelState
from ebm_ppl.numpyro.tempering import ParallelTempering, ParallelTemperingKernelState

__all__ = [
    "add_model_groups",
    "add_posterior_predictive",
    "EnergyDistribution", "Exchange", "EBMKernel", "EBMKernelState", "ULA", "MH", "BlackJAXKernel",
    "ParallelTempering", "ParallelTemperingKernelState"]
