"""Fault injection: every file a run trusts, damaged one way at a time, and impossible targets.

A stopped tiny run is copied and damaged in one place (a checkpoint field
missing, of the wrong type or an unknown value; a truncated file; a directory
where a file should be; a journal line of the wrong shape; an out-of-place
record), then ``nas3d-tui resume`` must answer with exit code 2 and one line
on stderr naming the damaged file -- no traceback -- and leave every file of
the run exactly as it was (hashes before and after). Damaged data files,
impossible export targets and over-long paths are checked the same way.
Commands run in-process through ``nas3d_tui.cli.main`` (the same error
boundary as the script; two cases run the real process to prove it).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine import events as ev
from engine.control import Control
from engine.session import Session
from nas3d_tui.cli import main

REPO = Path(__file__).resolve().parents[3]
LONG = "x" * 300  # a path component longer than any file system allows


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory, tiny_profile) -> Path:
    """A tiny run stopped during its opposition batch: the checkpoint holds a whole population."""
    run_dir = tmp_path_factory.mktemp("template") / "run"
    control = Control()
    session = Session(tiny_profile(), run_dir, control=control)
    session.bus.subscribe(lambda e: control.stop() if isinstance(e, ev.CandidateFinished) and e.trained >= 5 else None)
    assert session.run().state == "stopped"
    state = json.loads((run_dir / "checkpoint.json").read_text())
    assert state["ode"]["phase"] == "opposite" and len(state["ode"]["population"]) == 4
    return run_dir


def snapshot(path: Path) -> dict[str, str]:
    """Every file under ``path`` (relative name -> sha256; folders marked)."""
    out = {}
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        out[rel] = "<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def cli(capfd, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capfd.readouterr().err
    return code, err


def assert_one_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _first_record(run: Path) -> Path:
    return sorted((run / "candidates").glob("*.json"))[0]


def _set(*keys, value):
    def change(d):
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return change


def _drop(*keys):
    def change(d):
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]

    return change


CHECKPOINT_DAMAGE = {
    # fields missing
    **{f"missing {k}": _drop(k) for k in ("format", "state", "ode", "trained", "elapsed")},
    # wrong types
    "trained is text": _set("trained", value="x"),
    "elapsed is text": _set("elapsed", value="abc"),
    "generation negative": _set("generation", value=-1),
    "written is a list": _set("written", value=[1]),
    "reason is a number": _set("reason", value=5),
    "ode is a list": _set("ode", value=[]),
    # unknown values
    "state unknown": _set("state", value="weird"),
    "format unknown": _set("format", value="nas3d-tui/checkpoint/9"),
    # the strategy state inside it
    "ode population rows too short": lambda d: d["ode"]["population"].__setitem__(0, [0.5] * 7),
    "ode rng missing": _drop("ode", "rng"),
    "ode phase unknown": _set("ode", "phase", value="nope"),
    "ode fitness not numbers": _set("ode", "fitness", value=["a", "b", "c", "d"]),
    "ode population size 2": _set("ode", "settings", "population", value=2),
    "ode pending batch of the wrong shape": _set("ode", "pending", value={"phase": "trial", "generation": 1,
                                                                         "vectors": [[0.5] * 5], "first_id": 0}),
    "ode next_id text": _set("ode", "next_id", value="7"),
    "counts more trained than records": _set("trained", value=99),
    # a strategy that is valid alone but not the one the run's profile makes
    "ode vectors of 30 genes": lambda d: (
        d["ode"]["settings"].__setitem__("dim", 30),
        [row.append(0.5) for row in d["ode"]["population"]],
    ),
    "ode mutation factor differs from the profile": _set("ode", "settings", "mutation_factor", value=0.9),
    "ode seed differs from the profile": _set("ode", "settings", "seed", value=12345),
}


@pytest.mark.e2e
@pytest.mark.parametrize("damage", sorted(CHECKPOINT_DAMAGE))
def test_a_damaged_checkpoint_is_one_line_and_changes_nothing(damage, stopped_run, tmp_path, capfd):
    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    _edit_json(run / "checkpoint.json", CHECKPOINT_DAMAGE[damage])
    before = snapshot(run)
    code, err = cli(capfd, "resume", str(run), "--headless")
    assert_one_line(code, err, "checkpoint.json")
    assert snapshot(run) == before


RECORD_DAMAGE = {
    "status missing": _drop("status"),
    "status unknown": _set("status", value="weird"),
    "fitness is text": _set("fitness", value="abc"),
    "id is text": _set("candidate_id", value="0"),
    "genotype is a list": _set("genotype", value=[]),
    "ok without fitness": lambda d: (d.update(status="ok", fitness=None)),
    "vector holds text": _set("vector", value=["a"]),
    "history is not a list of objects": _set("history", value=[1, 2]),
    "trained negative": _set("trained", value=-3),
    # values no run writes
    "fitness NaN": _set("fitness", value=float("nan")),
    "fitness infinite": _set("fitness", value=float("inf")),
    "fitness negative": _set("fitness", value=-0.5),
    "val_auc above 1": _set("val_auc", value=7),
    "seconds negative": _set("seconds", value=-1.0),
    # a record that disagrees with itself or with the run's search space
    "vector too short": lambda d: d.update(vector=d["vector"][:-1]),
    "vector decodes to another architecture": lambda d: d["vector"].__setitem__(slice(0, 21), [0.0] * 21),
    "genotype emptied": _set("genotype", value={}),
    "key of another architecture": _set("key", value="0" * 32),
}


@pytest.mark.e2e
@pytest.mark.parametrize("damage", sorted(RECORD_DAMAGE))
def test_a_damaged_candidate_record_is_one_line_and_changes_nothing(damage, stopped_run, tmp_path, capfd):
    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    record = _first_record(run)
    _edit_json(record, RECORD_DAMAGE[damage])
    before = snapshot(run)
    code, err = cli(capfd, "resume", str(run), "--headless")
    assert_one_line(code, err, record.name)
    assert snapshot(run) == before


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _into_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "stray").write_text("")


def _middle_line_wrong_type(path: Path) -> None:
    lines = path.read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if '"kind":"candidate_finished"' in line)
    data = json.loads(lines[i])
    data["fitness"] = "high"
    lines[i] = json.dumps(data)
    path.write_text("\n".join(lines) + "\n")


def _misnamed_record(run: Path) -> None:
    first = _first_record(run)
    shutil.copy(first, run / "candidates" / "000777.json")


def _record_never_proposed(run: Path) -> None:
    first = _first_record(run)
    data = json.loads(first.read_text())
    data["candidate_id"] = 500
    (run / "candidates" / "000500.json").write_text(json.dumps(data))


def _bad_final_result(run: Path) -> None:
    folder = run / "final" / "000001-seed0"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text('{"kind": "final_result", "candidate_id": "one"}')


def _bad_profile(run: Path) -> None:
    path = run / "profile.toml"
    path.write_text(path.read_text().replace("population = 4", "population = 2"))


def _edit_profile(old: str, new: str):
    def hurt(run: Path) -> None:
        path = run / "profile.toml"
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new, 1))

    return hurt


def _nested_too_deeply(path: Path) -> None:
    path.write_text("[" * 100_000 + "]" * 100_000)


def _journal_line_nested_too_deeply(run: Path) -> None:
    lines = (run / "events.jsonl").read_text().splitlines()
    lines.insert(1, "[" * 100_000 + "]" * 100_000)
    (run / "events.jsonl").write_text("\n".join(lines) + "\n")


FILE_DAMAGE = {
    "checkpoint truncated": (lambda run: _truncate(run / "checkpoint.json"), "checkpoint.json"),
    "checkpoint is a directory": (lambda run: _into_directory(run / "checkpoint.json"), "checkpoint.json"),
    "checkpoint not UTF-8": (lambda run: (run / "checkpoint.json").write_bytes(b"\xff\xfe{}"), "checkpoint.json"),
    "record truncated": (lambda run: _truncate(_first_record(run)), "candidates"),
    "record is a directory": (lambda run: _into_directory(_first_record(run)), "candidates"),
    "record under another id's name": (_misnamed_record, "000777.json"),
    "record never proposed": (_record_never_proposed, "never proposed"),
    "journal is a directory": (lambda run: _into_directory(run / "events.jsonl"), "events.jsonl"),
    "journal line of the wrong type": (lambda run: _middle_line_wrong_type(run / "events.jsonl"), "events.jsonl"),
    "final result corrupt": (_bad_final_result, "result.json"),
    "profile value out of range": (_bad_profile, "search.population"),
    "profile missing": (lambda run: (run / "profile.toml").unlink(), "profile.toml"),
    "checkpoint nested too deeply": (lambda run: _nested_too_deeply(run / "checkpoint.json"), "checkpoint.json"),
    "record nested too deeply": (lambda run: _nested_too_deeply(_first_record(run)), "candidates"),
    "journal line nested too deeply": (_journal_line_nested_too_deeply, "events.jsonl"),
    # the run's profile edited after the checkpoint: the search cannot go on as it would have
    "profile population changed": (_edit_profile("population = 4", "population = 5"), "population"),
    "profile seed changed": (_edit_profile("seed = ", "seed = 1"), "seed"),
    "profile strategy changed": (_edit_profile('strategy = "ode"', 'strategy = "random"'), "strategy"),
    "profile filters changed": (_edit_profile("filters = [8]", "filters = [16]"), "candidates"),
}


@pytest.mark.e2e
@pytest.mark.parametrize("damage", sorted(FILE_DAMAGE))
def test_a_damaged_run_file_is_one_line_and_changes_nothing(damage, stopped_run, tmp_path, capfd):
    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    hurt, fragment = FILE_DAMAGE[damage]
    hurt(run)
    before = snapshot(run)
    code, err = cli(capfd, "resume", str(run), "--headless")
    assert_one_line(code, err, fragment)
    assert snapshot(run) == before


def _journal_lines(change):
    def hurt(run: Path) -> None:
        path = run / "events.jsonl"
        lines = path.read_text().splitlines()
        change(lines)
        path.write_text("\n".join(lines) + "\n")

    return hurt


def _every_ts(value: str):
    return _journal_lines(lambda lines: lines.__setitem__(
        slice(None), [re.sub(r'"ts":[-0-9.e+]+', f'"ts":{value}', line) for line in lines]))


JOURNAL_DAMAGE = {
    "a line that is not JSON in the middle": _journal_lines(lambda lines: lines.insert(3, "@@@ not json @@@")),
    "binary garbage appended": lambda run: (run / "events.jsonl").open("ab").write(b"\x89PNG\r\n\x1a\n\xff\xfe\n"),
    "time stamps far in the future": _every_ts("1e308"),
    "negative time stamps": _every_ts("-1e12"),
    "a generation summary with NaN": _journal_lines(lambda lines: lines.append(
        '{"ts":1795681700,"generation":0,"best":NaN,"mean":NaN,"worst":-1e308,"trained":5,"budget":5,'
        '"best_candidate_id":2,"kind":"generation_finished"}')),
}


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["resume", "export", "report"])
@pytest.mark.parametrize("damage", sorted(JOURNAL_DAMAGE))
def test_a_damaged_journal_is_one_line_for_every_command_that_reads_it(damage, command, finished_run, stopped_run,
                                                                       tmp_path, capfd):
    run = tmp_path / "run"
    shutil.copytree(stopped_run if command == "resume" else finished_run, run)
    JOURNAL_DAMAGE[damage](run)
    before = snapshot(run)
    argv = {"resume": ["resume", str(run), "--headless"],
            "export": ["export", str(run), "-o", str(tmp_path / "board.csv")],
            "report": ["report", str(run), "-o", str(tmp_path / "report")]}[command]
    code, err = cli(capfd, *argv)
    assert_one_line(code, err, "events.jsonl")
    assert snapshot(run) == before


@pytest.mark.e2e
def test_a_profile_with_a_byte_order_mark_resumes(stopped_run, tmp_path, capfd):
    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    path = run / "profile.toml"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # saved by an editor that writes a BOM
    from engine.profile import load_profile

    assert load_profile(path) == load_profile(stopped_run / "profile.toml")


@pytest.mark.e2e
def test_the_real_process_gives_the_same_one_line(stopped_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    _edit_json(run / "checkpoint.json", _set("state", value="weird"))
    before = snapshot(run)
    r = subprocess.run([sys.executable, "-m", "nas3d_tui", "resume", str(run), "--headless"],
                       capture_output=True, text=True, cwd=REPO, timeout=120, env={**os.environ, "HOME": "/nonexistent"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "state = 'weird'" in r.stderr, r.stderr
    assert snapshot(run) == before


def _result_in_another_folder(run: Path) -> None:
    folder = run / "final" / "000003-seed0"
    folder.mkdir(parents=True)
    result = ev.FinalResult(candidate_id=3, key="0" * 32, seed=5, test_auc=0.5, test_acc=0.5, val_acc=0.5, params=1, flops=1,
                            epochs=1, seconds=1.0)
    (folder / "result.json").write_text(json.dumps(result.to_dict()))


def _link_loop(path: Path) -> None:
    path.unlink()
    os.symlink(path.name, path)


SEARCH_RUN_DAMAGE = {
    "a final result in another seed's folder": (_result_in_another_folder, "seed 5"),
    "a directory where a training checkpoint belongs": (
        lambda run: (run / "candidates" / "000006.ckpt").mkdir(), "000006.ckpt"),
    "the journal a link loop": (lambda run: _link_loop(run / "events.jsonl"), "events.jsonl"),
    "the checkpoint a link loop": (lambda run: _link_loop(run / "checkpoint.json"), "checkpoint.json"),
}


@pytest.mark.e2e
@pytest.mark.parametrize("damage", sorted(SEARCH_RUN_DAMAGE))
def test_more_damage_to_a_search_run_is_one_line_and_changes_nothing(damage, stopped_run, tmp_path, capfd):
    run = tmp_path / "run"
    shutil.copytree(stopped_run, run, symlinks=True)
    hurt, fragment = SEARCH_RUN_DAMAGE[damage]
    hurt(run)
    before = snapshot_links(run)
    code, err = cli(capfd, "resume", str(run), "--headless")
    assert_one_line(code, err, fragment)
    assert snapshot_links(run) == before


def snapshot_links(path: Path) -> dict[str, str]:
    """``snapshot``, with links recorded as their targets (a link loop cannot be read)."""
    out = {}
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        else:
            out[rel] = "<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def stopped_train_run(tmp_path_factory, tiny_profile) -> Path:
    """A ``nas3d-tui train`` run stopped after its first of two seeds."""
    from engine.session.retrain import Retrain
    from engine.space import Genotype

    run_dir = tmp_path_factory.mktemp("train") / "run"
    control = Control()
    job = Retrain(tiny_profile("final.seeds=[0, 1]", "final.epochs=1"), Genotype.from_compact("S1M1F8 6 01 12"),
                  run_dir, control=control)
    job.bus.subscribe(lambda e: control.stop() if isinstance(e, ev.FinalResult) else None)
    assert job.run().state == "stopped"
    assert (run_dir / "train.json").is_file() and (run_dir / "final" / "seed0" / "result.json").is_file()
    return run_dir


def _garbage_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("garbage {")


def _edit_plan(change):
    return lambda run: _edit_json(run / "train.json", change)


TRAIN_RUN_DAMAGE = {
    "plan seeds differ from the profile": (_edit_plan(_set("seeds", value=[5])), "final.seeds"),
    "plan genotype a list": (_edit_plan(_set("genotype", value=[1, 2])), "train.json"),
    "plan genotype a string": (_edit_plan(_set("genotype", value="S1M1F8 6 01 12")), "train.json"),
    "plan a directory": (lambda run: _into_directory(run / "train.json"), "train.json"),
    "plan nested too deeply": (lambda run: _nested_too_deeply(run / "train.json"), "train.json"),
    "a result of another seed": (lambda run: _edit_json(run / "final" / "seed0" / "result.json",
                                                        _set("seed", value=1)), "result.json"),
    "journal line not JSON": (_journal_lines(lambda lines: lines.insert(1, "@@@")), "events.jsonl"),
    "a garbage candidate record": (lambda run: _garbage_file(run / "candidates" / "000000.json"), "000000.json"),
    "a garbage checkpoint": (lambda run: _garbage_file(run / "checkpoint.json"), "checkpoint.json"),
    "a garbage result of a seed not planned": (lambda run: _garbage_file(run / "final" / "seed7" / "result.json"),
                                               "seed7"),
    "a directory where the training checkpoint belongs": (
        lambda run: (run / "final" / "seed1" / "training.ckpt").mkdir(parents=True), "training.ckpt"),
}


@pytest.mark.e2e
@pytest.mark.parametrize("damage", sorted(TRAIN_RUN_DAMAGE))
def test_a_damaged_train_run_is_one_line_and_changes_nothing(damage, stopped_train_run, tmp_path, capfd):
    run = tmp_path / "run"
    shutil.copytree(stopped_train_run, run)
    hurt, fragment = TRAIN_RUN_DAMAGE[damage]
    hurt(run)
    before = snapshot(run)
    code, err = cli(capfd, "resume", str(run), "--headless")
    assert_one_line(code, err, fragment)
    assert snapshot(run) == before


# ------------------------------------------------------------------ data files


def _npz(path: Path, size: int = 8, damage: str = "") -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 12), ("val", 6), ("test", 6)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, size, size, size), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(n, 1)
    np.savez_compressed(path, **arrays)
    if damage == "zlib":  # flip bytes inside the first member's compressed stream
        with zipfile.ZipFile(path) as z:
            info = z.infolist()[0]
        raw = bytearray(path.read_bytes())
        start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 20
        for i in range(start, start + 64):
            raw[i] ^= 0x5A
        path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("damage", ["zlib", "garbage", "missing"])
def test_a_damaged_own_data_file_stops_the_run_before_anything_is_written(damage, tmp_path, capfd, tiny_overrides):
    data = tmp_path / "own.npz"
    if damage == "garbage":
        data.write_bytes(b"PK\x03\x04 not really a zip")
    elif damage == "zlib":
        _npz(data, damage="zlib")
    run = tmp_path / "runs" / "r"
    args = ["run", "quick", "--headless", "--run-dir", str(run), "--set", f"data.path='{data}'"]
    for s in tiny_overrides:
        args += ["--set", s]
    code, err = cli(capfd, *args)
    assert_one_line(code, err, "own.npz")
    assert not run.exists(), "a run that cannot start leaves no run directory"


def test_a_run_whose_device_does_not_exist_leaves_nothing(tmp_path, capfd, tiny_overrides):
    run = tmp_path / "r"
    args = ["run", "quick", "--headless", "--run-dir", str(run)]
    for s in [*tiny_overrides, "run.device='cuda:7'"]:
        args += ["--set", s]
    code, err = cli(capfd, *args)
    assert_one_line(code, err, "cuda:7")
    assert not run.exists()


# ------------------------------------------------------------------ export targets and long paths


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_profile) -> Path:
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    assert Session(tiny_profile("search.budget=2"), run_dir).run().state == "finished"
    return run_dir


@pytest.mark.e2e
@pytest.mark.parametrize("target", ["existing directory", "under a file", "name too long", "unwritable folder"])
def test_an_impossible_export_target_is_one_line_naming_it(target, finished_run, tmp_path, capfd):
    before = snapshot(finished_run)
    if target == "existing directory":
        out = tmp_path / "adir"
        out.mkdir()
    elif target == "under a file":
        (tmp_path / "afile").write_text("")
        out = tmp_path / "afile" / "board.csv"
    elif target == "name too long":
        out = tmp_path / (LONG + ".csv")
    else:
        out = Path("/proc") / "board.csv"  # no one may create files there, root included
    code, err = cli(capfd, "export", str(finished_run), "--format", "csv", "-o", str(out))
    assert_one_line(code, err, str(out.name) if target != "name too long" else "too long")
    assert ".tmp" not in err, "the message names the user's target, not a temporary file"
    assert snapshot(finished_run) == before


@pytest.mark.e2e
@pytest.mark.parametrize("target", ["checkpoint.json", "events.jsonl", "profile.toml", "candidates/000000.json",
                                    "bundle genotype.json", "bundle result.json"])
def test_an_output_never_replaces_a_file_the_run_trusts(target, finished_run, tmp_path, capfd):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    bundle = _bundle(run / "final" / "000000-seed0")
    (bundle / "result.json").write_text("{}")
    before = snapshot(run)
    if target.startswith("bundle "):
        out = bundle / target.split()[1]
        volume = tmp_path / "v.npy"
        np.save(volume, np.zeros((8, 8, 8), np.uint8))
        argv = ["predict", str(bundle), str(volume), "--device", "cpu", "-o", str(out)] \
            if out.suffix == ".json" else []
    else:
        out = run / target
        argv = ["export", str(run), "--format", "csv", "-o", str(out)]
    code, err = cli(capfd, *argv)
    assert_one_line(code, err, "write the output elsewhere")
    assert snapshot(run) == before


@pytest.mark.e2e
def test_a_train_run_without_its_plan_is_not_resumed_as_a_search(stopped_train_run, tmp_path, capfd):
    run = tmp_path / "run"
    shutil.copytree(stopped_train_run, run)
    (run / "train.json").unlink()
    before = snapshot(run)
    code, err = cli(capfd, "resume", str(run), "--headless")
    assert_one_line(code, err, "cannot resume")  # its final/seed<k>/ results are not a search's
    assert snapshot(run) == before


@pytest.mark.e2e
def test_closed_and_ascii_only_output_streams_are_not_internal_errors(finished_run):
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONIOENCODING": "ascii"}
    shown = subprocess.run([sys.executable, "-m", "nas3d_tui", "profiles"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "28\\xb3" in shown.stdout and shown.stderr == "", shown.stderr
    closed = subprocess.run(f"{sys.executable} -m nas3d_tui export {finished_run} >&-", shell=True, cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert closed.returncode == 0 and "internal error" not in closed.stderr, closed.stderr


def _bundle(folder: Path) -> Path:
    from engine.bundle import Preprocessing, write_bundle
    from engine.model import build_network
    from engine.space import Genotype

    genotype = Genotype.from_compact("S1M1F8 6 01 12")
    net = build_network(genotype, in_channels=1, num_classes=2)
    pre = Preprocessing((8, 8, 8), 1, "divide-255", (), "binary-class")
    write_bundle(folder, genotype, net.state_dict(), pre, num_classes=2, dataset="synthetic", seed=0, metrics={})
    return folder


def _fifo(path: Path) -> None:
    if path.exists():
        path.unlink()
    os.mkfifo(path)


@pytest.mark.e2e
@pytest.mark.timeout(60)
@pytest.mark.parametrize("what", ["checkpoint", "journal", "record", "own data file", "predict input", "labels CSV"])
def test_a_named_pipe_where_a_file_belongs_is_one_line_not_a_hang(what, stopped_run, tmp_path, capfd):
    """Opening a FIFO for reading waits for a writer forever: every reader checks for a regular file first."""
    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    bundle = _bundle(tmp_path / "bundle") if what == "predict input" else None
    pipe = {"checkpoint": run / "checkpoint.json", "journal": run / "events.jsonl", "record": _first_record(run),
            "own data file": tmp_path / "own.npz", "predict input": tmp_path / "volume.npy",
            "labels CSV": tmp_path / "labels.csv"}[what]
    _fifo(pipe)
    argv = {"own data file": ["data", "check", str(pipe)],
            "predict input": ["predict", str(bundle), str(pipe), "--device", "cpu"],
            "labels CSV": ["data", "import", str(tmp_path), "--labels", str(pipe), "--size", "8",
                           "-o", str(tmp_path / "o.npz")]}.get(what, ["resume", str(run), "--headless"])
    code, err = cli(capfd, *argv)
    assert_one_line(code, err, "not a regular file")


def test_a_run_name_too_long_for_a_folder_leaves_nothing(tmp_path, capfd, tiny_overrides):
    out = tmp_path / "runs"
    args = ["run", "quick", "--headless", "--set", f"run.name='{'x' * 300}'", "--set", f"run.output_dir='{out}'"]
    for s in tiny_overrides:
        args += ["--set", s]
    code, err = cli(capfd, *args)
    assert_one_line(code, err, "run.name")
    assert not out.exists()


@pytest.mark.parametrize("command", ["run", "resume", "attach", "export", "report", "data.root", "data.path"])
def test_over_long_paths_are_one_line(command, tmp_path, capfd, tiny_overrides):
    long = str(tmp_path / LONG / "run")
    if command == "run":
        argv = ["run", "quick", "--headless", "--run-dir", long, *sum((["--set", s] for s in tiny_overrides), [])]
    elif command in ("data.root", "data.path"):
        value = long if command == "data.root" else long + ".npz"
        argv = ["run", "quick", "--headless", "--run-dir", str(tmp_path / "r"),
                *sum((["--set", s] for s in [*tiny_overrides, f"{command}='{value}'"]), [])]
    else:
        argv = [command, long]
    code, err = cli(capfd, *argv)
    assert_one_line(code, err)
    assert "too long" in err.lower() or "no run directory" in err or "not found" in err, err
    assert not (tmp_path / "r").exists()


def test_two_runs_started_together_on_one_folder_never_delete_each_other(tmp_path, tiny_profile):
    """The one refused must not remove the folder the other made (both saw no folder when they began)."""
    from engine.errors import RunDirError
    from engine.rundir import RunDir

    target = tmp_path / "same"
    other = RunDir(target)
    session = Session(tiny_profile(), target)
    checks = session._prepare

    def checks_while_the_other_run_starts():
        prepared = checks()
        other.create()
        other.acquire()  # the other process gets there first
        (target / "events.jsonl").write_text('{"kind": "run_started"}\n')
        return prepared

    session._prepare = checks_while_the_other_run_starts
    try:
        with pytest.raises(RunDirError, match="in use"):
            session.run()
        assert (target / "events.jsonl").is_file(), "the refused run deleted the other run's folder"
    finally:
        other.release()
