"""Is ``inner_steps`` enough? The diagnostic of the inner-MCMC exchange algorithm.

:func:`inner_steps_check` samples with ``K`` and ``2K`` inner steps and compares the
posterior means within Monte-Carlo error, and reports the inner chains' acceptance at
posterior draws (:func:`ebm_ppl.sample` keeps only the standard statistics).

A diagnostic, hence here above :mod:`ebm_ppl.sampling` (it samples); formerly
``ebm_ppl.kernels.exchange_check``, ``ebm_ppl.kernels.inner_steps_check`` still works.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from ebm_ppl._types import ArrayTree, PRNGKey
from ebm_ppl._validation import as_key
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.kernels.exchange import inner_steps_of, with_inner_steps
from ebm_ppl.potential import Potential
from ebm_ppl.sampling import sample

__all__ = ["INNER_CHECK_ALPHA", "InnerStepsCheck", "inner_steps_check"]

#: Family-wise false-alarm rate of :func:`inner_steps_check` (Bonferroni over the
#: compared posterior means).
INNER_CHECK_ALPHA = 0.01


class InnerStepsCheck(NamedTuple):
    r"""Result of :func:`inner_steps_check`.

    Attributes
    ----------
    inner_steps
        The two inner-step counts compared, ``(K, 2K)``.
    means, mcse
        Posterior means then standard deviations of every scalar component of
        :math:`\theta` (flattened), and their Monte-Carlo standard errors, one array per
        run.
    z
        :math:`|m_K - m_{2K}| / \sqrt{\mathrm{mcse}_K^2 + \mathrm{mcse}_{2K}^2}`.
    critical_z
        Bonferroni critical value at family-wise level :data:`INNER_CHECK_ALPHA`.
    passed
        ``max(z) <= critical_z``: doubling the inner steps moves no posterior mean or
        standard deviation by more than Monte-Carlo error explains.
    inner_acceptance_rate
        Mean acceptance of the inner chains at posterior draws of the ``K`` run.
    idata
        The two InferenceData objects.
    """

    inner_steps: tuple[int, int]
    means: tuple[np.ndarray, np.ndarray]
    mcse: tuple[np.ndarray, np.ndarray]
    z: np.ndarray
    critical_z: float
    passed: bool
    inner_acceptance_rate: float
    idata: tuple[Any, Any]


def _posterior_positions(idata: Any, example: ArrayTree, num: int) -> ArrayTree:
    """Up to ``num`` posterior draws as a batch of positions shaped like ``example``."""
    leaves, treedef = jax.tree.flatten(example)
    post = idata.posterior
    arrays = [post[name].values.reshape(-1, *np.shape(leaf))
              for name, leaf in zip(post.data_vars, leaves)]
    index = np.linspace(0, arrays[0].shape[0] - 1, min(num, arrays[0].shape[0])).astype(int)
    return jax.tree.unflatten(treedef, [jnp.asarray(a[index]) for a in arrays])


def inner_steps_check(
    pot: Potential, kernel: Kernel, init: ArrayTree, *, seed: int | PRNGKey = 0,
    **sample_kwargs: Any,
) -> InnerStepsCheck:
    r"""Is ``inner_steps`` enough? Sample with ``K`` and ``2K`` inner steps and compare.

    The inner-MCMC exchange algorithm is biased by the finite inner runs; the bias
    shrinks as ``K`` grows (too few steps pull the posterior towards the prior and
    inflate its spread). When the posterior means and standard deviations with ``K``
    and ``2K`` inner steps agree within Monte-Carlo error (a two-sample z-test per component, Bonferroni at
    family-wise level 0.01), ``K`` is enough for the precision of this run; if not,
    double ``inner_steps`` and check again.

    Parameters
    ----------
    pot, kernel, init
        As for :func:`ebm_ppl.sample` (``kernel`` from :func:`exchange`, with inner MCMC).
    seed
        Seed of the two (independent) runs.
    **sample_kwargs
        Passed to :func:`ebm_ppl.sample` (``num_samples``, ``num_chains``...).

    Returns
    -------
    InnerStepsCheck
    """
    steps = inner_steps_of(kernel)  # raises unless an exchange kernel with inner MCMC
    auxiliary = kernel.parameters["auxiliary"]
    keys = jax.random.split(as_key(seed), 3)
    sample_kwargs.setdefault("progress", False)
    runs = tuple(sample(pot, k, init, seed=key, **sample_kwargs)
                 for k, key in ((kernel, keys[0]), (with_inner_steps(kernel, 2 * steps), keys[1])))
    def flat(run: Any, stat: Any) -> np.ndarray:
        return np.concatenate([np.atleast_1d(stat[v].values).ravel()
                               for v in run.posterior.data_vars])

    # posterior means and standard deviations, with their Monte-Carlo standard errors
    means = tuple(np.concatenate([flat(r, r.posterior.mean(("chain", "draw"))),
                                  flat(r, r.posterior.std(("chain", "draw")))]) for r in runs)
    mcse = tuple(np.concatenate([flat(r, az.mcse(r.posterior)),
                                 flat(r, az.mcse(r.posterior, method="sd"))]) for r in runs)
    z = np.abs(means[0] - means[1]) / np.sqrt(mcse[0] ** 2 + mcse[1] ** 2)
    critical = float(stats.norm.ppf(1.0 - INNER_CHECK_ALPHA / (2.0 * z.size)))
    thetas = _posterior_positions(runs[0], jax.tree.map(lambda x: x[0], init)
                                  if _is_batch(init, runs[0]) else init, 64)
    num = jax.tree.leaves(thetas)[0].shape[0]
    rates = jax.vmap(lambda k, t: auxiliary.draw_fn(k, t, auxiliary.params)[1])(
        jax.random.split(keys[2], num), thetas)
    return InnerStepsCheck((steps, 2 * steps), means, mcse, z, critical,
                           bool(np.all(z <= critical)), float(jnp.mean(rates)), runs)


def _is_batch(init: ArrayTree, idata: Any) -> bool:
    """Whether ``init`` holds one position per chain."""
    num_chains = idata.posterior.sizes["chain"]
    leaves = jax.tree.leaves(init)
    names = list(idata.posterior.data_vars)
    return all(np.ndim(leaf) == idata.posterior[n].ndim - 1 and np.shape(leaf)[0] == num_chains
               for leaf, n in zip(leaves, names))
