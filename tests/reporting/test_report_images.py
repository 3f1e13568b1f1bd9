"""The caller's own PNGs in the report: ``report(..., images=[(title, path)])`` (issue #29)."""

from __future__ import annotations

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import ebm_ppl  # noqa: E402


@pytest.fixture(scope="module")
def idata():
    pot = ebm_ppl.Potential.from_energy(lambda x: 0.5 * jnp.sum(x**2), example=jnp.zeros(2))
    return ebm_ppl.sample(pot, ebm_ppl.kernels.mala(0.5), jnp.zeros(2), num_samples=50,
                          num_warmup=50, num_chains=2, seed=0, progress=False)


def _png(path):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    fig.savefig(path)
    plt.close(fig)
    return path


def test_image_appears_in_both_documents(idata, tmp_path):
    image = _png(tmp_path / "completions.png")
    index = ebm_ppl.report(idata, tmp_path / "rep", images=[("Posterior completions", image)])
    md, page = (tmp_path / "rep" / "report.md").read_text(), index.read_text()
    assert (tmp_path / "rep" / "completions.png").is_file()  # copied beside the documents
    assert "### Posterior completions" in md and "](completions.png)" in md
    assert "Posterior completions" in page and "data-file='completions.png'" in page
    # an image already in the output folder is used in place
    again = ebm_ppl.report(idata, tmp_path / "rep",
                           images=[("Same", tmp_path / "rep" / "completions.png")])
    assert "data-file='completions.png'" in again.read_text()


def test_missing_or_clashing_image_raises(idata, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        ebm_ppl.report(idata, tmp_path / "a", images=[("Gone", tmp_path / "gone.png")])
    assert not (tmp_path / "a").exists()  # raised before anything was written
    with pytest.raises(ValueError, match="report's own figures"):
        ebm_ppl.report(idata, tmp_path / "b", images=[("Mine", _png(tmp_path / "trace.png"))])
    with pytest.raises(ValueError, match=r"\(title, path\) pairs"):
        ebm_ppl.report(idata, tmp_path / "c", images=["completions.png"])
