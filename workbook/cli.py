"""The ``workbook`` command line.

Sub-commands are registered by the modules that own them; each ``register(subparsers)``
adds its parsers with ``set_defaults(func=...)``, and ``func(args)`` returns the exit code.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute sub-commands. A module that is absent (not yet written) is skipped.
_COMMAND_MODULES = (
    "workbook.plan",
    "workbook.automation",
    "workbook.report",
    "workbook.local.cli",
    "workbook.tuning",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbook",
        description="Run and tune the Lambda compute stack from notebooks; --env local needs no AWS account.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from infra.config import ParamsError

    try:
        return int(args.func(args) or 0)
    except ParamsError as exc:
        print(f"workbook: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `workbook plan ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("workbook: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
