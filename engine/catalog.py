"""The MedMNIST3D catalog: the six datasets' facts, in one place.

This module owns what the engine knows about each MedMNIST3D dataset without
loading it: task, class names, split sizes, file names, download addresses and
checksums. It is a static copy of ``medmnist.INFO`` (a test checks that they
agree) so that the profile validator and the dashboard can use it without
importing ``medmnist``, which imports torch.

It must not import torch or do any I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DatasetInfo", "DATASETS", "SIZES", "ZENODO", "file_name"]

SIZES = (28, 64)
ZENODO = "https://zenodo.org/records/10519652/files"


@dataclass(frozen=True)
class DatasetInfo:
    """One MedMNIST3D dataset.

    Attributes:
        flag: medmnist's name (``adrenalmnist3d``, ...).
        python_class: medmnist's dataset class (used by its downloader).
        task: ``binary-class`` or ``multi-class``.
        labels: class names, by class index.
        n_samples: official split sizes.
        md5: MD5 of the npz file, by edge size.
    """

    flag: str
    python_class: str
    task: str
    labels: tuple[str, ...]
    n_samples: dict[str, int]
    md5: dict[int, str]

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def url(self, size: int) -> str:
        """Where medmnist downloads the npz of this dataset at ``size``."""
        return f"{ZENODO}/{file_name(self.flag, size)}?download=1"


def file_name(flag: str, size: int) -> str:
    """``<flag>.npz`` for 28³, ``<flag>_<size>.npz`` otherwise (medmnist's names)."""
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


_TABLE = (
    DatasetInfo(
        flag="organmnist3d",
        python_class="OrganMNIST3D",
        task="multi-class",
        labels=("liver", "kidney-right", "kidney-left", "femur-right", "femur-left", "bladder", "heart",
                "lung-right", "lung-left", "spleen", "pancreas"),
        n_samples={"train": 971, "val": 161, "test": 610},
        md5={28: "a0c5a1ff56af4f155c46d46fbb45a2fe", 64: "58a2205adf14a9d0a189cb06dc78bf10"},
    ),
    DatasetInfo(
        flag="nodulemnist3d",
        python_class="NoduleMNIST3D",
        task="binary-class",
        labels=("benign", "malignant"),
        n_samples={"train": 1158, "val": 165, "test": 310},
        md5={28: "8755a7e9e05a4d9ce80a24c3e7a256f3", 64: "c47c5b7d457bf6332200d2ea6d64ecd8"},
    ),
    DatasetInfo(
        flag="adrenalmnist3d",
        python_class="AdrenalMNIST3D",
        task="binary-class",
        labels=("normal", "hyperplasia"),
        n_samples={"train": 1188, "val": 98, "test": 298},
        md5={28: "bbd3c5a5576322bc4cdfea780653b1ce", 64: "17721accfe9fb005146a47d33bc54b2f"},
    ),
    DatasetInfo(
        flag="fracturemnist3d",
        python_class="FractureMNIST3D",
        task="multi-class",
        labels=("buckle rib fracture", "nondisplaced rib fracture", "displaced rib fracture"),
        n_samples={"train": 1027, "val": 103, "test": 240},
        md5={28: "6aa7b0143a6b42da40027a9dda61302f", 64: "f01d7e6316aedf4210da0da5b7437b42"},
    ),
    DatasetInfo(
        flag="vesselmnist3d",
        python_class="VesselMNIST3D",
        task="binary-class",
        labels=("vessel", "aneurysm"),
        n_samples={"train": 1335, "val": 191, "test": 382},
        md5={28: "b41fd4f7e7e2feedddb201585ecafa1b", 64: "6bb274a8846e1097066dcd64e2c4520f"},
    ),
    DatasetInfo(
        flag="synapsemnist3d",
        python_class="SynapseMNIST3D",
        task="binary-class",
        labels=("inhibitory synapse", "excitatory synapse"),
        n_samples={"train": 1230, "val": 177, "test": 352},
        md5={28: "1235b78a3cd6280881dd7850a78eadb6", 64: "43bd14ebf3af9d3dd072446fedc14d5e"},
    ),
)

DATASETS: dict[str, DatasetInfo] = {d.flag: d for d in _TABLE}
