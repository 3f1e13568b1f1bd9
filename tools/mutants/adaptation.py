"""Mutations of the adaptation maths (see ``tools/mutants/base.py`` for the fields)."""

from tools.mutants.base import Mutant

__all__ = ["MUTANTS"]

_MATHS = "tests/adaptation/test_adaptation_maths.py"
_SCHEDULE = f"{_MATHS}::test_window_stage_is_stans_schedule"
_WINDOW = f"{_MATHS}::test_window_adaptation_equals_the_reference"
_STEP = f"{_MATHS}::test_step_size_adaptation_equals_the_reference"
_SCALE = f"{_MATHS}::test_scale_adaptation_equals_robbins_monro"
_REPLAY = f"{_MATHS}::test_sample_warmup_replays_through_the_reference"
_MALA = f"{_MATHS}::test_mala_reaches_its_target_acceptance_after_warmup"
_USES_MASS = f"{_MATHS}::test_hmc_samples_with_the_adapted_mass_matrix"
_PT_MASS = ("tests/adaptation/test_tempering_warmup.py::"
            "test_replica_mass_matrices_follow_the_temperature")

MUTANTS: list[Mutant] = [
    # ---------------------------------------------------------------- Stan's schedule
    Mutant(
        name="adaptation.window_grow_rule",
        path="ebm_ppl/adaptation/schedule.py",
        old="grow = 3 * size <= final_start - start",
        new="grow = 2 * size <= final_start - start",
        why="a window doubles when only it (not its successor) fits before the final buffer",
        tests=(_SCHEDULE,),
    ),
    Mutant(
        name="adaptation.window_end_off_by_one",
        path="ebm_ppl/adaptation/schedule.py",
        old="hit = hit | (active & (step == end - 1))",
        new="hit = hit | (active & (step == end))",
        why="window end flagged one step late (end is exclusive)",
        tests=(_SCHEDULE,),
    ),
    Mutant(
        name="adaptation.squeezed_initial_buffer",
        path="ebm_ppl/adaptation/schedule.py",
        old="initial = jnp.where(squeeze, (15 * n) // 100, _INITIAL_BUFFER)",
        new="initial = jnp.where(squeeze, (10 * n) // 100, _INITIAL_BUFFER)",
        why="short warm-up: initial buffer 10 % (the final buffer's share) instead of 15 %",
        tests=(_SCHEDULE,),
    ),
    Mutant(
        name="adaptation.stage_of_next_step",
        path="ebm_ppl/adaptation/step_size.py",
        old="is_slow, is_window_end = window_stage(state.count, state.num_warmup)",
        new="is_slow, is_window_end = window_stage(state.count + 1, state.num_warmup)",
        why="schedule looked up for the 1-based step: windows shifted by one draw",
        tests=(_WINDOW,),
    ),
    # ---------------------------------------------------------------- dual averaging
    Mutant(
        name="adaptation.da_mu_twice",
        path="ebm_ppl/adaptation/step_size.py",
        old="return DualAveragingState(da_init(step_size), *counters(num_warmup))",
        new="return DualAveragingState(da_init(10 * step_size), *counters(num_warmup))",
        why="mu = log(10 h0) applied on top of BlackJAX's own factor 10",
        tests=(_STEP,),
    ),
    Mutant(
        name="adaptation.da_gradient_not_rate",
        path="ebm_ppl/adaptation/step_size.py",
        old=("_, da_update, _ = dual_averaging_adaptation(self.target_acceptance_rate)\n"
             "        dual_averaging = da_update(state.dual_averaging, acceptance_rate)"),
        new=("_, da_update, _ = dual_averaging_adaptation(self.target_acceptance_rate)\n"
             "        dual_averaging = da_update(state.dual_averaging,\n"
             "                                   self.target_acceptance_rate - acceptance_rate)"),
        why="passes the gradient delta - alpha where BlackJAX wants the acceptance rate",
        tests=(_STEP, _MALA),
    ),
    Mutant(
        name="adaptation.da_adapts_with_average",
        path="ebm_ppl/adaptation/step_size.py",
        old="return (kernel.replace(step_size=jnp.exp(dual_averaging.log_step_size)),",
        new="return (kernel.replace(step_size=jnp.exp(dual_averaging.log_step_size_avg)),",
        why="warm-up steps use the averaged iterate instead of the current one",
        tests=(_STEP,),
    ),
    Mutant(
        name="adaptation.final_last_iterate",
        path="ebm_ppl/adaptation/step_size.py",
        old=("_, _, da_final = dual_averaging_adaptation(self.target_acceptance_rate)\n"
             "        return kernel.replace(step_size=da_final(state.dual_averaging))\n\n\n"
             "@dataclasses.dataclass(frozen=True)\nclass WindowWarmup"),
        new=("_, _, da_final = dual_averaging_adaptation(self.target_acceptance_rate)\n"
             "        return kernel.replace(step_size=jnp.exp(state.dual_averaging.log_step_size))"
             "\n\n\n@dataclasses.dataclass(frozen=True)\nclass WindowWarmup"),
        why="sampling step size = last (noisy) iterate, not the dual-averaging average",
        tests=(_STEP,),
    ),
    Mutant(
        name="adaptation.finalise_one_step_early",
        path="ebm_ppl/adaptation/base.py",
        old="is_last = new_state.count == state.num_warmup",
        new="is_last = new_state.count == state.num_warmup - 1",
        why="final() applied at the second-to-last update, the last one overwrites it",
        tests=(_STEP,),
    ),
    # ---------------------------------------------------------------- window adaptation
    Mutant(
        name="adaptation.window_restart_from_iterate",
        path="ebm_ppl/adaptation/step_size.py",
        old="return new, da_init(da_final(dual_averaging))",
        new="return new, da_init(jnp.exp(dual_averaging.log_step_size))",
        why="step size restarted from the last iterate instead of its average",
        tests=(_WINDOW,),
    ),
    Mutant(
        name="adaptation.window_no_restart",
        path="ebm_ppl/adaptation/step_size.py",
        old="return new, da_init(da_final(dual_averaging))",
        new="return new, dual_averaging",
        why="dual averaging not restarted when the mass matrix changes",
        tests=(_WINDOW,),
    ),
    Mutant(
        name="adaptation.window_ignores_given_matrix",
        path="ebm_ppl/adaptation/step_size.py",
        old="return WindowState(da_init(step_size), mm_init(flat.shape[0], imm),",
        new="return WindowState(da_init(step_size), mm_init(flat.shape[0]),",
        why="the user's inverse mass matrix replaced by the identity at the start",
        tests=("tests/adaptation/test_adaptation.py::test_given_inverse_mass_matrix_starts_window_adaptation",),
    ),
    Mutant(
        name="adaptation.window_matrix_not_applied",
        path="ebm_ppl/adaptation/step_size.py",
        old="inverse_mass_matrix=mass_matrix.inverse_mass_matrix,",
        new='inverse_mass_matrix=kernel.parameters["inverse_mass_matrix"],',
        why="the window estimate is computed but the kernel keeps sampling with its old matrix",
        tests=(_USES_MASS, _WINDOW),
    ),
    Mutant(
        name="adaptation.driver_feeds_old_position",
        path="ebm_ppl/sampling/driver.py",
        old='kernels, warmup_states, warmup.observe(new_states), stats["acceptance_rate"]',
        new='kernels, warmup_states, warmup.observe(states), stats["acceptance_rate"]',
        why="Welford estimate fed the position before the transition (lagged window)",
        tests=(_REPLAY,),
    ),
    # ---------------------------------------------------------------- Robbins–Monro
    Mutant(
        name="adaptation.rm_gain_off_by_one",
        path="ebm_ppl/adaptation/scale.py",
        old="gain = (state.count + 1).astype(state.log_scale.dtype) ** -_RM_EXPONENT",
        new="gain = (state.count + 2).astype(state.log_scale.dtype) ** -_RM_EXPONENT",
        why="Robbins–Monro gain indexed from t = 2: first step gamma = 2^-0.6",
        tests=(_SCALE,),
    ),
    Mutant(
        name="adaptation.rm_sign",
        path="ebm_ppl/adaptation/scale.py",
        old="gain * (acceptance_rate - self.target_acceptance_rate)",
        new="gain * (self.target_acceptance_rate - acceptance_rate)",
        why="scale narrowed when acceptance is above target",
        tests=(_SCALE,),
    ),
    Mutant(
        name="adaptation.rm_init_without_log",
        path="ebm_ppl/adaptation/scale.py",
        old="return RobbinsMonroState(jnp.log(jnp.asarray(scale, flat.dtype)),",
        new="return RobbinsMonroState(jnp.asarray(scale, flat.dtype),",
        why="log scale initialised with the scale itself",
        tests=(_SCALE,),
    ),
    # ---------------------------------------------------------------- tempering
    Mutant(
        name="adaptation.tempering_mass_not_applied",
        path="ebm_ppl/adaptation/tempering.py",
        old="            base = base.replace(inverse_mass_matrix=mass.inverse_mass_matrix)",
        new="            base = base",
        why="parallel tempering: the replicas' mass matrices are estimated but never used",
        tests=(_PT_MASS,),
    ),
    Mutant(
        name="adaptation.tempering_mass_one_for_all",
        path="ebm_ppl/adaptation/tempering.py",
        old="            flat = jax.vmap(lambda x: ravel_pytree(x)[0])(position)",
        new="            flat = jax.vmap(lambda x: ravel_pytree(x)[0])(position)[:1] + 0 * "
            "jax.vmap(lambda x: ravel_pytree(x)[0])(position)",
        why="parallel tempering: every replica's matrix estimated from the cold replica's "
            "draws",
        tests=(_PT_MASS,),
    ),
]
