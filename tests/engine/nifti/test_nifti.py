"""Importing NIfTI volumes: the recipe, the labels CSV, the split, the file written, and one line per mistake."""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
pytest.importorskip("scipy")

from engine.datafile import read_datafile  # noqa: E402
from engine.errors import UserError  # noqa: E402
from engine.nifti import NiftiError  # noqa: E402
from engine.nifti.folder_import import import_nifti_folder  # noqa: E402
from engine.nifti.labels import read_labels_csv  # noqa: E402
from engine.nifti.recipe import SOURCE_FORMAT, VolumeRecipe  # noqa: E402
from engine.nifti.splits import stratified_split  # noqa: E402
from engine.nifti.volume import read_nifti  # noqa: E402


from nifti_files import save_nifti, write_nifti_folder  # noqa: E402


# -- the recipe ------------------------------------------------------------------------


def test_percentile_scaling_clips_then_stretches_to_uint8():
    ramp = np.arange(1000, dtype=np.float32).reshape(1, 10, 10, 10)
    recipe = VolumeRecipe((10, 10, 10))
    out = recipe.apply(ramp)
    low, high = np.percentile(ramp, [0.5, 99.5])
    expected = np.rint((np.clip(ramp.astype(np.float64), low, high) - low) / (high - low) * 255).astype(np.uint8)
    assert out.dtype == np.uint8 and out.shape == (1, 10, 10, 10)
    assert np.array_equal(out, expected)
    assert out.min() == 0 and out.max() == 255
    assert (out == 0).sum() > 1 and (out == 255).sum() > 1  # the tails were clipped


def test_minmax_and_none_and_constant_channels():
    vol = np.stack([np.linspace(-5, 5, 216, dtype=np.float32).reshape(6, 6, 6), np.full((6, 6, 6), 7.0, np.float32)])
    mm = VolumeRecipe((6, 6, 6), channels=2, intensity="minmax").apply(vol)
    assert mm[0].min() == 0 and mm[0].max() == 255 and (mm[0] == 0).sum() == 1
    assert not mm[1].any()  # a constant channel has no range: all 0
    raw = VolumeRecipe((6, 6, 6), channels=2, intensity="none").apply(vol)
    assert raw.dtype == np.float32 and np.array_equal(raw, vol)  # same size: zoom is the identity


def test_resampling_is_trilinear_with_aligned_corners():
    ramp = np.broadcast_to(np.arange(5, dtype=np.float32)[:, None, None], (5, 3, 4)).copy()
    out = VolumeRecipe((9, 6, 2), intensity="none").resample(ramp[None])
    assert out.shape == (1, 9, 6, 2)
    assert np.allclose(out[0, :, 0, 0], np.arange(9) / 2.0, atol=1e-5)  # corners kept, midpoints interpolated


def test_read_nifti_reorients_to_canonical_and_makes_channels(tmp_path):
    data = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)
    flipped = np.diag([-1.0, 1.0, 1.0, 1.0])
    assert np.array_equal(read_nifti(save_nifti(tmp_path / "a.nii", data, flipped))[0], data[::-1])
    four = np.stack([data, 2 * data], axis=-1)
    vol = read_nifti(save_nifti(tmp_path / "b.nii.gz", four))
    assert vol.shape == (2, 4, 5, 6) and np.array_equal(vol[1], 2 * data)


def test_recipe_round_trips_through_source_json():
    recipe = VolumeRecipe((16, 12, 8), channels=3, intensity="percentile", percentiles=(1.0, 99.0))
    source = json.loads(json.dumps(recipe.to_source()))
    assert source["format"] == SOURCE_FORMAT
    assert VolumeRecipe.from_source(source) == recipe
    with pytest.raises(NiftiError, match="holds no NIfTI import recipe"):
        VolumeRecipe.from_source({})
    with pytest.raises(NiftiError, match=r"size = \(\)"):
        VolumeRecipe.from_source({**source, "size": []})


# -- the split -------------------------------------------------------------------------


def test_stratified_split_is_seeded_and_per_class():
    labels = np.array([0] * 20 + [1] * 10)
    a = stratified_split(labels, 0.1, 0.2, seed=3)
    assert np.array_equal(a, stratified_split(labels, 0.1, 0.2, seed=3))
    assert not np.array_equal(a, stratified_split(labels, 0.1, 0.2, seed=4))
    for k, n in ((0, 20), (1, 10)):
        mine = a[labels == k]
        assert [(mine == s).sum() for s in ("train", "val", "test")] == [n - round(0.1 * n) - round(0.2 * n),
                                                                         round(0.1 * n), round(0.2 * n)]


def test_a_class_too_small_to_stratify_is_named():
    with pytest.raises(NiftiError, match=r"class 'rare' has 2 volume\(s\): a stratified .* at least 3"):
        stratified_split(np.array([0, 0, 0, 0, 1, 1]), 0.1, 0.2, seed=0, class_label=["common", "rare"].__getitem__)


# -- the import ------------------------------------------------------------------------


def test_import_writes_a_checked_dataset_with_its_recipe(tmp_path):
    folder, labels = write_nifti_folder(tmp_path)
    seen = []
    summary = import_nifti_folder(folder, labels, tmp_path / "own.npz", size=12, seed=1,
                                  progress=lambda done, total, f: seen.append((done, total)))
    assert seen[-1] == (20, 20) and len(seen) == 20
    data = read_datafile(tmp_path / "own.npz", min_size=2)
    assert (data.shape, data.channels, data.num_classes, data.scaling) == ((12, 12, 12), 1, 2, "divide-255")
    assert data.class_names == ("blob", "none") == summary.class_names
    assert summary.counts == {"train": (7, 7), "val": (1, 1), "test": (2, 2)}
    assert data.splits["train"].images.dtype == np.uint8
    recipe = VolumeRecipe.from_source(data.source)
    assert recipe == VolumeRecipe((12, 12, 12), 1, "percentile", (0.5, 99.5))
    assert data.source["split"] == {"method": "stratified", "seed": 1, "val_fraction": 0.1, "test_fraction": 0.2}
    meta = json.loads(str(np.load(tmp_path / "own.npz")["meta"]))
    # every row is the recipe applied to the file the meta names for it
    for split in ("train", "test"):
        for row, file in enumerate(meta["files"][split]):
            assert np.array_equal(data.splits[split].images[row], recipe.load(folder / file))
            assert data.splits[split].labels[row] == (0 if "blob" in _label_of(labels, file) else 1)


def _label_of(csv_path: Path, file: str) -> str:
    return next(line.split(",")[1] for line in csv_path.read_text().splitlines() if line.startswith(file + ","))


def test_import_follows_a_split_column_and_multichannel_volumes(tmp_path):
    folder, labels = write_nifti_folder(tmp_path, per_class=5, channels=2, split_column=True)
    summary = import_nifti_folder(folder, labels, tmp_path / "out" / "two.npz", size=(8, 8, 6), intensity="none")
    data = read_datafile(summary.path)
    assert (data.channels, data.shape, data.scaling) == (2, (8, 8, 6), "none")
    assert summary.counts == {"train": (2, 2), "val": (1, 1), "test": (2, 2)}
    assert data.source["split"] == {"method": "csv split column"}
    with pytest.raises(NiftiError, match="assigns splits"):
        import_nifti_folder(folder, labels, tmp_path / "x.npz", size=8, val_fraction=0.2)


def test_integer_labels_keep_their_indices(tmp_path):
    folder, labels = write_nifti_folder(tmp_path, per_class=3)
    labels.write_text(labels.read_text().replace(",blob", ",1").replace(",none", ",0"))
    table = read_labels_csv(labels, folder)
    assert table.class_names == () and table.num_classes == 2
    assert list(table.labels[:2]) == [1, 0]


# -- one line per mistake ----------------------------------------------------------------


def _csv(tmp_path: Path, text: str | bytes) -> Path:
    folder, labels = write_nifti_folder(tmp_path, per_class=3)
    if isinstance(text, bytes):
        labels.write_bytes(text)
    else:
        labels.write_text(text)
    return labels


BAD_IMPORTS = {
    "missing folder": (lambda t: (t / "nowhere", _csv(t, "file,label\n")), {}, r"nowhere: no such folder"),
    "missing CSV": (lambda t: (write_nifti_folder(t)[0], t / "none.csv"), {}, r"none\.csv: labels CSV not found"),
    "CSV without a header": (
        lambda t: (t / "volumes", _csv(t, "case01.nii.gz,none\ncase02.nii.gz,blob\n")), {},
        r"line 1 is 'case01\.nii\.gz,none'; expected a header row"),
    "binary garbage CSV": (lambda t: (t / "volumes", _csv(t, b"\xff\xfe\x00\x81garbage")), {}, r"not UTF-8 text"),
    "CSV with a NUL byte": (lambda t: (t / "volumes", _csv(t, "file,label\ncase01.nii.gz\x00,1\n")), {},
                            r"line 2 holds a control character .\\x00.; not a text CSV"),
    "CSV header only": (lambda t: (t / "volumes", _csv(t, "file,label\n")), {}, r"has a header but no rows"),
    "CSV row with too many fields": (
        lambda t: (t / "volumes", _csv(t, "file,label\ncase01.nii.gz,none,extra\n")), {},
        r"line 2 has 3 field\(s\), the header has 2"),
    "CSV row naming a missing file": (
        lambda t: (t / "volumes", _csv(t, "file,label\ncase01.nii.gz,none\nghost.nii.gz,blob\n")), {},
        r"line 3: .*ghost\.nii\.gz does not exist"),
    "CSV row naming a non-NIfTI file": (
        lambda t: (t / "volumes", _csv(t, "file,label\nnotes.txt,none\n")), {}, r"notes\.txt is not a NIfTI file name"),
    "CSV with an unknown split": (
        lambda t: (t / "volumes", _csv(t, "file,label,split\ncase01.nii.gz,none,training\n")), {},
        r"has split 'training'; use train, val or test"),
    "CSV listing a file twice": (
        lambda t: (t / "volumes", _csv(t, "file,label\ncase01.nii.gz,none\ncase01.nii.gz,blob\n")), {},
        r"line 3: case01\.nii\.gz is listed twice \(first on line 2\)"),
    "CSV with one class": (
        lambda t: (t / "volumes", _csv(t, "file,label\ncase01.nii.gz,none\ncase03.nii.gz,none\n")), {},
        r"every row has label 'none'"),
    "CSV with a gap in class indices": (
        lambda t: (t / "volumes", _csv(t, "file,label\ncase01.nii.gz,0\ncase03.nii.gz,2\n")), {},
        r"no volume has class 1 although labels go up to 2"),
    "CSV with an index beyond int64": (
        lambda t: (t / "volumes", _csv(t, "file,label\ncase01.nii.gz,0\ncase03.nii.gz,1180591620717411303424\n")), {},
        r"no volume has class 1 although labels go up to 1180591620717411303424"),
    "CSV with a negative index": (
        lambda t: (t / "volumes", _csv(t, "file,label\ncase01.nii.gz,0\ncase03.nii.gz,-1\n")), {},
        r"has label -1; class indices must be >= 0"),
    "class too small to stratify": (
        lambda t: (t / "volumes", _csv(t, "file,label\ncase01.nii.gz,a\ncase02.nii.gz,b\ncase03.nii.gz,a\n"
                                          "case04.nii.gz,a\n")), {}, r"labels\.csv: class 'b' has 1 volume\(s\)"),
    "a split without volumes": (
        lambda t: (t / "volumes", _csv(t, "file,label,split\ncase01.nii.gz,a,train\ncase02.nii.gz,b,train\n"
                                          "case03.nii.gz,a,test\n")), {}, r"no row is in the val split"),
    "garbage under a .nii.gz name": (lambda t: _garbage(t), {}, r"case01\.nii\.gz: not a readable NIfTI volume"),
    "mixed channel counts": (lambda t: _mixed_channels(t), {},
                             r"case03\.nii\.gz: has 2 channel\(s\) but case01\.nii\.gz has 1"),
    "output not .npz": (lambda t: write_nifti_folder(t), {"out": "own.h5"}, r"own\.h5: the output must be an \.npz"),
    "unknown intensity method": (lambda t: write_nifti_folder(t), {"intensity": "zscore"},
                                 r"intensity = 'zscore': use one of percentile, minmax, none"),
}


def _garbage(tmp_path: Path) -> tuple[Path, Path]:
    labels = _csv(tmp_path, "file,label,split\ncase01.nii.gz,a,train\ncase02.nii.gz,b,train\ncase03.nii.gz,a,val\n"
                            "case04.nii.gz,b,test\n")
    (tmp_path / "volumes" / "case01.nii.gz").write_bytes(b"this is not a volume at all")
    return tmp_path / "volumes", labels


def _mixed_channels(tmp_path: Path) -> tuple[Path, Path]:
    folder, labels = _garbage(tmp_path)
    save_nifti(folder / "case01.nii.gz", np.zeros((6, 6, 6), np.float32))
    save_nifti(folder / "case03.nii.gz", np.zeros((6, 6, 6, 2), np.float32))
    return folder, labels


@pytest.mark.parametrize("case", sorted(BAD_IMPORTS))
def test_bad_import_gives_one_line(tmp_path, case):
    make, kwargs, pattern = BAD_IMPORTS[case]
    kwargs = dict(kwargs)
    folder, labels = make(tmp_path)
    out = tmp_path / kwargs.pop("out", "own.npz")
    with pytest.raises(UserError) as info:
        import_nifti_folder(folder, labels, out, size=8, **kwargs)
    message = str(info.value)
    assert "\n" not in message and re.search(pattern, message), message
    assert not out.exists()


# -- the command ---------------------------------------------------------------------------


def run_command(module, argv: list[str]) -> tuple[int, str]:
    """Parse ``argv`` with the command's arguments and run it as the CLI boundary would: (exit code, error line)."""
    parser = argparse.ArgumentParser(prog="nas3d-tui")
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return module.main(args), ""
    except UserError as exc:
        return 2, f"nas3d-tui: error: {exc}"


def test_data_import_and_check_commands(tmp_path, capsys):
    from nas3d_tui.commands import data as command

    folder, labels = write_nifti_folder(tmp_path, per_class=4)
    out = tmp_path / "own.npz"
    code, error = run_command(command, ["import", str(folder), "--labels", str(labels), "--size", "10x10x8",
                                        "-o", str(out), "--seed", "5", "--test-fraction", "0.25"])
    assert (code, error) == (0, "")
    printed = capsys.readouterr().out
    assert "blob" in printed and "none" in printed and "1 x 10x10x8" in printed and "stratified, seed 5" in printed
    assert read_datafile(out).shape == (10, 10, 8)
    code, error = run_command(command, ["check", str(out), "--stacks", "2"])
    assert code == 0 and "binary-class, 2 classes" in capsys.readouterr().out
    code, error = run_command(command, ["check", str(out), "--stacks", "5"])
    assert code == 2 and "every side must be at least 16" in error and "\n" not in error
    code, error = run_command(command, ["import", str(tmp_path / "nowhere"), "--labels", str(labels), "--size", "8",
                                        "-o", str(out)])
    assert code == 2 and error.endswith("nowhere: no such folder")


@pytest.mark.parametrize("argv, fragment", [
    (["--size", "100000"], "integers from 1 to 512"),
    (["--size", "8", "--seed", "-1"], "expected an integer >= 0"),
])
def test_absurd_import_settings_are_one_line_before_any_work(tmp_path, capfd, argv, fragment):
    from nas3d_tui.cli import main

    folder, labels = write_nifti_folder(tmp_path)
    with pytest.raises(SystemExit) as exit_:  # argparse's exit, through the CLI's parser
        main(["data", "import", str(folder), "--labels", str(labels), "-o", str(tmp_path / "o.npz"), *argv])
    code, err = exit_.value.code, capfd.readouterr().err
    assert code == 2 and fragment in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o.npz").exists()


def test_nibabel_log_lines_never_reach_the_terminal(tmp_path, capfd):
    """nibabel logs header problems through its own stderr handler; the CLI keeps one line per error."""
    from nas3d_tui.cli import main

    folder, labels = _garbage(tmp_path)
    raw = bytearray((folder / "case02.nii.gz").read_bytes())
    import gzip

    header = bytearray(gzip.decompress(bytes(raw)))
    header[0:4] = (1000).to_bytes(4, "little")  # sizeof_hdr should be 348: nibabel logs, then fixes it
    (folder / "case02.nii").write_bytes(bytes(header))
    (folder / "case02.nii.gz").unlink()
    labels.write_text(labels.read_text().replace("case02.nii.gz", "case02.nii"))
    code = main(["data", "import", str(folder), "--labels", str(labels), "--size", "8", "-o", str(tmp_path / "o.npz")])
    err = capfd.readouterr().err
    assert code == 2 and "sizeof_hdr" not in err and len(err.splitlines()) == 1, err
    assert "case01.nii.gz: not a readable NIfTI volume" in err


@pytest.mark.e2e
def test_import_runs_without_torch(tmp_path):
    folder, labels = write_nifti_folder(tmp_path, per_class=3)
    code = (
        "import sys\n"
        "from engine.nifti.folder_import import import_nifti_folder\n"
        f"import_nifti_folder({str(folder)!r}, {str(labels)!r}, {str(tmp_path / 'o.npz')!r}, size=6)\n"
        "print('torch' in sys.modules)\n"
    )
    repo = Path(__file__).resolve().parents[3]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
