"""Data-parallel fit: batches split across 4 simulated CPU devices, parameters replicated,
results equal to the one-device run up to rounding.

Each check runs in a fresh Python process started with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (the flag must be set before JAX
initialises its backend, so it cannot be toggled inside this test process).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import jax, jax.numpy as jnp, numpy as np, optax
    from ebm_ppl import fit
    from ebm_ppl.kernels import ula
    from ebm_ppl.objectives import (contrastive_divergence, denoising_score_matching, nce,
                                    score_matching, sliced_score_matching)
    from ebm_ppl.training import loop

    assert jax.local_device_count() == 4, jax.local_devices()
    OBJECTIVES = {
        "sm": score_matching(), "dsm": denoising_score_matching([1.0, 0.1]),
        "ssm": sliced_score_matching(2), "nce": nce(noise_ratio=2),
        "pcd": contrastive_divergence(ula(0.05), 5, buffer_size=256),
    }
    OPTIMIZER = optax.adam(0.05)

    def energy(params, x):
        return 0.5 * jnp.sum(jnp.exp(params["log_prec"]) * (x - params["mu"]) ** 2)

    rng = np.random.default_rng(0)
    data = np.array([1.0, -1.0]) + np.array([0.5, 2.0]) * rng.normal(size=(1000, 2))
    params = {"mu": jnp.zeros(2), "log_prec": jnp.zeros(2)}
    chunks = []
    original = loop.run_chunk
    def spy(*args, **kwargs):
        chunks.append((args, kwargs))
        return original(*args, **kwargs)
    loop.run_chunk = spy

    check_hlo = sys.argv[1] == "--hlo"
    for name in sys.argv[2:]:
        kwargs = dict(num_steps=40, batch_size=64, seed=1, progress=False)
        if check_hlo:
            kwargs.update(validation_data=data[:128], validate_every=10)
        one = fit(energy, params, data, OBJECTIVES[name], OPTIMIZER,
                  devices=jax.local_devices()[:1], **kwargs)
        four = fit(energy, params, data, OBJECTIVES[name], OPTIMIZER, **kwargs)
        # parameters live replicated on the 4 devices; the compiled chunk reduces the
        # gradient across them
        assert len(four.trained_params["log_z" if name == "nce" else "mu"]
                   .sharding.device_set) == 4
        args, kw = chunks[-1]
        assert kw["config"].sharding is not None
        if check_hlo:
            hlo = original.lower(*args, **kw).compile().as_text()
            assert "all-reduce" in hlo, name
        for a, b in zip(jax.tree.leaves(one.trained_params),
                        jax.tree.leaves(four.trained_params)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-5,
                                       err_msg=name)
        for key in ("loss", "val_loss") if check_hlo else ("loss",):
            np.testing.assert_allclose(one.history[key], four.history[key], rtol=2e-4,
                                       atol=2e-5, err_msg=f"{name} {key}")
        print(name, "ok")
    """
)


def run_four_devices(*args: str) -> str:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *args], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_data_parallel_fit_equals_one_device():
    assert run_four_devices("--quick", "sm").split() == ["sm", "ok"]


@pytest.mark.slow
def test_data_parallel_fit_equals_one_device_for_every_objective():
    """Every objective, with held-out evaluations; the compiled chunk all-reduces."""
    objectives = ["sm", "dsm", "ssm", "nce", "pcd"]
    out = run_four_devices("--hlo", *objectives)
    assert out.split() == [word for name in objectives for word in (name, "ok")]


def test_devices_must_divide_the_batch():
    import jax
    import jax.numpy as jnp
    import numpy as np

    from ebm_ppl import fit
    from ebm_ppl.objectives import score_matching

    with pytest.raises(TypeError, match="devices must be a sequence of jax.Device"):
        fit(lambda p, x: jnp.sum((x - p) ** 2), jnp.zeros(2), np.zeros((10, 2)),
            score_matching(), num_steps=1, batch_size=5, progress=False, devices=["cpu:0"])
    device = jax.local_devices()[0]
    with pytest.raises(ValueError, match=r"batch_size must be a multiple of the number of "
                                         r"devices \(2\) to split batches across them, got 5"):
        fit(lambda p, x: jnp.sum((x - p) ** 2), jnp.zeros(2), np.zeros((10, 2)),
            score_matching(), num_steps=1, batch_size=5, progress=False,
            devices=[device, device])
