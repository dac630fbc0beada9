"""``nas3d-tui bench table RUN_DIR -o TABLE.json``: a finished run's trained cells as a tabular benchmark.

The table (``engine.bench_table``) holds, per trained candidate, its cell
(key, compact form, genotype), params, FLOPs, every epoch of its training,
its fitness and what the search was told, its candidate id and training
seed; the header names the build command, the resolved profile, the machine
and the date. Search against it with ``--set executor.kind="table" --set
executor.table="TABLE.json"``. Test metrics per cell are not in it: search
candidates keep no weights (``header.test_metrics`` says what is missing).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

NAME = "bench"
HELP = "tabular benchmarks: bench table RUN_DIR -o TABLE.json writes a finished run's trained cells"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="bench_command", metavar="ACTION", required=True, parser_class=type(p))
    t = sub.add_parser("table", help="write a finished run's results as a table file", description=HELP)
    t.add_argument("run_dir", help="a run directory whose search has finished (an exhaustive run: the whole space)")
    t.add_argument("-o", "--output", required=True, help="the table file to write (JSON)")


def main(args: argparse.Namespace) -> int:
    from engine.bench_table import build_table, write_table
    from engine.errors import RunDirError, SessionError
    from engine.exhaustive import count_cells
    from engine.profile import load_profile
    from engine.rundir import RunDir, refuse_run_file
    from engine.space import SearchSpace

    out = Path(args.output)
    if out.is_dir():
        raise RunDirError(f"{out}: is a directory; give a file name for -o")
    refuse_run_file(out)
    rd = RunDir(Path(args.run_dir), resolve=False)
    rd.check_is_run()
    profile = load_profile(rd.profile_path)
    state = rd.read_search_state()
    if state is None or state.state == "search":
        raise SessionError(
            f"the search of {rd.path} has not finished; finish it with `nas3d-tui resume {rd.path}` before making a table"
        )
    records = rd.read_records()
    s = profile.space
    cells = count_cells(SearchSpace(ops=s.ops, stacks=s.stacks, modules=s.modules, filters=s.filters, max_edges=s.max_edges))
    command = " ".join(shlex.quote(a) for a in ["nas3d-tui", "bench", "table", str(args.run_dir), "-o", str(args.output)])
    table = build_table(profile.to_dict(), records, command=command, run_dir=str(rd.path), space_cells=cells,
                        device=profile.run.device)
    write_table(table, out)
    n = len(table.cells)
    print(f"wrote {len(table.entries)} trainings of {n} cells" + (f" (the space has {cells})" if cells else "")
          + f" to {out}", file=sys.stderr)
    return 0
