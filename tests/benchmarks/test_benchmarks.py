"""The benchmark scripts run on the CPU with small settings and end with their promised last line.

These check that the scripts work, not how fast anything is (speed is what
the scripts themselves measure, on a quiet machine or a GPU).
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tiny_search import TINY

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"

pytestmark = pytest.mark.e2e  # each script runs tiny searches or trains a candidate


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_sets(*extra: str) -> list[str]:
    out: list[str] = []
    for s in [*TINY, *extra]:
        if s.split("=")[0] in ("search.budget", "final.top_k"):
            continue  # the scripts set these themselves
        out += ["--set", s]
    return out


@pytest.mark.timeout(600)
def test_search_quality_compares_ode_with_random_search(capsys):
    code = load("search_quality").main(
        ["--profile", "quick", "--budget", "2", "--every", "1", "--top-k", "1", "--seeds", "0", "--device", "cpu",
         *tiny_sets("final.epochs=1")]
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert any(line.startswith("ode: ") for line in out) and any(line.startswith("random: ") for line in out)
    assert sum("finalist #" in line for line in out) == 2
    assert re.fullmatch(r"ode_minus_random_auc: [+-]\d+\.\d{4}", out[-1]), out[-1]


@pytest.mark.timeout(600)
def test_search_speed_projects_the_200_candidate_search(capsys):
    code = load("search_speed").main(["--profile", "quick", "--device", "cpu", "--candidates", "2", *tiny_sets()])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert any("candidates/hour" in line for line in out)
    assert re.fullmatch(r"projected_minutes_200: \d+\.\d", out[-1]), out[-1]


@pytest.mark.timeout(600)
def test_engine_overhead_times_the_engine_and_the_readers_of_its_run(capsys, tmp_path):
    code = load("engine_overhead").main(
        ["--profile", "quick", "--candidates", "6", "--no-report", "--repeat", "1", "--keep", str(tmp_path / "run"), *tiny_sets()]
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert any(re.match(r"profile quick: .* 6 candidates trained by a stand-in", line) for line in out), out
    for name in ("export_json_in_process_s", "export_json_command_s", "attach_s", "dashboard_redraw_s"):
        assert any(re.match(rf"{name}: \d+\.\d{{3}}", line) for line in out), name
    assert any(re.match(r"dashboard_rss_mb: \d+\.\d \(peak \d+\.\d\)", line) for line in out), out
    assert any(re.match(r"dashboard_state_mb: \d+\.\d\d \(\d+ bytes for each of \d+ candidates\)", line) for line in out), out
    assert re.fullmatch(r"engine_cpu_ms_per_candidate: \d+\.\d\d", out[-2]), out[-2]
    assert re.fullmatch(r"engine_ms_per_candidate: \d+\.\d\d", out[-1]), out[-1]
    records = sorted((tmp_path / "run" / "candidates").glob("*.json"))
    assert len(records) >= 6  # a real session wrote its records (the stand-in trained, nothing else was faked)


@pytest.mark.timeout(300)
def test_epoch_profile_groups_one_batch_of_the_quick_candidate(capsys):
    code = load("epoch_profile").main(["--which", "quick", "--quick-batches", "1", "--no-eval", "--top", "5"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert any(line.startswith("quick: 1 batches, 32 samples") for line in out), out
    groups = ("conv_fwd", "conv_bwd", "norm", "mish", "relu", "pool", "optimizer", "data", "loss", "other_ops", "python")
    m = re.fullmatch(r"profile quick: " + " ".join(rf"{g} (\d+\.\d)%" for g in groups), out[-1])
    assert m, out[-1]
    shares = [float(s) for s in m.groups()]
    assert 99.0 <= sum(shares) <= 101.0, shares  # the groups split the wall time
    assert shares[0] > 0 and shares[1] > 0  # a training batch convolves forward and backward


@pytest.mark.timeout(600)
def test_amp_ranking_compares_fp32_and_bf16_on_the_cpu(capsys):
    code = load("amp_ranking").main(["--profile", "quick", "--device", "cpu", "--candidates", "3", *tiny_sets()])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert sum(line.lstrip().startswith("#") for line in out) == 3, out
    assert any(re.fullmatch(r"DE selections that change: \d+ of \d+( \(\d+\.\d %\))?", line) for line in out), out
    assert any(re.fullmatch(r"pairwise orders that change: \d+ of 3", line) for line in out), out
    assert re.fullmatch(r"spearman: (-?\d\.\d{3}|nan)", out[-1]), out[-1]


@pytest.mark.timeout(600)
def test_final_seeds_times_the_seeds_side_by_side_and_checks_the_weights():
    import subprocess
    import sys

    # as a script: its --processes mode spawns processes that import it by its path
    proc = subprocess.run([sys.executable, str(BENCH / "final_seeds.py"), "--arch", "S1M1F8 6 01 12", "--batches", "1",
                           "--repeats", "1", "--processes"], capture_output=True, text=True, timeout=540)
    out = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.fullmatch(r"repeat 1: sequential \d+\.\d s · side by side \d+\.\d s \(\d+\.\d\dx\) · processes \d+\.\d s "
                        r"\(\d+\.\d\dx\)", out[1]), out
    assert out[-3].startswith("side by side = sequential with") and out[-3].endswith("bit for bit: yes"), out
    assert re.fullmatch(r"processes ratio: \d+\.\d\d", out[-2]), out
    assert re.fullmatch(r"ratio: \d+\.\d\d", out[-1]), out
