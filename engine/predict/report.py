"""What ``predict`` found: a prediction per volume, a failure per unusable input."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Prediction", "InputFailure", "PredictionReport"]


@dataclass(frozen=True)
class Prediction:
    """One classified volume: ``input`` names it (``file`` or ``file[i]``)."""

    input: str
    predicted: int
    probabilities: tuple[float, ...]


@dataclass(frozen=True)
class InputFailure:
    """An input that could not be classified; ``message`` is one line naming it."""

    input: str
    message: str


@dataclass(frozen=True)
class PredictionReport:
    """Everything ``predict`` found: classes, predictions in input order, failures."""

    bundle: str
    class_names: tuple[str, ...]
    predictions: tuple[Prediction, ...]
    failures: tuple[InputFailure, ...]

    def label(self, k: int) -> str:
        """The name of class ``k`` (its index as text when the bundle has no names)."""
        return self.class_names[k] if k < len(self.class_names) else str(k)

    @property
    def labels(self) -> tuple[str, ...]:
        n = len(self.predictions[0].probabilities) if self.predictions else len(self.class_names)
        return tuple(self.label(k) for k in range(n))
