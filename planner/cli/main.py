"""The ``clipbudget`` command line.

Each subcommand lives in its own module of ``planner.cli`` and exposes two functions:

* ``add_parser(subparsers) -> argparse.ArgumentParser`` — declares its arguments;
* ``run(args: argparse.Namespace) -> int`` — calls one library function with explicit
  keywords, formats the answer, returns the exit code.

Subcommand modules import nothing heavy at module level (no torch, pandas, scipy):
``clipbudget --help``, ``plan``, ``flops`` and ``predict`` must stay fast. Errors:
a :class:`budget.errors.ClipbudgetError` (or an argparse error) prints one line to
stderr and exits 2; ``--debug`` shows the traceback instead.

Example::

    clipbudget plan --gflops 1e10
    clipbudget flops ViT-B-32 RN50 --format json
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from collections.abc import Sequence

from planner import __version__

#: Subcommands in the order ``--help`` lists them; each is the module ``planner.cli.<name>``.
COMMANDS: tuple[str, ...] = (
    "plan",
    "flops",
    "predict",
    "fit",
    "data",
    "run",
    "submit",
    "status",
    "resubmit",
    "cancel",
    "collect",
    "report",
    "study",
    "demo",
)

EXIT_USAGE = 2
EXIT_FAILURE = 1


class UsageError(Exception):
    """Raised by the parser instead of printing usage and exiting (see :class:`_Parser`)."""

    def __init__(self, prog: str, message: str):
        super().__init__(message)
        self.prog = prog


class _HelpFormatter(argparse.HelpFormatter):
    """Help text is shown literally where %-expansion fails (a subcommand's help saying "95% interval")."""

    def _expand_help(self, action: argparse.Action) -> str:
        try:
            return super()._expand_help(action)
        except (TypeError, ValueError, KeyError):
            return self._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, raised rather than printed.

    Negative numbers in any spelling (``-1e10``, ``-.5``, ``-inf``) are values, not options, so that
    ``--gflops -1e10`` reports the bad value instead of "expected one argument".
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(
            r"^-(\d+\.?\d*(e[-+]?\d+)?|\.\d+(e[-+]?\d+)?|inf|infinity|nan)$", re.IGNORECASE)

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(self.prog, f"{message} (see '{self.prog} --help')")


def _module_name(command: str) -> str:
    return "planner.cli." + command.replace("-", "_")


def build_parser(commands: Sequence[str] = COMMANDS) -> argparse.ArgumentParser:
    """The full parser; each subcommand module adds its own arguments."""
    parser = _Parser(
        prog="clipbudget",
        description="Plan, run and fit compute-budgeted CLIP training studies.",
    )
    parser.add_argument("--version", action="version", version=f"clipbudget {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in commands:  # a missing subcommand module fails loudly (ModuleNotFoundError)
        importlib.import_module(_module_name(name)).add_parser(sub)
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI in-process and return the exit code (tests call this directly)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        _setup_logging(args.verbose)
        if not args.command:
            parser.print_help()
            return EXIT_USAGE
        return int(args.handler(args) or 0)
    except UsageError as exc:
        print(f"{exc.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("clipbudget: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `clipbudget plan | head`
        return 0
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into exit codes
        from budget.errors import ClipbudgetError
        from results.errors import ResultsError

        if debug:
            raise
        user_error = isinstance(exc, (ClipbudgetError, ResultsError))
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if user_error:
            print(f"clipbudget: error: {message}", file=sys.stderr)
            return EXIT_USAGE
        print(f"clipbudget: {type(exc).__name__}: {message} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
