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

``--table TABLE.json --seeds 1000`` instead searches against a tabular
benchmark (``nas3d-tui bench table`` of an exhaustive run): no training, each
strategy (ode, random, exhaustive) run for seeds 0..N-1 up to every budget
from 1 to the table's cell count, printing per strategy and budget the mean
rank (among all cells) of the best found, P(top 1 %), P(top 5 %) and mean
regret in the fitness metric, each with a 95 % CI; its last line is
``ode_vs_random_at_budget_10: ...``. The table's own profile (header) gives
the space, population, F, CR, JR and tie-break; results are told without
pruning (the table's first training of each cell).

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
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--table" in argv or any(a.startswith("--table=") for a in argv):
        tp = argparse.ArgumentParser(description="search strategies against a tabular benchmark, many seeds")
        tp.add_argument("--table", required=True, help="a table file (nas3d-tui bench table) of the whole space")
        tp.add_argument("--seeds", type=int, default=1000, help="searches per strategy (seeds 0..N-1)")
        tp.add_argument("--strategies", default=",".join(TABLE_STRATEGIES))
        tp.add_argument("--max-budget", type=int, default=None, help="largest budget (default: the table's cell count)")
        tp.add_argument("--all-budgets", action="store_true", help="print every budget, not a selection")
        tp.add_argument("--json", default=None, help="write every budget's statistics to this JSON file")
        tp.add_argument("--max-proposals", type=int, default=20,
                        help="give a search up at this many proposals per unit of budget (a converged ODE proposes only "
                             "known cells; random search finds rare cells slowly): later budgets keep its best, 'reached' counts")
        return table_main(tp.parse_args(argv))
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


# ---------------------------------------------------------------------------------------------------------
# --table: search against a tabular benchmark, many seeds, no training (issue 29)
# ---------------------------------------------------------------------------------------------------------
TABLE_STRATEGIES = ("ode", "random", "exhaustive")
SHOWN_BUDGETS = (1, 2, 3, 5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000, 2000, 5000)


def fast_key_fn(space):
    """``space.key_of`` with a cache on the pruned cell: the same key, at the cost of a bitmask prune per vector."""
    from engine.space import EDGE_INDICES

    n_ops, mods, stacks, filts = len(space.ops), len(space.modules), len(space.stacks), len(space.filters)
    edge_masks = {}
    for keep in range(128):
        m = 0
        for idx, (i, j) in enumerate(EDGE_INDICES):
            if keep >> i & 1 and keep >> j & 1:
                m |= 1 << idx
        edge_masks[keep] = m
    cache: dict = {}

    def b(x: float, n: int) -> int:
        return min(int(x * n), n - 1)

    def key(vector):
        v = [float(x) for x in vector]
        bits = 0
        ins = [0] * 7
        outs = [0] * 7
        for idx, (i, j) in enumerate(EDGE_INDICES):
            if v[idx] >= 0.5:
                bits |= 1 << idx
                ins[j] |= 1 << i
                outs[i] |= 1 << j
        reach = 1
        for n in range(1, 7):
            if ins[n] & reach:
                reach |= 1 << n
        if not reach >> 6 & 1:
            return None
        co = 1 << 6
        for n in range(5, -1, -1):
            if outs[n] & co:
                co |= 1 << n
        keep = reach & co
        sig = (bits & edge_masks[keep],
               tuple(space.ops[b(v[21 + n - 1], n_ops)] for n in range(1, 6) if keep >> n & 1),
               b(v[26], mods), b(v[27], stacks), b(v[28], filts))
        if sig not in cache:
            cache[sig] = space.key_of(v)
        return cache[sig]

    return key


def _cell_quality(table, tie_break: str):
    """Per cell of the table (its default entry): (rank among all cells, fitness); and the best fitness."""
    from engine.records import selection_key

    def sk(r):
        return selection_key(r.fitness, r.val_auc, r.flops, tie_break) if r.ok else (-float("inf"),)

    entries = {key: es[0].record for key, es in table.cells.items()}
    keys = {k: sk(r) for k, r in entries.items()}
    ordered = sorted(keys.values(), reverse=True)
    first = {}
    for pos, k in enumerate(ordered, start=1):
        first.setdefault(k, pos)
    rank = {cell: first[k] for cell, k in keys.items()}
    fitness = {cell: (r.fitness if r.ok and r.fitness is not None else 0.0) for cell, r in entries.items()}
    return rank, fitness, keys


def simulate(name: str, seed: int, table, space, search, max_budget: int, key_fn, max_proposals: int, keys) -> list:
    """One search of ``name`` against the table, run to ``max_budget`` trained cells.

    The session's rules: infeasible candidates are told 0 and cost nothing, a cell already
    trained reuses its result, a new cell spends one unit of budget (its result is the table's
    entry for the candidate's training seed, else the cell's first), a batch is cut where the
    budget ends. Returns the cell the run would report as best after each trained candidate.
    """
    from engine.exhaustive import ExhaustiveSearch
    from engine.bench_table import table_seed as candidate_seed  # (engine.executors would import torch)
    from engine.ode import ODE
    from engine.random_search import RandomSearch
    from engine.records import selection_key
    from engine.strategy import NO_TIE_BREAK

    if name == "ode":
        strategy = ODE(dim=space.dim, population=search.population, mutation_factor=search.mutation_factor,
                       crossover_rate=search.crossover_rate, jumping_rate=search.jumping_rate, seed=seed, key_fn=key_fn)
    elif name == "random":
        strategy = RandomSearch(dim=space.dim, population=search.population, seed=seed)
    else:
        strategy = ExhaustiveSearch(space, population=search.population, seed=seed)
    tie = search.tie_break
    archive: dict = {}
    trail: list = []
    best = None
    trained = proposals = 0
    while trained < max_budget and proposals < max_proposals and not getattr(strategy, "exhausted", False):
        batch = strategy.ask()
        told, secondary = [], []
        for i, v in enumerate(batch.vectors):
            proposals += 1
            key = key_fn(v)
            if key is None:
                result = (0.0, [NO_TIE_BREAK, NO_TIE_BREAK])
            elif key in archive:
                result = archive[key]
            else:
                if trained >= max_budget:
                    return trail
                entry = table.lookup(key, candidate_seed(seed, batch.first_id + i))
                if entry is None:
                    raise SystemExit(f"the table has no training of cell {space.decode(v).compact}: "
                                     "search_quality --table needs a table of the whole space (an exhaustive run)")
                r = entry.record
                if r.fitness is None or r.pruned:
                    result = (r.told_fitness, [NO_TIE_BREAK, NO_TIE_BREAK])
                else:
                    result = (r.told_fitness, [max(float(x), NO_TIE_BREAK)
                                               for x in selection_key(r.fitness, r.val_auc, r.flops, tie)[1:]])
                archive[key] = result
                trained += 1
                if r.ok and (best is None or keys[key] > keys[best]):
                    best = key
                trail.append(best)
            told.append(result[0])
            secondary.append(result[1])
        strategy.tell(told, None if tie == "none" else secondary)
    return trail


def _mean_ci(x):
    import numpy as np

    x = np.asarray(x, dtype=float)
    m = float(x.mean())
    h = 1.96 * float(x.std(ddof=1)) / len(x) ** 0.5 if len(x) > 1 else float("nan")
    return m, m - h, m + h


def _wilson(k: int, n: int):
    z = 1.96
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / d
    return p, max(0.0, c - h), min(1.0, c + h)


def table_statistics(table_path: str, seeds: int, strategies=TABLE_STRATEGIES, max_budget: int | None = None,
                     max_proposals_per_budget: int = 20) -> dict:
    """Per strategy and budget 1..max_budget: mean rank of the best found, P(top 1 %), P(top 5 %), mean regret (95 % CIs)."""
    import math

    import numpy as np

    from engine.bench_table import read_table
    from engine.profile import Profile
    from engine.space import SearchSpace

    table = read_table(table_path)
    profile = Profile.from_dict(table.header["profile"], origin=f"{table_path} header.profile")
    s = profile.space
    space = SearchSpace(ops=s.ops, stacks=s.stacks, modules=s.modules, filters=s.filters, max_edges=s.max_edges)
    search = profile.search
    rank, fitness, keys = _cell_quality(table, search.tie_break)
    n_cells = len(rank)
    top = {"top1": max(1, math.ceil(0.01 * n_cells)), "top5": max(1, math.ceil(0.05 * n_cells))}
    best_fit = max(fitness.values())
    budget = min(max_budget or n_cells, n_cells)
    key_fn = fast_key_fn(space)
    out: dict = {"cells": n_cells, "budget": budget, "seeds": seeds, "fitness": search.fitness, "top": top, "strategies": {}}
    for name in strategies:
        ranks = np.full((seeds, budget), float(n_cells))
        regret = np.full((seeds, budget), best_fit)
        reached = np.zeros(budget, dtype=int)
        for seed in range(seeds):
            trail = simulate(name, seed, table, space, search, budget, key_fn, max_proposals_per_budget * budget, keys)
            reached[: len(trail)] += 1
            for b in range(budget):
                cell = trail[min(b, len(trail) - 1)] if trail else None
                if cell is not None:
                    ranks[seed, b] = rank[cell]
                    regret[seed, b] = best_fit - fitness[cell]
        rows = []
        for b in range(budget):
            rows.append({
                "budget": b + 1,
                "mean_rank": _mean_ci(ranks[:, b]),
                "p_top1": _wilson(int((ranks[:, b] <= top["top1"]).sum()), seeds),
                "p_top5": _wilson(int((ranks[:, b] <= top["top5"]).sum()), seeds),
                "regret": _mean_ci(regret[:, b]),
                "reached": int(reached[b]),
            })
        out["strategies"][name] = rows
    return out


def _fmt(t, digits: int) -> str:
    return f"{t[0]:.{digits}f} [{t[1]:.{digits}f}, {t[2]:.{digits}f}]"


def table_main(args) -> int:
    import time

    start = time.perf_counter()
    strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    bad = [s for s in strategies if s not in TABLE_STRATEGIES]
    if bad:
        raise SystemExit(f"--strategies: unknown {bad[0]!r}; choose from {', '.join(TABLE_STRATEGIES)}")
    stats = table_statistics(args.table, args.seeds, strategies, args.max_budget, args.max_proposals)
    print(f"table {args.table}: {stats['cells']} cells, fitness {stats['fitness']}, {args.seeds} seeds per strategy, "
          f"budgets 1..{stats['budget']} (top 1 % = best {stats['top']['top1']}, top 5 % = best {stats['top']['top5']}); "
          "95 % CIs (mean: normal; proportions: Wilson)")
    shown = [b for b in SHOWN_BUDGETS if b <= stats["budget"]] + ([stats["budget"]] if stats["budget"] not in SHOWN_BUDGETS else [])
    for name, rows in stats["strategies"].items():
        for b in shown if not args.all_budgets else range(1, stats["budget"] + 1):
            r = rows[b - 1]
            print(f"{name:<10} budget {b:>4}  rank {_fmt(r['mean_rank'], 1)}  P(top1%) {_fmt(r['p_top1'], 3)}  "
                  f"P(top5%) {_fmt(r['p_top5'], 3)}  regret {_fmt(r['regret'], 4)}  reached {r['reached']}/{args.seeds}")
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(stats, indent=1))
    print(f"({time.perf_counter() - start:.1f} s)")
    b = min(10, stats["budget"])
    parts = []
    if "ode" in stats["strategies"] and "random" in stats["strategies"]:
        o, r = stats["strategies"]["ode"][b - 1], stats["strategies"]["random"][b - 1]
        overlap = not (o["mean_rank"][2] < r["mean_rank"][1] or r["mean_rank"][2] < o["mean_rank"][1])
        parts = [f"mean rank ode {_fmt(o['mean_rank'], 1)} vs random {_fmt(r['mean_rank'], 1)}",
                 f"P(top5%) ode {_fmt(o['p_top5'], 3)} vs random {_fmt(r['p_top5'], 3)}",
                 f"rank intervals overlap: {'yes' if overlap else 'no'}"]
    print(f"ode_vs_random_at_budget_{b}: " + ("; ".join(parts) if parts else "n/a (needs --strategies with ode and random)"))
    return 0



if __name__ == "__main__":
    raise SystemExit(main())
