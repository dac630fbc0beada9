"""Whole-search speed: a real headless session with the paper protocol, projected to the paper's 200 candidates.

Runs ``nas3d-tui``'s own ``Session`` on the ``paper`` profile (AdrenalMNIST3D
28^3, a quarter of train/val, up to 50 epochs with patience 5, ODE with NP 20)
until ``--candidates`` candidates are trained, with the final phase off, then
prints candidates per hour and, as the LAST line,
``projected_minutes_200: X`` -- the time the paper's 200-candidate search
would take at this pace (the one-time device warm-up included once, the final
phase excluded). The paper reports 88 min for AdrenalMNIST3D on an RTX 4090.

On CUDA it also prints the card, the executor used (``--per-gpu M``
candidates at once on each GPU, threads with one CUDA stream each by
default), the bf16 setting and the peak GPU memory (paper: at most 4 GB).
The first candidates of an ODE search are its random initial population, so
a short run is representative of the search's early cost, not of its end
(later generations converge on the architectures that train best).

Usage: python benchmarks/search_speed.py [--device cpu|cuda|auto] [--candidates N]
       [--per-gpu M] [--concurrency auto|threads|processes] [--amp profile|true|false|auto]
       [--profile paper] [--set SECTION.KEY=VALUE ...]

On two CPU cores ``--candidates 2`` takes a few minutes.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default auto)")
    ap.add_argument("--candidates", type=int, default=20, help="trained candidates to measure (default 20)")
    ap.add_argument("--per-gpu", type=int, default=1, help="candidates trained at once on each GPU (default 1)")
    ap.add_argument("--workers", type=int, default=1, help="worker groups (GPUs, or CPU processes) (default 1)")
    ap.add_argument("--concurrency", default="auto", choices=("auto", "threads", "processes"))
    ap.add_argument("--amp", default="profile", help="training.amp: profile (default), true, false, auto")
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = ap.parse_args(argv)

    import torch

    from engine import events as ev
    from engine.profile import load_profile
    from engine.session import Session

    overrides = [
        f"run.device='{args.device}'",
        f"search.budget={args.candidates}",
        "final.top_k=0",
        f"executor.workers={args.workers}",
        f"executor.per_gpu={args.per_gpu}",
        f"executor.concurrency='{args.concurrency}'",
        *([] if args.amp == "profile" else [f"training.amp={args.amp if args.amp in ('true', 'false') else repr(args.amp)}"]),
        *args.overrides,
    ]
    profile = load_profile(args.profile, overrides)
    stamps: dict[str, float] = {}
    warmup = {"seconds": 0.0}
    trained: list[ev.CandidateFinished] = []
    device = {"name": "cpu"}

    def watch(e: ev.Event) -> None:
        if isinstance(e, ev.RunStarted):
            stamps["start"] = time.perf_counter()
            device["name"] = e.device
        elif isinstance(e, ev.WarmupFinished):
            warmup["seconds"] = e.seconds
        elif isinstance(e, ev.CandidateFinished) and e.status in ("ok", "oom", "failed"):
            trained.append(e)
            print(f"  #{e.candidate_id:<4} {e.status:<6} fitness {e.fitness if e.fitness is not None else '-'!s:<8.6} "
                  f"{e.epochs:>2} epochs {e.seconds:6.1f} s  {e.worker}  [{len(trained)}/{args.candidates}]", flush=True)
        elif isinstance(e, ev.RunFinished):
            stamps["end"] = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="nas3d-speed-") as tmp:
        session = Session(profile, Path(tmp) / "run")
        session.bus.subscribe(watch)
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                torch.cuda.reset_peak_memory_stats(i)
        outcome = session.run()
    if outcome.state != "finished":
        print(f"the run ended {outcome.state}: {outcome.error}")
        return 1

    seconds = stamps["end"] - stamps["start"]
    per_candidate = (seconds - warmup["seconds"]) / max(len(trained), 1)
    per_hour = 3600.0 / per_candidate if per_candidate > 0 else float("inf")
    projected = (warmup["seconds"] + 200 * per_candidate) / 60.0
    cuda = device["name"].startswith("cuda")
    print(f"profile {args.profile}: {profile.data.dataset} {profile.data.size}³, fraction {profile.data.search_fraction}, "
          f"epochs <= {profile.training.epochs} (patience {profile.training.patience}), NP {profile.search.population}; "
          f"amp {profile.training.amp}; executor workers {args.workers} x per_gpu {args.per_gpu} ({args.concurrency}); "
          f"torch {torch.__version__}")
    if cuda:
        names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
        peak = max(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count())) / 2**30
        print(f"device {device['name']} ({', '.join(names)}); warm-up {warmup['seconds']:.1f} s; "
              f"peak GPU memory (allocated, this process) {peak:.2f} GB (paper: <= 4 GB)")
    else:
        print(f"device cpu, {torch.get_num_threads()} threads")
    epochs = sum(e.epochs for e in trained)
    print(f"{len(trained)} candidates trained ({epochs} epochs) in {seconds:.1f} s: {per_hour:.1f} candidates/hour")
    print("paper: 88 min for the 200-candidate AdrenalMNIST3D search on an RTX 4090")
    print(f"projected_minutes_200: {projected:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
