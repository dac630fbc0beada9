"""ONNX export: onnxruntime gives torch's probabilities, with a dynamic batch; a missing package is one line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.bundle import Preprocessing, read_bundle, write_bundle
from engine.errors import UserError
from engine.model import build_network
from engine.space import Genotype

CELL = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]  # two branches: conv5·IN·Mish and IN·Mish·conv3


def make_bundle(folder: Path, stacks: int, pre: Preprocessing, num_classes: int) -> Path:
    g = Genotype.from_cell(CELL, [4, 6], n_stacks=stacks, n_modules=1, n_filters=8)
    torch.manual_seed(stacks)
    net = build_network(g, in_channels=pre.channels, num_classes=num_classes)
    write_bundle(folder, g, net.state_dict(), pre, num_classes=num_classes, dataset="synthetic", seed=0, metrics={})
    return folder


def run_command(argv: list[str]) -> tuple[int, str]:
    from nas3d_tui.commands import export_model as command

    parser = argparse.ArgumentParser(prog="nas3d-tui")
    command.add_arguments(parser)
    try:
        return command.main(parser.parse_args(argv)), ""
    except UserError as exc:
        return 2, f"nas3d-tui: error: {exc}"


CASES = {
    "1 stack, 1 channel, uint8 inputs": (1, Preprocessing((8, 8, 8), 1, "divide-255", ("a", "b"), "binary-class"), 2),
    "2 stacks, 2 channels, non-cubic float inputs": (2, Preprocessing((6, 8, 10), 2, "none", (), "multi-class"), 3),
}


@pytest.mark.e2e
@pytest.mark.parametrize("case", sorted(CASES))
def test_onnxruntime_matches_torch_probabilities(tmp_path, case, capsys):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    stacks, pre, k = CASES[case]
    bundle_dir = make_bundle(tmp_path / "bundle", stacks, pre, k)
    out = tmp_path / "model.onnx"
    assert run_command([str(bundle_dir), "--format", "onnx", "-o", str(out)]) == (0, "")
    printed = capsys.readouterr()
    assert "opset 18" in printed.out and "checked with onnxruntime" in printed.err

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "input" and inp.shape[1:] == [pre.channels, *pre.shape] and isinstance(inp.shape[0], str)
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["nas3d_tui.preprocessing"]) == pre.to_dict()

    model = read_bundle(bundle_dir).build_model("cpu")
    rng = np.random.default_rng(0)
    for n in (1, 4):  # batch sizes other than the traced one
        if pre.scaling == "divide-255":
            x = rng.integers(0, 256, (n, pre.channels, *pre.shape)).astype(np.float32) / np.float32(255)
        else:
            x = rng.standard_normal((n, pre.channels, *pre.shape)).astype(np.float32)
        got = session.run(["probabilities"], {"input": x})[0]
        with torch.no_grad():
            expected = torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()
        assert got.shape == (n, k)
        assert np.abs(got - expected).max() < 1e-4
        assert np.allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_missing_onnx_package_is_one_line(tmp_path, monkeypatch):
    bundle_dir = make_bundle(tmp_path / "bundle", 1, Preprocessing((8, 8, 8)), 2)
    monkeypatch.setitem(sys.modules, "onnx", None)  # importing it now raises ImportError
    code, error = run_command([str(bundle_dir), "--format", "onnx", "-o", str(tmp_path / "m.onnx")])
    assert code == 2 and "\n" not in error
    assert error == "nas3d-tui: error: ONNX export needs the package 'onnx': pip install 'nas3d-tui[onnx]'"
    assert not (tmp_path / "m.onnx").exists()


def test_export_refuses_a_missing_folder_and_a_non_bundle(tmp_path):
    code, error = run_command([str(tmp_path), "-o", str(tmp_path / "m.onnx")])
    assert code == 2 and "not a model bundle" in error
    code, error = run_command([str(tmp_path), "-o", str(tmp_path / "no" / "m.onnx")])
    assert code == 2 and "does not exist" in error
