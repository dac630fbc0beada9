"""Inference: a bundle's network on batches of decoded volumes, softmax probabilities per volume."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np

from ..bundle import Bundle, BundleError
from ..errors import UserError, one_line
from . import PredictError
from .decode import dims, load_input
from .inputs import find_inputs
from .report import InputFailure, Prediction, PredictionReport

if TYPE_CHECKING:
    import torch

__all__ = ["resolve_device", "probabilities", "predict"]


def resolve_device(device: str) -> str:
    """``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` as a torch device string (``engine.training.resolve_device``).

    Raises:
        PredictError: an unknown name, or CUDA asked for where there is none.
    """
    from ..errors import SessionError
    from ..training.device import resolve_device as resolve

    try:
        return resolve(device, "--device")
    except SessionError as exc:
        raise PredictError(str(exc)) from None


def probabilities(model: "torch.nn.Module", volumes: np.ndarray, scaling: str, device: str) -> np.ndarray:
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
            raise BundleError(f"{bundle.path}: the model cannot run on {dims(pre.shape)} inputs ({one_line(exc, 160)})") from None
        for (name, _), row in zip(batch, probs):
            predictions.append(Prediction(name, int(np.argmax(row)), tuple(float(p) for p in row)))
    return PredictionReport(str(bundle.path), tuple(pre.class_names), tuple(predictions), tuple(failures))
