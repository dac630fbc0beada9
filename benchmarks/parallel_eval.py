"""Candidates per hour: one generation trained sequentially vs. by the parallel backends, in one run.

The candidates are the first NP proposals of the ODE (the ``init`` batch: NP
distinct feasible architectures) with seed 42 on the ``quick`` profile's
space, trained on the real AdrenalMNIST3D 28^3 search subset (the profile's
``search_fraction``) with the profile's training settings, except for the
epoch and batch caps below (so that the default run takes a few minutes on
two CPU cores). Each candidate keeps its per-candidate seed
(``candidate_seed``), exactly as in a search.

Backends, each on the same jobs:

- ``sequential``: ``SequentialEvaluator`` in this process (torch's default
  thread count: what ``workers = 1`` gives a user);
- ``threads``: ``ThreadEvaluator``, ``--workers`` x ``--per-gpu`` threads in
  this process, one CUDA stream each (the default on CUDA);
- ``processes``: ``LocalPoolEvaluator`` with ``--workers`` x ``--per-gpu``
  processes (the default on the CPU);
- ``ray``: ``RayEvaluator`` on a local Ray instance (skipped when Ray is not
  installed).

Worker startup (spawning processes, importing torch, loading the data) is
timed apart (``startup``) and is not in the candidates-per-hour figure: the
pool persists for the whole search, so a 200-candidate run pays it once.
The backends run the generation ``--repeats`` times in interleaved rounds
(all backends stay up meanwhile); each backend's best round counts, which
also keeps one-time costs (oneDNN kernel setup in a fresh process) and other
load on a shared machine out of the comparison.
Prints one line per backend and, as the LAST line, ``speedup: X.XX`` -- the
best parallel backend's candidates per hour over the sequential one's.

Fitness: on the CPU the torch thread count changes the float summation order,
so the sequential figures (default threads) may differ slightly from the
workers' (``cores // workers`` threads); ``same`` counts equal fitnesses.

On CUDA the candidates train as a search trains them by default (cuDNN
autotuning off, bf16 as ``training.amp`` says; ``--amp`` overrides) and the
device is warmed up once before anything is timed.

Usage: python benchmarks/parallel_eval.py [--population 8] [--epochs 1]
       [--batches 1] [--fraction 0.25] [--workers 2] [--per-gpu 1]
       [--device cpu|cuda] [--backends sequential,threads,processes,ray]
       [--amp profile|true|false|auto] [--seed 42] [--repeats 2]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=8, help="NP: candidates in the generation (default 8)")
    ap.add_argument("--epochs", type=int, default=1, help="epochs per candidate (default 1; quick profile: 3)")
    ap.add_argument("--batches", type=int, default=1, help="training batches per epoch, 0 = all (default 1)")
    ap.add_argument("--fraction", type=float, default=None, help="search fraction (default: the profile's, 0.25)")
    ap.add_argument("--workers", type=int, default=2, help="parallel workers (default 2)")
    ap.add_argument("--per-gpu", type=int, default=1, help="candidates per GPU (CUDA only)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    ap.add_argument("--backends", default="sequential,threads,processes,ray", help="comma-separated (default: all four)")
    ap.add_argument("--amp", default="profile", help="training.amp for the candidates: profile (default), true, false, auto")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeats", type=int, default=2, help="timed rounds per backend, interleaved; best counts (default 2)")
    ap.add_argument("--profile", default="quick")
    args = ap.parse_args()

    import torch

    from engine.executors import Callbacks, Job, TrainSpec, available_cores, candidate_seed, plan_workers
    from engine.executors.pool import LocalPoolEvaluator
    from engine.executors.sequential import SequentialEvaluator
    from engine.executors.threads import ThreadEvaluator
    from engine.ode import ODE
    from engine.profile import load_profile
    from engine.session import load_data, resolve_device, space_of
    from engine.training import warm_up

    overrides = [
        f"run.seed={args.seed}",
        f"run.device='{args.device}'",
        f"training.epochs={args.epochs}",
        f"training.max_batches_per_epoch={args.batches}",
        f"executor.workers={args.workers}",
        f"executor.per_gpu={args.per_gpu}",
    ]
    if args.fraction is not None:
        overrides.append(f"data.search_fraction={args.fraction}")
    if args.amp != "profile":
        overrides.append(f"training.amp={args.amp if args.amp in ('true', 'false') else repr(args.amp)}")
    profile = load_profile(args.profile, overrides)
    device = resolve_device(profile.run.device)
    space = space_of(profile)
    ode = ODE(dim=space.dim, population=args.population, seed=args.seed, key_fn=space.key_of)
    batch = ode.ask()
    jobs = []
    for i, vector in enumerate(batch.vectors):
        g = space.decode(vector)
        if g.feasible:
            cid = batch.first_id + i
            jobs.append(Job(candidate_id=cid, genotype=g, seed=candidate_seed(args.seed, cid)))
    spec = TrainSpec(profile.training, profile.search.fitness)  # as the session trains them
    data = load_data(profile, device)
    search = data.search_subset(profile.data.search_fraction, args.seed)
    warmed = warm_up(device)
    card = f", {torch.cuda.get_device_name(device)}" if device.startswith("cuda") else ""
    print(
        f"{len(jobs)} candidates (ODE init batch, seed {args.seed}, {args.profile} space) on {profile.data.dataset} "
        f"search subset: train {len(search.train)}, val {len(search.val)}; epochs {profile.training.epochs}, "
        f"batches/epoch {profile.training.max_batches_per_epoch or 'all'}, batch {profile.training.batch_size}, "
        f"amp {profile.training.amp}; device {device}{card} (warm-up {warmed:.1f} s), {available_cores()} cores, "
        f"torch {torch.__version__}"
    )

    wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    cuda = torch.cuda.device_count() if device.startswith("cuda") else 0
    slots = plan_workers(device, args.workers, args.per_gpu, profile.run.device, cuda_devices=cuda)
    backends: list[tuple[str, object, float, str]] = []  # name, evaluator, startup seconds, threads
    if "sequential" in wanted:
        backends.append(("sequential", SequentialEvaluator(search, spec, device), 0.0, str(torch.get_num_threads())))
    if "threads" in wanted:
        backends.append((f"threads x{len(slots)}", ThreadEvaluator(search, spec, slots=slots), 0.0, str(torch.get_num_threads())))
    if "processes" in wanted:
        pool = LocalPoolEvaluator(search, spec, slots=slots)
        backends.append((f"processes x{len(slots)}", pool, pool.warm_up(), "/".join(str(s.threads) for s in slots)))
    if "ray" in wanted:
        try:
            import ray  # noqa: F401
        except ImportError:
            print("ray        skipped: Ray is not installed (pip install 'nas3d-tui[ray]')")
        else:
            from engine.executors.ray import RayEvaluator

            rev = RayEvaluator(search, spec, workers=args.workers, per_gpu=args.per_gpu, use_gpus=device != "cpu")
            backends.append((f"ray x{rev.max_in_flight}", rev, rev.warm_up(), "1"))

    walls: dict[str, list[float]] = {name: [] for name, *_ in backends}
    fitness: dict[str, dict[int, float | None]] = {}
    bad: dict[str, int] = {}
    try:
        for r in range(args.repeats):
            for name, evaluator, _, _ in backends:
                got: dict[int, float | None] = {}
                not_ok = []

                def on_done(job, result, worker, got=got, not_ok=not_ok):
                    got[job.candidate_id] = result.fitness
                    if result.status != "ok":
                        not_ok.append(job.candidate_id)

                t0 = time.perf_counter()
                evaluator.evaluate(jobs, Callbacks(lambda *a: None, lambda *a: None, on_done))
                walls[name].append(time.perf_counter() - t0)
                fitness.setdefault(name, got)
                bad[name] = max(bad.get(name, 0), len(not_ok))
                print(f"  round {r + 1}: {name:<10} {walls[name][-1]:7.1f} s", flush=True)
    finally:
        for _, evaluator, _, _ in backends:
            evaluator.close()

    results: dict[str, dict] = {}
    ref = fitness.get("sequential")
    for name, _, startup, threads in backends:
        wall = min(walls[name])
        per_hour = len(jobs) / wall * 3600.0
        results[name] = dict(wall=wall, per_hour=per_hour)
        same = ""
        if ref is not None and name != "sequential":
            same = f", same fitness as sequential {sum(ref[c] == fitness[name][c] for c in ref)}/{len(ref)}"
        print(
            f"{name:<10} {wall:7.1f} s  {per_hour:7.1f} candidates/h  (best of {len(walls[name])}; startup {startup:.1f} s; "
            f"threads {threads}{'; not ok: ' + str(bad[name]) if bad.get(name) else ''}{same})",
            flush=True,
        )

    base = results.get("sequential")
    parallel = [r for n, r in results.items() if n != "sequential"]
    if base is None or not parallel:
        print("speedup: n/a (needs sequential and at least one parallel backend)")
        return 1
    best = max(r["per_hour"] for r in parallel)
    print(f"speedup: {best / base['per_hour']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
