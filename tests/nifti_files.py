"""NIfTI folders for tests: noisy volumes of varying sizes, a bright ball in class ``blob``, and their labels CSV.

Shared by the NIfTI, own-data, predict and CLI-edge tests (``tests/`` is on ``sys.path``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import nibabel as nib


def blob_volume(rng: np.random.Generator, shape: tuple[int, int, int], blob: bool) -> np.ndarray:
    """Noise around 100, plus a bright ball of radius ~3 voxels when ``blob``."""
    vol = 100.0 + 20.0 * rng.standard_normal(shape)
    if blob:
        centre = [rng.uniform(0.35, 0.65) * s for s in shape]
        grid = np.indices(shape).astype(np.float64)
        dist = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre)))
        vol += 400.0 * (dist < 3.0)
    return vol.astype(np.float32)


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    nib.Nifti1Image(data, np.eye(4) if affine is None else affine).to_filename(str(path))
    return path


def write_nifti_folder(
    root: Path, per_class: int = 10, seed: int = 0, channels: int = 1, split_column: bool = False
) -> tuple[Path, Path]:
    """A folder of .nii.gz volumes of varying raw sizes, classes ``blob`` and ``none``, and its labels.csv."""
    rng = np.random.default_rng(seed)
    folder = root / "volumes"
    (folder / "sub").mkdir(parents=True)
    lines = ["file,label,split" if split_column else "file,label"]
    for k in range(2 * per_class):
        blob = k % 2 == 0
        shape = (int(rng.integers(10, 15)), int(rng.integers(10, 15)), int(rng.integers(8, 13)))
        data = blob_volume(rng, shape, blob)
        if channels > 1:
            data = np.stack([data * (c + 1) for c in range(channels)], axis=-1)
        name = f"sub/case{k:02d}.nii.gz" if k % 5 == 0 else f"case{k:02d}.nii.gz"
        save_nifti(folder / name, data)
        row = f"{name},{'blob' if blob else 'none'}"
        if split_column:
            row += "," + ("test" if k < 4 else "val" if k < 6 else "train")
        lines.append(row)
    csv_path = root / "labels.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    return folder, csv_path
