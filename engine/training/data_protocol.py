"""What the trainer needs of a dataset: ``TrainData``.

``engine.data.Dataset`` satisfies it structurally (so does the search subset a
worker process rebuilds with ``engine.executors.packing.unpack_dataset``).
Naming only what the loop and the fitter read keeps the trainer's seam
honest: a test or a benchmark can hand it any object with these members.
"""
from __future__ import annotations

from typing import Protocol

from ..data import Split

__all__ = ["TrainData"]


class TrainData(Protocol):
    """The splits resident on the training device, and the facts the trainer checks and records.

    ``flag``, ``size`` and the split lengths go into an epoch checkpoint's
    identity; ``task`` and ``num_classes`` choose the loss and the metrics.
    """

    @property
    def flag(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def task(self) -> str: ...

    @property
    def num_classes(self) -> int: ...

    @property
    def train(self) -> Split: ...

    @property
    def val(self) -> Split: ...

    @property
    def test(self) -> Split: ...
