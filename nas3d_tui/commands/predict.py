"""``nas3d-tui predict BUNDLE INPUT...``: classify volumes with a found model.

BUNDLE is a model bundle (a run's ``final/<id>-seed<k>/`` folder). INPUTs are
``.nii`` / ``.nii.gz`` (raw volumes, put through the NIfTI import's recipe),
``.npy`` / ``.npz`` (volumes already preprocessed like the training file) or
folders of them (``--recursive`` for sub-folders). Prints a table (input,
predicted class, probability per class), or writes CSV / JSON with ``-o``.

Exit codes: 0 every input was classified; 2 a bad bundle, device or output
(nothing classified), or some inputs failed -- each failed input gets one line
on stderr (and nothing else is written there) and the others are still
classified and written.
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from engine.predict.report import PredictionReport

NAME = "predict"
HELP = "classify .nii/.nii.gz/.npy/.npz volumes with a found model (a bundle folder)"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive integer")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="the model bundle folder (final/<id>-seed<k>/ of a run), or published:NAME (nas3d-tui models)")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help=".nii/.nii.gz/.npy/.npz files or folders")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("-o", "--output", default=None, metavar="FILE.csv|FILE.json",
                        help="write the predictions there instead of printing a table")
    parser.add_argument("--batch-size", type=_positive, default=32, metavar="B", help="volumes per forward pass (32)")
    parser.add_argument("-r", "--recursive", action="store_true", help="also classify files in sub-folders")


def _table(report: PredictionReport) -> Table:
    from rich.table import Table

    table = Table()
    table.add_column("input", overflow="fold")
    table.add_column("predicted")
    for label in report.labels:
        table.add_column(f"p({label})", justify="right")
    for pr in report.predictions:
        table.add_row(_shown(pr.input), report.label(pr.predicted), *(f"{q:.4f}" for q in pr.probabilities))
    return table


def _shown(text: str) -> str:
    """``text`` printable on any terminal: bytes of non-UTF-8 file names become U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def main(args: argparse.Namespace) -> int:
    from rich.console import Console

    from engine.bundle import read_bundle
    from engine.predict.inference import predict
    from engine.predict.output import check_output, write_predictions

    from ..published import resolve

    bundle = read_bundle(resolve(args.bundle))
    if args.output is not None:
        check_output(args.output)
    report = predict(bundle, args.inputs, device=args.device, batch_size=args.batch_size, recursive=args.recursive)
    for failure in report.failures:  # one line each, even for a file name with a newline in it
        print(f"nas3d-tui: error: {_shown(' '.join(failure.message.split()))}", file=sys.stderr)
    if args.output is not None:
        write_predictions(report, args.output)
        print(f"wrote {len(report.predictions)} prediction(s) to {args.output}")
    elif report.predictions:
        out = Console()
        out.print(f"model {report.bundle}", soft_wrap=True, highlight=False)
        out.print(_table(report))
    return 2 if report.failures else 0
