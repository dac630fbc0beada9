"""Classifying new volumes with a model bundle, preprocessed exactly as in training.

This module owns what ``nas3d-tui predict`` does between a bundle and a table
of probabilities: finding the inputs, turning each file into volumes the
network accepts, batching them on a device, and writing the results.

Inputs (``INPUT_SUFFIXES``):

* ``.nii`` / ``.nii.gz`` -- one raw volume, put through the NIfTI import's
  recipe recorded in the bundle's ``preprocessing.source``
  (``engine.nifti.recipe.VolumeRecipe``): reorientation, resampling, intensity scaling.
* ``.npy`` -- volumes already preprocessed like the training file: ``(D, H, W)``
  is one volume; ``(N, C, D, H, W)`` is a batch; a 4-D array is a batch
  ``(N, D, H, W)`` when the model takes one channel, and one volume
  ``(C, D, H, W)`` otherwise.
* ``.npz`` -- its ``test_images`` when present (the dataset layout), otherwise
  every array in it, each read like an ``.npy``.
* a folder -- its files with those suffixes, sorted; sub-folders only with
  ``recursive=True``.

Volumes must have the bundle's shape and channels; uint8 volumes are divided
by 255 for ``divide-255`` bundles (other integer dtypes are accepted when every
value is 0-255; floats are refused), float volumes are used as float32 for
``none`` bundles. Probabilities are the softmax of the logits. An input that
cannot be used becomes an ``InputFailure`` (one line) and the others are still
classified.

It must not print or import the UI; the command renders the report.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .bundle import Bundle, BundleError, Preprocessing
from .datafile import npz_members, read_npy, read_npz
from .errors import UserError, one_line
from .nifti.recipe import VolumeRecipe
from .nifti.volume import is_nifti
from .atomic import atomic_write_text

__all__ = [
    "INPUT_SUFFIXES",
    "OUTPUT_FORMATS",
    "PredictError",
    "Prediction",
    "InputFailure",
    "PredictionReport",
    "resolve_device",
    "find_inputs",
    "load_input",
    "probabilities",
    "predict",
    "check_output",
    "write_predictions",
]

INPUT_SUFFIXES = (".npy", ".npz", ".nii", ".nii.gz")
OUTPUT_FORMATS = (".csv", ".json")


class PredictError(UserError):
    """An input, a device or an output file cannot be used for prediction (one line)."""


@dataclass(frozen=True)
class Prediction:
    """One classified volume: ``input`` names it (``file`` or ``file[i]``)."""

    input: str
    predicted: int
    probabilities: tuple[float, ...]


@dataclass(frozen=True)
class InputFailure:
    """An input that could not be classified; ``message`` is one line naming it."""

    input: str
    message: str


@dataclass(frozen=True)
class PredictionReport:
    """Everything ``predict`` found: classes, predictions in input order, failures."""

    bundle: str
    class_names: tuple[str, ...]
    predictions: tuple[Prediction, ...]
    failures: tuple[InputFailure, ...]

    def label(self, k: int) -> str:
        """The name of class ``k`` (its index as text when the bundle has no names)."""
        return self.class_names[k] if k < len(self.class_names) else str(k)

    @property
    def labels(self) -> tuple[str, ...]:
        n = len(self.predictions[0].probabilities) if self.predictions else len(self.class_names)
        return tuple(self.label(k) for k in range(n))


def resolve_device(device: str) -> str:
    """``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` as a torch device string (``engine.training.resolve_device``).

    Raises:
        PredictError: an unknown name, or CUDA asked for where there is none.
    """
    from .errors import SessionError
    from .training.device import resolve_device as resolve

    try:
        return resolve(device, "--device")
    except SessionError as exc:
        raise PredictError(str(exc)) from None


def _has_suffix(path: Path) -> bool:
    return path.name.lower().endswith(INPUT_SUFFIXES)


def find_inputs(
    paths: Iterable[str | os.PathLike[str]], *, recursive: bool = False
) -> tuple[list[Path], list[InputFailure]]:
    """The files to classify, in the order given (a folder's files sorted), and the paths that are not usable.

    Args:
        paths: files and folders.
        recursive: also look into sub-folders of a folder.
    """
    files: list[Path] = []
    failures: list[InputFailure] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in (p.rglob("*") if recursive else p.iterdir()) if f.is_file() and _has_suffix(f))
            if not found:
                hint = "" if recursive else " (sub-folders are searched with --recursive)"
                failures.append(InputFailure(str(p), f"{p}: no {', '.join(INPUT_SUFFIXES)} files in this folder{hint}"))
            files.extend(found)
        elif not p.exists():
            failures.append(InputFailure(str(p), f"{p}: no such file or folder"))
        elif not p.is_file():  # reading a pipe would wait forever
            failures.append(InputFailure(str(p), f"{p}: not a regular file (a pipe, socket or device)"))
        elif not _has_suffix(p):
            failures.append(InputFailure(str(p), f"{p}: not a volume file (expected {', '.join(INPUT_SUFFIXES)})"))
        else:
            files.append(p)
    return files, failures


def _dims(shape: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


def _volumes(array: np.ndarray, name: str, pre: Preprocessing) -> list[tuple[str, np.ndarray]]:
    """Split an array into ``(name, (C, D, H, W) volume)`` pairs and check them against ``pre``."""
    c = pre.channels
    if array.ndim == 3:
        batch = array[None, None]
    elif array.ndim == 4:
        batch = array[:, None] if c == 1 else array[None]
    elif array.ndim == 5:
        batch = array
    else:
        raise PredictError(
            f"{name}: array of shape {array.shape}; expected one volume (D, H, W) / (C, D, H, W) "
            "or a batch (N, D, H, W) / (N, C, D, H, W)"
        )
    if batch.shape[1] != c:
        raise PredictError(f"{name}: volumes have {batch.shape[1]} channel(s) {array.shape}, the model takes {c}")
    if tuple(batch.shape[2:]) != tuple(pre.shape):
        raise PredictError(
            f"{name}: volumes are {_dims(batch.shape[2:])}, the model takes {_dims(pre.shape)} "
            "(resample them, or give the raw NIfTI volumes)"
        )
    if batch.shape[0] == 0:
        raise PredictError(f"{name}: holds no volumes (shape {array.shape})")
    batch = _stored_dtype(batch, name, pre.scaling)
    if batch.shape[0] == 1:
        return [(name, batch[0])]
    return [(f"{name}[{i}]", batch[i]) for i in range(batch.shape[0])]


def _stored_dtype(batch: np.ndarray, name: str, scaling: str) -> np.ndarray:
    """The dtype the training file held: uint8 for ``divide-255``, float32 for ``none``."""
    kind = batch.dtype.kind
    if scaling == "divide-255":
        if batch.dtype == np.uint8:
            return np.ascontiguousarray(batch)
        if kind in "iu":
            if batch.min() < 0 or batch.max() > 255:
                raise PredictError(
                    f"{name}: values {batch.min()}..{batch.max()}; the model was trained on uint8 0-255 volumes"
                )
            return np.ascontiguousarray(batch, dtype=np.uint8)
        raise PredictError(
            f"{name}: dtype {batch.dtype}; the model was trained on uint8 0-255 volumes (divided by 255), "
            "save them as uint8 or give the raw NIfTI volumes"
        )
    if kind not in "iuf":
        raise PredictError(f"{name}: dtype {batch.dtype}; expected numbers")
    out = np.ascontiguousarray(batch, dtype=np.float32)
    if kind == "f" and not np.isfinite(out).all():
        raise PredictError(f"{name}: holds NaN or infinite values")
    return out


def load_input(path: str | os.PathLike[str], pre: Preprocessing) -> list[tuple[str, np.ndarray]]:
    """The volumes of one input file as ``(name, (C, D, H, W))`` pairs, in the dtype training stored.

    Args:
        path: an ``.npy``, ``.npz``, ``.nii`` or ``.nii.gz`` file.
        pre: the bundle's preprocessing.

    Returns:
        One pair per volume: ``name`` is the file, or ``file[i]`` / ``file:key[i]``
        for batches; the array is uint8 (``divide-255``) or float32 (``none``).

    Raises:
        UserError: the file is unreadable, has the wrong shape, channels or dtype,
            or is a NIfTI volume for a bundle without a NIfTI import recipe.
    """
    p = Path(path)
    name = str(p)
    if is_nifti(p):
        recipe = VolumeRecipe.from_source(pre.source, where=f"{name}: the bundle's preprocessing.source")
        if recipe.size != tuple(pre.shape) or recipe.channels != pre.channels or recipe.scaling != pre.scaling:
            raise PredictError(
                f"{name}: the bundle's NIfTI recipe ({_dims(recipe.size)}, {recipe.channels} channel(s), "
                f"{recipe.scaling}) disagrees with its preprocessing ({_dims(pre.shape)}, {pre.channels}, {pre.scaling})"
            )
        return [(name, recipe.load(p))]
    if p.name.lower().endswith(".npy"):
        return _volumes(read_npy(p), name, pre)
    if p.name.lower().endswith(".npz"):
        members = npz_members(p)
        keys = ["test_images"] if "test_images" in members else list(members)
        if not keys:
            raise PredictError(f"{name}: the archive holds no arrays")
        arrays = read_npz(p, keys)
        out: list[tuple[str, np.ndarray]] = []
        for key in keys:
            out.extend(_volumes(arrays[key], f"{name}:{key}", pre))
        return out
    raise PredictError(f"{name}: not a volume file (expected {', '.join(INPUT_SUFFIXES)})")


def probabilities(model, volumes: np.ndarray, scaling: str, device: str) -> np.ndarray:
    """Softmax probabilities ``(N, K)`` (float32) of a batch of stored volumes ``(N, C, D, H, W)``.

    uint8 volumes become float32 / 255 on ``device``, as ``engine.data`` does in training.
    """
    import torch

    x = torch.from_numpy(np.ascontiguousarray(volumes)).to(device)
    x = x.to(torch.float32)
    if scaling == "divide-255":
        x = x.div_(255.0)
    with torch.inference_mode():
        return torch.softmax(model(x).float(), dim=1).cpu().numpy()


def _batches(samples: Iterator[tuple[str, np.ndarray]], size: int) -> Iterator[list[tuple[str, np.ndarray]]]:
    batch: list[tuple[str, np.ndarray]] = []
    for sample in samples:
        batch.append(sample)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict(
    bundle: Bundle,
    inputs: Iterable[str | os.PathLike[str]],
    *,
    device: str = "auto",
    batch_size: int = 32,
    recursive: bool = False,
    on_file: Callable[[str], None] | None = None,
) -> PredictionReport:
    """Classify every volume of ``inputs`` with ``bundle``.

    Args:
        bundle: from ``engine.bundle.read_bundle``.
        inputs: files and folders (see the module docstring).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        batch_size: volumes per forward pass (>= 1).
        recursive: search folders' sub-folders too.
        on_file: called with each file's name before it is read (progress).

    Returns:
        The report; an input that failed is in ``failures`` and nowhere else.

    Raises:
        PredictError: a bad device or batch size.
        BundleError: the bundle's weights cannot be loaded.
    """
    if batch_size < 1:
        raise PredictError(f"batch size {batch_size}: expected at least 1")
    dev = resolve_device(device)
    model = bundle.build_model(dev)
    pre = bundle.preprocessing
    files, failures = find_inputs(inputs, recursive=recursive)

    def samples() -> Iterator[tuple[str, np.ndarray]]:
        for f in files:
            if on_file is not None:
                on_file(str(f))
            try:
                volumes = load_input(f, pre)
            except UserError as exc:
                failures.append(InputFailure(str(f), str(exc)))
                continue
            yield from volumes

    predictions: list[Prediction] = []
    for batch in _batches(samples(), batch_size):
        try:
            probs = probabilities(model, np.stack([v for _, v in batch]), pre.scaling, dev)
        except (RuntimeError, ValueError) as exc:  # the network itself cannot take these inputs
            raise BundleError(f"{bundle.path}: the model cannot run on {_dims(pre.shape)} inputs ({one_line(exc, 160)})") from None
        for (name, _), row in zip(batch, probs):
            predictions.append(Prediction(name, int(np.argmax(row)), tuple(float(p) for p in row)))
    return PredictionReport(str(bundle.path), tuple(pre.class_names), tuple(predictions), tuple(failures))


def check_output(path: str | os.PathLike[str]) -> str:
    """The output format of ``path`` (``.csv`` or ``.json``), checked before any work is done.

    Raises:
        PredictError: another suffix, or a folder that does not exist.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise PredictError(f"{p}: output must end in {' or '.join(OUTPUT_FORMATS)}")
    if not p.parent.is_dir():
        raise PredictError(f"{p}: folder {p.parent} does not exist")
    from .rundir import refuse_run_file

    refuse_run_file(p)
    return suffix


def write_predictions(report: PredictionReport, path: str | os.PathLike[str]) -> None:
    """Write the report as CSV (one row per volume) or JSON (with failures), atomically, by suffix.

    CSV columns: ``input, predicted, predicted_index, p_<class>...``. JSON:
    ``{"bundle", "classes", "predictions": [{"input", "predicted",
    "predicted_index", "probabilities": {class: p}}], "failures": [{"input", "error"}]}``.

    Raises:
        PredictError: as ``check_output``.
        OSError: the file cannot be written.
    """
    p = Path(path)
    suffix = check_output(p)
    labels = report.labels
    if suffix == ".csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["input", "predicted", "predicted_index", *(f"p_{label}" for label in labels)])
        for pr in report.predictions:
            writer.writerow([pr.input, report.label(pr.predicted), pr.predicted, *(f"{q:.6f}" for q in pr.probabilities)])
        text = buf.getvalue()
    else:
        text = json.dumps(
            {
                "bundle": report.bundle,
                "classes": list(labels),
                "predictions": [
                    {
                        "input": pr.input,
                        "predicted": report.label(pr.predicted),
                        "predicted_index": pr.predicted,
                        "probabilities": dict(zip(labels, pr.probabilities)),
                    }
                    for pr in report.predictions
                ],
                "failures": [{"input": f.input, "error": f.message} for f in report.failures],
            },
            indent=1,
        ) + "\n"
    atomic_write_text(p, text)
