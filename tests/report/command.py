"""Run one ``nas3d_tui.commands`` module as the command line runs it (tests only).

``python tests/report/command.py NAME ARGS...`` is ``nas3d-tui NAME ARGS...``
once ``nas3d_tui.commands.COMMANDS`` lists NAME. Until then it parses ARGS
with the module's ``add_arguments`` and calls its ``main``, turning a
``UserError`` into one line on stderr and exit 2 as the command line does, so
the tests exercise the command modules either way.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> int:
    from engine.errors import UserError
    from nas3d_tui.commands import COMMANDS, load

    name, *rest = argv
    if name in COMMANDS:
        from nas3d_tui.cli import main as cli

        return cli(argv)
    module = load(name)
    parser = argparse.ArgumentParser(prog=f"nas3d-tui {name}")
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return module.main(args)
    except UserError as exc:
        print(f"nas3d-tui: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nas3d-tui: error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
