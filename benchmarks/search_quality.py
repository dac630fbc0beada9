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

``--synthetic-table OUT [--profile quick]`` writes a table of made-up trainings of the profile's whole
space (250 cells for ``quick``), for timing this without an exhaustive run.

``--table TABLE.json --seeds 1000`` instead searches against a tabular
benchmark (``nas3d-tui bench table`` of an exhaustive run): no training, each
strategy (ode, random, exhaustive) run for seeds 0..N-1, with pruning off and
on (``--pruning both``: none, and the ``parent`` rule -- DE trials against
their parent, other batches against the median -- with the table profile's
warmup and margin), printing per strategy and budget from 1 to the table's
cell count the mean rank (among all cells) of the best found, P(top 1 %),
P(top 5 %) and mean regret in the fitness metric, each with a 95 % CI (test
AUC of the chosen cell: "—" while tables hold no test metrics), then its wall
time; its last line is ``ode_vs_random_at_budget_10: ...``. The table's own
profile (header) gives the space, population, F, CR, JR and tie-break.

Fast and exact (issue 29: 1,000 seeds per strategy in under a minute on two
cores): one search per seed to the largest budget gives every budget (its
best-so-far after each trained candidate); vectors are decoded to cell numbers
by numpy (``FastTable``); each answer is what a session searching through the
table evaluator would record (``fast_run``: duplicates, budget cut, pruning
replayed epoch by epoch); the ODE runs all seeds of a process together
(``ode_lockstep``: each seed's PCG64 stream replayed as ``engine.ode.ODE``
draws it); seeds are split between ``--processes`` (2). The tests check it
proposal by proposal against ``Session`` with the table executor.

With the paper's budget this is two full paper-protocol searches (a GPU job);
on a CPU use a small budget and few epochs, e.g.
``--budget 4 --every 2 --top-k 1 --seeds 0 --set training.epochs=1 --set final.epochs=1``.
"""
from __future__ import annotations

import argparse
import bisect
import math
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

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
    if "--synthetic-table" in argv:
        sp = argparse.ArgumentParser(description="write a made-up table of a profile's whole space (timing, tests)")
        sp.add_argument("--synthetic-table", required=True, metavar="OUT")
        sp.add_argument("--profile", default="quick")
        sp.add_argument("--seed", type=int, default=0)
        a = sp.parse_args(argv)
        from engine.profile import load_profile

        n = synthetic_table(load_profile(a.profile, ["search.pruning='none'"]), a.synthetic_table, seed=a.seed)
        print(f"{a.synthetic_table}: {n} cells of the {a.profile} space, made-up trainings (seed {a.seed})")
        return 0
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
        tp.add_argument("--pruning", choices=("both", *PRUNING_MODES), default="both",
                        help="both: without pruning and with the parent rule (default); or one mode")
        tp.add_argument("--processes", type=int, default=2, help="worker processes (seeds are split between them)")
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


def _fmt(t, digits: int) -> str:
    return f"{t[0]:.{digits}f} [{t[1]:.{digits}f}, {t[2]:.{digits}f}]"


def table_main(args) -> int:
    import time

    start = time.perf_counter()
    strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    bad = [s for s in strategies if s not in TABLE_STRATEGIES]
    if bad:
        raise SystemExit(f"--strategies: unknown {bad[0]!r}; choose from {', '.join(TABLE_STRATEGIES)}")
    modes = ("none", "parent") if args.pruning == "both" else (args.pruning,)
    stats = table_statistics(args.table, args.seeds, strategies, args.max_budget, args.max_proposals, modes, args.processes)
    seconds = time.perf_counter() - start
    print(f"table {args.table}: {stats['cells']} cells, fitness {stats['fitness']}, {args.seeds} seeds per strategy, "
          f"budgets 1..{stats['budget']} (top 1 % = best {stats['top']['top1']}, top 5 % = best {stats['top']['top5']}); "
          "95 % CIs (mean: normal; proportions: Wilson)")
    if stats["scored_cells"]:
        print(f"test AUC of the chosen cell (the best found by validation): the table's test metrics of "
              f"{stats['scored_cells']} of {stats['cells']} cells; the best cell by validation has test AUC "
              f"{stats['optimum_test_auc']:.4f}, the best test AUC of any cell is {stats['best_test_auc']:.4f}")
    else:
        print(f"test AUC of the chosen cell: — (the table has no test metrics: {stats['test_metrics'] or 'none'})")
    shown = [b for b in SHOWN_BUDGETS if b <= stats["budget"]] + ([stats["budget"]] if stats["budget"] not in SHOWN_BUDGETS else [])
    for mode, per in stats["pruning"].items():
        print(f"pruning {mode}" + ("" if mode == "none" else " (DE trials against their parent, other batches against the "
                                   "median; the table profile's warmup and margin)" if mode == "parent" else ""))
        for name, rows in per.items():
            for b in shown if not args.all_budgets else range(1, stats["budget"] + 1):
                r = rows[b - 1]
                test = f"  test AUC {_fmt(r['test_auc'], 4)}" if r["test_auc"] is not None else ""
                print(f"{name:<10} budget {b:>4}  rank {_fmt(r['mean_rank'], 1)}  P(top1%) {_fmt(r['p_top1'], 3)}  "
                      f"P(top5%) {_fmt(r['p_top5'], 3)}  regret {_fmt(r['regret'], 4)}{test}  "
                      f"reached {r['reached']}/{args.seeds}")
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(stats, indent=1))
    runs = len(strategies) * len(modes)
    print(f"wall time {seconds:.1f} s ({runs} x {args.seeds} searches to budget {stats['budget']}, "
          f"{args.processes} process{'es' if args.processes > 1 else ''})")
    b = min(10, stats["budget"])
    parts = []
    if "ode" in strategies and "random" in strategies:
        for mode, per in stats["pruning"].items():
            o, r = per["ode"][b - 1], per["random"][b - 1]
            overlap = not (o["mean_rank"][2] < r["mean_rank"][1] or r["mean_rank"][2] < o["mean_rank"][1])
            parts.append(("" if mode == "none" else f"with pruning {mode}: ")
                         + f"mean rank ode {_fmt(o['mean_rank'], 1)} vs random {_fmt(r['mean_rank'], 1)}; "
                         + f"P(top5%) ode {_fmt(o['p_top5'], 3)} vs random {_fmt(r['p_top5'], 3)}; "
                         + f"regret ode {_fmt(o['regret'], 4)} vs random {_fmt(r['regret'], 4)}; "
                         + (f"test AUC ode {_fmt(o['test_auc'], 4)} vs random {_fmt(r['test_auc'], 4)}; "
                            if o["test_auc"] is not None and r["test_auc"] is not None else "")
                         + f"rank intervals overlap: {'yes' if overlap else 'no'}")
    print(f"ode_vs_random_at_budget_{b}: " + ("; ".join(parts) if parts else "n/a (needs --strategies with ode and random)"))
    return 0


# ---------------------------------------------------------------------------------------------------------
# The fast path: the same searches, decoded by numpy and answered from arrays (issue 29: 1,000 seeds a minute)
# ---------------------------------------------------------------------------------------------------------
PRUNING_MODES = ("none", "parent", "median")
_OP_BASE = 16  # operation ids are 0..14; 0 in the signature stands for a node pruning removed


def _keep_tables():
    """For every 21-bit edge mask: the nodes on an input→output path (bit n = node n; 0 when none) and the edges among them."""
    from engine.space import EDGE_INDICES

    masks = np.arange(1 << len(EDGE_INDICES), dtype=np.int64)
    ins = [np.zeros_like(masks) for _ in range(7)]
    outs = [np.zeros_like(masks) for _ in range(7)]
    for idx, (i, j) in enumerate(EDGE_INDICES):
        bit = (masks >> idx) & 1
        ins[j] |= bit << i
        outs[i] |= bit << j
    reach = np.ones_like(masks)
    for n in range(1, 7):
        reach |= ((ins[n] & reach) != 0).astype(np.int64) << n
    co = np.full_like(masks, 1 << 6)
    for n in range(5, -1, -1):
        co |= ((outs[n] & co) != 0).astype(np.int64) << n
    keep = np.where(reach >> 6 & 1 == 1, reach & co, 0)
    among = np.zeros(128, dtype=np.int64)  # edge bits whose two ends are both kept, per kept-node set
    for k in range(128):
        among[k] = sum(1 << idx for idx, (i, j) in enumerate(EDGE_INDICES) if k >> i & 1 and k >> j & 1)
    return keep.astype(np.uint8), (masks & among[keep]).astype(np.uint32)


_KEEP_TABLES: list = []


class FastTable:
    """A table as arrays for many searches: cells numbered 0..n-1 (sorted by key), vectors decoded by numpy.

    ``cells(V)`` is ``space.key_of`` for a whole matrix of vectors, as cell numbers (-1: infeasible; n and
    above: a feasible cell the table lacks): the pruned cell's signature (edges among the kept nodes, their
    operations, the macro bins) is computed with two table lookups and integer arithmetic, and each new
    signature is keyed once by ``space.key_of`` (so the key is the search's own, by construction).
    ``result(cell, seed, rule)`` is what the table evaluator answers (``engine.executors.table.replay``).
    """

    def __init__(self, table, space, search, max_epochs: int) -> None:
        from engine.records import selection_key
        from engine.space import NUM_EDGE_GENES, NUM_OP_GENES

        if not _KEEP_TABLES:
            _KEEP_TABLES.extend(_keep_tables())
        self.keep, self.pruned_edges = _KEEP_TABLES
        # the search's feasibility rules on the pruned cell: an input→output path through an operation node, at
        # most max_edges edges (infeasible cells get -1 at once: no key_of for each of their many signatures)
        self.feasible = ((self.keep & 0b0111110) != 0) & (np.bitwise_count(self.pruned_edges) <= space.max_edges)
        self.space, self.search, self.max_epochs = space, search, max_epochs
        self.tie = search.tie_break
        self.keys = sorted(table.cells)
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.n = len(self.keys)
        self.table = table
        self.default = [table.cells[k][0] for k in self.keys]
        self.seeded = {(self.index[k], e.seed): e for k, es in table.cells.items() if len(es) > 1 for e in es}
        self.extra: list = []  # keys of feasible cells the table lacks (numbered n, n + 1, ...)
        self.edge_weights = np.int64(1) << np.arange(NUM_EDGE_GENES, dtype=np.int64)
        self.ops = np.array(space.ops, dtype=np.int64)
        self.macro_bins = (len(space.modules), len(space.stacks), len(space.filters))
        self.node_bits = np.int64(1) << np.arange(1, NUM_OP_GENES + 1, dtype=np.int64)
        self.op_weights = np.int64(_OP_BASE) ** np.arange(NUM_OP_GENES, dtype=np.int64)
        self.op_slice = slice(NUM_EDGE_GENES, NUM_EDGE_GENES + NUM_OP_GENES)
        self.cache: dict = {-1: -1}  # signature -> cell number
        self._sigs = np.array([-1], dtype=np.int64)  # the cache as sorted arrays (vectorised lookups)
        self._sig_cells = np.array([-1], dtype=np.int64)
        self._replays: dict = {}
        self._parent_rules: dict = {}
        self.selection_key = selection_key
        # per cell (its default entry): the quality the report ranks by
        def sk(r):
            return selection_key(r.fitness, r.val_auc, r.flops, self.tie) if r.ok else (-float("inf"),)
        keys = [sk(e.record) for e in self.default]
        ordered = sorted(keys, reverse=True)
        first: dict = {}
        for pos, k in enumerate(ordered, start=1):
            first.setdefault(k, pos)
        self.quality = keys
        self.rank = np.array([first[k] for k in keys] + [self.n], dtype=float)  # [-1] (no cell found): the worst
        self.fitness = np.array([(e.record.fitness if e.record.ok and e.record.fitness is not None else 0.0)
                                 for e in self.default] + [0.0])
        self.ok_default = [e.record.ok for e in self.default]
        # the test AUC of each cell's default training (the table's, when its run scored them); NaN: none
        self.test_auc = np.array([(e.record.test_auc if e.record.ok and e.record.test_auc is not None else np.nan)
                                  for e in self.default] + [np.nan])

    # ---------------------------------------------------------------- decoding
    def signatures(self, V: np.ndarray) -> np.ndarray:
        n_ops = len(self.ops)
        mods, stacks, filts = self.macro_bins
        edges = (V[:, : len(self.edge_weights)] >= 0.5).astype(np.int64) @ self.edge_weights
        keep = self.keep[edges].astype(np.int64)
        bins = np.minimum((V[:, self.op_slice] * n_ops).astype(np.int64), n_ops - 1)
        ops = np.where((keep[:, None] & self.node_bits) != 0, self.ops[bins] + 1, 0) @ self.op_weights
        m = np.minimum((V[:, -3] * mods).astype(np.int64), mods - 1)
        s = np.minimum((V[:, -2] * stacks).astype(np.int64), stacks - 1)
        f = np.minimum((V[:, -1] * filts).astype(np.int64), filts - 1)
        sig = self.pruned_edges[edges].astype(np.int64) * (_OP_BASE ** len(self.node_bits)) + ops
        return np.where(self.feasible[edges], ((sig * mods + m) * stacks + s) * filts + f, -1)

    def _miss(self, sig: int, vector) -> int:
        key = self.space.key_of([float(x) for x in vector])
        if key is None:
            cell = -1
        elif key in self.index:
            cell = self.index[key]
        else:
            self.extra.append(key)
            cell = self.index[key] = self.n + len(self.extra) - 1
        self.cache[sig] = cell
        return cell

    def cells_array(self, V: np.ndarray) -> np.ndarray:
        """The cell number of every row of ``V`` (-1: infeasible), as an array."""
        sig = self.signatures(V)
        pos = np.minimum(np.searchsorted(self._sigs, sig), len(self._sigs) - 1)
        miss = np.flatnonzero(self._sigs[pos] != sig)
        if len(miss):  # signatures not seen yet: keyed once each, then the sorted arrays are rebuilt
            for i in miss.tolist():
                if int(sig[i]) not in self.cache:
                    self._miss(int(sig[i]), V[i])
            self._sigs = np.array(sorted(self.cache), dtype=np.int64)
            self._sig_cells = np.array([self.cache[k] for k in self._sigs.tolist()], dtype=np.int64)
            pos = np.searchsorted(self._sigs, sig)
        out: np.ndarray = self._sig_cells[pos]
        return out

    def cells(self, V: np.ndarray) -> list:
        """The cell number of every row of ``V`` (-1: infeasible)."""
        return self.cells_array(V).tolist()

    def key_fn(self, vector) -> int | None:
        """The ODE's ``key_fn`` (distinct cells = distinct numbers), None when infeasible."""
        c = self.cells(np.asarray(vector, dtype=float).reshape(1, -1))[0]
        return None if c < 0 else c

    # ---------------------------------------------------------------- answers
    def entry(self, cell: int, seed: int):
        if cell >= self.n:
            raise SystemExit(f"the table has no training of cell {self.extra[cell - self.n]}: "
                             "search_quality --table needs a table of the whole space (an exhaustive run)")
        e = self.seeded.get((cell, seed)) if self.seeded else None
        return self.default[cell] if e is None else e

    def _curves(self, entry):
        """Per epoch of the entry's history: (best so far, its val_acc, its val_auc), as the replay keeps them."""
        got = self._replays.get(id(entry))
        if got is None:
            select = self.search.fitness
            best = acc = auc = None
            out = []
            for h in entry.record.history:
                v = float(h[select])
                if not math.isnan(v) and (best is None or v > best):
                    best, acc, auc = v, float(h["val_acc"]), float(h["val_auc"])
                out.append((best, acc, auc))
            got = self._replays[id(entry)] = (entry, out)
        return got[1]

    def result(self, entry, rule):
        """(ok, told fitness, tie-break row, replayed best curve or None, finished) for ``entry`` trained under ``rule``.

        The table evaluator's replay (``engine.executors.table.replay``) and the session's record of it.
        """
        from engine.bench_table import TableError
        from engine.strategy import NO_TIE_BREAK

        r = entry.record
        curve = self._curves(entry)
        n = len(curve)
        pruned_at = None
        for epoch in range(1, n + 1):
            last = epoch == n
            if last and r.status != "pruned":
                break
            if rule is not None and epoch < self.max_epochs and rule.prunes(epoch, curve[epoch - 1][0]):
                pruned_at = epoch
                break
            if last:
                raise TableError(f"the table's training of cell {r.key} (seed {entry.seed}) was pruned at epoch {epoch}; "
                                 "this search would train it further: use a table built with search.pruning = \"none\"")
        nothing = [NO_TIE_BREAK, NO_TIE_BREAK]
        if r.status in ("oom", "failed") and pruned_at is None:
            return False, 0.0, nothing, None, False
        if pruned_at is not None:
            return False, 0.0, nothing, [c[0] for c in curve[:pruned_at]], False
        best, _, auc = curve[-1] if curve else (None, None, None)
        if best is None:
            return False, 0.0, nothing, None, False
        key = self.selection_key(best, auc, r.flops, self.tie)[1:]
        return True, float(best), [max(float(x), NO_TIE_BREAK) for x in key], [c[0] for c in curve], True

    def parent_rule(self, parent_entry, warmup: int, margin: float):
        from engine.pruning import parent_rule

        k = (id(parent_entry), warmup, margin)
        rule = self._parent_rules.get(k)
        if rule is None:
            rule = self._parent_rules[k] = parent_rule(
                parent_entry.record.history, self.search.fitness, self.max_epochs, warmup=warmup, margin=margin)
        return rule


class _Median:
    """The ``median`` rule's bars from every earlier trained curve, kept sorted per epoch (``engine.pruning.median_rule``)."""

    def __init__(self, epochs: int, warmup: int, margin: float) -> None:
        self.epochs, self.warmup, self.margin = epochs, warmup, margin
        self.values: list = [[] for _ in range(epochs)]
        self.curves = 0
        self.pending: list = []
        self.rule = None
        self.stale = True

    def add_later(self, curve, finished: bool) -> None:
        """A curve of this batch: a reference from the next batch on."""
        self.pending.append((curve, finished))

    def batch_done(self) -> None:
        for curve, finished in self.pending:
            if not curve:
                continue
            self.curves += 1
            for e in range(1, self.epochs + 1):
                v = curve[e - 1] if e <= len(curve) else (curve[-1] if finished else None)
                if v is not None:
                    bisect.insort(self.values[e - 1], v)
            self.stale = True
        self.pending = []

    def current(self):
        from engine.pruning import MIN_REFERENCE, PruneRule

        if self.stale:
            self.stale = False
            self.rule = None
            if self.curves >= MIN_REFERENCE:
                bars = []
                for vs in self.values:
                    n = len(vs)
                    if n < MIN_REFERENCE:
                        bars.append(None)
                    else:
                        mid = n // 2
                        bars.append((vs[mid] if n % 2 else (vs[mid - 1] + vs[mid]) / 2.0) - self.margin)
                if any(b is not None for b in bars):
                    self.rule = PruneRule(tuple(bars), warmup=self.warmup, reference=f"median of {self.curves}")
        return self.rule


class _Run:
    """One search's answers: its archive (cell -> result), budget, pruning references and best-so-far trail."""

    def __init__(self, ft: FastTable, seed: int, budget: int, pruning: str) -> None:
        s = ft.search
        self.ft, self.seed, self.budget, self.pruning = ft, seed, budget, pruning
        self.warmup, self.margin = s.pruning_warmup, s.pruning_margin
        self.median = _Median(ft.max_epochs, s.pruning_warmup, s.pruning_margin) if pruning != "none" else None
        self.archive: dict = {}  # cell -> (ok, told, secondary, curve, finished, entry)
        self.trail: list = []
        self.best = -1
        self.trained = 0

    def train(self, cell: int, cid: int, parent_cell: int | None):
        """The result of a cell this search has not trained (proposal ``cid``); None: the budget is spent.

        ``parent_cell``: for a DE trial under the ``parent`` rule, the cell of its target parent (-1:
        infeasible); None: the batch has no parents (the median rule).
        """
        from engine.bench_table import table_seed

        if self.trained >= self.budget:
            return None
        ft = self.ft
        entry = ft.entry(cell, table_seed(self.seed, cid))
        rule = None
        if self.pruning != "none":
            if parent_cell is not None:
                parent = self.archive.get(parent_cell) if parent_cell >= 0 else None
                rule = ft.parent_rule(parent[5], self.warmup, self.margin) if parent is not None and parent[0] else None
            else:
                rule = self.median.current()
        ok, fit, sec, curve, finished = ft.result(entry, rule)
        got = self.archive[cell] = (ok, fit, sec, curve, finished, entry)
        if self.median is not None and curve is not None:
            self.median.add_later(curve, finished)
        self.trained += 1
        if ok and (self.best < 0 or ft.quality[cell] > ft.quality[self.best]):
            self.best = cell
        self.trail.append(self.best)
        return got


def fast_run(ft: FastTable, name: str, seed: int, budget: int, max_proposals: int, pruning: str = "none",
             log: list | None = None) -> list:
    """``simulate`` (and the session through the table evaluator) on arrays: the best cell after each trained candidate.

    Returns one cell number per trained candidate (-1 while nothing trained fine). ``pruning``: ``none``,
    ``parent`` (DE trials against their target parent, every other batch against the median, as the
    session does) or ``median``, with the table profile's warmup and margin. ``log``: gets (cell, told
    fitness) of every proposal answered (the equivalence test's view of the search).
    """
    from engine.exhaustive import enumerate_cells, seeded_order
    from engine.ode import ODE
    from engine.strategy import NO_TIE_BREAK

    search = ft.search
    npop = search.population
    run = _Run(ft, seed, budget, pruning)
    proposals = 0
    if name == "ode":
        strategy = ODE(dim=ft.space.dim, population=npop, mutation_factor=search.mutation_factor,
                       crossover_rate=search.crossover_rate, jumping_rate=search.jumping_rate, seed=seed, key_fn=ft.key_fn)
        batches = None
    elif name == "random":
        strategy = None
        n_batches = -(-max_proposals // npop)
        V = np.random.Generator(np.random.PCG64(seed)).random((n_batches * npop, ft.space.dim))  # RandomSearch.ask, batch after batch
        flat = ft.cells_array(V)
        batches = (flat[b * npop:(b + 1) * npop].tolist() for b in range(n_batches))
    else:
        strategy = None
        order = [ft.index[c.key] if c.key in ft.index else ft.cells(np.array([c.vector]))[0]
                 for c in seeded_order(enumerate_cells(ft.space), seed)]
        batches = (order[b:b + npop] for b in range(0, len(order), npop))
    if strategy is None and log is None:
        # Random and exhaustive proposals do not depend on what they are told: only each cell's first
        # proposal trains, so only those are visited (with the batch boundaries the median rule needs).
        flat_cells = flat if name == "random" else np.array(order, dtype=np.int64)
        feasible = np.flatnonzero(flat_cells >= 0)
        _, first = np.unique(flat_cells[feasible], return_index=True)
        batch_of = -1
        for pos in np.sort(feasible[first]).tolist():
            if pos // npop != batch_of:
                batch_of = pos // npop
                if run.median is not None:
                    run.median.batch_done()
            if run.train(int(flat_cells[pos]), pos, None) is None:
                break
        return run.trail
    cid_cell: list = []  # cell number of every proposal (parents are looked up by proposal id)
    none = [NO_TIE_BREAK, NO_TIE_BREAK]
    while run.trained < budget and proposals < max_proposals:
        if strategy is None:
            cells = next(batches, None)
            if cells is None:
                break
            first_id, phase = proposals, None
        else:
            batch = strategy.ask()
            cells = ft.cells(np.array(batch.vectors))
            first_id, phase = batch.first_id, batch.phase
        parents = strategy.population_ids if (pruning == "parent" and phase == "trial") else None
        told: list = []
        secondary: list = []
        if pruning == "parent":
            cid_cell.extend(cells)
        for i, cell in enumerate(cells):
            proposals += 1
            if cell < 0:
                told.append(0.0)
                secondary.append(none)
                if log is not None:
                    log.append((-1, 0.0))
                continue
            got = run.archive.get(cell)
            if got is None:
                got = run.train(cell, first_id + i, None if parents is None else cid_cell[parents[i]])
                if got is None:
                    return run.trail
            told.append(got[1])
            secondary.append(got[2])
            if log is not None:
                log.append((cell, got[1]))
        if run.median is not None:
            run.median.batch_done()
        if strategy is not None:
            strategy.tell(told, None if ft.tie == "none" else secondary)
    return run.trail


_U32 = np.uint64(0xFFFFFFFF)
_TO_DOUBLE = 1.0 / 9007199254740992.0  # 2**-53


class _Streams:
    """Many PCG64 streams drawn as ``numpy.random.Generator`` draws from one: raw 64-bit outputs in blocks.

    Doubles take one output each (its top 53 bits); 32-bit draws take the low then the high half of an
    output (numpy's buffered ``next_uint32``, whose state is ``has_uint32``/``uinteger``); bounded integers
    are Lemire's method on 32-bit draws (``random_bounded_uint64`` for ranges below 2**32). Checked against
    ``Generator.random``, ``.integers`` and ``.choice`` by the equivalence tests (every ODE proposal).
    """

    def __init__(self, states: list, block: int = 8192) -> None:
        self.gens = []
        for st in states:
            bg = np.random.PCG64()
            bg.state = st
            self.gens.append(bg)
        self.has = np.array([bool(st["has_uint32"]) for st in states])
        self.buf = np.array([int(st["uinteger"]) for st in states], dtype=np.uint64)
        self.block = block
        self.raw = np.stack([bg.random_raw(block) for bg in self.gens])
        self.p = np.zeros(len(states), dtype=np.int64)

    def refill(self, need: int) -> None:
        """Make sure every stream has ``need`` outputs left in its block."""
        for s in np.flatnonzero(self.p > self.block - need):
            p = int(self.p[s])
            self.raw[s] = np.concatenate([self.raw[s, p:], self.gens[s].random_raw(p)])
            self.p[s] = 0

    def u32(self, sel: np.ndarray) -> np.ndarray:
        has = self.has[sel]
        p = self.p[sel]
        r = self.raw[sel, p]
        out = np.where(has, self.buf[sel], r & _U32)
        self.buf[sel] = np.where(has, self.buf[sel], r >> np.uint64(32))
        self.p[sel] = p + (~has)
        self.has[sel] = ~has
        return out

    def doubles(self, sel: np.ndarray, n: int) -> np.ndarray:
        p = self.p[sel]
        r = self.raw[sel[:, None], p[:, None] + np.arange(n)]
        self.p[sel] = p + n
        return (r >> np.uint64(11)).astype(np.float64) * _TO_DOUBLE

    def bounded(self, sel: np.ndarray, rng: int) -> np.ndarray:
        """Uniform integers in [0, rng] (Lemire, as numpy's ``random_bounded_uint64`` for 32-bit ranges)."""
        if rng == 0:
            return np.zeros(len(sel), dtype=np.int64)
        ex = np.uint64(rng + 1)
        m = self.u32(sel) * ex
        threshold = np.uint64((0xFFFFFFFF - rng) % (rng + 1))
        redo = np.flatnonzero((m & _U32) < threshold)
        while len(redo):
            m[redo] = self.u32(sel[redo]) * ex
            redo = redo[(m[redo] & _U32) < threshold]
        return (m >> np.uint64(32)).astype(np.int64)


def ode_lockstep(ft: FastTable, seeds, budget: int, max_proposals: int, pruning: str = "none") -> list:
    """``fast_run(ft, "ode", seed, ...)`` for many seeds at once: the same trails, the ODE vectorised across seeds.

    Each seed's init and opposite batches come from ``engine.ode.ODE`` itself; from the first generation
    on, the seeds' DE/rand/1/bin trials, generation jumps, greedy selections and JR coins are computed
    together on arrays, each seed drawing from its own PCG64 stream exactly as ``ODE`` draws
    (``_Streams``). A proposal whose cell a seed already trained (or that is infeasible) is answered from
    arrays; a new cell goes through that seed's ``_Run`` (budget, pruning, trail) as in ``fast_run``.
    """
    from engine.ode import ODE
    from engine.strategy import NO_TIE_BREAK

    search = ft.search
    npop, dim = search.population, ft.space.dim
    F, CR, JR = search.mutation_factor, search.crossover_rate, search.jumping_rate
    width = 0 if ft.tie == "none" else 2
    none = [NO_TIE_BREAK, NO_TIE_BREAK]
    seeds = list(seeds)
    S = len(seeds)
    runs = [_Run(ft, seed, budget, pruning) for seed in seeds]
    n = ft.n
    known = np.zeros((S, n), dtype=bool)
    told_of = np.zeros((S, n))
    sec_of = np.zeros((S, n, width))
    pop = np.zeros((S, npop, dim))
    fit = np.zeros((S, npop))
    sec = np.zeros((S, npop, width))
    ids = np.zeros((S, npop), dtype=np.int64)
    states = []
    active = np.ones(S, dtype=bool)
    steps = -(-max_proposals // npop)
    cid_cell = np.full((S, (steps + 1) * npop), -1, dtype=np.int64)
    # the first two batches (init, opposite): the ODE object itself
    for row, (seed, run) in enumerate(zip(seeds, runs)):
        ode = ODE(dim=dim, population=npop, mutation_factor=F, crossover_rate=CR, jumping_rate=JR, seed=seed,
                  key_fn=ft.key_fn)
        for _ in range(2):
            if not (run.trained < budget and ode._next_id < max_proposals):
                active[row] = False
                break
            batch = ode.ask()
            cells = ft.cells(np.array(batch.vectors))
            cid_cell[row, batch.first_id:batch.first_id + len(cells)] = cells
            told, secondary = [], []
            for i, cell in enumerate(cells):
                if cell < 0:
                    told.append(0.0)
                    secondary.append(none)
                    continue
                got = run.archive.get(cell)
                if got is None:
                    got = run.train(cell, batch.first_id + i, None)
                    if got is None:
                        break
                    if cell < n:
                        known[row, cell], told_of[row, cell], sec_of[row, cell] = True, got[1], got[2][:width]
                told.append(got[1])
                secondary.append(got[2])
            if len(told) < len(cells):
                active[row] = False
                break
            if run.median is not None:
                run.median.batch_done()
            ode.tell(told, None if width == 0 else secondary)
        if active[row]:
            assert ode.phase == "trial" and ode._next_id == 2 * npop
            pop[row], fit[row], ids[row] = ode._population, ode._fitness, ode._population_ids
            sec[row] = ode._secondary.reshape(npop, width)
        states.append(ode.rng.bit_generator.state)
    streams = _Streams(states)
    jump = np.zeros(S, dtype=bool)
    next_id = 2 * npop
    rows_all = np.arange(S)
    others = np.array([[k + (k >= j) for k in range(npop - 1)] for j in range(npop)])
    while next_id < max_proposals:
        sel = rows_all[active]
        if not len(sel):
            break
        streams.refill(npop * (2 * dim + 24) + 8)
        trial_rows = sel[~jump[sel]]
        jump_rows = sel[jump[sel]]
        V = np.empty((S, npop, dim))
        if len(jump_rows):
            P = pop[jump_rows]
            V[jump_rows] = (P.min(axis=1) + P.max(axis=1))[:, None, :] - P
        k = len(trial_rows)
        if k:
            ar = np.arange(k)
            for j in range(npop):  # DE/rand/1/bin, target j (ODE._trials): the draws of mutation_rand1, crossover_bin, boundary_check
                pick = np.empty((k, 3), dtype=np.int64)
                m = npop - 1
                for t, jj in enumerate(range(m - 3, m)):  # rng.choice(others, 3, replace=False): Floyd's sampling ...
                    v = streams.bounded(trial_rows, jj)
                    dup = (pick[:, :t] == v[:, None]).any(axis=1) if t else np.zeros(k, dtype=bool)
                    pick[:, t] = np.where(dup, jj, v)
                for i in (2, 1):  # ... then a shuffle of the three
                    r = streams.bounded(trial_rows, i)
                    a = pick[:, i].copy()
                    pick[:, i] = pick[ar, r]
                    pick[ar, r] = a
                r1, r2, r3 = (others[j][pick[:, c]] for c in range(3))
                P = pop[trial_rows]
                mutant = P[ar, r1] + F * (P[ar, r2] - P[ar, r3])
                take = streams.doubles(trial_rows, dim) < CR
                take[ar, streams.bounded(trial_rows, dim - 1)] = True
                trial = np.where(take, mutant, P[:, j])
                bad = (trial < 0.0) | (trial > 1.0)
                nbad = bad.sum(axis=1)
                if nbad.any():
                    who = np.flatnonzero(nbad)
                    draws = streams.doubles(trial_rows[who], int(nbad.max()))
                    streams.p[trial_rows[who]] -= int(nbad.max()) - nbad[who]  # each stream used only its own count
                    rank = np.cumsum(bad[who], axis=1) - 1
                    sub = trial[who]
                    sub[bad[who]] = draws[np.nonzero(bad[who])[0], rank[bad[who]]]
                    trial[who] = sub
                V[trial_rows, j] = trial
        C = ft.cells_array(V[sel].reshape(-1, dim)).reshape(len(sel), npop)
        cid_cell[sel, next_id:next_id + npop] = C
        told = np.zeros((len(sel), npop))
        tsec = np.full((len(sel), npop, width), NO_TIE_BREAK)
        alive = np.ones(len(sel), dtype=bool)
        trial_mask = ~jump[sel]
        for i in range(npop):
            c = C[:, i]
            feas = c >= 0
            cc = np.where(feas & (c < n), c, 0)
            hit = feas & (c < n) & known[sel, cc]
            told[hit, i] = told_of[sel[hit], cc[hit]]
            tsec[hit, i] = sec_of[sel[hit], cc[hit]]
            for q in np.flatnonzero(feas & ~hit & alive):  # a cell this seed has not trained: its _Run decides
                row = sel[q]
                run = runs[row]
                parent = int(cid_cell[row, ids[row, i]]) if (pruning == "parent" and trial_mask[q]) else None
                got = run.train(int(c[q]), next_id + i, parent)
                if got is None:
                    alive[q] = False
                    continue
                if c[q] < n:
                    known[row, c[q]], told_of[row, c[q]], sec_of[row, c[q]] = True, got[1], got[2][:width]
                told[q, i] = got[1]
                tsec[q, i] = got[2][:width]
        for q in range(len(sel)):
            med = runs[sel[q]].median
            if med is not None and med.pending:
                med.batch_done()
        active[sel[~alive]] = False
        active[sel[[runs[r].trained >= budget for r in sel]]] = False
        # tell: greedy selection and the JR coin (trial batches), the best NP of population + batch (jumps)
        tq = np.flatnonzero(trial_mask & alive)
        if len(tq):
            rows = sel[tq]
            ge = np.ones((len(tq), npop), dtype=bool)
            for col in range(width - 1, -1, -1):
                new, old = tsec[tq, :, col], sec[rows, :, col]
                ge = (new > old) | ((new == old) & ge)
            ge = (told[tq] > fit[rows]) | ((told[tq] == fit[rows]) & ge)
            wr, wj = np.nonzero(ge)
            pop[rows[wr], wj] = V[rows[wr], wj]
            fit[rows[wr], wj] = told[tq][wr, wj]
            sec[rows[wr], wj] = tsec[tq][wr, wj]
            ids[rows[wr], wj] = next_id + wj
            jump[rows] = streams.doubles(rows, 1)[:, 0] < JR
        jq = np.flatnonzero(~trial_mask & alive)
        if len(jq):
            rows = sel[jq]
            allv = np.concatenate([pop[rows], V[rows]], axis=1)
            allf = np.concatenate([fit[rows], told[jq]], axis=1)
            alls = np.concatenate([sec[rows], tsec[jq]], axis=1)
            alli = np.concatenate([ids[rows], np.broadcast_to(next_id + np.arange(npop), (len(jq), npop))], axis=1)
            keys = [np.broadcast_to(np.arange(2 * npop), allf.shape).ravel()]
            keys += [-alls[:, :, col].ravel() for col in range(width - 1, -1, -1)]
            keys += [-allf.ravel(), np.repeat(np.arange(len(jq)), 2 * npop)]
            order = np.lexsort(keys).reshape(len(jq), 2 * npop)[:, :npop] - (np.arange(len(jq)) * 2 * npop)[:, None]
            rr = np.arange(len(jq))[:, None]
            pop[rows], fit[rows], sec[rows], ids[rows] = allv[rr, order], allf[rr, order], alls[rr, order], alli[rr, order]
            jump[rows] = False
        next_id += npop
    return [run.trail for run in runs]


def synthetic_table(profile, path, seed: int = 0, quantum: float = 0.01, test_metrics: bool = True) -> int:
    """Write a made-up table of the profile's whole space (for tests and timing); returns its cell count.

    With ``test_metrics`` each cell also gets a made-up test AUC / ACC (its validation AUC plus noise).

    Every cell trains ``training.epochs`` epochs (some stop early), its validation AUC and ACC per epoch
    drawn from ``seed`` and rounded to ``quantum`` (so fitnesses tie and tie-breaks matter); params and
    FLOPs are the real counts for a 1-channel, 2-class 28³ input (what the bundled data gives).
    """
    from engine.bench_table import build_table, write_table
    from engine.exhaustive import enumerate_cells
    from engine.records import CandidateRecord, EpochRecord
    from engine.session.measure import ComplexityCounter
    from engine.session.setup import space_of

    space = space_of(profile)
    cells = enumerate_cells(space)
    counter = ComplexityCounter(1, 2, 28)
    rng = np.random.default_rng(seed)
    epochs = profile.training.epochs
    select = profile.search.fitness
    records = {}
    for i, cell in enumerate(cells):
        g = space.decode(cell.vector)
        n = int(rng.integers(max(1, epochs - 1), epochs + 1))
        level = rng.uniform(0.5, 0.9)
        history = []
        for e in range(1, n + 1):
            auc = round(min(1.0, max(0.0, level + rng.normal(0.0, 0.05) + 0.02 * e)) / quantum) * quantum
            acc = round(rng.uniform(0.6, 0.8) / quantum) * quantum
            history.append(EpochRecord(epoch=e, train_loss=0.6, val_loss=0.6, val_acc=acc, val_auc=auc, seconds=1.0))
        best = max(range(n), key=lambda k: (history[k][select], -k))
        h = history[best]
        params, flops = counter.get(g)
        test_auc = float(np.clip(h["val_auc"] + rng.normal(0.0, 0.03), 0.0, 1.0)) if test_metrics else None
        test_acc = float(np.clip(h["val_acc"] + rng.normal(0.0, 0.03), 0.0, 1.0)) if test_metrics else None
        records[i] = CandidateRecord(i, i // 4, "exhaustive", "ok", key=cell.key, genotype=g.to_dict(), vector=list(cell.vector),
                                     fitness=h[select], val_acc=h["val_acc"], val_auc=h["val_auc"], params=params,
                                     flops=flops, epochs=n, seconds=float(n), history=history, trained=i + 1,
                                     test_acc=test_acc, test_auc=test_auc)
    write_table(build_table(profile.to_dict(), records, command="search_quality.synthetic_table", run_dir="-",
                            space_cells=len(cells)), path)
    return len(cells)


_FT: list = []  # the FastTable the worker processes inherit (fork)


def _trails_job(job):
    """Ranks and regrets of seeds lo..hi-1 of one strategy (a worker's share)."""
    name, pruning, lo, hi, budget, max_proposals = job
    ft = _FT[0]
    best_fit = float(ft.fitness.max())
    ranks = np.empty((hi - lo, budget))
    regret = np.empty((hi - lo, budget))
    test = np.empty((hi - lo, budget))
    lengths = np.zeros(hi - lo, dtype=int)
    trails = ode_lockstep(ft, range(lo, hi), budget, max_proposals, pruning) if name == "ode" else None
    for row, seed in enumerate(range(lo, hi)):
        trail = trails[row] if trails is not None else fast_run(ft, name, seed, budget, max_proposals, pruning)
        lengths[row] = len(trail)
        idx = np.array((trail + [trail[-1]] * (budget - len(trail))) if trail else [-1] * budget, dtype=np.int64)
        ranks[row] = ft.rank[idx]
        regret[row] = best_fit - ft.fitness[idx]
        test[row] = ft.test_auc[idx]
    return name, pruning, lo, ranks, regret, lengths, test


def _worker(todo, queue) -> None:
    try:
        for job in iter(todo.get, None):
            queue.put(_trails_job(job))
    except BaseException as exc:  # the parent raises it
        queue.put(exc)


def table_statistics(table_path: str, seeds: int, strategies=TABLE_STRATEGIES, max_budget: int | None = None,
                     max_proposals_per_budget: int = 20, pruning=("none",), processes: int = 2) -> dict:
    """Per pruning mode, strategy and budget 1..max_budget: mean rank of the best found, P(top 1 %), P(top 5 %),
    mean regret (95 % CIs). One search per seed to the largest budget gives every budget (its anytime curve)."""
    from engine.bench_table import read_table
    from engine.profile import Profile
    from engine.space import SearchSpace

    table = read_table(table_path)
    profile = Profile.from_dict(table.header["profile"], origin=f"{table_path} header.profile")
    s = profile.space
    space = SearchSpace(ops=s.ops, stacks=s.stacks, modules=s.modules, filters=s.filters, max_edges=s.max_edges)
    ft = FastTable(table, space, profile.search, profile.training.epochs)
    n_cells = ft.n
    top = {"top1": max(1, math.ceil(0.01 * n_cells)), "top5": max(1, math.ceil(0.05 * n_cells))}
    budget = min(max_budget or n_cells, n_cells)
    max_proposals = max_proposals_per_budget * budget
    # ODE runs its seeds together (ode_lockstep: the more the cheaper each), one share per process; the others
    # in small shares, after, so the processes finish together
    share = -(-seeds // max(1, processes))
    chunk = max(1, min(50, -(-seeds // (4 * max(1, processes)))))
    jobs = [(name, mode, lo, min(seeds, lo + (share if name == "ode" else chunk)), budget, max_proposals)
            for name in sorted(strategies, key=lambda n: n != "ode") for mode in pruning
            for lo in range(0, seeds, share if name == "ode" else chunk)]
    _FT[:] = [ft]
    results: list = []
    if processes > 1 and len(jobs) > 1:
        import multiprocessing as mp

        ctx = mp.get_context("fork")  # the workers inherit the table, the decoder and this module (no pickling)
        todo, queue = ctx.Queue(), ctx.Queue()
        for job in jobs + [None] * processes:
            todo.put(job)
        workers = [ctx.Process(target=_worker, args=(todo, queue), daemon=True) for _ in range(processes)]
        for w in workers:
            w.start()
        for _ in jobs:
            got = queue.get()
            if isinstance(got, BaseException):
                raise got
            results.append(got)
        for w in workers:
            w.join()
    else:
        results = [_trails_job(j) for j in jobs]
    scored_cells = int(np.isfinite(ft.test_auc[:-1]).sum())
    out: dict = {"cells": n_cells, "budget": budget, "seeds": seeds, "fitness": profile.search.fitness, "top": top,
                 "test_metrics": table.header.get("test_metrics"), "scored_cells": scored_cells,
                 "best_test_auc": float(np.nanmax(ft.test_auc)) if scored_cells else None,
                 "optimum_test_auc": float(ft.test_auc[int(np.argmin(ft.rank[:-1]))]) if scored_cells else None,
                 "pruning": {}}
    for mode in pruning:
        per: dict = {}
        for name in strategies:
            parts = sorted((r for r in results if r[0] == name and r[1] == mode), key=lambda r: r[2])
            ranks = np.concatenate([r[3] for r in parts])
            regret = np.concatenate([r[4] for r in parts])
            lengths = np.concatenate([r[5] for r in parts])
            test = np.concatenate([r[6] for r in parts])
            rows = []
            for b in range(budget):
                scored = test[:, b][~np.isnan(test[:, b])]  # seeds whose chosen cell has a test AUC
                rows.append({
                    "test_auc": _mean_ci(scored) if len(scored) else None,
                    "budget": b + 1,
                    "mean_rank": _mean_ci(ranks[:, b]),
                    "p_top1": _wilson(int((ranks[:, b] <= top["top1"]).sum()), seeds),
                    "p_top5": _wilson(int((ranks[:, b] <= top["top5"]).sum()), seeds),
                    "regret": _mean_ci(regret[:, b]),
                    "reached": int((lengths > b).sum()),
                })
            per[name] = rows
        out["pruning"][mode] = per
    out["strategies"] = out["pruning"][pruning[0]]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
