"""``nas3d-tui report RUN_A RUN_B [...] -o DIR``: the comparison, on synthetic journals (fast).

The real-run comparison, opened in headless Chromium, is in ``test_many_runs``.
"""
from __future__ import annotations

import base64
import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from matplotlib.image import imread

from engine.errors import UserError
from nas3d_tui.report import read_run, summarise
from nas3d_tui.report.compare import MISSING, anytime_seconds, compare, labels, profile_diff
from nas3d_tui.report.compare_build import build_comparison
from nas3d_tui.report.compare_figures import COMPARE_CHARTS
from nas3d_tui.report.figures import CHART_SIZE, pixel_size
from report_runs import T0, synthetic_lines, write_journal

pytestmark = pytest.mark.timeout(600)


def _variant(seed: int, **search) -> list[dict]:
    """The synthetic journal with another random seed and ``search`` keys changed in its profile."""
    lines = synthetic_lines(seed=seed)
    for line in lines:
        if line["kind"] == "run_started":
            profile = {k: dict(v) for k, v in line["profile"].items()}
            profile["search"].update(search)
            line["profile"] = profile
    return lines


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("compare")
    return (write_journal(root / "ode" / "run", _variant(3)),
            write_journal(root / "random" / "run", _variant(5, strategy="random", jumping_rate=0.0)))


@pytest.fixture(scope="module")
def written(two_runs, tmp_path_factory):
    return build_comparison(list(two_runs), tmp_path_factory.mktemp("out") / "cmp")


class TestComparison:
    def test_profile_diff_keeps_only_the_keys_that_differ(self) -> None:
        a = {"run": {"seed": 1, "name": "x"}, "search": {"budget": 8}}
        b = {"run": {"seed": 2, "name": "x"}, "search": {"budget": 8, "strategy": "random"}}
        assert profile_diff([a, b]) == [("run.seed", (1, 2)), ("search.strategy", (MISSING, "random"))]
        assert profile_diff([a, a]) == []

    def test_labels_are_short_and_distinct(self) -> None:
        assert labels([Path("runs/a"), Path("runs/b")]) == ["a", "b"]
        assert labels([Path("ode/run"), Path("random/run")]) == ["ode/run", "random/run"]
        assert labels([Path("x/ode/run"), Path("y/ode/run")]) == ["ode/run (1)", "ode/run (2)"]

    def test_run_time_leaves_out_the_time_the_run_was_down(self, two_runs) -> None:
        _, events = read_run(two_runs[0])
        seconds = anytime_seconds(events)
        s = summarise(events)
        assert len(seconds) == len(s.anytime)
        assert seconds == sorted(seconds) and seconds[0] > 0
        # the synthetic run was down an hour between its crash and its resume: none of it counts
        assert seconds[-1] < 3600 and seconds[-1] <= s.search_seconds
        assert events[-1].ts - T0 > 3600

    def test_the_documents(self, written, two_runs) -> None:
        c = written.comparison
        assert [r.label for r in c.runs] == ["ode/run", "random/run"]
        assert [f.name for f in written.figures] == list(COMPARE_CHARTS)
        html = written.html.read_text(encoding="utf-8")
        md = written.markdown.read_text(encoding="utf-8")
        out = written.html.parent
        uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
        assert len(uris) == len(COMPARE_CHARTS)
        for f, uri in zip(written.figures, uris, strict=True):
            assert imread(f.png).shape[:2] == pixel_size(CHART_SIZE)[::-1]
            assert base64.b64decode(uri) == f.png.read_bytes()
            assert ET.parse(f.svg).getroot().tag.endswith("svg")
            assert f"]({f.png.relative_to(out).as_posix()})" in md
        assert "<script" not in html.lower() and not re.search(r'(src|href)="(https?:)?//', html)
        for doc in (html, md):
            # the finalists of each run, mean ± std over their seeds
            for r in c.runs:
                for f in r.summary.finals:
                    assert f"{f.test_auc_mean:.4f} ± {f.test_auc_std:.4f}" in doc
                    assert f"{f.test_acc_mean:.4f} ± {f.test_acc_std:.4f}" in doc
            # only the differing profile keys
            assert "search.strategy" in doc and "search.jumping_rate" in doc
            assert "search.budget" not in doc and "run.seed" not in doc
        assert [k for k, _ in c.profile_diff] == ["search.jumping_rate", "search.strategy"]

    def test_each_run_draws_in_its_own_colour(self, written) -> None:
        import numpy as np

        from nas3d_tui.report.compare_figures import COLOURS

        for f in written.figures:
            rgb = imread(f.png)[..., :3]
            for colour in COLOURS[:2]:
                target = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
                assert int(np.all(np.abs(rgb - target) < 0.05, axis=-1).sum()) > 30, (f.name, colour)

    def test_different_metrics_are_noted(self, two_runs) -> None:
        runs = []
        for k, d in enumerate(two_runs):
            journal, events = read_run(d)
            if k:
                events = [dataclasses.replace(e, fitness="val_auc") if e.kind == "run_started" else e
                          for e in events]
            runs.append((d, journal, events, summarise(events)))
        c = compare(runs)
        assert c.fitness_metric == "fitness" and any("val_acc, val_auc" in n for n in c.notes)


class TestBadInput:
    def test_one_line_errors_naming_the_problem(self, two_runs, tmp_path: Path) -> None:
        (tmp_path / "a-file").write_text("x")
        cases = [
            ([two_runs[0]], tmp_path / "o1", "two or more runs"),
            ([two_runs[0], two_runs[0]], tmp_path / "o2", "give each run once"),
            ([two_runs[0], tmp_path / "nowhere"], tmp_path / "o3", "nowhere"),
            (list(two_runs), tmp_path / "a-file", "a-file"),
            (list(two_runs), two_runs[1], "a run directory"),
        ]
        for dirs, out, named in cases:
            with pytest.raises(UserError) as info:
                build_comparison(dirs, out)
            assert "\n" not in str(info.value) and named in str(info.value)

    @pytest.mark.e2e  # seconds of CPU in process (the marker's rule): not in `make check`
    def test_the_command(self, two_runs, tmp_path: Path, capsys) -> None:
        from nas3d_tui.cli import main

        a, b = map(str, two_runs)
        assert main(["report", a, b]) == 2
        err = capsys.readouterr().err
        assert "-o DIR" in err and err.count("\n") == 1
        assert main(["report", a, b, "-o", str(tmp_path / "x"), "--top", "2"]) == 2
        assert "--top" in capsys.readouterr().err
        assert main(["report", a, b, "-o", str(tmp_path / "cmp")]) == 0
        out = capsys.readouterr().out
        assert out.split() == [str(tmp_path / "cmp" / "comparison.html"), str(tmp_path / "cmp" / "comparison.md")]
        assert main(["report", a, "-o", str(tmp_path / "one"), "--top", "0"]) == 0  # one run: as before
        assert (tmp_path / "one" / "report.html").exists()
