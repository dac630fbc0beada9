"""Seed-to-seed noise of a tabular benchmark: its best cells trained a second time, with another seed.

    python benchmarks/table_noise.py TABLE.json [--top 20] [--offset 1] [--add]

Trains the ``--top`` best cells of the table (by the search's own ranking of each
cell's first training) once more with the search protocol of the table's run
(``engine.table_training``), each with the seed a run of seed ``run.seed +
offset`` would give it, and prints per cell both trainings' fitness and test
AUC, then: the mean and largest |difference| of the fitness, the per-training
standard deviation it implies (SD of the differences / sqrt 2), the Spearman
correlation of the two trainings' fitness over these cells, and how many of the
first training's top 5 stay in the second's top 5. ``--add`` writes the second
trainings into the table file as extra entries (one result per cell and seed:
a lookup with the run's own seeds still returns the first training).

Last line: ``table_noise: top N, fitness |diff| mean X, sd per training Y, spearman Z``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("table", help="a table file (nas3d-tui bench table), or a shipped table's name")
    ap.add_argument("--top", type=int, default=20, help="how many of the best cells to train again (default 20)")
    ap.add_argument("--offset", type=int, default=1, help="seed offset: the seeds of a run of seed run.seed + OFFSET")
    ap.add_argument("--add", action="store_true", help="write the second trainings into the table file")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args(argv)

    import torch
    from scipy.stats import spearmanr

    from engine.bench_table import add_entries, read_table, resolve_table, write_table
    from engine.records import selection_key
    from engine.table_training import TableProtocol, second_seed

    if args.threads:
        torch.set_num_threads(args.threads)
    path = resolve_table(args.table)
    table = read_table(path)
    protocol = TableProtocol.of(table, str(path))
    tie = protocol.profile.search.tie_break
    firsts = [es[0] for es in table.cells.values() if es[0].record.ok]
    firsts.sort(key=lambda e: selection_key(e.record.fitness, e.record.val_auc, e.record.flops, tie), reverse=True)
    chosen = firsts[: args.top]
    run_seed = int(table.header["seed"])
    print(f"table {path}: {len(table.cells)} cells; training the best {len(chosen)} again with the seeds of run seed "
          f"{run_seed + args.offset} ({protocol.profile.search.fitness}, {protocol.profile.training.epochs} epochs, "
          f"{torch.get_num_threads()} threads)")
    start = time.perf_counter()
    seconds, pairs, added = [], [], []
    next_id = max(e.record.candidate_id for e in table.entries) + 1
    for rank, e in enumerate(chosen, start=1):
        seed = second_seed(run_seed, e.record.candidate_id, args.offset)
        r = protocol.train(e, seed)
        seconds.append(r.seconds)
        if not r.ok or r.fitness is None:
            print(f"{rank:>3} {e.record.genotype.get('compact', e.key)}: second training {r.status} ({r.error})")
            continue
        pairs.append((float(e.record.fitness or 0.0), float(r.fitness)))
        t1 = e.record.test_auc
        print(f"{rank:>3} {e.record.genotype.get('compact', e.key):<40} fitness {e.record.fitness:.4f} -> {r.fitness:.4f}"
              f"  test AUC {'-' if t1 is None else f'{t1:.4f}'} -> "
              f"{'-' if r.test_auc is None else f'{r.test_auc:.4f}'}  ({r.seconds:.0f} s)", flush=True)
        record = e.record.trained_with(r, params=e.record.params, flops=e.record.flops, worker="table_noise")
        added.append((record.replace(candidate_id=next_id + len(added)), seed))
    a = np.array(pairs)
    diff = a[:, 1] - a[:, 0]
    rho = float(spearmanr(a[:, 0], a[:, 1]).statistic) if len(a) > 2 else float("nan")
    top5_first = set(np.argsort(-a[:, 0], kind="stable")[:5])
    top5_second = set(np.argsort(-a[:, 1], kind="stable")[:5])
    sd = float(diff.std(ddof=1) / np.sqrt(2)) if len(diff) > 1 else float("nan")
    print(f"fitness: second minus first mean {diff.mean():+.4f}, |diff| mean {np.abs(diff).mean():.4f} "
          f"max {np.abs(diff).max():.4f}; sd per training {sd:.4f}; spearman {rho:.3f} over {len(a)} cells; "
          f"top 5 kept {len(top5_first & top5_second)}/5")
    print(f"wall time {time.perf_counter() - start:.0f} s ({np.median(seconds):.1f} s per training, median)")
    if args.add:
        note = (f"{len(added)} extra entries: the best {len(chosen)} cells trained again with the seeds of run seed "
                f"{run_seed + args.offset} (benchmarks/table_noise.py --offset {args.offset}); sd per training "
                f"{sd:.4f}, spearman {rho:.3f}")
        write_table(add_entries(table, added, note), path)
        print(f"added {len(added)} entries to {path}")
    print(f"table_noise: top {len(a)}, fitness |diff| mean {np.abs(diff).mean():.4f}, sd per training {sd:.4f}, "
          f"spearman {rho:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
