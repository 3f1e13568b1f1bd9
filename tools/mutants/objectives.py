"""Mutations of the objectives maths (see ``tools/mutants/base.py`` for the fields)."""

from tools.mutants.base import Mutant

__all__ = ["MUTANTS"]

_SM = "ebm_ppl/objectives/score_matching.py"
_CD = "ebm_ppl/objectives/contrastive_divergence.py"
_NCE = "ebm_ppl/objectives/nce.py"

_SM_REF = "tests/objectives/test_score_matching_reference.py"
_CD_REF = "tests/objectives/test_contrastive_divergence_reference.py"
_NCE_REF = "tests/objectives/test_nce_reference.py"
_PTCD = "tests/objectives/test_cd_tempering.py"

#: The lines of ``contrastive_divergence._loss`` that run the chains (unchanged by
#: ``cd_no_stop_gradient``).
_CD_CHAINS = (
    "    if config.num_replicas:  # caches rebuilt under the new parameters, as init does\n"
    "        states = jax.vmap(lambda x: init_replicas(config.kernel, x, logdensity_fn))(start)\n"
    "    else:\n"
    "        states = init_chains(config.kernel, logdensity_fn, start)\n"
    "    chains, infos = run_from_states(config.kernel, logdensity_fn, states,\n"
    "                                    jax.random.split(key_mcmc, config.num_steps))\n"
)

MUTANTS: list[Mutant] = [
    # ------------------------------------------------------------------ exact SM
    Mutant(
        name="objectives.sm_laplacian_sign",
        path=_SM,
        old="value = jnp.mean(half_sq - lap)",
        new="value = jnp.mean(half_sq + lap)",
        why="SM: trace of the Hessian with the wrong sign (score convention mixed up)",
        tests=(_SM_REF,),
    ),
    Mutant(
        name="objectives.sm_missing_half",
        path=_SM,
        old="return 0.5 * jnp.sum(grad**2), laplacian",
        new="return jnp.sum(grad**2), laplacian",
        why="SM: ||grad E||^2 without its factor 1/2",
        tests=(_SM_REF,),
    ),
    Mutant(
        name="objectives.sm_noise_variance_as_scale",
        path=_SM,
        old="return batch + sigma * jax.random.normal(key_noise, batch.shape, batch.dtype), rng_key",
        new="return batch + sigma**2 * jax.random.normal(key_noise, batch.shape, batch.dtype), rng_key",
        why="smoothed SM/SSM: noise variance sigma used as its scale (x + sigma^2 z)",
        tests=(_SM_REF,),
    ),
    # ------------------------------------------------------------------ DSM
    Mutant(
        name="objectives.dsm_target_sign",
        path=_SM,
        old="residual = grad - jnp.reshape(z, (-1,)) / s",
        new="residual = grad + jnp.reshape(z, (-1,)) / s",
        why="DSM: target score z/sigma with the wrong sign for the energy convention",
        tests=(_SM_REF,),
    ),
    Mutant(
        name="objectives.dsm_target_variance",
        path=_SM,
        old="residual = grad - jnp.reshape(z, (-1,)) / s",
        new="residual = grad - jnp.reshape(z, (-1,)) / s**2",
        why="DSM: target z/sigma^2 (the score of x~ given x written with sigma^2 in place of sigma)",
        tests=(_SM_REF,),
    ),
    Mutant(
        name="objectives.dsm_noise_variance_as_scale",
        path=_SM,
        old="x_noisy = jnp.reshape(x + s * z, (-1,))",
        new="x_noisy = jnp.reshape(x + s**2 * z, (-1,))",
        why="DSM: perturbation x + sigma^2 z (variance used as the noise scale)",
        tests=(_SM_REF,),
    ),
    Mutant(
        name="objectives.dsm_multiscale_weight_missing",
        path=_SM,
        old="weight = s**2 if config.multi_scale else 1.0",
        new="weight = 1.0",
        why="multi-scale DSM: the sigma^2 level weighting forgotten",
        tests=(_SM_REF,),
    ),
    Mutant(
        name="objectives.dsm_multiscale_weight_sigma",
        path=_SM,
        old="weight = s**2 if config.multi_scale else 1.0",
        new="weight = s if config.multi_scale else 1.0",
        why="multi-scale DSM: levels weighted by sigma instead of sigma^2",
        tests=(_SM_REF,),
    ),
    Mutant(
        name="objectives.dsm_multiscale_last_level_never_drawn",
        path=_SM,
        old="idx = jax.random.randint(key_level, (batch.shape[0],), 0, len(config.sigmas))",
        new="idx = jax.random.randint(key_level, (batch.shape[0],), 0, len(config.sigmas) - 1)",
        why="multi-scale DSM: randint's maxval taken as inclusive, the smallest level never drawn",
        tests=(_SM_REF,),
    ),
    # ------------------------------------------------------------------ SSM
    Mutant(
        name="objectives.ssm_hessian_sign",
        path=_SM,
        old="return first - jnp.mean(quad), half_sq, jnp.mean(quad)",
        new="return first + jnp.mean(quad), half_sq, jnp.mean(quad)",
        why="SSM: v^T H v with the wrong sign (the score-convention plus sign kept)",
        tests=(_SM_REF,),
    ),
    Mutant(
        name="objectives.ssm_projections_unit_norm",
        path=_SM,
        old="v = jax.random.normal(rng_key, shape, batch.dtype)",
        new="v = jax.random.normal(rng_key, shape, batch.dtype); "
            "v = v / jnp.linalg.norm(v, axis=-1, keepdims=True)",
        why="SSM: Gaussian projections normalised to the unit sphere, so E[vv^T] = I/d, not I",
        tests=(_SM_REF,),
    ),
    Mutant(
        name="objectives.ssm_plain_square_of_mean",
        path=_SM,
        old="first = jnp.mean(0.5 * jnp.sum(vs * grads, axis=-1) ** 2)",
        new="first = 0.5 * jnp.mean(jnp.sum(vs * grads, axis=-1)) ** 2",
        why="plain SSM: square of the mean projection instead of the mean of the squares",
        tests=(_SM_REF,),
    ),
    # ------------------------------------------------------------------ CD
    Mutant(
        name="objectives.cd_negative_term_sign",
        path=_CD,
        old="value = jnp.mean(energy_pos) - jnp.mean(energy_neg)",
        new="value = jnp.mean(energy_pos) + jnp.mean(energy_neg)",
        why="CD: the negatives' energy term with the wrong sign",
        tests=(_CD_REF,),
    ),
    Mutant(
        # either stop_gradient alone keeps the gradient off the chains, so removing one is
        # an equivalent mutant: the bug is the two forgotten (one statement, two lines)
        name="objectives.cd_no_stop_gradient",
        path=_CD,
        old="frozen = jax.lax.stop_gradient(params)\n"
            "    logdensity_fn = Potential.from_energy(partial(energy_fn, frozen)).logdensity_fn\n"
            + _CD_CHAINS + "    negatives = jax.lax.stop_gradient(chains.position)",
        new="frozen = params\n"
            "    logdensity_fn = Potential.from_energy(partial(energy_fn, frozen)).logdensity_fn\n"
            + _CD_CHAINS + "    negatives = chains.position",
        why="CD: no stop_gradient on the negatives: the gradient flows through the chains",
        tests=(_CD_REF,),
    ),
    Mutant(
        name="objectives.cd_regularizer_square_of_mean",
        path=_CD,
        old="value = value + config.alpha * (jnp.mean(energy_pos**2) + jnp.mean(energy_neg**2))",
        new="value = value + config.alpha * (jnp.mean(energy_pos) ** 2 + jnp.mean(energy_neg) ** 2)",
        why="CD: energy-magnitude penalty on the squared mean energy, not the mean squared energy",
        tests=(_CD_REF,),
    ),
    Mutant(
        name="objectives.cd_reinit_prob_inverted",
        path=_CD,
        old="restart = jax.random.bernoulli(key_reinit, config.reinit_prob, (num,))",
        new="restart = jax.random.bernoulli(key_reinit, 1.0 - config.reinit_prob, (num,))",
        why="PCD: chains restarted with probability 1 - reinit_prob (keep/restart inverted)",
        tests=(_CD_REF,),
    ),
    Mutant(
        name="objectives.cd_pt_replicas_collapsed",
        path=_CD,
        old="states = jax.vmap(lambda x: init_replicas(config.kernel, x, logdensity_fn))(start)",
        new="states = init_chains(config.kernel, logdensity_fn, start[:, 0])",
        why="PT-CD: every replica restarted at the cold one's position at each update "
            "(the hot replicas' travel between modes is lost)",
        tests=(_PTCD,),
    ),
    Mutant(
        name="objectives.cd_pt_buffer_keeps_old_replicas",
        path=_CD,
        old="kept = chains.replicas.position if config.num_replicas else chains.position",
        new="kept = start if config.num_replicas else chains.position",
        why="PT-CD: the advanced replicas are not written back to the buffer",
        tests=(_PTCD,),
    ),
    Mutant(
        name="objectives.cd_noise_range",
        path=_CD,
        old="return state.low + u * (state.high - state.low)",
        new="return state.low + u * state.high",
        why="PCD: restart noise U(low, low + high) instead of U(low, high)",
        tests=(_CD_REF,),
    ),
    # ------------------------------------------------------------------ NCE
    Mutant(
        name="objectives.nce_missing_noise_log_density",
        path=_NCE,
        old="h_data = -energy_data - log_z - log_q_data - log_nu",
        new="h_data = -energy_data - log_z - log_nu",
        why="NCE: data log-odds without the noise log density log q(x)",
        tests=(_NCE_REF,),
    ),
    Mutant(
        name="objectives.nce_missing_log_z_noise",
        path=_NCE,
        old="h_noise = -energy_noise - log_z - log_q_noise - log_nu",
        new="h_noise = -energy_noise - log_q_noise - log_nu",
        why="NCE: noise log-odds without log Z",
        tests=(_NCE_REF,),
    ),
    Mutant(
        name="objectives.nce_log_nu_sign",
        path=_NCE,
        old="log_nu = float(np.log(noise_ratio))",
        new="log_nu = -float(np.log(noise_ratio))",
        why="NCE: log-odds shifted by + log nu instead of - log nu",
        tests=(_NCE_REF,),
    ),
    Mutant(
        name="objectives.nce_noise_term_unweighted",
        path=_NCE,
        old="value = -jnp.mean(jax.nn.log_sigmoid(h_data)) - noise_ratio * jnp.mean(",
        new="value = -jnp.mean(jax.nn.log_sigmoid(h_data)) - jnp.mean(",
        why="NCE: the noise term not weighted by the noise ratio nu",
        tests=(_NCE_REF,),
    ),
    Mutant(
        name="objectives.nce_noise_draw_transposed_factor",
        path=_NCE,
        old="y_flat = gauss.mean + z @ gauss.scale_tril.T",
        new="y_flat = gauss.mean + z @ gauss.scale_tril",
        why="NCE: Gaussian noise drawn with L^T (covariance L^T L, not the fitted L L^T)",
        tests=(_NCE_REF,),
    ),
    Mutant(
        name="objectives.nce_gaussian_log_det_sign",
        path=_NCE,
        old="return -0.5 * jnp.sum(white**2, axis=-1) - log_det - 0.5 * dim * jnp.log(2 * jnp.pi)",
        new="return -0.5 * jnp.sum(white**2, axis=-1) + log_det - 0.5 * dim * jnp.log(2 * jnp.pi)",
        why="NCE: Gaussian noise log density with + log det L",
        tests=(_NCE_REF,),
    ),
]
