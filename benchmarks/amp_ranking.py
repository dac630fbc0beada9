"""Does bf16 keep the ranking? Candidates trained in fp32 and in bf16, rank-correlated, in one run.

Trains the first ``--candidates`` distinct feasible architectures an ODE search
proposes (seed 42, the profile's space; the init population, then its
opposites) on the profile's search subset, each twice with the same seed: fp32
and bf16 autocast (``training.amp``). Prints each candidate's fitness (val
ACC) and val AUC both ways, the time both ways, the Spearman rank correlation
of the two fitness columns and of the two AUC columns, and as the LAST line
``spearman: X`` (fitness). The search only needs the *order* of candidates:
a correlation close to 1 means bf16 can train search candidates.

bf16 autocast is a CUDA feature here; on the CPU both columns are fp32 and
the figure is meaningless (the script says so).

Usage: python benchmarks/amp_ranking.py [--device cuda] [--candidates 20]
       [--profile paper] [--epochs N] [--set SECTION.KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--epochs", type=int, default=0, help="epochs per candidate (default: the profile's)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = ap.parse_args(argv)

    import torch
    from scipy.stats import spearmanr

    from engine.executors import candidate_seed
    from engine.ode import ODE
    from engine.profile import load_profile
    from engine.session import load_data, resolve_device, space_of
    from engine.training import train_candidate, warm_up

    overrides = [f"run.device='{args.device}'", *args.overrides]
    if args.epochs:
        overrides.append(f"training.epochs={args.epochs}")
    profile = load_profile(args.profile, overrides)
    device = resolve_device(profile.run.device)
    space = space_of(profile)
    ode = ODE(dim=space.dim, population=profile.search.population, seed=profile.run.seed, key_fn=space.key_of)
    genotypes, seen = [], set()
    while len(genotypes) < args.candidates:
        batch = ode.ask()
        for i, v in enumerate(batch.vectors):
            g = space.decode(v)
            if g.feasible and g.key not in seen and len(genotypes) < args.candidates:
                seen.add(g.key)
                genotypes.append((batch.first_id + i, g))
        ode.tell([0.0] * len(batch))
    data = load_data(profile, device).search_subset(profile.data.search_fraction, profile.run.seed)
    warm_up(device)
    cuda = device.startswith("cuda")
    card = torch.cuda.get_device_name(device) if cuda else "cpu"
    print(f"{len(genotypes)} candidates, {args.profile} protocol (epochs <= {profile.training.epochs}, "
          f"patience {profile.training.patience}), {profile.data.dataset} search subset on {device} ({card}), "
          f"torch {torch.__version__}")
    if not cuda:
        print("note: on the CPU bf16 autocast is never used, so both columns are fp32 (expect 1.0)")
    rows = []
    for cid, g in genotypes:
        row = {"id": cid}
        for label, amp in (("fp32", False), ("bf16", True)):
            config = dataclasses.replace(profile.training, amp=amp)
            t0 = time.perf_counter()
            r = train_candidate(g, data, config, seed=candidate_seed(profile.run.seed, cid),
                                fitness=profile.search.fitness, device=device)
            row[label] = (r.fitness, r.val_auc, time.perf_counter() - t0, r.epochs, r.status)
        rows.append(row)
        f32, b16 = row["fp32"], row["bf16"]
        print(f"  #{cid:<4} fp32 fitness {f32[0]!s:<8.6} auc {f32[1]!s:<8.6} {f32[3]:>2} ep {f32[2]:6.1f} s | "
              f"bf16 fitness {b16[0]!s:<8.6} auc {b16[1]!s:<8.6} {b16[3]:>2} ep {b16[2]:6.1f} s", flush=True)
    ok = [r for r in rows if r["fp32"][4] == "ok" and r["bf16"][4] == "ok"]
    fit = spearmanr([r["fp32"][0] for r in ok], [r["bf16"][0] for r in ok]).statistic
    auc = spearmanr([r["fp32"][1] for r in ok], [r["bf16"][1] for r in ok]).statistic
    t32 = sum(r["fp32"][2] for r in rows)
    t16 = sum(r["bf16"][2] for r in rows)
    print(f"{len(ok)} candidates ok both ways; time fp32 {t32:.1f} s, bf16 {t16:.1f} s (x{t32 / max(t16, 1e-9):.2f})")
    print(f"spearman val_auc: {auc:.3f}")
    print(f"spearman: {fit:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
