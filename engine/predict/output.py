"""Writing a ``PredictionReport`` as CSV or JSON, atomically, by the file's suffix."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from ..atomic import atomic_write_text
from . import PredictError
from .report import PredictionReport

__all__ = ["OUTPUT_FORMATS", "check_output", "write_predictions"]

OUTPUT_FORMATS = (".csv", ".json")


def check_output(path: str | os.PathLike[str]) -> str:
    """The output format of ``path`` (``.csv`` or ``.json``), checked before any work is done.

    Raises:
        PredictError: another suffix, or a folder that does not exist.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise PredictError(f"{p}: output must end in {' or '.join(OUTPUT_FORMATS)}")
    if not p.parent.is_dir():
        raise PredictError(f"{p}: folder {p.parent} does not exist")
    from ..rundir import refuse_run_file

    refuse_run_file(p)
    return suffix


def write_predictions(report: PredictionReport, path: str | os.PathLike[str]) -> None:
    """Write the report as CSV (one row per volume) or JSON (with failures), atomically, by suffix.

    CSV columns: ``input, predicted, predicted_index, p_<class>...``. JSON:
    ``{"bundle", "classes", "predictions": [{"input", "predicted",
    "predicted_index", "probabilities": {class: p}}], "failures": [{"input", "error"}]}``.

    Raises:
        PredictError: as ``check_output``.
        OSError: the file cannot be written.
    """
    p = Path(path)
    suffix = check_output(p)
    labels = report.labels
    if suffix == ".csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["input", "predicted", "predicted_index", *(f"p_{label}" for label in labels)])
        for pr in report.predictions:
            writer.writerow([pr.input, report.label(pr.predicted), pr.predicted, *(f"{q:.6f}" for q in pr.probabilities)])
        text = buf.getvalue()
    else:
        text = json.dumps(
            {
                "bundle": report.bundle,
                "classes": list(labels),
                "predictions": [
                    {
                        "input": pr.input,
                        "predicted": report.label(pr.predicted),
                        "predicted_index": pr.predicted,
                        "probabilities": dict(zip(labels, pr.probabilities)),
                    }
                    for pr in report.predictions
                ],
                "failures": [{"input": f.input, "error": f.message} for f in report.failures],
            },
            indent=1,
        ) + "\n"
    atomic_write_text(p, text)
