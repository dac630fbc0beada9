"""scripts/readme_figures.py: the README's dashboard capture and the report figures, remade from a finished run.

The script runs in this process (its ``main``): a traceback would fail the test.
The tests with a real run share one tiny search on a small own dataset, final
phase included (seconds); the bad-input ones read hand-written journals only.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tiny_search import TINY, small_dataset

REPO = Path(__file__).resolve().parents[1]
OLD_BLOCK = "  RUNNING  quick · an old capture\n│ rank ▲ │\n"
README = (
    "# nas3d-tui\n\nAn intro.\n\n## What you see\n\n"
    "The end of a `make run` on a 2-core CPU, at 120×40:\n\n"
    f"```\n{OLD_BLOCK}```\n\n## Commands\n\n```\nmake run\n```\n"
)


def _script():
    spec = importlib.util.spec_from_file_location("readme_figures", REPO / "scripts" / "readme_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


readme_figures = _script()


def _main(run_dir, readme: Path, img: Path, *extra: str) -> int:
    return readme_figures.main([str(run_dir), "--readme", str(readme), "--img", str(img), *extra])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A real tiny search that finished its budget and its final phase (a finalist's test AUC)."""
    from engine.profile import load_profile
    from engine.session import Session

    root = tmp_path_factory.mktemp("readme-run")
    data = small_dataset(root / "small.npz")
    profile = load_profile("quick", [*TINY, f"data.path='{data}'", "data.search_fraction=1.0", "search.budget=3",
                                     "final.top_k=1", "final.epochs=1", "final.seeds=[0]"])
    run_dir = root / "run"
    assert Session(profile, run_dir).run().state == "finished"
    return run_dir


def _best(run_dir: Path) -> int:
    last = json.loads((run_dir / "events.jsonl").read_text().splitlines()[-1])
    assert last["kind"] == "run_finished"
    return last["best_candidate_id"]


def _block(readme: str) -> str:
    return readme.split("## What you see", 1)[1].split("```\n", 2)[1]


@pytest.mark.e2e
def test_the_capture_replaces_the_block_and_check_tells_stale_from_fresh(finished_run, tmp_path, capsys):
    readme, img = tmp_path / "README.md", tmp_path / "img"
    readme.write_text(README, encoding="utf-8")
    img.mkdir()

    assert _main(finished_run, readme, img, "--check") == 1  # the old block, no figures
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "README.md" in err and "quick-pareto-flops.png" in err
    assert readme.read_text(encoding="utf-8") == README and not any(img.iterdir())  # --check writes nothing

    assert _main(finished_run, readme, img) == 0
    text = readme.read_text(encoding="utf-8")
    block = _block(text)
    head, tail = README.split(OLD_BLOCK)
    assert text.startswith(head) and text.endswith(tail)  # the rest of the README byte for byte
    lines = block.splitlines()
    assert len(lines) == 40 and max(len(line) for line in lines) <= 120
    assert all(line == line.rstrip() for line in lines)
    assert "FINISHED" in lines[0]
    assert any("rank" in line and "fitness" in line and "test AUC" in line for line in lines)  # the leaderboard
    best = f"#{_best(finished_run)}"
    first_row = next(line for line in lines if line.startswith("│       1  "))
    assert best in first_row and "±" not in first_row and any(c.isdigit() for c in first_row.split()[-2])
    assert f"{best} best so far" in block  # the Cell panel shows the best candidate
    for name in ("quick-pareto-flops.png", "quick-fitness-by-generation.png"):
        assert (img / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert _main(finished_run, readme, img, "--check") == 0  # fresh
    assert readme.read_text(encoding="utf-8") == text

    (img / "quick-fitness-by-generation.png").write_bytes(b"an older figure")
    capsys.readouterr()
    assert _main(finished_run, readme, img, "--check") == 1
    err = capsys.readouterr().err
    assert "quick-fitness-by-generation.png" in err and "README.md" not in err


def _journal(run_dir: Path, *events: dict) -> Path:
    run_dir.mkdir()
    lines = [{"ts": 1.0, "kind": "log", "message": "a line"}, *events]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    return run_dir


def _finished(reason: str) -> dict:
    return {"ts": 2.0, "kind": "run_finished", "reason": reason, "trained": 1, "seconds": 1.0}


@pytest.mark.parametrize("case, words", [
    ("missing", "no run directory"),
    ("empty", "not a run directory"),
    ("running", "not finished"),
    ("stopped", "stopped"),
    ("no final", "no final-phase result"),
    ("no block", "What you see"),
])
def test_bad_input_is_one_line_and_exit_2(case, words, tmp_path, capsys):
    readme, img = tmp_path / "README.md", tmp_path / "img"
    readme.write_text(README if case != "no block" else "# nas3d-tui\n\nNo capture.\n", encoding="utf-8")
    img.mkdir()
    run_dir = tmp_path / "run"
    if case == "empty":
        run_dir.mkdir()
    elif case == "running":
        _journal(run_dir)
    elif case == "stopped":
        _journal(run_dir, _finished("stopped"))
    elif case in ("no final", "no block"):
        _journal(run_dir, _finished("budget"))
    assert _main(run_dir, readme, img) == 2
    assert _main(run_dir, readme, img, "--check") == 2
    out = capsys.readouterr()
    lines = out.err.splitlines()
    assert len(lines) == 2 and lines[0] == lines[1] and words in lines[0] and "Traceback" not in out.err
    assert lines[0].startswith("readme_figures: error: ")
    assert readme.read_text(encoding="utf-8").startswith("# nas3d-tui") and not any(img.iterdir())
