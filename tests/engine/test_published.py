"""The published models ship with the tool: ``nas3d-tui models``, ``train published:NAME``, ``predict published:NAME``.

The shipped AdrenalMNIST3D bundle holds exactly the paper's published
weights (in this project's layout) and reproduces the published test metrics
through ``predict``, with nothing from outside the repository.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.metrics import roc_auc_score

from engine.model import build_network, load_reference_weights
from engine.space import SearchSpace
from nas3d_tui.published import published_models, resolve

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "reference"
BUNDLED = REPO / "nas3d_tui" / "data" / "adrenalmnist3d.npz"


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas3d_tui", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.e2e
def test_models_lists_the_shipped_published_model():
    names = [m.name for m in published_models()]
    assert "adrenalmnist3d" in names
    out = cli("models")
    assert out.returncode == 0, out.stderr
    assert "published:adrenalmnist3d" in out.stdout and "S1M1F8 4,9,10 01 02 13 24 34" in out.stdout
    assert "18,042 params" in out.stdout and "test AUC 0.8838" in out.stdout


def test_the_shipped_bundle_holds_the_published_weights():
    source = json.loads((FIXTURE / "adrenalmnist3d_model90.json").read_text())
    genotype = SearchSpace().decode(source["chromosome"])
    net = build_network(genotype, in_channels=1, num_classes=2)
    load_reference_weights(net, torch.load(FIXTURE / "adrenalmnist3d_model90_weights.pt", map_location="cpu", weights_only=True))
    shipped = load_file(str(Path(resolve("published:adrenalmnist3d")) / "weights.safetensors"))
    own = net.state_dict()
    assert shipped.keys() == own.keys()
    assert all(torch.equal(shipped[k], own[k]) for k in own)
    chromosome = json.loads((Path(resolve("published:adrenalmnist3d")) / "chromosome.json").read_text())
    assert chromosome["chromosome"] == source["chromosome"]


@pytest.mark.e2e
def test_predict_with_the_published_model_reproduces_the_published_test_metrics(tmp_path):
    out = tmp_path / "pred.json"
    result = cli("predict", "published:adrenalmnist3d", str(BUNDLED), "-o", str(out))
    assert result.returncode == 0, result.stderr
    preds = json.loads(out.read_text())["predictions"]
    with np.load(BUNDLED) as f:
        y = f["test_labels"].reshape(-1)
    p1 = np.array([p["probabilities"]["hyperplasia"] for p in preds])
    assert len(preds) == len(y) == 298
    assert round(roc_auc_score(y, p1), 4) == 0.8838
    assert round(float(np.mean((p1 >= 0.5).astype(int) == y)), 4) == 0.8423


@pytest.mark.e2e
def test_train_takes_a_published_name(tmp_path):
    # a tiny own dataset keeps the retraining to seconds; the architecture is the published one
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 24), ("val", 8), ("test", 8)):
        labels = np.arange(n) % 2
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 8, 8, 8), dtype=np.uint8)
        arrays[f"{split}_labels"] = labels.reshape(n, 1)
    data = tmp_path / "own.npz"
    np.savez_compressed(data, **arrays)
    result = cli("train", "published:adrenalmnist3d", "--path", str(data), "--epochs", "1", "--seeds", "0",
                 "--device", "cpu", "--format", "json", "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["params"] == 18042 and len(summary["seeds"]) == 1  # the published cell
    unknown = cli("train", "published:nope", "--path", str(data))
    assert unknown.returncode == 2 and "no published model 'nope'" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
