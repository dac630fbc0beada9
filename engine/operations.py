"""The operation table of the search space (SPEC §3): fifteen 3D convolution operations.

Its own module, without numpy, so that the dashboard can name an operation
without loading what decoding vectors needs (``engine.space`` re-exports it).
No torch, no numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Operation", "OPERATIONS"]


@dataclass(frozen=True)
class Operation:
    """One entry of the operation table.

    ``layers`` is the order of the layers inside the operation: ``conv``,
    ``in`` (InstanceNorm3d, affine), ``relu`` or ``mish``.
    """

    index: int
    kernel: int
    layers: tuple[str, ...]

    @property
    def short(self) -> str:
        names = {"conv": f"conv{self.kernel}", "in": "IN", "relu": "ReLU", "mish": "Mish"}
        return "·".join(names[layer] for layer in self.layers)


def _table() -> tuple[Operation, ...]:
    ops: list[Operation] = []
    for act in ("relu", "mish"):  # 0–5: conv → IN → act
        for k in (3, 5, 7):
            ops.append(Operation(len(ops), k, ("conv", "in", act)))
    for k in (3, 5, 7):  # 6–8: IN → Mish → conv
        ops.append(Operation(len(ops), k, ("in", "mish", "conv")))
    for act in ("relu", "mish"):  # 9–14: act → conv
        for k in (3, 5, 7):
            ops.append(Operation(len(ops), k, (act, "conv")))
    return tuple(ops)


OPERATIONS: tuple[Operation, ...] = _table()
