"""The README's commands: `make run` installs the dashboard only, `make test` adds the test extras, `make check`
is `make test`'s fast tier."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def dry_run(tmp_path: Path, target: str, *stamps: str) -> list[str]:
    """Every command ``make TARGET`` would run in a fresh clone holding ``stamps`` (dry run: nothing installed)."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    for stamp in stamps:
        (tmp_path / ".venv").mkdir(exist_ok=True)
        (tmp_path / ".venv" / stamp).touch()
    # A fresh clone's make: not the outer one's level and variables (under `make test`), nor a VENV or PYTHON set.
    outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "VENV", "PYTHON")
    env = {k: v for k, v in os.environ.items() if k not in outer}
    out = subprocess.run(["make", "-n", target], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60,
                         env=env)
    return out.stdout.splitlines()


def planned(tmp_path: Path, target: str, *stamps: str) -> list[str]:
    """The installs ``make TARGET`` would run in a fresh clone holding ``stamps``."""
    return [line for line in dry_run(tmp_path, target, *stamps) if "pip install" in line and "--upgrade pip" not in line]


def test_make_run_installs_only_the_dashboard(tmp_path: Path) -> None:
    assert planned(tmp_path, "run") == [".venv/bin/python -m pip install --quiet -e ."]


def test_make_test_installs_the_test_extras(tmp_path: Path) -> None:
    assert planned(tmp_path, "test") == [".venv/bin/python -m pip install --quiet -e '.[test]'"]


def test_each_extra_installs_once(tmp_path: Path) -> None:
    assert planned(tmp_path, "test", ".created", ".installed-test") == []
    assert planned(tmp_path, "run", ".created", ".installed-run") == []


# What the fast tier leaves out: every marker of a test that needs a process, a search, a browser, a cluster or a GPU.
SLOW_MARKERS = {"e2e", "browser", "ray", "slurm", "gpu", "slow"}


def test_make_check_installs_as_make_test_then_type_checks_and_leaves_out_every_slow_marker(tmp_path: Path) -> None:
    assert planned(tmp_path, "check") == planned(tmp_path, "test")  # the same stamp: the test extras, once
    mypy, pytest_line = dry_run(tmp_path, "check", ".created", ".installed-test")
    assert mypy == ".venv/bin/python -m mypy"
    argv = shlex.split(pytest_line)
    assert argv[:4] == [".venv/bin/python", "-m", "pytest", "-m"] and len(argv) == 5
    expression = argv[4]
    assert re.fullmatch(r"not \((\w+)( or \w+)*\)", expression), expression
    assert set(re.findall(r"\w+", expression)) - {"not", "or"} == SLOW_MARKERS
    registered = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert SLOW_MARKERS <= {line.split(":")[0] for line in registered}


def test_make_test_still_runs_everything_ci_runs(tmp_path: Path) -> None:
    """`make test` (and so CI) passes no marker expression: pytest's addopts leave out only `slow` and `gpu`."""
    assert dry_run(tmp_path, "test", ".created", ".installed-test") == [".venv/bin/python -m mypy",
                                                                         ".venv/bin/python -m pytest"]
    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert options["addopts"] == "-m 'not slow and not gpu'"
