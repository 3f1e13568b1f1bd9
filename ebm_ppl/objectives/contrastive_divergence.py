r"""Maximum-likelihood training with MCMC negatives: (persistent) contrastive divergence."""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ebm_ppl._types import Array, ArrayTree, Params, PRNGKey
from ebm_ppl._validation import check_int, check_nonnegative, check_probability
from ebm_ppl.kernels.base import Kernel
from ebm_ppl.kernels.chains import init_chains, run_from_states
from ebm_ppl.kernels.tempering import init_replicas, is_parallel_tempering
from ebm_ppl.objectives.base import (
    Objective,
    batch_energy,
    check_batch,
)
from ebm_ppl.potential import Potential

__all__ = ["contrastive_divergence", "CDState"]


class CDState(NamedTuple):
    """State of contrastive divergence.

    Attributes
    ----------
    buffer
        Replay buffer of persistent chains, shape ``(buffer_size, *event_shape)``
        (``(0, *event_shape)`` when not persistent); with a
        :func:`~ebm_ppl.kernels.parallel_tempering` kernel every chain keeps its ``K``
        replicas, ``(buffer_size, K, *event_shape)``, replica ``k`` the one at
        :math:`\beta_k` (the cold one first).
    pointer
        Index of the next buffer slot to read (chains are taken cyclically, so every
        chain is advanced once per ``buffer_size / num_negatives`` updates).
    low, high
        Range of the uniform noise that (re-)initialises chains (the data range), used
        when no ``init_distribution`` is given.
    """

    buffer: Array
    pointer: Array
    low: Array
    high: Array


def contrastive_divergence(
    kernel: Kernel,
    num_steps: int,
    persistent: bool = True,
    buffer_size: int = 10_000,
    reinit_prob: float = 0.05,
    *,
    energy_regularization: float = 0.1,
    init_distribution: Any = None,
    num_negatives: int | None = None,
) -> Objective:
    r"""(Persistent) contrastive divergence: the maximum-likelihood gradient with MCMC negatives.

    For :math:`p_\theta \propto e^{-E_\theta}`,
    :math:`\nabla_\theta \log p_\theta(x) = -\nabla_\theta E_\theta(x) +
    \mathbb E_{x' \sim p_\theta}[\nabla_\theta E_\theta(x')]`. The surrogate loss

    .. math::

        L(\theta) = \frac1B \sum_{i} E_\theta(x_i)
        - \frac1{B'} \sum_j E_\theta\big(\operatorname{sg}(x'_j)\big)
        + \alpha \Big(\frac1B\sum_i E_\theta(x_i)^2 + \frac1{B'}\sum_j
        E_\theta(x'_j)^2\Big)

    (:math:`\operatorname{sg}` = ``stop_gradient``) has for gradient the negative
    log-likelihood gradient (for :math:`\alpha = 0`) with the model expectation replaced
    by the negatives :math:`x'_j`: ``num_steps`` transitions of ``kernel`` on
    :math:`\log p = -E_\theta` (:func:`ebm_ppl.kernels.run_chains`: ``lax.scan`` over the
    steps, ``vmap`` over the negatives; the parameters are frozen by ``stop_gradient``
    while the chains move). Its *value*
    is not a likelihood; watch ``energy_positive``/``energy_negative``.

    Persistent (PCD, Tieleman 2008; with a replay buffer as in Du & Mordatch 2019):
    the chains live in a buffer of ``buffer_size`` positions carried in the state;
    every call takes ``num_negatives`` of them cyclically, re-initialises each from
    noise with probability ``reinit_prob``, advances them and writes them back.
    Non-persistent (CD-k, Hinton 2002): the chains start at the data batch.

    *Parallel-tempering negatives (PT-CD).* With ``kernel =
    parallel_tempering(base, ...)`` each negative is the cold replica of a ladder of
    tempered chains :math:`p_\theta^{\beta_k}` (:func:`ebm_ppl.kernels.parallel_tempering`);
    the hot replicas cross the barriers between the model's modes and swaps hand the
    crossings down, so the negatives can move mass between separated modes, which
    single-temperature chains (started in one basin) cannot, and the mass of each mode
    enters the gradient. The buffer keeps every replica's position (``K`` times the
    memory); each update rebuilds the replicas' cached log densities under the new
    :math:`\theta` (:func:`~ebm_ppl.kernels.tempering.init_replicas`), restarts all
    ``K`` replicas of a chain from one noise draw, and costs ``K`` base steps per step.
    The ladder is the kernel's, fixed (no warm-up during training: the target moves at
    every update); pick ``max_temperature`` so that the hottest replica crosses the
    model's barriers, and give hotter replicas larger steps (``replica_parameters``).

    Parameters
    ----------
    kernel
        Any :mod:`ebm_ppl.kernels` kernel (``mala``, ``ula``, ``hmc``, ``mh``,
        ``parallel_tempering(...)``...). With
        an exact kernel such as ``mala`` the negatives follow :math:`p_\theta` (up to
        mixing), so the trained model is the one its MCMC draws show. ``ula`` is
        cheaper but biased: the model then learns to fit the data *through* ULA's
        law at that step size, which on thin structures differs from
        :math:`p_\theta` itself (on the rings of ``examples/09_objective_table.py``,
        ``ula(0.01)`` negatives gave a model whose MALA draws put the wrong mass on
        the rings, MMD² at the median length scale 0.034 against 0.0006 with
        ``mala(0.01)``). ``ebm-ppl train --objective cd`` uses ``mala``.
    num_steps
        Transitions per update, :math:`k \geq 1`.
    persistent
        Keep the chains in a replay buffer (True) or restart them at the data (False).
    buffer_size
        Number of persistent chains (>= ``num_negatives``).
    reinit_prob
        Probability in [0, 1] that a chain is restarted from noise at each update. A
        restart starts from the noise's law, not the model's, so restarts bias the
        negatives towards it: on a two-mode mixture with weights 0.3/0.7, PT-CD learned
        the weight 0.725 at ``reinit_prob=0.05`` and 0.700 at 0
        (``tests/objectives/test_cd_tempering.py``).
    energy_regularization
        :math:`\alpha \geq 0` of the energy-magnitude penalty (Du & Mordatch use 1).
        Default 0.1: without it the energy drifts (only differences of :math:`E` enter
        the gradient) and PCD's samples put the wrong mass on the modes; on two moons,
        with the CLI's other defaults, MMD² to held-out data goes from 0.040
        (:math:`\alpha = 0`) to that of held-out data (``examples/09_objective_table.py``).
        Pass 0 for the plain maximum-likelihood gradient.
    init_distribution
        NumPyro distribution of one example for the noise restarts. Default: uniform
        over the data range (``low``/``high`` in the state, from ``init``'s data).
    num_negatives
        Negatives per update (persistent only); default: the batch size.

    Returns
    -------
    Objective
        State :class:`CDState` (the buffer is explicit and threaded, never hidden).
        Metrics: ``energy_positive``, ``energy_negative`` (means), ``acceptance_rate``
        and ``divergent`` (kernel means over steps and chains; the cold replica's for
        parallel tempering, which adds ``swap_acceptance``, the mean over pairs, steps
        and chains of the proposed swaps' acceptance probability).

    Raises
    ------
    TypeError
        If ``kernel`` is not an :mod:`ebm_ppl.kernels` kernel or ``init_distribution``
        not a NumPyro distribution.
    ValueError
        For invalid values, and from ``init`` when neither data nor
        ``init_distribution`` fix the buffer's shape.

    References
    ----------
    Hinton (2002), *Training products of experts by minimizing contrastive divergence*.
    Tieleman (2008), *Training restricted Boltzmann machines using approximations to the
    likelihood gradient*, ICML.
    Du & Mordatch (2019), https://arxiv.org/abs/1903.08689

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax
    >>> from ebm_ppl.kernels import ula
    >>> energy_fn = lambda p, x: 0.5 * jnp.sum((x - p) ** 2)
    >>> data = 1.0 + jax.random.normal(jax.random.key(0), (512, 2))
    >>> objective = contrastive_divergence(ula(0.05), num_steps=10, buffer_size=1024)
    >>> params = jnp.zeros(2)
    >>> state = objective.init(jax.random.key(1), params, data)
    >>> optimizer = optax.sgd(0.1)
    >>> opt_state = optimizer.init(params)
    >>> grad_fn = jax.value_and_grad(objective.loss, has_aux=True)
    >>> (value, (metrics, state)), grads = grad_fn(
    ...     params, data[:128], jax.random.key(2), energy_fn, state)
    >>> updates, opt_state = optimizer.update(grads, opt_state, params)
    >>> params = optax.apply_updates(params, updates)
    """
    if not isinstance(kernel, Kernel):
        raise TypeError(
            f"kernel must be an ebm_ppl.kernels kernel (ula, mala, hmc, mh...), got "
            f"{type(kernel).__name__}"
        )
    num_steps = check_int("num_steps", num_steps, 1)
    buffer_size = check_int("buffer_size", buffer_size, 1)
    reinit_prob = check_probability("reinit_prob", reinit_prob)
    alpha = check_nonnegative("energy_regularization", energy_regularization)
    if num_negatives is not None:
        num_negatives = check_int("num_negatives", num_negatives, 1)
        if persistent and num_negatives > buffer_size:
            raise ValueError(
                f"num_negatives must be <= buffer_size={buffer_size}, got {num_negatives}"
            )
    if init_distribution is not None and not hasattr(init_distribution, "sample"):
        raise TypeError(
            f"init_distribution must be a NumPyro distribution or None, got "
            f"{type(init_distribution).__name__}"
        )
    num_replicas = kernel.parameters["betas"].shape[0] if is_parallel_tempering(kernel) else 0
    config = _CDConfig(kernel, num_steps, bool(persistent), buffer_size, reinit_prob, alpha,
                       init_distribution, num_negatives, num_replicas)
    name = "persistent_contrastive_divergence" if config.persistent else \
        "contrastive_divergence"
    return Objective(init=partial(_init, config), loss=partial(_loss, config), name=name)


class _CDConfig(NamedTuple):
    """The validated settings of :func:`contrastive_divergence`."""

    kernel: Kernel
    num_steps: int
    persistent: bool
    buffer_size: int
    reinit_prob: float
    alpha: float
    init_distribution: Any
    num_negatives: int | None
    #: ``K`` for a parallel-tempering kernel (the buffer keeps every replica), else 0.
    num_replicas: int


def _noise(config: _CDConfig, rng_key: PRNGKey, num: int, state: CDState, event_shape,
           dtype) -> Array:
    """``num`` fresh chain starts: draws of ``init_distribution``, else uniform over the
    data range."""
    if config.init_distribution is not None:
        draw = jnp.asarray(config.init_distribution.sample(rng_key, (num,)), dtype)
        return jnp.reshape(draw, (num, *event_shape))
    u = jax.random.uniform(rng_key, (num, *event_shape), dtype)
    return state.low + u * (state.high - state.low)


def _init(config: _CDConfig, rng_key: PRNGKey, params: Params,
          data: ArrayTree | None = None) -> CDState:
    del params
    if data is not None:
        data = check_batch(data, "data")
        event_shape, dtype = data.shape[1:], data.dtype
        low, high = jnp.min(data, axis=0), jnp.max(data, axis=0)
    elif config.init_distribution is not None:
        example = jax.eval_shape(config.init_distribution.sample, rng_key)
        event_shape = example.shape
        dtype = example.dtype if jnp.issubdtype(example.dtype, jnp.floating) else \
            jnp.result_type(float)
        low = high = jnp.zeros(event_shape, dtype)
    else:
        raise ValueError(
            "contrastive_divergence.init needs data (init(rng_key, params, data)) or "
            "an init_distribution to know the shape of its replay buffer"
        )
    size = config.buffer_size if config.persistent else 0
    replicas = (config.num_replicas,) if config.num_replicas else ()
    state = CDState(buffer=jnp.zeros((size, *replicas, *event_shape), dtype),
                    pointer=jnp.zeros((), jnp.int32), low=low, high=high)
    if config.persistent:  # every replica from its own noise draw
        noise = _noise(config, rng_key, size * max(config.num_replicas, 1), state,
                       event_shape, dtype)
        state = state._replace(buffer=jnp.reshape(noise, state.buffer.shape))
    return state


def _starts(config: _CDConfig, batch: Array, state: CDState, key_reinit: PRNGKey,
            key_noise: PRNGKey) -> tuple[Array, Array | None]:
    """Chain starts (every replica's for parallel tempering: ``(num, K, *event)``) and,
    when persistent, the buffer slots they come from."""
    if not config.persistent:
        if config.num_replicas:
            batch = jnp.broadcast_to(batch[:, None], (batch.shape[0], config.num_replicas,
                                                      *batch.shape[1:]))
        return batch, None
    num = config.num_negatives or batch.shape[0]
    if num > state.buffer.shape[0]:
        raise ValueError(
            f"the batch of negatives ({num}) is larger than the replay buffer "
            f"({state.buffer.shape[0]}); lower batch_size or raise buffer_size"
        )
    idx = (state.pointer + jnp.arange(num)) % state.buffer.shape[0]
    fresh = _noise(config, key_noise, num, state, batch.shape[1:], batch.dtype)
    kept = state.buffer[idx]
    if config.num_replicas:  # a restarted chain restarts all its replicas from one draw
        fresh = jnp.broadcast_to(fresh[:, None], kept.shape)
    restart = jax.random.bernoulli(key_reinit, config.reinit_prob, (num,))
    restart = jnp.reshape(restart, (num,) + (1,) * (kept.ndim - 1))
    return jnp.where(restart, fresh, kept), idx


def _loss(config: _CDConfig, params, batch, rng_key, energy_fn, state=None):
    batch = check_batch(batch)
    if state is None:
        if config.persistent:
            raise ValueError(
                "persistent contrastive_divergence needs its state: call "
                "objective.init(rng_key, params, data) and thread it through loss"
            )
        state = CDState(jnp.zeros((0, *batch.shape[1:]), batch.dtype), jnp.zeros((), jnp.int32),
                        jnp.min(batch, axis=0), jnp.max(batch, axis=0))
    key_reinit, key_noise, key_mcmc = jax.random.split(rng_key, 3)
    start, idx = _starts(config, batch, state, key_reinit, key_noise)
    frozen = jax.lax.stop_gradient(params)
    logdensity_fn = Potential.from_energy(partial(energy_fn, frozen)).logdensity_fn
    if config.num_replicas:  # caches rebuilt under the new parameters, as init does
        states = jax.vmap(lambda x: init_replicas(config.kernel, x, logdensity_fn))(start)
    else:
        states = init_chains(config.kernel, logdensity_fn, start)
    chains, infos = run_from_states(config.kernel, logdensity_fn, states,
                                    jax.random.split(key_mcmc, config.num_steps))
    negatives = jax.lax.stop_gradient(chains.position)

    energy_pos = batch_energy(energy_fn, params, batch)
    energy_neg = batch_energy(energy_fn, params, negatives)
    value = jnp.mean(energy_pos) - jnp.mean(energy_neg)
    if config.alpha > 0:
        value = value + config.alpha * (jnp.mean(energy_pos**2) + jnp.mean(energy_neg**2))
    if config.persistent:
        kept = chains.replicas.position if config.num_replicas else chains.position
        state = state._replace(buffer=state.buffer.at[idx].set(jax.lax.stop_gradient(kept)),
                               pointer=(state.pointer + idx.shape[0]) % state.buffer.shape[0])
    metrics = {
        "energy_positive": jnp.mean(energy_pos),
        "energy_negative": jnp.mean(energy_neg),
        "acceptance_rate": jnp.mean(infos.acceptance_rate).astype(batch.dtype),
        "divergent": jnp.mean(infos.is_divergent.astype(batch.dtype)),
    }
    if config.num_replicas:
        metrics["swap_acceptance"] = jnp.nanmean(infos.swap_acceptance).astype(batch.dtype)
    return value, (metrics, state)
