"""ONNX export of a model bundle: the found network as a portable graph that outputs probabilities.

This module owns the exported graph's contract:

* input ``input``: float32 ``N x C x D x H x W``, already preprocessed as in
  training (uint8 volumes divided by 255 for ``divide-255`` bundles), with a
  dynamic batch axis ``N``;
* output ``probabilities``: float32 ``N x K``, the softmax of the logits;
* opset ``OPSET`` (18), written with torch's ``torch.export``-based exporter;
* metadata properties ``nas3d_tui.preprocessing`` (the bundle's preprocessing
  as JSON), ``nas3d_tui.class_names``, ``nas3d_tui.genotype``,
  ``nas3d_tui.output``.

Before the file is written the graph is run with onnxruntime (when installed)
on a few random volumes and compared with torch; the file is written
atomically. The packages (onnx, onnxscript, onnxruntime) are the optional
extra ``nas3d-tui[onnx]``; a missing one is an ``OnnxExportError`` naming it.

It must not print or know about runs, data files or the search.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import types
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bundle import Bundle
from .errors import UserError, one_line
from .atomic import atomic_write

__all__ = [
    "OPSET",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "CHECK_TOLERANCE",
    "INSTALL_HINT",
    "OnnxExportError",
    "OnnxExport",
    "export_onnx",
    "onnx_probabilities",
]

OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
CHECK_TOLERANCE = 1e-4
INSTALL_HINT = "pip install 'nas3d-tui[onnx]'"


class OnnxExportError(UserError):
    """The bundle cannot be exported to ONNX (a missing package, a graph that disagrees with torch)."""


@dataclass(frozen=True)
class OnnxExport:
    """What ``export_onnx`` wrote.

    Attributes:
        path: the ``.onnx`` file.
        opset: the ONNX opset.
        input_shape: ``("N", C, D, H, W)``.
        num_classes: K, the width of ``probabilities``.
        max_abs_diff: largest |onnxruntime - torch| probability difference on
            the check volumes, or None when onnxruntime is not installed.
    """

    path: Path
    opset: int
    input_shape: tuple[str | int, ...]
    num_classes: int
    max_abs_diff: float | None


def _require(module: str) -> types.ModuleType:
    try:
        return __import__(module)
    except ImportError:
        raise OnnxExportError(f"ONNX export needs the package {module!r}: {INSTALL_HINT}") from None


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def onnx_probabilities(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """Run an exported graph with onnxruntime (CPU) on ``x`` (``N x C x D x H x W`` float32).

    Raises:
        OnnxExportError: onnxruntime is not installed.
    """
    ort = _require("onnxruntime")
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    probabilities: np.ndarray = session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]
    return probabilities


def _check_input(bundle: Bundle, n: int, seed: int) -> np.ndarray:
    """Random preprocessed volumes of the bundle's shape: [0, 1] for divide-255, N(0, 1) otherwise."""
    pre = bundle.preprocessing
    rng = np.random.default_rng(seed)
    shape = (n, pre.channels, *pre.shape)
    if pre.scaling == "divide-255":
        return (rng.integers(0, 256, shape).astype(np.float32) / np.float32(255.0)).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def export_onnx(
    bundle: Bundle,
    out: str | os.PathLike[str],
    *,
    opset: int = OPSET,
    check: bool = True,
    check_volumes: int = 3,
) -> OnnxExport:
    """Export ``bundle`` to an ONNX file that outputs softmax probabilities.

    Args:
        bundle: from ``engine.bundle.read_bundle``.
        out: the ``.onnx`` file to write (its folder must exist).
        opset: ONNX opset (18 by default; Mish is a native operator from 18 on).
        check: compare onnxruntime with torch on ``check_volumes`` random volumes
            (a batch size other than the traced one, so the dynamic axis is
            exercised) before writing; skipped when onnxruntime is not installed.

    Returns:
        The ``OnnxExport``.

    Raises:
        OnnxExportError: onnx / onnxscript missing, the exporter failed, or the
            check found a difference above ``CHECK_TOLERANCE``.
        BundleError: the bundle's weights cannot be loaded.
        OSError: the file cannot be written.
    """
    import torch

    onnx = _require("onnx")
    _require("onnxscript")
    target = Path(out)
    net = bundle.build_model("cpu")
    model = torch.nn.Sequential(net, torch.nn.Softmax(dim=1)).eval()
    pre = bundle.preprocessing
    example = torch.from_numpy(_check_input(bundle, 2, seed=0))  # batch 2: a batch of 1 would be specialised
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            logging.getLogger("torch.onnx").setLevel(logging.ERROR)
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                verbose=False,
            )
        if program is None:
            raise RuntimeError("the exporter returned no program")
        proto = program.model_proto
    except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds; the user needs one line
        raise OnnxExportError(f"{bundle.path}: ONNX export failed ({one_line(exc, 200)})") from None
    meta = {
        "nas3d_tui.preprocessing": json.dumps(pre.to_dict()),
        "nas3d_tui.class_names": json.dumps(list(pre.class_names)),
        "nas3d_tui.genotype": bundle.genotype.compact,
        "nas3d_tui.output": "softmax probabilities, N x K",
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    dims = "x".join(map(str, pre.shape))
    proto.doc_string = f"nas3d-tui model {bundle.genotype.compact}: input {INPUT_NAME} N x {pre.channels} x {dims}"
    data = proto.SerializeToString()
    try:
        onnx.checker.check_model(onnx.load_from_string(data))
    except Exception as exc:  # noqa: BLE001 - onnx's checker raises its own error classes
        raise OnnxExportError(f"{bundle.path}: the exported graph is not valid ONNX ({one_line(exc, 200)})") from None

    diff: float | None = None
    if check and _installed("onnxruntime"):
        x = _check_input(bundle, check_volumes, seed=1)
        with torch.inference_mode():
            expected = model(torch.from_numpy(x)).numpy()
        got = onnx_probabilities(data, x)
        diff = float(np.abs(got - expected).max())
        if not diff <= CHECK_TOLERANCE:
            raise OnnxExportError(
                f"{bundle.path}: the exported graph's probabilities differ from torch by {diff:.2e} "
                f"(tolerance {CHECK_TOLERANCE:g}); nothing was written"
            )
    atomic_write(target, lambda fh: fh.write(data))
    return OnnxExport(target, opset, ("N", pre.channels, *pre.shape), bundle.num_classes, diff)
