"""Tests of ebm_ppl.datasets: toy generators, registry, digits and file loading."""

from __future__ import annotations

import numpy as np
import pytest

from ebm_ppl import datasets
from ebm_ppl.datasets import (
    DATASETS,
    DatasetFileNotFoundError,
    checkerboard,
    eight_gaussians,
    load,
    load_array,
    rings,
    swiss_roll,
    two_moons,
)

TOYS = {
    "two_moons": two_moons,
    "8gaussians": eight_gaussians,
    "rings": rings,
    "checkerboard": checkerboard,
    "swiss_roll": swiss_roll,
}


def test_registry_names():
    assert DATASETS == ("two_moons", "8gaussians", "rings", "checkerboard", "swiss_roll", "digits")
    assert set(TOYS) | {"digits"} == set(DATASETS)


@pytest.mark.parametrize("name", sorted(TOYS))
def test_toy_shape_dtype_standardised(name):
    x = TOYS[name](2000, seed=1)
    assert x.shape == (2000, 2) and x.dtype == np.float32 and x.flags.c_contiguous
    assert np.all(np.isfinite(x))
    # centred exactly and total variance d = 2 (one common scale, shape preserved)
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.var(axis=0).sum(), 2.0, rtol=1e-4)
    # "roughly unit scale": each axis within a factor 2 of unit variance
    assert np.all((x.var(axis=0) > 0.25) & (x.var(axis=0) < 1.75))


@pytest.mark.parametrize("name", sorted(TOYS))
def test_toy_determinism_and_seeds(name):
    fn = TOYS[name]
    a, b, c = fn(300, seed=7), fn(300, seed=7), fn(300, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(load(name, n=300, seed=7), a)


@pytest.mark.parametrize("name", sorted(TOYS))
def test_toy_small_n(name):
    assert TOYS[name](1, seed=0).shape == (1, 2)
    assert TOYS[name](3, seed=0, standardize=False).shape == (3, 2)


def test_toy_geometry_unstandardised():
    # two moons, noise 0: every point on the unit circle around (0,0) or (1, 0.5)
    x = two_moons(400, noise=0.0, standardize=False).astype(np.float64)
    r_upper = np.hypot(x[:, 0], x[:, 1])
    r_lower = np.hypot(x[:, 0] - 1.0, x[:, 1] - 0.5)
    assert np.all(np.isclose(r_upper, 1, atol=1e-5) | np.isclose(r_lower, 1, atol=1e-5))
    assert np.sum(np.isclose(r_upper, 1, atol=1e-5) & (x[:, 1] >= 0)) >= 200
    # eight gaussians, noise 0: exactly 8 distinct centres on the unit circle
    x = eight_gaussians(500, noise=0.0, standardize=False)
    np.testing.assert_allclose(np.hypot(x[:, 0], x[:, 1]), 1.0, atol=1e-6)
    assert len(np.unique(np.round(x, 4), axis=0)) == 8
    # rings, noise 0: radii 1..4, larger rings get more points (uniform in arc length)
    x = rings(4000, noise=0.0, standardize=False)
    r = np.round(np.hypot(x[:, 0], x[:, 1])).astype(int)
    counts = np.bincount(r, minlength=5)[1:]
    assert counts.sum() == 4000 and np.all(np.diff(counts) > 0)
    # checkerboard: only cells with (i + j) even
    x = checkerboard(1000, standardize=False)
    cells = np.floor(x).astype(int)
    assert np.all((cells >= 0) & (cells < 4)) and np.all(cells.sum(axis=1) % 2 == 0)
    # swiss roll, noise 0: radius t in [1.5 pi, 4.5 pi]
    x = swiss_roll(500, noise=0.0, standardize=False)
    r = np.hypot(x[:, 0], x[:, 1])
    assert r.min() >= 1.5 * np.pi - 1e-4 and r.max() <= 4.5 * np.pi + 1e-4


def test_load_name_normalisation_and_default_n():
    np.testing.assert_array_equal(load("Eight-Gaussians", n=10), load("8gaussians", n=10))
    assert load("two_moons").shape == (datasets.DEFAULT_N, 2)
    x = load("rings", n=50, noise=0.0, num_rings=2, standardize=False)
    assert set(np.round(np.hypot(x[:, 0], x[:, 1])).astype(int)) <= {1, 2}


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: two_moons(0), r"n must be an integer >= 1, got 0"),
        (lambda: two_moons(2.5), r"n must be an integer >= 1, got 2.5"),
        (lambda: two_moons(True), r"n must be an integer >= 1, got True"),
        (lambda: two_moons(5, noise=-1.0), r"noise must be a finite number >= 0, got -1.0"),
        (lambda: rings(5, noise=float("nan")), r"noise must be a finite number >= 0"),
        (lambda: two_moons(5, noise="0.1"), r"noise must be a finite number >= 0, got '0.1'"),
        (lambda: two_moons(5, seed=-1), r"seed must be an integer >= 0, got -1"),
        (lambda: two_moons(5, seed=1.5), r"seed must be an integer >= 0, got 1.5"),
        (lambda: eight_gaussians(5, radius=0.0), r"radius must be a finite number > 0, got 0.0"),
        (lambda: eight_gaussians(5, num_modes=0), r"num_modes must be an integer >= 1"),
        (lambda: rings(5, num_rings=0), r"num_rings must be an integer >= 1"),
        (lambda: checkerboard(5, num_cells=1), r"num_cells must be an integer >= 2, got 1"),
        (lambda: load("moonz"), r"data set name must be one of \('two_moons', '8gaussians'"),
        (lambda: load(3), r"name_or_path must be one of .* got int"),
        (lambda: load("two_moons", n=5, bogus=1), r"unexpected keyword argument 'bogus'"),
    ],
)
def test_generator_errors(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_unknown_name_lists_all_names():
    with pytest.raises(ValueError) as info:
        load("nope")
    for name in DATASETS:
        assert repr(name) in str(info.value)


# ----------------------------------------------------------------------------- files
def test_npy_roundtrip(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 3))
    path = tmp_path / "x.npy"
    np.save(path, x)
    got = load_array(path)
    assert got.dtype == np.float32 and got.shape == (20, 3)
    np.testing.assert_allclose(got, x, rtol=1e-6)
    np.testing.assert_array_equal(load(str(path)), got)
    np.testing.assert_allclose(load_array(path, dtype=np.float64), x)
    np.save(tmp_path / "i.npy", np.arange(6).reshape(3, 2))
    np.testing.assert_array_equal(load_array(tmp_path / "i.npy"), [[0, 1], [2, 3], [4, 5]])


def test_csv_and_txt_roundtrip(tmp_path):
    x = np.random.default_rng(1).normal(size=(15, 4)).astype(np.float32)
    plain = tmp_path / "plain.csv"
    np.savetxt(plain, x, delimiter=",")
    np.testing.assert_allclose(load_array(plain), x, rtol=1e-6)
    header = tmp_path / "header.csv"
    np.savetxt(header, x, delimiter=",", header="a,b,c,d", comments="")
    np.testing.assert_allclose(load_array(header), x, rtol=1e-6)
    commented = tmp_path / "commented.csv"
    np.savetxt(commented, x, delimiter=",", header="a,b,c,d\nsecond comment line")
    np.testing.assert_allclose(load_array(commented), x, rtol=1e-6)
    txt = tmp_path / "data.txt"
    np.savetxt(txt, x)
    np.testing.assert_allclose(load_array(txt), x, rtol=1e-6)
    one_col = tmp_path / "one.csv"
    one_col.write_text("v\n1\n2\n3\n\n")
    assert load_array(one_col).shape == (3, 1)


def test_load_file_subset(tmp_path):
    x = np.arange(40, dtype=np.float64).reshape(20, 2)
    path = tmp_path / "x.npy"
    np.save(path, x)
    sub = load(path, n=5, seed=3)
    assert sub.shape == (5, 2)
    np.testing.assert_array_equal(sub, load(path, n=5, seed=3))
    assert len({tuple(r) for r in sub.tolist()}) == 5  # without replacement
    assert {tuple(r) for r in sub.tolist()} <= {tuple(r) for r in x.tolist()}
    with pytest.raises(ValueError, match=r"n must be <= 20 \(the rows in the file\), got 21"):
        load(path, n=21)
    with pytest.raises(ValueError, match=r"keyword arguments are only for named data sets"):
        load(path, noise=0.1)


def _write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("v.npy", np.arange(5.0), r"must be a 2-D array of shape \(n, d\) with n >= 2.*got shape \(5,\)"),
        ("t.npy", np.zeros((2, 2, 2)), r"got shape \(2, 2, 2\)"),
        ("r.npy", np.zeros((1, 3)), r"n >= 2 and d >= 1, got shape \(1, 3\)"),
        ("e.npy", np.zeros((4, 0)), r"got shape \(4, 0\)"),
        ("n.npy", np.array([[0.0, 1.0], [np.nan, 2.0]]), r"data must be finite, got 1 row\(s\) with NaN"),
        ("i.npy", np.array([[0.0, np.inf], [1.0, 2.0]]), r"data must be finite"),
        ("o.npy", np.array([[1e300, 0.0], [1.0, 2.0]]), r"data must be finite in float32"),
        ("s.npy", np.array([["a", "b"], ["c", "d"]]), r"must hold real numbers .* got dtype <U1"),
        ("b.npy", np.ones((3, 2), dtype=bool), r"must hold real numbers .* got dtype bool"),
        ("c.npy", np.ones((3, 2), dtype=complex), r"must hold real numbers .* got dtype complex128"),
        ("obj.npy", np.array([[1, None], [2, 3]], dtype=object), r"must hold a numeric array"),
        ("w.csv", "a,b\n1,2\nx,3\n", r"must contain only numbers, got 'x' on line 3"),
        ("g.csv", "1,2\n3,\n", r"must contain only numbers, got '' on line 2"),
        # a first row with some numbers is data, not a header: its bad value is an error
        ("na.csv", "NA,2.0\n1,2\n3,4\n", r"got 'NA' on line 1"),
        ("typo.csv", "1.0,2.0x\n1,2\n3,4\n", r"got '2.0x' on line 1"),
        ("typo.txt", "# comment\n1.0 2.0x\n1 2\n3 4\n", r"got '2.0x' on line 2"),
        ("j.csv", "1,2\n3,4,5\n", r"rows of different lengths \[2, 3\]"),
        ("h.csv", "a,b\n", r"got shape \(0, 0\)"),
        ("empty.csv", "", r"is empty; expected a 2-D \(n, d\) array"),
        ("one.csv", "1,2\n", r"got shape \(1, 2\)"),
        ("nan.csv", "1,nan\n3,4\n", r"data must be finite"),
        ("x.json", "[[1, 2], [3, 4]]", r"extension must be one of \('.npy', '.csv', '.txt'\), got '.json'"),
        ("noext", "1,2\n3,4\n", r"extension must be one of .* got 'none'"),
    ],
)
def test_load_array_errors(tmp_path, name, content, match):
    path = _write(tmp_path, name, content)
    with pytest.raises(ValueError, match=match):
        load_array(path)


def test_missing_file(tmp_path):
    path = tmp_path / "missing.npy"
    with pytest.raises(ValueError, match=r"data file '.*missing.npy' does not exist"):
        load_array(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(str(path))
    assert issubclass(DatasetFileNotFoundError, ValueError)


# ----------------------------------------------------------------------------- digits
def test_digits():
    pytest.importorskip("sklearn")
    x = datasets.digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    z = datasets.digits(scale="standardize")
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-5)
    sd = z.std(axis=0)
    assert np.all(np.isclose(sd, 1.0, atol=1e-4) | (sd == 0.0))
    sub, labels = datasets.digits(100, seed=2, return_labels=True)
    assert sub.shape == (100, 64) and labels.shape == (100,) and set(labels) <= set(range(10))
    np.testing.assert_array_equal(load("digits", n=100, seed=2), sub)
    with pytest.raises(ValueError, match=r"scale must be one of \('unit', 'standardize', 'raw'\)"):
        datasets.digits(scale="minmax")
    with pytest.raises(ValueError, match=r"n must be <= 1797 \(the number of digits\), got 2000"):
        datasets.digits(2000)


def test_digits_without_sklearn(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError("no sklearn")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"digits\(\) needs scikit-learn.*pip install scikit-learn"):
        load("digits")
