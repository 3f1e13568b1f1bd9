r"""Small MLP energies in plain JAX (no Flax, Haiku or Equinox needed).

:func:`mlp_energy` builds :math:`E_\theta(x) = \text{MLP}_\theta(x) + \tfrac{\alpha}{2}\|x\|^2`
for one position ``x`` of shape ``(d,)``; :func:`noise_conditional_mlp_energy` builds
the σ-conditioned :math:`E_\theta(x, \sigma) = \text{MLP}_\theta([x, \log\sigma]) / \sigma`
for multi-scale denoising score matching.

Both return a frozen, hashable *configuration object* that is itself the energy
function (``model(params, x)``) and has an ``init(rng_key, dim)`` method:

>>> model = mlp_energy((32, 32))
>>> params = model.init(jax.random.key(0), 2)
>>> model(params, jnp.zeros(2)).shape
()

Why an object and not a closure
    ebm_ppl keeps the energy function as *static* metadata of a
    :class:`~ebm_ppl.Potential` (and passes it as a static argument of ``jax.jit``), so
    jit's cache is keyed on its hash and equality. Two closures from two calls of a
    factory are different objects and would recompile; two ``MLPEnergy`` with the same
    configuration compare and hash equal, so compiled code is reused:
    ``mlp_energy((128, 128)) == mlp_energy((128, 128))``. ``model.apply`` is the model
    itself (a bound method would compare by identity of ``self``), and
    ``init, apply = model`` unpacks like Haiku's ``Transformed`` pair.

Why only smooth activations
    Score matching minimises :math:`\mathbb E[\tfrac12\|\nabla_x E\|^2 - \operatorname{tr}
    \nabla_x^2 E]`. With ReLU the network is piecewise linear in ``x``: its Hessian is 0
    almost everywhere, the trace term vanishes (and gives no parameter gradient) and the
    objective degenerates to shrinking the score to zero. Its score is also piecewise
    constant, which Langevin and HMC handle poorly. ``swish``, ``softplus`` and ``tanh``
    are :math:`C^\infty`; ``elu`` is :math:`C^1` with a second derivative that jumps at 0
    (still non-zero on the negative side), kept because it is a common choice.

Notes
-----
An MLP energy grows at most linearly in ``‖x‖``, so :math:`e^{-E}` need not be
normalisable and a sampler can drift off to infinity away from the data. ``quadratic``
:math:`\alpha > 0` adds a confining :math:`\tfrac{\alpha}{2}\|x\|^2` that guarantees a
proper density (a small value such as ``1e-2`` barely changes the fit on standardised
data).

Initialisation: hidden weights are He-normal (variance ``2 / fan_in``) for ``swish``,
``softplus`` and ``elu`` and Glorot-normal (``2 / (fan_in + fan_out)``) for ``tanh``; the
output layer is LeCun-normal (``1 / fan_in``); biases are 0.

References
----------
He et al. (2015), https://arxiv.org/abs/1502.01852 (He initialisation).
Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward
neural networks" (Glorot initialisation).
Song & Ermon (2019), NCSN, https://arxiv.org/abs/1907.05600 (noise-conditional scores).
Song & Ermon (2020), https://arxiv.org/abs/2006.09011 (``1/σ`` output scaling).
"""

from ebm_ppl.nn._base import ACTIVATIONS, MLPConfig
from ebm_ppl.nn.mlp import MLPEnergy, mlp_energy
from ebm_ppl.nn.noise_conditional import (
    FixedSigmaEnergy,
    NoiseConditionalMLPEnergy,
    noise_conditional_mlp_energy,
)

__all__ = [
    "ACTIVATIONS",
    "FixedSigmaEnergy",
    "MLPConfig",
    "MLPEnergy",
    "NoiseConditionalMLPEnergy",
    "mlp_energy",
    "noise_conditional_mlp_energy",
]

