"""Published reference results that a run's final test metrics are shown against.

This module owns the reference rows of the report's final-results table: the
paper's Table 2 ("Ours" rows, test AUC / ACC) per MedMNIST3D dataset, and the
score of the paper's released weights where this project re-tested them.

Source: Kuş, Kiraz, Aydın, Kiraz (2026), "Neural architecture search for 3D
biomedical image classification", Table 2. Only rows copied from that table
(or measured from the released weights) belong here: never estimate one.
To add a dataset, add its rows to ``REFERENCE_ROWS`` under its medmnist flag.

Pure data: no I/O, no imports beyond the standard library.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReferenceRow", "MEDMNIST3D", "REFERENCE_ROWS", "reference_rows"]

# The six datasets of the paper (medmnist flags).
MEDMNIST3D = (
    "organmnist3d",
    "nodulemnist3d",
    "adrenalmnist3d",
    "fracturemnist3d",
    "vesselmnist3d",
    "synapsemnist3d",
)

PAPER = "Kuş, Kiraz, Aydın, Kiraz 2026, Table 2"


@dataclass(frozen=True)
class ReferenceRow:
    """One published result: a label, test AUC and ACC, and where the numbers come from."""

    label: str
    test_auc: float
    test_acc: float
    source: str


# dataset flag -> its reference rows (Kuş, Kiraz, Aydın, Kiraz 2026, Table 2).
# Only AdrenalMNIST3D is filled in; the other five datasets await their Table 2 rows.
REFERENCE_ROWS: dict[str, tuple[ReferenceRow, ...]] = {
    "adrenalmnist3d": (
        ReferenceRow("paper: Ours #1* (average)", 0.891, 0.840, PAPER),
        ReferenceRow(
            "paper: released weights of model 90",
            0.884,
            0.842,
            "the paper's released weights, re-tested by this project (tests/engine/test_model.py)",
        ),
    ),
}


def reference_rows(dataset: str) -> tuple[ReferenceRow, ...]:
    """The reference rows for a medmnist flag (empty when none are recorded)."""
    return REFERENCE_ROWS.get(dataset.lower(), ())
