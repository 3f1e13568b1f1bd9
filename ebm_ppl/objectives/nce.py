r"""Noise-contrastive estimation with the log normaliser as a learned parameter.

The trainable parameters of :func:`nce` are ``{"energy": energy_params, "log_z":
scalar}`` (:func:`nce_params` builds them; :func:`ebm_ppl.fit` does it for you and
returns the energy's parameters in ``result.params`` and the whole tree in
``result.trained_params``, so ``result.trained_params["log_z"]`` is the learned
:math:`\log Z`; the training history also records ``log_z`` at every step).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from ebm_ppl._types import Array, ArrayTree, Params, PRNGKey
from ebm_ppl._validation import check_int
from ebm_ppl.objectives.base import EmptyState, Objective, batch_energy, check_batch

__all__ = ["nce", "nce_params", "NCEState", "fit_gaussian"]

#: Relative ridge added to the fitted covariance (times its mean variance) so that the
#: Cholesky factor exists for degenerate data.
_RIDGE = 1e-6


class NCEState(NamedTuple):
    """Default NCE noise: a Gaussian :math:`\\mathcal N(\\text{mean}, LL^\\top)` fitted
    to the data (``scale_tril`` is :math:`L`, over the flattened event)."""

    mean: Array
    scale_tril: Array


def _is_nce_params(params: Any) -> bool:
    return isinstance(params, dict) and set(params) == {"energy", "log_z"}


def nce_params(params: Params, log_z: float = 0.0) -> dict[str, Any]:
    """Trainable parameters of :func:`nce`: ``{"energy": params, "log_z": log_z}``.

    Parameters that already have this form are returned unchanged, so lifting twice
    (``fit`` given the output of ``nce_params``) is harmless.
    """
    if _is_nce_params(params):
        return params
    return {"energy": params, "log_z": jnp.asarray(log_z, dtype=jnp.result_type(float))}


def _energy_part(params: dict[str, Any]) -> Params:
    return params["energy"]


@jax.jit  # one dispatch: eagerly, the mean, covariance and Cholesky cost ~2 ms per fit
def fit_gaussian(data: ArrayTree) -> NCEState:
    """Gaussian (mean and Cholesky factor of the covariance) fitted to ``data``.

    ``data`` has shape ``(n, *event_shape)``; the event is flattened.
    """
    x = jnp.asarray(data)
    x = jnp.reshape(x, (x.shape[0], -1)).astype(jnp.result_type(float))
    mean = jnp.mean(x, axis=0)
    centred = x - mean
    cov = centred.T @ centred / jnp.maximum(x.shape[0] - 1, 1)
    ridge = _RIDGE * jnp.maximum(jnp.trace(cov) / cov.shape[0], 1e-12)
    cov = cov + ridge * jnp.eye(cov.shape[0], dtype=cov.dtype)
    return NCEState(mean=mean, scale_tril=jnp.linalg.cholesky(cov))


def _gaussian_log_prob(state: NCEState, x_flat: Array) -> Array:
    dim = state.mean.shape[0]
    white = solve_triangular(state.scale_tril, (x_flat - state.mean).T, lower=True).T
    log_det = jnp.sum(jnp.log(jnp.diag(state.scale_tril)))
    return -0.5 * jnp.sum(white**2, axis=-1) - log_det - 0.5 * dim * jnp.log(2 * jnp.pi)


def nce(noise: Any = None, *, noise_ratio: int = 1) -> Objective:
    r"""Noise-contrastive estimation (Gutmann & Hyvärinen) with a learned :math:`\log Z`.

    The model density is :math:`\log p_\theta(x) = -E_\theta(x) - c` with the learned
    scalar :math:`c = \log Z`. With :math:`\nu` noise samples :math:`y \sim q` per data
    point and the log-odds :math:`h(x) = \log p_\theta(x) - \log q(x) - \log \nu`, NCE
    minimises the logistic loss of classifying data against noise,

    .. math::

        J(\theta, c) = -\mathbb E_{x\sim p_\text{data}} \log \sigma\big(h(x)\big)
        - \nu\, \mathbb E_{y\sim q} \log \sigma\big(-h(y)\big),

    whose minimiser over :math:`c` is the true log normaliser of :math:`e^{-E_\theta}`
    (self-normalisation), provided :math:`q` covers the data.

    Parameters
    ----------
    noise
        A NumPyro distribution over one example (``sample(key, (m,))`` gives ``(m,
        *event_shape)``; ``log_prob`` is summed over the remaining axes), or None
        (default): a Gaussian with the data's mean and full covariance, fitted by
        ``init(rng_key, params, data)`` and kept in the state (:class:`NCEState`).
    noise_ratio
        :math:`\nu \geq 1`, noise samples per data point.

    Returns
    -------
    Objective
        ``to_trainable`` lifts the energy's parameters to ``{"energy": ..., "log_z":
        0.0}`` (:func:`nce_params`); ``to_energy_params`` extracts them back. Metrics:
        ``log_z``, ``accuracy`` (of the data/noise classifier), ``energy_data``,
        ``energy_noise``.

    Raises
    ------
    TypeError
        If ``noise`` is not a NumPyro distribution (or None).
    ValueError
        From ``init`` with the default noise and no data, and from ``loss`` when the
        parameters are not an :func:`nce_params` dict.

    References
    ----------
    Gutmann & Hyvärinen (2010), *Noise-contrastive estimation: a new estimation
    principle for unnormalized statistical models*, AISTATS.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, optax
    >>> energy_fn = lambda p, x: 0.5 * jnp.sum((x - p) ** 2)
    >>> data = 1.0 + jax.random.normal(jax.random.key(0), (256, 2))
    >>> objective = nce()
    >>> params = objective.to_trainable(jnp.zeros(2))        # {"energy":..., "log_z": 0.}
    >>> state = objective.init(jax.random.key(1), params, data)  # fits the noise
    >>> grad_fn = jax.value_and_grad(objective.loss, has_aux=True)
    >>> (value, (metrics, state)), grads = grad_fn(
    ...     params, data, jax.random.key(2), energy_fn, state)
    >>> float(metrics["log_z"])
    0.0
    """
    noise_ratio = check_int("noise_ratio", noise_ratio, 1)
    if noise is not None and not (hasattr(noise, "sample") and hasattr(noise, "log_prob")):
        raise TypeError(
            f"noise must be a NumPyro distribution (with sample and log_prob) or None, "
            f"got {type(noise).__name__}"
        )
    log_nu = float(np.log(noise_ratio))

    def init(rng_key: PRNGKey, params: Params, data: ArrayTree | None = None):
        del rng_key, params
        if noise is not None:
            return EmptyState()
        if data is None:
            raise ValueError(
                "nce() with the default Gaussian noise needs data to fit it: call "
                "objective.init(rng_key, params, data), or pass a NumPyro distribution as "
                "noise"
            )
        return fit_gaussian(data)

    def loss(params, batch, rng_key, energy_fn, state=None):
        if not _is_nce_params(params):
            raise ValueError(
                "nce params must be the dict {'energy': params, 'log_z': scalar}; build "
                "them with objective.to_trainable(params) or ebm_ppl.objectives.nce_params"
            )
        batch = check_batch(batch)
        n = batch.shape[0]
        m = noise_ratio * n
        event_shape = batch.shape[1:]
        if noise is None:
            gauss = fit_gaussian(batch) if state is None else state
            z = jax.random.normal(rng_key, (m, gauss.mean.shape[0]), batch.dtype)
            y_flat = gauss.mean + z @ gauss.scale_tril.T
            y = jnp.reshape(y_flat, (m, *event_shape))
            log_q_data = _gaussian_log_prob(gauss, jnp.reshape(batch, (n, -1)))
            log_q_noise = _gaussian_log_prob(gauss, y_flat)
            new_state = gauss
        else:
            y = jnp.reshape(jnp.asarray(noise.sample(rng_key, (m,)), batch.dtype),
                            (m, *event_shape))
            log_q_data = jnp.reshape(noise.log_prob(batch), (n, -1)).sum(-1)
            log_q_noise = jnp.reshape(noise.log_prob(y), (m, -1)).sum(-1)
            new_state = EmptyState() if state is None else state
        y = jax.lax.stop_gradient(y)
        log_z = params["log_z"]
        energy_data = batch_energy(energy_fn, params["energy"], batch)
        energy_noise = batch_energy(energy_fn, params["energy"], y)
        h_data = -energy_data - log_z - log_q_data - log_nu
        h_noise = -energy_noise - log_z - log_q_noise - log_nu
        value = -jnp.mean(jax.nn.log_sigmoid(h_data)) - noise_ratio * jnp.mean(
            jax.nn.log_sigmoid(-h_noise)
        )
        accuracy = (jnp.sum(h_data > 0) + jnp.sum(h_noise <= 0)) / (n + m)
        metrics = {
            "log_z": log_z,
            "accuracy": accuracy.astype(batch.dtype),
            "energy_data": jnp.mean(energy_data),
            "energy_noise": jnp.mean(energy_noise),
        }
        return value, (metrics, new_state)

    return Objective(
        init=init, loss=loss, to_trainable=nce_params, to_energy_params=_energy_part,
        name="nce",
    )
