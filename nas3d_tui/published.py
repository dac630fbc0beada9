"""The published models that ship with nas3d-tui, named ``published:<name>`` on the command line.

Each is a model bundle (``engine.bundle``) in ``nas3d_tui/models/<name>/``,
built by ``scripts/build_published_models.py`` from the paper's reference
implementation (Apache-2.0): the published chromosome, its trained weights
and the test metrics they reproduce here. ``train published:<name>``
retrains the architecture; ``predict published:<name> INPUT...`` runs the
published weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from engine.bundle_files import GENOTYPE_FILE
from engine.jsonfile import read_json

__all__ = ["PREFIX", "Published", "published_models", "resolve"]

PREFIX = "published:"


@dataclass(frozen=True)
class Published:
    name: str
    path: Path  # the bundle folder
    compact: str
    dataset: str
    params: int | None
    flops: int | None
    test_auc: float | None
    test_acc: float | None
    source: str


def _root() -> Path:
    return Path(str(resources.files("nas3d_tui.models")))


def published_models() -> list[Published]:
    """Every shipped published model, by name."""
    out = []
    for folder in sorted(p for p in _root().iterdir() if (p / GENOTYPE_FILE).is_file()):
        meta = read_json(folder / GENOTYPE_FILE)
        m = meta.get("metrics", {})
        out.append(Published(folder.name, folder, meta.get("compact", ""), meta.get("dataset", ""), m.get("params"),
                             m.get("flops"), m.get("test_auc"), m.get("test_acc"), str(m.get("source", ""))))
    return out


def resolve(text: str) -> str:
    """``published:<name>`` -> its bundle folder; anything else is returned unchanged.

    Raises:
        engine.errors.UserError: an unknown name (the message lists the shipped ones).
    """
    if not text.startswith(PREFIX):
        return text
    from engine.errors import UserError

    name = text[len(PREFIX):]
    known = {m.name: m for m in published_models()}
    if name not in known:
        names = ", ".join(PREFIX + n for n in known) or "none"
        raise UserError(f"no published model {name!r}; shipped: {names} (nas3d-tui models)")
    return str(known[name].path)
