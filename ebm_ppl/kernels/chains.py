r"""Many independent chains of one kernel: ``vmap`` over chains, ``lax.scan`` over steps.

The one implementation of the loop that AIS, contrastive divergence, the tests and the
examples all need:

.. code-block:: python

    states, infos = run_chains(kernel, logdensity_fn, positions, keys)

* ``positions`` is a batch of positions (leading chain axis on every leaf);
* ``keys`` is a ``(num_steps, num_chains)`` array of ``jax.random`` keys (the key of
  chain ``c`` at step ``t`` is ``keys[t, c]``), or a ``(num_steps,)`` array, each
  split into ``num_chains`` keys (``jax.random.split(keys[t], num_chains)``);
* the result is the final kernel states (leading chain axis) and the infos of every
  step stacked as ``(num_steps, num_chains, ...)``.

Both functions are pure and traceable: wrap them in :func:`jax.jit` (with
``logdensity_fn`` closed over or static) to compile the whole run once.
:func:`step_chains` is one step of all chains, optionally with one kernel per chain
(``kernel_axis=0``: a kernel whose numeric hyper-parameters have a leading chain axis,
as :func:`ebm_ppl.sample` uses while each chain adapts its own step size).
"""

from __future__ import annotations

from typing import Any

import jax

from ebm_ppl._types import ArrayTree, LogDensityFn, PRNGKey
from ebm_ppl.kernels.base import Kernel

__all__ = ["run_chains", "run_from_states", "step_chains", "init_chains"]


def init_chains(kernel: Kernel, logdensity_fn: LogDensityFn, positions: ArrayTree) -> Any:
    """Kernel states of a batch of positions (``vmap`` of ``kernel.init``)."""
    return jax.vmap(lambda x: kernel.init(x, logdensity_fn))(positions)


def step_chains(
    kernel: Kernel,
    logdensity_fn: LogDensityFn,
    states: Any,
    keys: PRNGKey,
    *,
    kernel_axis: int | None = None,
) -> tuple[Any, Any]:
    """One transition of every chain: ``vmap`` of ``kernel.step``.

    Parameters
    ----------
    kernel
        The kernel; with ``kernel_axis=0`` its numeric hyper-parameters carry a leading
        chain axis (one tuned kernel per chain).
    logdensity_fn
        Log density shared by all chains.
    states
        Kernel states with a leading chain axis.
    keys
        ``(num_chains,)`` keys, one per chain.
    kernel_axis
        ``None`` (one kernel for all chains) or ``0`` (a batch of kernels).

    Returns
    -------
    (states, infos)
        New states and infos, leading chain axis.
    """
    def one(k: Kernel, key: PRNGKey, state: Any) -> tuple[Any, Any]:
        return k.step(key, state, logdensity_fn)

    return jax.vmap(one, in_axes=(kernel_axis, 0, 0))(kernel, keys, states)


def run_chains(
    kernel: Kernel, logdensity_fn: LogDensityFn, positions: ArrayTree, keys: PRNGKey
) -> tuple[Any, Any]:
    r"""Run independent chains of ``kernel`` from ``positions``, one step per row of keys.

    .. math::

        x^{(c)}_{t+1} \sim K(x^{(c)}_t, \cdot\,; \text{keys}[t, c]), \qquad
        t = 0, \dots, T-1,\ c = 0, \dots, C-1.

    Parameters
    ----------
    kernel
        An :mod:`ebm_ppl.kernels` kernel (any object with ``init`` and ``step``).
    logdensity_fn
        ``log p`` up to a constant (BlackJAX sign).
    positions
        Initial positions, leading axis ``C`` (chains) on every leaf.
    keys
        ``(T, C)`` keys, or ``(T,)`` keys each split into ``C`` per-chain keys.

    Returns
    -------
    (states, infos)
        Final states (leading axis ``C``) and per-step infos stacked ``(T, C, ...)``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from ebm_ppl.kernels import mala
    >>> keys = jax.random.split(jax.random.key(0), 100)
    >>> states, infos = run_chains(mala(0.5), lambda x: -0.5 * jnp.sum(x**2),
    ...                            jnp.zeros((8, 2)), keys)
    >>> states.position.shape, infos.acceptance_rate.shape
    ((8, 2), (100, 8))
    """
    return run_from_states(kernel, logdensity_fn, init_chains(kernel, logdensity_fn, positions),
                           keys)


def run_from_states(
    kernel: Kernel, logdensity_fn: LogDensityFn, states: Any, keys: PRNGKey
) -> tuple[Any, Any]:
    """:func:`run_chains` from kernel states (leading chain axis) instead of positions.

    For states that ``kernel.init`` cannot build from one position, such as the replicas
    of :func:`~ebm_ppl.kernels.parallel_tempering` (built by
    :func:`~ebm_ppl.kernels.tempering.init_replicas`). ``keys`` as in :func:`run_chains`;
    returns ``(states, infos)``.
    """
    num_chains = jax.tree.leaves(states)[0].shape[0]

    def body(states: Any, step_keys: PRNGKey) -> tuple[Any, Any]:
        if step_keys.ndim == 0:
            step_keys = jax.random.split(step_keys, num_chains)
        return step_chains(kernel, logdensity_fn, states, step_keys)

    return jax.lax.scan(body, states, keys)
