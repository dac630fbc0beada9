"""The dashboard never imports torch, directly or through the engine modules it uses."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e  # a Python subprocess imports the dashboard

MODULES = [
    "tui",
    "tui.app",
    "tui.attach",
    "tui.replay",
    "tui.handle",
    "tui.state",
    "tui.cellgraph",
    "tui.widgets",
    "tui.screens",
]


def test_tui_does_not_import_torch() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "from tui.cellgraph import render_cell\n"
        "render_cell([[0, 1], [0, 0]], [])\n"  # the lazy operation-table import as well
        "render_cell([[0, 1, 1], [0, 0, 1], [0, 0, 0]], [3])\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not bad, bad[:5]\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
