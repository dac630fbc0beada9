"""Model complexity: parameters and FLOPs with fvcore's convention (SPEC §6).

One multiply-add counts as one FLOP; the input is a 1×C×S³ tensor. Counting
runs on a CPU copy of the network in eval mode (batch-norm is then counted as
fvcore counts inference), so it never disturbs a model being trained.
"""
from __future__ import annotations

import copy
import logging
import warnings

import torch
from torch import nn

__all__ = ["count_params", "count_flops", "flops_by_operator"]


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


def _analysis(net: nn.Module, input_size: int, in_channels: int | None):
    from fvcore.nn import FlopCountAnalysis

    model = copy.deepcopy(net).to("cpu").float().eval()
    if in_channels is None:
        first = next(m for m in model.modules() if isinstance(m, nn.Conv3d))
        in_channels = first.in_channels
    x = torch.zeros(1, in_channels, input_size, input_size, input_size)
    analysis = FlopCountAnalysis(model, x).set_op_handle("aten::_convolution_mode", _convolution_mode_flop)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return analysis


def count_flops(net: nn.Module, input_size: int = 28, in_channels: int | None = None) -> int:
    """FLOPs of one forward pass of a 1×C×S³ input, counted by fvcore.

    Args:
        net: the network (not modified).
        input_size: S, the edge of the cubic input (28 or 64 for MedMNIST3D).
        in_channels: C; defaults to the first convolution's input width.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("fvcore").setLevel(logging.ERROR)
        return int(_analysis(net, input_size, in_channels).total())


def flops_by_operator(net: nn.Module, input_size: int = 28, in_channels: int | None = None) -> dict[str, int]:
    """fvcore's FLOPs split by operator kind (``conv``, ``batch_norm``, …)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("fvcore").setLevel(logging.ERROR)
        return {k: int(v) for k, v in _analysis(net, input_size, in_channels).by_operator().items()}
