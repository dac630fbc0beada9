"""Fixtures of the report and serve tests; the run directories come from ``report_runs``."""
from __future__ import annotations

from pathlib import Path

import pytest

from report_runs import RealRun, make_real_runs, synthetic_lines, write_journal


@pytest.fixture
def synthetic():
    """Factory: ``synthetic(final=True, seeds=...)`` -> the journal's lines (dicts)."""
    return synthetic_lines


@pytest.fixture
def synthetic_run(tmp_path: Path) -> Path:
    """A run directory holding the synthetic journal, final phase included."""
    return write_journal(tmp_path / "run", synthetic_lines())


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory) -> dict[str, RealRun]:
    """Three tiny real runs (finished, stopped with SIGINT, killed with SIGKILL), made once per module."""
    return make_real_runs(tmp_path_factory.mktemp("real"))
