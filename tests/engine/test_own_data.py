"""Searching on one's own volumes and using what was found, end to end on the CPU.

* NIfTI volumes -> ``data import`` -> a tiny search on the file -> the final
  retraining's bundle -> ``predict`` on the held-back *raw* volumes gives the
  bundle's own test metrics.
* A multi-channel, non-cubic, three-class file searches with one and two
  stacks and leaves bundles that know its shape, channels and classes.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine import metrics
from engine.bundle import read_bundle
from engine.nifti.folder_import import import_nifti_folder
from engine.predict.inference import predict
from engine.profile import load_profile
from engine.rundir import RunDir
from engine.session import Session
from nifti_files import write_nifti_folder
from tiny_search import TINY

pytestmark = pytest.mark.e2e  # both tests search, retrain and predict on own data

SEARCH = [*TINY, "data.search_fraction=1.0", "search.budget=3", "final.top_k=1", "final.epochs=2",
          "final.seeds=[0]", "training.batch_size=8"]


def _finalist(run_dir: Path) -> Path:
    bundles = sorted(p.parent for p in run_dir.glob("final/*/genotype.json"))
    assert len(bundles) == 1, bundles
    return bundles[0]


def test_nifti_import_search_final_and_predict_reproduce_the_test_metrics(tmp_path):
    folder, labels = write_nifti_folder(tmp_path, per_class=12, seed=3)
    data = tmp_path / "own.npz"
    import_nifti_folder(folder, labels, data, size=12, seed=0)
    run_dir = tmp_path / "run"
    profile = load_profile("quick", [*SEARCH, f"data.path='{data}'"])
    assert Session(profile, run_dir).run().state == "finished"

    bundle_dir = _finalist(run_dir)
    result = json.loads((bundle_dir / "result.json").read_text())
    bundle = read_bundle(bundle_dir)
    assert bundle.preprocessing.shape == (12, 12, 12) and bundle.preprocessing.class_names == ("blob", "none")
    assert bundle.preprocessing.source.get("format", "").startswith("nas3d-tui/nifti-import")

    with np.load(data, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        labels_test = npz["test_labels"].reshape(-1)
    held_back = [folder / name for name in meta["files"]["test"]]
    report = predict(bundle, held_back, device="cpu")
    assert not report.failures
    scores = np.array([p.probabilities for p in report.predictions])
    assert metrics.accuracy(labels_test, scores, "binary-class") == result["test_acc"]
    assert metrics.auc(labels_test, scores, "binary-class") == pytest.approx(result["test_auc"], abs=1e-12)


def _multichannel_file(path: Path) -> Path:
    rng = np.random.default_rng(1)
    arrays = {}
    for split, n in (("train", 24), ("val", 9), ("test", 9)):
        y = np.arange(n) % 3
        x = rng.random((n, 2, 10, 12, 14), dtype=np.float32)
        x[:, 1] += y[:, None, None, None] * 0.5  # the second channel tells the classes apart
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = x, y
    np.savez_compressed(path, **arrays)
    return path


def test_a_multichannel_non_cubic_three_class_file_searches_and_leaves_a_fitting_bundle(tmp_path):
    data = _multichannel_file(tmp_path / "mc.npz")
    run_dir = tmp_path / "run"
    profile = load_profile("quick", [*SEARCH, f"data.path='{data}'", "space.stacks=[1, 2]"])
    assert profile.num_classes is None  # known once the file is read
    assert Session(profile, run_dir).run().state == "finished"
    records = RunDir(run_dir).read_records()
    assert sum(r.spent_budget for r in records.values()) == 3
    bundle = read_bundle(_finalist(run_dir))
    pre = bundle.preprocessing
    assert (pre.shape, pre.channels, pre.scaling, pre.task, bundle.num_classes) == (
        (10, 12, 14), 2, "none", "multi-class", 3)
    report = predict(bundle, [data], device="cpu")  # an .npz input: its test_images
    assert len(report.predictions) == 9 and all(len(p.probabilities) == 3 for p in report.predictions)
