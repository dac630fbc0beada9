"""``nas3d-tui report``: the summary, the figures, the two documents, bad input, and real runs.

Fast tests work on the synthetic journal (``conftest.synthetic_lines``); the
real-run tests share three tiny searches made once for this module
(finished, stopped with SIGINT, killed with SIGKILL); a browser test opens a
report in headless Chromium. ``--table`` (a tabular benchmark's optimum and
random-search expectation on the anytime curve) is tested on a table of the
synthetic run and on one built from the finished real run.
"""
from __future__ import annotations

import base64
import json
import re
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from report_runs import REPO, TABLE_OPTIMUM, synthetic_events, synthetic_lines, write_journal, write_synthetic_table
from engine import events as ev
from engine.bench_table import TableError, random_expectation, read_table
from engine.errors import UserError
from headless_chromium import screenshot
from nas3d_tui.report import build_report, read_run, summarise
from nas3d_tui.report.cellplot import layered_layout, node_labels
from nas3d_tui.report.figures import CELL_SIZE, CHART_SIZE, CHARTS, pixel_size
from nas3d_tui.report.paper import REFERENCE_ROWS, reference_rows
from nas3d_tui.report.summary import flatten_profile, pareto_mask, rank_candidates
from tui.fmt import mb

pytestmark = pytest.mark.timeout(300)

TOP = 3


def finished_events(events):
    return [e for e in events if isinstance(e, ev.CandidateFinished)]


def run_report(*argv: str) -> subprocess.CompletedProcess:
    """``nas3d-tui report ARGV`` through the command module, as the command line runs it."""
    return subprocess.run([sys.executable, str(Path(__file__).with_name("command.py")), "report", *argv],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


# -- the summary (pure) ----------------------------------------------------------------------

class TestSummary:
    def test_ranking_uses_fitness_then_val_auc_then_flops_then_id(self) -> None:
        base = dict(generation=0, phase="init", status="ok", key="k", genotype={}, vector=[], worker="w",
                    trained=1, budget=9, kind="candidate_finished", ts=1.0)
        rows = [
            dict(candidate_id=0, fitness=0.8, val_auc=0.90, flops=100),
            dict(candidate_id=1, fitness=0.8, val_auc=0.95, flops=300),
            dict(candidate_id=2, fitness=0.8, val_auc=0.95, flops=200),
            dict(candidate_id=3, fitness=0.9, val_auc=0.10, flops=900),
            dict(candidate_id=4, fitness=0.8, val_auc=0.95, flops=200),
            dict(candidate_id=5, fitness=0.95, val_auc=0.99, flops=1, status="duplicate", duplicate_of=3),
        ]
        events = [ev.event_from_dict({**base, "key": f"k{r['candidate_id']}", **r}) for r in rows]
        assert [e.candidate_id for e in rank_candidates(events)] == [3, 2, 4, 1, 0]

    def test_pareto_mask_keeps_exactly_the_non_dominated_points(self) -> None:
        rng = np.random.default_rng(0)
        for _ in range(20):
            n = int(rng.integers(1, 40))
            costs = rng.integers(1, 12, n).astype(float).tolist()  # small ranges: ties in both axes
            fits = (rng.integers(0, 8, n) / 8).tolist()
            mask = pareto_mask(costs, fits)
            for i in range(n):
                beaten = [j for j in range(n) if costs[j] <= costs[i] and fits[j] >= fits[i]
                          and (costs[j] < costs[i] or fits[j] > fits[i])]
                assert mask[i] == (not beaten)
            assert any(mask)
            cheapest_best = min(range(n), key=lambda i: (costs[i], -fits[i]))
            assert mask[cheapest_best]

    def test_counts_anytime_curve_and_peak_memory(self) -> None:
        events = synthetic_events()
        s = summarise(events)
        last = {}
        for e in finished_events(events):
            last[e.candidate_id] = e
        for status in ("ok", "duplicate", "infeasible", "oom", "failed"):
            assert s.counts[status] == sum(e.status == status for e in last.values())
        assert s.trained == max(e.trained for e in finished_events(events))
        ok = [e for e in finished_events(events) if e.status == "ok"]
        assert [p.candidate_id for p in s.anytime] == [e.candidate_id for e in ok]
        assert [p.trained for p in s.anytime] == [e.trained for e in ok]
        assert [p.best for p in s.anytime] == list(np.maximum.accumulate([e.fitness for e in ok]))
        peaks = [e.peak_memory_mb for e in finished_events(events) if e.peak_memory_mb is not None]
        used = [e.gpu_mem_used_mb for e in events if isinstance(e, ev.ResourceSample)]
        assert s.peak_memory_mb == max(peaks + used)

    def test_wall_time_per_phase_leaves_out_the_time_the_run_was_down(self) -> None:
        events = synthetic_events()
        s = summarise(events)
        final_at = next(e.ts for e in events if isinstance(e, ev.FinalStarted))
        starts = [i for i, e in enumerate(events) if isinstance(e, ev.RunStarted)]
        assert len(starts) == 2 and s.segments == 2
        down = events[starts[1]].ts - events[starts[1] - 1].ts
        assert down >= 3600
        assert s.search_seconds == pytest.approx(final_at - events[0].ts - down)
        assert s.final_seconds == pytest.approx(events[-1].ts - final_at)

    def test_final_metrics_are_mean_and_std_over_seeds(self) -> None:
        events = synthetic_events(seeds=(0, 1, 2))
        s = summarise(events)
        finals = [e for e in events if isinstance(e, ev.FinalResult)]
        started = next(e for e in events if isinstance(e, ev.FinalStarted))
        assert [f.candidate_id for f in s.finals] == started.candidate_ids
        for row in s.finals:
            mine = [f for f in finals if f.candidate_id == row.candidate_id]
            assert row.seeds == (0, 1, 2)
            assert row.test_auc_mean == pytest.approx(statistics.fmean(f.test_auc for f in mine))
            assert row.test_auc_std == pytest.approx(statistics.stdev(f.test_auc for f in mine))
            assert row.test_acc_std == pytest.approx(statistics.stdev(f.test_acc for f in mine))
        single = summarise(synthetic_events(seeds=(7,)))
        assert all(r.test_auc_std is None and r.seeds == (7,) for r in single.finals)

    def test_outcome_of_each_ending(self) -> None:
        events = synthetic_events()
        assert summarise(events).outcome.startswith("finished") and summarise(events).ended
        cut = events[:-1]
        assert not summarise(cut).ended and "did not end" in summarise(cut).outcome
        stopped = cut + [ev.RunFinished(reason="stopped", trained=1, seconds=1.0)]
        assert "stopped" in summarise(stopped).outcome
        failed = cut + [ev.RunFailed(error="RuntimeError: boom")]
        assert summarise(failed).outcome == "failed: RuntimeError: boom"

    def test_flatten_profile(self) -> None:
        assert flatten_profile({"run": {"seed": 1, "name": "x"}, "final": {"seeds": [0, 1]}}) == [
            ("run.seed", 1), ("run.name", "x"), ("final.seeds", [0, 1])]


class TestPaper:
    def test_adrenal_rows_are_the_published_ones(self) -> None:
        rows = {r.label: (r.test_auc, r.test_acc) for r in reference_rows("AdrenalMNIST3D")}
        assert rows == {"paper: Ours #1* (average)": (0.891, 0.840),
                        "paper: released weights of model 90": (0.884, 0.842)}
        assert all("Table 2" in r.source or "weights" in r.source for r in REFERENCE_ROWS["adrenalmnist3d"])

    def test_no_rows_invented_for_other_datasets(self) -> None:
        assert set(REFERENCE_ROWS) == {"adrenalmnist3d"}
        assert reference_rows("organmnist3d") == () and reference_rows("my-own-data") == ()


class TestCellLayout:
    CELLS = [
        [[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
        [[0, 1, 1], [0, 0, 1], [0, 0, 0]],
        [[1 if j > i else 0 for j in range(7)] for i in range(7)],
    ]

    @staticmethod
    def longest_path(matrix, j: int) -> int:
        preds = [i for i in range(j) if matrix[i][j]]
        return max((TestCellLayout.longest_path(matrix, i) + 1 for i in preds), default=0)

    @pytest.mark.parametrize("matrix", CELLS)
    def test_layers_are_longest_paths_and_the_output_is_alone_at_the_bottom(self, matrix) -> None:
        placed = layered_layout(matrix)
        n = len(matrix)
        assert [p.node for p in placed] == list(range(n))
        for p in placed[:-1]:
            assert p.layer == self.longest_path(matrix, p.node)
        out = placed[-1]
        assert out.layer > max(p.layer for p in placed[:-1])
        for i in range(n):
            for j in range(n):
                if matrix[i][j]:
                    assert placed[i].layer < placed[j].layer  # every edge points down
        spots = [(p.layer, p.x) for p in placed]
        assert len(set(spots)) == n  # no two boxes on one spot

    def test_labels_name_the_operations(self) -> None:
        from engine.space import OPERATIONS

        assert node_labels(4, [0, 14]) == ["input", OPERATIONS[0].short, OPERATIONS[14].short, "output"]

    def test_a_malformed_matrix_is_refused(self) -> None:
        with pytest.raises(ValueError):
            layered_layout([[0, 1], [0]])


# -- the documents ---------------------------------------------------------------------------

def check_png(path: Path, size: tuple[int, int]) -> None:
    image = imread(path)
    assert image.shape[1] == size[0] and image.shape[0] == size[1], f"{path.name}: {image.shape}"
    assert float(np.std(image[..., :3])) > 0.02, f"{path.name} is blank"


def check_documents(files, top: int) -> None:
    """Every figure exists as a decodable PNG of its size and an SVG; both documents reference them."""
    names = list(CHARTS) + [f"cell_rank{k}" for k in range(1, min(top, len(files.summary.ranked)) + 1)]
    assert [f.name for f in files.figures] == names
    html = files.html.read_text(encoding="utf-8")
    md = files.markdown.read_text(encoding="utf-8")
    out = files.html.parent
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(uris) == len(names)
    for f, uri in zip(files.figures, uris, strict=True):
        check_png(f.png, pixel_size(CELL_SIZE if f.name.startswith("cell_") else CHART_SIZE))
        assert f.png.parent == out / "figures"
        assert base64.b64decode(uri) == f.png.read_bytes()  # the page embeds exactly the file beside it
        assert ET.parse(f.svg).getroot().tag.endswith("svg")
        rel_png, rel_svg = f.png.relative_to(out).as_posix(), f.svg.relative_to(out).as_posix()
        assert f'href="{rel_svg}"' in html and f'href="{rel_png}"' in html
        assert f"]({rel_png})" in md and f"]({rel_svg})" in md
    # offline: nothing is fetched from elsewhere, no scripts
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)="(https?:)?//', html)


@pytest.fixture(scope="module")
def synthetic_report(tmp_path_factory):
    """The report of the synthetic run, written once for this module."""
    root = tmp_path_factory.mktemp("synthetic")
    return build_report(write_journal(root / "run", synthetic_lines()), root / "out", top_k=TOP)


class TestDocuments:
    def test_synthetic_run(self, synthetic_report) -> None:
        files = synthetic_report
        check_documents(files, TOP)
        s = files.summary
        html = files.html.read_text(encoding="utf-8")
        md = files.markdown.read_text(encoding="utf-8")
        for doc in (html, md):
            for key, _ in flatten_profile(synthetic_lines()[0]["profile"]):
                assert key in doc
            for row in reference_rows("adrenalmnist3d"):
                assert row.label in doc
            for f in s.finals:
                assert f"{f.test_auc_mean:.4f} ± {f.test_auc_std:.4f}" in doc
                assert f"{f.test_acc_mean:.4f} ± {f.test_acc_std:.4f}" in doc
            for e in s.top(TOP):
                assert f"#{e.candidate_id}" in doc and e.genotype["compact"] in doc
            assert "cuda:0" in doc and "2 (1 resume)" in doc
            assert "1 oom" in doc and "1 infeasible" in doc and "1 duplicate" in doc and "1 failed" in doc
            assert mb(9000.0) in doc  # the peak of the candidate that ran out of memory

    def test_a_torn_last_line_is_skipped(self, tmp_path: Path) -> None:
        lines = synthetic_lines(final=False)[:-1]
        whole = summarise(read_run(write_journal(tmp_path / "whole", lines))[1])
        torn = build_report(write_journal(tmp_path / "torn", lines, torn='{"kind":"epoch_finished","candi'),
                            tmp_path / "b", top_k=1)
        assert torn.summary == whole  # the torn line changes nothing
        assert "did not end" in torn.summary.outcome
        check_documents(torn, 1)

    def test_an_early_journal_still_makes_every_figure(self, tmp_path: Path) -> None:
        lines = synthetic_lines()[:3]  # run started, a sample, a candidate started: nothing trained yet
        files = build_report(write_journal(tmp_path / "early", lines), tmp_path / "out")
        assert files.summary.ranked == () and files.summary.generations == ()
        check_documents(files, 5)
        assert "No candidate was trained" in files.markdown.read_text(encoding="utf-8")

    @pytest.mark.e2e  # seconds of CPU in process (the marker's rule): not in `make check`
    def test_a_second_report_leaves_no_stale_cells(self, synthetic_run: Path, tmp_path: Path) -> None:
        out = tmp_path / "out"
        build_report(synthetic_run, out, top_k=2)
        build_report(synthetic_run, out, top_k=1)
        assert sorted(p.name for p in (out / "figures").glob("cell_rank*")) == ["cell_rank1.png", "cell_rank1.svg"]

    def test_default_output_is_inside_the_run(self, synthetic_run: Path) -> None:
        files = build_report(synthetic_run, top_k=0)
        assert files.html == synthetic_run / "report" / "report.html"
        assert files.markdown.exists()


class TestBadInput:
    def test_each_bad_path_is_a_one_line_user_error_naming_it(self, tmp_path: Path, synthetic_run: Path) -> None:
        (tmp_path / "empty").mkdir()
        (tmp_path / "dirjournal" / "events.jsonl").mkdir(parents=True)
        (tmp_path / "a-file").write_text("x")
        blank = write_journal(tmp_path / "blank", [])
        lines = synthetic_lines(final=False)
        corrupt = write_journal(tmp_path / "corrupt", lines[:5] + [{"kind": "candidate_finished", "status": 3}]
                                + lines[5:])
        cases = [
            (tmp_path / "missing", None, "missing"),
            (tmp_path / "empty", None, "empty"),
            (tmp_path / "dirjournal", None, "events.jsonl"),
            (tmp_path / "a-file", None, "a-file"),
            (blank, None, "events.jsonl"),
            (corrupt, None, "line 6"),  # valid JSON, not an event: corrupt, not torn
            (synthetic_run, tmp_path / "a-file", "a-file"),
            (synthetic_run, tmp_path / "a-file" / "below", "a-file"),
        ]
        for run_dir, out, named in cases:
            with pytest.raises(UserError) as info:
                build_report(run_dir, out)
            message = str(info.value)
            assert "\n" not in message and named in message, message

    @pytest.mark.e2e
    def test_the_command_exits_2_with_one_line(self, tmp_path: Path) -> None:
        result = run_report(str(tmp_path / "nowhere"))
        assert result.returncode == 2
        assert result.stderr.strip().count("\n") == 0 and "nowhere" in result.stderr
        assert "Traceback" not in result.stderr

    @pytest.mark.e2e
    def test_the_command_writes_both_documents_without_torch_or_textual(self, synthetic_run: Path,
                                                                        tmp_path: Path) -> None:
        out = tmp_path / "out"
        code = (
            "import runpy, sys\n"
            f"sys.argv = ['command.py', 'report', {str(synthetic_run)!r}, '-o', {str(out)!r}, '--top', '1']\n"
            "try:\n"
            f"    runpy.run_path({str(Path(__file__).with_name('command.py'))!r}, run_name='__main__')\n"
            "except SystemExit as exc:\n"
            "    assert exc.code == 0, exc.code\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'textual'))\n"
            "assert not bad, bad[:5]\n"
        )
        result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [str(out / "report.html"), str(out / "report.md")]
        assert (out / "figures" / "cell_rank1.png").exists()

    @pytest.mark.e2e
    def test_the_real_command_line_when_wired(self, tmp_path: Path) -> None:
        from nas3d_tui.commands import COMMANDS

        if "report" not in COMMANDS:
            pytest.skip("nas3d_tui.commands.COMMANDS does not list report yet")
        result = subprocess.run([sys.executable, "-m", "nas3d_tui", "report", str(tmp_path / "nowhere")],
                                cwd=REPO, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and "nowhere" in result.stderr and "Traceback" not in result.stderr


# -- a table's optimum and random-search expectation (--table) ----------------------------------

@pytest.fixture(scope="module")
def table_report(tmp_path_factory):
    """The synthetic run's report with a table of its cells and three it never found, written once."""
    root = tmp_path_factory.mktemp("table")
    table = write_synthetic_table(root / "table.json")
    return build_report(write_journal(root / "run", synthetic_lines()), root / "out", top_k=TOP, table=table), table


class TestTableOverlay:
    def test_the_anytime_curve_shows_the_optimum_and_the_expectation(self, table_report, synthetic_report) -> None:
        files, table_path = table_report
        check_documents(files, TOP)  # every figure written, the documents reference them
        overlay = files.table
        cells = read_table(table_path).cells
        told = [entries[0].record.told_fitness for entries in cells.values()]
        assert overlay is not None and overlay.cells == len(cells) == len(told)
        assert overlay.optimum == TABLE_OPTIMUM == max(told)  # the pruned cell's 0.99 is told 0
        assert list(overlay.expectation) == random_expectation(told)
        caption = next(f.caption for f in files.figures if f.name == "anytime")
        assert "optimum of the table table.json" in caption and f"{TABLE_OPTIMUM:.4f}" in caption
        assert "drawn uniformly at random without replacement" in caption
        assert "each distinct cell equally likely" in caption and "only approximates" in caption
        last = files.summary.anytime[-1].trained
        assert f"{overlay.expected_at(last):.4f} after {last}" in caption
        plain = next(f for f in synthetic_report.figures if f.name == "anytime")
        drawn = next(f for f in files.figures if f.name == "anytime")
        assert drawn.png.read_bytes() != plain.png.read_bytes()  # the lines are drawn, not only captioned
        html = files.html.read_text(encoding="utf-8")
        md = files.markdown.read_text(encoding="utf-8")
        for doc in (html, md):
            assert str(table_path) in doc and "only approximates" in doc
            assert f"{overlay.cells} cells, optimum val_acc {TABLE_OPTIMUM:.4f}" in doc
        assert f"and the table {table_path}" in html.split("<footer>")[1] and f"and the table `{table_path}`" in md

    def test_a_bad_table_or_another_fitness_is_one_line_and_writes_nothing(self, synthetic_run: Path,
                                                                          tmp_path: Path) -> None:
        (tmp_path / "not.json").write_text("{")
        (tmp_path / "other.json").write_text(json.dumps({"format": "something else"}))
        auc = write_synthetic_table(tmp_path / "auc.json", fitness="val_auc")
        cases = [(tmp_path / "missing.json", "no table file at"), (tmp_path / "not.json", "not JSON"),
                 (tmp_path / "other.json", "format"), (auc, "search.fitness = 'val_auc'; the run's fitness is 'val_acc'")]
        for table, message in cases:
            with pytest.raises(TableError) as info:
                build_report(synthetic_run, tmp_path / "out", table=table)
            assert message in str(info.value) and "\n" not in str(info.value), str(info.value)
            assert not (tmp_path / "out").exists()

    @pytest.mark.e2e
    def test_the_command_exits_2_with_one_line_for_a_bad_table_and_for_a_comparison(self, synthetic_run: Path,
                                                                                    tmp_path: Path) -> None:
        auc = write_synthetic_table(tmp_path / "auc.json", fitness="val_auc")
        for argv, said in (([str(synthetic_run), "--table", str(auc)], "search.fitness"),
                           ([str(synthetic_run), str(synthetic_run), "-o", str(tmp_path / "c"), "--table", str(auc)],
                            "leave it out of a comparison")):
            result = run_report(*argv)
            assert result.returncode == 2, result.stderr
            assert result.stderr.strip().count("\n") == 0 and said in result.stderr, result.stderr
            assert "Traceback" not in result.stderr
        assert not (synthetic_run / "report").exists() and not (tmp_path / "c").exists()


# -- real runs -------------------------------------------------------------------------------

@pytest.mark.e2e
class TestRealRuns:
    @pytest.mark.parametrize("ending", ["finished", "stopped", "killed"])
    def test_report_of_a_real_run(self, real_runs, ending: str, tmp_path: Path) -> None:
        run = real_runs[ending]
        journal, events = read_run(run.run_dir)
        files = build_report(run.run_dir, tmp_path / "report")
        s = files.summary
        check_documents(files, 5)
        ok = {e.candidate_id for e in finished_events(events) if e.status == "ok"}
        assert s.counts["ok"] == len(ok) >= 1
        first_ok = list(dict.fromkeys(e.candidate_id for e in finished_events(events) if e.status == "ok"))
        assert [p.candidate_id for p in s.anytime] == first_ok
        assert s.devices == ("cpu",) and s.dataset == "adrenalmnist3d"
        assert s.profile["search"]["budget"] == events[0].profile["search"]["budget"]
        expected = {"finished": "finished (budget)", "stopped": "stopped, search state saved",
                    "killed": "did not end"}[ending]
        assert expected in s.outcome
        assert expected in files.markdown.read_text(encoding="utf-8")

    def test_report_with_a_table_of_its_own_run(self, real_runs, tmp_path: Path) -> None:
        """``bench table`` of the finished run, then ``report --table``: the run met the optimum (it trained every
        cell it holds), and after all its cells random search expects that optimum too."""
        from nas3d_tui.cli import main as cli

        run_dir = real_runs["finished"].run_dir
        table = tmp_path / "table.json"
        assert cli(["bench", "table", str(run_dir), "-o", str(table)]) == 0
        result = run_report(str(run_dir), "-o", str(tmp_path / "report"), "--table", str(table))
        assert result.returncode == 0, result.stderr
        files = build_report(run_dir, tmp_path / "again", table=table)
        s, overlay = files.summary, files.table
        told = [e[0].record.told_fitness for e in read_table(table).cells.values()]
        assert overlay.optimum == max(told) and overlay.expectation[-1] == max(told)
        assert overlay.expectation[0] == pytest.approx(statistics.fmean(told), abs=1e-12)
        if s.counts["pruned"] == 0:
            assert overlay.optimum == s.anytime[-1].best
        caption = next(f.caption for f in files.figures if f.name == "anytime")
        assert "optimum of the table table.json" in caption and "only approximates" in caption
        assert (tmp_path / "report" / "figures" / "anytime.png").exists()
        assert str(table) in (tmp_path / "report" / "report.md").read_text(encoding="utf-8")


# -- in a browser ----------------------------------------------------------------------------

@pytest.mark.browser
def test_the_report_renders_in_chromium(synthetic_report, tmp_path: Path) -> None:
    files = synthetic_report
    shot = tmp_path / "report.png"
    screenshot(files.html.as_uri(), shot, size=(1280, 2000))
    image = imread(shot)
    assert image.shape[:2] == (2000, 1280)
    rgb = image[..., :3]
    assert float(np.std(rgb)) > 0.05  # not a blank page
    # the charts' colours are on the page: the page shows the embedded figures
    colours = {tuple(int(round(c * 255)) for c in px) for px in rgb[::4, ::4].reshape(-1, 3)}
    assert len(colours) > 200
    green = np.all(np.abs(rgb - np.array([0x15, 0x80, 0x3D]) / 255) < 0.06, axis=-1)  # the "best" line
    assert int(green.sum()) > 50


class TestMajorityClassNote:
    """The report says plainly when a finalist is no better than always answering the majority class."""

    @staticmethod
    def _with_finals(test_auc: float, test_acc: float, majority: float | None) -> list:
        events = synthetic_events(seeds=(0, 1))
        out = []
        for e in events:
            if isinstance(e, ev.FinalResult):
                e = ev.event_from_dict({**e.to_dict(), "test_auc": test_auc, "test_acc": test_acc,
                                        "majority_acc": majority})
            out.append(e)
        return out

    def test_a_chance_level_finalist_is_named(self) -> None:
        from nas3d_tui.report.render import final_table

        _, note = final_table(summarise(self._with_finals(0.4616, 0.7685, 0.7685)))
        assert "no better than always answering the most frequent class (test ACC 0.7685)" in note
        assert "train longer" in note

    def test_a_finalist_that_learned_gets_no_such_note(self) -> None:
        from nas3d_tui.report.render import final_table

        _, note = final_table(summarise(self._with_finals(0.86, 0.82, 0.7685)))
        assert "no better than" not in note
        _, old = final_table(summarise(self._with_finals(0.86, 0.82, None)))  # a journal from before majority_acc
        assert "no better than" not in old
