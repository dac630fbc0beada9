"""Model complexity: parameters and FLOPs with fvcore's convention (SPEC §6).

One multiply-add counts as one FLOP; the input is a 1×C×S³ tensor, or
1×C×D×H×W for non-cubic volumes (users' own data). Counting runs on a CPU
copy of the network in eval mode (batch-norm is then counted as fvcore counts
inference), so it never disturbs a model being trained.
"""
from __future__ import annotations

import copy
import logging
import warnings
from typing import Sequence, Union

import numpy as np
import torch
from torch import nn

__all__ = ["InputSize", "count_params", "count_flops", "flops_by_operator"]

# One edge S of a cubic input, or its three sides (D, H, W).
InputSize = Union[int, Sequence[int]]


def count_params(net: nn.Module) -> int:
    """Number of distinct parameters (shared tensors counted once)."""
    return sum(p.numel() for p in net.parameters())


def _convolution_mode_flop(inputs, outputs):
    """FLOPs of ``aten::_convolution_mode``: a convolution with string padding ("same").

    fvcore only knows ``aten::_convolution``; current PyTorch traces a
    ``padding="same"`` convolution to this other operator, which fvcore would
    silently skip. Counted like fvcore counts any convolution.
    """
    from fvcore.nn.jit_handles import conv_flop_count, get_shape

    x, w = inputs[:2]
    return {"conv": conv_flop_count(get_shape(x), get_shape(w), get_shape(outputs[0]), transposed=False)}


def _spatial(input_size: InputSize) -> tuple[int, int, int]:
    """``(D, H, W)`` of an input size given as one edge ``S`` or as three sides."""
    if isinstance(input_size, (int, np.integer)) and not isinstance(input_size, bool):
        sides = (int(input_size),) * 3
    elif isinstance(input_size, Sequence) and not isinstance(input_size, str) and len(input_size) == 3:
        sides = tuple(input_size)
    else:
        raise ValueError(f"input_size must be an integer S or a (D, H, W) triple, got {input_size!r}")
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in sides):
        raise ValueError(f"input_size sides must be positive integers, got {input_size!r}")
    return tuple(int(s) for s in sides)  # type: ignore[return-value]


def _analysis(net: nn.Module, input_size: InputSize, in_channels: int | None):
    from fvcore.nn import FlopCountAnalysis

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


def count_flops(net: nn.Module, input_size: InputSize = 28, in_channels: int | None = None) -> int:
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


def flops_by_operator(net: nn.Module, input_size: InputSize = 28, in_channels: int | None = None) -> dict[str, int]:
    """fvcore's FLOPs split by operator kind (``conv``, ``batch_norm``, …); arguments as ``count_flops``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("fvcore").setLevel(logging.ERROR)
        return {k: int(v) for k, v in _analysis(net, input_size, in_channels).by_operator().items()}
