"""Scaling of ``ebm_ppl.sample`` over devices and processes (issue #16).

MALA on the 2→128→128→1 MLP energy (``_common.py``), ``num_warmup=0, adapt=False``,
run in fresh subprocesses so that each gets its own device count:

* one process with 1, 2 and 4 simulated CPU devices
  (``XLA_FLAGS=--xla_force_host_platform_device_count=N``): the chain axis is sharded
  over a 1-D mesh of the devices;
* a 2-process ``jax.distributed`` job on localhost (gloo CPU collectives), 1 and 2
  devices per process: each process computes its half of the chains, and every process
  receives all draws (``process_allgather`` per chunk).

Each case: one compiling call, then the best of ``--repeats`` calls with new seeds.
``samples/s`` is ``chains × draws / steady wall time`` of the whole ``sample`` call
(set-up, the gather of the draws and the InferenceData included), ``loop samples/s``
the same over the chunk loop only (``sampling_time_s``). Simulated devices share the
machine's cores, so the curve flattens at the core count: on 2 cores, 2 devices is the
most that can help.

Usage::

    python benchmarks/bench_scaling.py [--quick] [--out benchmarks/results]

Writes ``scaling.json`` and prints a Markdown table. ``run(quick)`` returns the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

__all__ = ["run", "main", "CASES"]

#: (processes, devices per process) of each case.
CASES = ((1, 1), (1, 2), (1, 4), (2, 1), (2, 2))


def sizes(quick: bool) -> tuple[int, int]:
    """``(num_chains, num_samples)``: quick 1000 × 200, full 1000 × 1000."""
    return (1000, 200) if quick else (1000, 1000)


# ---------------------------------------------------------------------- child process
def _child(args: argparse.Namespace) -> None:
    import jax

    if args.num_processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{args.port}",
                                   num_processes=args.num_processes,
                                   process_id=args.process_id)
    sys.path.insert(0, str(HERE))
    from _common import targets

    import ebm_ppl
    from ebm_ppl.inference_data import read_config

    target = {t.name: t for t in targets()}["mlp-128"]
    pot = ebm_ppl.Potential.from_energy(target.energy_fn)
    kernel = ebm_ppl.kernels.mala(target.step_sizes["mala"])
    init = target.init_positions(args.chains)

    def call(seed: int) -> tuple[float, float]:
        start = time.perf_counter()
        idata = ebm_ppl.sample(pot, kernel, init, num_samples=args.samples, num_warmup=0,
                               adapt=False, num_chains=args.chains, seed=seed,
                               progress=False)
        wall = time.perf_counter() - start
        return wall, read_config(idata)["sampling_time_s"]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first, _ = call(0)
        runs = [call(seed) for seed in range(1, args.repeats + 1)]
    wall, loop = min(runs)
    if jax.process_index() == 0:
        print(json.dumps({"processes": jax.process_count(), "devices": jax.device_count(),
                          "first_call_s": first, "steady_s": wall, "loop_s": loop}))
    if args.num_processes > 1:
        jax.distributed.shutdown()


# ---------------------------------------------------------------------- parent
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _case(processes: int, devices: int, chains: int, samples: int, repeats: int) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    port = _free_port()
    command = [sys.executable, __file__, "--child", "--chains", str(chains), "--samples",
               str(samples), "--repeats", str(repeats), "--port", str(port),
               "--num-processes", str(processes)]
    procs = [subprocess.Popen(command + ["--process-id", str(i)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(processes)]
    outs = [proc.communicate(timeout=1800) for proc in procs]
    for proc, (_, err) in zip(procs, outs):
        if proc.returncode:
            raise RuntimeError(f"case {processes}x{devices} failed:\n{err[-2000:]}")
    row = json.loads(outs[0][0].strip().splitlines()[-1])
    draws = chains * samples
    row.update(case=f"{processes} process{'es' if processes > 1 else ''} × {devices} "
               f"device{'s' if devices > 1 else ''}", chains=chains, draws=samples,
               samples_per_s=draws / row["steady_s"], loop_samples_per_s=draws / row["loop_s"])
    return row


def run(quick: bool = True, repeats: int = 3) -> list[dict[str, Any]]:
    """One row per case of :data:`CASES`; speed-ups are relative to 1 process × 1 device."""
    chains, samples = sizes(quick)
    rows = []
    for processes, devices in CASES:
        try:
            rows.append(_case(processes, devices, chains, samples, repeats))
        except Exception as err:  # one failing case must not hide the others
            rows.append({"case": f"{processes}x{devices}", "error": str(err)})
    base = rows[0].get("samples_per_s")
    for row in rows:
        if base and "samples_per_s" in row:
            row["speedup"] = row["samples_per_s"] / base
    return rows


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """The table of :func:`run`'s rows."""
    lines = ["| case | total devices | chains × draws | 1st call s | steady s | samples/s | "
             "loop samples/s | speed-up |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | error: {r['error'][:80]} |||||||")
            continue
        lines.append(
            f"| {r['case']} | {r['devices']} | {r['chains']} × {r['draws']} | "
            f"{r['first_call_s']:.2f} | {r['steady_s']:.3f} | {r['samples_per_s']:.3g} | "
            f"{r['loop_samples_per_s']:.3g} | {r['speedup']:.2f}× |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--chains", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, default=200, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--num-processes", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return
    rows = run(args.quick, args.repeats)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps(rows, indent=1))
    print(to_markdown(rows))


if __name__ == "__main__":
    main()
