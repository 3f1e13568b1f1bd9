"""How ``sample`` reads ``init`` when the potential has no example position (issue #27):
a visible rule, never a silent reshape of the target."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

import ebm_ppl
from ebm_ppl._validation import as_key
from ebm_ppl.sampling.positions import initial_positions

ENERGY = staticmethod(lambda x: 0.5 * jnp.sum(x**2))

def _pot(example=None):
    return ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=example)

def test_leading_axis_equal_to_num_chains_is_the_chain_axis():
    init = jnp.arange(8.0).reshape(4, 2)
    out = initial_positions(_pot(), init, 4, as_key(0), jitter=0.0)
    assert out.shape == (4, 2) and jnp.array_equal(out, init)

def test_vector_init_is_one_position_broadcast():
    out = initial_positions(_pot(), jnp.ones(3), 5, as_key(0), jitter=0.0)
    assert out.shape == (5, 3) and jnp.all(out == 1.0)

@pytest.mark.parametrize("num_chains", [2, 8])
def test_matrix_init_with_another_leading_axis_is_refused(num_chains):
    with pytest.raises(ValueError, match=r"ambiguous with num_chains=.*example="):
        initial_positions(_pot(), jnp.zeros((4, 2)), num_chains, as_key(0), jitter=0.0)

def test_mixed_pytree_without_example_is_refused():
    init = {"a": jnp.zeros((4, 2)), "b": jnp.zeros(4)}
    with pytest.raises(ValueError, match="ambiguous"):
        initial_positions(_pot(), init, 4, as_key(0), jitter=0.0)

def test_example_position_resolves_the_ambiguity():
    # a target over 4x2 matrices: one start broadcast to two chains
    out = initial_positions(_pot(example=jnp.zeros((4, 2))), jnp.zeros((4, 2)), 2, as_key(0),
                            jitter=0.0)
    assert out.shape == (2, 4, 2)

def test_sample_refuses_before_any_compute():
    with pytest.raises(ValueError, match="ambiguous"):
        ebm_ppl.sample(_pot(), ebm_ppl.kernels.ula(0.1), init=jnp.zeros((4, 2)), num_chains=2,
                       num_samples=5, num_warmup=0, progress=False)
