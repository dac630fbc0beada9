"""Tests of engine/leaderboard.py: ranking, tie-breaks, event folding and exports."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import (
    CandidateFinished,
    CandidateStarted,
    FinalResult,
    GenerationFinished,
    event_from_dict,
)
from engine.records import rank_key
from engine.leaderboard import ROW_FIELDS, Leaderboard, Row, _json_rows, _plain, compact_genotype, export


def finished(cid, fitness=None, status="ok", flops=1000, **kw) -> CandidateFinished:
    return CandidateFinished.from_fields(dict(
        candidate_id=cid,
        generation=kw.pop("generation", 0),
        phase=kw.pop("phase", "init"),
        key=kw.pop("key", f"key{cid}"),
        genotype=kw.pop("genotype", {"compact": f"cell{cid}"}),
        status=status,
        fitness=fitness,
        val_auc=kw.pop("val_auc", None if fitness is None else fitness / 2),
        params=kw.pop("params", 100 + cid),
        flops=flops,
        epochs=kw.pop("epochs", 3),
        seconds=kw.pop("seconds", 1.5),
        **kw,
    ))


def final(cid, seed, auc, acc) -> FinalResult:
    return FinalResult(
        candidate_id=cid, key=f"key{cid}", seed=seed, test_auc=auc, test_acc=acc,
        val_acc=0.8, params=100, flops=1000, epochs=3, seconds=2.0,
    )


def sample_events():
    return [
        CandidateStarted(candidate_id=0, generation=0, phase="init", key="key0", genotype={}),
        finished(0, 0.70),
        finished(1, 0.80, flops=5000),
        finished(2, 0.80, flops=2000),  # ties with 1: fewer FLOPs first
        finished(3, None, status="infeasible", flops=None),
        finished(4, 0.80, status="duplicate", flops=2000, duplicate_of=2),
        finished(5, None, status="oom"),
        finished(6, 0.80, flops=2000),  # ties with 2 on fitness and FLOPs: lower id first
        finished(7, None, status="failed", error="boom"),
        GenerationFinished(generation=0, best=0.8, mean=0.7, worst=0.6, trained=5, budget=10),
        final(2, 0, 0.90, 0.85),
        final(2, 1, 0.80, 0.75),
    ]


def test_ranking_and_tie_break():
    rows = Leaderboard.from_events(sample_events()).rows()
    assert [(r.candidate_id, r.rank) for r in rows] == [
        (2, 1), (6, 2), (1, 3), (0, 4), (5, None), (7, None),
    ]
    assert [r.status for r in rows[-2:]] == ["oom", "failed"]


def test_duplicates_and_infeasible_are_optional():
    board = Leaderboard.from_events(sample_events())
    ids = [r.candidate_id for r in board.rows(include_duplicates=True, include_infeasible=True)]
    assert ids == [2, 6, 1, 0, 3, 4, 5, 7]
    dup = next(r for r in board.rows(include_duplicates=True) if r.candidate_id == 4)
    assert dup.rank is None and dup.status == "duplicate"


def test_final_results_are_averaged_over_seeds():
    board = Leaderboard.from_events(sample_events())
    top = board.rows()[0]
    assert top.candidate_id == 2
    assert top.test_auc == pytest.approx(0.85) and top.test_acc == pytest.approx(0.80)
    assert top.final_seeds == 2
    assert all(r.test_auc is None for r in board.rows()[1:])
    assert board.best() == top


def test_repeated_events_replace_earlier_ones():
    events = sample_events()
    board = Leaderboard.from_events(events + [final(2, 0, 0.90, 0.85), finished(0, 0.95)])
    rows = board.rows()
    assert rows[0].candidate_id == 0 and rows[0].fitness == 0.95
    assert next(r for r in rows if r.candidate_id == 2).final_seeds == 2
    assert len(board) == 8


def test_other_events_are_ignored():
    board = Leaderboard()
    assert board.update(GenerationFinished(generation=1, best=1, mean=1, worst=1, trained=1, budget=1)) is False
    assert board.rows() == [] and board.best() is None


def test_sort_by_other_columns():
    board = Leaderboard.from_events(sample_events())
    by_params = board.rows(sort_by="params")
    assert [r.params for r in by_params] == sorted(r.params for r in by_params)
    by_test = board.rows(sort_by="test_auc")
    assert by_test[0].candidate_id == 2 and by_test[-1].test_auc is None
    with pytest.raises(ValueError, match="sort_by"):
        board.rows(sort_by="nonsense")


def test_genotype_text():
    assert compact_genotype({"compact": "abc"}) == "abc"
    text = compact_genotype(
        {"ops": ["input", 3, 12, "output"], "n_stacks": 2, "n_modules": 1, "n_filters": 16,
         "matrix": [[0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]},
        "deadbeef",
    )
    assert text == "ops=3-12 S2 M1 F16 E4"
    assert compact_genotype({}, "0123456789abcdef") == "0123456789ab"


_fitness = st.one_of(st.none(), st.floats(0, 1, allow_nan=False))
_status = st.sampled_from(["ok", "ok", "ok", "infeasible", "duplicate", "oom", "failed"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 15), _fitness, _status, st.integers(1, 5)), max_size=25))
def test_from_events_equals_incremental_updates_and_journal_replay(spec):
    events = [
        finished(cid, fit if (s != "ok" or fit is not None) else 0.5, status=s, flops=fl,
                 duplicate_of=0 if s == "duplicate" else None)
        for cid, fit, s, fl in spec
    ]
    incremental = Leaderboard()
    for e in events:
        incremental.update(e)
    replayed = Leaderboard.from_events(event_from_dict(json.loads(json.dumps(e.to_dict()))) for e in events)
    batch = Leaderboard.from_events(events)
    for kw in ({}, {"include_duplicates": True, "include_infeasible": True}):
        assert incremental.rows(**kw) == batch.rows(**kw) == replayed.rows(**kw)
    ranks = [r.rank for r in batch.rows() if r.rank is not None]
    assert ranks == list(range(1, len(ranks) + 1))
    ok = [r for r in batch.rows() if r.status == "ok"]
    assert all(
        (a.fitness or 0) >= (b.fitness or 0) for a, b in zip(ok, ok[1:]) if a.fitness is not None and b.fitness is not None
    )


def _ranked_from_scratch(board: Leaderboard) -> list[int]:
    """The default rows' ids as a plain sort of every record gives them (the definition)."""
    records = board.records()
    ranked = sorted((r for r in records if r.ok), key=lambda r: rank_key(r, board.tie_break))
    others = sorted((r for r in records if not r.ok and r.status not in ("duplicate", "infeasible")),
                    key=lambda r: r.candidate_id)
    return [r.candidate_id for r in ranked + others]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.just("finish"), st.integers(0, 40), _fitness, _status, st.integers(1, 3)),
    st.tuples(st.just("ask"), st.integers(0, 12)),
    st.tuples(st.just("tie_break"), st.sampled_from(["val_auc", "none"])),
    st.tuples(st.just("light"), st.integers(0, 40)),
), max_size=120))
def test_the_kept_order_is_the_order_a_full_sort_gives_after_any_changes(steps):
    """The leaderboard places arriving candidates in its kept order (a long run's dashboard asks for its top
    rows after every one): after any mix of arrivals, replacements, tie-break changes and light copies, and
    whenever it is asked, rows / head / best / count say what sorting everything from scratch says."""
    board = Leaderboard()
    for step in steps:
        if step[0] == "finish":
            _, cid, fit, status, flops = step
            board.update(finished(cid, fit if (status != "ok" or fit is not None) else 0.5, status=status, flops=flops,
                                  val_auc=0.5 if fit is not None else None, duplicate_of=0 if status == "duplicate" else None))
        elif step[0] == "tie_break":
            board.tie_break = step[1]
        elif step[0] == "light":
            known = {r.candidate_id: r for r in board.records()}
            if step[1] in known:
                board.replace_record(known[step[1]].light())
        else:
            n = step[1]
            rows = board.rows()
            assert [r.candidate_id for r in rows] == _ranked_from_scratch(board)
            assert board.head(n) == rows[:n] and board.count() == len(rows)
            best = board.best()
            assert best == (rows[0] if rows and rows[0].rank == 1 else None)
    assert [r.candidate_id for r in board.rows()] == _ranked_from_scratch(board)
    assert board.head(10**6) == board.rows()


# ---------------------------------------------------------------- exports


@pytest.fixture
def rows() -> list[Row]:
    events = sample_events() + [finished(8, 0.5, genotype={"compact": 'a|b "q", c'})]
    return Leaderboard.from_events(events).rows(include_duplicates=True)


def test_csv_parses_back(rows, tmp_path):
    path = tmp_path / "board.csv"
    text = export(rows, "csv", path)
    assert path.read_text(encoding="utf-8") == text
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert tuple(parsed[0]) == ROW_FIELDS
    assert [int(p["candidate_id"]) for p in parsed] == [r.candidate_id for r in rows]
    weird = next(p for p in parsed if p["candidate_id"] == "8")
    assert weird["genotype"] == 'a|b "q", c'
    oom = next(p for p in parsed if p["status"] == "oom")
    assert oom["rank"] == "" and oom["fitness"] == ""
    assert float(parsed[0]["test_auc"]) == pytest.approx(rows[0].test_auc)


def test_json_parses_back(rows, tmp_path):
    text = export(rows, "json", tmp_path / "board.json")
    data = json.loads(text)
    assert [list(d) for d in data] == [list(ROW_FIELDS)] * len(rows)
    expected = [{f: getattr(r, f) for f in ROW_FIELDS} for r in rows]
    assert data == json.loads(json.dumps(expected))
    assert json.loads((tmp_path / "board.json").read_text()) == data


def test_json_export_is_what_json_dumps_indents(rows):
    """The fast writer of flat rows gives json.dumps(indent=2)'s text, character for character."""
    expected = [{f: _plain(getattr(r, f)) for f in ROW_FIELDS} for r in rows]
    assert export(rows, "json") == json.dumps(expected, indent=2, allow_nan=False) + "\n"


_plain_values = (
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=6), _plain_values, max_size=6), max_size=4))
def test_json_rows_of_any_plain_values_match_json_dumps(data):
    assert _json_rows(data) == json.dumps(data, indent=2, allow_nan=False)


@pytest.mark.parametrize("value", [[1, 2], {"a": None}, 1.5 + 0j, float("nan"), float("inf")])
def test_json_rows_of_other_values_are_json_dumps_own(value):
    data = [{"a": 1, "b": value}]
    try:
        expected = json.dumps(data, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        with pytest.raises(type(exc)):
            _json_rows(data)
    else:
        assert _json_rows(data) == expected


def test_markdown_table(rows):
    text = export(rows, "md")
    lines = text.strip().splitlines()
    assert lines[0] == "| " + " | ".join(ROW_FIELDS) + " |"
    assert set(lines[1].replace("|", "").replace("-", "").replace(":", "")) == set()
    assert len(lines) == 2 + len(rows)
    for line in lines[2:]:
        cells = re.split(r"(?<!\\)\|", line)[1:-1]  # pipes escaped as \| stay inside a cell
        assert len(cells) == len(ROW_FIELDS), line
    assert "a\\|b" in text


def test_export_empty_and_unknown_format(tmp_path):
    assert export([], "csv").strip() == ",".join(ROW_FIELDS)
    assert export([], "json").strip() == "[]"
    with pytest.raises(ValueError, match="xlsx"):
        export([], "xlsx")
    with pytest.raises(ValueError):
        export([], "xlsx", tmp_path / "x.xlsx")
    assert not (tmp_path / "x.xlsx").exists()


def test_export_overwrites_atomically_and_leaves_no_temp(rows, tmp_path):
    path = tmp_path / "out" / "board.md"
    export(rows, "md", path)
    export(rows[:1], "md", path)
    assert path.read_text(encoding="utf-8") == export(rows[:1], "md")
    assert [p.name for p in path.parent.iterdir()] == ["board.md"]


# ---------------------------------------------------------------- tie-breaks (search.tie_break)


def _run_started(tie_break: str):
    from engine.events import RunStarted

    return RunStarted(run_name="t", run_dir="/r", dataset="adrenalmnist3d", size=28, device="cpu", budget=9,
                      population=4, num_classes=2, task="binary-class", profile={"search": {"tie_break": tie_break}})


def tied_events():
    # four candidates at exactly the same validation ACC (the majority class, say)
    return [
        finished(10, 0.8333, val_auc=0.61, flops=5000),
        finished(11, 0.8333, val_auc=0.74, flops=9000),  # best AUC: first
        finished(12, 0.8333, val_auc=0.61, flops=3000),  # same AUC as 10, fewer FLOPs: before 10
        finished(13, 0.8333, val_auc=0.61, flops=3000),  # equal to 12 in everything: after it, by id
        finished(14, 0.9000, val_auc=0.50, flops=9999),  # higher fitness beats every tie-break
    ]


def test_ties_are_broken_by_val_auc_then_flops_then_id_and_the_column_says_so():
    rows = Leaderboard.from_events([_run_started("val_auc"), *tied_events()]).rows()
    assert [r.candidate_id for r in rows] == [14, 11, 12, 13, 10]
    # each row says what placed it below the equally fit row above it
    assert [r.tie_break for r in rows] == ["", "", "val_auc", "id", "flops"]


def test_tie_break_none_keeps_the_papers_order_by_id():
    rows = Leaderboard.from_events([_run_started("none"), *tied_events()]).rows()
    assert [r.candidate_id for r in rows] == [14, 10, 11, 12, 13]
    assert [r.tie_break for r in rows] == ["", "", "id", "id", "id"]


def test_the_dashboard_best_and_the_finalists_use_the_same_ranking(tmp_path):
    from engine.profile import load_profile
    from engine.session.final import finalists

    board = Leaderboard.from_events([_run_started("val_auc"), *tied_events()])
    records = {r.candidate_id: r for r in board.records()}
    profile = load_profile("quick", ["final.top_k=3"])
    assert [r.candidate_id for r in finalists(records, profile)] == [r.candidate_id for r in board.rows()[:3]]
    assert board.best().candidate_id == 14


def test_rows_follow_every_change_after_being_asked_for():
    """rows() are kept between changes (a dashboard asks at every redraw); any change shows at once."""
    board = Leaderboard.from_events(sample_events())
    first = board.rows()
    assert board.rows() == first and board.rows() is not board.rows()  # callers may reorder their copy
    board.update(finished(20, 0.99))
    assert board.rows()[0].candidate_id == 20 and board.best().candidate_id == 20
    board.update(FinalResult(candidate_id=20, key="key20", seed=0, test_auc=0.9, test_acc=0.8, val_acc=0.99,
                             params=1, flops=1, epochs=1, seconds=1.0, weights_path="w", genotype_path="g"))
    assert board.rows()[0].test_auc == 0.9
    tied = Leaderboard.from_events([finished(1, 0.8, val_auc=0.1, flops=10), finished(2, 0.8, val_auc=0.2, flops=20)])
    assert [r.candidate_id for r in tied.rows()] == [2, 1]
    tied.tie_break = "none"
    assert [r.candidate_id for r in tied.rows()] == [1, 2]


def test_light_records_rank_and_export_as_the_whole_ones():
    """``CandidateRecord.light`` (what a long run's dashboard keeps) changes no row and no export."""
    feasible = {"matrix": [[0, 1, 1], [0, 0, 1], [0, 0, 0]], "ops": [4], "n_stacks": 1, "n_modules": 2, "n_filters": 8,
                "feasible": True, "reason": None, "key": "k", "compact": "S1M2F8 4 01 02 12",
                "raw_matrix": [[0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]], "raw_ops": [4, 9]}
    infeasible = dict(feasible, matrix=[], ops=[], feasible=False, reason="no path", compact="S1M2F8 infeasible")
    events = [*sample_events(), finished(8, 0.75, genotype=feasible, vector=[0.5] * 29),
              finished(9, None, status="infeasible", genotype=infeasible, flops=None), finished(10, 0.6, genotype={"ops": [1]})]
    whole, light = Leaderboard.from_events(events), Leaderboard.from_events(events)
    for record in whole.records():
        light.replace_record(record.light())
    for flags in ({}, {"include_duplicates": True, "include_infeasible": True}):
        assert [r.candidate_id for r in light.rows(**flags)] == [r.candidate_id for r in whole.rows(**flags)]
        for fmt in ("csv", "json", "md"):
            assert export(light.rows(**flags), fmt) == export(whole.rows(**flags), fmt)
    records = {r.candidate_id: r for r in light.records()}
    assert records[8].vector == [] and whole.records()[8].vector == [0.5] * 29  # the original is not changed
    assert records[8].genotype == {"compact": "S1M2F8 4 01 02 12", "n_stacks": 1, "n_modules": 2, "n_filters": 8,
                                   "feasible": True, "reason": None, "matrix": ((0, 1, 1), (0, 0, 1), (0, 0, 0)), "ops": [4]}
    assert records[9].genotype["raw_matrix"] == ((0, 1, 1, 0), (0, 0, 1, 0), (0, 0, 0, 0), (0, 0, 0, 0))  # drawn instead
    assert records[9].genotype["raw_ops"] == [4, 9]
    assert records[10].genotype == {"ops": [1]}  # no compact form: kept whole
    again = finished(11, 0.7, genotype=feasible).record.light()
    assert all(a is b for a, b in zip(again.genotype["matrix"], records[8].genotype["matrix"]))  # rows shared
    with pytest.raises(KeyError):
        light.replace_record(finished(99, 0.5).record.light())
    with pytest.raises(ValueError, match="does not rank as"):
        light.replace_record(finished(8, 0.1).record)
