r"""Step-size bias of the unadjusted Langevin algorithm (ULA).

ULA, :math:`x_{k+1} = x_k + h\nabla\log p(x_k) + \sqrt{2h}\,\xi_k`, has no accept/reject
step: its stationary law :math:`\pi_h` differs from :math:`p` by :math:`O(h)`
(Talay & Tubaro 1990; Durmus & Moulines 2017). On the standard Gaussian it is
:math:`\mathcal N(0, \tfrac{2}{2-h} I)` (seed 000), so the relative variance bias is
:math:`\tfrac{2}{2-h} - 1 = \tfrac{h}{2-h}`. :func:`ula_bias` measures that bias on any
target by comparing a ULA run with an exact (Metropolis-adjusted) reference run, and/or
by step halving (Richardson extrapolation), next to the Monte-Carlo error.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import arviz as az
import numpy as np
import pandas as pd

from ebm_ppl._types import ArrayLikeTree
from ebm_ppl._validation import check_positive
from ebm_ppl.diagnostics._samples import is_inference_data, posterior_array
from ebm_ppl.diagnostics.ksd import ksd
from ebm_ppl.kernels.blackjax import mala
from ebm_ppl.kernels.ula import ula as ula_kernel
from ebm_ppl.potential import Potential
from ebm_ppl.sampling import sample

__all__ = ["ULABiasResult", "ula_bias", "moment_errors", "REFERENCES"]

#: ``"mala"``: an exact MALA run (step size adapted by dual averaging) is the reference;
#: ``"richardson"``: ULA at ``h/2``, with the first-order extrapolation
#: ``bias(h) ≈ 2 (m_h - m_{h/2})``; ``"both"``: MALA reference plus the Richardson
#: estimate as a cross-check.
REFERENCES = ("mala", "richardson", "both")


class ULABiasResult(NamedTuple):
    r"""Bias of ULA at one step size.

    Attributes
    ----------
    step_size
        The ULA step size :math:`h`.
    table
        ``pandas.DataFrame``, one row per coordinate: ULA and reference means and
        variances, ``mean_bias`` and ``var_rel_bias`` (:math:`v_h/v - 1`) with their
        Monte-Carlo standard errors (``*_mcse``) and z-scores, and, with step halving,
        ``var_rel_bias_richardson``.
    max_var_rel_bias
        The coordinate with the largest :math:`|v_h/v - 1|`: its signed value.
    max_var_rel_bias_mcse
        Its Monte-Carlo standard error.
    max_abs_mean_bias_z
        Largest :math:`|\text{mean bias}| / \text{mcse}` over coordinates.
    ksd_ula, ksd_reference, ksd_gap
        IMQ KSD of the ULA and reference draws and their difference (NaN if not
        computed).
    suggested_step_size
        Largest :math:`h'` whose predicted relative variance bias is below
        ``tolerance``, from the first-order scaling :math:`b(h') \approx b(h)\,h'/h` with
        the upper bound :math:`|b(h)| + 2\,\mathrm{mcse}`.
    tolerance
        The tolerance used for the suggestion.
    reference
        The reference method.
    ula, reference_idata
        The ULA run and the reference run (``InferenceData``; None for ``richardson``
        the reference is the half-step ULA run).
    """

    step_size: float
    table: Any
    max_var_rel_bias: float
    max_var_rel_bias_mcse: float
    max_abs_mean_bias_z: float
    ksd_ula: float
    ksd_reference: float
    ksd_gap: float
    suggested_step_size: float
    tolerance: float
    reference: str
    ula: Any
    reference_idata: Any

    def __str__(self) -> str:
        ksd = (f"KSD gap {self.ksd_gap:.4g}" if np.isfinite(self.ksd_gap)
               else "KSD not computed (compute_ksd=False)")
        return (
            f"ULA bias at h={self.step_size:.4g}: max relative variance bias "
            f"{self.max_var_rel_bias:+.4f} ± {self.max_var_rel_bias_mcse:.4f} (MCSE), "
            f"{ksd}; suggested h <= {self.suggested_step_size:.4g} "
            f"for |bias| < {self.tolerance:g} (reference: {self.reference})"
        )


def moment_errors(draws: np.ndarray) -> dict[str, np.ndarray]:
    r"""Means and variances per coordinate with ESS-based Monte-Carlo errors.

    Parameters
    ----------
    draws
        ``(chain, draw, d)``.

    Returns
    -------
    dict
        ``mean``, ``mean_mcse``, ``var``, ``var_mcse`` (each shape ``(d,)``). The
        variance is the mean of :math:`(x - \bar x)^2`; both errors are
        :math:`\mathrm{sd}/\sqrt{\mathrm{ESS}}` with ArviZ's ``ess(method="mean")`` of
        :math:`x` and of :math:`(x - \bar x)^2` respectively.
    """
    draws = np.asarray(draws, dtype=float)
    d = draws.shape[-1]
    mean = draws.mean(axis=(0, 1))
    sq = (draws - mean) ** 2
    var = sq.mean(axis=(0, 1))
    ds = az.convert_to_dataset({"x": draws, "sq": sq})
    ess = az.ess(ds, method="mean")
    ess_x = np.asarray(ess["x"].values, float).reshape(d)
    ess_sq = np.asarray(ess["sq"].values, float).reshape(d)
    n = draws.shape[0] * draws.shape[1]
    ess_x = np.clip(np.nan_to_num(ess_x, nan=1.0), 1.0, None)
    ess_sq = np.clip(np.nan_to_num(ess_sq, nan=1.0), 1.0, None)
    sd = draws.reshape(n, d).std(axis=0, ddof=1)
    sd_sq = sq.reshape(n, d).std(axis=0, ddof=1)
    return {
        "mean": mean,
        "mean_mcse": sd / np.sqrt(ess_x),
        "var": var,
        "var_mcse": sd_sq / np.sqrt(ess_sq),
    }


def _ratio_error(a: np.ndarray, sa: np.ndarray, b: np.ndarray, sb: np.ndarray) -> np.ndarray:
    """Delta-method standard error of ``a / b`` for independent estimates."""
    return np.sqrt((sa / b) ** 2 + (a * sb / b**2) ** 2)


def _ksd_of(idata: Any, pot: Potential, max_samples: int) -> float:
    draws = posterior_array(idata, pot)
    per_chain = max(1, max_samples // draws.shape[0])
    thin = max(1, draws.shape[1] // per_chain)
    return ksd(draws[:, ::thin][:, :per_chain], pot).ksd


def _bias_table(ref_name: str, m_ula: dict, m_ref: dict, m_half: dict | None) -> pd.DataFrame:
    """Per-coordinate mean bias and relative variance bias with their Monte-Carlo errors
    (Richardson: from the ULA runs at ``h`` and ``h/2``)."""
    mean_bias = m_ula["mean"] - m_ref["mean"]
    if ref_name == "richardson":
        mean_bias_mcse = 2 * np.hypot(m_ula["mean_mcse"], m_half["mean_mcse"])
        var_rel = 2 * (m_ula["var"] - m_half["var"]) / m_ref["var"]
        var_rel_mcse = 2 * np.hypot(m_ula["var_mcse"], m_half["var_mcse"]) / np.abs(m_ref["var"])
    else:
        mean_bias_mcse = np.hypot(m_ula["mean_mcse"], m_ref["mean_mcse"])
        var_rel = m_ula["var"] / m_ref["var"] - 1.0
        var_rel_mcse = _ratio_error(m_ula["var"], m_ula["var_mcse"], m_ref["var"],
                                    m_ref["var_mcse"])
    table = pd.DataFrame({
        "mean_ula": m_ula["mean"],
        "mean_reference": m_ref["mean"],
        "mean_bias": mean_bias,
        "mean_bias_mcse": mean_bias_mcse,
        "mean_bias_z": mean_bias / mean_bias_mcse,
        "var_ula": m_ula["var"],
        "var_reference": m_ref["var"],
        "var_rel_bias": var_rel,
        "var_rel_bias_mcse": var_rel_mcse,
        "var_rel_bias_z": var_rel / var_rel_mcse,
    })
    if ref_name == "both":
        table["var_rel_bias_richardson"] = 2 * (m_ula["var"] - m_half["var"]) / m_ref["var"]
    table.index = [f"x[{i}]" for i in range(len(table))]
    return table


def ula_bias(
    pot: Potential,
    step_size: float,
    init: ArrayLikeTree,
    *,
    reference: str | Any = "mala",
    num_samples: int = 4000,
    num_warmup: int = 1000,
    num_chains: int = 4,
    seed: int = 0,
    tolerance: float = 0.05,
    ula: Any = None,
    compute_ksd: bool = True,
    ksd_max_samples: int = 2000,
    progress: bool = False,
) -> ULABiasResult:
    r"""Estimate the step-size bias of ULA on ``pot`` at ``step_size``.

    Runs ``ebm_ppl.sample(pot, kernels.ula(h), ...)`` and compares its moments with an
    exact reference:

    * ``reference="mala"``: a MALA run (Metropolis-adjusted, exact for any step size;
      its step size is adapted during warm-up);
    * ``reference="richardson"``: ULA at :math:`h/2`. With :math:`m_h = m + a h +
      O(h^2)`, :math:`\widehat{\text{bias}}(h) = 2(m_h - m_{h/2})` (first-order Richardson
      extrapolation; needs no exact sampler, biased at :math:`O(h^2)`);
    * ``reference="both"``: MALA, plus the Richardson column as a cross-check;
    * an ``InferenceData`` of exact draws, used as is.

    For each coordinate: mean bias :math:`\bar x_h - \bar x` and relative variance bias
    :math:`v_h / v - 1` with delta-method Monte-Carlo errors (ESS-based, ArviZ).

    Parameters
    ----------
    pot
        Target potential.
    step_size
        ULA step size :math:`h > 0`.
    init
        One initial position (or a batch of ``num_chains``), as in :func:`ebm_ppl.sample`.
    reference
        ``"mala"``, ``"richardson"``, ``"both"`` or an ``InferenceData``.
    num_samples, num_warmup, num_chains, seed, progress
        Passed to :func:`ebm_ppl.sample` (the reference uses ``seed + 1``).
    tolerance
        Acceptable relative variance bias for the suggested step size.
    ula
        An existing ULA ``InferenceData`` at ``step_size`` to reuse (skips that run).
    compute_ksd
        Also report the IMQ KSD of both runs (on at most ``ksd_max_samples`` thinned
        draws each) and their gap.

    Returns
    -------
    ULABiasResult

    Raises
    ------
    ValueError
        For a non-positive step size or tolerance, or an unknown reference.

    Notes
    -----
    The suggestion uses the first-order expansion :math:`b(h) = a h + O(h^2)` (for the
    Gaussian, :math:`h/(2-h) = h/2 + O(h^2)`), so :math:`h^\star = h\,\tau / (|b(h)| +
    2\,\mathrm{mcse})`, conservative when the bias is not resolved.

    References
    ----------
    Talay & Tubaro (1990), *Expansion of the global error for numerical schemes solving
    stochastic differential equations*, Stoch. Anal. Appl. 8(4).
    Durmus & Moulines (2017), https://arxiv.org/abs/1507.05021
    Roberts & Tweedie (1996), Bernoulli 2(4).

    Examples
    --------
    >>> import jax.numpy as jnp, ebm_ppl
    >>> pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2))
    >>> res = ula_bias(pot, 0.2, jnp.zeros(2), num_samples=2000)  # doctest: +SKIP
    >>> print(res)  # relative variance bias close to 2/(2-0.2) - 1 = 0.111  # doctest: +SKIP
    """
    if not isinstance(pot, Potential):
        raise TypeError(f"pot must be an ebm_ppl.Potential, got {type(pot).__name__}")
    check_positive("step_size", step_size)
    check_positive("tolerance", tolerance)
    ref_idata = reference if is_inference_data(reference) else None
    ref_name = "idata" if ref_idata is not None else reference
    if ref_idata is None and reference not in REFERENCES:
        raise ValueError(
            f"reference must be one of {REFERENCES} or an InferenceData, got {reference!r}"
        )
    common = dict(num_samples=num_samples, num_warmup=num_warmup, num_chains=num_chains,
                  progress=progress)
    if ula is None:
        ula = sample(pot, ula_kernel(step_size), init, seed=seed, **common)
    if ref_name in ("mala", "both"):
        ref_idata = sample(pot, mala(step_size), init, seed=seed + 1, adapt=True, **common)
    half = None
    if ref_name in ("richardson", "both"):
        half = sample(pot, ula_kernel(step_size / 2), init, seed=seed + 2, **common)

    m_ula = moment_errors(posterior_array(ula, pot))
    m_half = None if half is None else moment_errors(posterior_array(half, pot))
    if ref_name == "richardson":
        # bias(h) ≈ 2 (m_h - m_{h/2}); reference moment m ≈ 2 m_{h/2} - m_h
        m_ref = {
            "mean": 2 * m_half["mean"] - m_ula["mean"],
            "mean_mcse": np.hypot(2 * m_half["mean_mcse"], m_ula["mean_mcse"]),
            "var": 2 * m_half["var"] - m_ula["var"],
            "var_mcse": np.hypot(2 * m_half["var_mcse"], m_ula["var_mcse"]),
        }
        ref_idata = half
    else:
        m_ref = moment_errors(posterior_array(ref_idata, pot))

    table = _bias_table(ref_name, m_ula, m_ref, m_half)
    mean_bias, mean_bias_mcse = table["mean_bias"].values, table["mean_bias_mcse"].values
    var_rel, var_rel_mcse = table["var_rel_bias"].values, table["var_rel_bias_mcse"].values

    worst = int(np.argmax(np.abs(var_rel)))
    bound = abs(float(var_rel[worst])) + 2.0 * float(var_rel_mcse[worst])
    suggested = float(step_size) * float(tolerance) / bound if bound > 0 else math.inf
    ksd_u = ksd_r = math.nan
    if compute_ksd:
        ksd_u = _ksd_of(ula, pot, ksd_max_samples)
        ksd_r = _ksd_of(ref_idata, pot, ksd_max_samples)
    return ULABiasResult(
        step_size=float(step_size),
        table=table,
        max_var_rel_bias=float(var_rel[worst]),
        max_var_rel_bias_mcse=float(var_rel_mcse[worst]),
        max_abs_mean_bias_z=float(np.max(np.abs(mean_bias / mean_bias_mcse))),
        ksd_ula=ksd_u,
        ksd_reference=ksd_r,
        ksd_gap=ksd_u - ksd_r,
        suggested_step_size=suggested,
        tolerance=float(tolerance),
        reference=ref_name,
        ula=ula,
        reference_idata=ref_idata,
    )
