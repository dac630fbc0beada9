"""engine.data: the bundled real AdrenalMNIST3D, synthetic MedMNIST-format files, subsets, batching, errors."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import data as data_mod
from engine import data_source
from engine.catalog import DATASETS
from engine.data import Dataset, iterate_batches, load_dataset
from engine.data_source import DataError, bundled_path, dataset_path

ADRENAL_MD5_28 = "bbd3c5a5576322bc4cdfea780653b1ce"


def write_npz(path: Path, size: int = 28, n=(6, 3, 4), classes: int = 2, seed: int = 0, **override) -> Path:
    """A small file in MedMNIST3D's npz layout (uint8 volumes, (N, 1) uint8 labels)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(("train", "val", "test"), n):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(count, size, size, size), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(count) % classes).astype(np.uint8).reshape(count, 1)
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez_compressed(path, **arrays)
    return path


@pytest.fixture(scope="module")
def adrenal() -> Dataset:
    return load_dataset("adrenalmnist3d")


def test_datasets_table_comes_from_medmnist():
    from medmnist import INFO

    assert set(DATASETS) == {
        "organmnist3d",
        "nodulemnist3d",
        "adrenalmnist3d",
        "fracturemnist3d",
        "vesselmnist3d",
        "synapsemnist3d",
    }
    for flag, info in DATASETS.items():
        assert info.task == INFO[flag]["task"]
        assert info.num_classes == len(INFO[flag]["label"])
    assert DATASETS["organmnist3d"].num_classes == 11
    assert DATASETS["fracturemnist3d"].task == "multi-class"
    assert DATASETS["adrenalmnist3d"].task == "binary-class"


def test_bundled_file_is_the_official_28_cube_file():
    path = bundled_path()
    assert path.is_file()
    assert hashlib.md5(path.read_bytes()).hexdigest() == ADRENAL_MD5_28


def test_bundled_adrenal_loads_with_official_shapes(adrenal: Dataset):
    assert adrenal.flag == "adrenalmnist3d" and adrenal.size == 28
    assert adrenal.task == "binary-class" and adrenal.num_classes == 2
    assert Path(adrenal.path) == bundled_path()
    for name, n in (("train", 1188), ("val", 98), ("test", 298)):
        split = adrenal.split(name)
        assert split.x.shape == (n, 1, 28, 28, 28)
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.y.shape == (n,)
        assert len(split) == n
        assert split.x.device.type == "cpu"
    assert float(adrenal.train.x.min()) == 0.0 and float(adrenal.train.x.max()) == 1.0
    assert set(adrenal.train.y.unique().tolist()) == {0, 1}


def test_values_are_medmnist_uint8_over_255(adrenal: Dataset):
    with np.load(bundled_path()) as npz:
        images = npz["test_images"]
        labels = npz["test_labels"]
    # what medmnist's Dataset yields: float64 x / 255.0, which the published code casts to float32
    expected = (images[:, None] / 255.0).astype(np.float32)
    assert np.array_equal(adrenal.test.x.numpy(), expected)
    assert np.array_equal(adrenal.test.y.numpy(), labels[:, 0].astype(np.int64))


def test_synthetic_multiclass_and_64_cube_files(tmp_path: Path):
    write_npz(tmp_path / "organmnist3d.npz", classes=11, n=(22, 11, 11))
    organ = load_dataset("organmnist3d", root=tmp_path)
    assert organ.num_classes == 11 and organ.task == "multi-class"
    assert organ.train.x.shape == (22, 1, 28, 28, 28)
    assert organ.train.y.max() == 10

    write_npz(tmp_path / "adrenalmnist3d_64.npz", size=64, n=(4, 2, 2))
    big = load_dataset("adrenalmnist3d", size=64, root=str(tmp_path))
    assert big.size == 64 and big.train.x.shape == (4, 1, 64, 64, 64)
    assert big.path == str(tmp_path / "adrenalmnist3d_64.npz")


def test_flat_labels_are_accepted(tmp_path: Path):
    write_npz(tmp_path / "vesselmnist3d.npz", train_labels=np.array([0, 1, 0, 1, 1, 0], dtype=np.int64))
    assert load_dataset("vesselmnist3d", root=tmp_path).train.y.tolist() == [0, 1, 0, 1, 1, 0]


def test_default_root_is_medmnist_root_except_for_bundled_adrenal():
    from medmnist.info import DEFAULT_ROOT

    assert dataset_path("adrenalmnist3d", 28, "") == bundled_path()
    assert dataset_path("adrenalmnist3d", 64, "") == Path(DEFAULT_ROOT) / "adrenalmnist3d_64.npz"
    assert dataset_path("nodulemnist3d", 28, "") == Path(DEFAULT_ROOT) / "nodulemnist3d.npz"


# -- errors ---------------------------------------------------------------------


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    assert isinstance(exc.value, ValueError)
    return message


def test_missing_file_names_path_and_remedy(tmp_path: Path):
    with pytest.raises(DataError) as exc:
        load_dataset("synapsemnist3d", root=tmp_path)
    message = _one_line(exc)
    assert str(tmp_path / "synapsemnist3d.npz") in message
    assert "data.download=true" in message and "data.root" in message


def test_missing_64_file_in_default_root(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(data_source, "_default_root", lambda: tmp_path / "nowhere")
    with pytest.raises(DataError) as exc:
        load_dataset("adrenalmnist3d", size=64)
    assert "adrenalmnist3d_64.npz" in _one_line(exc)


def test_unknown_dataset_lists_valid_ones():
    with pytest.raises(DataError) as exc:
        load_dataset("pathmnist")
    message = _one_line(exc)
    assert "pathmnist" in message
    for flag in DATASETS:
        assert flag in message


def test_unsupported_size():
    with pytest.raises(DataError, match="28 or 64"):
        load_dataset("adrenalmnist3d", size=32)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ({"val_labels": None}, "missing val_labels"),
        ({"test_images": None, "test_labels": None}, "missing test_images, test_labels"),
        ({"train_images": np.zeros((6, 28, 28), np.uint8)}, "train_images has shape"),
        ({"train_images": np.zeros((6, 28, 28, 28), np.float32)}, "train_images is float32 but val_images is uint8"),
        ({"val_labels": np.zeros((2, 1), np.uint8)}, "val_labels has 2 labels but the images hold 3"),
        ({"val_labels": np.array([[0], [1], [5]], np.uint8)}, "val_labels[2] = 5: this dataset has 2 classes"),
        ({"val_labels": np.array([[0.0], [1.5], [0.0]])}, "val_labels"),
        ({"test_images": np.zeros((0, 28, 28, 28), np.uint8), "test_labels": np.zeros((0, 1), np.uint8)}, "empty"),
    ],
)
def test_malformed_files_raise_one_line_data_error(tmp_path: Path, override, fragment):
    write_npz(tmp_path / "nodulemnist3d.npz", **override)
    with pytest.raises(DataError) as exc:
        load_dataset("nodulemnist3d", root=tmp_path)
    message = _one_line(exc)
    assert fragment in message and "nodulemnist3d.npz" in message


def test_28_cube_file_under_the_64_name_is_rejected(tmp_path: Path):
    write_npz(tmp_path / "adrenalmnist3d_64.npz", size=28)
    with pytest.raises(DataError, match=r"volumes are 28x28x28, expected 64x64x64"):
        load_dataset("adrenalmnist3d", size=64, root=tmp_path)


def test_garbage_file_is_a_data_error(tmp_path: Path):
    (tmp_path / "fracturemnist3d.npz").write_bytes(b"not a zip at all")
    with pytest.raises(DataError) as exc:
        load_dataset("fracturemnist3d", root=tmp_path)
    assert "not an npz archive" in _one_line(exc)


def test_failed_download_is_a_one_line_data_error(monkeypatch, tmp_path: Path):
    import medmnist

    class Offline:
        def __init__(self, **kwargs):
            raise RuntimeError("Automatic download failed!\n  1. ...\n  2. ...")

    monkeypatch.setattr(medmnist, DATASETS["vesselmnist3d"].python_class, Offline)
    with pytest.raises(DataError) as exc:
        load_dataset("vesselmnist3d", root=tmp_path / "new", download=True)
    message = _one_line(exc)
    assert "download of vesselmnist3d" in message and "Automatic download failed" in message


# -- subsets ------------------------------------------------------------------------


def _fingerprint(split) -> list[str]:
    return [hashlib.sha1(row.numpy().tobytes()).hexdigest() for row in split.x]


def test_search_subset_sizes_and_test_untouched(adrenal: Dataset):
    sub = adrenal.search_subset(0.25, seed=42)
    assert len(sub.train) == 297 and len(sub.val) == 24
    assert sub.test is adrenal.test
    assert sub.flag == adrenal.flag and sub.num_classes == 2
    # rows are rows of the original, with their labels
    full = dict(zip(_fingerprint(adrenal.train), adrenal.train.y.tolist()))
    for fp, label in zip(_fingerprint(sub.train), sub.train.y.tolist()):
        assert full[fp] == label


def test_search_subset_is_deterministic_per_seed(adrenal: Dataset):
    a = adrenal.search_subset(0.1, seed=7)
    b = adrenal.search_subset(0.1, seed=7)
    c = adrenal.search_subset(0.1, seed=8)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.y, b.val.y)
    assert not torch.equal(a.train.x, c.train.x)


def test_search_subset_keeps_at_least_one_sample(adrenal: Dataset):
    tiny = adrenal.search_subset(1e-6, seed=0)
    assert len(tiny.train) == 1 and len(tiny.val) == 1
    assert adrenal.search_subset(1.0, seed=0) is adrenal
    for bad in (0.0, -0.5, 1.5, float("nan")):
        with pytest.raises(ValueError):
            adrenal.search_subset(bad, seed=0)


# -- batching -------------------------------------------------------------------------


def _small_split():
    x = torch.arange(10, dtype=torch.float32).view(10, 1, 1, 1, 1).expand(10, 1, 2, 2, 2).contiguous()
    y = torch.arange(10)
    return data_mod.Split(x=x, y=y)


def test_batches_cover_every_row_once_with_aligned_labels():
    split = _small_split()
    gen = torch.Generator().manual_seed(0)
    batches = list(iterate_batches(split, 4, generator=gen))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(10))
    assert seen.tolist() != list(range(10))  # shuffled
    for x, y in batches:
        assert torch.equal(x[:, 0, 0, 0, 0], y.float())  # inputs travel with their labels


def test_batch_order_follows_the_generator_seed():
    split = _small_split()

    def order(seed):
        return torch.cat([y for _, y in iterate_batches(split, 3, generator=torch.Generator().manual_seed(seed))])

    assert torch.equal(order(1), order(1))
    assert not torch.equal(order(1), order(2))


def test_unshuffled_and_explicit_permutation():
    split = _small_split()
    assert torch.cat([y for _, y in iterate_batches(split, 4, shuffle=False)]).tolist() == list(range(10))
    perm = torch.tensor([9, 0, 5])
    assert torch.cat([y for _, y in iterate_batches(split, 2, perm=perm)]).tolist() == [9, 0, 5]
    with pytest.raises(ValueError):
        next(iterate_batches(split, 0))
