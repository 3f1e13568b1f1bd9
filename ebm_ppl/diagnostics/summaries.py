"""One-call diagnostic summary: ArviZ summary, per-chain table and a pass/warn/fail verdict.

R-hat and ESS come from ArviZ (never re-implemented); ebm_ppl adds what energy-based
models need: the KSD goodness-of-fit test against the potential, drift detection for
improper targets, and the ULA step-size bias.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import arviz as az
import numpy as np
import pandas as pd

from ebm_ppl.diagnostics._samples import posterior_array
from ebm_ppl.diagnostics.drift import drift_check
from ebm_ppl.diagnostics.stein_test import ksd_test
from ebm_ppl.errors import ImproperTargetWarning
from ebm_ppl.inference_data import read_config
from ebm_ppl.potential import Potential

__all__ = [
    "RULES",
    "STATUSES",
    "worst_status",
    "THRESHOLDS",
    "DiagnosticSummary",
    "dataframe_to_markdown",
    "p_value_status",
    "summary",
]

#: Verdict levels, best to worst (``"n/a"``: not computed).
STATUSES = ("pass", "warn", "fail")

#: Gate thresholds. R-hat: Vehtari et al. (2021) recommend < 1.01; ESS: at least 400
#: (100 per chain for 4 chains) for reliable R-hat and quantiles, < 100 fails; any
#: divergence warrants a look, > 1 % of draws fails; KSD p-value: the usual 5 % / 1 %.
THRESHOLDS = {
    "r_hat_pass": 1.01,
    "r_hat_warn": 1.05,
    "ess_pass": 400.0,
    "ess_warn": 100.0,
    "divergence_fail_fraction": 0.01,
    "ksd_p_pass": 0.05,
    "ksd_p_warn": 0.01,
}

#: The rule column of the verdict, written from :data:`THRESHOLDS` (one source of truth).
RULES = {
    "r_hat": f"<= {THRESHOLDS['r_hat_pass']:g} pass, <= {THRESHOLDS['r_hat_warn']:g} warn",
    "ess": f">= {THRESHOLDS['ess_pass']:g} pass, >= {THRESHOLDS['ess_warn']:g} warn",
    "divergences": f"0 pass, <= {100 * THRESHOLDS['divergence_fail_fraction']:g}% warn",
    "p_value": f">= {THRESHOLDS['ksd_p_pass']:g} pass, >= {THRESHOLDS['ksd_p_warn']:g} warn",
    "ula_bias": "|bias| +/- 2 mcse vs tolerance",
    "drift": "persistent trend, |z| > z*",
}


def _fmt(value: Any, floatfmt: str = ".4g") -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "nan"
        return format(float(value), floatfmt)
    return str(value)


def dataframe_to_markdown(df: Any, *, index: bool = True, floatfmt: str = ".4g") -> str:
    """A GitHub-flavoured Markdown table of a ``pandas.DataFrame`` (no ``tabulate``).

    Parameters
    ----------
    df
        The table.
    index
        Include the index as the first column.
    floatfmt
        Format spec for floats.
    """
    columns = [str(c) for c in df.columns]
    rows = [[_fmt(v, floatfmt) for v in row] for row in df.itertuples(index=False)]
    if index:
        name = df.index.name or ""
        columns = [str(name)] + columns
        rows = [[str(i)] + r for i, r in zip(df.index, rows)]

    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(c) for c in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class DiagnosticSummary:
    """Result of :func:`summary`.

    Attributes
    ----------
    posterior
        ``arviz.summary`` table (mean, sd, HDI, MCSE, ESS, R-hat per coordinate).
    chains
        Per chain: draws, divergences, mean acceptance rate, step size, KSD statistic and
        p-value (with a potential), drift flag.
    verdict
        One row per check: ``value``, ``status`` (pass / warn / fail / n/a), ``rule``.
    status
        The worst status of the verdict.
    ksd_test, drift, ula_bias
        The underlying results (``None`` when not computed).
    """

    posterior: Any
    chains: Any
    verdict: Any
    status: str
    ksd_test: Any = None
    drift: Any = None
    ula_bias: Any = None

    def to_markdown(self) -> str:
        """Markdown with the verdict, per-chain and posterior tables."""
        parts = [
            f"**Overall: {self.status.upper()}**",
            "",
            "### Verdict",
            "",
            dataframe_to_markdown(self.verdict, index=False),
            "",
            "### Chains",
            "",
            dataframe_to_markdown(self.chains, index=False),
            "",
            "### Posterior",
            "",
            dataframe_to_markdown(self.posterior, index=True),
        ]
        return "\n".join(parts)

    def __str__(self) -> str:
        with _pandas_wide():
            return (
                f"Overall: {self.status.upper()}\n\nVerdict\n{self.verdict.to_string(index=False)}"
                f"\n\nChains\n{self.chains.to_string(index=False)}\n\nPosterior\n"
                f"{self.posterior.to_string()}"
            )


class _pandas_wide:
    def __enter__(self) -> None:
        self._ctx = pd.option_context("display.width", 200, "display.max_columns", 30)
        self._ctx.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)


def _stat(idata: Any, name: str) -> np.ndarray | None:
    stats = getattr(idata, "sample_stats", None)
    if stats is None or name not in stats:
        return None
    return np.asarray(stats[name].values)


def _status_rhat(value: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    if value <= THRESHOLDS["r_hat_pass"]:
        return "pass"
    return "warn" if value <= THRESHOLDS["r_hat_warn"] else "fail"


def _status_ess(value: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    if value >= THRESHOLDS["ess_pass"]:
        return "pass"
    return "warn" if value >= THRESHOLDS["ess_warn"] else "fail"


def p_value_status(p_value: float | None) -> str:
    """``"pass"``, ``"warn"``, ``"fail"`` (or ``"n/a"``) of a goodness-of-fit p-value.

    The thresholds are :data:`THRESHOLDS` ``ksd_p_pass`` and ``ksd_p_warn``; used for the
    KSD test of the draws and for the model-versus-data tests of a report.
    """
    if p_value is None or not np.isfinite(p_value):
        return "n/a"
    if p_value >= THRESHOLDS["ksd_p_pass"]:
        return "pass"
    return "warn" if p_value >= THRESHOLDS["ksd_p_warn"] else "fail"


def _status_ula(result: Any, kernel: str | None) -> tuple[str, str]:
    if result is None:
        if kernel == "ula":
            return "warn", "not estimated (ULA has O(h) bias; run diagnostics.ula_bias)"
        return "n/a", "exact kernel" if kernel else "n/a"
    bias, se, tol = result.max_var_rel_bias, result.max_var_rel_bias_mcse, result.tolerance
    value = f"{bias:+.3g} ± {se:.2g}"
    if abs(bias) + 2 * se < tol:
        return "pass", value
    if abs(bias) - 2 * se > tol:
        return "fail", value
    return "warn", value


def _worst(statuses: list[str]) -> str:
    order = {"n/a": -1, "pass": 0, "warn": 1, "fail": 2}
    worst = max(statuses, key=lambda s: order[s], default="n/a")
    return "pass" if worst == "n/a" else worst


def worst_status(statuses: Any) -> str:
    """The worst of ``"pass"``/``"warn"``/``"fail"`` (``"n/a"`` entries ignored; ``"pass"``
    when nothing was computed)."""
    return _worst(list(statuses))


def summary(
    idata: Any,
    pot: Potential | None = None,
    *,
    ula_bias: Any = None,
    seed: int = 0,
    max_ksd_samples: int = 500,
    max_ksd_points: int = 2000,
    num_bootstrap: int = 500,
    var_names: list[str] | None = None,
) -> DiagnosticSummary:
    r"""ArviZ summary plus ebm_ppl's checks, with a pass/warn/fail verdict.

    Parameters
    ----------
    idata
        ``arviz.InferenceData`` from :func:`ebm_ppl.sample` (or any with a posterior).
    pot
        The target potential. Enables the KSD test (per chain and pooled, on at most
        ``max_ksd_samples`` evenly thinned draws per chain, Markov wild bootstrap) and
        the energy in the drift check.
    ula_bias
        A :class:`~ebm_ppl.diagnostics.ULABiasResult` to include in the verdict.
    seed
        Seed of the KSD bootstrap.
    max_ksd_samples
        Draws per chain kept for the KSD test (evenly thinned).
    max_ksd_points
        Draws kept in all (the pooled test costs :math:`O(n^2)` in their number): each
        chain keeps at most ``max_ksd_points // num_chains``, so many chains stay cheap.
    num_bootstrap
        Bootstrap replicates of the KSD test.
    var_names
        Variables for ``arviz.summary``.

    Returns
    -------
    DiagnosticSummary
        ``posterior``, ``chains``, ``verdict`` DataFrames, the overall ``status``, and
        ``to_markdown()`` / ``str()`` renderings.

    Notes
    -----
    Verdict rules: the maximum R-hat, the minimum bulk and tail ESS, the fraction of
    divergent draws and the pooled KSD p-value are compared with the pass and warn levels
    of :data:`THRESHOLDS` (the ``rule`` column, :data:`RULES`, is written from it); drift
    fails when any chain drifts; the ULA bias passes when :math:`|b| + 2\,\mathrm{mcse} <`
    tolerance, fails when :math:`|b| - 2\,\mathrm{mcse} >` tolerance, and warns otherwise
    (and when a ULA run has no bias estimate).

    References
    ----------
    Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), *Rank-normalization, folding,
    and localization: an improved R-hat*, https://arxiv.org/abs/1903.08008
    """
    config = read_config(idata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        post = az.summary(idata, var_names=var_names)
    num_chains = idata.posterior.sizes["chain"]
    num_draws = idata.posterior.sizes["draw"]

    chains = pd.DataFrame({"chain": np.arange(num_chains), "draws": num_draws})
    diverging = _stat(idata, "diverging")
    n_div = diverging.astype(bool).sum(axis=1) if diverging is not None else None
    chains["divergences"] = n_div if n_div is not None else np.nan
    acc = _stat(idata, "acceptance_rate")
    chains["acceptance_rate"] = acc.mean(axis=1) if acc is not None else np.nan
    step = _stat(idata, "step_size")
    chains["step_size"] = (
        np.nanmean(step.reshape(num_chains, num_draws, -1), axis=(1, 2))
        if step is not None and np.isfinite(step).any() else np.nan
    )

    test = None
    if pot is not None:
        try:
            draws = posterior_array(idata, pot)
        except ValueError:
            draws = None
        if draws is not None and np.all(np.isfinite(draws)):
            keep = max(1, min(max_ksd_samples, max_ksd_points // num_chains))
            thin = max(1, num_draws // keep)
            test = ksd_test(draws[:, ::thin][:, :keep], pot, seed=seed,
                            num_bootstrap=num_bootstrap)
            chains["ksd_statistic"] = test.per_chain_statistic
            chains["ksd_p_value"] = test.per_chain_p_value
    drift = None
    if num_draws >= 20:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImproperTargetWarning)
            drift = drift_check(idata, pot, warn=False)
        chains["drift"] = drift.per_chain

    rows = []
    r_hat = float(post["r_hat"].max()) if "r_hat" in post and num_chains > 1 else math.nan
    rows.append(("R-hat (max)", _fmt(r_hat), _status_rhat(r_hat), RULES["r_hat"]))
    for col, label in (("ess_bulk", "ESS bulk (min)"), ("ess_tail", "ESS tail (min)")):
        value = float(post[col].min()) if col in post else math.nan
        rows.append((label, _fmt(value, ".0f"), _status_ess(value), RULES["ess"]))
    if n_div is not None:
        total = int(n_div.sum())
        frac = total / (num_chains * num_draws)
        status = "pass" if total == 0 else (
            "warn" if frac <= THRESHOLDS["divergence_fail_fraction"] else "fail")
        rows.append(("Divergences", f"{total} ({100 * frac:.2g}%)", status,
                     RULES["divergences"]))
    else:
        rows.append(("Divergences", "n/a", "n/a", RULES["divergences"]))
    p = test.p_value if test is not None else None
    rows.append(("KSD p-value (pooled)", _fmt(p) if p is not None else "n/a", p_value_status(p),
                 RULES["p_value"]))
    ula_status, ula_value = _status_ula(ula_bias, config.get("kernel"))
    rows.append(("ULA variance bias", ula_value, ula_status, RULES["ula_bias"]))
    if drift is not None:
        flagged = np.flatnonzero(drift.per_chain).tolist()
        rows.append(("Drift / improper target", f"chains {flagged}" if flagged else "none",
                     "fail" if drift.drifting else "pass", RULES["drift"]))
    else:
        rows.append(("Drift / improper target", "n/a", "n/a", RULES["drift"]))
    verdict = pd.DataFrame(rows, columns=["check", "value", "status", "rule"])
    return DiagnosticSummary(
        posterior=post,
        chains=chains,
        verdict=verdict,
        status=_worst(list(verdict["status"])),
        ksd_test=test,
        drift=drift,
        ula_bias=ula_bias,
    )
