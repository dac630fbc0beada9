"""A tabular benchmark: every trained cell of a finished run, in one versioned, checked JSON file (issue 29).

Built from a run directory by ``nas3d-tui bench table RUN_DIR -o TABLE.json``
(``build_table``), read back by ``read_table`` (every field checked; a bad
file is one line naming the field), and searched against by
``engine.executors.table.TableEvaluator``.

Layout::

    {"format": "nas3d-tui/bench-table", "version": 1,
     "header": {"command", "created", "machine": {...}, "run_dir", "profile": {section: {key: value}},
                "protocol": {...}, "space_cells", "strategy", "seed", "test_metrics"},
     "entries": [ {one per trained candidate: the candidate record's fields (key, genotype,
                   params, flops, fitness, val_acc, val_auc, epochs, seconds, status, pruned_at,
                   history = one dict per epoch: epoch, train_loss, val_loss, val_acc, val_auc,
                   seconds; test_acc, test_auc when the run scored them), plus "compact", "seed"
                   (its training seed) and "told_fitness" (what the search strategy was told)} ]}

One result per cell and training seed: a cell trained twice (two seeds) has
two entries. ``BenchTable.lookup(key, seed)`` returns the entry of that cell
trained with that seed when the table has it, else the cell's first entry
(the lowest candidate id of the run that built the table). So a search
replayed with the run's own seed gets exactly the run's results, and any
other search gets one fixed result per cell.

Test metrics: an exhaustive run scores each training's best epoch (the one
that gave its fitness) on the test split once the training ends -- inference
with that epoch's weights, no retraining -- and records ``test_acc`` /
``test_auc`` (``engine.training.loop.train_candidate(score_test=True)``).
Other runs keep no weights of search candidates, so their tables have none;
``header.test_metrics`` says which.

``random_expectation`` is the yardstick a report draws beside a run's
anytime curve: the expected best of b distinct cells of the table drawn
uniformly at random.

Pure: no torch; reads and writes JSON only.
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .atomic import atomic_write_json
from .errors import UserError
from .records import TRAINED_STATUSES, CandidateRecord, EpochRecord

__all__ = [
    "FORMAT",
    "VERSION",
    "TableError",
    "BenchTable",
    "TableEntry",
    "build_table",
    "read_table",
    "write_table",
    "protocol_of",
    "check_protocol",
    "table_seed",
    "add_entries",
    "SHIPPED_TABLES",
    "shipped_table_path",
    "resolve_table",
    "random_expectation",
]

FORMAT = "nas3d-tui/bench-table"
VERSION = 1
# Training settings that do not change a CPU result (as the epoch checkpoint's identity leaves them out).
_VOLATILE = ("cudnn_benchmark", "checkpoint_after_seconds")
NO_TEST_METRICS = (
    "none: this run did not score its candidates on the test split (only an exhaustive run does: "
    "search candidates keep no weights)"
)


def test_metrics_note(entries: Sequence["TableEntry"]) -> str:
    """``header.test_metrics``: how many entries carry test metrics, and what they are."""
    scored = sum(1 for e in entries if e.record.test_auc is not None)
    if not scored:
        return NO_TEST_METRICS
    return (f"test_acc/test_auc of {scored} of {len(entries)} entries: each training's best epoch (the one that gave "
            "its fitness) scored on the whole test split, inference only")


# Tables that ship with the package (``nas3d_tui/tables/<name>.json``): name -> what it is.
SHIPPED_TABLES = {
    "quick-adrenalmnist3d": "every cell of the quick space (250), quick protocol, bundled AdrenalMNIST3D 28³",
}


class TableError(UserError):
    """A table file cannot be used; one line naming the file and the field."""


def shipped_table_path(name: str) -> Path:
    """Path of a shipped table (installed package or source tree); the file need not exist."""
    try:
        from importlib.resources import files

        candidate = files("nas3d_tui.tables") / f"{name}.json"
        if candidate.is_file():
            return Path(str(candidate))
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parents[1] / "nas3d_tui" / "tables" / f"{name}.json"


def resolve_table(value: str | os.PathLike[str]) -> Path:
    """A table file's path: ``value`` itself when it names a file, a shipped table's file when it is one's name.

    A value that is neither is returned as a path (``read_table`` then says no such file).
    """
    p = Path(value)
    if not p.exists() and str(value) in SHIPPED_TABLES:
        return shipped_table_path(str(value))
    return p


def table_seed(run_seed: int, candidate_id: int) -> int:
    """The training seed of a candidate (``engine.executors.candidate_seed``, without importing the executors)."""
    return (int(run_seed) * 1_000_003 + int(candidate_id)) % (2**31 - 1)


@dataclass(frozen=True)
class TableEntry:
    """One training of one cell: its record (with history), its seed and what the search was told."""

    record: CandidateRecord
    seed: int

    @property
    def key(self) -> str:
        return str(self.record.key)

    def to_dict(self) -> dict[str, Any]:
        d = self.record.to_dict()
        d["compact"] = str(self.record.genotype.get("compact", ""))
        d["seed"] = self.seed
        d["told_fitness"] = self.record.told_fitness
        return d


@dataclass(frozen=True)
class BenchTable:
    """A checked table: its header and entries, with lookup by cell key and seed."""

    header: dict[str, Any]
    entries: tuple[TableEntry, ...]

    def __post_init__(self) -> None:
        by_cell: dict[str, list[TableEntry]] = {}
        for e in sorted(self.entries, key=lambda e: e.record.candidate_id):
            by_cell.setdefault(e.key, []).append(e)
        object.__setattr__(self, "_by_cell", by_cell)

    @property
    def cells(self) -> dict[str, list[TableEntry]]:
        """Entries by cell key, each list in candidate-id order (the first is the default result)."""
        by_cell: dict[str, list[TableEntry]] = getattr(self, "_by_cell")
        return by_cell

    def lookup(self, key: str, seed: int | None = None) -> TableEntry | None:
        """The cell's entry trained with ``seed``, else its first entry; None when the cell is not in the table."""
        entries = self.cells.get(key)
        if not entries:
            return None
        if seed is not None:
            for e in entries:
                if e.seed == seed:
                    return e
        return entries[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "header": self.header,
            "entries": [e.to_dict() for e in sorted(self.entries, key=lambda e: e.record.candidate_id)],
        }


def protocol_of(profile_dict: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What must be equal for a lookup to stand for a training: the data, the training settings, the fitness."""
    training = {k: v for k, v in profile_dict["training"].items() if k not in _VOLATILE}
    return {
        "data": dict(profile_dict["data"]),
        "training": training,
        "fitness": profile_dict["search"]["fitness"],
    }


def check_protocol(table: BenchTable, profile_dict: Mapping[str, Mapping[str, Any]], where: str) -> None:
    """A search may use the table only with the protocol it was built with.

    Raises:
        TableError: names the first setting that differs.
    """
    want = table.header["protocol"]
    have = protocol_of(profile_dict)
    for section in ("data", "training"):
        for name in sorted(set(want[section]) | set(have[section])):
            a, b = want[section].get(name), have[section].get(name)
            if a != b:
                raise TableError(
                    f"{where} was built with {section}.{name} = {a!r}; the profile has {b!r}: a lookup would not "
                    "stand for a training (use the table's protocol)"
                )
    if want["fitness"] != have["fitness"]:
        raise TableError(
            f"{where} was built with search.fitness = {want['fitness']!r}; the profile has {have['fitness']!r}"
        )


def random_expectation(values: Sequence[float]) -> list[float]:
    """The expected best of ``b`` values drawn uniformly at random without replacement, for b = 1..N.

    With the N values sorted ascending v_1 <= ... <= v_N, the best of b is v_k
    with probability C(k-1, b-1) / C(N, b), so E[best of b] = sum_k v_k * C(k-1, b-1) / C(N, b).
    The weights are built for every b at once from k = N down (w_N = b / N,
    w_{k-1} = w_k * (k - b) / (k - 1)): each step multiplies by a factor in
    [0, 1], so no large binomial is formed and the relative error stays near
    N machine epsilons (N up to the 5,000 cells an exhaustive run allows:
    about 1e-12).

    Args:
        values: one fitness per cell (order does not matter); finite numbers.

    Returns:
        ``N`` expectations, the b-th (0-based b - 1) for a budget of b cells;
        non-decreasing, the first the mean and the last the maximum. Empty for no values.
    """
    v = np.sort(np.asarray(values, dtype=float))
    n = len(v)
    if n == 0:
        return []
    b = np.arange(1, n + 1, dtype=float)
    w = b / n  # C(N-1, b-1) / C(N, b): the chance that the best of b is v_N
    expected = w * v[n - 1]
    for k in range(n, 1, -1):  # w_k -> w_{k-1}; zero once k - 1 < b (fewer than b values below)
        w = w * np.maximum(k - b, 0.0) / (k - 1)
        expected += w * v[k - 2]
    return [float(x) for x in expected]


def _machine() -> dict[str, Any]:
    from importlib import metadata

    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = ""
    return {
        "node": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count() or 0,
        "python": platform.python_version(),
        "torch": torch_version,
    }


def build_table(
    profile_dict: Mapping[str, Mapping[str, Any]],
    records: Mapping[int, CandidateRecord],
    *,
    command: str,
    run_dir: str,
    space_cells: int | None,
    device: str = "",
) -> BenchTable:
    """The table of a run: one entry per trained candidate (ok, pruned, oom, failed), in id order.

    Duplicates and infeasible candidates are left out (they trained nothing).
    """
    seed = int(profile_dict["run"]["seed"])
    entries = tuple(
        TableEntry(r, table_seed(seed, cid)) for cid, r in sorted(records.items()) if r.status in TRAINED_STATUSES
    )
    header = {
        "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**_machine(), "device": device},
        "run_dir": run_dir,
        "profile": {s: dict(v) for s, v in profile_dict.items()},
        "protocol": protocol_of(profile_dict),
        "strategy": profile_dict["search"]["strategy"],
        "seed": seed,
        "space_cells": space_cells,
        "cells": len({e.key for e in entries}),
        "test_metrics": test_metrics_note(entries),
    }
    return BenchTable(header, entries)


def add_entries(table: BenchTable, added: Sequence[tuple[CandidateRecord, int]], note: str) -> BenchTable:
    """``table`` with more trainings (record, seed) of its cells, and ``note`` appended to ``header.extra_trainings``.

    Each record keeps its own candidate id (above the run's, so a cell's first entry stays its default).

    Raises:
        TableError: a record of a cell the table does not hold, or a (cell, seed) it already has.
    """
    have = {(e.key, e.seed) for e in table.entries}
    ids = {e.record.candidate_id for e in table.entries}
    entries = list(table.entries)
    for record, seed in added:
        if str(record.key) not in table.cells:
            raise TableError(f"cell {record.key} is not in the table: extra trainings are of its cells only")
        if (str(record.key), seed) in have or record.candidate_id in ids:
            raise TableError(f"cell {record.key} with seed {seed} (id {record.candidate_id}) is already in the table")
        have.add((str(record.key), seed))
        ids.add(record.candidate_id)
        entries.append(TableEntry(record, int(seed)))
    header = dict(table.header)
    header["extra_trainings"] = [*header.get("extra_trainings", []), note]
    header["test_metrics"] = test_metrics_note(entries)
    return BenchTable(header, tuple(entries))


def write_table(table: BenchTable, path: str | os.PathLike[str]) -> None:
    """Write atomically (temp file, fsync, rename)."""
    atomic_write_json(path, table.to_dict())


# ------------------------------------------------------------------ reading, checked
def _fail(where: str, message: str) -> TableError:
    return TableError(f"{where}: {message}")


def _need(obj: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    if name not in obj:
        raise _fail(where, f"field {name!r} is missing")
    value = obj[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise _fail(where, f"{name} = {json.dumps(value)[:60]} has the wrong type")
    return value


def _check_history(history: Sequence[EpochRecord], where: str) -> None:
    """Epochs numbered 1, 2, ... (their fields' types were checked with the record, by ``engine.schema``)."""
    for i, h in enumerate(history):
        if h.epoch != i + 1:
            raise _fail(f"{where}.history[{i}]", f"epoch = {h.epoch} is not {i + 1}")


def table_from_dict(data: object, where: str) -> BenchTable:
    """Check and build a table from its JSON form.

    Raises:
        TableError: one line naming the file and the first field that is wrong.
    """
    if not isinstance(data, dict):
        raise _fail(where, "not a nas3d-tui table (expected a JSON object)")
    if data.get("format") != FORMAT:
        raise _fail(where, f"format = {json.dumps(data.get('format'))[:60]}; expected {FORMAT!r}")
    version = data.get("version")
    if version != VERSION:
        raise _fail(where, f"version = {json.dumps(version)[:20]}; this nas3d-tui reads version {VERSION}")
    header = _need(data, "header", dict, where)
    for name, kind in (("command", str), ("created", str), ("machine", dict), ("run_dir", str), ("profile", dict),
                       ("protocol", dict), ("strategy", str), ("seed", int)):
        _need(header, name, kind, f"{where}: header")
    protocol = header["protocol"]
    _need(protocol, "data", dict, f"{where}: header.protocol")
    _need(protocol, "training", dict, f"{where}: header.protocol")
    _need(protocol, "fitness", str, f"{where}: header.protocol")
    raw = _need(data, "entries", list, where)
    entries = []
    seen: set[tuple[str, int]] = set()
    for i, item in enumerate(raw):
        at = f"{where}: entries[{i}]"
        if not isinstance(item, dict):
            raise _fail(at, "not an object")
        try:
            record = CandidateRecord.from_dict(item, where=at)
        except UserError as exc:
            raise TableError(str(exc)) from None
        if record.status not in TRAINED_STATUSES:
            raise _fail(at, f"status = {record.status!r}; a table holds trained candidates only")
        seed = _need(item, "seed", int, at)
        if seed < 0:
            raise _fail(at, f"seed = {seed} is negative")
        told = _need(item, "told_fitness", (int, float), at)
        if not (math.isfinite(float(told)) and float(told) == record.told_fitness):
            raise _fail(at, f"told_fitness = {told} does not match the entry's fitness and status")
        compact = _need(item, "compact", str, at)
        if compact != record.genotype.get("compact", ""):
            raise _fail(at, f"compact = {compact!r} is not the genotype's")
        _check_history(record.history, at)
        if len(record.history) != record.epochs:
            raise _fail(at, f"epochs = {record.epochs} but the history has {len(record.history)} epochs")
        if (record.key, seed) in seen:
            raise _fail(at, f"cell {record.key} with seed {seed} appears twice")
        seen.add((str(record.key), seed))
        entries.append(TableEntry(record, seed))
    return BenchTable(header, tuple(entries))


def read_table(path: str | os.PathLike[str]) -> BenchTable:
    """Read and check a table file.

    ``path`` may be a shipped table's name (``SHIPPED_TABLES``).

    Raises:
        TableError: missing, unreadable, not JSON, or a field that fails its check (one line).
    """
    p = resolve_table(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TableError(f"no table file at {p} (make one with `nas3d-tui bench table RUN_DIR -o {p}`, or name a "
                         f"shipped table: {', '.join(SHIPPED_TABLES)})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TableError(f"cannot read table {p}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TableError(f"{p}: not JSON ({exc.msg} at line {exc.lineno})") from None
    return table_from_dict(data, str(p))
