"""``from_blackjax`` adds nothing to a finite transition: on a finite target, the wrapped
kernel makes the draws of the BlackJAX algorithm itself, key for key (the adapter only
undoes non-finite moves, which ``tests/kernels/test_from_blackjax.py`` checks)."""

from __future__ import annotations

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_ppl.kernels import from_blackjax

COV = jnp.array([[1.0, 0.6], [0.6, 2.0]])
PREC = jnp.linalg.inv(COV)


def logdensity(x):
    return -0.5 * x @ PREC @ x


CASES = {
    "mala": (lambda: from_blackjax(blackjax.mala, step_size=0.8),
             lambda: blackjax.mala(logdensity, 0.8)),
    "hmc": (lambda: from_blackjax(blackjax.hmc, step_size=0.5, num_integration_steps=4),
            lambda: blackjax.hmc(logdensity, 0.5, jnp.ones(2), 4)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_wrapped_kernel_makes_the_blackjax_draws(name):
    """30 steps of 3 chains with the same keys: same positions and acceptance rates (up to
    float32 rounding); the reference both accepts and rejects."""
    ours_factory, reference_factory = CASES[name]
    ours, reference = ours_factory(), reference_factory()
    keys = jax.random.split(jax.random.key(401), (30, 3))
    start = jnp.array([[0.0, 0.0], [1.0, -1.0], [2.0, 0.5]])

    def run(init_fn, step_fn):
        def body(states, step_keys):
            states, info = jax.vmap(step_fn)(step_keys, states)
            return states, (states.position, info.acceptance_rate,
                            getattr(info, "is_accepted", None))

        return jax.lax.scan(body, jax.vmap(init_fn)(start), keys)[1]

    ref_positions, ref_rate, ref_accepted = jax.jit(
        lambda: run(reference.init, reference.step))()
    our_positions, our_rate, _ = jax.jit(lambda: run(
        lambda x: ours.init(x, logdensity), lambda k, s: ours.step(k, s, logdensity)))()
    np.testing.assert_allclose(our_positions, ref_positions, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(our_rate, np.minimum(ref_rate, 1.0), rtol=1e-5, atol=1e-6)
    assert 0 < float(jnp.mean(ref_accepted)) < 1
