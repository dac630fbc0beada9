"""The README's two commands: `make run` installs the dashboard only, `make test` adds the test extras."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def planned(tmp_path: Path, target: str, *stamps: str) -> list[str]:
    """The commands ``make TARGET`` would run in a fresh clone holding ``stamps`` (dry run: nothing installed)."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    for stamp in stamps:
        (tmp_path / ".venv").mkdir(exist_ok=True)
        (tmp_path / ".venv" / stamp).touch()
    out = subprocess.run(["make", "-n", target], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60)
    return [line for line in out.stdout.splitlines() if "pip install" in line and "--upgrade pip" not in line]


def test_make_run_installs_only_the_dashboard(tmp_path: Path) -> None:
    assert planned(tmp_path, "run") == [".venv/bin/python -m pip install --quiet -e ."]


def test_make_test_installs_the_test_extras(tmp_path: Path) -> None:
    assert planned(tmp_path, "test") == [".venv/bin/python -m pip install --quiet -e '.[test]'"]


def test_each_extra_installs_once(tmp_path: Path) -> None:
    assert planned(tmp_path, "test", ".created", ".installed-test") == []
    assert planned(tmp_path, "run", ".created", ".installed-run") == []
