"""Overrides that turn the ``quick`` profile into a tiny real search for tests, and a small own dataset for it."""
from __future__ import annotations

from pathlib import Path

# A tiny real search: conv3 operations only, 1 stack × 1 module × 8 filters,
# one training batch per epoch on a tenth of the bundled AdrenalMNIST3D.
TINY = [
    "run.device='cpu'",
    "space.ops=[0,3,9,12]",
    "space.stacks=[1]",
    "space.modules=[1]",
    "space.filters=[8]",
    "space.max_edges=9",  # the paper's; quick's smaller cells would change which candidates train
    "search.population=4",
    "search.budget=8",
    "search.fitness='val_auc'",
    "data.search_fraction=0.1",
    "training.epochs=1",
    "training.max_batches_per_epoch=1",
    "training.batch_size=32",
    "training.patience=2",
    "final.top_k=0",
    "final.epochs=3",  # a test that turns the final phase on gets quick's old one: 3 epochs, seed 0
    "final.seeds=[0]",
    "search.pruning='none'",  # tests that prune say so (tests/engine/test_pruning.py)
]


def small_dataset(path: Path) -> Path:
    """An own dataset file (MedMNIST's layout) at ``path``: 16³ volumes, a bright cube in class 1 (96 to train on)."""
    import numpy as np

    rng = np.random.default_rng(5)
    arrays = {}
    for split, n in (("train", 96), ("val", 32), ("test", 32)):
        y = np.arange(n) % 2
        x = rng.integers(0, 80, (n, 16, 16, 16), dtype=np.uint8)
        x[y == 1, 5:11, 5:11, 5:11] += 120
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = x, y.reshape(n, 1)
    np.savez_compressed(path, **arrays)
    return path
