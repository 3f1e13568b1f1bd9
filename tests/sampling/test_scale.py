"""Scale and continuity of ``ebm_ppl.sample``: devices, resume, thinning, interruption."""

import json
import os
import subprocess
import sys
import textwrap

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ebm_ppl
from ebm_ppl.sampling import driver

PRECISION = jnp.array([1.0, 4.0])


def energy(x):
    return 0.5 * jnp.sum(PRECISION * x**2)


def _kernels():
    import numpyro.distributions as dist

    return {
        "ula": ebm_ppl.kernels.ula(0.05),
        "mala": ebm_ppl.kernels.mala(0.4),
        "nuts": ebm_ppl.kernels.nuts(0.5),
        "rwmh": ebm_ppl.kernels.random_walk(0.8),
        "imh": ebm_ppl.kernels.independent(dist.Normal(jnp.zeros(2), 2.0).to_event(1)),
        "pt": ebm_ppl.kernels.parallel_tempering(ebm_ppl.kernels.mala(0.4),
                                                 num_temperatures=3, max_temperature=10.0),
    }


SCRIPT = textwrap.dedent(
    """
    import sys, json
    import jax, jax.numpy as jnp, numpy as np, ebm_ppl
    sys.path[:0] = {paths!r}
    from test_scale import _kernels, energy
    pot = ebm_ppl.Potential.from_energy(energy)
    out = {{"devices": jax.device_count()}}
    for name, kernel in _kernels().items():
        adapt = name != "nuts"
        idata = ebm_ppl.sample(pot, kernel, jnp.zeros(2), num_samples=60, num_warmup=40,
                               num_chains=8, adapt=adapt, progress=False, chunk_size=32)
        out[name] = idata.posterior["x"].values.tolist()
    print(json.dumps(out))
    """
)


def _run(devices: int) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    here = os.path.dirname(__file__)  # test_scale itself, and conftest one folder up
    code = SCRIPT.format(paths=[here, os.path.dirname(here)])
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=600, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_same_draws_whatever_the_device_count():
    """Chains sharded over 4 simulated devices give bitwise the draws of one device."""
    one, four = _run(1), _run(4)
    assert one.pop("devices") == 1 and four.pop("devices") == 4
    for name in one:
        np.testing.assert_array_equal(np.asarray(one[name]), np.asarray(four[name]), err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ula", "nuts", "rwmh", "imh", "pt"])
def test_resume_continues_bitwise(name, tmp_path):
    """A run resumed from its saved InferenceData equals one uninterrupted run."""
    kernel = _kernels()[name]
    pot = ebm_ppl.Potential.from_energy(energy)
    kw = dict(num_warmup=50, progress=False, chunk_size=32, seed=7)
    full = ebm_ppl.sample(pot, kernel, jnp.zeros(2), num_samples=90, **kw)
    first = ebm_ppl.sample(pot, kernel, jnp.zeros(2), num_samples=50, **kw)
    path = tmp_path / "first.nc"
    first.to_netcdf(str(path))
    second = ebm_ppl.sample(pot, kernel, resume=az.from_netcdf(str(path)), num_samples=40,
                            progress=False, chunk_size=32)
    joined = ebm_ppl.concat_draws(first, second)
    assert joined.sampler_state.attrs["next_step"] == 90
    np.testing.assert_array_equal(joined.posterior["x"].values, full.posterior["x"].values)
    np.testing.assert_array_equal(joined.sample_stats["lp"].values,
                                  full.sample_stats["lp"].values)


def test_resume_rejects_other_kernel_or_plain_idata():
    pot = ebm_ppl.Potential.from_energy(energy)
    first = ebm_ppl.sample(pot, ebm_ppl.kernels.ula(0.05), jnp.zeros(2), num_samples=5,
                           num_warmup=0, progress=False)
    with pytest.raises(ValueError, match="sampled with kernel 'ula'"):
        ebm_ppl.sample(pot, ebm_ppl.kernels.mala(0.1), resume=first, progress=False)
    plain = az.from_dict(posterior={"x": np.zeros((2, 3, 2))})
    with pytest.raises(ValueError, match="sampler_state"):
        ebm_ppl.sample(pot, ebm_ppl.kernels.ula(0.05), resume=plain, progress=False)


def test_thin_keeps_every_thin_th_step():
    """thin=3 stores the states after steps 3, 6, ... of the unthinned run."""
    pot = ebm_ppl.Potential.from_energy(energy)
    kw = dict(num_warmup=0, progress=False, seed=3, adapt=False)
    full = ebm_ppl.sample(pot, ebm_ppl.kernels.ula(0.1), jnp.zeros(2), num_samples=30, **kw)
    thinned = ebm_ppl.sample(pot, ebm_ppl.kernels.ula(0.1), jnp.zeros(2), num_samples=10,
                             thin=3, **kw)
    np.testing.assert_array_equal(thinned.posterior["x"].values,
                                  full.posterior["x"].values[:, 2::3])


def test_thin_keeps_divergences_of_skipped_steps():
    """A divergence on a skipped step is still reported on the stored draw."""
    def nan_energy(x):  # NaN beyond x0 > 1: ULA steps into it often
        return jnp.where(x[0] > 1.0, jnp.nan, 0.5 * jnp.sum(x**2))

    pot = ebm_ppl.Potential.from_energy(nan_energy)
    kw = dict(num_warmup=0, progress=False, seed=0)
    full = ebm_ppl.sample(pot, ebm_ppl.kernels.ula(0.5), jnp.zeros(2), num_samples=60, **kw)
    thinned = ebm_ppl.sample(pot, ebm_ppl.kernels.ula(0.5), jnp.zeros(2), num_samples=20,
                             thin=3, **kw)
    div = full.sample_stats["diverging"].values.reshape(4, 20, 3).any(axis=2)
    assert div.sum() > 0
    np.testing.assert_array_equal(thinned.sample_stats["diverging"].values, div)
    assert np.isfinite(thinned.posterior["x"].values).all()


def test_ctrl_c_returns_finished_chunks(monkeypatch):
    """KeyboardInterrupt during sampling returns the finished chunks with a warning."""
    real = driver._run_chunk
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if kwargs["warmup"] is None and calls["n"] > 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(driver, "_run_chunk", flaky)
    pot = ebm_ppl.Potential.from_energy(energy)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        idata = ebm_ppl.sample(pot, ebm_ppl.kernels.ula(0.05), jnp.zeros(2), num_samples=100,
                               num_warmup=10, chunk_size=10, progress=False)
    assert idata.posterior["x"].shape == (4, 20, 2)
    assert idata.attrs["ebm_ppl_config"] and json.loads(idata.attrs["ebm_ppl_config"])[
        "interrupted"]


def test_ctrl_c_during_warmup_propagates(monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(driver, "_run_chunk", interrupt)
    pot = ebm_ppl.Potential.from_energy(energy)
    with pytest.raises(KeyboardInterrupt):
        ebm_ppl.sample(pot, ebm_ppl.kernels.ula(0.05), jnp.zeros(2), num_samples=10,
                       num_warmup=10, progress=False)


class CompileCounter:
    """Counts XLA backend compilations through ``jax.monitoring``."""

    def __init__(self):
        self.n = 0
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            self.n += 1


COMPILES = CompileCounter()


@pytest.mark.slow
def test_second_call_compiles_nothing():
    """New seed, init, num_samples, num_warmup, thin, step size and params: no compile.

    (``thin=1`` and ``thin>1`` are two variants; all ``thin>1`` share one.)
    """
    def counted(params, x):
        return 0.5 * jnp.sum(params["precision"] * (x - params["mean"]) ** 2)

    params = {"precision": jnp.array([1.0, 2.0]), "mean": jnp.zeros(2)}
    pot = ebm_ppl.Potential.from_energy(counted, params)
    ebm_ppl.sample(pot, ebm_ppl.kernels.mala(0.3), jnp.zeros(2), num_samples=50,
                   num_warmup=20, thin=3, progress=False)
    params2 = {"precision": jnp.array([3.0, 1.0]), "mean": jnp.ones(2)}
    init2, kernel2 = jnp.ones(2), ebm_ppl.kernels.mala(0.3).replace(step_size=0.1)
    before = COMPILES.n
    pot2 = pot.with_params(params2)
    ebm_ppl.sample(pot2, kernel2, init2, num_samples=230,
                   num_warmup=70, thin=2, seed=11, progress=False)
    assert COMPILES.n == before
    # the counter does see compilations: a new shape compiles
    ebm_ppl.sample(pot2, kernel2, jnp.ones(2), num_chains=3, num_samples=5, num_warmup=0,
                   progress=False)
    assert COMPILES.n > before


@pytest.mark.slow
def test_x64_is_honoured():
    code = textwrap.dedent(
        """
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp, ebm_ppl
        pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2))
        idata = ebm_ppl.sample(pot, ebm_ppl.kernels.mala(0.5), jnp.zeros(2), num_samples=10,
                               num_warmup=10, progress=False)
        print(idata.posterior["x"].dtype, idata.sample_stats["lp"].dtype)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300).stdout.split()
    assert out[-2:] == ["float64", "float64"]


def test_float32_by_default():
    pot = ebm_ppl.Potential.from_energy(energy)
    idata = ebm_ppl.sample(pot, ebm_ppl.kernels.ula(0.05), [0, 0], num_samples=5,
                           num_warmup=0, progress=False)
    assert idata.posterior["x"].dtype == np.float32
    assert jax.config.jax_enable_x64 is False


def test_run_configuration_survives_netcdf(tmp_path):
    from ebm_ppl.inference_data import read_config

    pot = ebm_ppl.Potential.from_energy(energy)
    idata = ebm_ppl.sample(pot, ebm_ppl.kernels.mala(0.3), jnp.zeros(2), num_samples=20,
                           num_warmup=20, seed=5, progress=False)
    path = tmp_path / "run.nc"
    idata.to_netcdf(str(path))
    config = read_config(az.from_netcdf(str(path)))
    assert config["kernel"] == "mala" and config["seed"] == 5 and config["num_warmup"] == 20
    assert len(config["step_size"]) == 4 and all(s > 0 for s in config["step_size"])
    loaded = az.from_netcdf(str(path))
    assert loaded.attrs["jax_version"] == jax.__version__


def test_multi_host_recipe_joins_independent_chains():
    """README's multi-host recipe, with two simulated process indices on one host."""
    pot = ebm_ppl.Potential.from_energy(energy)
    runs = []
    for rank in range(2):
        key = jax.random.fold_in(jax.random.key(0), rank)
        runs.append(ebm_ppl.sample(pot, ebm_ppl.kernels.mala(0.3), jnp.zeros(2), seed=key,
                                   num_chains=2, num_samples=30, num_warmup=10,
                                   progress=False))
    joined = az.concat(runs, dim="chain")
    x = joined.posterior["x"].values
    assert x.shape == (4, 30, 2)
    assert not np.array_equal(x[0], x[2])  # the hosts' chains are different


def test_progress_bar_rate_is_the_mean_of_the_valid_draws_of_chain_first_chunks():
    """The driver's chunks come back chain first; the bar's acceptance rate averages the
    first ``num_valid`` draws of every chain (not the first chains)."""
    from ebm_ppl.sampling.distributed import local_mean

    rates = jnp.asarray(np.arange(12.0).reshape(3, 4))  # (chain, draw)
    assert local_mean(rates, 2) == np.mean([0, 1, 4, 5, 8, 9])
