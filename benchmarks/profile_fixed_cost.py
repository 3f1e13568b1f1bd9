"""Where the fixed cost of one ``ebm_ppl.sample`` call goes (issue #16).

Every function that :func:`ebm_ppl.sample` calls through a module-level name of
``ebm_ppl.sampling.sampler`` (validation, initial positions, pre-flight checks, chain
set-up, the chunk loop, building the InferenceData, end-of-run checks), plus the chunk
function and progress bar of ``ebm_ppl.sampling.driver`` and ``Potential.check``, is
wrapped by a ``perf_counter`` timer; ``sample`` is then called ``--repeats`` times after
two discarded (compiling) calls, and the median time per call of each function is
printed, indented by call depth (times are inclusive of the callees shown under them).
``other`` is the part of ``sample`` outside every wrapped top-level function. The chunk
loop is compared with a hand-written ``jit(vmap + lax.scan)`` loop of the same update.

Usage::

    python benchmarks/profile_fixed_cost.py [--repeats 10] [--json out.json]
        [--cases gauss2d:1000:200,mlp-128:1000:500,gauss2d:4:200]

To compare with another version of the package, put it first on the path
(``PYTHONPATH=/path/to/old/checkout python benchmarks/profile_fixed_cost.py``); the
first line printed says which ``ebm_ppl`` was profiled. The fixed cost reported is the
median over calls of ``sample``'s time minus its chunk loop (``run_phase``).

Wrapping costs about a microsecond per call, negligible against the millisecond costs
measured. Runs block on their results (``np.asarray`` of the draws), so dispatch is
not hidden.
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Target, targets  # noqa: E402

import ebm_ppl  # noqa: E402
from ebm_ppl.sampling import driver, sampler  # noqa: E402

__all__ = ["profile", "main"]


class _Clock:
    """Inclusive wall time per wrapped function, with the call depth of each."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.depth: dict[str, int] = {}
        self.order: list[str] = []
        self._level = 0

    def wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._level += 1
            if name not in self.depth:  # first seen: its depth and place in the table
                self.depth[name] = self._level
                self.order.append(name)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += 1
                self._level -= 1

        timed.__wrapped__ = fn
        return timed

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()


def _instrument(clock: _Clock) -> list[tuple[Any, str, Any]]:
    """Wrap the callees of ``sample``; returns what to restore."""
    patched = []
    for name, obj in list(vars(sampler).items()):
        module = getattr(obj, "__module__", "") or ""
        if name == "sample" or not callable(obj) or inspect.isclass(obj):
            continue
        if module.startswith("ebm_ppl") or name == "_constrain_draws":
            patched.append((sampler, name, obj))
    for name in ("_run_chunk", "progress_bar", "shard_chains"):
        if hasattr(driver, name):
            patched.append((driver, name, getattr(driver, name)))
    for module, name, obj in patched:
        setattr(module, name, clock.wrap(f"{module.__name__.rsplit('.', 1)[-1]}.{name}", obj))
    check = ebm_ppl.Potential.check
    patched.append((ebm_ppl.Potential, "check", check))
    ebm_ppl.Potential.check = clock.wrap("Potential.check", check)
    return patched


def _hand_ula(target: Target, step: float) -> Callable[[jax.Array, jax.Array, int], Any]:
    """Hand-written ULA: ``jit(scan(vmap(step)))`` storing positions and log density."""
    value_and_grad = jax.vmap(jax.value_and_grad(target.logdensity_fn))

    @partial(jax.jit, static_argnums=2)
    def run(key, x, steps):
        def body(x, k):
            logp, grad = value_and_grad(x)
            noise = jax.random.normal(k, x.shape)
            x = x + step * grad + jnp.sqrt(2.0 * step) * noise
            return x, (x, logp)

        return jax.lax.scan(body, x, jax.random.split(key, steps))[1]

    return run


def profile(target: Target, algorithm: str, num_chains: int, num_steps: int,
            repeats: int) -> dict[str, Any]:
    """Median per-call time (s) of every wrapped callee of one ``sample`` configuration."""
    step = target.step_sizes[algorithm]
    kernel = {"ula": ebm_ppl.kernels.ula, "mala": ebm_ppl.kernels.mala}[algorithm](step)
    pot = ebm_ppl.Potential.from_energy(target.energy_fn)
    init = target.init_positions(num_chains)

    def call(seed: int) -> float:
        start = time.perf_counter()
        ebm_ppl.sample(pot, kernel, init, num_samples=num_steps, num_warmup=0, adapt=False,
                       num_chains=num_chains, seed=seed, progress=False)
        return time.perf_counter() - start

    clock = _Clock()
    patched = _instrument(clock)
    per_call: dict[str, list[float]] = defaultdict(list)
    totals = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for seed in range(2):
                call(seed)  # compiles
            for seed in range(repeats):
                clock.reset()
                totals.append(call(100 + seed))
                for name, seconds in clock.seconds.items():
                    per_call[name].append(seconds)
    finally:
        for module, name, obj in patched:
            setattr(module, name, obj)
    hand = _hand_ula(target, step)
    block = lambda out: jax.tree.map(np.asarray, out)  # noqa: E731
    block(hand(jax.random.key(0), init, num_steps))
    hand_times = []
    for seed in range(repeats):
        start = time.perf_counter()
        block(hand(jax.random.key(seed), init, num_steps))
        hand_times.append(time.perf_counter() - start)
    rows = [{"function": name, "depth": clock.depth[name], "calls": clock.calls[name],
             "median_ms": 1e3 * statistics.median(per_call[name])} for name in clock.order
            if name in per_call]
    top = sum(r["median_ms"] for r in rows if r["depth"] == 1)
    total_ms = 1e3 * statistics.median(totals)
    rows.append({"function": "other (outside wrapped callees)", "depth": 1, "calls": 1,
                 "median_ms": total_ms - top})
    loop = per_call.get("sampler.run_phase", [0.0] * len(totals))
    return {"target": target.name, "algorithm": algorithm, "chains": num_chains,
            "steps": num_steps, "total_ms": total_ms,
            "loop_ms": 1e3 * statistics.median(loop),
            "fixed_ms": 1e3 * statistics.median(t - s for t, s in zip(totals, loop)),
            "hand_ula_ms": 1e3 * statistics.median(hand_times), "rows": rows}


def _print(result: dict[str, Any]) -> None:
    print(f"\n## {result['target']} {result['algorithm']}, {result['chains']} chains x "
          f"{result['steps']} steps: sample {result['total_ms']:.1f} ms (median), "
          f"hand-written ULA loop {result['hand_ula_ms']:.1f} ms; chunk loop (run_phase) "
          f"{result['loop_ms']:.1f} ms, fixed cost (sample - chunk loop, median per call) "
          f"{result['fixed_ms']:.1f} ms\n")
    print("| function (inclusive; indented = called by the row above) | calls | ms/call |")
    print("|---|---|---|")
    for row in result["rows"]:
        indent = "&nbsp;&nbsp;" * 2 * (row["depth"] - 1)
        print(f"| {indent}`{row['function']}` | {row['calls']} | {row['median_ms']:.2f} |")


def main(argv: list[str] | None = None) -> None:
    """Profile ULA on the 2-D Gaussian (1000 and 4 chains x 200) and the MLP energy
    (1000 x 500), or the ``--cases`` given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", default=None, help="also write the numbers here")
    parser.add_argument("--cases", default="gauss2d:1000:200,mlp-128:1000:500,gauss2d:4:200",
                        help="comma-separated TARGET:CHAINS:STEPS (ULA)")
    args = parser.parse_args(argv)
    by_name = {t.name: t for t in targets()}
    print(f"ebm_ppl from {Path(ebm_ppl.__file__).parent}")
    results = []
    for case in args.cases.split(","):
        name, chains, steps = case.split(":")
        results.append(profile(by_name[name], "ula", int(chains), int(steps), args.repeats))
    for result in results:
        _print(result)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
