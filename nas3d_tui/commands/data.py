"""``nas3d-tui data import|check``: make a dataset file from your own NIfTI volumes, or check one.

``data import FOLDER --labels CSV --size N -o OUT.npz`` resamples every volume
named in the CSV to N x N x N, scales its intensities, splits the rows
(stratified and seeded unless the CSV has a split column) and writes a file in
MedMNIST's npz layout, with a progress bar and a summary. ``data check FILE``
reads a file with every check the search applies and prints what it holds.

Bad input raises ``engine.errors.UserError`` (the command line prints one line
and exits 2). The work is done by ``engine.nifti`` and ``engine.datafile``.
"""
from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

from .. import hints

NAME = "data"
HELP = "import your own NIfTI volumes into a dataset file (data import), or check one (data check)"

INTENSITY_HELP = (
    "per-volume intensity scaling: percentile (default: clip to the 0.5/99.5 percentiles, then min-max, "
    "stored as uint8), minmax (min-max without clipping, uint8), none (raw values, float32)"
)


MAX_SIDE = 512  # 512^3 voxels is already 128 MiB per volume; MedMNIST uses 28 or 64


def _size(text: str) -> int | tuple[int, int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*(?:[x,]\s*(\d+)\s*[x,]\s*(\d+)\s*)?", text)
    if m is None or any(g is not None and not 1 <= int(g) <= MAX_SIDE for g in m.groups()):
        raise argparse.ArgumentTypeError(f"{text!r}: expected N (N x N x N) or DxHxW, integers from 1 to {MAX_SIDE}")
    if m.group(2) is None:
        return int(m.group(1))
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)))


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= 0")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number in (0, 1)") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number in (0, 1)")
    return value


def _percentiles(text: str) -> tuple[float, float]:
    try:
        low, high = (float(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LOW,HIGH, e.g. 0.5,99.5") from None
    if not 0.0 <= low < high <= 100.0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0 <= LOW < HIGH <= 100")
    return (low, high)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    imp = sub.add_parser(
        "import",
        help="build an .npz dataset file from a folder of .nii/.nii.gz volumes and a labels CSV",
        description="Build a dataset file (MedMNIST's npz layout) from NIfTI volumes. The CSV needs a header "
        "row file,label[,split]: file relative to FOLDER, label a class index or a class name, split "
        "train/val/test (without it: a seeded stratified split).",
    )
    imp.add_argument("folder", help="folder the CSV's file names are relative to")
    imp.add_argument("--labels", required=True, metavar="CSV", help="CSV with a header row: file,label[,split]")
    imp.add_argument("--size", required=True, type=_size, metavar="N",
                     help="resample every volume to N x N x N (or DxHxW), trilinear")
    imp.add_argument("-o", "--output", required=True, metavar="OUT.npz", help="the dataset file to write")
    imp.add_argument("--seed", type=_seed, default=0, help="seed of the stratified split (default 0)")
    imp.add_argument("--val-fraction", type=_fraction, default=None, metavar="F",
                     help="share of each class for validation (default 0.1; not with a split column)")
    imp.add_argument("--test-fraction", type=_fraction, default=None, metavar="F",
                     help="share of each class for test (default 0.2; not with a split column)")
    imp.add_argument("--intensity", choices=("percentile", "minmax", "none"), default="percentile",
                     help=INTENSITY_HELP)
    imp.add_argument("--percentiles", type=_percentiles, default=(0.5, 99.5), metavar="LOW,HIGH",
                     help="clipping percentiles of --intensity percentile (default 0.5,99.5)")

    chk = sub.add_parser("check", help="check a dataset .npz (MedMNIST or your own) and summarise it")
    chk.add_argument("file", help="the .npz file")
    chk.add_argument("--stacks", type=int, default=1, metavar="S",
                     help="require volumes large enough for networks of S stacks (default 1)")


def _counts_table(class_names: tuple[str, ...], counts: dict[str, tuple[int, ...]]) -> Table:
    """A rich table of volumes per class and split."""
    from rich.table import Table

    table = Table()
    table.add_column("class")
    for split in ("train", "val", "test", "total"):
        table.add_column(split, justify="right")
    for k, name in enumerate(class_names):
        row = [counts[s][k] for s in ("train", "val", "test")]
        table.add_row(f"{k} {name}" if name != str(k) else name, *(str(c) for c in row), str(sum(row)))
    totals = [sum(counts[s]) for s in ("train", "val", "test")]
    table.add_row("all", *(str(t) for t in totals), str(sum(totals)), style="bold")
    return table


def _import(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from engine.nifti.folder_import import import_nifti_folder

    err = Console(stderr=True)
    with Progress(
        TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        TextColumn("{task.description}"), console=err, transient=True,
        disable=not err.is_terminal,  # a bar only for a person: a redirected stderr gets error lines alone
    ) as bar:
        task = bar.add_task("", total=None)

        def progress(done: int, total: int, file: str) -> None:
            bar.update(task, completed=done, total=total, description=file)

        summary = import_nifti_folder(
            args.folder,
            args.labels,
            args.output,
            size=args.size,
            seed=args.seed,
            val_fraction=args.val_fraction,
            test_fraction=args.test_fraction,
            intensity=args.intensity,
            percentiles=args.percentiles,
            progress=progress,
        )
    out = Console()
    src = summary.source
    split = src.get("split", {})
    how = (f"stratified, seed {split.get('seed')}, val {split.get('val_fraction')}, test {split.get('test_fraction')}"
           if split.get("method") == "stratified" else "from the CSV's split column")
    intensity = src.get("intensity", {})
    scaling = intensity.get("method")
    if scaling == "percentile":
        scaling += f" {intensity.get('low')}/{intensity.get('high')}"
    out.print(f"wrote {summary.path}", soft_wrap=True, highlight=False)
    out.print(_counts_table(summary.class_names, summary.counts))
    out.print(f"volumes {summary.channels} x {'x'.join(map(str, summary.shape))} "
              f"({'uint8, divide-255' if summary.scaling == 'divide-255' else 'float32'}); "
              f"intensity {scaling}; split {how}", soft_wrap=True, highlight=False)
    out.print(f"search on it with: {hints.command('run', 'quick', '--set', f'data.path={summary.path}')}",
              soft_wrap=True, highlight=False)
    return 0


def _check(args: argparse.Namespace) -> int:
    import numpy as np
    from rich.console import Console

    from engine.datafile import min_size_for_stacks, read_datafile
    from engine.errors import UserError

    if args.stacks < 1:
        raise UserError(f"--stacks {args.stacks}: give 1 or more")
    data = read_datafile(args.file, min_size=min_size_for_stacks(args.stacks))
    names = data.class_names or tuple(str(k) for k in range(data.num_classes))
    counts = {s: tuple(int(c) for c in np.bincount(data.splits[s].labels, minlength=data.num_classes))
              for s in ("train", "val", "test")}
    out = Console()
    out.print(f"{data.path}: {data.task}, {data.num_classes} classes", soft_wrap=True, highlight=False)
    out.print(_counts_table(names, counts))
    dtype = data.splits["train"].images.dtype
    out.print(f"volumes {data.channels} x {'x'.join(map(str, data.shape))} ({dtype}, scaling {data.scaling})",
              soft_wrap=True, highlight=False)
    if data.source:
        out.print(f"made by: {data.source.get('tool', data.source.get('format', 'unknown'))}", soft_wrap=True,
                  highlight=False)
    return 0


def main(args: argparse.Namespace) -> int:
    if args.data_command == "import":
        return _import(args)
    return _check(args)
