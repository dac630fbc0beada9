"""Model size of candidates, on the candidate's critical path at no cost.

Parameters and FLOPs come from the cell's structure in closed form
(``engine.complexity.genotype_complexity``), equal to what fvcore counts on
the built network (proved by a property test against fvcore). Nothing is
built, traced or cached: a count takes microseconds, so a candidate never
waits for it, and the cost does not grow with the run.
"""
from __future__ import annotations

from ..complexity import InputSize, genotype_complexity
from ..space import Genotype

__all__ = ["ComplexityCounter", "count_complexity"]


def count_complexity(genotype: Genotype, in_channels: int, num_classes: int, input_size: InputSize) -> tuple[int, int]:
    """``(params, flops)`` of the network of ``genotype`` (fvcore's convention, one 1xCxDxHxW input)."""
    return genotype_complexity(genotype, in_channels, num_classes, input_size)


class ComplexityCounter:
    """``(params, flops)`` of genotypes for one data shape.

    Args:
        in_channels, num_classes: the network's input channels and classes.
        input_size: the edge S of cubic inputs, or ``(D, H, W)``.
    """

    def __init__(self, in_channels: int, num_classes: int, input_size: InputSize) -> None:
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.input_size = input_size

    def get(self, genotype: Genotype) -> tuple[int, int]:
        """The counts of ``genotype``."""
        return genotype_complexity(genotype, self.in_channels, self.num_classes, self.input_size)
