"""One process of the multi-process ``sample`` test (``tests/sampling/test_distributed.py``).

Usage::

    python tests/sampling/_distributed_worker.py OUT.npz                       # single process
    python tests/sampling/_distributed_worker.py OUT.npz --port P --process-id I --num-processes N

With ``--num-processes N > 1`` it joins a ``jax.distributed`` job on ``127.0.0.1:P``
(CPU collectives through gloo), then runs the same ``ebm_ppl.sample`` calls as the
single-process run and writes every array of the returned InferenceData to ``OUT.npz``
(keys ``<case>/<group>/<variable>``) plus the run configuration and this process's
share of the chains (``OUT.json``). Set the device count per process with
``XLA_FLAGS=--xla_force_host_platform_device_count=K``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

import jax

NUM_CHAINS = 8


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--num-processes", type=int, default=1)
    return parser.parse_args(argv)


def _cases():
    import jax.numpy as jnp

    import ebm_ppl

    k = ebm_ppl.kernels
    gauss = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(jnp.array([1.0, 4.0]) * x**2))
    tree = ebm_ppl.Potential.from_energy(
        lambda p: 0.5 * jnp.sum(p["a"] ** 2) + 2.0 * jnp.sum((p["b"] - 1.0) ** 2)
    )
    tree_init = {"a": jnp.zeros(2), "b": jnp.zeros(())}
    short = dict(num_samples=30, num_warmup=20, num_chains=NUM_CHAINS, chunk_size=16,
                 progress=False)
    return {  # name: (potential, kernel, init, options)
        # a progress bar on process 0 alone (it must not need the other processes)
        "ula": (gauss, k.ula(0.05), jnp.zeros(2),
                dict(short, seed=1, progress=jax.process_index() == 0)),
        "mala": (gauss, k.mala(0.4), jnp.zeros(2), dict(short, seed=2, thin=2)),
        "hmc_window": (tree, k.hmc(0.3, 5), tree_init, dict(short, seed=5, save_warmup=True)),
        "model": (ebm_ppl.Potential.from_model(_model, jnp.array([0.3, -0.2, 0.8])), k.mala(0.3),
                  None, dict(short, seed=6)),
    }


def _model(y):
    import numpyro
    import numpyro.distributions as dist

    scale = numpyro.sample("scale", dist.HalfNormal(1.0))
    numpyro.sample("y", dist.Normal(0.0, scale), obs=y)


def _fit() -> dict:
    """Data-parallel DSM training: the batch of 64 split over all the job's devices."""
    import jax.numpy as jnp
    import numpy as np
    import optax

    import ebm_ppl

    def energy(params, x):
        return 0.5 * jnp.sum(params["a"] * x**2) + jnp.sum(params["b"] * x)

    data = np.random.default_rng(0).normal(size=(512, 2)).astype(np.float32) * 0.5 + 1.0
    result = ebm_ppl.fit(energy, {"a": jnp.ones(2), "b": jnp.zeros(2)}, data,
                         ebm_ppl.objectives.denoising_score_matching(0.1), optax.adam(1e-2),
                         num_steps=40, batch_size=64, progress=False)
    return {name: np.asarray(value) for name, value in result.params.items()}


def _flatten(idata) -> dict:
    arrays = {}
    for group in idata.groups():
        dataset = getattr(idata, group)
        for name, var in dataset.data_vars.items():
            arrays[f"{group}/{name}"] = var.values
    return arrays


def main(argv: list[str]) -> None:
    args = _parse(argv)
    if args.num_processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{args.port}",
                                   num_processes=args.num_processes,
                                   process_id=args.process_id)
    import numpy as np

    import ebm_ppl
    from ebm_ppl.inference_data import read_config
    from ebm_ppl.sampling import distributed

    arrays, configs = {}, {}
    for name, (pot, kernel, init, options) in _cases().items():
        idata = ebm_ppl.sample(pot, kernel, init, **options)
        if name == "ula":  # resume continues the sharded chains
            more = ebm_ppl.sample(pot, kernel, resume=idata, num_samples=10, progress=False)
            arrays.update({f"ula_resumed/{k}": v for k, v in _flatten(more).items()})
        arrays.update({f"{name}/{k}": v for k, v in _flatten(idata).items()})
        config = read_config(idata)
        config.pop("sampling_time_s")
        configs[name] = config
    with warnings.catch_warnings(record=True) as caught:  # 6 chains, 4 devices: replicated
        warnings.simplefilter("always")
        pot, kernel, init, options = _cases()["ula"]
        idata = ebm_ppl.sample(pot, kernel, init, **dict(options, num_chains=6, progress=False))
    arrays.update({f"ula_6/{k}": v for k, v in _flatten(idata).items()})
    warned = any("not a multiple" in str(w.message) for w in caught)
    arrays.update({f"fit/{k}": v for k, v in _fit().items()})
    share = distributed.local_share(NUM_CHAINS)
    placed = distributed.shard_chains(jax.numpy.zeros((NUM_CHAINS, 3)), NUM_CHAINS)
    shards = sorted(s.index[0].start or 0 for s in placed.addressable_shards)
    np.savez(args.out, **arrays)
    with open(args.out.removesuffix(".npz") + ".json", "w") as f:
        json.dump({"configs": configs, "share": [share.start, share.stop],
                   "shard_starts": shards, "warned": warned, "process_index": jax.process_index(),
                   "devices": jax.device_count()}, f)
    if args.num_processes > 1:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
