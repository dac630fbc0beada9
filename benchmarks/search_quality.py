"""Does the evolutionary search earn its cost? ODE against random search, same budget, same data, one run.

Runs two real searches of ``nas3d-tui``'s ``Session`` with one profile (the
paper protocol by default) that differ only in ``search.strategy``: ``ode``
and ``random`` (uniform chromosomes, the same feasibility, duplicate and
budget rules), each followed by its final phase (top-k retrained from
scratch for every seed and tested). Prints, per strategy, the best-so-far
fitness after every ``--every`` trained candidates, then the finalists' test
AUC / ACC (mean ± std over seeds), and as the LAST line
``ode_minus_random_auc: X`` -- the mean test AUC of ODE's finalists minus
random search's (positive: ODE found better architectures).

Usage: python benchmarks/search_quality.py [--profile paper] [--budget 200] [--every 20]
       [--top-k 3] [--seeds 0,1,2] [--device auto] [--set SECTION.KEY=VALUE ...] [--keep DIR]

With the paper's budget this is two full paper-protocol searches (a GPU job);
on a CPU use a small budget and few epochs, e.g.
``--budget 4 --every 2 --top-k 1 --seeds 0 --set training.epochs=1 --set final.epochs=1``.
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


def run_strategy(profile, run_dir: Path, every: int) -> dict:
    """One search + final phase; the best-so-far curve and the finalists' test metrics."""
    from engine import events as ev
    from engine.leaderboard import Leaderboard, mean_std
    from engine.session import Session

    events: list = []
    session = Session(profile, run_dir)
    session.bus.subscribe(events.append)
    outcome = session.run()
    if outcome.state != "finished":
        raise SystemExit(f"{profile.search.strategy} search ended {outcome.state}: {outcome.error}")
    curve, best = [], None
    for e in events:
        if isinstance(e, ev.CandidateFinished) and e.status in ("ok", "oom", "failed"):
            if e.fitness is not None and (best is None or e.fitness > best):
                best = e.fitness
            if e.trained % every == 0:
                curve.append((e.trained, best))
    board = Leaderboard.from_events(events)
    finals = [(row, board.finals(row.candidate_id)) for row in board.rows() if row.final_seeds]
    aucs = [row.test_auc for row, _ in finals]
    accs = [row.test_acc for row, _ in finals]
    return {
        "curve": curve,
        "finalists": [
            (row.candidate_id, row.genotype, row.params, row.flops,
             mean_std([f.test_auc for f in fs]), mean_std([f.test_acc for f in fs]))
            for row, fs in finals
        ],
        "mean_auc": statistics.fmean(aucs) if aucs else float("nan"),
        "mean_acc": statistics.fmean(accs) if accs else float("nan"),
        "minutes": events[-1].seconds / 60 if events and isinstance(events[-1], ev.RunFinished) else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--every", type=int, default=20, help="print the best-so-far fitness every N trained candidates")
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--keep", default=None, help="keep the two run directories under DIR (default: a temporary folder)")
    args = ap.parse_args(argv)

    from engine.profile import load_profile

    seeds = ", ".join(s.strip() for s in args.seeds.split(",") if s.strip())
    common = [
        f"search.budget={args.budget}",
        f"final.top_k={args.top_k}",
        f"final.seeds=[{seeds}]",
        f"run.device='{args.device}'",
        *args.overrides,
    ]
    with tempfile.TemporaryDirectory(prefix="nas3d-quality-") as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        results = {}
        for strategy in ("ode", "random"):
            profile = load_profile(args.profile, [*common, f"search.strategy='{strategy}'", f"run.name='{strategy}'"])
            results[strategy] = run_strategy(profile, base / strategy, max(1, args.every))
    p = profile
    print(f"{args.profile} protocol on {p.data.path or p.data.dataset}: budget {args.budget}, NP {p.search.population}, "
          f"fitness {p.search.fitness}, epochs <= {p.training.epochs}, top {args.top_k} x seeds [{seeds}], "
          f"final epochs <= {p.final.epochs}, run seed {p.run.seed}")
    for strategy, r in results.items():
        print(f"{strategy}: search + final {r['minutes']:.1f} min")
        print("  best-so-far fitness: " + "  ".join(f"{n}:{b:.4f}" if b is not None else f"{n}:-" for n, b in r["curve"]))
        for cid, compact, params, flops, (auc, auc_sd), (acc, acc_sd) in r["finalists"]:
            sd = lambda s: f" ± {s:.4f}" if s is not None else ""  # noqa: E731
            print(f"  finalist #{cid} {compact}  {params:,} params  {flops:,} FLOPs  "
                  f"test AUC {auc:.4f}{sd(auc_sd)}  ACC {acc:.4f}{sd(acc_sd)}")
        print(f"  finalists' mean: test AUC {r['mean_auc']:.4f}  ACC {r['mean_acc']:.4f}")
    print(f"ode_minus_random_auc: {results['ode']['mean_auc'] - results['random']['mean_auc']:+.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
