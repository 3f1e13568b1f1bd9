"""The command line answers ``--help`` and argument errors without importing JAX, and the
package root imports its parts on first use (issue #27; timings in
``benchmarks/cli_startup.py``)."""

from __future__ import annotations

import subprocess
import sys
import types
import warnings

import pytest

HEAVY = ("jax", "numpyro", "blackjax", "arviz", "matplotlib", "optax", "sklearn", "xarray")


def _imported_after(code: str) -> set[str]:
    probe = (
        "import sys\n" + code + "\n"
        f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("HEAVY:"), out.stdout
    return {m for m in last.removeprefix("HEAVY:").split(",") if m}


@pytest.mark.parametrize(
    "argv", [["--help"], ["train", "--steps", "-1"], ["sample", "--help"], []],
    ids=["help", "argument error", "command help", "no command"],
)
def test_cli_help_and_argument_errors_import_nothing_heavy(argv):
    code = (
        "from ebm_ppl.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass"
    )
    assert _imported_after(code) == set()


def test_import_ebm_ppl_is_lazy_and_names_resolve():
    assert _imported_after("import ebm_ppl") == set()
    assert "jax" in _imported_after("import ebm_ppl; ebm_ppl.kernels.ula")


def test_lazy_root_behaves_like_eager_imports():
    import ebm_ppl
    from ebm_ppl.potential import Potential
    from ebm_ppl.sampling import sample

    assert ebm_ppl.Potential is Potential and ebm_ppl.sample is sample
    assert set(ebm_ppl.__all__) <= set(dir(ebm_ppl))
    for name in ebm_ppl.__all__:
        assert getattr(ebm_ppl, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'smaple'"):
        ebm_ppl.smaple  # noqa: B018


def test_cli_warnings_print_the_message_alone(monkeypatch, capsys):
    from ebm_ppl import cli

    def cmd(args):
        warnings.warn("R-hat 1.31 above 1.05: raise --chains", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setitem(sys.modules, "_fake_command", types.SimpleNamespace(cmd=cmd))
    monkeypatch.setitem(cli._COMMANDS, "report", ("_fake_command", "cmd"))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert cli.main(["report", "draws.nc"]) == 0
    err = capsys.readouterr().err
    assert err.strip() == "ebm-ppl report: warning: R-hat 1.31 above 1.05: raise --chains"
    assert "warnings.warn" not in err and ".py:" not in err
