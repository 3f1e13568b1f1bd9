"""Mutations of the diagnostics maths (see ``tools/mutants/__init__.py`` for the fields)."""

from tools.mutants.base import Mutant

__all__ = ["MUTANTS"]

_KSD = "ebm_ppl/diagnostics/ksd.py"
_STEIN = "ebm_ppl/diagnostics/stein_test.py"
_MMD = "ebm_ppl/diagnostics/mmd.py"
_AIS = "ebm_ppl/diagnostics/ais.py"
_ULA = "ebm_ppl/diagnostics/ula_bias.py"
_SUM = "ebm_ppl/diagnostics/summaries.py"
_DRIFT = "ebm_ppl/diagnostics/drift.py"
_HEALTH = "ebm_ppl/sampling/health.py"

_T_KSD_DIRECT = "tests/diagnostics/test_diagnostics.py::test_ksd_matches_direct_numpy"
_T_KSD_REF = "tests/diagnostics/test_ksd_reference.py"
_T_MMD_BRUTE = "tests/diagnostics/test_goodness_of_fit.py::test_mmd_statistic_matches_brute_force"
_T_MMD_REF = "tests/diagnostics/test_mmd_reference.py"
_T_AIS = "tests/diagnostics/test_ais_closed_form.py"
_T_ULA = "tests/diagnostics/test_ula_bias_mcse.py"
_T_SUM = "tests/diagnostics/test_summary_verdicts.py"
_T_DRIFT = "tests/diagnostics/test_drift_calibration.py"
_T_RHAT = "tests/sampling/test_sampling_fixed_cost.py::test_rank_rhat_equals_arviz"

MUTANTS: list[Mutant] = [
    # ------------------------------------------------------------------ KSD (Stein kernel)
    Mutant(
        name="diagnostics.ksd_imq_trace_no_dim",
        path=_KSD,
        old="- 2.0 * beta * d * u ** (beta - 1.0)",
        new="- 2.0 * beta * u ** (beta - 1.0)",
        why="IMQ trace term tr grad_x grad_y k misses the factor d",
        tests=(_T_KSD_DIRECT,),
    ),
    Mutant(
        name="diagnostics.ksd_imq_cross_sign",
        path=_KSD,
        old="- 2.0 * beta * u ** (beta - 1.0) * dr",
        new="+ 2.0 * beta * u ** (beta - 1.0) * dr",
        why="IMQ score-gradient cross terms with the wrong sign",
        tests=(_T_KSD_DIRECT,),
    ),
    Mutant(
        name="diagnostics.ksd_imq_second_order_exponent",
        path=_KSD,
        old="- 4.0 * beta * (beta - 1.0) * u ** (beta - 2.0) * r2",
        new="- 4.0 * beta * (beta - 1.0) * u ** (beta - 1.0) * r2",
        why="IMQ second derivative with exponent beta-1 instead of beta-2",
        tests=(_T_KSD_DIRECT,),
    ),
    Mutant(
        name="diagnostics.ksd_rbf_trace_sign",
        path=_KSD,
        old="k * (ss + dr * inv + d * inv - r2 * inv**2)",
        new="k * (ss + dr * inv + d * inv + r2 * inv**2)",
        why="RBF trace term d/l^2 + r^2/l^4 instead of d/l^2 - r^2/l^4",
        tests=(_T_KSD_DIRECT,),
    ),
    Mutant(
        name="diagnostics.ksd_u_statistic_keeps_diagonal",
        path=_KSD,
        old='include_diag=statistic == "v", block_size=_block_size(n, 1, block_size)',
        new='include_diag=True, block_size=_block_size(n, 1, block_size)',
        why="U-statistic sums the i == j terms (V-statistic numerator over n(n-1))",
        tests=(_T_KSD_DIRECT,),
    ),
    Mutant(
        name="diagnostics.ksd_u_statistic_over_n_squared",
        path=_KSD,
        old='float(n * (n - 1) if statistic == "u" else n * n)',
        new="float(n * n)",
        why="U-statistic normalised by n^2 instead of n(n-1)",
        tests=(_T_KSD_DIRECT,),
    ),
    Mutant(
        name="diagnostics.ksd_median_bandwidth_no_sqrt",
        path=_KSD,
        old="med = jnp.sqrt(jnp.median(r2[iu]))",
        new="med = jnp.median(r2[iu])",
        why="median heuristic returns the median squared distance, not the distance",
        tests=(_T_KSD_DIRECT,),
    ),
    # ------------------------------------------------------------------ KSD test (bootstrap)
    Mutant(
        name="diagnostics.stein_markov_weights_no_cumsum",
        path=_STEIN,
        old="jnp.cumsum(flips.astype(jnp.int32), axis=0)",
        new="flips.astype(jnp.int32)",
        why="Markov bootstrap: sign flips not accumulated (autocorrelation (1-2a)^2, not (1-2a)^k)",
        tests=(_T_KSD_REF,),
    ),
    Mutant(
        name="diagnostics.stein_rademacher_not_centred",
        path=_STEIN,
        old="return jax.random.rademacher(key_flip, (n, num_bootstrap), dtype)",
        new="return jax.random.bernoulli(key_flip, 0.5, (n, num_bootstrap)).astype(dtype)",
        why="wild-bootstrap weights in {0, 1} (not centred) instead of +-1",
        tests=(_T_KSD_REF,),
    ),
    Mutant(
        name="diagnostics.stein_flip_prob_without_margin",
        path=_STEIN,
        old="np.clip(1.0 / (1.0 + 5.0 * tau)",
        new="np.clip(1.0 / (1.0 + tau)",
        why="Markov flip probability 1/(1+tau): the sign process decorrelates as fast as the chain",
        tests=(_T_KSD_REF,),
    ),
    Mutant(
        name="diagnostics.stein_flip_prob_max_ess",
        path=_STEIN,
        old="ess = float(np.nanmin(ess))",
        new="ess = float(np.nanmax(ess))",
        why="Markov flip probability from the best-mixing coordinate (largest ESS)",
        tests=(_T_KSD_REF,),
    ),
    Mutant(
        name="diagnostics.stein_statistic_over_n",
        path=_STEIN,
        old='norm = (n - 1) if statistic == "u" else n',
        new="norm = n",
        why="test statistic (1/n) sum_{i!=j} instead of n * KSD_u^2 = (1/(n-1)) sum_{i!=j}",
        tests=(_T_KSD_REF,),
    ),
    Mutant(
        name="diagnostics.stein_p_value_can_be_zero",
        path=_STEIN,
        old="p_value = (1.0 + jnp.sum(boot >= stat)) / (1.0 + num_bootstrap)",
        new="p_value = jnp.mean(boot >= stat)",
        why="bootstrap p-value #{B >= T}/M (can be 0) instead of (1 + #)/(1 + M)",
        tests=(_T_KSD_REF,),
    ),
    # ------------------------------------------------------------------ MMD
    Mutant(
        name="diagnostics.mmd_biased_within_x",
        path=_MMD,
        old="statistic = float(k0[:n, :n].sum() / (n * (n - 1))",
        new="statistic = float(k0[:n, :n].sum() / (n * n)",
        why="MMD^2: within-sample term of x normalised like the biased V-statistic",
        tests=(_T_MMD_BRUTE,),
    ),
    Mutant(
        name="diagnostics.mmd_permutes_first_sample_only",
        path=_MMD,
        old="jax.random.bits(rng_key, (num, total), jnp.uint32)",
        new="jax.random.bits(rng_key, (num, n), jnp.uint32)",
        why="permutation shuffles only within the first sample (labels never exchanged)",
        tests=(_T_MMD_REF,),
    ),
    Mutant(
        name="diagnostics.mmd_permutation_cross_term_factor",
        path=_MMD,
        old="- 2.0 * s_xy / (n * m)",
        new="- s_xy / (n * m)",
        why="permuted MMD^2 statistics with the cross term missing its factor 2",
        tests=(_T_MMD_REF,),
    ),
    Mutant(
        name="diagnostics.mmd_permutation_yy_term",
        path=_MMD,
        old="s_yy = jnp.sum(row) - 2.0 * s_xy - s_xx",
        new="s_yy = jnp.sum(row) - s_xy - s_xx",
        why="S_yy = 1'K1 - S_xy - S_xx forgets that K is symmetric (S_xy counted once)",
        tests=(_T_MMD_REF,),
    ),
    # ------------------------------------------------------------------ AIS
    Mutant(
        name="diagnostics.ais_weight_uses_beta_not_increment",
        path=_AIS,
        old="log_w = log_w + (beta - beta_prev) * jax.vmap(log_ratio)(x)",
        new="log_w = log_w + beta * jax.vmap(log_ratio)(x)",
        why="AIS incremental weight with beta_k instead of beta_k - beta_{k-1}",
        tests=(_T_AIS,),
    ),
    Mutant(
        name="diagnostics.ais_log_mean_of_log_weights",
        path=_AIS,
        old="return jax.scipy.special.logsumexp(log_w) - jnp.log(log_w.shape[0])",
        new="return jnp.mean(log_w)",
        why="log Z as the mean of log w (biased by Jensen) instead of the log of the mean of w",
        tests=(_T_AIS,),
    ),
    Mutant(
        name="diagnostics.ais_tempered_path_double_base",
        path=_AIS,
        old="return log_base(y) + beta * log_ratio(y)",
        new="return (1.0 - beta) * log_base(y) + beta * log_ratio(y)",
        why="tempered target mixes the two path forms: (1-b) log p0 + b (log p - log p0)",
        tests=(_T_AIS,),
    ),
    Mutant(
        name="diagnostics.ais_delta_stderr_no_sqrt_n",
        path=_AIS,
        old="stderr = float(jnp.std(rel, ddof=1) / math.sqrt(num_chains))",
        new="stderr = float(jnp.std(rel, ddof=1) / num_chains)",
        why="delta-method standard error sd(w)/(N mean w) instead of sd(w)/(sqrt(N) mean w)",
        tests=(_T_AIS,),
    ),
    Mutant(
        name="diagnostics.ais_sigmoid_not_rescaled",
        path=_AIS,
        old="return (s - s[0]) / (s[-1] - s[0])",
        new="return s / s[-1]",
        why="sigmoid schedule not shifted: beta_0 > 0, so the base is never the start",
        tests=(_T_AIS,),
    ),
    # ------------------------------------------------------------------ ULA bias / MCSE
    Mutant(
        name="diagnostics.ula_mean_mcse_uses_n",
        path=_ULA,
        old='"mean_mcse": sd / np.sqrt(ess_x)',
        new='"mean_mcse": sd / np.sqrt(n)',
        why="MCSE of the mean with the number of draws instead of the ESS",
        tests=(_T_ULA,),
    ),
    Mutant(
        name="diagnostics.ula_var_mcse_uses_ess_of_x",
        path=_ULA,
        old='"var_mcse": sd_sq / np.sqrt(ess_sq)',
        new='"var_mcse": sd_sq / np.sqrt(ess_x)',
        why="MCSE of the variance with the ESS of x instead of that of (x - mean)^2",
        tests=(_T_ULA,),
    ),
    Mutant(
        name="diagnostics.ula_relative_bias_inverted",
        path=_ULA,
        old='var_rel = m_ula["var"] / m_ref["var"] - 1.0',
        new='var_rel = m_ref["var"] / m_ula["var"] - 1.0',
        why="relative variance bias v/v_h - 1 instead of v_h/v - 1",
        tests=(_T_ULA,),
    ),
    Mutant(
        name="diagnostics.ula_ratio_error_term",
        path=_ULA,
        old="return np.sqrt((sa / b) ** 2 + (a * sb / b**2) ** 2)",
        new="return np.sqrt((sa / b) ** 2 + (sb / b) ** 2)",
        why="delta-method error of a/b drops the factor a/b of the denominator's error",
        tests=(_T_ULA,),
    ),
    Mutant(
        name="diagnostics.ula_richardson_coefficient",
        path=_ULA,
        old='"var": 2 * m_half["var"] - m_ula["var"],',
        new='"var": 2 * m_ula["var"] - m_half["var"],',
        why="Richardson reference 2 m_h - m_{h/2} instead of 2 m_{h/2} - m_h",
        tests=(_T_ULA,),
    ),
    Mutant(
        name="diagnostics.ula_richardson_column_factor",
        path=_ULA,
        old='table["var_rel_bias_richardson"] = 2 * (m_ula["var"] - m_half["var"])',
        new='table["var_rel_bias_richardson"] = (m_ula["var"] - m_half["var"])',
        why="Richardson cross-check bias m_h - m_{h/2} without the factor 2",
        tests=(_T_ULA,),
    ),
    # ------------------------------------------------------------------ summary verdicts
    Mutant(
        name="diagnostics.summary_rhat_comparison_inverted",
        path=_SUM,
        old='if value <= THRESHOLDS["r_hat_pass"]:',
        new='if value >= THRESHOLDS["r_hat_pass"]:',
        why="R-hat passes when above 1.01 (comparison inverted)",
        tests=(_T_SUM,),
    ),
    Mutant(
        name="diagnostics.summary_ess_comparison_inverted",
        path=_SUM,
        old='return "warn" if value >= THRESHOLDS["ess_warn"] else "fail"',
        new='return "warn" if value <= THRESHOLDS["ess_warn"] else "fail"',
        why="ESS below 100 warns instead of failing (comparison inverted)",
        tests=(_T_SUM,),
    ),
    Mutant(
        name="diagnostics.summary_p_value_comparison_inverted",
        path=_SUM,
        old='return "warn" if p_value >= THRESHOLDS["ksd_p_warn"] else "fail"',
        new='return "warn" if p_value <= THRESHOLDS["ksd_p_warn"] else "fail"',
        why="a tiny KSD p-value warns instead of failing (comparison inverted)",
        tests=(_T_SUM,),
    ),
    Mutant(
        name="diagnostics.summary_overall_is_best",
        path=_SUM,
        old="worst = max(statuses, key=lambda s: order[s], default=\"n/a\")",
        new="worst = min(statuses, key=lambda s: order[s], default=\"n/a\")",
        why="overall status is the best row of the verdict, not the worst",
        tests=(_T_SUM,),
    ),
    Mutant(
        name="diagnostics.summary_ula_ignores_mcse",
        path=_SUM,
        old="if abs(bias) + 2 * se < tol:",
        new="if abs(bias) < tol:",
        why="ULA bias passes on the point estimate, ignoring its Monte-Carlo error",
        tests=(_T_SUM,),
    ),
    Mutant(
        name="diagnostics.summary_divergence_fraction_per_chain",
        path=_SUM,
        old="frac = total / (num_chains * num_draws)",
        new="frac = total / num_draws",
        why="divergence fraction over one chain's draws instead of all draws",
        tests=(_T_SUM,),
    ),
    # ------------------------------------------------------------------ drift
    Mutant(
        name="diagnostics.drift_batch_means_se",
        path=_DRIFT,
        old="se = batches.std(axis=-1, ddof=1) / np.sqrt(b)",
        new="se = batches.std(axis=-1, ddof=1) / b",
        why="batch-means standard error sd/b instead of sd/sqrt(b)",
        tests=(_T_DRIFT,),
    ),
    # ------------------------------------------------------------------ R-hat (health)
    Mutant(
        name="diagnostics.rhat_between_ddof",
        path=_HEALTH,
        old="between = num_draws * np.var(np.mean(z, axis=2), axis=1, ddof=1)",
        new="between = num_draws * np.var(np.mean(z, axis=2), axis=1)",
        why="between-chain variance with ddof=0",
        tests=(_T_RHAT,),
    ),
    Mutant(
        name="diagnostics.rhat_blom_offset",
        path=_HEALTH,
        old="return special.ndtri((ranks - 3 / 8) / (n - 2 * 3 / 8 + 1))",
        new="return special.ndtri((ranks - 3 / 8) / (n + 1))",
        why="Blom normal scores (r - 3/8)/(n + 1) instead of (r - 3/8)/(n + 1/4)",
        tests=(_T_RHAT,),
    ),
    Mutant(
        name="diagnostics.rhat_bulk_only",
        path=_HEALTH,
        old="rhat = np.where(tail > bulk, tail, bulk)",
        new="rhat = bulk",
        why="R-hat ignores the folded (tail) R-hat: only the bulk one",
        tests=(_T_RHAT,),
    ),
    Mutant(
        name="diagnostics.rhat_split_overlaps",
        path=_HEALTH,
        old="split = np.concatenate([flat[:, :half], flat[:, num_draws - half:]], axis=0)",
        new="split = np.concatenate([flat[:, :half], flat[:, half:2 * half]], axis=0)",
        why="split R-hat with an odd number of draws drops the last draw, not the middle one",
        tests=(_T_RHAT,),
    ),
    # ------------------------------------------------------------------ tempered SMC
    Mutant(
        name="diagnostics.smc_incremental_weight_sign",
        path="ebm_ppl/diagnostics/smc_run.py",
        old="log_w = jnp.where(jnp.isfinite(ell), delta * ell, -jnp.inf)",
        new="log_w = jnp.where(jnp.isfinite(ell), -delta * ell, -jnp.inf)",
        why="incremental weight exp(-(beta_new - beta_old) l) with the sign of the step flipped",
        tests=("tests/diagnostics/test_smc_log_z.py",),
    ),
    Mutant(
        name="diagnostics.smc_mean_of_log_weights",
        path="ebm_ppl/diagnostics/smc_run.py",
        old="log_z = log_z + jax.scipy.special.logsumexp(log_w) - jnp.log(num_particles)",
        new="log_z = log_z + jnp.mean(log_w)",
        why="log Z increment as the mean of log weights instead of the log of their mean",
        tests=("tests/diagnostics/test_smc_log_z.py",),
    ),
    Mutant(
        name="diagnostics.smc_tempered_density_without_base",
        path="ebm_ppl/diagnostics/smc_run.py",
        old="return (1.0 - beta_new) * _sum_log_prob(base, y) + beta_new * logdensity_fn(y)",
        new="return beta_new * logdensity_fn(y)",
        why="mutation targets p^beta instead of p0^(1 - beta) p^beta (base term dropped)",
        tests=("tests/diagnostics/test_smc_log_z.py",),
    ),
    Mutant(
        name="diagnostics.smc_resample_ignores_weights",
        path="ebm_ppl/diagnostics/smc_run.py",
        old="weights = jax.nn.softmax(log_w)",
        new="weights = jnp.full(num_particles, 1.0 / num_particles)",
        why="particles resampled uniformly: the weights only enter log Z, not the draws",
        tests=("tests/diagnostics/test_smc_log_z.py",),
    ),
    Mutant(
        name="diagnostics.modes_rhat_comparison_inverted",
        path="ebm_ppl/diagnostics/modes.py",
        old='status = "fail" if np.any(r_hat > max_rhat) else "pass"',
        new='status = "fail" if np.any(r_hat < max_rhat) else "pass"',
        why="mode-weight verdict fails agreeing chains and passes stuck ones",
        tests=("tests/diagnostics/test_mode_weights.py",),
    ),
    Mutant(
        name="diagnostics.modes_mcse_without_ess",
        path="ebm_ppl/diagnostics/modes.py",
        old="mcse = np.sqrt(weights * (1 - weights)) / np.sqrt(ess)",
        new="mcse = np.sqrt(weights * (1 - weights)) / np.sqrt(num_chains * num_draws)",
        why="weight MCSE as if draws were independent (no ESS)",
        tests=("tests/diagnostics/test_mode_weights.py",),
    ),
]
