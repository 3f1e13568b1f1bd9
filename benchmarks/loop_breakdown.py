"""Where the chunk loop of ``ebm_ppl.sample`` spends its time, against the hand-written
loop, on whatever device JAX uses (issue #16).

ULA, 1000 chains × 200 steps, on the 2-D Gaussian and the MLP energy of
:mod:`_common`. Rows (best and median of 10 calls after 2 compiling ones):

* ``hand (to host)``: the benchmark's hand-written ``jit(vmap + scan)`` loop, its draws
  (positions and log densities) copied to host memory, as ``bench_sampling`` times it;
* ``hand (on device)``: the same without the copy;
* ``chunks, padding=cond`` / ``padding=select``: the two 100-draw chunks of
  ``ebm_ppl.sample``'s driver (positions, log densities and per-draw statistics to
  host), with the padding draws skipped by a ``lax.cond`` per draw or computed and
  discarded (``ebm_ppl._platform.padding_mode``: ``cond`` on CPU, ``select`` on
  accelerators);
* ``select, no statistics``: the second without the per-draw statistics (what they
  cost);
* ``sample()``: the whole call (validation, pre-flight checks, end-of-run checks,
  ``InferenceData``).

Usage::

    python benchmarks/loop_breakdown.py            # the default JAX device
    JAX_PLATFORMS=cpu taskset -c 0,1 python benchmarks/loop_breakdown.py
"""

from __future__ import annotations

import sys
import time
import warnings
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_sampling  # noqa: E402
from _common import targets  # noqa: E402

import ebm_ppl  # noqa: E402
from ebm_ppl.kernels import ula  # noqa: E402
from ebm_ppl.sampling import driver  # noqa: E402

CHAINS, STEPS, CHUNK = 1000, 200, 100


@partial(jax.jit, static_argnames=("chunk_size",))
def _positions_only(kernels, pot, states, key, first_step, *, chunk_size):
    """A chunk without per-draw statistics (and without padding)."""
    num_chains = jax.tree.leaves(states)[0].shape[0]

    def advance(states, index):
        new, _ = driver._transitions(kernels, pot, states, key, first_step + index, None,
                                     num_chains)
        return new, {"position": new.position, "lp": new.logdensity}

    return jax.lax.scan(advance, states, jnp.arange(chunk_size))


def _best(fn, repeats: int = 10) -> tuple[float, float]:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times), 1e3 * float(np.median(times))


def rows(target) -> dict:
    """``name -> (best ms, median ms)`` for one target."""
    step = target.step_sizes["ula"]
    init = target.init_positions(CHAINS)
    hand = bench_sampling._scan_loop(*bench_sampling._hand_written("ula", target, step), STEPS)
    pot = ebm_ppl.Potential.from_energy(target.energy_fn)
    kernel = ula(step)
    states, kernels, _ = driver.init_chains_and_kernels(kernel, pot, init, 0,
                                                        scheme=driver.SAMPLE)
    key = jax.random.key(0)

    def chunks(padding):
        s, k, out = states, kernels, []
        for i in range(STEPS // CHUNK):
            s, k, _, draws = driver._run_chunk(k, pot, s, None, key, i * CHUNK, CHUNK, None,
                                               chunk_size=CHUNK, scheme=driver.SAMPLE,
                                               padding=padding)
            out.append(jax.device_get(draws))
        return out

    def positions_only():
        s, out = states, []
        for i in range(STEPS // CHUNK):
            s, draws = _positions_only(kernels, pot, s, key, i * CHUNK, chunk_size=CHUNK)
            out.append(jax.device_get(draws))
        return out

    def whole():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # no warm-up: R-hat warnings expected
            return ebm_ppl.sample(pot, kernel, init, num_samples=STEPS, num_warmup=0,
                                  num_chains=CHAINS, seed=1, adapt=False, progress=False)

    calls = {
        "hand (to host)": lambda: jax.device_get(hand(key, init)),
        "hand (on device)": lambda: jax.block_until_ready(hand(key, init)),
        "chunks, padding=cond": lambda: chunks("cond"),
        "chunks, padding=select": lambda: chunks("select"),
        "select, no statistics": positions_only,
        "sample()": whole,
    }
    return {name: _best(fn) for name, fn in calls.items()}


def main() -> None:
    print(f"jax {jax.__version__}, devices {jax.devices()}")
    for target in targets():
        if target.name not in ("gauss2d", "mlp-128"):
            continue
        result = rows(target)
        base = result["hand (to host)"][0]
        for name, (best, median) in result.items():
            print(f"{target.name:8s} {name:24s} best {best:8.2f} ms  median {median:8.2f} ms"
                  f"  best / hand {best / base:5.2f}", flush=True)


if __name__ == "__main__":
    main()
