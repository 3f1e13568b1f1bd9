"""AIS and SMC estimates of log Z side by side in the report (issue #29)."""

from __future__ import annotations

from types import SimpleNamespace

import jax.numpy as jnp
import pytest

import ebm_ppl
from ebm_ppl.reporting.assemble import log_z_table


def test_table_has_both_estimates_and_their_difference():
    ais = SimpleNamespace(log_z=1.50, stderr=0.03)
    smc = SimpleNamespace(log_z=1.46, stderr=0.04)
    table = log_z_table([ais, smc])
    assert list(table["method"]) == ["SimpleNamespace", "SimpleNamespace", "difference"]
    assert table.iloc[2]["log Z"] == "+0.0400" and table.iloc[2]["standard error"] == "z = 0.80"
    with pytest.raises(TypeError, match="log_z and stderr"):
        log_z_table([1.0])


@pytest.mark.slow
def test_report_shows_ais_beside_smc(tmp_path):
    pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))
    ais = ebm_ppl.diagnostics.ais_log_z(pot, num_temps=20, num_chains=64, seed=0)
    smc = ebm_ppl.diagnostics.smc_log_z(pot, num_particles=200, num_runs=2, seed=0)
    idata = ebm_ppl.sample(pot, ebm_ppl.kernels.mala(0.5), jnp.zeros(2), num_samples=50,
                           num_warmup=50, num_chains=2, progress=False)
    index = ebm_ppl.report(idata, tmp_path, log_z=[ais, smc])
    md, page = (tmp_path / "report.md").read_text(), index.read_text()
    assert "## Normalising constant" in md and "Normalising constant" in page
    assert "| AIS |" in md and "| SMC |" in md and "difference" in md
    # (their accuracy against closed forms: tests/diagnostics/test_ais_closed_form.py and
    # tests/diagnostics/test_smc_log_z.py)
