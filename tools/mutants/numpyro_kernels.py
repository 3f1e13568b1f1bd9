"""Mutations of the NumPyro kernels' and exchange maths (see ``tools/mutants/base.py``)."""

from tools.mutants.base import Mutant

__all__ = ["MUTANTS"]

_EXCHANGE = "ebm_ppl/kernels/exchange.py"
_NP_EXCHANGE = "ebm_ppl/numpyro/exchange.py"
_EXCHANGE_TESTS = ("tests/numpyro/test_exchange_posterior.py",)
_ADAPTER_TESTS = ("tests/numpyro/test_numpyro_adapters.py",)
_NP_TEMPERING = "ebm_ppl/numpyro/tempering.py"
_TEMPERING_TESTS = ("tests/numpyro/test_numpyro_tempering.py",)

MUTANTS: list[Mutant] = [
    # ------------------------------------------------------------ kernels/exchange.py
    Mutant(
        name="numpyro_kernels.exchange_swap_sign",
        path=_EXCHANGE,
        old="swap = auxiliary.logdensity_fn(theta, y, params) - auxiliary.logdensity_fn(new_theta, y, params)",
        new="swap = auxiliary.logdensity_fn(new_theta, y, params) - auxiliary.logdensity_fn(theta, y, params)",
        why="exchange term log f_theta'(y) - log f_theta(y): normaliser ratio inverted",
        tests=_EXCHANGE_TESTS,
    ),
    Mutant(
        name="numpyro_kernels.exchange_aux_at_current",
        path=_EXCHANGE,
        old="y, inner_rate = auxiliary.draw_fn(key_auxiliary, new_theta, params)",
        new="y, inner_rate = auxiliary.draw_fn(key_auxiliary, theta, params)",
        why="auxiliary data drawn from p_theta instead of the proposed p_theta'",
        tests=_EXCHANGE_TESTS,
    ),
    Mutant(
        name="numpyro_kernels.exchange_hastings_swapped",
        path=_EXCHANGE,
        old=("+ proposal.log_prob_fn(theta, new_theta, proposal.params)\n"
             "            - proposal.log_prob_fn(new_theta, theta, proposal.params)"),
        new=("+ proposal.log_prob_fn(new_theta, theta, proposal.params)\n"
             "            - proposal.log_prob_fn(theta, new_theta, proposal.params)"),
        why="Hastings term q(theta'|theta)/q(theta|theta') (inverted) for asymmetric proposals",
        tests=_EXCHANGE_TESTS,
    ),
    Mutant(
        name="numpyro_kernels.exchange_accept_key_reuse",
        path=_EXCHANGE,
        old="uniform = jax.random.uniform(key_accept,",
        new="uniform = jax.random.uniform(key_propose,",
        why="accept uniform drawn with the proposal's key (correlated with the move)",
        tests=_EXCHANGE_TESTS,
    ),
    Mutant(
        name="numpyro_kernels.exchange_exact_sampler_one_key",
        path=_EXCHANGE,
        old="y = jax.vmap(lambda k: self.exact_sampler(k, theta))(keys)",
        new="y = jax.vmap(lambda k: self.exact_sampler(rng_key, theta))(keys)",
        why="one key for every auxiliary point: n copies of one draw, not n i.i.d. draws",
        tests=_EXCHANGE_TESTS,
    ),
    Mutant(
        name="numpyro_kernels.exchange_family_mean_not_sum",
        path=_EXCHANGE,
        old="return jnp.sum(jax.vmap(self.point(theta))(y))",
        new="return jnp.mean(jax.vmap(self.point(theta))(y))",
        why="auxiliary log density averaged over the n points instead of summed",
        tests=_EXCHANGE_TESTS,
    ),
    # ------------------------------------------------------------ numpyro/exchange.py
    Mutant(
        name="numpyro_kernels.nexchange_rm_sign",
        path=_NP_EXCHANGE,
        old="warmup_state = RobbinsMonroState(jnp.log(state.scale), state.i, state.num_warmup)",
        new="warmup_state = RobbinsMonroState(state.scale, state.i, state.num_warmup)",
        why="exchange's Robbins-Monro state rebuilt from the scale, not its log",
        tests=("tests/numpyro/test_exchange_posterior.py::test_numpyro_exchange_warmup_is_the_robbins_monro_recursion",),
    ),
    Mutant(
        name="numpyro_kernels.nexchange_jacobian_missing",
        path=_NP_EXCHANGE,
        old="return logdensity(x) + jnp.sum(transform.log_abs_det_jacobian(u, x))",
        new="return logdensity(x)",
        why="inner chains in the unconstrained space without the log-Jacobian",
        tests=_EXCHANGE_TESTS,
    ),
    Mutant(
        name="numpyro_kernels.nexchange_aux_unconstrained",
        path=_NP_EXCHANGE,
        old="draws[name] = transform(u).reshape(jnp.shape(obs))",
        new="draws[name] = u.reshape(jnp.shape(obs))",
        why="auxiliary draws returned in the unconstrained space (not mapped back)",
        tests=_EXCHANGE_TESTS,
    ),
    Mutant(
        name="numpyro_kernels.nexchange_mean_restart",
        path=_NP_EXCHANGE,
        old="n = jnp.where(warm, i, i - state.num_warmup).astype(scale.dtype)",
        new="n = jnp.where(warm, i, i - state.num_warmup + 1).astype(scale.dtype)",
        why="running mean acceptance off by one after the warm-up restart",
        tests=_EXCHANGE_TESTS,
    ),
    # ------------------------------------------------------------ distribution.py
    Mutant(
        name="numpyro_kernels.energy_potential_temperature",
        path="ebm_ppl/model/distribution.py",
        old="self.energy_fn, self.params if self.has_params else None, self.temperature\n",
        new="self.energy_fn, self.params if self.has_params else None\n",
        why="EnergyDistribution.potential (exchange's auxiliary law) at T = 1",
        tests=_EXCHANGE_TESTS,
    ),
    Mutant(
        name="numpyro_kernels.energy_log_prob_temperature",
        path="ebm_ppl/model/distribution.py",
        old="return logdensity_from_energy(energy, temperature)",
        new="return logdensity_from_energy(energy, 1.0)",
        why="EnergyDistribution.log_prob ignores the temperature",
        tests=("tests/numpyro/test_numpyro.py::test_energy_distribution_log_prob",),
    ),
    # ------------------------------------------------------------ kernels.py / base.py
    Mutant(
        name="numpyro_kernels.ula_temperature_ignored",
        path="ebm_ppl/numpyro/kernels.py",
        old="self._kernel = _kernels.ula(step_size, temperature)",
        new="self._kernel = _kernels.ula(step_size)",
        why="numpyro.ULA drops its temperature (samples exp(-U), not exp(-U/T))",
        tests=("tests/numpyro/test_numpyro_ula.py",),
    ),
    Mutant(
        name="numpyro_kernels.target_shift_sign",
        path="ebm_ppl/numpyro/base.py",
        old="shift = step_warmup.target_acceptance_rate - adapt.target_accept_prob",
        new="shift = adapt.target_accept_prob - step_warmup.target_acceptance_rate",
        why="target_accept_prob shift with the wrong sign (adapts to 2*default - target)",
        tests=_ADAPTER_TESTS,
    ),
    Mutant(
        name="numpyro_kernels.mean_accept_restart",
        path="ebm_ppl/numpyro/base.py",
        old="state.i - adapt.warmup.num_warmup + 1)",
        new="state.i - adapt.warmup.num_warmup)",
        why="running mean acceptance off by one after the warm-up restart",
        tests=_ADAPTER_TESTS,
    ),
    Mutant(
        name="numpyro_kernels.block_mask_dropped",
        path="ebm_ppl/numpyro/kernels.py",
        old="inverse_mass_matrix=imm * block_mask(layout.blocks, imm.shape[0]).astype(imm.dtype))",
        new="inverse_mass_matrix=imm)",
        why="a given dense start keeps its entries between site groups",
        tests=_ADAPTER_TESTS,
    ),
    # ------------------------------------------------------------ hmc.py
    Mutant(
        name="numpyro_kernels.hmc_floor_steps",
        path="ebm_ppl/numpyro/hmc.py",
        old="jnp.ceil(trajectory_length / nominal)",
        new="jnp.floor(trajectory_length / nominal)",
        why="L = floor(tau/eps) instead of NumPyro's ceil (steps longer than eps)",
        tests=("tests/numpyro/test_numpyro_dropin.py::test_hmc_integrates_with_trajectory_length_over_num_steps",),
    ),
    Mutant(
        name="numpyro_kernels.hmc_nominal_step",
        path="ebm_ppl/numpyro/hmc.py",
        old="epsilon = (trajectory_length / num_steps).astype(jnp.result_type(step_size))",
        new="epsilon = jnp.asarray(nominal).astype(jnp.result_type(step_size))",
        why="leapfrog with the nominal eps, not tau/L (trajectory length drifts, issue 17)",
        tests=("tests/numpyro/test_numpyro_dropin.py::test_hmc_integrates_with_trajectory_length_over_num_steps",),
    ),
    Mutant(
        name="numpyro_kernels.hmc_jitter_one_sided",
        path="ebm_ppl/numpyro/hmc.py",
        old="jnp.result_type(step_size), -1.0, 1.0)",
        new="jnp.result_type(step_size), 0.0, 1.0)",
        why="step-size jitter drawn in eps(1, 1 + j) instead of eps(1 - j, 1 + j)",
        tests=_ADAPTER_TESTS,
    ),
    # ------------------------------------------------------------ mass.py
    Mutant(
        name="numpyro_kernels.mass_dense_sqrt_untransposed",
        path="ebm_ppl/numpyro/mass.py",
        old="sqrt = jax.scipy.linalg.solve_triangular(sqrt_inv, eye, lower=True).T",
        new="sqrt = jax.scipy.linalg.solve_triangular(sqrt_inv, eye, lower=True)",
        why="M^{1/2} = L^{-1} instead of L^{-T} (L L^T = M^{-1})",
        tests=_ADAPTER_TESTS,
    ),
    Mutant(
        name="numpyro_kernels.mass_diag_sqrt_inverted",
        path="ebm_ppl/numpyro/mass.py",
        old="sqrt_inv = jnp.sqrt(inverse_mass_matrix)",
        new="sqrt_inv = 1.0 / jnp.sqrt(inverse_mass_matrix)",
        why="diagonal M^{-1/2} computed from M instead of M^{-1}",
        tests=_ADAPTER_TESTS,
    ),
    Mutant(
        name="numpyro_kernels.mass_single_group_unmasked",
        path="ebm_ppl/numpyro/mass.py",
        old="(len(self.dense_groups) == 1 and not self.diagonal_groups)",
        new="len(self.dense_groups) == 1",
        why="one dense group plus diagonal sites adapted as one full dense matrix",
        tests=_ADAPTER_TESTS,
    ),
    # ------------------------------------------------------------ tempering.py
    Mutant(
        name="numpyro_kernels.tempering_step_size_of_hottest",
        path=_NP_TEMPERING,
        old="state._replace(step_size=jnp.asarray(step_sizes[0], state.step_size.dtype))",
        new="state._replace(step_size=jnp.asarray(step_sizes[-1], state.step_size.dtype))",
        why="NumPyro's step_size reports the hottest replica's step instead of the cold one's",
        tests=_TEMPERING_TESTS,
    ),
    Mutant(
        name="numpyro_kernels.tempering_target_shift_sign",
        path=_NP_TEMPERING,
        old='"replica_acceptance": stats["replica_acceptance"] + shift}',
        new='"replica_acceptance": stats["replica_acceptance"] - shift}',
        why="a traced target shifts the replicas' acceptance the wrong way (mirror target)",
        tests=(_TEMPERING_TESTS[0] + "::test_traced_target_steers_every_replica",),
    ),
]
