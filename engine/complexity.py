"""Model complexity: parameters and FLOPs with fvcore's convention (SPEC §6).

One multiply-add counts as one FLOP; the input is a 1×C×S³ tensor, or
1×C×D×H×W for non-cubic volumes (users' own data).

Two ways to count, which agree for every genotype of the space:

- ``genotype_complexity`` (with ``genotype_params`` / ``genotype_flops``): the
  closed form from the cell's structure (SPEC §4). It builds nothing and
  imports no torch, so it costs microseconds; the search and ``train`` use it.
- ``count_params`` / ``count_flops``: any built
  ``nn.Module``, FLOPs traced by fvcore on a CPU copy in eval mode. They are
  the reference the closed form is proved against (tests/engine/test_complexity.py)
  and count networks that are not genotypes.

What fvcore counts, and so what the closed form counts: a convolution is
``out voxels × in channels × out channels × k³`` (no bias); eval-mode
BatchNorm3d with affine is 2 per element; affine InstanceNorm3d is 5 per
element; Linear is ``in × out``. ReLU, Mish, additions, max-pooling and 3D
adaptive average pooling are not counted.
"""
from __future__ import annotations

import copy
import logging
import warnings
from typing import TYPE_CHECKING, Any, Sequence, Union

import numpy as np

from .space import OPERATIONS, Genotype

if TYPE_CHECKING:  # pragma: no cover
    from fvcore.nn import FlopCountAnalysis  # type: ignore[import-untyped,unused-ignore]
    from torch import nn

__all__ = [
    "InputSize",
    "genotype_complexity",
    "genotype_params",
    "genotype_flops",
    "count_params",
    "count_flops",
]

# One edge S of a cubic input, or its three sides (D, H, W).
InputSize = Union[int, Sequence[int]]


def count_params(net: "nn.Module") -> int:
    """Number of distinct parameters (shared tensors counted once)."""
    return sum(p.numel() for p in net.parameters())


def _convolution_mode_flop(inputs: list[Any], outputs: list[Any]) -> dict[str, int]:
    """FLOPs of ``aten::_convolution_mode``: a convolution with string padding ("same").

    fvcore only knows ``aten::_convolution``; current PyTorch traces a
    ``padding="same"`` convolution to this other operator, which fvcore would
    silently skip. Counted like fvcore counts any convolution.
    """
    from fvcore.nn.jit_handles import conv_flop_count, get_shape  # type: ignore[import-untyped,unused-ignore]

    x, w = inputs[:2]
    return {"conv": int(conv_flop_count(get_shape(x), get_shape(w), get_shape(outputs[0]), transposed=False))}


def _spatial(input_size: InputSize) -> tuple[int, int, int]:
    """``(D, H, W)`` of an input size given as one edge ``S`` or as three sides."""
    sides: tuple[Any, ...]
    if isinstance(input_size, (int, np.integer)) and not isinstance(input_size, bool):
        sides = (int(input_size),) * 3
    elif isinstance(input_size, Sequence) and not isinstance(input_size, str) and len(input_size) == 3:
        sides = tuple(input_size)
    else:
        raise ValueError(f"input_size must be an integer S or a (D, H, W) triple, got {input_size!r}")
    checked = [int(s) for s in sides if isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0]
    if len(checked) != 3:
        raise ValueError(f"input_size sides must be positive integers, got {input_size!r}")
    return checked[0], checked[1], checked[2]


# fvcore's FLOPs per element of the affine normalisations (its handles for
# aten::batch_norm in eval mode and aten::instance_norm).
_BATCH_NORM_PER_ELEMENT = 2
_INSTANCE_NORM_PER_ELEMENT = 5


def _conv(c_in: int, c_out: int, kernel: int) -> int:
    """Parameters of a Conv3d with bias."""
    return c_in * c_out * kernel**3 + c_out


def _operation_params(index: int, channels: int) -> int:
    """Parameters of one operation node at ``channels`` width (conv with bias, affine IN)."""
    spec = OPERATIONS[index]
    total = 0
    for layer in spec.layers:
        if layer == "conv":
            total += _conv(channels, channels, spec.kernel)
        elif layer == "in":
            total += 2 * channels
    return total


def _operation_flops(index: int, channels: int, voxels: int) -> int:
    """fvcore's FLOPs of one operation node on ``voxels`` voxels (activations count nothing)."""
    spec = OPERATIONS[index]
    total = 0
    for layer in spec.layers:
        if layer == "conv":
            total += voxels * channels * channels * spec.kernel**3
        elif layer == "in":
            total += _INSTANCE_NORM_PER_ELEMENT * channels * voxels
    return total


def _stack_widths(genotype: Genotype) -> list[int]:
    return [genotype.n_filters * 2**s for s in range(genotype.n_stacks)]


def genotype_params(genotype: Genotype, in_channels: int = 1, num_classes: int = 2) -> int:
    """Parameters of ``build_network(genotype, in_channels, num_classes)``, from its structure.

    Stem conv3 + BatchNorm3d; per cell a 1×1×1 projection (the first from
    ``in_channels``, counted in stack 0 too, where it is not applied) and its
    operation nodes; the classifier.
    """
    nf = genotype.n_filters
    total = _conv(in_channels, nf, 3) + 2 * nf
    cell_ops = 0
    prev = in_channels
    for width in _stack_widths(genotype):
        cell_ops = sum(_operation_params(op, width) for op in genotype.ops)
        for _ in range(genotype.n_modules):
            total += _conv(prev, width, 1) + cell_ops
            prev = width
    return total + prev * num_classes + num_classes


def genotype_flops(genotype: Genotype, input_size: InputSize = 28, in_channels: int = 1, num_classes: int = 2) -> int:
    """fvcore's FLOPs of one forward pass of ``build_network(genotype, …)`` on a 1×C×D×H×W input.

    Raises:
        ValueError: ``input_size`` is not S or (D, H, W) of positive integers,
            or it is too small for the max-pools between the stacks.
    """
    sides = _spatial(input_size)
    nf = genotype.n_filters
    voxels = sides[0] * sides[1] * sides[2]
    total = voxels * in_channels * nf * 27 + _BATCH_NORM_PER_ELEMENT * nf * voxels
    prev = in_channels
    for s, width in enumerate(_stack_widths(genotype)):
        if s > 0:  # the 2×2×2 max-pool (stride 2, floor) between stacks
            sides = (sides[0] // 2, sides[1] // 2, sides[2] // 2)
            if min(sides) == 0:
                raise ValueError(f"input_size {input_size!r} is too small for {genotype.n_stacks} stacks")
            voxels = sides[0] * sides[1] * sides[2]
        cell = sum(_operation_flops(op, width, voxels) for op in genotype.ops)
        for _ in range(genotype.n_modules):
            if s > 0:  # the projection is applied from stack 1 on
                total += voxels * prev * width
            total += cell
            prev = width
    return total + prev * num_classes


def genotype_complexity(genotype: Genotype, in_channels: int, num_classes: int, input_size: InputSize) -> tuple[int, int]:
    """``(params, flops)`` of the network of a feasible ``genotype``, in closed form (fvcore's convention).

    Raises:
        ValueError: the genotype is infeasible, or ``input_size`` is bad (see ``genotype_flops``).
    """
    if not genotype.feasible:
        raise ValueError(f"cannot count an infeasible genotype: {genotype.reason}")
    return (
        genotype_params(genotype, in_channels, num_classes),
        genotype_flops(genotype, input_size, in_channels, num_classes),
    )


def _analysis(net: "nn.Module", input_size: InputSize, in_channels: int | None) -> "FlopCountAnalysis":
    import torch
    from fvcore.nn import FlopCountAnalysis
    from torch import nn

    sides = _spatial(input_size)
    model = copy.deepcopy(net).to("cpu").float().eval()
    if in_channels is None:
        first = next(m for m in model.modules() if isinstance(m, nn.Conv3d))
        in_channels = first.in_channels
    x = torch.zeros(1, in_channels, *sides)
    analysis = FlopCountAnalysis(model, x).set_op_handle("aten::_convolution_mode", _convolution_mode_flop)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return analysis


def count_flops(net: "nn.Module", input_size: InputSize = 28, in_channels: int | None = None) -> int:
    """FLOPs of one forward pass of a 1×C×D×H×W input, counted by fvcore.

    Args:
        net: the network (not modified).
        input_size: S, the edge of a cubic input (28 or 64 for MedMNIST3D), or
            ``(D, H, W)`` for a non-cubic one.
        in_channels: C; defaults to the first convolution's input width.

    Raises:
        ValueError: ``input_size`` is neither a positive integer nor three of them.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("fvcore").setLevel(logging.ERROR)
        return int(_analysis(net, input_size, in_channels).total())
