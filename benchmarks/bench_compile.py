"""Compile once (issue #9): first-call versus later-call cost.

Measured side by side, in one process (XLA compilations are counted with
``jax.monitoring`` listeners, so "recompiled" is observed, not inferred from timings):

* ``ebm_ppl.sample`` on one potential: first call, then a new seed, a new
  ``num_samples``, a new ``init``, a new step size and new energy parameters;
* ``numpyro.infer.MCMC(NUTS(model)).run`` called twice on the same model and data (the
  same ``MCMC`` object): NumPyro traces and compiles again on every ``run``;
* ``ebm_ppl.sample(Potential.from_model(model, ...), kernels.nuts(0.5))`` called twice:
  the way around it (same ``Potential`` object reused);
* JAX's persistent compilation cache: the same script run in two fresh subprocesses
  sharing ``JAX_COMPILATION_CACHE_DIR`` (with ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0``);
  the second process's first call reads the executables from disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CompileCounter, Timer, block  # noqa: E402

import ebm_ppl  # noqa: E402

__all__ = ["run", "CompileCounter"]

def _measure(fn: Callable[[], Any]) -> dict[str, float]:
    """Wall time, number of XLA compilations and their total time for one call."""
    CompileCounter.install()
    c0, s0, h0 = CompileCounter.snapshot()
    with Timer() as t:
        block(fn())
    c1, s1, h1 = CompileCounter.snapshot()
    return {"wall_s": t.seconds, "xla_compiles": c1 - c0, "xla_compile_s": s1 - s0,
            "cache_hits": h1 - h0}


def _mlp_energy(width: int = 128) -> tuple[Callable, Any]:
    """``E(params, x)``: the benchmark MLP energy with its parameters as an argument."""
    keys = jax.random.split(jax.random.key(0), 3)
    sizes = [(2, width), (width, width), (width, 1)]
    params = [(jax.random.normal(k, (m, n)) / jnp.sqrt(m), jnp.zeros(n))
              for k, (m, n) in zip(keys, sizes)]

    def energy_fn(params: Any, x: jax.Array) -> jax.Array:
        h = x
        for w, b in params[:-1]:
            h = jnp.tanh(h @ w + b)
        w, b = params[-1]
        return 3.0 * jax.nn.softplus(h @ w + b)[0] + 0.125 * jnp.sum(x**2)

    return energy_fn, params


def _logistic_model(x: jax.Array, y: jax.Array | None = None) -> None:
    """A small NumPyro model: Bayesian logistic regression with a Normal prior."""
    import numpyro
    import numpyro.distributions as dist

    w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1))
    b = numpyro.sample("b", dist.Normal(0.0, 1.0))
    numpyro.sample("y", dist.Bernoulli(logits=x @ w + b), obs=y)


def _logistic_data(n: int = 200, d: int = 3) -> tuple[jax.Array, jax.Array]:
    kx, ky = jax.random.split(jax.random.key(1))
    x = jax.random.normal(kx, (n, d))
    logits = x @ jnp.arange(1.0, d + 1.0) - 0.5
    return x, jax.random.bernoulli(ky, jax.nn.sigmoid(logits)).astype(jnp.float32)


def _row(case: str, call: str, m: dict[str, float], note: str = "") -> dict[str, Any]:
    return {"bench": "compile", "case": case, "call": call, **m, "note": note}


def _ebm_sample_calls(quick: bool) -> list[dict]:
    energy_fn, params = _mlp_energy()
    pot = ebm_ppl.Potential.from_energy(energy_fn, params)
    chains = 100
    n = 200 if quick else 1000
    init_a = jax.random.normal(jax.random.key(2), (chains, 2))
    init_b = jax.random.normal(jax.random.key(3), (chains, 2)) * 2.0
    kernel = ebm_ppl.kernels.mala(0.3)

    def call(pot: Any = pot, kernel: Any = kernel, init: Any = init_a, seed: int = 0,
             num_samples: int = n) -> Any:
        return ebm_ppl.sample(pot, kernel, init, num_samples=num_samples, num_warmup=0,
                              num_chains=chains, seed=seed, adapt=False, progress=False)

    case = f"ebm_ppl.sample MALA on MLP energy ({chains} chains x {n})"
    new_params = jax.tree.map(lambda a: a * 1.1, params)
    calls = [
        ("1st call", lambda: call()),
        ("2nd call, new seed", lambda: call(seed=1)),
        (f"new num_samples ({n + 50})", lambda: call(num_samples=n + 50)),
        ("new init", lambda: call(init=init_b)),
        ("new step size (kernel.replace)", lambda: call(kernel=kernel.replace(step_size=0.2))),
        ("new energy params (pot.with_params)", lambda: call(pot=pot.with_params(new_params))),
    ]
    return [_row(case, name, _measure(fn)) for name, fn in calls]


def _numpyro_calls(quick: bool) -> list[dict]:
    from numpyro.infer import MCMC, NUTS

    x, y = _logistic_data()
    warmup, samples, chains = (100, 100, 4) if quick else (500, 1000, 4)
    mcmc = MCMC(NUTS(_logistic_model), num_warmup=warmup, num_samples=samples,
                num_chains=chains, chain_method="vectorized", progress_bar=False)
    case = f"numpyro MCMC(NUTS(model)).run, logistic regression ({chains}x{warmup}+{samples})"
    rows = []
    names = ["1st run", "2nd run, same MCMC object, new key",
             "3rd run, same MCMC object, new key"][: 2 if quick else 3]
    for i, name in enumerate(names):
        m = _measure(lambda i=i: (mcmc.run(jax.random.key(i), x, y=y), mcmc.get_samples())[1])
        rows.append(_row(case, name, m))
    if not quick:
        # the documented NumPyro mitigation for changing data: jit_model_args=True
        mcmc_j = MCMC(NUTS(_logistic_model), num_warmup=warmup, num_samples=samples,
                      num_chains=chains, chain_method="vectorized", progress_bar=False,
                      jit_model_args=True)
        case_j = case.replace(".run", ".run jit_model_args=True")
        for i, name in enumerate(["1st run", "2nd run, new key"]):
            m = _measure(lambda i=i: (mcmc_j.run(jax.random.key(i), x, y=y),
                                      mcmc_j.get_samples())[1])
            rows.append(_row(case_j, name, m))

    pot = ebm_ppl.Potential.from_model(_logistic_model, x, y=y)
    kernel = ebm_ppl.kernels.nuts(0.5)
    case_e = (f"ebm_ppl.sample(Potential.from_model(model), kernels.nuts(0.5)) "
              f"({chains}x{warmup}+{samples}, window adaptation)")
    names = ["1st call", "2nd call, same Potential, new seed",
             "3rd call, same Potential, new seed"][: 2 if quick else 3]
    for i, name in enumerate(names):
        m = _measure(lambda i=i: ebm_ppl.sample(pot, kernel, num_samples=samples,
                                                num_warmup=warmup, num_chains=chains,
                                                seed=i, progress=False))
        rows.append(_row(case_e, name, m))
    pot2 = ebm_ppl.Potential.from_model(_logistic_model, x, y=y)
    m = _measure(lambda: ebm_ppl.sample(pot2, kernel, num_samples=samples, num_warmup=warmup,
                                        num_chains=chains, seed=9, progress=False))
    rows.append(_row(case_e, "new Potential.from_model(model, same data)", m,
                     note="a new from_model call makes a new potential_fn closure"))
    return rows


# ---------------------------------------------------------------------- persistent cache
_CHILD_FLAG = "--child"


def _child(quick: bool) -> None:
    """Body of the subprocess: time the first ebm_ppl and NumPyro calls of a fresh process."""
    from numpyro.infer import MCMC, NUTS

    out: dict[str, Any] = {}
    energy_fn, params = _mlp_energy()
    pot = ebm_ppl.Potential.from_energy(energy_fn, params)
    init = jax.random.normal(jax.random.key(2), (100, 2))
    n = 200 if quick else 1000
    out["ebm_ppl.sample MALA, 1st call"] = _measure(lambda: ebm_ppl.sample(
        pot, ebm_ppl.kernels.mala(0.3), init, num_samples=n, num_warmup=0, num_chains=100,
        adapt=False, progress=False))
    x, y = _logistic_data()
    mcmc = MCMC(NUTS(_logistic_model), num_warmup=100, num_samples=100, num_chains=4,
                chain_method="vectorized", progress_bar=False)
    out["numpyro MCMC NUTS, 1st run"] = _measure(
        lambda: (mcmc.run(jax.random.key(0), x, y=y), mcmc.get_samples())[1])
    print(json.dumps(out))


def _persistent_cache(quick: bool) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="ebm_ppl_jax_cache_") as cache_dir:
        env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": cache_dir,
               "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
               "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
        args = [sys.executable, str(Path(__file__).resolve()), _CHILD_FLAG]
        if quick:
            args.append("--quick")
        for label in ("process 1 (empty cache)", "process 2 (warm cache)"):
            with Timer() as t:
                proc = subprocess.run(args, env=env, capture_output=True, text=True,
                                      check=False, timeout=600)
            if proc.returncode != 0:
                rows.append(_row("persistent compilation cache", label,
                                 {"wall_s": t.seconds},
                                 note=f"child failed: {proc.stderr.strip()[-300:]}"))
                continue
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            for call, m in result.items():
                rows.append(_row(f"persistent cache: {call}", label, m,
                                 note=f"whole subprocess {t.seconds:.1f} s"))
        files = sum(len(f) for _, _, f in os.walk(cache_dir))
        for r in rows[-2:]:
            r["note"] += f"; {files} cache entries"
    return rows


def run(quick: bool = False, log: Callable[[str], None] = print) -> list[dict]:
    """Run the compile benchmark; one ``dict`` per measured call.

    A section that raises is recorded as one row with an ``error`` field; the others run.
    """
    CompileCounter.install()
    sections = [
        ("ebm_ppl.sample repeated calls", _ebm_sample_calls),
        ("NumPyro MCMC.run twice vs ebm_ppl.sample(Potential.from_model)", _numpyro_calls),
        ("persistent compilation cache (2 subprocesses)", _persistent_cache),
    ]
    rows: list[dict] = []
    for label, section in sections:
        log(f"[compile] {label}")
        try:
            rows += section(quick)
        except Exception as err:  # noqa: BLE001 - record and continue
            traceback.print_exc()
            rows.append(_row(label, "(section failed)", {},
                             note=f"FAILED: {type(err).__name__}: {str(err)[:300]}"))
    for row in rows:
        row["xla_compile_s"] = float(np.round(row.get("xla_compile_s", np.nan), 4))
    return rows


if __name__ == "__main__":
    if _CHILD_FLAG in sys.argv:
        _child("--quick" in sys.argv)
    else:
        print(json.dumps(run("--quick" in sys.argv), indent=1))
