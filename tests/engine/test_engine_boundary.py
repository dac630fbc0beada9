"""The engine never imports the UI: importing every engine module leaves Textual unloaded."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_engine_never_imports_textual_or_tui():
    code = (
        "import pkgutil, importlib, sys, engine\n"
        "for m in pkgutil.iter_modules(engine.__path__):\n"
        "    importlib.import_module('engine.' + m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'tui', 'textual_plotext'))\n"
        "print(','.join(bad))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_pure_engine_modules_do_not_import_torch():
    code = (
        "import sys\n"
        "import engine.space, engine.ode, engine.events, engine.profile, engine.leaderboard, engine.control, engine.rundir, engine.metrics\n"
        "print('torch' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
