"""Mutations of the kernels' maths (see ``tools/mutants/base.py`` for the fields)."""

from tools.mutants.base import Mutant

__all__ = ["MUTANTS"]

_ULA = "ebm_ppl/kernels/ula.py"
_MH = "ebm_ppl/kernels/mh.py"
_BJ = "ebm_ppl/kernels/blackjax.py"
_FB = "ebm_ppl/kernels/from_blackjax.py"
_CHAINS = "ebm_ppl/kernels/chains.py"
_ANNEALED = "ebm_ppl/sampling/annealed.py"

_T_ULA = ("tests/kernels/test_kernels.py::test_ula_gaussian_stationary_law",
          "tests/kernels/test_kernels.py::test_ula_temperature_scales_covariance_not_mean")
_T_MH = ("tests/kernels/test_mh.py",)
_T_MALA = ("tests/kernels/test_mala.py",)
_T_BARKER = ("tests/kernels/test_barker.py",)
_T_ANNEALED = ("tests/sampling/test_annealed_langevin.py::test_variance_follows_the_ula_recursion",)

MUTANTS: list[Mutant] = [
    # ------------------------------------------------------------------ ULA
    Mutant(
        name="kernels.ula_noise_variance",
        path=_ULA,
        old="scale = jnp.sqrt(2.0 * step_size * temperature)",
        new="scale = jnp.sqrt(step_size * temperature)",
        why="ULA noise sqrt(h T) instead of sqrt(2 h T)",
        tests=_T_ULA,
    ),
    Mutant(
        name="kernels.ula_temperature_ignored",
        path=_ULA,
        old="scale = jnp.sqrt(2.0 * step_size * temperature)",
        new="scale = jnp.sqrt(2.0 * step_size)",
        why="ULA temperature never reaches the noise",
        tests=_T_ULA,
    ),
    Mutant(
        name="kernels.ula_drift_sign",
        path=_ULA,
        old="lambda x, g, z: x + step_size * g + scale * z",
        new="lambda x, g, z: x - step_size * g + scale * z",
        why="ULA drift down the log density (energy sign convention mixed up)",
        tests=_T_ULA,
    ),
    Mutant(
        name="kernels.ula_half_drift",
        path=_ULA,
        old="lambda x, g, z: x + step_size * g + scale * z",
        new="lambda x, g, z: x + 0.5 * step_size * g + scale * z",
        why="ULA drift h/2 grad log p with noise sqrt(2h) (seed-002 convention mixed in)",
        tests=_T_ULA,
    ),
    Mutant(
        name="kernels.ula_keeps_old_state",
        path=_ULA,
        old="lambda new, old: jnp.where(ok, new, old), proposed, state)",
        new="lambda new, old: jnp.where(ok, old, new), proposed, state)",
        why="ULA keeps the old state on a finite step (where arguments swapped)",
        tests=_T_ULA,
    ),
    # ------------------------------------------------------------------ MH
    Mutant(
        name="kernels.mh_hastings_inverted",
        path=_MH,
        old=("+ proposal.log_prob_fn(state.position, new_position, proposal.params)\n"
             "            - proposal.log_prob_fn(new_position, state.position, proposal.params)"),
        new=("- proposal.log_prob_fn(state.position, new_position, proposal.params)\n"
             "            + proposal.log_prob_fn(new_position, state.position, proposal.params)"),
        why="Hastings factor q(x' given x) / q(x given x'): the ratio inverted",
        tests=_T_MH,
    ),
    Mutant(
        name="kernels.mh_hastings_missing",
        path=_MH,
        old="+ proposal.log_prob_fn(state.position, new_position, proposal.params)",
        new="+ proposal.log_prob_fn(new_position, state.position, proposal.params)",
        why="reverse-move density with swapped arguments: the Hastings term cancels",
        tests=_T_MH,
    ),
    Mutant(
        name="kernels.independent_log_prob_at_old",
        path=_MH,
        old="return jnp.sum(distribution.log_prob(new))",
        new="return jnp.sum(distribution.log_prob(old))",
        why="independence proposal density evaluated at the current point, not the new one",
        tests=_T_MH,
    ),
    Mutant(
        name="kernels.mh_accept_comparison",
        path=_MH,
        old="jnp.result_type(log_ratio))) < log_ratio",
        new="jnp.result_type(log_ratio))) > log_ratio",
        why="MH accepts when log u > log ratio",
        tests=_T_MH,
    ),
    Mutant(
        name="kernels.mh_key_reuse",
        path=_MH,
        old="key_propose, key_accept = jax.random.split(rng_key)",
        new="key_propose = key_accept = rng_key",
        why="one key for the proposal noise and the accept uniform",
        tests=_T_MH,
    ),
    Mutant(
        name="kernels.mh_acceptance_rate_max",
        path=_MH,
        old="acceptance_rate = jnp.exp(jnp.minimum(log_ratio, 0.0))",
        new="acceptance_rate = jnp.exp(jnp.maximum(log_ratio, 0.0))",
        why="reported acceptance max(1, r) instead of min(1, r) (feeds scale adaptation)",
        tests=_T_MH,
    ),
    Mutant(
        name="kernels.random_walk_scale_squared",
        path=_MH,
        old='lambda x, z: x + params["scale"] * z',
        new='lambda x, z: x + params["scale"] ** 2 * z',
        why="random-walk proposal sd s^2 (scale read as a variance)",
        tests=_T_MH,
    ),
    # ------------------------------------------------------------------ MALA
    Mutant(
        name="kernels.mala_transition_energy_factor",
        path=_BJ,
        old="0.25 * (1.0 / step_size) * theta_dot",
        new="0.5 * (1.0 / step_size) * theta_dot",
        why="MALA reverse-move log density norm^2/(2h) instead of norm^2/(4h)",
        tests=_T_MALA,
    ),
    Mutant(
        name="kernels.mala_reverse_grad_at_old",
        path=_BJ,
        old="state.position, new_state.position, new_state.logdensity_grad,",
        new="state.position, new_state.position, state.logdensity_grad,",
        why="MALA reverse move drifts with the gradient at x instead of x'",
        tests=_T_MALA,
    ),
    Mutant(
        name="kernels.mala_key_reuse",
        path=_BJ,
        old="key_integrator, key_rmh = jax.random.split(rng_key)",
        new="key_integrator = key_rmh = rng_key",
        why="MALA: one key for the proposal noise and the accept uniform",
        tests=_T_MALA,
    ),
    Mutant(
        name="kernels.pmala_key_reuse",
        path=_BJ,
        old="key_noise, key_rmh = jax.random.split(rng_key)",
        new="key_noise = key_rmh = rng_key",
        why="preconditioned MALA: one key for the noise and the accept uniform",
        tests=_T_MALA,
    ),
    Mutant(
        name="kernels.pmala_dense_applies_mass",
        path=_BJ,
        old="return inverse_mass_matrix @ v",
        new="return jnp.linalg.solve(inverse_mass_matrix, v)",
        why="preconditioned MALA drift with M instead of M^-1 (dense)",
        tests=_T_MALA,
    ),
    Mutant(
        name="kernels.pmala_diagonal_root",
        path=_BJ,
        old="root = jnp.sqrt(inverse_mass_matrix)",
        new="root = inverse_mass_matrix",
        why="preconditioned MALA noise C xi instead of C^1/2 xi (diagonal)",
        tests=_T_MALA,
    ),
    Mutant(
        name="kernels.pmala_dense_root_transposed",
        path=_BJ,
        old="return root @ z",
        new="return root.T @ z",
        why="preconditioned MALA noise L^T xi instead of L xi (Cholesky transposed)",
        tests=_T_MALA,
    ),
    Mutant(
        name="kernels.pmala_forward_term_sign",
        path=_BJ,
        old="+ 0.5 * jnp.sum(noise * noise)",
        new="- 0.5 * jnp.sum(noise * noise)",
        why="preconditioned MALA forward-move log density with the wrong sign",
        tests=_T_MALA,
    ),
    Mutant(
        name="kernels.pmala_noise_sqrt_h",
        path=_BJ,
        old="jnp.sqrt(2 * step_size) * scale(noise)",
        new="jnp.sqrt(step_size) * scale(noise)",
        why="preconditioned MALA noise sqrt(h) instead of sqrt(2h)",
        tests=_T_MALA,
    ),
    # ------------------------------------------------------------------ Barker
    Mutant(
        name="kernels.barker_diagonal_metric_not_inverted",
        path=_BJ,
        old="return 1.0 / inverse_mass_matrix",
        new="return inverse_mass_matrix",
        why="Barker given M^-1 where BlackJAX 1.7 reads M (diagonal)",
        tests=_T_BARKER,
    ),
    Mutant(
        name="kernels.barker_dense_metric_not_inverted",
        path=_BJ,
        old="return jnp.linalg.inv(inverse_mass_matrix)",
        new="return inverse_mass_matrix",
        why="Barker given M^-1 where BlackJAX 1.7 reads M (dense)",
        tests=_T_BARKER,
    ),
    # ------------------------------------------------------------------ from_blackjax
    Mutant(
        name="kernels.from_blackjax_barker_metric",
        path=_FB,
        old="parameters[\"inverse_mass_matrix\"] = barker_metric_argument(\n"
            "            parameters[\"inverse_mass_matrix\"])",
        new="parameters[\"inverse_mass_matrix\"] = (\n"
            "            parameters[\"inverse_mass_matrix\"])",
        why="from_blackjax passes Barker's M^-1 unconverted",
        tests=_T_BARKER,
    ),
    Mutant(
        name="kernels.from_blackjax_undo_inverted",
        path=_FB,
        old="lambda new, old: jnp.where(ok, new, old), new_state, state)",
        new="lambda new, old: jnp.where(ok, old, new), new_state, state)",
        why="from_blackjax keeps the old state on a good step and the new on a bad one",
        tests=("tests/kernels/test_from_blackjax_draws.py",),
    ),
    # ------------------------------------------------------------------ chains
    Mutant(
        name="kernels.run_chains_shared_key",
        path=_CHAINS,
        old="step_keys = jax.random.split(step_keys, num_chains)",
        new="step_keys = jnp.broadcast_to(step_keys, (num_chains,))",
        why="every chain gets the step's key (chains from one start move together)",
        tests=("tests/kernels/test_kernels.py::test_run_chains_matches_explicit_keys",),
    ),
    # ------------------------------------------------------------------ annealed Langevin
    Mutant(
        name="kernels.annealed_step_sigma_not_squared",
        path=_ANNEALED,
        old="step_size=step_scale * sigma**2",
        new="step_size=step_scale * sigma",
        why="annealed Langevin step s sigma instead of s sigma^2",
        tests=_T_ANNEALED,
    ),
    Mutant(
        name="kernels.annealed_step_last_level",
        path=_ANNEALED,
        old="step_size=step_scale * sigma**2",
        new="step_size=step_scale * sigmas[-1]**2",
        why="annealed Langevin uses the last level's sigma for every level's step",
        tests=_T_ANNEALED,
    ),
    Mutant(
        name="kernels.annealed_step_ratio_inverted",
        path=_ANNEALED,
        old="step_size=step_scale * sigma**2",
        new="step_size=step_scale * sigmas[-1]**4 / sigma**2",
        why="NCSN rule eps sigma_i^2/sigma_L^2 written with the ratio inverted",
        tests=_T_ANNEALED,
    ),
    Mutant(
        name="kernels.annealed_levels_reversed",
        path=_ANNEALED,
        old="(init, zeros), (sigmas, keys))",
        new="(init, zeros), (sigmas[::-1], keys))",
        why="annealing from the smallest noise level up",
        tests=_T_ANNEALED,
    ),
    Mutant(
        name="kernels.annealed_level_key_reuse",
        path=_ANNEALED,
        old="jax.random.split(level_key, steps_per_level))",
        new="jax.random.split(key, steps_per_level))",
        why="every level reuses the top key: the same noise sequence at each level",
        tests=_T_ANNEALED,
    ),
    Mutant(
        name="kernels.annealed_energy_sign",
        path=_ANNEALED,
        old="lambda x: -energy_fn(params, x, sigma)",
        new="lambda x: energy_fn(params, x, sigma)",
        why="annealed Langevin climbs the energy (log density = +E)",
        tests=_T_ANNEALED,
    ),
    # ------------------------------------------------------------------ parallel tempering
    Mutant(
        name="kernels.pt_swap_log_ratio_sign",
        path="ebm_ppl/kernels/replicas.py",
        old="log_ratio = (betas[:-1] - betas[1:]) * (ell[1:] - ell[:-1])",
        new="log_ratio = (betas[:-1] - betas[1:]) * (ell[:-1] - ell[1:])",
        why="swap ratio with the log densities subtracted the wrong way round",
        tests=("tests/kernels/test_parallel_tempering.py::"
               "test_swaps_and_full_steps_keep_the_tempered_marginals",),
    ),
    Mutant(
        name="kernels.pt_swap_tempered_logdensity",
        path="ebm_ppl/kernels/replicas.py",
        old="return replicas.logdensity / betas",
        new="return replicas.logdensity",
        why="swap ratio from the cached tempered log densities beta*log p, not log p",
        tests=("tests/kernels/test_parallel_tempering.py::"
               "test_swaps_and_full_steps_keep_the_tempered_marginals",),
    ),
    Mutant(
        name="kernels.pt_cache_ratio_inverted",
        path="ebm_ppl/kernels/replicas.py",
        old="betas / betas[permutation], betas, base_init_fn,",
        new="betas[permutation] / betas, betas, base_init_fn,",
        why="swapped states' cached log density rescaled by beta_old/beta_new",
        tests=("tests/kernels/test_parallel_tempering.py::"
               "test_cached_logdensity_and_gradient_follow_the_temperature",),
    ),
    Mutant(
        name="kernels.pt_parity_never_alternates",
        path="ebm_ppl/kernels/tempering.py",
        old="state = state._replace(step=state.step + 1)",
        new="state = state._replace(step=state.step)",
        why="step counter never advanced: DEO proposes the even pairs only",
        tests=("tests/kernels/test_parallel_tempering.py::test_swap_parity",),
    ),
    Mutant(
        name="kernels.pt_round_trip_direction",
        path="ebm_ppl/kernels/replicas.py",
        old="round_trips + (directions[0] == -1)",
        new="round_trips + (directions[0] != 1)",
        why="round trip counted for any replica reaching the cold end, hot or not",
        tests=("tests/kernels/test_parallel_tempering.py::"
               "test_round_trips_on_a_constructed_sequence",),
    ),
]
