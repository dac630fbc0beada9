"""What the default run gives a new user: minutes, and the finalist's test AUC / ACC per seed.

Runs the default profile (``quick``, or ``--profile``) headless from start to
finish -- search and final retraining, exactly what ``make run`` does behind
the dashboard -- or, with ``--from RUN_DIR``, reads a run that already
finished (e.g. the one ``make run`` left in ``runs/``). Prints the search
and final-phase minutes from the run's journal (time the run was down
between sessions left out), the finalist and its test AUC / ACC per seed,
whether it beats the majority class, and as the LAST line
``default_run_minutes: X test_auc: Y`` (Y: the mean over the seeds).

Usage: python benchmarks/default_run.py [--profile quick] [--set SECTION.KEY=VALUE ...] [--keep DIR]
       python benchmarks/default_run.py --from RUN_DIR
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def describe(run_dir: Path) -> tuple[float, float | None]:
    """Print the run's figures; returns (minutes, mean test AUC)."""
    from engine import events as ev
    from engine.journal import read_journal
    from engine.rundir import RunDir
    from nas3d_tui.report import summarise

    events = read_journal(RunDir(run_dir, resolve=False).journal_path, strict=True)
    s = summarise(events)
    minutes = (s.search_seconds + s.final_seconds) / 60.0
    print(f"run {run_dir} · {s.outcome}")
    print(f"search {s.search_seconds / 60:.1f} min ({s.trained} trained: {s.counts.get('ok', 0)} ok, "
          f"{s.counts.get('pruned', 0)} pruned) · final phase {s.final_seconds / 60:.1f} min · "
          f"total {minutes:.1f} min")
    finals = [e for e in events if isinstance(e, ev.FinalResult)]
    for f in finals:
        majority = f" (majority class {f.majority_acc:.4f})" if f.majority_acc is not None else ""
        print(f"finalist #{f.candidate_id} seed {f.seed}: test AUC {f.test_auc:.4f} · test ACC {f.test_acc:.4f}"
              f"{majority} · best epoch {f.best_epoch}/{f.epochs} · {f.seconds / 60:.1f} min")
    auc = statistics.fmean(f.test_auc for f in finals) if finals else None
    if finals:
        genotype = next((e.genotype.get("compact") for e in s.candidates if e.candidate_id == finals[0].candidate_id), "")
        print(f"finalist {genotype} · test AUC mean {auc:.4f} · test ACC mean "
              f"{statistics.fmean(f.test_acc for f in finals):.4f}")
    return minutes, auc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--from", dest="source", help="a finished run directory to read instead of running one")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--keep", help="where the run goes (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.source:
        run_dir = Path(args.source)
    else:
        from engine.profile import load_profile
        from engine.session import Session

        run_dir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="default-run-")) / "run"
        outcome = Session(load_profile(args.profile, args.set), run_dir).run()
        if outcome.state != "finished":
            raise SystemExit(f"the run ended {outcome.state}: {outcome.error}")
    minutes, auc = describe(run_dir)
    print(f"default_run_minutes: {minutes:.1f} test_auc: {'n/a' if auc is None else f'{auc:.4f}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
