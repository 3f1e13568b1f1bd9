"""``ebm-ppl`` command line: demo, train, sample, report (argparse over the public API).

No input gives a traceback: a user error (bad option, missing or foreign file, folder
that cannot be written, invalid data...) is one sentence on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys

from ebm_ppl.cli.commands import CLIError, cmd_report, cmd_sample, cmd_train
from ebm_ppl.cli.demo import cmd_demo, run_demo
from ebm_ppl.cli.parser import build_parser

__all__ = ["build_parser", "main", "run_demo"]

_COMMANDS = {"demo": cmd_demo, "train": cmd_train, "sample": cmd_sample, "report": cmd_report}

#: Errors that the library raises for bad input, each a one-sentence message
#: (``CheckpointError`` is a ``ValueError``, ``FitDivergenceError`` a ``FloatingPointError``).
_USER_ERRORS = (CLIError, ValueError, OSError, FloatingPointError)


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
    try:
        return _COMMANDS[args.command](args)
    except _USER_ERRORS as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"ebm-ppl {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ebm-ppl {args.command}: interrupted", file=sys.stderr)
        return 130
