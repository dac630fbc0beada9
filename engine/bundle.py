"""Model bundles: a trained network in a folder that ``predict`` and ``export-model`` can use.

This module owns the bundle format: what a finalist's directory holds and how
it is written and read back. A bundle is a folder with

* ``weights.safetensors`` -- the state dict (no pickle anywhere);
* ``genotype.json`` -- ``Genotype.to_dict()`` plus ``format``, ``dataset``,
  ``size``, ``task``, ``in_channels``, ``num_classes``, ``seed``, ``metrics``,
  ``weights`` (the weights file's name) and ``preprocessing`` (what a new input
  must go through to look like the training data).

Bundles written before safetensors hold ``weights.pt`` (a plain state dict);
they still load, with ``torch.load(..., weights_only=True)``, and their
preprocessing is the MedMNIST one (uint8 / 255, one channel, S³).

Every file is written atomically (``engine.atomic``) and read with the checked
reader (``engine.jsonfile``); a bundle that fails its checks raises
``BundleError`` with one line naming the file.
It knows nothing about the search or the run directory around it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .errors import CorruptFileError, RunDirError, UserError
from .jsonfile import read_json
from .atomic import atomic_write, atomic_write_json
from .bundle_files import GENOTYPE_FILE, LEGACY_WEIGHTS_FILE, WEIGHTS_FILE
from .space import Genotype

if TYPE_CHECKING:
    import torch

__all__ = [
    "BUNDLE_FORMAT",
    "WEIGHTS_FILE",
    "LEGACY_WEIGHTS_FILE",
    "GENOTYPE_FILE",
    "SCALINGS",
    "BundleError",
    "Preprocessing",
    "Bundle",
    "write_bundle",
    "read_bundle",
]

BUNDLE_FORMAT = "nas3d-tui/bundle/1"
# How stored voxel values became the network's float inputs:
#   divide-255: uint8 volumes / 255 (MedMNIST, and own uint8 files)
#   none:       float volumes used as stored
SCALINGS = ("divide-255", "none")


class BundleError(UserError):
    """A bundle cannot be read (missing file, wrong format, weights that do not fit)."""


@dataclass(frozen=True)
class Preprocessing:
    """What an input goes through before the network sees it, as in training.

    Attributes:
        shape: ``(D, H, W)`` of one volume.
        channels: C; the network's input is ``N x C x D x H x W``.
        scaling: one of ``SCALINGS``.
        class_names: names by class index (empty when unknown).
        task: ``binary-class`` or ``multi-class``.
        source: how the training file was made from raw volumes (e.g. the
            NIfTI import's resampling and intensity settings); free-form, JSON-safe.
    """

    shape: tuple[int, int, int]
    channels: int = 1
    scaling: str = "divide-255"
    class_names: tuple[str, ...] = ()
    task: str = "binary-class"
    source: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "channels": self.channels,
            "scaling": self.scaling,
            "class_names": list(self.class_names),
            "task": self.task,
            "source": dict(self.source),
        }

    @classmethod
    def from_dict(cls, data: object, where: str = "preprocessing") -> "Preprocessing":
        """Validate and build.

        Raises:
            BundleError: a field is missing or has the wrong type or value.
        """
        if not isinstance(data, dict):
            raise BundleError(f"{where}: expected an object, got {type(data).__name__}")
        shape = data.get("shape")
        if not (isinstance(shape, list) and len(shape) == 3
                and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
            raise BundleError(f"{where}.shape = {shape!r}: expected three positive integers [D, H, W]")
        channels = data.get("channels", 1)
        if not (isinstance(channels, int) and not isinstance(channels, bool) and channels > 0):
            raise BundleError(f"{where}.channels = {channels!r}: expected a positive integer")
        scaling = data.get("scaling", "divide-255")
        if scaling not in SCALINGS:
            raise BundleError(f"{where}.scaling = {scaling!r}: expected one of {', '.join(SCALINGS)}")
        names = data.get("class_names", [])
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise BundleError(f"{where}.class_names: expected a list of strings")
        task = data.get("task", "binary-class")
        if task not in ("binary-class", "multi-class"):
            raise BundleError(f"{where}.task = {task!r}: expected binary-class or multi-class")
        source = data.get("source", {})
        if not isinstance(source, dict):
            raise BundleError(f"{where}.source: expected an object")
        return cls(tuple(shape), channels, scaling, tuple(names), task, dict(source))


@dataclass(frozen=True)
class Bundle:
    """A bundle read from disk (weights are loaded on demand)."""

    path: Path
    genotype: Genotype
    preprocessing: Preprocessing
    num_classes: int
    metadata: dict[str, Any]
    weights_path: Path

    @property
    def in_channels(self) -> int:
        return self.preprocessing.channels

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The weights as CPU tensors, without unpickling any code.

        Raises:
            BundleError: the weights file is unreadable.
        """
        import torch

        try:
            if self.weights_path.suffix == ".safetensors":
                from safetensors.torch import load_file

                return load_file(str(self.weights_path), device="cpu")
            loaded: dict[str, torch.Tensor] = torch.load(self.weights_path, map_location="cpu", weights_only=True)
            return loaded
        except Exception as exc:  # noqa: BLE001 - any reader error means an unusable file
            raise BundleError(f"{self.weights_path}: cannot read the weights ({type(exc).__name__})") from None

    def build_model(self, device: str = "cpu") -> torch.nn.Module:
        """The network with the bundle's weights, in eval mode, on ``device``.

        The weights are checked against the genotype's network built without
        memory (torch's meta device) first, so a genotype edited to absurd sizes
        is refused in one line instead of exhausting memory.

        Raises:
            BundleError: the weights do not fit the genotype, or hold NaN / infinite values.
        """
        import torch

        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in self._network().state_dict().items()}
        weights = self.state_dict()
        found = {k: tuple(v.shape) for k, v in weights.items()}
        if found != shapes:
            raise BundleError(f"{self.weights_path}: the weights do not fit the genotype ({_first_difference(shapes, found)})")
        bad = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise BundleError(f"{self.weights_path}: the weights hold NaN or infinite values (in {bad[0]})")
        net = self._network()
        net.load_state_dict(weights, strict=True)
        return net.to(device).eval()

    def _network(self) -> torch.nn.Module:
        from .model import build_network

        return build_network(self.genotype, in_channels=self.in_channels, num_classes=self.num_classes)


def _first_difference(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]) -> str:
    """The first tensor name whose presence or shape differs, for a one-line error."""
    for name in sorted(set(expected) | set(found)):
        if name not in found:
            return f"{name} is missing"
        if name not in expected:
            return f"unexpected tensor {name}"
        if expected[name] != found[name]:
            return f"{name} has shape {list(found[name])}, the genotype needs {list(expected[name])}"
    return "no difference"


def write_bundle(
    out_dir: str | os.PathLike[str],
    genotype: Genotype,
    state_dict: Mapping[str, Any],
    preprocessing: Preprocessing,
    *,
    num_classes: int,
    dataset: str,
    seed: int,
    metrics: Mapping[str, Any],
) -> tuple[Path, Path]:
    """Write a bundle into ``out_dir`` (created); returns ``(weights_path, genotype_path)``.

    The weights are written first, then ``genotype.json``: a bundle whose
    ``genotype.json`` exists is complete.
    """
    from safetensors.torch import save

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    weights = out / WEIGHTS_FILE

    data = save(tensors, metadata={"format": BUNDLE_FORMAT})
    atomic_write(weights, lambda fh: fh.write(data))
    record = dict(genotype.to_dict())
    record.update(
        format=BUNDLE_FORMAT,
        dataset=dataset,
        size=int(max(preprocessing.shape)),
        task=preprocessing.task,
        in_channels=preprocessing.channels,
        num_classes=int(num_classes),
        seed=int(seed),
        metrics=dict(metrics),
        weights=WEIGHTS_FILE,
        preprocessing=preprocessing.to_dict(),
    )
    path = out / GENOTYPE_FILE
    atomic_write_json(path, record)
    return weights, path


def read_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read and check the bundle in folder ``path`` (or the folder of a ``genotype.json``).

    Raises:
        BundleError: no such folder, no genotype.json, malformed metadata, no weights file.
    """
    p = Path(path)
    try:
        folder = p.parent if p.name == GENOTYPE_FILE else p
        if not folder.is_dir():
            raise BundleError(f"{p}: no bundle folder here (expected a final/<id>-seed<k>/ directory)")
        meta_path = folder / GENOTYPE_FILE
        if not meta_path.is_file():
            raise BundleError(f"{folder}: not a model bundle (no {GENOTYPE_FILE})")
        try:
            meta = read_json(meta_path)
        except CorruptFileError:
            raise BundleError(f"{meta_path}: not valid JSON") from None
        except RunDirError as exc:
            raise BundleError(f"{p}: {exc}") from None
    except OSError as exc:
        raise BundleError(f"{p}: {exc.strerror or exc}") from None
    if not isinstance(meta, dict):
        raise BundleError(f"{meta_path}: expected a JSON object")
    try:
        genotype = Genotype.from_dict(meta)
    except ValueError as exc:
        raise BundleError(f"{meta_path}: {exc}") from None
    if not genotype.feasible:
        raise BundleError(f"{meta_path}: the genotype is infeasible ({genotype.reason})")
    fmt = meta.get("format")
    if fmt is not None and fmt != BUNDLE_FORMAT:
        raise BundleError(f"{meta_path}: format = {fmt!r}: expected {BUNDLE_FORMAT!r} (a bundle from a newer version?)")
    num_classes = meta.get("num_classes")
    if not (isinstance(num_classes, int) and not isinstance(num_classes, bool) and num_classes >= 2):
        raise BundleError(f"{meta_path}: num_classes = {num_classes!r}: expected an integer >= 2")
    if "preprocessing" in meta:
        pre = Preprocessing.from_dict(meta["preprocessing"], where=f"{meta_path}: preprocessing")
    else:  # a bundle from before the format had a version: MedMNIST inputs
        size = meta.get("size")
        channels = meta.get("in_channels", 1)
        if not (isinstance(size, int) and size > 0 and isinstance(channels, int) and channels > 0):
            raise BundleError(f"{meta_path}: size / in_channels missing or invalid")
        pre = Preprocessing((size, size, size), channels, "divide-255", (), meta.get("task", "binary-class"))
    from .datafile import min_size_for_stacks

    if min(pre.shape) < min_size_for_stacks(genotype.n_stacks):
        raise BundleError(
            f"{meta_path}: preprocessing.shape = {list(pre.shape)} is too small for {genotype.n_stacks} stacks "
            f"(each side needs at least {min_size_for_stacks(genotype.n_stacks)})"
        )
    name = meta.get("weights") or (WEIGHTS_FILE if (folder / WEIGHTS_FILE).exists() else LEGACY_WEIGHTS_FILE)
    if not isinstance(name, str) or "/" in name or name not in (WEIGHTS_FILE, LEGACY_WEIGHTS_FILE):
        raise BundleError(f"{meta_path}: weights = {name!r}: expected {WEIGHTS_FILE} or {LEGACY_WEIGHTS_FILE}")
    weights = folder / name
    if not weights.is_file():
        raise BundleError(f"{weights}: missing (the bundle is incomplete)")
    return Bundle(folder, genotype, pre, num_classes, meta, weights)
