"""The known holes of the hardening passes, closed: each is one line, the right exit code, nothing written.

* a Ctrl-C while the program is still importing and parsing;
* ``data.search_fraction`` so small that a split has one class or one sample;
* ``~`` in any path argument (``export -o '~/x.csv'`` wrote ``./~/x.csv``);
* a search in which every candidate failed (exit 1, why and what to change)
  or most did (said at the end);
* a full disk (the line names the file);
* hints naming the program as it was started (``data import``'s closing hint);
* ``--set`` with several values.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine import events as ev
from engine.journal import JournalSink
from engine.fraction_check import check_search_fraction
from engine.records import CandidateRecord
from engine.session.failures import summarize_failures
from nas3d_tui.cli import build_parser, expand_user_paths, main
from nifti_files import write_nifti_folder
from tiny_search import TINY

REPO = Path(__file__).resolve().parents[2]


def sets(*overrides: str) -> list[str]:
    return ["--set", *overrides]


def one_line(capfd, code: int, expected: int = 2) -> str:
    err = capfd.readouterr().err
    assert code == expected, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------ --set with several values


def test_one_set_takes_several_values(tmp_path, capfd):
    run = tmp_path / "run"
    code = main(["run", "quick", "--headless", "--run-dir", str(run), *sets("run.device='cpu'", "search.populaton=4")])
    assert "search.populaton" in one_line(capfd, code)  # the second value reached the profile
    assert not run.exists()


def test_a_profile_after_the_set_values_is_the_profile(tmp_path, capfd):
    run = tmp_path / "run"
    code = main(["run", "--headless", "--run-dir", str(run), *sets("run.device='cpu'"), str(tmp_path / "nosuch.toml")])
    assert "nosuch.toml" in one_line(capfd, code)
    assert not run.exists()


# ------------------------------------------------------------------ ~ in every path argument


@pytest.mark.parametrize("argv", [
    ["run", "~/p.toml", "--run-dir", "~/r"],
    ["resume", "~/r"],
    ["attach", "~/r"],
    ["export", "~/r", "-o", "~/x.csv"],
    ["train", "~/r:3", "--root", "~/d", "--path", "~/d.npz", "--out", "~/t"],
    ["report", "~/r", "-o", "~/rep"],
    ["serve", "run", "~/p.toml", "--run-dir", "~/r"],
    ["serve", "attach", "~/r"],
    ["data", "import", "~/f", "--labels", "~/l.csv", "--size", "8", "-o", "~/o.npz"],
    ["data", "check", "~/o.npz"],
    ["predict", "~/b", "~/in.nii", "~/more", "-o", "~/p.csv"],
    ["export-model", "~/b", "-o", "~/m.onnx"],
])
def test_every_path_argument_expands_the_home_folder(argv, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    args = expand_user_paths(build_parser().parse_args(argv))
    values = [v for v in vars(args).values() if isinstance(v, (str, list))]
    flat = [x for v in values for x in (v if isinstance(v, list) else [v]) if isinstance(x, str)]
    assert not any(x.startswith("~") for x in flat), flat
    assert sum(x.startswith(str(tmp_path)) for x in flat) == sum(a.startswith("~") for a in argv)


# ------------------------------------------------------------------ a search fraction too small


@pytest.mark.parametrize("fraction, lacks", [("0.0001", "training subset of 1 sample"),
                                             ("0.01", "validation subset of 1 sample")])
def test_a_search_fraction_too_small_is_refused_before_the_run_starts(fraction, lacks, tmp_path, capfd):
    run = tmp_path / "run"
    code = main(["run", "quick", "--headless", "--run-dir", str(run), *sets(*TINY, f"data.search_fraction={fraction}")])
    line = one_line(capfd, code)
    assert f"data.search_fraction = {fraction}" in line and lacks in line
    assert "the smallest fraction that works is 0.016" in line
    assert not run.exists()
    from engine.data import load_datafile
    from engine.data_source import bundled_path

    check_search_fraction(load_datafile(bundled_path(), "cpu"), 0.016, 0)  # the fraction it names is accepted


# ------------------------------------------------------------------ every candidate failed


@pytest.fixture(scope="module")
def all_failed(tmp_path_factory):
    """A tiny search whose every candidate fails for real (a learning rate that makes the loss NaN)."""
    run = tmp_path_factory.mktemp("failed") / "run"
    argv = ["run", "quick", "--headless", "--run-dir", str(run),
            *sets(*TINY, "search.budget=4", "training.lr=1e30", "executor.kind='local'")]
    proc = subprocess.run([sys.executable, "-m", "nas3d_tui", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    return run, proc


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_a_search_in_which_every_candidate_failed_exits_1_saying_why_and_what_to_change(all_failed):
    run, proc = all_failed
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "every one of the 4 trained candidates failed" in lines[0] and "most often:" in lines[0]
    assert not (run / "final").exists() or not any((run / "final").iterdir())
    kinds = [line for line in (run / "events.jsonl").read_text().splitlines() if '"run_finished"' in line]
    assert kinds == []


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_home_in_a_quoted_export_target_is_the_home_folder(all_failed, tmp_path, monkeypatch, capfd):
    run, _ = all_failed
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(run), "-o", "~/board.csv"]) == 0
    assert (tmp_path / "home" / "board.csv").is_file()
    assert not (tmp_path / "~").exists()


def _record(cid: int, status: str, error: str | None = None) -> CandidateRecord:
    return CandidateRecord(candidate_id=cid, generation=0, phase="init", status=status, key=f"k{cid}",
                           fitness=0.5 if status == "ok" else None, error=error)


def test_most_failed_and_all_failed_are_told_apart_with_advice():
    why = "val_auc was undefined in every epoch (one class in the validation split?)"
    most = summarize_failures([_record(0, "ok"), _record(1, "failed", why), _record(2, "failed", why),
                               _record(3, "duplicate")])
    assert most.most_failed and not most.all_failed
    assert "2 of 3 trained candidates failed" in most.most_failed_message("r")
    assert "data.search_fraction" in most.most_failed_message("r")
    every = summarize_failures([_record(0, "oom", "CUDA out of memory"), _record(1, "oom", "CUDA out of memory")])
    assert every.all_failed and "training.batch_size" in every.all_failed_message("r")
    few = summarize_failures([_record(0, "ok"), _record(1, "ok"), _record(2, "failed", "boom")])
    assert not few.most_failed and not few.all_failed


# ------------------------------------------------------------------ a full disk


def test_a_full_disk_names_the_journal_it_could_not_write():
    sink = JournalSink("/dev/full")  # every write: "No space left on device"
    with pytest.raises(OSError) as info:
        sink(ev.RunFailed(error="x"))
    assert info.value.filename == "/dev/full" and "/dev/full" in str(info.value)
    with pytest.raises(OSError) as info:
        sink.close()
    assert info.value.filename == "/dev/full"


# ------------------------------------------------------------------ hints name the program


def test_data_imports_hint_names_the_program_as_started(tmp_path, monkeypatch, capsys):
    script = tmp_path / ".venv" / "bin" / "nas3d-tui"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script)])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    folder, labels = write_nifti_folder(tmp_path, per_class=4)
    assert main(["data", "import", str(folder), "--labels", str(labels), "--size", "8", "-o", "own.npz"]) == 0
    hint = [line for line in capsys.readouterr().out.splitlines() if "search on it with" in line]
    assert hint == [f"search on it with: {os.path.join('.venv', 'bin', 'nas3d-tui')} run quick --set data.path=own.npz"]


def test_an_engine_error_quoting_a_command_names_the_program_as_started(tmp_path, monkeypatch, capfd):
    script = tmp_path / ".venv" / "bin" / "nas3d-tui"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(script)])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    from nas3d_tui.cli import fail

    fail("the run in x has already finished; export it with `nas3d-tui export x`")
    err = capfd.readouterr().err
    assert err.strip() == f"nas3d-tui: error: the run in x has already finished; export it with `{script} export x`"


# ------------------------------------------------------------------ an early Ctrl-C


@pytest.mark.e2e
def test_a_ctrl_c_while_the_program_starts_is_one_line_and_exit_130(tmp_path):
    """Started as the program, a Ctrl-C that lands while the commands are imported and the parser built
    (here: delivered from inside the parser's construction) is one line, not a KeyboardInterrupt traceback."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.argv = [{str(tmp_path / 'nas3d-tui')!r}, "run", "quick", "--headless", "--run-dir", {str(tmp_path / 'run')!r}]
        import nas3d_tui.cli as cli
        real = cli.load
        def load(name):
            if name == "attach":
                os.kill(os.getpid(), signal.SIGINT)
            return real(name)
        cli.load = load
        sys.exit(cli.main())
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == "nas3d-tui: error: interrupted"
    assert not (tmp_path / "run").exists()
