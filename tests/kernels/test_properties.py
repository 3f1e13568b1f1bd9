"""Property-based tests: kernels × dtypes × shapes × pytree structures.

Every kernel keeps finite positions on a finite target, keeps the position's structure and
dtype, gives the same result under ``jit`` as eagerly, the same under ``vmap`` as chain by
chain, and reproduces with the same key.
"""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ebm_ppl

KERNELS = ["ula", "mala", "hmc", "nuts", "random_walk", "independent", "barker"]
STRUCTURES = ["array", "dict", "tuple", "nested"]


def make_kernel(name, shape):
    k = ebm_ppl.kernels
    if name == "independent":
        # a proposal with the position's event shape; used only for array positions
        return k.independent(dist.Normal(jnp.zeros(shape), 2.0).to_event(len(shape)))
    return {
        "ula": lambda: k.ula(0.05),
        "mala": lambda: k.mala(0.3),
        "hmc": lambda: k.hmc(0.2, 3),
        "nuts": lambda: k.nuts(0.3, max_num_doublings=4),
        "random_walk": lambda: k.random_walk(0.5),
        "barker": lambda: k.barker(0.3),
    }[name]()


def make_position(structure, shape, dtype, rng):
    def leaf():
        return jnp.asarray(rng.normal(size=shape), dtype=dtype)

    if structure == "array":
        return leaf()
    if structure == "dict":
        return {"a": leaf(), "b": leaf()}
    if structure == "tuple":
        return (leaf(), leaf())
    return {"outer": (leaf(), {"inner": leaf()})}


def gaussian_logdensity(position):
    """Correlated finite target over any pytree: -½ Σ x² - ½ (Σ x)² / (1 + n)."""
    flat = jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(position)])
    return -0.5 * jnp.sum(flat**2) - 0.5 * jnp.sum(flat) ** 2 / (1.0 + flat.size)


def run_steps(kernel, key, position, num_steps=5):
    state = kernel.init(position, gaussian_logdensity)

    def body(state, key):
        state, info = kernel.step(key, state, gaussian_logdensity)
        return state, (info.acceptance_rate, info.is_divergent)

    return jax.lax.scan(body, state, jax.random.split(key, num_steps))


CASES = dict(
    name=st.sampled_from(KERNELS),
    structure=st.sampled_from(STRUCTURES),
    shape=st.sampled_from([(), (1,), (3,), (2, 2)]),
    seed=st.integers(0, 2**16),
)
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@settings(max_examples=7, **SETTINGS)
@given(**CASES)
def test_kernel_properties(name, structure, shape, seed):
    check_kernel_properties(name, structure, shape, seed)


#: A few fixed examples in the default run (a few seconds), chosen to cover what the slow
#: run's hypothesis draws may miss: HMC, the independence sampler and a nested pytree.
DEFAULT_EXAMPLES = [
    ("hmc", "nested", (2,), 0),
    ("independent", "array", (2, 2), 1),
]


@pytest.mark.parametrize("name, structure, shape, seed", DEFAULT_EXAMPLES,
                         ids=[f"{n}-{s}" for n, s, _, _ in DEFAULT_EXAMPLES])
def test_kernel_properties_fixed_examples(name, structure, shape, seed):
    check_kernel_properties(name, structure, shape, seed)


@pytest.mark.skipif(os.environ.get("EBM_PPL_MANY_PROPERTIES") != "1",
                    reason="run in its own process by test_kernel_properties_many")
@settings(max_examples=40, **SETTINGS)
@given(**CASES)
def test_kernel_properties_many_examples(name, structure, shape, seed):
    check_kernel_properties(name, structure, shape, seed)


def _pytest_subprocess(env_update, *args):
    env = {**os.environ, **env_update}
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", __file__, *args],
                         env=env, capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout


@pytest.mark.slow
@pytest.mark.heavy
def test_kernel_properties_many():
    """40 hypothesis examples, in a fresh interpreter (hundreds of XLA compilations in
    one long-lived test process once ended in a segfault inside XLA's compiler)."""
    out = _pytest_subprocess({"EBM_PPL_MANY_PROPERTIES": "1"}, "-k",
                             "test_kernel_properties_many_examples")
    assert "1 passed" in out


@pytest.mark.slow
def test_kernel_properties_float64():
    """The same properties with ``jax_enable_x64`` set for the whole process.

    (x64 is a process-wide setting; toggling it per example inside one process crashed
    XLA's compiler after many examples, so float64 runs in its own interpreter.)
    """
    out = _pytest_subprocess({"JAX_ENABLE_X64": "1"}, "-m", "slow", "-k",
                             "test_kernel_properties and not many and not float64")
    assert "1 passed" in out


def check_kernel_properties(name, structure, shape, seed):
    """Each property above, for one kernel, structure, shape and seed, in the process's
    default float dtype (float32, or float64 under ``JAX_ENABLE_X64=1``)."""
    if name == "independent":
        structure = "array"  # the proposal distribution is over one array
    dtype = jnp.result_type(float)
    rng = np.random.default_rng(seed)
    position = make_position(structure, shape, dtype, rng)
    kernel = make_kernel(name, shape)
    key = jax.random.key(seed)

    eager_state, (accept, divergent) = run_steps(kernel, key, position)
    jit_state, _ = jax.jit(run_steps, static_argnums=())(kernel, key, position)
    again, _ = run_steps(kernel, key, position)

    # structure, dtype and finiteness
    assert jax.tree.structure(eager_state.position) == jax.tree.structure(position)
    for new, old in zip(jax.tree.leaves(eager_state.position), jax.tree.leaves(position)):
        assert new.shape == old.shape and new.dtype == old.dtype
        assert np.all(np.isfinite(np.asarray(new)))
    assert np.all((np.asarray(accept) >= 0) & (np.asarray(accept) <= 1))
    assert not np.any(np.asarray(divergent))
    # reproducible, and jit agrees with eager execution
    for a, b, c in zip(jax.tree.leaves(eager_state.position),
                       jax.tree.leaves(again.position),
                       jax.tree.leaves(jit_state.position)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_allclose(np.asarray(a), np.asarray(c), rtol=1e-5, atol=1e-5)

    # vmap over chains equals chain-by-chain
    positions = jax.tree.map(lambda *xs: jnp.stack(xs),
                             *[make_position(structure, shape, dtype, rng) for _ in range(3)])
    keys = jax.random.split(key, 3)
    batched, _ = jax.vmap(lambda k, p: run_steps(kernel, k, p))(keys, positions)
    run_one = jax.jit(run_steps)  # compiled once for the three chains
    for c in range(3):
        single, _ = run_one(kernel, keys[c], jax.tree.map(lambda x, c=c: x[c], positions))
        for a, b in zip(jax.tree.leaves(batched.position), jax.tree.leaves(single.position)):
            np.testing.assert_allclose(np.asarray(a[c]), np.asarray(b), rtol=1e-5,
                                       atol=1e-5)


def test_different_keys_give_different_moves():
    kernel = ebm_ppl.kernels.mala(0.3)
    a, _ = run_steps(kernel, jax.random.key(0), jnp.zeros(3))
    b, _ = run_steps(kernel, jax.random.key(1), jnp.zeros(3))
    assert not np.array_equal(np.asarray(a.position), np.asarray(b.position))
