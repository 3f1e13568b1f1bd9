"""Small texts a user reads (issue #27): the demo's ``--sigma`` help agrees with its own
default, and the examples' README points only at what the repository holds."""

from __future__ import annotations

from pathlib import Path

from ebm_ppl.cli.parser import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _help(command: str) -> str:
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    return " ".join(sub.format_help().split())


def test_demo_sigma_help_does_not_call_its_own_default_wrong():
    text = _help("demo")
    assert "(default: 0.1)" in text and "The demo trains at 0.1" in text
    assert "with 0.1, the relative mass of separated modes came out wrong" not in text


def test_train_sigma_help_keeps_its_warning():
    assert "came out wrong" in _help("train") and "(default: 0.2)" in _help("train")


def test_examples_readme_points_to_nothing_outside_the_repository():
    text = (ROOT / "examples" / "README.md").read_text()
    assert "shared/seeds" not in text
