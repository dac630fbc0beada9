"""Dashboard polish: the GPU memory panel keeps to its border, and a slow first candidate is visibly alive.

A CPU run spends minutes on its first candidate with nothing on screen but
"epoch k/3"; the Cell panel now shows how long it has trained and its
per-epoch curves. The events are built here (a run start, one candidate,
resource samples, epochs) from a fixed clock; a ``PushHandle`` lets a pilot
test deliver them one at a time, as a live engine would.

Regenerate the two snapshots after an intended change with
``pytest tests/tui/test_polish.py --snapshot-update`` and look at the SVGs.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Sparkline

from engine import events as ev
from tui.app import NasApp
from tui.replay import ReplayHandle
from tui.widgets.training import BARS, spark

pytestmark = pytest.mark.timeout(120)

T0 = 1_760_000_000.0
GENOTYPE = {
    "matrix": [[0, 1, 1, 0], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
    "ops": [7, 13],
    "n_stacks": 2,
    "n_modules": 2,
    "n_filters": 16,
    "feasible": True,
    "reason": None,
    "key": "5f0c0ffee5f0c0ffee5f0c0ffee5f0c0",
    "compact": "S2M2F16 7,13 01 02 12 13 23",
}
# (train loss, val loss, val ACC) of the epochs the slow candidate finishes
EPOCHS = [(0.69, 0.71, 0.52), (0.52, 0.60, 0.64), (0.41, 0.55, 0.71)]


def run_started() -> ev.RunStarted:
    return ev.RunStarted(ts=T0, run_name="quick", run_dir="runs/quick-slow", dataset="adrenalmnist3d", size=28,
                         device="cpu", budget=20, population=5, num_classes=2, task="binary-class", fitness="val_acc",
                         pid=4242, profile={"training": {"epochs": 3}})


def candidate_started() -> ev.CandidateStarted:
    return ev.CandidateStarted(ts=T0 + 1, candidate_id=0, generation=0, phase="init", key=GENOTYPE["key"],
                               genotype=GENOTYPE, params=251_042, flops=188_743_680, worker="local:cpu")


def sample(ts: float, rss: float = 900.0) -> ev.ResourceSample:
    return ev.ResourceSample(ts=ts, device="cpu", rss_mb=rss, note="CPU")


def epoch(k: int, ts: float) -> ev.EpochFinished:
    train, val, acc = EPOCHS[k - 1]
    return ev.EpochFinished(ts=ts, candidate_id=0, epoch=k, train_loss=train, val_loss=val, val_acc=acc,
                            val_auc=acc + 0.05, seconds=45.0, max_epochs=3)


def slow_journal(epochs: int = 2, samples: int = 60) -> list[ev.Event]:
    """A CPU run on its first candidate: samples every 2 s, an epoch every 45 s."""
    out: list[ev.Event] = [run_started(), candidate_started()]
    done = 0
    for i in range(samples):
        ts = T0 + 1 + 2 * (i + 1)
        out.append(sample(ts, 900.0 + 15 * (i % 9)))
        if done < epochs and ts >= T0 + 1 + 45 * (done + 1):
            done += 1
            out.append(epoch(done, ts + 0.5))
    return out


class PushHandle:
    """A run handle the test feeds by hand (``push``), like an engine delivering events."""

    attached = True

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._sink = None

    def start(self, sink) -> None:
        self._sink = sink

    def push(self, *events: ev.Event) -> None:
        for e in events:
            self._sink(e)

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def stop(self) -> None: ...

    def close(self, timeout: float = 30) -> None: ...

    @property
    def finished(self) -> bool:
        return False


def cell_text(app: NasApp) -> str:
    return str(app.cell.query_one("#cell-text").render())


def trace_row(text: str, label: str) -> tuple[str, str]:
    """The bars and the value of the trace row ``label``."""
    line = next(ln for ln in text.splitlines() if ln.startswith(label))
    bars, value = line[len(label):].split()
    return bars, value


# -- the training trace ------------------------------------------------------------------

class TestSpark:
    def test_bars_follow_the_values(self) -> None:
        bars = spark([0.7, 0.5, 0.4, 0.45], 10)
        levels = [BARS.index(b) for b in bars]
        assert levels[0] == len(BARS) - 1 and levels[2] == 0
        assert levels[0] > levels[1] > levels[2] < levels[3]

    def test_keeps_the_latest_values_and_skips_missing_ones(self) -> None:
        assert len(spark(list(range(30)), 8)) == 8
        assert spark([0.0, 1.0, 2.0], 2) == BARS[0] + BARS[-1]  # the last two, rescaled
        assert spark([float("nan"), 1.0, 3.0], 5) == BARS[0] + BARS[-1]

    def test_flat_and_empty(self) -> None:
        flat = spark([0.5, 0.5, 0.5], 5)
        assert len(flat) == 3 and len(set(flat)) == 1
        assert spark([], 5) == "" and spark([1.0], 0) == ""


async def test_a_slow_first_candidate_is_visibly_alive(tmp_path, ui) -> None:
    handle = PushHandle(tmp_path)
    app = NasApp(handle)
    async with app.run_test(size=(120, 40)) as pilot:
        handle.push(run_started(), candidate_started(), sample(T0 + 31))
        await ui.settle(app, pilot)
        text = cell_text(app)
        assert "training for 30s" in text
        assert "epoch 1 under way" in text

        handle.push(sample(T0 + 91))  # no epoch yet: only the clock moves, and the panel with it
        await ui.settle(app, pilot)
        assert "training for 1m 30s" in cell_text(app)

        handle.push(epoch(1, T0 + 95), sample(T0 + 96))
        await ui.settle(app, pilot)
        text = cell_text(app)
        assert "under way" not in text
        assert "45s per epoch" in text
        assert trace_row(text, "train loss") == (spark([0.69], 3), "0.6900")

        handle.push(epoch(2, T0 + 140), epoch(3, T0 + 185), sample(T0 + 186))
        await ui.settle(app, pilot)
        text = cell_text(app)
        assert "training for 3m 05s" in text
        for label, column in (("train loss", 0), ("val loss", 1), ("val ACC", 2)):
            bars, value = trace_row(text, label)
            assert bars == spark([e[column] for e in EPOCHS], 3)
            assert value == f"{EPOCHS[-1][column]:.4f}"
        losses = [BARS.index(b) for b in trace_row(text, "train loss")[0]]
        accuracy = [BARS.index(b) for b in trace_row(text, "val ACC")[0]]
        assert losses == sorted(losses, reverse=True) and accuracy == sorted(accuracy)
        # the trace is drawn inside the panel, within its width
        panel = app.cell
        assert all(len(line) <= panel.scrollable_content_region.width for line in text.splitlines())


# -- the GPU memory panel ----------------------------------------------------------------

def assert_sparkline_inside(app: NasApp) -> None:
    panel = app.memory
    trend = panel.query_one(Sparkline)
    inner = panel.content_region
    assert inner.x <= trend.region.x and trend.region.right <= inner.right
    assert inner.y <= trend.region.y and trend.region.bottom <= inner.bottom
    on_screen = range(max(trend.region.y, 0), min(trend.region.bottom, app.size.height))
    for y in on_screen:  # nothing of the panel right of its border
        for x in range(panel.region.right, app.size.width):
            widget, _ = app.screen.get_widget_at(x, y)
            assert widget is not trend and panel not in widget.ancestors_with_self


async def test_memory_panel_is_as_tall_as_its_content_at_80x24(ui) -> None:
    app = NasApp(ReplayHandle(slow_journal()))
    async with app.run_test(size=(80, 24)) as pilot:
        await ui.settle(app, pilot)
        assert app.screen.has_class("-stacked")
        column = app.query_one("#main")
        column.scroll_end(animate=False)
        await pilot.pause()
        panel = app.memory
        readings = panel.query_one("#memory-text").region.height
        assert 2 <= readings <= 5
        # readings, a margin row, three sparkline rows, two border rows: no empty rows below
        assert panel.region.height == readings + 1 + 3 + 2
        assert panel.query_one(Sparkline).region.height == 3
        assert_sparkline_inside(app)
        # scrolled to the end, the whole panel is on screen, bottom border included
        assert panel.region.bottom <= column.region.bottom
        rows = ui.screen_text(app).splitlines()
        bottom = rows[panel.region.bottom - 1]
        assert bottom[panel.region.x] == "╰" and bottom[panel.region.right - 1] == "╯"


async def test_memory_panel_shares_its_rows_in_the_full_layout(ui) -> None:
    app = NasApp(ReplayHandle(slow_journal()))
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        assert not app.screen.has_class("-stacked")
        panel = app.memory
        assert panel.region.height == app.query_one("#bottom").region.height  # the row's height, not its content's
        assert 1 <= panel.query_one(Sparkline).region.height <= 3
        assert_sparkline_inside(app)


async def test_memory_panel_follows_the_layout_when_the_terminal_is_resized(ui) -> None:
    app = NasApp(ReplayHandle(slow_journal()))
    async with app.run_test(size=(120, 40)) as pilot:
        await ui.settle(app, pilot)
        panel = app.memory
        for size, stacked in (((80, 24), True), ((120, 40), False), ((90, 30), True)):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            await pilot.pause()
            assert app.screen.has_class("-stacked") == stacked
            if stacked:
                readings = panel.query_one("#memory-text").region.height
                assert panel.region.height == readings + 1 + 3 + 2, size
            else:
                assert panel.region.height == app.query_one("#bottom").region.height, size
            assert_sparkline_inside(app)


# -- snapshots ---------------------------------------------------------------------------

@pytest.fixture
def slow_dashboard(ui, monkeypatch):
    """App factory: the slow first candidate after two epochs; ``scroll`` ends at the bottom of the column."""
    monkeypatch.delenv("NO_COLOR", raising=False)  # the snapshots are in colour

    def factory(scroll: bool = False):
        app = NasApp(ReplayHandle(slow_journal()))

        async def run_before(pilot) -> None:
            await ui.settle(pilot.app, pilot)
            if scroll:
                pilot.app.query_one("#main").scroll_end(animate=False)
                await pilot.pause()

        return app, run_before

    return factory


class TestPolishSnapshots:
    def test_slow_candidate_large(self, snap_compare, slow_dashboard) -> None:
        app, run_before = slow_dashboard()
        assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)

    def test_memory_panel_small_scrolled(self, snap_compare, slow_dashboard) -> None:
        app, run_before = slow_dashboard(scroll=True)
        assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
