"""``nas3d-tui report RUN_DIR [-o DIR]``: an HTML and a Markdown report of a run.

``nas3d-tui report RUN_A RUN_B [...] -o DIR`` compares runs side by side
(``comparison.html`` / ``comparison.md``: anytime curves and Pareto fronts
overlaid, finalists, the profile keys that differ).

``--table TABLE.json`` (one run only) draws a tabular benchmark's optimum and
random-search expectation on the anytime curve (``nas3d_tui.report.overlay``).

Reads only each ``RUN_DIR/events.jsonl``, so it works on finished, stopped,
crashed and still-running runs. Bad input raises ``engine.errors.UserError``
(the command line prints it and exits 2).
"""
from __future__ import annotations

import argparse
import sys

NAME = "report"
HELP = ("write report.html and report.md (figures, top cells, final metrics) from a run's journal; "
        "give several runs to compare them side by side")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", nargs="+", metavar="RUN_DIR",
                        help="the run directory (its events.jsonl is all that is read); two or more: a comparison")
    parser.add_argument("-o", "--output", default=None, metavar="DIR",
                        help="folder to write report.html, report.md and figures/ to (default: RUN_DIR/report); "
                             "a comparison's comparison.html and comparison.md (required)")
    parser.add_argument("--top", type=int, default=None, metavar="K",
                        help="how many of the best cells to draw (default: 5)")
    parser.add_argument("--table", default=None, metavar="TABLE.json",
                        help="a table of the run's space (nas3d-tui bench table) built with the run's fitness: "
                             "draw its optimum and the random-search expectation on the anytime curve")


def main(args: argparse.Namespace) -> int:
    from engine.errors import UserError

    from nas3d_tui.report import DEFAULT_TOP_K, build_report

    if len(args.run_dir) > 1:
        return _compare(args)
    top = DEFAULT_TOP_K if args.top is None else args.top
    if top < 0:
        raise UserError(f"--top {top}: give 0 or more cells")
    files = build_report(args.run_dir[0], args.output, top_k=top, table=args.table)
    s = files.summary
    print(f"{s.run_name}: {s.trained} trained, {s.outcome}", file=sys.stderr)
    print(files.html)
    print(files.markdown)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from engine.errors import UserError

    from nas3d_tui.report.compare_build import build_comparison

    if args.output is None:
        raise UserError(f"comparing {len(args.run_dir)} runs: give the folder to write to with -o DIR")
    if args.top is not None:
        raise UserError("--top draws the best cells of a single run's report; leave it out of a comparison")
    if args.table is not None:
        raise UserError("--table draws a table's lines on a single run's report; leave it out of a comparison "
                        "(report each run with --table)")
    files = build_comparison(args.run_dir, args.output)
    for r in files.comparison.runs:
        print(f"{r.label}: {r.summary.trained} trained, {r.summary.outcome}", file=sys.stderr)
    print(files.html)
    print(files.markdown)
    return 0
