"""A real one-node SLURM cluster: examples/slurm/search.sbatch requeued twice mid-run ends as an uninterrupted run.

The fixture brings up SLURM from Debian's packages (``slurm-wlm``, ``munge``;
``.ci/run`` installs them) on this machine: ``munged`` with its own key and
socket, ``slurmctld`` and ``slurmd`` in the foreground on free ports, every
file under a temporary folder, nothing of the system's configuration used.
The test submits the example batch script with a tiny profile and requeues
the job (``scontrol requeue``, what an operator or a preemption does) twice:
once during the search, once during the final retraining after an epoch.
SLURM sends TERM to the run each time; it must stop at its next batch boundary
(exit 130), and the requeued job's ``run --resume`` must continue it. The job
ends COMPLETED with the exported leaderboard and final test metrics of an
uninterrupted headless run of the same profile. Requeued once more after it
finished, the job completes again at once (the run says it is finished).

Where the packages cannot be installed or a daemon does not start (no root,
no hostname, a sandbox), the test is skipped with the reason -- never passed.
Timeouts are generous: a requeued job waits ``cred_expire`` (10 s here) before
it starts again, and CI has two shared cores.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tiny_search import TINY

pytestmark = [pytest.mark.slurm, pytest.mark.e2e, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "examples" / "slurm" / "search.sbatch"
# The tiny search with a final retraining; a budget that keeps the search going for a while.
SETTINGS = [*TINY, "search.budget=16", "final.top_k=1", "final.epochs=3", "final.seeds=[0]"]
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "scontrol", "sinfo", "squeue", "scancel")


# ---------------------------------------------------------------------------------------------
# The cluster
# ---------------------------------------------------------------------------------------------


def _which(name: str) -> str | None:
    """``name`` on PATH, or in /usr/sbin or /sbin (the daemons live there, often not on a user's PATH)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/sbin"):
        if os.access(f"{folder}/{name}", os.X_OK):
            return f"{folder}/{name}"
    return None


def _missing() -> list[str]:
    return [n for n in (*DAEMONS, *CLIENTS) if _which(n) is None]


def _install() -> str:
    """Install slurm-wlm and munge with apt-get (a fallback: .ci/run does it); returns why it failed, or ''."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root or no apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"]):
        try:
            out = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{' '.join(args)}: {exc}"
        if out.returncode != 0:
            return f"{' '.join(args)} exited {out.returncode}: {(out.stderr or out.stdout).strip()[-300:]}"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 6) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-n:])
    except OSError:
        return f"(no {path.name})"


class Cluster:
    """The daemons of a one-node cluster under ``root`` and the environment its clients need."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host = socket.gethostname().split(".")[0]
        self.conf = root / "slurm.conf"
        self.log = root / "log"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        munge = self.root / "munge"
        for d in (munge, self.log, self.root / "state", self.root / "spool"):
            d.mkdir(parents=True, exist_ok=True)
        munge.chmod(0o755)  # munged wants its socket's folder reachable by every user
        key = munge / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)  # owned by the user munged runs as (here root, with --force)
        socket_path = munge / "munge.socket.2"
        self._spawn("munged", [_which("munged"), "--foreground", "--force", f"--socket={socket_path}",
                               f"--key-file={key}", f"--pid-file={munge / 'munged.pid'}",
                               f"--log-file={self.log / 'munged.log'}", f"--seed-file={munge / 'munged.seed'}"])
        self._wait(lambda: socket_path.exists(), 30, "munged", self.log / "munged.log")
        memory = max(512, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 // 2)
        self.conf.write_text(f"""\
ClusterName=nas3dtest
SlurmctldHost={self.host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job waits this long (default 120 s) before it may start again
AuthInfo=socket={socket_path},cred_expire=10
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
StateSaveLocation={self.root / 'state'}
SlurmdSpoolDir={self.root / 'spool'}
SlurmctldPidFile={self.root / 'slurmctld.pid'}
SlurmdPidFile={self.root / 'slurmd.pid'}
SlurmctldLogFile={self.log / 'slurmctld.log'}
SlurmdLogFile={self.log / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc={self.log / 'jobcomp.txt'}
MpiDefault=none
ReturnToService=2
JobRequeue=1
MinJobAge=600
KillWait=120
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._spawn("slurmd", [_which("slurmd"), "-D", "-N", self.host, "-f", str(self.conf)])
        self._wait(lambda: self.node_state() == "idle", 90, "the node to be idle (sinfo)", self.log / "slurmd.log")

    def _spawn(self, name: str, argv: list[str | None]) -> None:
        out = open(self.log / f"{name}.out", "w")
        self.procs[name] = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                            start_new_session=True)
        out.close()

    def _wait(self, ready, timeout: float, what: str, log: Path) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
            if dead:
                break
            time.sleep(0.5)
        dead = ", ".join(f"{n} exited {c}" for n, c in
                         ((n, p.poll()) for n, p in self.procs.items()) if c is not None)
        outs = " ".join(_tail(self.log / f"{n}.out", 2) for n in self.procs)
        raise RuntimeError(f"waiting for {what}: {dead or 'timed out'}; {_tail(log)} {outs}")

    def node_state(self) -> str:
        out = self.run("sinfo", "-h", "-n", self.host, "-o", "%T", check=False)
        return out.stdout.strip().rstrip("*~#") if out.returncode == 0 else ""

    def run(self, *args: str, check: bool = True, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        out = subprocess.run([_which(args[0]) or args[0], *args[1:]], capture_output=True, text=True, timeout=60,
                             env={**self.env, **(env or {})}, cwd=cwd)
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {out.returncode}: {out.stderr.strip()}")
        return out

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job``'s fields (the cluster keeps an ended job for MinJobAge = 600 s)."""
        out = self.run("scontrol", "show", "job", "-o", job_id, check=False).stdout
        return dict(m.groups() for m in re.finditer(r"(\w+)=(\S*)", out))

    def stop(self) -> None:
        ctld = self.procs.get("slurmctld")
        if ctld is not None and ctld.poll() is None:  # end this cluster's jobs (their processes) first
            self.run("scancel", "--full", "--user", "root", check=False)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.run("squeue", "-h", check=False).stdout.strip():
                time.sleep(1)
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.name != "posix" or not sys.platform.startswith("linux"):
        pytest.skip("SLURM test: Linux only")
    missing = _missing()
    if missing:
        why = _install()
        missing = _missing()
        if missing:
            pytest.skip(f"SLURM test: {', '.join(missing)} not found and slurm-wlm / munge could not be installed "
                        f"({why or 'installed, still missing'})")
    if os.geteuid() != 0:
        pytest.skip(f"SLURM test: slurmd must run as root to start jobs (this test runs as uid {os.geteuid()})")
    # A short folder: munged's socket path must fit a Unix socket's 108 bytes.
    root = Path(f"/tmp/nas3d-slurm-{os.getpid()}")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(mode=0o755)
    c = Cluster(root)
    try:
        c.start()
    except (RuntimeError, OSError) as exc:
        c.stop()
        pytest.skip(f"SLURM test: the one-node cluster did not start: {exc}")
    try:
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------


def nas3d_wrapper(folder: Path) -> Path:
    """``NAS3D_TUI`` for the batch script: this interpreter with this checkout's code."""
    path = folder / "nas3d-tui"
    path.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m nas3d_tui "$@"\n')
    path.chmod(0o755)
    return path


def journal(run_dir: Path) -> str:
    path = run_dir / "events.jsonl"
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def events(run_dir: Path, kind: str, **fields: object) -> list[dict]:
    """The journal's events of ``kind`` with these field values (complete lines only: the run may be writing)."""
    found = []
    for line in journal(run_dir).splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("kind") == kind and all(event.get(k) == v for k, v in fields.items()):
            found.append(event)
    return found


def exported(run_dir: Path) -> list[dict]:
    """``export --format json`` without what differs between two equal runs (time taken, worker name)."""
    out = subprocess.run([sys.executable, "-m", "nas3d_tui", "export", str(run_dir), "--format", "json"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [{k: v for k, v in row.items() if k not in ("seconds", "worker")} for row in json.loads(out.stdout)]


def wait_until(what: str, ready, cluster: Cluster, job_id: str, log: Path, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        state = cluster.job(job_id).get("JobState", "?")
        if state in ("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"):
            raise AssertionError(f"job {job_id} ended {state} while waiting for {what}: {_tail(log, 15)}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; job {cluster.job(job_id).get('JobState')}: {_tail(log, 15)}")


def test_a_search_requeued_in_the_search_and_in_the_final_phase_ends_as_an_uninterrupted_run(cluster, tmp_path):
    reference = tmp_path / "reference"
    args = [sys.executable, "-m", "nas3d_tui", "run", "quick", "--headless", "--run-dir", str(reference)]
    for s in SETTINGS:
        args += ["--set", s]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr

    run_dir = tmp_path / "run"
    env = {"PROFILE": "quick", "RUN_DIR": str(run_dir), "NAS3D_TUI": str(nas3d_wrapper(tmp_path)),
           "NAS3D_SET": " ".join(SETTINGS)}
    submitted = cluster.run("sbatch", "--parsable", "--chdir", str(tmp_path), str(SCRIPT), cwd=tmp_path, env=env)
    job_id = submitted.stdout.strip().split(";")[0]
    log = tmp_path / f"nas3d-search-{job_id}.out"

    # During the search: once a candidate has finished.
    wait_until("a finished candidate", lambda: len(events(run_dir, "candidate_finished")) >= 1,
               cluster, job_id, log)
    cluster.run("scontrol", "requeue", job_id)
    # During the final retraining: once its first epoch (and so its epoch checkpoint) is done.
    wait_until("a final epoch", lambda: len(events(run_dir, "epoch_finished", phase="final")) >= 1,
               cluster, job_id, log)
    assert len(events(run_dir, "run_started")) == 2, "the requeued job did not start the run again"
    cluster.run("scontrol", "requeue", job_id)
    wait_until("the job to complete", lambda: cluster.job(job_id).get("JobState") == "COMPLETED", cluster, job_id, log)

    job = cluster.job(job_id)
    assert job.get("Restarts") == "2" and job.get("ExitCode") == "0:0", job
    text = log.read_text(errors="replace")
    assert text.count("nas3d-tui exited with 130") == 2, text  # each requeue: stopped at a batch boundary, not killed
    assert text.count("nas3d-tui exited with 0") == 1, text
    assert [e["resumed"] for e in events(run_dir, "run_started")] == [False, True, True]
    assert len(events(run_dir, "training_resumed", phase="final")) == 1  # from its epoch checkpoint
    assert exported(run_dir) == exported(reference)
    assert any(row["test_auc"] is not None for row in exported(run_dir))

    # A requeued job of a finished run: the run says it has finished, the job completes.
    before = journal(run_dir)
    cluster.run("scontrol", "requeue", job_id)
    wait_until("the job to start again", lambda: cluster.job(job_id).get("Restarts") == "3", cluster, job_id, log)
    wait_until("the job to complete again", lambda: cluster.job(job_id).get("JobState") == "COMPLETED",
               cluster, job_id, log)
    assert "has already finished" in log.read_text(errors="replace")
    assert journal(run_dir) == before
