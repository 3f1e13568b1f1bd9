"""The package's layers only look down (STYLE.md, "Layout").

Read with :mod:`ast` by ``tools/import_layers.py``, nothing imported: no cycle between
the package's units (subpackages and top-level modules) through module-level imports, and
no import of another unit written inside a function (a circle dodged, not broken).
"""

from __future__ import annotations

from tools.import_layers import function_imports, import_graph, package_cycles, unit


def test_no_package_level_import_cycles():
    assert package_cycles() == []


def test_no_in_function_imports_of_other_packages():
    assert function_imports() == []


def test_model_layer_imports_only_what_is_below_it():
    """``ebm_ppl.model`` sits below sampling, numpyro, kernels, diagnostics, training, cli."""
    above = {"sampling", "numpyro", "kernels", "diagnostics", "training", "cli", "reporting"}
    used = {unit(target) for source, target, _ in import_graph() if unit(source) == "model"}
    assert used and not used & above
    below_potential = {unit(t) for s, t, _ in import_graph() if unit(s) == "potential"}
    assert "model" not in below_potential


def test_graph_sees_known_edges():
    """The parser finds module-level imports (a guard against an empty graph)."""
    edges = {(s, t) for s, t, _ in import_graph()}
    assert ("ebm_ppl.potential", "ebm_ppl._normaliser") in edges
    assert ("ebm_ppl.sampling.sampler", "ebm_ppl.model.groups") in edges
