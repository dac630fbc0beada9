"""``nas3d-tui report RUN_DIR [-o DIR]``: an HTML and a Markdown report of a run.

Reads only ``RUN_DIR/events.jsonl``, so it works on finished, stopped,
crashed and still-running runs. Bad input raises ``engine.errors.UserError``
(the command line prints it and exits 2).
"""
from __future__ import annotations

import argparse
import sys

NAME = "report"
HELP = "write report.html and report.md (figures, top cells, final metrics) from a run's journal"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="the run directory (its events.jsonl is all that is read)")
    parser.add_argument("-o", "--output", default=None, metavar="DIR",
                        help="folder to write report.html, report.md and figures/ to (default: RUN_DIR/report)")
    parser.add_argument("--top", type=int, default=None, metavar="K",
                        help="how many of the best cells to draw (default: 5)")


def main(args: argparse.Namespace) -> int:
    from engine.errors import UserError

    from nas3d_tui.report import DEFAULT_TOP_K, build_report

    top = DEFAULT_TOP_K if args.top is None else args.top
    if top < 0:
        raise UserError(f"--top {top}: give 0 or more cells")
    files = build_report(args.run_dir, args.output, top_k=top)
    s = files.summary
    print(f"{s.run_name}: {s.trained} trained, {s.outcome}", file=sys.stderr)
    print(files.html)
    print(files.markdown)
    return 0
