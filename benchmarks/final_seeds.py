"""The final retraining's seeds side by side on the CPU, against one after the other (what ships).

The default run (``make run``, profile ``quick``) spends about two thirds of its
time retraining its finalist with seeds 0 and 1, one after the other, each with
all of the process's torch threads. This asks whether training the seeds at the
same time, each with a share of the threads, would be faster. It retrains one
architecture (default: the default run's finalist of 2026-12-06) exactly as the
final phase does (``engine.training.final_train`` with the profile's
``final_config``, the full training split, tested at the end) for ``--epochs``
epochs per seed, and times, after an untimed warm-up, ``--repeats`` times (the
first two in turn going first):

(a) ``sequential``: the seeds one after the other in this thread, with
    ``--threads`` torch threads (the final phase today);
(b) ``side by side``: one Python thread per seed through the final phase's own runner
    (``run_side_by_side``), started together, each with
    ``--threads // seeds`` torch threads (torch's thread count is per calling
    thread, and a CPU kernel releases the GIL);
(c) with ``--processes``: one spawned process per seed, started together, each
    loading the data itself, with the same per-seed thread count (no GIL at all).

Then checks that (b)'s weights equal, bit for bit, a sequential run made with
the per-seed thread count (a result depends on the thread count, not on what
ran beside it). The last line is ``ratio: X.XX``: the median over repeats of
sequential / side-by-side wall time (above 1: side by side is faster).

Usage: python benchmarks/final_seeds.py [--profile quick] [--arch COMPACT] [--seeds 0,1]
       [--epochs 1] [--repeats 2] [--threads 2] [--batches N] [--processes]
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FINALIST = "S2M1F8 12,6 01 02 13 23"  # make run's finalist #19 (docs/RESULTS.md, 2026-12-06)


def _setting(profile_name: str, arch: str, epochs: int, batches: int) -> tuple[Any, Any, Any]:
    """(genotype, data, config) of a final retraining under ``profile_name``."""
    from engine.profile import load_profile
    from engine.session.final import final_config
    from engine.session.setup import load_data
    from engine.space import Genotype

    profile = load_profile(profile_name)
    config = dataclasses.replace(final_config(profile), epochs=epochs, max_batches_per_epoch=batches)
    genotype = Genotype.from_compact(arch, max_edges=profile.space.max_edges)
    return genotype, load_data(profile, "cpu"), config


def digest(state_dict: dict[str, Any]) -> str:
    """A hash of a model's weights, bit for bit."""
    h = hashlib.sha1()
    for name in sorted(state_dict):
        h.update(name.encode())
        h.update(state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def retrain(genotype: Any, data: Any, config: Any, seed: int, threads: int) -> tuple[str, float]:
    """One retraining in the calling thread with ``threads`` torch threads: (weights' digest, test AUC)."""
    import torch

    from engine.training import final_train

    torch.set_num_threads(threads)
    outcome = final_train(genotype, data, config, seed=seed)
    return digest(outcome.state_dict), outcome.test_auc


def sequential(setting: tuple[Any, Any, Any], seeds: list[int], threads: int) -> tuple[float, dict[int, tuple[str, float]]]:
    start = time.perf_counter()
    results = {seed: retrain(*setting, seed, threads) for seed in seeds}
    return time.perf_counter() - start, results


def side_by_side(setting: tuple[Any, Any, Any], seeds: list[int], threads: int) -> tuple[float, dict[int, tuple[str, float]]]:
    """The seeds at once through the final phase's own runner (``engine.session.final.run_side_by_side``)."""
    from engine.session.final import run_side_by_side

    results: dict[int, tuple[str, float]] = {}
    jobs = [functools.partial(retrain, *setting, seed, threads) for seed in seeds]
    start = time.perf_counter()
    run_side_by_side(jobs, len(seeds), threads, lambda i, result: results.__setitem__(seeds[i], result))
    return time.perf_counter() - start, results


def _process_main(args: tuple[str, str, int, int, int, int], ready: Any, go: Any, out: Any) -> None:
    profile_name, arch, epochs, batches, seed, threads = args
    setting = _setting(profile_name, arch, epochs, batches)
    ready.put(seed)
    go.wait()  # every process has imported torch and loaded its data: the clock starts in the parent
    out.put((seed, retrain(*setting, seed, threads)))


def processes(argv: argparse.Namespace, seeds: list[int], threads: int) -> tuple[float, dict[int, tuple[str, float]]]:
    """One spawned process per seed, timed from when all have loaded their data until the last result."""
    ctx = mp.get_context("spawn")
    ready, go, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_process_main, args=((argv.profile, argv.arch, argv.epochs, argv.batches, seed, threads),
                                                     ready, go, out)) for seed in seeds]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            ready.get(timeout=600)
        start = time.perf_counter()
        go.set()
        results = dict(out.get(timeout=24 * 3600) for _ in procs)
        elapsed = time.perf_counter() - start
    finally:
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
    if any(proc.exitcode != 0 for proc in procs):
        raise RuntimeError(f"a seed's process exited with {[proc.exitcode for proc in procs]}")
    return elapsed, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--arch", default=FINALIST, help="the architecture, in the compact form")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the sequential run (the machine's cores)")
    parser.add_argument("--batches", type=int, default=0, help="cap batches per epoch (0: the whole training split)")
    parser.add_argument("--processes", action="store_true", help="also time one spawned process per seed")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if len(seeds) < 2:
        parser.error("--seeds needs at least two seeds")
    share = max(1, args.threads // len(seeds))

    setting = _setting(args.profile, args.arch, args.epochs, args.batches)
    print(f"{args.arch} · profile {args.profile} · {args.epochs} epoch(s) per seed · seeds {seeds} · "
          f"sequential {args.threads} threads, side by side {share} each")
    genotype, data, config = setting
    retrain(genotype, data, dataclasses.replace(config, epochs=1, max_batches_per_epoch=1), seeds[0], args.threads)  # warm-up
    ratios, proc_ratios, side_results = [], [], {}
    for r in range(args.repeats):
        if r % 2:  # alternate which goes first
            side_s, side_results = side_by_side(setting, seeds, share)
            seq_s, seq_results = sequential(setting, seeds, args.threads)
        else:
            seq_s, seq_results = sequential(setting, seeds, args.threads)
            side_s, side_results = side_by_side(setting, seeds, share)
        line = f"repeat {r + 1}: sequential {seq_s:.1f} s · side by side {side_s:.1f} s ({seq_s / side_s:.2f}x)"
        ratios.append(seq_s / side_s)
        if args.processes:
            proc_s, _ = processes(args, seeds, share)
            proc_ratios.append(seq_s / proc_s)
            line += f" · processes {proc_s:.1f} s ({seq_s / proc_s:.2f}x)"
        print(line, flush=True)
    for seed in seeds:
        print(f"seed {seed}: test AUC sequential {seq_results[seed][1]:.4f}, side by side {side_results[seed][1]:.4f}")
    _, alone = sequential(setting, seeds, share)
    same = all(alone[s][0] == side_results[s][0] for s in seeds)
    print(f"side by side = sequential with {share} thread(s) each, bit for bit: {'yes' if same else 'NO'}")
    if proc_ratios:
        print(f"processes ratio: {statistics.median(proc_ratios):.2f}")
    print(f"ratio: {statistics.median(ratios):.2f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
