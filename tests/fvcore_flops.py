"""fvcore's FLOPs of a network split by operator kind: the tests' reference for the closed-form count."""
from __future__ import annotations

import logging
import warnings

import torch

from engine.complexity import _analysis


def flops_by_operator(net: torch.nn.Module, input_size: int | tuple[int, int, int] = 28) -> dict[str, int]:
    """fvcore's FLOPs split by operator kind (``conv``, ``batch_norm``, ...), traced as ``count_flops`` traces."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("fvcore").setLevel(logging.ERROR)
        return {k: int(v) for k, v in _analysis(net, input_size, None).by_operator().items()}
