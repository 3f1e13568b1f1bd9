"""``ebm-ppl`` command line: demo, train, sample, report (argparse over the public API).

No input gives a traceback: a user error (bad option, missing or foreign file, folder
that cannot be written, invalid data...) is one sentence on stderr and exit code 2.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from functools import partial
from typing import Any

from ebm_ppl.cli.parser import build_parser

__all__ = ["build_parser", "main", "run_demo"]

#: Command -> (module, function). The command modules import JAX and the whole library;
#: they are imported only once the arguments parse, so ``--help`` and argument errors
#: answer at once (``benchmarks/cli_startup.py``).
_COMMANDS = {
    "demo": ("ebm_ppl.cli.demo", "cmd_demo"),
    "train": ("ebm_ppl.cli.commands", "cmd_train"),
    "sample": ("ebm_ppl.cli.commands", "cmd_sample"),
    "report": ("ebm_ppl.cli.commands", "cmd_report"),
}


def __getattr__(name: str) -> Any:
    if name == "run_demo":
        return importlib.import_module("ebm_ppl.cli.demo").run_demo
    raise AttributeError(f"module 'ebm_ppl.cli' has no attribute {name!r}")


def _show_warning(command: str, message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: Any = None, line: str | None = None) -> None:
    """Print a warning as ``ebm-ppl CMD: warning: message`` (no Python source line)."""
    text = " ".join(str(message).split())
    print(f"ebm-ppl {command}: warning: {text}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ebm-ppl`` console script; returns the exit code.

    Argument errors exit through ``argparse`` (``SystemExit(2)`` with the command's
    usage); errors found while running return 2 after one line on stderr.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    os.environ.setdefault("MPLBACKEND", "Agg")
    module, function = _COMMANDS[args.command]
    command = getattr(importlib.import_module(module), function)
    # Errors that the library raises for bad input, each a one-sentence message
    # (``CheckpointError`` is a ``ValueError``, ``FitDivergenceError`` a ``FloatingPointError``).
    user_errors = (importlib.import_module("ebm_ppl.cli.commands").CLIError, ValueError, OSError,
                   FloatingPointError)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = partial(_show_warning, args.command)
            return command(args)
    except user_errors as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"ebm-ppl {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ebm-ppl {args.command}: interrupted", file=sys.stderr)
        return 130
