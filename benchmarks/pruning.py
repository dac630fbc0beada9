"""What would pruning have saved, and what would it have changed? Offline on a finished run, then live.

**Offline** (``RUN_DIR``: a finished search run *without* pruning; every
candidate's record holds its per-epoch history). The run's strategy is
replayed from its profile and seed with the fitnesses it was told, which
gives back, batch by batch, the population each batch met -- so every DE
trial's target parent. Then each pruning rule is replayed on the recorded
learning curves exactly as the trainer applies it (``engine.pruning``):

* epochs saved: the epochs each pruned candidate trained after the epoch it
  would have been stopped at, over all epochs the run trained;
* decisions unchanged: every selection decision of the run -- trial against
  its parent, and for the initial population, its opposites and every
  generation jump, whether each candidate entered the next population --
  redone with the pruned candidates losing, against the run's own state
  before that batch.

One line per rule (and per warm-up / margin asked for), then as the LAST
line ``pruning_saved_epochs: X% agreement: Y%`` for ``--rule`` / ``--warmup``
/ ``--margin``.

**Live** (``--live PROFILE``): two real searches with the same profile and
seed, ``search.pruning = "none"`` and the chosen rule; prints epochs trained,
wall time, the best fitness found and the candidates the two runs proposed
alike, then the same last line measured live (agreement: of the candidates
both runs proposed identically, the share with the same selection outcome).

Usage:
    python benchmarks/pruning.py RUN_DIR [--rule parent] [--warmup 2] [--margin 0.0]
                                 [--grid] [--json]
    python benchmarks/pruning.py --live PROFILE [--set SECTION.KEY=VALUE ...]
                                 [--rule parent] [--warmup 2] [--margin 0.0] [--keep DIR]
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@dataclass
class Replay:
    rule: str
    warmup: int
    margin: float
    epochs_total: int = 0
    epochs_saved: int = 0
    pruned: int = 0
    trained: int = 0
    decisions: int = 0
    unchanged: int = 0
    trial_decisions: int = 0
    trial_unchanged: int = 0

    @property
    def saved_pct(self) -> float:
        return 100.0 * self.epochs_saved / self.epochs_total if self.epochs_total else 0.0

    @property
    def agreement_pct(self) -> float:
        return 100.0 * self.unchanged / self.decisions if self.decisions else 100.0

    def line(self) -> str:
        trial = (f"{100.0 * self.trial_unchanged / self.trial_decisions:.1f}% of {self.trial_decisions}"
                 if self.trial_decisions else "none")
        return (f"rule={self.rule:<6} warmup={self.warmup} margin={self.margin:<5g} "
                f"pruned {self.pruned}/{self.trained} · epochs saved {self.epochs_saved}/{self.epochs_total} "
                f"({self.saved_pct:.1f}%) · decisions unchanged {self.unchanged}/{self.decisions} "
                f"({self.agreement_pct:.1f}%; trials {trial})")


def _batches(records: dict, strategy, tie_break: str) -> list:
    """Replay the strategy with the told fitnesses: [(batch, strategy before tell, told, secondary)]."""
    from engine.records import selection_key
    from engine.strategy import NO_TIE_BREAK

    out = []
    while True:
        try:
            batch = strategy.ask()
        except Exception:  # noqa: BLE001 - the strategy has nothing more to ask (never for ODE)
            break
        ids = range(batch.first_id, batch.first_id + len(batch))
        if not all(i in records for i in ids):
            break  # the run ended inside (or before) this batch
        rs = [records[i] for i in ids]
        told = [r.told_fitness for r in rs]
        secondary = [
            [NO_TIE_BREAK, NO_TIE_BREAK] if r.fitness is None or r.pruned
            else [max(float(v), NO_TIE_BREAK) for v in selection_key(r.fitness, r.val_auc, r.flops, "val_auc")[1:]]
            for r in rs
        ]
        before = copy.deepcopy(strategy)
        out.append((batch, before, told, secondary))
        strategy.tell(told, None if tie_break == "none" else secondary)
    return out


def _selection(before, batch, told, secondary, tie_break: str) -> set[int]:
    """The population ids after telling ``before`` (a copy) these fitnesses."""
    s = copy.deepcopy(before)  # holds the batch as pending
    s.tell(told, None if tie_break == "none" else secondary)
    return set(s.population_ids)


def replay(run_dir: Path, rule: str, warmup: int, margin: float) -> Replay:
    """Replay one rule on a finished unpruned run (see the module docstring)."""
    from engine.profile import load_profile
    from engine.pruning import median_rule, parent_rule, prune_epoch
    from engine.rundir import RunDir
    from engine.session.setup import make_strategy, space_of

    rd = RunDir(run_dir)
    profile = load_profile(str(rd.profile_path))
    if profile.search.pruning != "none":
        raise SystemExit(f"{run_dir} was run with search.pruning = {profile.search.pruning!r}; replay needs a run without")
    records = rd.read_records()
    metric, max_epochs, tie = profile.search.fitness, profile.training.epochs, profile.search.tie_break
    result = Replay(rule, warmup, margin)
    sim: dict[int, tuple[list, bool]] = {}  # id -> (history as the pruned run would have it, finished)
    for batch, before, told, secondary in _batches(records, make_strategy(profile, space_of(profile)), tie):
        parents = list(before.population_ids) if batch.phase == "trial" else None
        median = None
        if rule == "median" or parents is None:
            earlier = [sim[i] for i in sorted(sim) if i < batch.first_id]
            median = median_rule(earlier, metric, max_epochs, warmup=warmup, margin=margin)
        new_told = list(told)
        for k in range(len(batch)):
            r = records[batch.first_id + k]
            if r.status not in ("ok",) or not r.history:
                if r.status in ("ok", "oom", "failed"):
                    result.trained += 1
                continue
            result.trained += 1
            result.epochs_total += len(r.history)
            if rule == "parent" and parents is not None:
                parent = records.get(parents[k])
                if parent is not None and parent.status == "duplicate" and parent.duplicate_of is not None:
                    parent = records.get(parent.duplicate_of)
                pr = (parent_rule(parent.history, metric, max_epochs, warmup=warmup, margin=margin)
                      if parent is not None and parent.status == "ok" else None)
            else:
                pr = median
            stopped_early = len(r.history) < max_epochs
            at = prune_epoch(r.history, metric, pr, max_epochs, stopped_early=stopped_early)
            if at is None:
                sim[r.candidate_id] = (r.history, True)
                continue
            result.pruned += 1
            result.epochs_saved += len(r.history) - at
            sim[r.candidate_id] = (r.history[:at], False)
            new_told[k] = 0.0
        # the decisions of this batch, as the run made them and with the pruned ones losing
        original = _selection(before, batch, told, secondary, tie)
        changed = _selection(before, batch, new_told, secondary, tie)
        if batch.phase == "trial":
            for k, parent_id in enumerate(parents):
                cid = batch.first_id + k
                same = (cid in original) == (cid in changed)
                result.decisions += 1
                result.unchanged += same
                result.trial_decisions += 1
                result.trial_unchanged += same
        else:
            pool = set(before.population_ids) | set(range(batch.first_id, batch.first_id + len(batch)))
            for cid in pool:
                result.decisions += 1
                result.unchanged += (cid in original) == (cid in changed)
    return result


def live(args) -> Replay:
    """Two real searches, without pruning and with the rule; the comparison measured on what they did."""
    from engine.profile import load_profile
    from engine.rundir import RunDir
    from engine.session import Session

    base = list(args.set or [])
    keep = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pruning-live-"))
    runs = {}
    for name, settings in (
        ("none", ["search.pruning='none'"]),
        (args.rule, [f"search.pruning='{args.rule}'", f"search.pruning_warmup={args.warmup}",
                     f"search.pruning_margin={args.margin}"]),
    ):
        run_dir = keep / name
        t0 = time.perf_counter()
        outcome = Session(load_profile(args.live, base + settings), run_dir).run()
        seconds = time.perf_counter() - t0
        if outcome.state != "finished":
            raise SystemExit(f"the {name} run ended {outcome.state}: {outcome.error}")
        records = RunDir(run_dir).read_records()
        epochs = sum(r.epochs for r in records.values() if r.status in ("ok", "pruned", "oom", "failed"))
        best = max((r.fitness for r in records.values() if r.ok and r.fitness is not None), default=None)
        runs[name] = (records, epochs, seconds, best)
        pruned = sum(r.status == "pruned" for r in records.values())
        print(f"live {name:<6}: {epochs} epochs in {seconds:.0f} s · {pruned} pruned · best fitness "
              f"{best if best is None else round(best, 4)} · {run_dir}", flush=True)
    (a, ea, _, _), (b, eb, _, _) = runs["none"], runs[args.rule]
    result = Replay(args.rule, args.warmup, args.margin, epochs_total=ea, epochs_saved=max(ea - eb, 0))
    # same proposals (same id and vector) -> same selection outcome? (a trial wins iff it told >= its target)
    from engine.session.setup import make_strategy, space_of

    profile = load_profile(args.live, base)
    outcome_a = _membership(a, profile, make_strategy, space_of)
    outcome_b = _membership(b, profile, make_strategy, space_of)
    for cid in sorted(set(outcome_a) & set(outcome_b)):
        if a[cid].vector != b[cid].vector:
            break  # the runs diverged: later proposals are not comparable
        result.decisions += 1
        result.unchanged += outcome_a[cid] == outcome_b[cid]
    result.trained = len([r for r in b.values() if r.spent_budget])
    result.pruned = sum(r.status == "pruned" for r in b.values())
    print(f"live: the runs proposed the same first {result.decisions} candidates")
    return result


def _membership(records: dict, profile, make_strategy, space_of) -> dict[int, bool]:
    """For every candidate: did it enter the population after its batch?"""
    out: dict[int, bool] = {}
    strategy = make_strategy(profile, space_of(profile))
    for batch, before, told, secondary in _batches(records, strategy, profile.search.tie_break):
        after = _selection(before, batch, told, secondary, profile.search.tie_break)
        for k in range(len(batch)):
            out[batch.first_id + k] = batch.first_id + k in after
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("run_dir", nargs="?", help="a finished search run without pruning (offline replay)")
    parser.add_argument("--live", metavar="PROFILE", help="run two searches (none / the rule) with this profile")
    parser.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="profile overrides (--live)")
    parser.add_argument("--rule", default="parent", choices=("parent", "median"))
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--grid", action="store_true", help="also replay warm-ups 1..3 and margins 0, 0.02, 0.05")
    parser.add_argument("--keep", help="where the live runs go (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.live:
        result = live(args)
        print(result.line())
    else:
        if not args.run_dir:
            parser.error("give RUN_DIR (offline) or --live PROFILE")
        configs = [(r, args.warmup, args.margin) for r in ("parent", "median")]
        if args.grid:
            configs = [(r, w, m) for r in ("parent", "median") for w in (1, 2, 3) for m in (0.0, 0.02, 0.05)]
        chosen = None
        for rule, warmup, margin in configs:
            res = replay(Path(args.run_dir), rule, warmup, margin)
            print(res.line(), flush=True)
            if (rule, warmup, margin) == (args.rule, args.warmup, args.margin):
                chosen = res
        result = chosen or replay(Path(args.run_dir), args.rule, args.warmup, args.margin)
    print(f"pruning_saved_epochs: {result.saved_pct:.1f}% agreement: {result.agreement_pct:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
