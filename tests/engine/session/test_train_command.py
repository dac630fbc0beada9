"""``nas3d-tui train ARCH``: every form of ARCH names the same architecture, and the JSON report is what it says.

The published AdrenalMNIST3D chromosome (``../shared/reference``) is retrained
for three seeds, one epoch each, on a small synthetic file of the MedMNIST
layout so that it fits the suite's time (a real Adrenal epoch of this cell
takes about a minute on two CPU cores; docs/RESULTS.md has those numbers).
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.complexity import count_flops, count_params
from engine.errors import UserError
from engine.model import build_network
from engine.records import CandidateRecord
from engine.space import SearchSpace
from nas3d_tui.commands.train import resolve_arch

REPO = Path(__file__).resolve().parents[3]


def small_dataset(path: Path, side: int = 16) -> Path:
    """A learnable binary task: a bright cube in class-1 volumes."""
    rng = np.random.default_rng(5)
    arrays = {}
    for split, n in (("train", 48), ("val", 16), ("test", 16)):
        y = np.arange(n) % 2
        x = rng.integers(0, 80, (n, side, side, side), dtype=np.uint8)
        x[y == 1, 5:11, 5:11, 5:11] += 120
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = x, y.reshape(n, 1)
    np.savez_compressed(path, **arrays)
    return path


def test_every_form_of_arch_names_the_published_architecture(reference, tmp_path):
    space = SearchSpace()
    chromosome = [float(x) for x in reference["chromosome"]]
    want = space.decode(chromosome)
    genotype_json = tmp_path / "genotype.json"
    genotype_json.write_text(json.dumps(want.to_dict()))
    run = tmp_path / "run"
    (run / "candidates").mkdir(parents=True)
    record = CandidateRecord(candidate_id=7, generation=1, phase="trial", status="ok", key=want.key,
                             genotype=want.to_dict(), vector=chromosome, fitness=0.8, val_acc=0.8, val_auc=0.8)
    (run / "candidates" / "000007.json").write_text(json.dumps(record.to_dict()))
    forms = {
        "commas": ",".join(map(str, chromosome)),
        "spaces": " ".join(map(str, chromosome)),
        "a JSON list": json.dumps(chromosome),
        "the compact form": want.compact,
        "a genotype.json": str(genotype_json),
        "a folder holding genotype.json": str(tmp_path),
        "RUN_DIR:ID": f"{run}:7",
    }
    for name, text in forms.items():
        genotype, run_dir = resolve_arch(text, space)
        assert genotype.key == want.key, name
        assert (run_dir is not None) == (name == "RUN_DIR:ID"), name  # a run's candidate brings its run


@pytest.mark.parametrize("text, fragment", [
    (",".join(["0.5"] * 28), "29"),
    (",".join(["0.5"] * 28 + ["nan"]), "NaN"),
    (",".join(["0.5"] * 28 + ["1.5"]), "[0, 1]"),
    ("S1M1F8 6 01 12 99", ""),
    ("S0M1F8 6 01 12", "n_stacks"),
])
def test_a_malformed_arch_is_one_user_error(text, fragment):
    with pytest.raises(UserError) as info:
        resolve_arch(text, SearchSpace())
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.e2e
def test_train_retrains_the_published_chromosome_over_three_seeds_and_reports_json(reference, tmp_path):
    data = small_dataset(tmp_path / "small.npz")
    out = tmp_path / "train-run"
    chromosome = ",".join(str(x) for x in reference["chromosome"])
    result = subprocess.run(
        [sys.executable, "-m", "nas3d_tui", "train", chromosome, "--path", str(data), "--seeds", "0,1,2",
         "--epochs", "1", "--device", "cpu", "--format", "json", "--out", str(out), "--set", "training.batch_size=16"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])  # the last line is one JSON object

    genotype = SearchSpace().decode(reference["chromosome"])
    net = build_network(genotype, in_channels=1, num_classes=2)
    assert report["params"] == count_params(net) == 18_042  # the published model's size
    assert report["flops"] == count_flops(net, 16)
    seeds = report["seeds"]
    assert [s["seed"] for s in seeds] == [0, 1, 2] and all(s["epochs"] == 1 for s in seeds)
    for metric in ("test_auc", "test_acc"):
        values = [s[metric] for s in seeds]
        assert all(0.0 <= v <= 1.0 for v in values)
        assert report["mean"][metric] == pytest.approx(statistics.fmean(values))
        assert report["std"][metric] == pytest.approx(statistics.pstdev(values)) or \
            report["std"][metric] == pytest.approx(statistics.stdev(values))
    for seed in (0, 1, 2):  # weights and genotype per seed, and the result each was reported from
        folder = out / "final" / f"seed{seed}"
        assert (folder / "weights.safetensors").is_file() and (folder / "genotype.json").is_file()
        saved = json.loads((folder / "result.json").read_text())
        assert saved["test_auc"] == seeds[seed]["test_auc"] and saved["test_acc"] == seeds[seed]["test_acc"]
    assert json.loads((out / "final" / "seed0" / "genotype.json").read_text())["key"] == genotype.key


@pytest.mark.parametrize("arch, fragment", [
    ("S1M1F100000 6 01 12", "at most 4096"),
    ("S9M1F8 6 01 12", "at least 256 voxels"),
    ("bundle of a newer version", "format = 'nas3d-tui/bundle/9'"),
])
def test_an_architecture_that_cannot_train_here_is_one_line_and_leaves_no_run(arch, fragment, tmp_path, capfd):
    from nas3d_tui.cli import main

    if arch == "bundle of a newer version":
        meta = SearchSpace().decode([0.6] * 29).to_dict()
        meta["format"] = "nas3d-tui/bundle/9"
        arch = str(tmp_path / "genotype.json")
        Path(arch).write_text(json.dumps(meta))
    out = tmp_path / "run"
    code = main(["train", arch, "--epochs", "1", "--device", "cpu", "--out", str(out)])
    err = capfd.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
