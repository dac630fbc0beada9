"""Predicting with a model bundle: raw NIfTI volumes give exactly what the imported file gave, and bad inputs one line each."""
from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.bundle import Preprocessing, read_bundle, write_bundle
from engine.complexity import count_flops
from engine.datafile import read_datafile
from engine.errors import UserError
from engine.model import build_network
from engine.predict import PredictError
from engine.predict.decode import load_input
from engine.predict.inference import predict, resolve_device
from engine.space import Genotype

nib = pytest.importorskip("nibabel")
from nifti_files import save_nifti, write_nifti_folder  # noqa: E402  (tests/ is on sys.path)
from fvcore_flops import flops_by_operator  # noqa: E402

from engine.nifti.folder_import import import_nifti_folder  # noqa: E402

CHAIN = [[0, 1, 0], [0, 0, 1], [0, 0, 0]]  # input -> conv3 -> output


def genotype(stacks: int = 1, filters: int = 8) -> Genotype:
    return Genotype.from_cell(CHAIN, [0], n_stacks=stacks, n_modules=1, n_filters=filters)


def fresh_bundle(folder: Path, pre: Preprocessing, num_classes: int = 2, stacks: int = 1, seed: int = 0) -> Path:
    """A bundle of a freshly initialised network (what matters here is the plumbing, not accuracy)."""
    torch.manual_seed(seed)
    net = build_network(genotype(stacks), in_channels=pre.channels, num_classes=num_classes)
    write_bundle(folder, genotype(stacks), net.state_dict(), pre, num_classes=num_classes, dataset="synthetic",
                 seed=seed, metrics={})
    return folder


def reference_probabilities(bundle_dir: Path, images: np.ndarray, scaling: str) -> np.ndarray:
    """What the model gives on stored rows, written out in plain torch (as engine.data feeds training)."""
    model = read_bundle(bundle_dir).build_model("cpu")
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32)
    if scaling == "divide-255":
        x = x.div_(255.0)
    with torch.no_grad():
        return torch.softmax(model(x), dim=1).numpy()


# -- end to end: import, train, bundle, predict on raw volumes ---------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("own-data")
    folder, labels = write_nifti_folder(root, per_class=10, seed=7)
    npz = root / "own.npz"
    import_nifti_folder(folder, labels, npz, size=12, seed=0)
    data = read_datafile(npz, min_size=1)
    torch.manual_seed(0)
    g = genotype()
    net = build_network(g, in_channels=data.channels, num_classes=data.num_classes)
    train = data.splits["train"]
    x = torch.from_numpy(train.images).to(torch.float32).div_(255.0)
    y = torch.from_numpy(train.labels)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    net.train()
    for _ in range(20):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    pre = Preprocessing(data.shape, data.channels, data.scaling, data.class_names, data.task, data.source)
    bundle = root / "final" / "0-seed0"
    write_bundle(bundle, g, net.state_dict(), pre, num_classes=data.num_classes, dataset=str(npz), seed=0,
                 metrics={"train_loss": losses[-1]})
    files = json.loads(str(np.load(npz)["meta"]))["files"]
    return SimpleNamespace(root=root, folder=folder, npz=npz, data=data, bundle=bundle, files=files, losses=losses)


@pytest.mark.e2e
def test_raw_nifti_volumes_get_exactly_the_probabilities_of_the_imported_rows(trained):
    assert trained.losses[-1] < trained.losses[0]
    test = trained.data.splits["test"]
    raw = [trained.folder / f for f in trained.files["test"]]
    assert len(raw) == len(test) == 4
    bundle = read_bundle(trained.bundle)
    for path, row in zip(raw, test.images):
        ((name, volume),) = load_input(path, bundle.preprocessing)
        assert name == str(path) and volume.dtype == np.uint8
        assert np.array_equal(volume, row)  # the same preprocessing, byte for byte
    report = predict(bundle, raw, device="cpu", batch_size=64)
    assert report.failures == ()
    assert [p.input for p in report.predictions] == [str(p) for p in raw]
    got = np.array([p.probabilities for p in report.predictions], dtype=np.float32)
    expected = reference_probabilities(trained.bundle, test.images, "divide-255")
    assert np.array_equal(got, expected)
    assert np.allclose(got.sum(axis=1), 1.0, atol=1e-6)
    assert [p.predicted for p in report.predictions] == list(expected.argmax(axis=1))
    assert report.labels == ("blob", "none")
    # the classes differ visibly (a bright ball or none): the small model has learnt it
    assert [p.predicted for p in report.predictions] == list(test.labels)


@pytest.mark.e2e
def test_the_imported_file_itself_predicts_its_test_rows(trained):
    report = predict(read_bundle(trained.bundle), [trained.npz], device="cpu", batch_size=3)
    assert [p.input for p in report.predictions] == [f"{trained.npz}:test_images[{i}]" for i in range(4)]
    expected = reference_probabilities(trained.bundle, trained.data.splits["test"].images, "divide-255")
    assert np.allclose([p.probabilities for p in report.predictions], expected, atol=1e-6)


# -- inputs: what each file form means, and one line for each bad one --------------------------


@pytest.fixture()
def small(tmp_path) -> SimpleNamespace:
    pre = Preprocessing((6, 6, 5), 1, "divide-255", ("healthy", "sick"), "binary-class")
    return SimpleNamespace(tmp=tmp_path, pre=pre, bundle=fresh_bundle(tmp_path / "bundle", pre))


def _save(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


def test_npy_npz_and_folder_inputs(small):
    rng = np.random.default_rng(0)
    vols = rng.integers(0, 256, (5, 6, 6, 5), dtype=np.uint8)
    d = small.tmp / "in"
    (d / "deeper").mkdir(parents=True)
    one = _save(d / "one.npy", vols[0])
    batch = _save(d / "batch.npy", vols[1:4])
    np.savez(d / "set.npz", test_images=vols[:2], train_images=vols)
    np.savez(d / "plain.npz", a=vols[4], b=vols[2:4, None])
    _save(d / "deeper" / "hidden.npy", vols[4])
    (d / "notes.txt").write_text("not a volume")
    bundle = read_bundle(small.bundle)

    report = predict(bundle, [d], device="cpu", batch_size=2)
    names = [p.input for p in report.predictions]
    assert names == [f"{batch}[0]", f"{batch}[1]", f"{batch}[2]", str(one), f"{d / 'plain.npz'}:a",
                     f"{d / 'plain.npz'}:b[0]", f"{d / 'plain.npz'}:b[1]", f"{d / 'set.npz'}:test_images[0]",
                     f"{d / 'set.npz'}:test_images[1]"]
    order = [1, 2, 3, 0, 4, 2, 3, 0, 1]
    expected = reference_probabilities(small.bundle, vols[order][:, None], "divide-255")
    assert np.allclose([p.probabilities for p in report.predictions], expected, atol=1e-6)
    assert report.failures == ()
    deep = predict(bundle, [d], device="cpu", recursive=True)
    assert str(d / "deeper" / "hidden.npy") in [p.input for p in deep.predictions]


BAD_INPUTS = {
    "missing": (lambda d: d / "ghost.npy", r"ghost\.npy: no such file or folder"),
    "not a volume file": (lambda d: (d / "a.txt").write_text("x") and d / "a.txt", r"a\.txt: not a volume file"),
    "empty folder": (lambda d: (d / "empty").mkdir() or d / "empty", r"empty: no \.npy, \.npz, \.nii, \.nii\.gz files"),
    "wrong shape": (lambda d: _save(d / "s.npy", np.zeros((6, 6, 6), np.uint8)),
                    r"s\.npy: volumes are 6x6x6, the model takes 6x6x5"),
    "wrong channels": (lambda d: _save(d / "c.npy", np.zeros((2, 3, 6, 6, 5), np.uint8)),
                       r"c\.npy: volumes have 3 channel\(s\) .* the model takes 1"),
    "float for a uint8 model": (lambda d: _save(d / "f.npy", np.zeros((6, 6, 5), np.float32)),
                                r"f\.npy: dtype float32; the model was trained on uint8 0-255 volumes"),
    "integers beyond 255": (lambda d: _save(d / "i.npy", np.full((6, 6, 5), 300, np.int16)), r"i\.npy: values 300\.\.300"),
    "six dimensions": (lambda d: _save(d / "x.npy", np.zeros((1, 1, 1, 6, 6, 5), np.uint8)), r"x\.npy: array of shape"),
    "damaged npy": (lambda d: (d / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00garbage") and d / "bad.npy",
                    r"bad\.npy: damaged \.npy file"),
    "npz that is not a zip": (lambda d: (d / "bad.npz").write_text("hello") and d / "bad.npz", r"bad\.npz: not an npz"),
    "nifti for a model trained on MedMNIST": (
        lambda d: save_nifti(d / "v.nii.gz", np.zeros((6, 6, 5), np.float32)), r"v\.nii\.gz: .*holds no NIfTI import recipe"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_the_others_are_still_classified(small, case):
    make, pattern = BAD_INPUTS[case]
    d = small.tmp / "in"
    d.mkdir()
    bad = make(d)
    good = _save(small.tmp / "good.npy", np.zeros((6, 6, 5), np.uint8))
    report = predict(read_bundle(small.bundle), [bad, good], device="cpu")
    assert [p.input for p in report.predictions] == [str(good)]
    (failure,) = report.failures
    assert failure.input == str(bad) and "\n" not in failure.message
    assert re.search(pattern, failure.message), failure.message


def test_multichannel_and_float_bundles(tmp_path):
    pre = Preprocessing((4, 6, 8), 2, "none", (), "multi-class")
    bundle_dir = fresh_bundle(tmp_path / "b", pre, num_classes=3, stacks=2)
    rng = np.random.default_rng(1)
    vols = rng.standard_normal((3, 2, 4, 6, 8))  # float64 is used as float32
    one = _save(tmp_path / "one.npy", vols[0])  # 4-D with a 2-channel model: one (C, D, H, W) volume
    many = _save(tmp_path / "many.npy", vols)
    nan = vols[0].copy()
    nan[0, 0, 0, 0] = np.nan
    bad = _save(tmp_path / "nan.npy", nan)
    single = _save(tmp_path / "single.npy", vols[0, 0])
    report = predict(read_bundle(bundle_dir), [one, many, bad, single], device="cpu")
    assert [p.input for p in report.predictions] == [str(one)] + [f"{many}[{i}]" for i in range(3)]
    expected = reference_probabilities(bundle_dir, vols[[0, 0, 1, 2]].astype(np.float32), "none")
    assert np.allclose([p.probabilities for p in report.predictions], expected, atol=1e-6)
    assert report.labels == ("0", "1", "2")
    messages = [f.message for f in report.failures]
    assert "NaN or infinite" in messages[0] and "volumes have 1 channel(s)" in messages[1]


def test_legacy_bundle_with_weights_pt(tmp_path):
    g = genotype()
    torch.manual_seed(3)
    net = build_network(g, in_channels=1, num_classes=2)
    folder = tmp_path / "old"
    folder.mkdir()
    torch.save(net.state_dict(), folder / "weights.pt")
    (folder / "genotype.json").write_text(json.dumps({**g.to_dict(), "size": 8, "in_channels": 1, "num_classes": 2}))
    vol = np.random.default_rng(0).integers(0, 256, (8, 8, 8), dtype=np.uint8)
    report = predict(read_bundle(folder), [_save(tmp_path / "v.npy", vol)], device="cpu")
    with torch.no_grad():
        expected = torch.softmax(net.eval()(torch.from_numpy(vol)[None, None].float() / 255), 1).numpy()
    assert np.allclose(report.predictions[0].probabilities, expected[0], atol=1e-6)


def test_devices():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda:0" if torch.cuda.is_available() else "cpu")
    with pytest.raises(PredictError, match="use auto, cpu, cuda or cuda:N"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(PredictError, match="CUDA is not available"):
            resolve_device("cuda:0")


# -- the command ------------------------------------------------------------------------------


def run_command(argv: list[str]) -> tuple[int, str]:
    from nas3d_tui.commands import predict as command

    parser = argparse.ArgumentParser(prog="nas3d-tui")
    command.add_arguments(parser)
    try:
        return command.main(parser.parse_args(argv)), ""
    except UserError as exc:
        return 2, f"nas3d-tui: error: {exc}"


def test_predict_command_table_csv_json_and_exit_codes(small, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # rich folds long paths at 80 columns when not on a terminal
    rng = np.random.default_rng(2)
    good = _save(small.tmp / "good.npy", rng.integers(0, 256, (2, 6, 6, 5), dtype=np.uint8))
    bad = _save(small.tmp / "bad.npy", np.zeros((7, 7, 7), np.uint8))

    assert run_command([str(small.bundle), str(good), "--device", "cpu"]) == (0, "")
    out = capsys.readouterr()
    assert f"{good}[1]" in out.out and "p(sick)" in out.out and out.err == ""

    code, error = run_command([str(small.bundle), str(good), str(bad), "--device", "cpu", "-o", str(small.tmp / "p.csv")])
    assert (code, error) == (2, "")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"nas3d-tui: error: {bad}: volumes are 7x7x7, the model takes 6x6x5 (resample them, or give the raw NIfTI volumes)"
    rows = list(csv.DictReader((small.tmp / "p.csv").open()))
    assert [r["input"] for r in rows] == [f"{good}[0]", f"{good}[1]"]
    assert set(rows[0]) == {"input", "predicted", "predicted_index", "p_healthy", "p_sick"}
    assert abs(float(rows[0]["p_healthy"]) + float(rows[0]["p_sick"]) - 1) < 1e-5
    assert rows[0]["predicted"] == ("healthy", "sick")[int(rows[0]["predicted_index"])]

    code, _ = run_command([str(small.bundle), str(good), str(bad), "--device", "cpu", "-o", str(small.tmp / "p.json")])
    doc = json.loads((small.tmp / "p.json").read_text())
    assert code == 2 and doc["classes"] == ["healthy", "sick"] and len(doc["predictions"]) == 2
    assert doc["failures"] == [{"input": str(bad), "error": err[0].removeprefix("nas3d-tui: error: ")}]
    assert [p["input"] for p in doc["predictions"]] == [r["input"] for r in rows]

    code, error = run_command([str(small.bundle), str(good), "-o", str(small.tmp / "p.txt")])
    assert code == 2 and error.endswith("p.txt: output must end in .csv or .json")
    code, error = run_command([str(small.bundle), str(good), "--device", "tpu"])
    assert code == 2 and "use auto, cpu, cuda or cuda:N" in error
    code, error = run_command([str(small.tmp / "nothing"), str(good)])
    assert code == 2 and "no bundle folder here" in error


# -- complexity of non-cubic, multi-channel inputs -----------------------------------------------


def test_flops_of_non_cubic_and_multichannel_inputs():
    g = genotype(stacks=1, filters=8)
    one = build_network(g, in_channels=1, num_classes=2)
    three = build_network(g, in_channels=3, num_classes=2)
    cube, box = 8, (8, 12, 6)
    voxels = 8 * 12 * 6
    # a one-stack network convolves at full resolution only: conv FLOPs scale with the voxel count
    assert flops_by_operator(one, box)["conv"] * cube**3 == flops_by_operator(one, cube)["conv"] * voxels
    assert count_flops(one, (cube, cube, cube)) == count_flops(one, cube)
    # the stem sees C input channels: 27 * C * n_f multiply-adds per voxel
    assert count_flops(three, box) - count_flops(one, box) == 27 * 2 * 8 * voxels
    assert count_flops(three, box, in_channels=3) == count_flops(three, box)
    with pytest.raises(ValueError, match="input_size"):
        count_flops(one, (8, 8))


# -- damaged bundles: one line each, before any memory is spent on them ----------------------------


def _edit_meta(change):
    def hurt(bundle: Path) -> None:
        path = bundle / "genotype.json"
        meta = json.loads(path.read_text())
        change(meta)
        meta.pop("key", None)  # as a hand edit would leave it: no stored key to contradict the cell
        path.write_text(json.dumps(meta))

    return hurt


def _nan_weights(bundle: Path) -> None:
    from safetensors.torch import load_file, save_file

    weights = load_file(str(bundle / "weights.safetensors"))
    name = sorted(weights)[0]
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, str(bundle / "weights.safetensors"))


BAD_BUNDLES = {
    "weights hold NaN": (_nan_weights, "NaN or infinite"),
    "a format from a newer version": (_edit_meta(lambda m: m.update(format="nas3d-tui/bundle/9")), "format"),
    "a shape of booleans": (_edit_meta(lambda m: m["preprocessing"].update(shape=[True, True, True])), "shape"),
    "filters edited to a million": (_edit_meta(lambda m: m.update(n_filters=1_000_000)), "do not fit the genotype"),
    "stacks edited to 40": (_edit_meta(lambda m: m.update(n_stacks=40)), "too small for 40 stacks"),
    "inputs of one voxel": (_edit_meta(lambda m: m["preprocessing"].update(shape=[1, 1, 1])), "cannot run on 1x1x1"),
}


@pytest.mark.parametrize("case", sorted(BAD_BUNDLES))
def test_a_damaged_bundle_is_one_line(small, case, capsys):
    hurt, fragment = BAD_BUNDLES[case]
    hurt(small.bundle)
    shape = json.loads((small.bundle / "genotype.json").read_text())["preprocessing"]["shape"]
    side = [s if isinstance(s, int) and not isinstance(s, bool) else 1 for s in shape]
    volume = _save(small.tmp / "one.npy", np.zeros(side, np.uint8))
    code, error = run_command([str(small.bundle), str(volume), "--device", "cpu"])
    assert code == 2 and fragment in error and "\n" not in error, error
