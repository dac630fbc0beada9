"""``nas3d-tui train ARCH``: retrain one architecture from scratch over seeds and report its test metrics.

``ARCH`` is any of:

* ``RUN_DIR:ID`` -- candidate ID of a run (its data and training settings are the defaults);
* a ``genotype.json`` (a model bundle's, or a folder holding one);
* the compact one-line form the dashboard shows (``"S1M1F8 4,9,10 01 02 13 24 34"``);
* a raw chromosome: 29 numbers in [0, 1], comma- or space-separated (how the
  paper gives its published models).

The retraining follows the paper's final phase (full training split, Adam,
best-validation-ACC epoch, test AUC and ACC) for every seed, in a run directory
like a search's (watch it with ``attach``, continue it with ``resume``, export
it, report it). Progress goes to stderr; the results to stdout -- with
``--format json`` the last line of stdout is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.profile import Profile
    from engine.session.retrain import Retrain
    from engine.space import Genotype, SearchSpace

NAME = "train"
HELP = "retrain an architecture over seeds and report test AUC / ACC (mean ± std)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("arch", metavar="ARCH", help="RUN_DIR:ID, a genotype.json, the compact form, or 29 numbers")
    p.add_argument("--profile", default=None, help="base profile (default: the run's for RUN_DIR:ID, else paper)")
    p.add_argument("--dataset", default=None, help="a MedMNIST3D flag (e.g. adrenalmnist3d)")
    p.add_argument("--size", type=int, default=None, help="28 or 64")
    p.add_argument("--root", default=None, help="folder holding <flag>.npz / <flag>_64.npz")
    p.add_argument("--path", default=None, help="an own dataset file (MedMNIST's npz layout) instead of --dataset")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the profile's final.seeds, 0,1,2)")
    p.add_argument("--epochs", type=int, default=None, help="most epochs per seed (default: the profile's final.epochs)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--out", default=None, help="run directory (default: <output_dir>/train-<timestamp>)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="how results are printed")
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="SECTION.KEY=VALUE",
                   help="override profile keys (one or more after one --set, or repeat --set; put ARCH first)")
    p.add_argument("--dashboard", action="store_true", help="watch it in the dashboard instead of headless progress")


def _is(path: Path, what: str) -> bool:
    """Whether ``path`` exists (as a folder for ``what="dir"``); False for names no file system allows."""
    try:
        return path.is_dir() if what == "dir" else path.exists()
    except OSError:  # e.g. a chromosome given as one long word is not a file name
        return False


def resolve_arch(text: str, space: SearchSpace) -> tuple[Genotype, Path | None]:
    """``(genotype, run_dir or None)`` of an ARCH argument.

    Raises:
        engine.errors.UserError: none of the accepted forms, or an infeasible architecture.
    """
    from engine.bundle import BUNDLE_FORMAT, GENOTYPE_FILE
    from engine.errors import CorruptFileError, UserError
    from engine.jsonfile import read_json
    from engine.rundir import RunDir
    from engine.space import Genotype

    from ..published import resolve

    text = resolve(text)  # published:<name> -> its bundle folder
    m = re.fullmatch(r"(.+):(\d+)", text)
    if m and _is(Path(m.group(1)).expanduser(), "dir"):
        rd = RunDir(m.group(1))
        records = rd.read_records()
        cid = int(m.group(2))
        if cid not in records:
            raise UserError(f"{rd.path} has no finished candidate {cid} (it has {len(records)} records)")
        record = records[cid]
        if not record.genotype.get("feasible", True) or record.status == "infeasible":
            raise UserError(f"candidate {cid} of {rd.path} is infeasible: nothing to train")
        try:
            return Genotype.from_dict(record.genotype, max_edges=space.max_edges), rd.path
        except ValueError as exc:
            raise CorruptFileError(f"{rd.candidate_path(cid)} is corrupt: genotype: {exc}") from None
    path = Path(text).expanduser()
    if _is(path, "any"):
        file = path / GENOTYPE_FILE if path.is_dir() else path
        try:
            data = read_json(file)
            fmt = data.get("format") if isinstance(data, dict) else None
            if fmt is not None and fmt != BUNDLE_FORMAT:
                raise ValueError(f"format = {fmt!r}, expected {BUNDLE_FORMAT!r} or none")
            return Genotype.from_dict(data, max_edges=space.max_edges), None
        except (UserError, OSError, ValueError, TypeError, AttributeError, RecursionError) as exc:
            raise UserError(f"{file}: not a genotype JSON ({' '.join(str(exc).split())[:160]})") from None
    if re.match(r"S\d+M\d+F\d+\b", text.strip()):
        try:
            return Genotype.from_compact(text, max_edges=space.max_edges), None
        except ValueError as exc:
            raise UserError(str(exc)) from None
    numbers = [t for t in re.split(r"[,\s]+", text.strip().strip("[]")) if t]
    try:
        vector = [float(t) for t in numbers]
    except ValueError:
        raise UserError(
            f"ARCH {text[:60]!r} is none of: RUN_DIR:ID, a genotype.json path, the compact form "
            "(S1M1F8 4,9,10 01 02 13 24 34), 29 numbers in [0, 1]"
        ) from None
    try:
        return space.decode(vector), None
    except ValueError as exc:
        raise UserError(f"ARCH chromosome: {exc}") from None


def _profile(args: argparse.Namespace, run_dir: Path | None) -> Profile:
    from engine.profile import load_profile
    from engine.rundir import RunDir

    base = args.profile or (str(RunDir(run_dir, resolve=False).profile_path) if run_dir is not None else "paper")
    overrides = ["run.name='train'", *args.overrides]
    if args.dataset is not None:
        overrides += [f"data.dataset={json.dumps(args.dataset)}", "data.path=''"]
    if args.size is not None:
        overrides.append(f"data.size={args.size}")
    if args.root is not None:
        overrides.append(f"data.root={json.dumps(args.root)}")
    if args.path is not None:
        overrides.append(f"data.path={json.dumps(args.path)}")
    if args.seeds is not None:
        seeds = [s for s in re.split(r"[,\s]+", args.seeds.strip()) if s]
        overrides.append(f"final.seeds=[{', '.join(seeds)}]")
    if args.epochs is not None:
        overrides.append(f"final.epochs={args.epochs}")
    if args.device is not None:
        overrides.append(f"run.device={json.dumps(args.device)}")
    return load_profile(base, overrides)


def main(args: argparse.Namespace) -> int:
    from engine.session import space_of
    from engine.session.retrain import Retrain
    from engine.session.setup import new_run_dir
    from engine.space import SearchSpace

    arch_space = SearchSpace()
    if args.profile:
        from engine.profile import load_profile

        arch_space = space_of(load_profile(args.profile))
    genotype, run_dir = resolve_arch(args.arch, arch_space)
    profile = _profile(args, run_dir)
    source = args.arch if len(args.arch) <= 200 else args.arch[:197] + "..."
    job = Retrain(profile, genotype, args.out or new_run_dir(profile), source=source)
    return drive(job, dashboard=args.dashboard, fmt=args.format)


def drive(job: Retrain, dashboard: bool = False, fmt: str = "text") -> int:
    """Run a ``Retrain`` headless (progress on stderr) or in the dashboard; print its results."""
    from rich.console import Console

    from ..console import ConsoleSink
    from .run import drive as drive_run
    from .run import run_headless

    if dashboard:
        code = drive_run(job, headless=False)
    else:
        code = run_headless(job, ConsoleSink(Console(stderr=True, highlight=False, soft_wrap=True)))
    print_results(job, fmt)
    return code


def print_results(job: Retrain, fmt: str) -> None:
    """The per-seed and mean ± std test metrics (text), or one JSON object as the last line."""
    summary = job.summary.to_dict()
    if fmt == "json":
        sys.stdout.write(json.dumps(summary, allow_nan=False, default=str) + "\n")
        return
    g = job.genotype
    print(f"architecture {g.compact}  ({summary['params']:,} params, {summary['flops']:,} FLOPs)")
    for s in summary["seeds"]:
        print(f"seed {s['seed']}: test AUC {s['test_auc']:.4f}  test ACC {s['test_acc']:.4f}  ({s['epochs']} epochs)")
    mean, std = summary["mean"], summary["std"]
    if summary["seeds"]:
        def pm(m: float, s: float | None) -> str:
            return f"{m:.4f}" + (f" ± {s:.4f}" if s is not None else "")

        print(f"mean over {len(summary['seeds'])} seed(s): test AUC {pm(mean['test_auc'], std['test_auc'])}  "
              f"test ACC {pm(mean['test_acc'], std['test_acc'])}")
    print(f"run directory: {job.run_dir.path}")
