"""The README fits (issue 31) and every link between the README and docs/ resolves (scripts/check_doc_links.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_readme_is_small_and_every_doc_link_and_repository_path_resolves():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "check_doc_links.py")], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert " 0 broken" in out.stdout
