"""Dataset files in MedMNIST's npz layout: what reads, and one clear line for everything that does not."""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.datafile import DataFileError, min_size_for_stacks, read_datafile, write_datafile
from engine.errors import UserError

REPO = Path(__file__).resolve().parents[2]


def arrays(n=(8, 3, 4), shape=(8, 8, 8), channels=None, classes=2, dtype=np.uint8, seed=0) -> dict:
    """A valid dataset's arrays: every class in every split, labels (N, 1) as MedMNIST stores them."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, count in zip(("train", "val", "test"), n):
        lead = (count,) if channels is None else (count, channels)
        if dtype == np.uint8:
            images = rng.integers(0, 256, lead + shape, dtype=np.uint8)
        else:
            images = rng.random(lead + shape).astype(dtype)
        out[f"{split}_images"] = images
        out[f"{split}_labels"] = (np.arange(count) % classes).reshape(-1, 1).astype(np.uint8)
    return out


def save(tmp_path: Path, name="data.npz", **arrs) -> Path:
    path = tmp_path / name
    np.savez_compressed(path, **arrs)
    return path


def zip_members(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def npy_bytes(array: np.ndarray, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


# -- what reads ---------------------------------------------------------------------------


def test_medmnist_layout_reads_as_uint8_with_a_channel_axis(tmp_path):
    a = arrays()
    data = read_datafile(save(tmp_path, **a), num_classes=2, expect_shape=(8, 8, 8), expect_channels=1)
    train = data.splits["train"]
    assert train.images.dtype == np.uint8 and train.images.shape == (8, 1, 8, 8, 8)
    assert train.images.flags.c_contiguous
    assert np.array_equal(train.images[:, 0], a["train_images"])
    assert train.labels.dtype == np.int64 and train.labels.shape == (8,)
    assert np.array_equal(train.labels, a["train_labels"][:, 0])
    assert (data.num_classes, data.channels, data.shape) == (2, 1, (8, 8, 8))
    assert (data.task, data.scaling, data.class_names, data.source) == ("binary-class", "divide-255", (), {})
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [8, 3, 4]


def test_float_multichannel_non_cubic_volumes_and_whole_float_labels(tmp_path):
    a = arrays(shape=(4, 6, 8), channels=2, classes=3, dtype=np.float64)
    for s in ("train", "val", "test"):
        a[f"{s}_labels"] = a[f"{s}_labels"].astype(np.float32)[:, 0]
    a["notes"] = np.arange(3)  # unknown arrays are ignored
    data = read_datafile(save(tmp_path, **a))
    images = data.splits["val"].images
    assert images.dtype == np.float32 and images.shape == (3, 2, 4, 6, 8)
    assert np.array_equal(images, a["val_images"].astype(np.float32))
    assert (data.num_classes, data.channels, data.shape) == (3, 2, (4, 6, 8))
    assert (data.task, data.scaling) == ("multi-class", "none")
    assert data.splits["test"].labels.dtype == np.int64


def test_write_datafile_round_trips_class_names_and_source(tmp_path):
    a = arrays(channels=3, classes=3)
    splits = {s: (a[f"{s}_images"], a[f"{s}_labels"]) for s in ("train", "val", "test")}
    path = tmp_path / "own.npz"
    write_datafile(path, splits, class_names=("a", "b", "c"), source={"format": "x", "size": [8, 8, 8]})
    data = read_datafile(path)
    assert data.class_names == ("a", "b", "c")
    assert data.source == {"format": "x", "size": [8, 8, 8]}
    assert np.array_equal(data.splits["train"].images, a["train_images"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["own.npz"]  # no temp file left


def test_class_names_set_the_number_of_classes(tmp_path):
    a = arrays(classes=2)
    a["meta"] = np.array(json.dumps({"class_names": ["no", "yes", "maybe"]}))
    with pytest.raises(DataFileError, match=r"class 2 \(maybe\) never appears in train_labels"):
        read_datafile(save(tmp_path, **a))


def test_bundled_adrenalmnist3d_reads(data_root):
    data = read_datafile(data_root / "adrenalmnist3d.npz", num_classes=2, expect_shape=(28, 28, 28), min_size=2)
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [1188, 98, 298]
    assert data.splits["test"].images.dtype == np.uint8


def test_min_size_for_stacks():
    assert [min_size_for_stacks(s) for s in (1, 2, 3)] == [1, 2, 4]


@pytest.mark.e2e
def test_datafile_does_not_import_torch():
    code = "import sys, engine.datafile\nprint('torch' in sys.modules)\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


# -- what does not: one line each, naming the file and the problem ------------------------


def _damaged_deflate(tmp_path: Path) -> Path:
    path = save(tmp_path, "damaged.npz", **arrays())
    data = bytearray(path.read_bytes())
    info = zipfile.ZipFile(path).getinfo("train_images.npy")
    start = info.header_offset + 30 + len(info.filename) + 40
    for k in range(start, start + 200):
        data[k] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


def _broken_header(tmp_path: Path, junk: bytes) -> Path:
    a = arrays()
    raw = bytearray(npy_bytes(a["train_images"]))
    raw[10 : 10 + len(junk)] = junk
    members = {f"{k}.npy": npy_bytes(v) for k, v in a.items()}
    members["train_images.npy"] = bytes(raw)
    return zip_members(tmp_path / "header.npz", members)


def _text_file(tmp_path: Path) -> Path:
    path = tmp_path / "x.npz"
    path.write_text("hello")
    return path


def _single_npy(tmp_path: Path) -> Path:
    path = tmp_path / "x.npy"
    np.save(path, np.zeros(3))
    return path


def _truncated(tmp_path: Path) -> Path:
    path = save(tmp_path, "cut.npz", **arrays())
    path.write_bytes(path.read_bytes()[:300])
    return path


def _with(tmp_path: Path, **changes) -> Path:
    a = arrays()
    for key, value in changes.items():
        if value is None:
            del a[key]
        else:
            a[key] = value
    return save(tmp_path, "bad.npz", **a)


def _labels(*values) -> np.ndarray:
    return np.array(values).reshape(-1, 1)


MALFORMED = {
    "missing file": (lambda t: t / "nope.npz", {}, r"nope\.npz: no such file"),
    "a directory": (lambda t: t, {}, r"is a directory"),
    "not a zip": (_text_file, {}, r"not an npz archive"),
    "a single .npy": (_single_npy, {}, r"single \.npy array, not an npz"),
    "truncated zip": (_truncated, {}, r"cut\.npz: (not a readable npz|cannot read)"),
    "damaged deflate stream": (_damaged_deflate, {}, r"cannot read train_images: the archive is damaged \(error"),
    "npy header that does not parse": (
        lambda t: _broken_header(t, b"{'descr': 7 '|u1'"), {}, r"cannot read train_images: damaged"),
    "npy header that does not tokenize": (
        lambda t: _broken_header(t, b"(((((((((("), {}, r"cannot read train_images: the archive is damaged \(TokenError"),
    "pickled object array": (
        lambda t: zip_members(t / "obj.npz", {
            **{f"{k}.npy": npy_bytes(v) for k, v in arrays().items()},
            "train_labels.npy": npy_bytes(np.array([{"a": 1}] * 8, dtype=object), allow_pickle=True)}),
        {}, r"train_labels is an object array; object arrays are not allowed"),
    "member that is not an array": (
        lambda t: zip_members(t / "raw.npz", {
            **{f"{k}.npy": npy_bytes(v) for k, v in arrays().items()}, "val_images.npy": b"just bytes"}),
        {}, r"val_images is not a \.npy array"),
    "missing arrays": (lambda t: _with(t, val_labels=None, test_images=None), {}, r"missing val_labels, test_images \(found test_labels, train_images"),
    "images with 3 dimensions": (
        lambda t: _with(t, test_images=np.zeros((4, 8, 8), np.uint8)), {}, r"test_images has shape \(4, 8, 8\); expected"),
    "int16 images": (
        lambda t: _with(t, val_images=np.zeros((3, 8, 8, 8), np.int16)), {}, r"val_images has dtype int16; expected uint8"),
    "fewer labels than volumes": (
        lambda t: _with(t, train_labels=_labels(0, 1, 0)), {}, r"train_labels has 3 labels but the images hold 8 volumes"),
    "multi-label labels": (
        lambda t: _with(t, val_labels=np.zeros((3, 4), np.int64)), {}, r"val_labels has shape \(3, 4\)"),
    "string labels": (
        lambda t: _with(t, val_labels=np.array(["a", "b", "a"])), {}, r"val_labels has dtype <U1; expected integer"),
    "sizes differ between splits": (
        lambda t: _with(t, test_images=np.zeros((4, 8, 8, 6), np.uint8)), {},
        r"train_images volumes are 8x8x8 but test_images volumes are 8x8x6"),
    "channels differ between splits": (
        lambda t: _with(t, val_images=np.zeros((3, 2, 8, 8, 8), np.uint8)), {}, r"train_images has 1 channel\(s\) but val_images has 2"),
    "dtypes differ between splits": (
        lambda t: _with(t, val_images=np.zeros((3, 8, 8, 8), np.float32)), {}, r"train_images is uint8 but val_images is float32"),
    "empty split": (
        lambda t: _with(t, val_images=np.zeros((0, 8, 8, 8), np.uint8), val_labels=np.zeros((0, 1), np.int64)), {},
        r"val_images is empty"),
    "NaN in float images": (
        lambda t: save(t, "nan.npz", **{**arrays(dtype=np.float32),
                                        "test_images": np.where(np.arange(4)[:, None, None, None] == 2, np.nan, 0.5)
                                        * np.ones((4, 8, 8, 8), np.float32)}),
        {}, r"test_images\[2\] holds nan"),
    "inf after float64 to float32": (
        lambda t: save(t, "inf.npz", **{**arrays(dtype=np.float64), "val_images": np.full((3, 8, 8, 8), 1e300)}),
        {}, r"val_images\[0\] holds inf"),
    "fractional labels": (
        lambda t: _with(t, val_labels=np.array([0.0, 1.5, 1.0])), {}, r"val_labels\[1\] = 1\.5: labels must be whole"),
    "negative label": (
        lambda t: _with(t, test_labels=_labels(0, 1, -1, 0)), {}, r"test_labels\[2\] = -1: class indices must be >= 0"),
    "label beyond the catalog's classes": (
        lambda t: _with(t, test_labels=_labels(0, 1, 2, 0)), {"num_classes": 2},
        r"test_labels\[2\] = 2: this dataset has 2 classes \(0-1\)"),
    "one class only": (
        lambda t: save(t, "one.npz", **arrays(classes=1)), {}, r"every label is 0: a classifier needs at least two"),
    "class missing from train": (
        lambda t: _with(t, test_labels=_labels(0, 1, 2, 0)), {}, r"class 2 never appears in train_labels"),
    "volumes too small for the network": (
        lambda t: save(t, "small.npz", **arrays(shape=(8, 8, 1))), {"min_size": 2},
        r"volumes are 8x8x1 but every side must be at least 2: .* halves each side 1 time"),
    "unexpected shape": (lambda t: save(t, "s.npz", **arrays()), {"expect_shape": (28, 28, 28)},
                         r"volumes are 8x8x8, expected 28x28x28"),
    "unexpected channels": (lambda t: save(t, "c.npz", **arrays()), {"expect_channels": 3},
                            r"volumes have 1 channel\(s\), expected 3"),
    "meta not JSON": (lambda t: _with(t, meta=np.array("{class_names")), {}, r"meta is not valid JSON"),
    "meta a list": (lambda t: _with(t, meta=np.array("[1, 2]")), {}, r"meta holds a JSON list"),
    "meta not 0-d": (lambda t: _with(t, meta=np.array(["{}", "{}"])), {}, r"meta has shape \(2,\)"),
    "meta class names not strings": (
        lambda t: _with(t, meta=np.array(json.dumps({"class_names": [1, 2]}))), {}, r"meta.class_names = \[1, 2\]"),
    "meta class names repeated": (
        lambda t: _with(t, meta=np.array(json.dumps({"class_names": ["a", "a"]}))), {}, r"meta.class_names repeats 'a'"),
    "meta source not an object": (
        lambda t: _with(t, meta=np.array(json.dumps({"source": "import"}))), {}, r"meta.source holds a JSON str"),
    "a label far beyond the number of volumes": (
        lambda t: _with(t, train_labels=_labels(*range(7), 2**62)), {}, r"labels go up to 4611686018427387904 but "
        r"train_labels has only 8 volumes"),
    "class names disagree with the catalog": (
        lambda t: _with(t, meta=np.array(json.dumps({"class_names": ["a", "b", "c"]}))), {"num_classes": 2},
        r"names 3 classes but the dataset has 2"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_dataset_gives_one_line(tmp_path, case):
    make, kwargs, pattern = MALFORMED[case]
    path = make(tmp_path)
    with pytest.raises(DataFileError) as info:
        read_datafile(path, **kwargs)
    message = str(info.value)
    assert isinstance(info.value, UserError)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(str(path)), message
    assert re.search(pattern, message), message
