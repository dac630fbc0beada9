"""``engine.runs.RunCache``: a list that refreshes reads again only the runs whose files changed (fast)."""
from __future__ import annotations

import json
from pathlib import Path

import engine.runs as runs
from engine.profile import load_profile
from report_runs import synthetic_lines, write_journal


def test_a_refresh_reads_again_only_the_run_that_changed(tmp_path: Path, monkeypatch) -> None:
    lines = synthetic_lines(final=False)
    for name in ("a", "b"):
        run_dir = write_journal(tmp_path / name, lines[:-1])  # no end yet, nobody drives it: crashed
        load_profile("quick").save(run_dir / "profile.toml")
    cache = runs.RunCache()
    first = runs.list_runs(tmp_path, cache=cache)
    assert [r.state for r in first] == ["crashed", "crashed"]
    read = []
    real = runs.inspect_run
    monkeypatch.setattr(runs, "inspect_run", lambda path, *driver: read.append(Path(path).name) or real(path, *driver))
    assert runs.list_runs(tmp_path, cache=cache) == first and read == []  # nothing changed: nothing read
    with open(tmp_path / "a" / "events.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(lines[-1]) + "\n")  # run a ends
    again = {r.name: r for r in runs.list_runs(tmp_path, cache=cache)}
    assert read == ["a"]
    assert again["a"].state == "finished" and again["b"].state == "crashed"
    assert again["a"] == runs.inspect_run(tmp_path / "a")  # the cache says what a fresh read says
