"""Shared fixtures: where the published reference and the real data live.

Tests prefer the team's ``../shared`` folder beside the checkout (or
``$NAS3D_SHARED``); the reference genotype and its weights are also copied
into ``tests/fixtures/reference`` and the 28³ AdrenalMNIST3D ships inside the
package, so the fidelity tests run in a clone of the project alone.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tiny_search import TINY  # tests/ is on sys.path: pytest inserts conftest folders

REPO = Path(__file__).resolve().parent.parent
BUNDLED_REFERENCE = REPO / "tests" / "fixtures" / "reference"
BUNDLED_DATA = REPO / "nas3d_tui" / "data"


def shared_dir() -> Path | None:
    env = os.environ.get("NAS3D_SHARED")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared"]:
        if (candidate / "reference").is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    shared = shared_dir()
    if shared is not None:
        return shared / "reference"
    if (BUNDLED_REFERENCE / "adrenalmnist3d_model90.json").exists():
        return BUNDLED_REFERENCE
    pytest.skip("published reference not found: neither ../shared/reference nor tests/fixtures/reference")


@pytest.fixture(scope="session")
def reference(reference_dir: Path) -> dict:
    return json.loads((reference_dir / "adrenalmnist3d_model90.json").read_text())


@pytest.fixture(scope="session")
def data_root() -> Path:
    """A root holding the real AdrenalMNIST3D npz (28³ always; 64³ when ../shared has it)."""
    shared = shared_dir()
    if shared is not None and (shared / "data" / "medmnist" / "adrenalmnist3d.npz").exists():
        return shared / "data" / "medmnist"
    return BUNDLED_DATA


@pytest.fixture(scope="session")
def tiny_overrides() -> list[str]:
    return list(TINY)


@pytest.fixture(scope="session")
def tiny_profile():
    """Factory: the tiny profile with extra ``section.key=value`` overrides."""
    from engine.profile import load_profile

    def make(*extra: str):
        return load_profile("quick", TINY + list(extra))

    return make
