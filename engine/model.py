"""The network built from a ``Genotype`` (SPEC §4), and loading of published weights.

This module owns the exact wiring that reproduces the published parameter
counts, FLOPs and trained outputs: stem, stacks of cells, max-pool between
stacks, global average pooling and a linear classifier. It knows nothing about
data, training or the search.
"""
from __future__ import annotations

import threading
from typing import Mapping

import torch
from torch import nn

from .space import OPERATIONS, Genotype

__all__ = ["Cell", "Network", "build_network", "load_reference_weights", "make_operation", "INIT_LOCK"]

# Building a network draws its initial weights from torch's global RNG. Whoever
# seeds that RNG and then builds (the trainer), or builds while others may
# (complexity counting in a background thread), holds this lock, so "same seed,
# same network" holds with several threads.
INIT_LOCK = threading.Lock()


def make_operation(index: int, channels: int) -> nn.Sequential:
    """One operation of the table as a Sequential in its published layer order.

    Convolutions are stride 1 with "same" padding written as ``kernel // 2`` (equal
    for odd kernels), which every FLOP counter sees as an ordinary convolution.
    """
    spec = OPERATIONS[index]
    layers: list[nn.Module] = []
    for layer in spec.layers:
        if layer == "conv":
            layers.append(nn.Conv3d(channels, channels, spec.kernel, stride=1, padding=spec.kernel // 2, bias=True))
        elif layer == "in":
            layers.append(nn.InstanceNorm3d(channels, affine=True))
        elif layer == "relu":
            layers.append(nn.ReLU(inplace=False))
        elif layer == "mish":
            layers.append(nn.Mish(inplace=False))
        else:  # pragma: no cover - the table is fixed
            raise ValueError(f"unknown layer {layer!r}")
    return nn.Sequential(*layers)


class Cell(nn.Module):
    """A pruned NAS-Bench-101-style cell at ``channels`` width.

    Args:
        genotype: provides the pruned ``matrix`` and ``ops``.
        in_channels: width of the projection's input (see ``Network``).
        channels: width of every operation and of the output.
        project: whether the 1×1×1 projection is applied to the cell input. In
            stack 0 it exists (its parameters count) but is not applied.
    """

    def __init__(self, genotype: Genotype, in_channels: int, channels: int, project: bool) -> None:
        super().__init__()
        self.matrix = [list(map(int, row)) for row in genotype.matrix.tolist()]
        self.project = project
        self.projection = nn.Conv3d(in_channels, channels, 1, bias=True)
        self.nodes = nn.ModuleList(make_operation(op, channels) for op in genotype.ops)
        n = len(self.matrix)
        self._preds = [[u for u in range(n) if self.matrix[u][v]] for v in range(n)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.projection(x) if self.project else x
        outputs = [first]
        n = len(self.matrix)
        for v in range(1, n - 1):
            preds = self._preds[v]
            s = outputs[preds[0]]
            for u in preds[1:]:
                s = s + outputs[u]
            outputs.append(self.nodes[v - 1](s))
        # The cell input is always added; when the input also feeds the output
        # node it is added twice, as in the published implementation.
        out = first
        for u in self._preds[n - 1]:
            out = out + outputs[u]
        return out


class Network(nn.Module):
    """Stem → stacks of cells (max-pool between stacks) → global average pool → linear."""

    def __init__(self, genotype: Genotype, in_channels: int = 1, num_classes: int = 2) -> None:
        super().__init__()
        if not genotype.feasible:
            raise ValueError(f"cannot build an infeasible genotype: {genotype.reason}")
        nf = genotype.n_filters
        self.genotype = genotype
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, nf, 3, stride=1, padding=1, bias=True),
            nn.BatchNorm3d(nf),
            nn.ReLU(inplace=False),
        )
        cells: list[Cell] = []
        pool_after: list[bool] = []
        prev = in_channels  # the first cell's (unapplied) projection takes the input width
        for s in range(genotype.n_stacks):
            width = nf * 2**s
            for m in range(genotype.n_modules):
                cells.append(Cell(genotype, prev, width, project=s > 0))
                prev = width
                pool_after.append(m == genotype.n_modules - 1 and s < genotype.n_stacks - 1)
        self.cells = nn.ModuleList(cells)
        self._pool_after = pool_after
        self.pool = nn.MaxPool3d(kernel_size=2, stride=2)
        self.gap = nn.AdaptiveAvgPool3d(1)
        self.classifier = nn.Linear(prev, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform on every parameter with more than one dimension (fresh training)."""
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell, pool in zip(self.cells, self._pool_after):
            x = cell(x)
            if pool:
                x = self.pool(x)
        x = self.gap(x).flatten(1)
        logits: torch.Tensor = self.classifier(x)
        return logits


def build_network(genotype: Genotype, in_channels: int = 1, num_classes: int = 2) -> Network:
    """Build the network of a feasible genotype, freshly initialised.

    Raises:
        ValueError: the genotype is infeasible.
    """
    return Network(genotype, in_channels=in_channels, num_classes=num_classes)


def _reference_key_map(net: Network) -> dict[str, str]:
    """Published key → our key, for every tensor of ``net`` (plus the published duplicates)."""
    mapping: dict[str, str] = {}
    own = net.state_dict()
    for key in own:
        if key.startswith("stem."):
            param = key[len("stem."):]
            mapping[f"stem_conv.{param}"] = key
            mapping[f"cells.0.{param}"] = key  # the published stem is registered twice
        elif key.startswith("cells."):
            _, i, *rest = key.split(".")
            ref_cell = f"cells.{int(i) + 1}"
            if rest[0] == "projection":
                param = ".".join(rest[1:])
                mapping[f"{ref_cell}.ops_list.0.{param}"] = key
                mapping[f"{ref_cell}.stem_conv.{param}"] = key  # registered twice as well
            elif rest[0] == "nodes":
                j, layer, *tail = rest[1:]
                mapping[f"{ref_cell}.ops_list.{int(j) + 1}.op.{layer}.{'.'.join(tail)}"] = key
        else:
            mapping[key] = key
    return mapping


def load_reference_weights(net: Network, state_dict: Mapping[str, torch.Tensor]) -> Network:
    """Load a state dict saved by the paper's published implementation into ``net``.

    Duplicated registrations (the stem as ``stem_conv.*`` and ``cells.0.*``, a
    cell's projection as ``ops_list.0`` and ``stem_conv``) must agree.

    Raises:
        ValueError: keys missing or unexpected, shapes that differ, or duplicates
            that disagree — the message names the first offending keys.
    """
    mapping = _reference_key_map(net)
    own = net.state_dict()
    unexpected = sorted(k for k in state_dict if k not in mapping)
    if unexpected:
        raise ValueError(
            f"published weights do not match this architecture: unexpected keys {unexpected[:5]}"
            + (" …" if len(unexpected) > 5 else "")
        )
    loaded: dict[str, torch.Tensor] = {}
    for ref_key, tensor in state_dict.items():
        key = mapping[ref_key]
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise ValueError(
                f"shape mismatch for {ref_key}: published {tuple(tensor.shape)}, network {tuple(own[key].shape)}"
            )
        if key in loaded and not torch.equal(loaded[key], tensor):
            raise ValueError(f"published weights disagree for duplicated tensor {ref_key}")
        loaded[key] = tensor
    missing = sorted(k for k in own if k not in loaded)
    if missing:
        raise ValueError(f"published weights lack keys for {missing[:5]}" + (" …" if len(missing) > 5 else ""))
    net.load_state_dict(loaded, strict=True)
    return net
