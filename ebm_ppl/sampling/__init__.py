"""Sampling: :func:`sample` runs chains of a kernel on a potential into ArviZ.

Modules, in the order a run goes through them:

* :mod:`~ebm_ppl.sampling.sampler` — the public :func:`sample` (validate, set up, run,
  assemble);
* :mod:`~ebm_ppl.sampling.positions` — initial positions (jittered, batch, or model init);
* :mod:`~ebm_ppl.sampling.checks` — pre-flight checks (finite start, suspicious targets);
* :mod:`~ebm_ppl.sampling.driver` — the chunked ``vmap`` × ``lax.scan`` driver
  (thinning, padding, progress, device sharding); warm-up uses :mod:`ebm_ppl.adaptation`;
* :mod:`~ebm_ppl.sampling.resume` — the stored sampler state (write and read);
* :mod:`~ebm_ppl.sampling.health` — end-of-run warnings.

Beside :func:`sample`, :func:`annealed_langevin` (:mod:`~ebm_ppl.sampling.annealed`)
draws from a noise-conditional energy by annealing over its noise levels.
"""

from ebm_ppl.sampling.annealed import annealed_langevin
from ebm_ppl.sampling.driver import DEFAULT_CHUNK_SIZE
from ebm_ppl.sampling.sampler import sample

__all__ = ["sample", "annealed_langevin", "DEFAULT_CHUNK_SIZE"]
