"""What the ``lax.cond`` around each optimizer step costs ``fit`` on CPU (issue #16).

``fit`` runs its steps in compiled chunks of ``steps_per_chunk``; the steps of a last,
partial chunk past the end of the run are either skipped by a ``lax.cond`` around every
step (``"cond"``) or computed and discarded (``"select"``;
:func:`ebm_ppl._platform.fit_padding_mode` picks). For each objective of
``bench_training.py`` this times, interleaved, ``fit`` forced into one mode (``--mode``)
and the hand-written ``lax.scan`` loop, 200 steps (a multiple of the chunk: no padding
at all), and prints the best time per step of ``--repeats`` calls. Run it once per mode,
each in its own process as a user's program runs one mode (on the 2-core CI machine, a
process that alternates both modes timed them alike, and one that runs only the cond
was slower on sliced score matching; ``benchmarks/README.md``).

Usage::

    for mode in cond select; do python benchmarks/fit_padding.py --mode $mode; done
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_training as bt  # noqa: E402

from ebm_ppl import fit  # noqa: E402
from ebm_ppl.training import fitting  # noqa: E402


def _best_per_step(name, objective, data, mode: str, num_steps: int, repeats: int) -> dict:
    """Best ms per step of ``fit`` in ``mode`` and of the scan loop for one objective."""
    optimizer, params = optax.adam(1e-3), bt.init_mlp()
    trainable = bt._trainable(objective, params)
    state = objective.init(jax.random.key(0), trainable, jnp.asarray(data))
    carry = (trainable, optimizer.init(trainable), state)
    _, scan_run = bt.hand_written(objective, optimizer, data, num_steps)
    real = fitting.fit_padding_mode

    def run_fit(seed):
        fitting.fit_padding_mode = lambda *args: mode
        try:
            return fit(bt.mlp_energy, params, data, objective, optimizer, num_steps=num_steps,
                       batch_size=bt.BATCH_SIZE, seed=seed, progress=False).params
        finally:
            fitting.fit_padding_mode = real

    calls = {"fit": run_fit, "scan loop": lambda s: scan_run(carry, jax.random.key(s))}
    best = {key: float("inf") for key in calls}
    for seed in range(repeats + 2):  # the first two compile
        for key, call in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(call(seed))
            if seed >= 2:
                best[key] = min(best[key], time.perf_counter() - start)
    return {"objective": name, **{k: 1e3 * v / num_steps for k, v in best.items()}}


def rows(mode: str, num_steps: int, repeats: int) -> list[dict]:
    """:func:`_best_per_step` of every objective of ``bench_training.py``."""
    data = bt.two_moons(2048)
    return [_best_per_step(name, objective, data, mode, num_steps, repeats)
            for name, objective in bt.objectives().items()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("cond", "select"), required=True)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    print(f"jax {jax.__version__}, {jax.devices()[0]}, padding {args.mode}, {args.steps} "
          f"steps, best of {args.repeats}, ms per step\n")
    print(f"| objective | fit ({args.mode}) | scan loop | fit / scan |")
    print("|---|---:|---:|---:|")
    for r in rows(args.mode, args.steps, args.repeats):
        print(f"| {r['objective']} | {r['fit']:.3f} | {r['scan loop']:.3f} | "
              f"{r['fit'] / r['scan loop']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
