"""Sampling throughput of ``ebm_ppl.sample`` against its practical limit (issue #7).

For each target (2-D Gaussian, 50-D ill-conditioned Gaussian, 2→128→128→1 MLP energy)
and each algorithm (ULA, MALA, HMC with 10 leapfrog steps, NUTS, random-walk MH), in one
process:

1. ``ebm_ppl.sample(..., num_warmup=0, adapt=False)``: first call (compile + run), second
   call (steady state) with ``progress=False``, third call with ``progress=True``;
2. a hand-written ``jax.jit(vmap + lax.scan)`` loop of the same update storing the same
   draws (positions + log density): ULA's update written inline, the others calling
   BlackJAX's top-level kernels (``blackjax.mala(logdensity_fn, h).step`` ...). This
   is the practical limit the ``ebm_ppl`` overhead is measured against;
3. the raw BlackJAX top-level API: identical to 2 for MALA/HMC/NUTS/RWMH (labelled so,
   not re-run); for ULA, ``blackjax.sgld`` with the full gradient (= ULA);
4. ``numpyro.infer.MCMC`` with NumPyro's own HMC/NUTS (``chain_method="vectorized"``,
   fewer chains), per-chain-step throughput;
5. torchebm's ``LangevinDynamics`` (ULA only) when ``torch`` and ``torchebm`` import.

Run through ``python benchmarks/run.py``; ``run(quick)`` returns one ``dict`` per row.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blackjax
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    CompileCounter,
    Target,
    Timer,
    best_of,
    block,
    ess_min,
    maxrss_mib,
    nbytes,
    targets,
    timed,
)

import ebm_ppl  # noqa: E402
from ebm_ppl.inference_data import read_config  # noqa: E402

__all__ = ["run", "ALGORITHMS", "sizes"]

ALGORITHMS = ("ula", "mala", "hmc", "nuts", "rwmh")

#: Leapfrog steps of the fixed-length HMC.
NUM_LEAPFROG = 10


def sizes(quick: bool) -> dict[str, tuple[int, int]]:
    """``(num_chains, num_steps)`` per implementation family.

    ``full``: 1000 chains × 1000 steps (NUTS 100 × 200); ``quick``: 1000 × 200 (NUTS
    100 × 100). NumPyro's MCMC runs fewer chains (it is a reference, not the target).
    """
    if quick:
        return {"default": (1000, 200), "nuts": (100, 100),
                "numpyro_hmc": (100, 100), "numpyro_nuts": (100, 50)}
    return {"default": (1000, 1000), "nuts": (100, 200),
            "numpyro_hmc": (200, 500), "numpyro_nuts": (100, 200)}


# ---------------------------------------------------------------------- kernels
def _ebm_kernel(algorithm: str, step: float) -> ebm_ppl.kernels.Kernel:
    k = ebm_ppl.kernels
    return {
        "ula": lambda: k.ula(step),
        "mala": lambda: k.mala(step),
        "hmc": lambda: k.hmc(step, NUM_LEAPFROG),
        "nuts": lambda: k.nuts(step),
        "rwmh": lambda: k.random_walk(step),
    }[algorithm]()


def _blackjax_algorithm(algorithm: str, target: Target, step: float) -> Any:
    """BlackJAX top-level ``SamplingAlgorithm`` for ``algorithm`` (not ULA)."""
    logdensity_fn = target.logdensity_fn
    imm = jnp.ones(target.dim)
    if algorithm == "mala":
        return blackjax.mala(logdensity_fn, step)
    if algorithm == "hmc":
        return blackjax.hmc(logdensity_fn, step, imm, NUM_LEAPFROG)
    if algorithm == "nuts":
        return blackjax.nuts(logdensity_fn, step, imm)
    if algorithm == "rwmh":
        return blackjax.additive_step_random_walk.normal_random_walk(
            logdensity_fn, jnp.full((target.dim,), step)
        )
    raise ValueError(f"no BlackJAX top-level algorithm for {algorithm!r}")


def _hand_written(
    algorithm: str, target: Target, step: float
) -> tuple[Callable[[jax.Array], Any], Callable[[jax.Array, Any], tuple[Any, dict]]]:
    """``(init_fn, step_fn)`` of the hand-written loop; ``step_fn`` returns the draw."""
    if algorithm == "ula":
        scale = math.sqrt(2.0 * step)
        value_and_grad = jax.value_and_grad(target.logdensity_fn)

        def init_fn(x: jax.Array) -> Any:
            return (x, *value_and_grad(x))

        def step_fn(key: jax.Array, state: Any) -> tuple[Any, dict]:
            x, _, grad = state
            x = x + step * grad + scale * jax.random.normal(key, x.shape, x.dtype)
            logdensity, grad = value_and_grad(x)
            return (x, logdensity, grad), {"position": x, "lp": logdensity}

        return init_fn, step_fn

    alg = _blackjax_algorithm(algorithm, target, step)

    def bj_step(key: jax.Array, state: Any) -> tuple[Any, dict]:
        state, info = alg.step(key, state)
        out = {"position": state.position, "lp": state.logdensity}
        if algorithm == "nuts":
            out["n_steps"] = info.num_integration_steps
        return state, out

    return alg.init, bj_step


def _sgld(target: Target, step: float) -> tuple[Callable, Callable]:
    """Raw BlackJAX ULA: ``blackjax.sgld`` with the full gradient (positions only)."""
    grad_fn = jax.grad(target.logdensity_fn)
    sgld = blackjax.sgld(lambda x, _batch: grad_fn(x))

    def step_fn(key: jax.Array, x: jax.Array) -> tuple[jax.Array, dict]:
        x = sgld.step(key, x, None, step)
        return x, {"position": x}

    return (lambda x: x), step_fn


def _scan_loop(init_fn: Callable, step_fn: Callable, num_steps: int) -> Callable:
    """``jit(vmap(chains) + scan(steps))`` returning the stacked draws ``(step, chain, ...)``."""

    @jax.jit
    def run(key: jax.Array, positions: jax.Array) -> dict:
        num_chains = positions.shape[0]
        states = jax.vmap(init_fn)(positions)

        def body(states: Any, step_key: jax.Array) -> tuple[Any, dict]:
            keys = jax.random.split(step_key, num_chains)
            return jax.vmap(step_fn)(keys, states)

        _, draws = jax.lax.scan(body, states, jax.random.split(key, num_steps))
        return draws

    return run


# ---------------------------------------------------------------------- rows
def _row(target: Target, algorithm: str, impl: str, chains: int, steps: int, **extra: Any) -> dict:
    return {"bench": "sampling", "target": target.name, "algorithm": algorithm, "impl": impl,
            "chains": chains, "steps": steps, **extra}


def _evals(algorithm: str, chains: int, steps: int, n_steps_total: float | None) -> float:
    """Gradient evaluations of a run (log-density evaluations for random-walk MH)."""
    if algorithm == "nuts":
        return float(n_steps_total)
    per_step = {"ula": 1, "mala": 1, "hmc": NUM_LEAPFROG, "rwmh": 1}[algorithm]
    return float(per_step * chains * steps)


def _finish(row: dict, draws: np.ndarray, target: Target, seconds: float, evals: float) -> dict:
    ess = ess_min(draws, target.ess_dims)
    row.update(steady_s=seconds, evals_per_s=evals / seconds, ess_min=ess,
               ess_per_s=ess / seconds)
    return row


def _bench_ebm(
    target: Target, algorithm: str, chains: int, steps: int, repeats: int
) -> list[dict]:
    kernel = _ebm_kernel(algorithm, target.step_sizes[algorithm])
    pot = ebm_ppl.Potential.from_energy(target.energy_fn)
    init = target.init_positions(chains)

    def call(seed: int, progress: bool) -> Any:
        return ebm_ppl.sample(pot, kernel, init, num_samples=steps, num_warmup=0,
                              num_chains=chains, seed=seed, adapt=False, progress=progress)

    def call_with_bar(seed: int) -> Any:
        # the bar is drawn (tqdm formats and writes every update) but into os.devnull,
        # so its cost is timed without flooding the log
        with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
            return call(seed, True)

    rss0 = maxrss_mib()
    _, first = timed(lambda: call(0, False))
    idata, steady = best_of(lambda seed: call(seed, False), repeats, min_seconds=1.0)
    rss1 = maxrss_mib()
    _, with_bar = best_of(call_with_bar, repeats, min_seconds=1.0)
    draws = idata.posterior["x"].values
    n_total = float(idata.sample_stats["n_steps"].sum()) if algorithm == "nuts" else None
    stored = nbytes({k: v.values for k, v in idata.posterior.items()}) + nbytes(
        {k: v.values for k, v in idata.sample_stats.items()})
    loop_s = float(read_config(idata).get("sampling_time_s", float("nan")))
    evals = _evals(algorithm, chains, steps, n_total)
    base = _row(target, algorithm, "ebm_ppl.sample", chains, steps,
                first_call_s=first, compile_s=max(first - steady, 0.0), loop_s=loop_s,
                bytes_per_chain=stored / chains, rss_delta_mib=rss1 - rss0)
    rows = [_finish(base, draws, target, steady, evals)]
    bar_row = _row(target, algorithm, "ebm_ppl.sample progress=True", chains, steps,
                   evals_per_s=evals / with_bar, steady_s=with_bar,
                   ess_min=rows[0]["ess_min"], ess_per_s=rows[0]["ess_min"] / with_bar)
    rows.append(bar_row)
    return rows


def _bench_loop(
    target: Target, algorithm: str, impl: str, init_fn: Callable, step_fn: Callable,
    chains: int, steps: int, repeats: int, note: str = "",
) -> dict:
    run = _scan_loop(init_fn, step_fn, steps)
    init = target.init_positions(chains)
    rss0 = maxrss_mib()
    _, first = timed(lambda: run(jax.random.key(0), init))
    out, steady = best_of(lambda seed: run(jax.random.key(seed), init), repeats,
                         min_seconds=1.0)
    rss1 = maxrss_mib()
    draws = np.swapaxes(out["position"], 0, 1)
    n_total = float(out["n_steps"].sum()) if "n_steps" in out else None
    evals = _evals(algorithm, chains, steps, n_total)
    row = _row(target, algorithm, impl, chains, steps, first_call_s=first,
               compile_s=max(first - steady, 0.0), bytes_per_chain=nbytes(out) / chains,
               rss_delta_mib=rss1 - rss0, note=note)
    return _finish(row, draws, target, steady, evals)


def _bench_numpyro(target: Target, algorithm: str, chains: int, steps: int) -> dict:
    from numpyro.infer import HMC, MCMC, NUTS

    step = target.step_sizes[algorithm]
    common = dict(potential_fn=target.energy_fn, step_size=step, adapt_step_size=False,
                  adapt_mass_matrix=False)
    init = target.init_positions(chains)

    def call(seed: int, num_samples: int) -> Any:
        # a fresh kernel per MCMC: NumPyro's HMC.init wraps ``kernel._sample_fn`` in a
        # ``vmap`` for vectorized chains, so reusing one kernel object in a second MCMC
        # vmaps it twice (ValueError: "vmap ... rank 0").
        kernel = (HMC(num_steps=NUM_LEAPFROG, **common) if algorithm == "hmc"
                  else NUTS(**common))
        mcmc = MCMC(kernel, num_warmup=0, num_samples=num_samples, num_chains=chains,
                    chain_method="vectorized", progress_bar=False)
        mcmc.run(jax.random.key(seed), init_params=init, extra_fields=("num_steps",))
        return mcmc.get_samples(group_by_chain=True), mcmc.get_extra_fields()["num_steps"]

    # every run() traces and compiles again (~3 s), so the steady per-step cost is taken
    # from two runs of S and 4S steps: ((t(4S) - c(4S)) - (t(S) - c(S))) / 3, where c is
    # the XLA compile time of that run observed with jax.monitoring (compile time is the
    # big, noisy part; tracing is the same for both runs and cancels in the difference).
    # A first, discarded run takes the one-time costs (NumPyro's own first-use compiles
    # and caches), which would otherwise make t(S) - c(S) too large.
    CompileCounter.install()
    rss0 = maxrss_mib()
    _, first_call = timed(lambda: call(2, steps))
    c0 = CompileCounter.snapshot()[1]
    (_, steps_1), first = timed(lambda: call(0, steps))
    c1 = CompileCounter.snapshot()[1]
    (draws, steps_4), longer = timed(lambda: call(1, 4 * steps))
    c4 = CompileCounter.snapshot()[1]
    rss1 = maxrss_mib()
    compile_1, compile_4 = c1 - c0, c4 - c1
    per_run = max(((longer - compile_4) - (first - compile_1)) / 3, 1e-9)
    n_total = (float(np.sum(steps_4) - np.sum(steps_1)) / 3 if algorithm == "nuts"
               else None)
    evals = _evals(algorithm, chains, steps, n_total)
    row = _row(target, algorithm, f"numpyro MCMC {algorithm.upper()} (vectorized)", chains,
               steps, first_call_s=first_call, compile_s=compile_1,
               bytes_per_chain=nbytes(draws) / chains / 4, rss_delta_mib=rss1 - rss0,
               note=f"every run() recompiles (XLA {compile_1:.1f} s, run of S {first:.2f} s, "
               f"of 4S {longer:.2f} s with XLA {compile_4:.1f} s); "
               "steady = [(t(4S)-compile) - (t(S)-compile)]/3")
    return _finish(row, np.asarray(draws)[:, steps:], target, per_run, evals)


def _torch_energy(target: Target) -> Callable:
    import torch

    spec = target.spec
    if spec["kind"] == "gauss":
        precision = torch.tensor(np.array(spec["precision"]), dtype=torch.float32)
        return lambda x: 0.5 * (precision * x**2).sum(-1)
    layers = [(torch.tensor(np.array(w)), torch.tensor(np.array(b))) for w, b in spec["params"]]

    def energy(x: Any) -> Any:
        h = x
        for w, b in layers[:-1]:
            h = torch.tanh(h @ w + b)
        w, b = layers[-1]
        return 3.0 * torch.nn.functional.softplus(h @ w + b)[..., 0] + 0.125 * (x**2).sum(-1)

    return energy


def _bench_torchebm(target: Target, chains: int, steps: int, repeats: int) -> dict:
    """torchebm's ``LangevinDynamics`` (Euler–Maruyama, ``noise_scale=1``) = ULA."""
    try:
        import torch
        from torchebm.core import BaseModel
        from torchebm.samplers import LangevinDynamics
    except ImportError as err:
        return _row(target, "ula", "torchebm LangevinDynamics", chains, steps,
                    note=f"not installed ({type(err).__name__}: {err})")
    torch.set_num_threads(2)
    energy_fn = _torch_energy(target)

    class Energy(BaseModel):
        def forward(self, x: Any) -> Any:
            return energy_fn(x)

    sampler = LangevinDynamics(Energy(), step_size=target.step_sizes["ula"], noise_scale=1.0)
    x0 = torch.tensor(np.array(target.init_positions(chains)))

    def call(seed: int, num_steps: int = steps) -> np.ndarray:
        gen = torch.Generator().manual_seed(seed)
        return sampler.sample(x=x0.clone(), n_steps=num_steps, return_trajectory=True,
                              generator=gen).numpy()

    rss0 = maxrss_mib()
    with Timer() as t1:
        call(0, 5)
    draws, t2 = best_of(call, repeats)
    rss1 = maxrss_mib()
    row = _row(target, "ula", f"torchebm {__import__('torchebm').__version__} LangevinDynamics",
               chains, steps, first_call_s=t1.seconds * steps / 5, compile_s=None,
               bytes_per_chain=draws.nbytes / chains, rss_delta_mib=rss1 - rss0,
               note=f"torch {torch.__version__}, eager, positions only; 1st call estimated "
               "from a 5-step warm-up call")
    return _finish(row, draws, target, t2, float(chains * steps))


def _error_row(target: Target, algorithm: str, impl: str, chains: int, steps: int,
               err: BaseException) -> dict:
    """Row recording a failed case (the traceback goes to stderr, the rest continues)."""
    traceback.print_exc()
    return _row(target, algorithm, impl, chains, steps,
                error=f"{type(err).__name__}: {str(err)[:300]}",
                note=f"FAILED: {type(err).__name__}")


def _case(target: Target, algorithm: str, chains: int, steps: int, quick: bool,
          size: dict[str, tuple[int, int]], repeats: int) -> list[dict]:
    """Every implementation of one (target, algorithm); a failing one becomes an error row."""
    step = target.step_sizes[algorithm]
    rows: list[dict] = []
    try:
        ebm_rows = _bench_ebm(target, algorithm, chains, steps, repeats)
    except Exception as err:  # noqa: BLE001 - record and continue
        ebm_rows = [_error_row(target, algorithm, "ebm_ppl.sample", chains, steps, err)]
    hand: dict | None = None
    try:
        init_fn, step_fn = _hand_written(algorithm, target, step)
        hand_note = ("inline update" if algorithm == "ula" else
                     f"BlackJAX top-level {algorithm} .step, inline")
        hand = _bench_loop(target, algorithm, "hand-written jit(vmap+scan)", init_fn,
                           step_fn, chains, steps, repeats, note=hand_note)
    except Exception as err:  # noqa: BLE001
        rows.append(_error_row(target, algorithm, "hand-written jit(vmap+scan)", chains,
                               steps, err))
    if hand is not None:
        for r in ebm_rows:
            if "steady_s" in r:
                r["ratio_vs_hand"] = r["steady_s"] / hand["steady_s"]
        rows = [*ebm_rows, hand, *rows]
    else:
        rows = [*ebm_rows, *rows]

    if algorithm == "ula":
        try:
            sgld_init, sgld_step = _sgld(target, step)
            raw = _bench_loop(target, algorithm, "raw BlackJAX sgld (full gradient)",
                              sgld_init, sgld_step, chains, steps, repeats,
                              note="positions only (sgld caches no log density)")
            if hand is not None:
                raw["ratio_vs_hand"] = raw["steady_s"] / hand["steady_s"]
            rows.append(raw)
        except Exception as err:  # noqa: BLE001
            rows.append(_error_row(target, algorithm, "raw BlackJAX sgld", chains, steps, err))
        # eager PyTorch is slow: the quick mode times 50 steps, compared per step
        t_steps = 50 if quick else steps
        try:
            tr = _bench_torchebm(target, chains, t_steps, 1 if quick else repeats)
            if "steady_s" in tr and hand is not None:
                per_step_hand = hand["steady_s"] / steps
                tr["ratio_vs_hand"] = (tr["steady_s"] / t_steps) / per_step_hand
                tr["note"] += "; ratio per step"
            rows.append(tr)
        except Exception as err:  # noqa: BLE001
            rows.append(_error_row(target, algorithm, "torchebm LangevinDynamics", chains,
                                   t_steps, err))
    else:
        rows.append(_row(target, algorithm, "raw BlackJAX top-level API", chains,
                         steps, note="identical to the hand-written loop (it calls "
                         "the top-level API); not re-run"))
    # NumPyro recompiles on every run (~5-20 s each): quick mode runs it on the 50-D
    # target only
    if algorithm in ("hmc", "nuts") and (not quick or target.name == "gauss50-ill"):
        n_chains, n_steps = size[f"numpyro_{algorithm}"]
        try:
            npr = _bench_numpyro(target, algorithm, n_chains, n_steps)
            if hand is not None:
                npr["ratio_vs_hand"] = hand["evals_per_s"] / npr["evals_per_s"]
                npr["note"] += "; ratio = hand-written evals/s / NumPyro evals/s"
            rows.append(npr)
        except Exception as err:  # noqa: BLE001
            rows.append(_error_row(target, algorithm, "numpyro MCMC", n_chains, n_steps,
                                   err))
    else:
        note = ("n/a: NumPyro has no such kernel" if algorithm not in ("hmc", "nuts")
                else "skipped in quick mode (see gauss50-ill)")
        rows.append(_row(target, algorithm, "numpyro MCMC", chains, steps, note=note))
    return rows


def run(quick: bool = False, algorithms: tuple[str, ...] = ALGORITHMS,
        target_names: tuple[str, ...] | None = None, log: Callable[[str], None] = print
        ) -> list[dict]:
    """Run the sampling benchmark; one ``dict`` per (target, algorithm, implementation).

    A case that raises is recorded as a row with an ``error`` field; the others still run.
    """
    size = sizes(quick)
    repeats = 3
    rows: list[dict] = []
    for target in targets():
        if target_names is not None and target.name not in target_names:
            continue
        for algorithm in algorithms:
            chains, steps = size["nuts" if algorithm == "nuts" else "default"]
            log(f"[sampling] {target.name} {algorithm} ({chains} chains x {steps} steps)")
            block(jnp.zeros(()))
            try:
                rows += _case(target, algorithm, chains, steps, quick, size, repeats)
            except Exception as err:  # noqa: BLE001
                rows.append(_error_row(target, algorithm, "(whole case)", chains, steps, err))
    return rows


if __name__ == "__main__":
    import json

    quick = "--quick" in sys.argv
    print(json.dumps(run(quick), indent=1, default=float))
