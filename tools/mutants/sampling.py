"""Mutations of the sampling maths (see ``tools/mutants/base.py`` for the fields)."""

from tools.mutants.base import Mutant

__all__ = ["MUTANTS"]

_DRIVER = "ebm_ppl/sampling/driver.py"
_SAMPLER = "ebm_ppl/sampling/sampler.py"
_POTENTIAL = "ebm_ppl/potential.py"
_PARTS = "ebm_ppl/_potential_parts.py"
_T_DRIVER = "tests/sampling/test_driver.py"
_T_REF = "tests/sampling/test_driver.py::test_draws_are_the_reference_scan_with_the_documented_keys"
_T_THIN = "tests/sampling/test_driver.py::test_thinned_draws_and_stats_are_blocks_of_the_reference"
_T_RESUME = "tests/sampling/test_driver.py::test_resume_after_a_partial_chunk_continues_the_reference"
_T_SIGNS = "tests/test_potential.py::test_signs_of_energy_potential"
_T_CONSTRAINED = "tests/sampling/test_constrained_draws.py"

MUTANTS: list[Mutant] = [
    # ------------------------------------------------------------------ keys
    Mutant(
        name="sampling.step_key_not_folded",
        path=_DRIVER,
        old="return jax.random.split(jax.random.fold_in(key, step), num_chains)",
        new="return jax.random.split(key, num_chains)",
        why="per-step key: the step is not folded in (same noise at every step)",
        tests=(_T_REF,),
    ),
    Mutant(
        name="sampling.sample_key_is_warmup_key",
        path=_SAMPLER,
        old="Phase(key_sample, first_step, num_samples, thin",
        new="Phase(key_warmup, first_step, num_samples, thin",
        why="sampling phase reuses the warm-up key (replays the warm-up noise)",
        tests=(_T_REF,),
    ),
    # ------------------------------------------------------------------ draws
    Mutant(
        name="sampling.draw_before_step",
        path=_DRIVER,
        old='out = {"position": new_states.position, "lp": new_states.logdensity, **stats}',
        new='out = {"position": states.position, "lp": new_states.logdensity, **stats}',
        why="stored draw is the state before the transition (lags lp by one step)",
        tests=(_T_REF,),
    ),
    Mutant(
        name="sampling.lp_is_potential",
        path=_DRIVER,
        old='"lp": new_states.logdensity, **stats}',
        new='"lp": -new_states.logdensity, **stats}',
        why="lp stored with NumPyro's potential sign (-log p) instead of log p",
        tests=(_T_REF,),
    ),
    Mutant(
        name="sampling.reshape_not_transpose",
        path=_DRIVER,
        old="jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), draws)",
        new="jax.tree.map(lambda x: x.reshape(x.shape[1], x.shape[0], *x.shape[2:]), draws)",
        why="(draw, chain) -> (chain, draw) by reshape instead of transpose",
        tests=(_T_REF,),
    ),
    Mutant(
        name="sampling.last_chunk_dropped",
        path=_DRIVER,
        old="num_chunks = math.ceil(phase.num_draws / chunk) if phase.num_draws else 0",
        new="num_chunks = phase.num_draws // chunk if phase.num_draws else 0",
        why="number of chunks rounded down: a partial last chunk is never run",
        tests=(_T_REF,),
    ),
    Mutant(
        name="sampling.cond_padding_off_by_one",
        path=_DRIVER,
        old="return jax.lax.cond(index < num_valid, advance, skip, carry, index)",
        new="return jax.lax.cond(index <= num_valid, advance, skip, carry, index)",
        why="CPU padding: one step past the last valid draw advances the final state",
        tests=(_T_RESUME,),
    ),
    Mutant(
        name="sampling.select_padding_off_by_one",
        path=_DRIVER,
        old="valid = index < num_valid",
        new="valid = index <= num_valid",
        why="accelerator padding: one step past the last valid draw is kept in the carry",
        tests=(_T_RESUME,),
    ),
    # ------------------------------------------------------------------ thinning
    Mutant(
        name="sampling.thin_draw_stride",
        path=_DRIVER,
        old="base_step = first_step + index * (1 if thin is None else thin)",
        new="base_step = first_step + index",
        why="thinned draw i starts at step i, not i*thin (keys reused across draws)",
        tests=(_T_THIN,),
    ),
    Mutant(
        name="sampling.thin_inner_same_key",
        path=_DRIVER,
        old="new_states, new_stats = one(states, base_step + j)",
        new="new_states, new_stats = one(states, base_step)",
        why="all thin inner steps of a draw use the same key",
        tests=(_T_THIN,),
    ),
    Mutant(
        name="sampling.thin_loop_off_by_one",
        path=_DRIVER,
        old="return jax.lax.fori_loop(0, thin, body, (states, zeros))",
        new="return jax.lax.fori_loop(1, thin, body, (states, zeros))",
        why="thinning loop runs thin-1 steps per draw",
        tests=(_T_THIN,),
    ),
    Mutant(
        name="sampling.thin_chunk_offset",
        path=_DRIVER,
        old="phase.first_step + start * phase.thin, n_valid, thin,",
        new="phase.first_step + start, n_valid, thin,",
        why="first step of chunk i counts draws, not kernel steps, when thinning",
        tests=(_T_THIN,),
    ),
    Mutant(
        name="sampling.thin_acceptance_not_averaged",
        path=_DRIVER,
        old="out[name] = acc[name] + (value - acc[name]) / (j + 1)",
        new="out[name] = (acc[name] + value) / 2",
        why="acceptance of thinned steps: running average of pairs, not the mean",
        tests=(_T_THIN,),
    ),
    Mutant(
        name="sampling.thin_divergence_and",
        path=_DRIVER,
        old="out[name] = acc[name] | value",
        new="out[name] = acc[name] & value",
        why="divergences of the skipped steps combined with and instead of or",
        tests=("tests/sampling/test_scale.py::test_thin_keeps_divergences_of_skipped_steps",),
    ),
    # ------------------------------------------------------------------ resume
    Mutant(
        name="sampling.resume_next_step_ignores_thin",
        path=_SAMPLER,
        old="first_step + done * thin, kernel.name)",
        new="first_step + done, kernel.name)",
        why="stored next step counts draws, not kernel steps (resume reuses keys)",
        tests=(_T_RESUME,),
    ),
    Mutant(
        name="sampling.resume_restarts_steps",
        path=_SAMPLER,
        old="Phase(key_sample, first_step, num_samples",
        new="Phase(key_sample, 0, num_samples",
        why="resumed run restarts the step count at 0 (replays the first run's keys)",
        tests=(_T_RESUME,),
    ),
    # ------------------------------------------------------------------ init
    Mutant(
        name="sampling.jitter_not_scaled",
        path="ebm_ppl/sampling/positions.py",
        old="lambda x, z: x + jitter * z",
        new="lambda x, z: x + z",
        why="init jitter added with unit standard deviation",
        tests=("tests/sampling/test_initial_positions.py",),
    ),
    Mutant(
        name="sampling.model_init_key_reused",
        path=_PARTS,
        old="jax.random.uniform(k, (num_chains, *s.shape)",
        new="jax.random.uniform(rng_key, (num_chains, *s.shape)",
        why="model init: one key for every site (equal-shaped sites start equal)",
        tests=("tests/sampling/test_initial_positions.py",),
    ),
    # ------------------------------------------------------------------ models
    Mutant(
        name="sampling.constrain_forgotten",
        path=_SAMPLER,
        old="postprocess = partial(_constrain_draws, pot) if pot.postprocess_fn is not None else None",
        new="postprocess = None",
        why="model draws returned in the unconstrained space",
        tests=(_T_CONSTRAINED,),
    ),
    Mutant(
        name="sampling.jacobian_forgotten",
        path=_PARTS,
        old="return potential_energy(self.model, args, kwargs, z)",
        new=("return -__import__('numpyro.infer.util').infer.util.log_density("
             "self.model, args, kwargs, constrain_fn(self.model, args, kwargs, z))[0]"),
        why="model potential = -log p of the constrained values, log-Jacobian left out",
        tests=(_T_CONSTRAINED,),
    ),
    Mutant(
        name="sampling.model_potential_sign",
        path=_POTENTIAL,
        old="return -self.fn(self.params, x)",
        new="return self.fn(self.params, x)",
        why="model log density = NumPyro potential (sign not flipped)",
        tests=("tests/test_potential.py::test_model_constrain_and_potential",),
    ),
    # ------------------------------------------------------------------ signs
    Mutant(
        name="sampling.temperature_forgotten",
        path=_POTENTIAL,
        old="return logdensity_from_energy(energy, self.temperature)",
        new="return logdensity_from_energy(energy)",
        why="energy potential ignores its temperature",
        tests=(_T_SIGNS,),
    ),
    Mutant(
        name="sampling.temperature_multiplies",
        path=_POTENTIAL,
        old="return -energy / temperature",
        new="return -energy * temperature",
        why="log p = -E*T instead of -E/T",
        tests=(_T_SIGNS,),
    ),
    Mutant(
        name="sampling.energy_fn_temperature_twice",
        path=_POTENTIAL,
        old="return self.potential_fn(x) * self.temperature",
        new="return self.potential_fn(x) / self.temperature",
        why="energy_fn divides by T again instead of undoing it",
        tests=(_T_SIGNS,),
    ),
    Mutant(
        name="sampling.score_of_potential",
        path=_POTENTIAL,
        old="return jax.grad(self.logdensity_fn)(x)",
        new="return jax.grad(self.potential_fn)(x)",
        why="score = grad of the potential (wrong sign)",
        tests=(_T_SIGNS,),
    ),
    # ------------------------------------------------------------------ InferenceData
    Mutant(
        name="sampling.vector_draws_as_chains",
        path="ebm_ppl/inference_data.py",
        old="array.reshape(1, -1) if array.ndim == 1",
        new="array.reshape(-1, 1) if array.ndim == 1",
        why="a 1-D array stored as chains of one draw (ArviZ: one chain of draws)",
        tests=("tests/sampling/test_sampling_fixed_cost.py::test_inference_data_is_what_from_dict_builds",),
    ),
    # ------------------------------------------------------------------ tempering checks
    Mutant(
        name="sampling.tempering_gap_inverted",
        path="ebm_ppl/sampling/health.py",
        old="rates[i] < MIN_SWAP_ACCEPTANCE]",
        new="rates[i] > MIN_SWAP_ACCEPTANCE]",
        why="the ladder-gap warning names the pairs that do swap",
        tests=("tests/sampling/test_run_warnings.py",),
    ),
    Mutant(
        name="sampling.round_trips_counted_from_the_start",
        path="ebm_ppl/sampling/health.py",
        old="gained = trips[:, -1].astype(np.int64) - trips[:, 0].astype(np.int64)",
        new="gained = trips[:, -1].astype(np.int64)",
        why="round trips of the warm-up count as trips of the kept draws",
        tests=("tests/sampling/test_run_warnings.py",),
    ),
]
