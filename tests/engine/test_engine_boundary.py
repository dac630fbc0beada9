"""The engine's boundaries: it never imports the UI, pure modules never import torch,
its import graph has no cycle, and the import-linter contracts in pyproject.toml hold."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PURE = (
    "engine.space", "engine.ode", "engine.random_search", "engine.strategy", "engine.events", "engine.bus", "engine.profile",
    "engine.leaderboard", "engine.control", "engine.rundir", "engine.metrics", "engine.records", "engine.catalog",
    "engine.errors", "engine.atomic", "engine.datafile", "engine.nifti", "engine.nifti.folder_import", "engine.journal",
    "engine.runs", "engine.runlock", "engine.search_state", "engine.jsonfile", "engine.bundle_files", "engine.fastjson", "engine.operations",
    "engine.schema",
)


@pytest.mark.e2e
def test_engine_never_imports_textual_or_tui():
    code = (
        "import pkgutil, importlib, sys, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'tui', 'textual_plotext', 'nas3d_tui'))\n"
        "print(','.join(bad))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


@pytest.mark.e2e
def test_pure_engine_modules_do_not_import_torch():
    code = "import sys\n" + "".join(f"import {m}\n" for m in PURE) + "print('torch' in sys.modules)\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_engine_import_graph_has_no_cycle():
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (the test extra)")
    graph = grimp.build_graph("engine")
    modules = [m for m in graph.modules if m.startswith("engine")]
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i.startswith("engine")} for m in modules}
    assert _cycles(edges) == []
    # the oracle itself finds a cycle when there is one
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.e2e
def test_import_linter_contracts_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(lint).exists():
        pytest.skip("import-linter is not installed (the test extra)")
    r = subprocess.run([lint], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "broken" in r.stdout and " 0 broken" in r.stdout
