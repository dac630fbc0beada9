"""Does bf16 keep the search's decisions? Candidates trained in fp32 and in bf16, compared in one run.

Follows an ODE search of the profile (its seed, space and F / CR / JR, driven
by the fp32 fitness) until ``--candidates`` distinct feasible architectures
are trained, each twice with the same seed on the profile's search subset:
fp32 and bf16 autocast (``training.amp = true``). Prints each candidate's
fitness and val AUC both ways and the time both ways, then

- ``DE selections that change: K of N``: every selection the fp32 search made
  (each trial against its target; each trained candidate kept or dropped by
  the opposition and jump merges), decided again on the bf16 values of the
  same candidates, with the profile's tie-break. Infeasible proposals (told
  0.0 both ways) are not counted; a batch left incomplete at the end is not
  told and not counted;
- ``pairwise orders that change``: over all pairs of candidates trained ok
  both ways, how many the two columns order differently (ties included);
- the Spearman rank correlation of the two AUC columns, and as the LAST line
  ``spearman: X`` (fitness).

bf16 is used where the trainer uses it: on CUDA, and on a CPU that computes
bf16 natively (``engine.training.device.cpu_has_native_bf16``); elsewhere both
columns are fp32 and the script says so (expect 1.0 and no changes).

Usage: python benchmarks/amp_ranking.py [--device cpu|cuda] [--candidates 20]
       [--profile paper] [--epochs N] [--set SECTION.KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

LABELS = ("fp32", "bf16")


def _cmp(a: tuple[float, ...], b: tuple[float, ...]) -> int:
    return (a > b) - (a < b)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--candidates", type=int, default=20, help="distinct feasible candidates to train both ways")
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--epochs", type=int, default=0, help="epochs per candidate (default: the profile's)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = ap.parse_args(argv)

    import numpy as np
    import torch
    from scipy.stats import spearmanr

    from engine.executors import candidate_seed
    from engine.ode import ODE
    from engine.profile import load_profile
    from engine.records import selection_key
    from engine.session import load_data, make_strategy, resolve_device, space_of
    from engine.session.measure import ComplexityCounter
    from engine.strategy import NO_TIE_BREAK, at_least_as_good, select_best
    from engine.training import train_candidate, warm_up
    from engine.training.device import cpu_has_native_bf16

    overrides = [f"run.device='{args.device}'", *args.overrides]
    if args.epochs:
        overrides.append(f"training.epochs={args.epochs}")
    profile = load_profile(args.profile, overrides)
    device = resolve_device(profile.run.device)
    space = space_of(profile)
    ode = make_strategy(profile, space)
    if not isinstance(ode, ODE):
        raise SystemExit(f"amp_ranking follows an ODE search; the profile has search.strategy = {profile.search.strategy!r}")
    data = load_data(profile, device).search_subset(profile.data.search_fraction, profile.run.seed)
    size = data.shape if len(set(data.shape)) > 1 else data.shape[0]
    counter = ComplexityCounter(data.channels, data.num_classes, size)
    tie_break = profile.search.tie_break
    warm_up(device)
    cuda = device.startswith("cuda")
    dev_type = torch.device(device).type
    native = cpu_has_native_bf16() if dev_type == "cpu" else False
    bf16 = dataclasses.replace(profile.training, amp=True).uses_amp(final=False, device_type=dev_type, cpu_bf16=native)
    card = torch.cuda.get_device_name(device) if cuda else f"cpu, native bf16 {'yes' if native else 'no'}"
    print(f"up to {args.candidates} candidates, {args.profile} protocol (epochs <= {profile.training.epochs}, "
          f"patience {profile.training.patience}, fitness {profile.search.fitness}, tie-break {tie_break}), "
          f"{profile.data.dataset} search subset on {device} ({card}), {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    if not bf16:
        print("note: this device trains no bf16 (a CPU without native bf16), so both columns are fp32 (expect 1.0)")

    def told(row: dict[str, Any] | None, label: str) -> tuple[float, list[float]]:
        """What the search tells the ODE about a training: fitness (0.0 unless ok) and tie-break values."""
        result = None if row is None else row[label]
        if result is None or result.status != "ok" or result.fitness is None:
            return 0.0, ([] if tie_break == "none" else [NO_TIE_BREAK, NO_TIE_BREAK])
        if tie_break == "none":
            return float(result.fitness), []
        key = selection_key(result.fitness, result.val_auc, row["flops"], tie_break)[1:]
        return float(result.fitness), [max(float(v), NO_TIE_BREAK) for v in key]

    def order_key(row: dict[str, Any], label: str) -> tuple[float, ...]:
        fitness, secondary = told(row, label)
        return (fitness, *secondary)

    rows: list[dict[str, Any]] = []  # one per trained candidate
    by_key: dict[str, dict[str, Any]] = {}
    values: dict[int, dict[str, tuple[float, list[float]]]] = {}  # candidate id -> label -> told values
    counted: set[int] = set()  # ids of trained (feasible) proposals: the selections counted
    decisions = changed = 0
    limit = 50 * max(args.candidates, 1)  # proposals; a space with fewer distinct cells ends here
    while len(rows) < args.candidates and ode.evaluations < limit:
        batch = ode.ask()
        ids = list(range(batch.first_id, batch.first_id + len(batch)))
        complete = True
        for cid, v in zip(ids, batch.vectors):
            g = space.decode(v)
            if not g.feasible:
                values[cid] = {label: told(None, label) for label in LABELS}
                continue
            row = by_key.get(g.key)
            if row is None:
                if len(rows) >= args.candidates:
                    complete = False
                    break
                row = {"id": cid, "flops": counter.get(g)[1]}
                for label in LABELS:
                    config = dataclasses.replace(profile.training, amp=label == "bf16")
                    row[label] = train_candidate(g, data, config, seed=candidate_seed(profile.run.seed, cid),
                                                 fitness=profile.search.fitness, device=device)
                rows.append(row)
                by_key[g.key] = row
                f32, b16 = row["fp32"], row["bf16"]
                print(f"  #{cid:<4} fp32 fitness {f32.fitness!s:<8.6} auc {f32.val_auc!s:<8.6} {f32.epochs:>2} ep "
                      f"{f32.seconds:6.1f} s | bf16 fitness {b16.fitness!s:<8.6} auc {b16.val_auc!s:<8.6} "
                      f"{b16.epochs:>2} ep {b16.seconds:6.1f} s", flush=True)
            values[cid] = {label: told(row, label) for label in LABELS}
            counted.add(cid)
        if not complete:
            break
        # The selections this batch makes, on fp32 values (what the search does) and on bf16 values.
        if batch.phase in ("opposite", "jump"):
            members = [*ode.population_ids, *ids]
            keep = {}
            for label in LABELS:
                fit = np.array([values[m][label][0] for m in members])
                sec = None if tie_break == "none" else np.array([values[m][label][1] for m in members])
                keep[label] = set(select_best(fit, ode.np, sec).tolist())
            for i, m in enumerate(members):
                if m in counted:
                    decisions += 1
                    changed += (i in keep["fp32"]) != (i in keep["bf16"])
        elif batch.phase == "trial":
            for target, cid in zip(ode.population_ids, ids):
                if cid in counted and target in counted:
                    decisions += 1
                    changed += at_least_as_good(*values[cid]["fp32"], *values[target]["fp32"]) != at_least_as_good(
                        *values[cid]["bf16"], *values[target]["bf16"])
        ode.tell([values[c]["fp32"][0] for c in ids], None if tie_break == "none" else [values[c]["fp32"][1] for c in ids])

    ok = [r for r in rows if r["fp32"].status == "ok" and r["bf16"].status == "ok"]
    t32 = sum(r["fp32"].seconds for r in rows)
    t16 = sum(r["bf16"].seconds for r in rows)
    print(f"{len(rows)} candidates trained, {len(ok)} ok both ways; time fp32 {t32:.1f} s, bf16 {t16:.1f} s "
          f"(x{t32 / max(t16, 1e-9):.2f})")
    pairs = flips = 0
    for a, b in itertools.combinations(ok, 2):
        pairs += 1
        flips += _cmp(order_key(a, "fp32"), order_key(b, "fp32")) != _cmp(order_key(a, "bf16"), order_key(b, "bf16"))
    share = f" ({100.0 * changed / decisions:.1f} %)" if decisions else ""
    print(f"DE selections that change: {changed} of {decisions}{share}")
    print(f"pairwise orders that change: {flips} of {pairs}")
    fit = spearmanr([r["fp32"].fitness for r in ok], [r["bf16"].fitness for r in ok]).statistic if len(ok) > 1 else float("nan")
    auc = spearmanr([r["fp32"].val_auc for r in ok], [r["bf16"].val_auc for r in ok]).statistic if len(ok) > 1 else float("nan")
    print(f"spearman val_auc: {auc:.3f}")
    print(f"spearman: {fit:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
