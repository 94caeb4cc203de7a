"""The ``agesearch`` command: a thin layer over the Python API.

Each sub-command is a module in :mod:`agesearch.commands` exposing ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. User mistakes (:class:`UsageError`,
:class:`~agesearch.data.DataError`, ``ValueError`` raised while validating input) end with one line
``agesearch: error: <problem>; <fix>`` and exit code 2, without a traceback unless ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

COMMAND_MODULES: tuple[str, ...] = (
    "agesearch.commands.train",
    "agesearch.commands.search",
    "agesearch.commands.spaces",
    "agesearch.commands.profile",
    "agesearch.commands.report",
    "agesearch.commands.predict",
    "agesearch.commands.demo",
)
"""Sub-command modules, in the order ``--help`` lists them."""


class UsageError(ValueError):
    """A user mistake on the command line, reported in one line with exit code 2."""


def one_line(text: str) -> str:
    """``text`` safe to print as one terminal line: control characters (newlines, escapes,
    separators) shown as ``\\xNN`` instead of being interpreted."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's own convention)
        self.exit(2, f"agesearch: error: {one_line(message)}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="agesearch",
        description="Search imbalance strategies for age regression on tabular data.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for mod_name in COMMAND_MODULES:
        mod = importlib.import_module(mod_name)
        p = sub.add_parser(
            mod.NAME,
            help=mod.HELP,
            description=getattr(mod, "DESCRIPTION", mod.HELP),
            epilog=getattr(mod, "EPILOG", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks and debug logs")
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if debug else "%(message)s",
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    from agesearch.data import DataError

    try:
        return int(args._run(args) or 0)
    except (UsageError, DataError, ValueError, OSError) as exc:  # OSError: unreadable/unwritable paths
        if debug:
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"agesearch: error: {one_line(msg)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "interrupted"
        print(f"agesearch: {one_line(detail)}", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug, not bad input: one line, traceback with --debug
        if debug:
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"agesearch: internal error: {type(exc).__name__}: {one_line(first)}; rerun with --debug for the "
              "traceback and report it", file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
