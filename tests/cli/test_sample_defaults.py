"""``ebm-ppl sample``'s defaults for multimodal models: many chains, thinning from the
autocorrelation, and a hint naming the flags when mixing fails (issue #27)."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import arviz as az
import numpy as np
import pandas as pd
import pytest

from ebm_ppl.cli.commands import auto_thin, mixing_hint
from ebm_ppl.cli.parser import (
    MAX_AUTO_THIN,
    SAMPLE_CHAINS,
    build_parser,
)


def _ar1(rho: float, chains: int, draws: int, seed: int) -> az.InferenceData:
    rng = np.random.default_rng(seed)
    x = np.empty((chains, draws))
    x[:, 0] = rng.normal(size=chains)
    noise = rng.normal(size=(chains, draws)) * np.sqrt(1 - rho**2)
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    return az.from_dict(posterior={"x": x})


@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_auto_thin_reads_the_autocorrelation_time(rho):
    # AR(1): tau = (1 + rho) / (1 - rho); 16 chains x 2000 draws estimate it to ~10 %
    tau_true = (1 + rho) / (1 - rho)
    thin, tau = auto_thin(_ar1(rho, 16, 2000, seed=0))
    assert abs(tau - tau_true) < 0.25 * tau_true
    assert thin == int(np.ceil(tau))


def test_auto_thin_is_capped_for_stuck_chains():
    x = np.repeat(np.array([[-5.0], [5.0]]), 200, axis=1)
    x = x + 0.01 * np.random.default_rng(1).normal(size=x.shape)
    thin, tau = auto_thin(az.from_dict(posterior={"x": x}))
    assert tau > MAX_AUTO_THIN and thin == MAX_AUTO_THIN


def test_sample_defaults_are_many_chains_and_auto_thin():
    args = build_parser().parse_args(["sample", "model"])
    assert args.chains is None and args.thin == "auto"  # None: 16, or 4 with anneal
    assert SAMPLE_CHAINS == 16
    args = build_parser().parse_args(["sample", "model", "--thin", "3", "--chains", "2"])
    assert (args.thin, args.chains) == (3, 2)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sample", "model", "--thin", "0"])


def _result(statuses: dict[str, str]) -> SimpleNamespace:
    verdict = pd.DataFrame([(k, "", v, "") for k, v in statuses.items()],
                           columns=["check", "value", "status", "rule"])
    return SimpleNamespace(verdict=verdict)


def test_mixing_hint_names_the_flags_only_when_needed():
    args = argparse.Namespace()
    bad = mixing_hint(_result({"R-hat (max)": "fail", "ESS bulk (min)": "warn"}), args)
    assert "R-hat (max) and ESS bulk (min)" in bad
    for flag in ("--chains", "--samples", "--thin", "--warmup"):
        assert flag in bad
    assert mixing_hint(_result({"R-hat (max)": "pass", "ESS bulk (min)": "pass"}), args) == ""
