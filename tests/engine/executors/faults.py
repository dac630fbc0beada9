"""Failure injection for the executor tests, through the model factory every executor accepts.

``FaultyFactory`` is a picklable ``engine.training.ModelFactory`` (it crosses
into pool workers and Ray tasks). It builds the real network and, inside
whatever process builds it:

* writes that process's pid beside the genotype (``pid_of``), so a test can
  kill the worker training a candidate;
* when the genotype was ``arm``-ed, consumes the arming and returns a model
  whose first forward raises ``torch.OutOfMemoryError`` (what a CUDA
  allocation failure raises), so the retry-alone rule runs on a machine
  without a GPU. One arming, one out-of-memory error, in whichever process
  builds the model first.

State lives in files of one folder, the only thing every backend's workers share.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from engine.model import build_network
from engine.space import Genotype


def _name(genotype: Genotype) -> str:
    return hashlib.sha1(str(genotype.key).encode()).hexdigest()[:16]


def _out_of_memory(module: nn.Module, args: object) -> None:
    raise torch.OutOfMemoryError("CUDA out of memory (simulated for a test)")


@dataclass(frozen=True)
class FaultyFactory:
    """A model factory that records who builds each genotype and fails armed ones with an OOM."""

    folder: str

    def arm(self, genotype: Genotype, times: int = 1) -> None:
        """The next ``times`` builds of ``genotype`` run out of memory (at their first forward)."""
        for i in range(times):
            (Path(self.folder) / f"{_name(genotype)}.oom{i}").touch()

    def disarm(self) -> None:
        for marker in Path(self.folder).glob("*.oom*"):
            marker.unlink(missing_ok=True)

    def forget_pids(self) -> None:
        for record in Path(self.folder).glob("*.pid"):
            record.unlink(missing_ok=True)

    def pid_of(self, genotype: Genotype) -> int | None:
        """The pid of the process that last built ``genotype`` (since ``forget_pids``), if any."""
        try:
            return int((Path(self.folder) / f"{_name(genotype)}.pid").read_text())
        except (OSError, ValueError):
            return None

    def _take_arming(self, genotype: Genotype) -> bool:
        for marker in sorted(Path(self.folder).glob(f"{_name(genotype)}.oom*")):
            try:
                marker.unlink()  # only one builder wins each arming
            except FileNotFoundError:
                continue
            return True
        return False

    def __call__(self, genotype: Genotype, *, in_channels: int, num_classes: int) -> nn.Module:
        record = Path(self.folder) / f"{_name(genotype)}.pid"
        tmp = record.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(str(os.getpid()))
        os.replace(tmp, record)
        net = build_network(genotype, in_channels=in_channels, num_classes=num_classes)
        if self._take_arming(genotype):
            net.register_forward_pre_hook(_out_of_memory)
        return net
