"""The leaderboard of a run: ranking of finished candidates, final test metrics, and export.

This module owns the leaderboard's rows and how they are exported (csv /
json / md). It is pure: it is rebuilt by folding events (``RunStarted`` for
the tie-break setting, ``CandidateFinished`` and ``FinalResult``) in journal
order, so the live dashboard, ``attach`` and ``nas3d-tui export`` all show the
same table.

Ranking is ``engine.records.rank_key`` (the one definition of "better"):
candidates with status ``ok`` by fitness, exact ties broken by the run's
``search.tie_break`` (validation AUC, then fewer FLOPs; or none), then by
candidate id; the ``tie_break`` column says what decided a row's place below
an equally fit one. Candidates with any other status come after, unranked.
Duplicates (they reuse another candidate's result) and infeasible candidates
(never trained) are left out of ``rows()`` unless asked for. Final results
are summarised per finalist as mean ± standard deviation over seeds.

It must not import torch or a UI library, and it does no I/O except the
atomic file write of ``export(..., path=...)``.
"""
from __future__ import annotations

import bisect
import csv
import io
import json
from json.encoder import encode_basestring_ascii as _encode_str
import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from .atomic import atomic_write_text
from .events import CandidateFinished, Event, FinalResult, RunStarted
from .records import CandidateRecord, RecordFields, rank_key
from .vocab import TieBreak, as_tie_break

__all__ = [
    "Row",
    "Leaderboard",
    "export",
    "compact_genotype",
    "mean_std",
    "EXPORT_FORMATS",
    "ROW_FIELDS",
    "SORT_KEYS",
]

EXPORT_FORMATS = ("csv", "json", "md")


@dataclass(frozen=True)
class Row(RecordFields):
    """One candidate on the leaderboard: its record, its rank and its final test metrics.

    The record's fields read as the row's own (``row.fitness``, explicit properties). ``rank`` is
    None for candidates whose status is not ``ok``; ``test_*`` are None until a
    final result arrived (mean and sample standard deviation over seeds; the
    standard deviation is None for a single seed). ``tie_break`` says what
    placed this row below an equally fit row above it (``val_auc``,
    ``flops`` or ``id``), empty otherwise.
    """

    rank: int | None
    record: CandidateRecord
    test_auc: float | None = None
    test_acc: float | None = None
    final_seeds: int = 0
    test_auc_std: float | None = None
    test_acc_std: float | None = None
    tie_break: str = ""

    @property
    def genotype(self) -> str:  # the compact one-line form (the record keeps the full dict)
        return compact_genotype(self.record.genotype, self.record.key or "")


# Columns of the exports, in order (new columns are appended so old readers keep working).
ROW_FIELDS = (
    "rank",
    "candidate_id",
    "generation",
    "phase",
    "key",
    "genotype",
    "fitness",
    "val_acc",
    "val_auc",
    "params",
    "flops",
    "epochs",
    "seconds",
    "status",
    "worker",
    "test_auc",
    "test_acc",
    "final_seeds",
    "test_auc_std",
    "test_acc_std",
    "tie_break",
    "pruned_at",
)

# sort key -> True when larger is better (sorted descending)
SORT_KEYS: dict[str, bool] = {
    "fitness": True,
    "rank": False,
    "candidate_id": False,
    "generation": False,
    "val_acc": True,
    "val_auc": True,
    "test_auc": True,
    "test_acc": True,
    "params": False,
    "flops": False,
    "epochs": False,
    "seconds": False,
}


def compact_genotype(genotype: dict[str, Any] | None, key: str = "") -> str:
    """Short text for a genotype dict: its ``compact`` entry, else ops / stacks / modules / filters."""
    if not isinstance(genotype, dict):
        return key[:12]
    compact = genotype.get("compact")
    if isinstance(compact, str) and compact:
        return compact
    parts = []
    ops = genotype.get("ops")
    if isinstance(ops, (list, tuple)) and ops:
        # Cell ops as indices or names; input/output labels are noise here.
        inner = [str(o) for o in ops if str(o) not in ("input", "output")]
        parts.append("ops=" + "-".join(inner))
    for label, names in (
        ("S", ("n_stacks", "stacks")),
        ("M", ("n_modules", "modules")),
        ("F", ("n_filters", "filters")),
    ):
        value = next((genotype[n] for n in names if n in genotype), None)
        if value is not None:
            parts.append(f"{label}{value}")
    matrix = genotype.get("matrix")
    if isinstance(matrix, (list, tuple)):
        try:
            parts.append(f"E{sum(int(x) for r in matrix for x in r)}")
        except (TypeError, ValueError):
            pass
    return " ".join(parts) if parts else key[:12]


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the finite values (std None for fewer than two)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return None, None
    return statistics.fmean(finite), (statistics.stdev(finite) if len(finite) > 1 else None)


_HIDDEN = ("duplicate", "infeasible")  # left out of the default rows
_PLACE_AT_MOST = 64  # new candidates placed one by one in the kept order; more arrived unasked: sort again


def _decided_by(above: CandidateRecord, row: CandidateRecord, tie_break: TieBreak) -> str:
    """What placed ``row`` below ``above`` when their fitnesses are equal ('' otherwise)."""
    if above.fitness != row.fitness:
        return ""
    if tie_break == "none":
        return "id"
    if above.val_auc != row.val_auc:
        return "val_auc"
    if above.flops != row.flops:
        return "flops"
    return "id"


class Leaderboard:
    """Folds ``CandidateFinished`` and ``FinalResult`` events into ranked rows.

    A later ``CandidateFinished`` for the same candidate id replaces the
    earlier one, and a repeated ``FinalResult`` for the same (candidate,
    seed) replaces the earlier one, so replaying a journal (or a resumed
    run's journal) is idempotent. The tie-break comes from the last
    ``RunStarted`` (its profile's ``search.tie_break``).
    """

    def __init__(self, tie_break: TieBreak = "val_auc") -> None:
        self._tie_break = tie_break
        self._candidates: dict[int, CandidateRecord] = {}
        self._finals: dict[int, dict[int, FinalResult]] = {}
        # rows() per argument set, until the next change: a dashboard asks for the best row at every
        # redraw, and ranking thousands of candidates each time would grow with the run.
        self._rows_cache: dict[tuple[str, bool, bool, str], list[Row]] = {}
        # The ranked records in rank order and the others by id, kept up to date as candidates
        # arrive (a dashboard's top rows and best row then cost the same at 10,000 candidates as
        # at 10): None means "sort again when asked" (a record replaced, the tie-break changed).
        self._ranked: list[tuple[Any, ...]] | None = []  # rank_key of each ok record (its id last)
        self._unranked: list[int] | None = []
        self._arrived: list[int] = []  # new candidates not yet placed in those orders (a few: else sort again)
        self._hidden_count = 0  # duplicates and infeasible candidates (left out of the default rows)

    @property
    def tie_break(self) -> TieBreak:
        """How equal fitnesses are ordered (``engine.records.TIE_BREAKS``)."""
        return self._tie_break

    @tie_break.setter
    def tie_break(self, value: TieBreak) -> None:
        if value != self._tie_break:
            self._tie_break = value
            self._ranked = None  # (rows() are cached per tie-break already)

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> "Leaderboard":
        """A leaderboard with every event of ``events`` applied in order."""
        board = cls()
        for event in events:
            board.update(event)
        return board

    def update(self, event: Event) -> bool:
        """Apply one event; returns True when the leaderboard changed (other kinds are ignored)."""
        if isinstance(event, CandidateFinished):
            record = event.record
            old = self._candidates.get(record.candidate_id)
            self._candidates[record.candidate_id] = record
            if old is None:
                if len(self._arrived) < _PLACE_AT_MOST:
                    self._arrived.append(record.candidate_id)
                else:  # many arrived unasked (a journal folded): one sort when asked costs less
                    self._ranked = self._unranked = None
            else:  # a candidate retrained after a resume, or a replayed journal: sort again when asked
                self._ranked = self._unranked = None
                self._hidden_count -= old.status in _HIDDEN
            self._hidden_count += record.status in _HIDDEN
            self._rows_cache.clear()
            return True
        if isinstance(event, FinalResult):
            self._finals.setdefault(event.candidate_id, {})[event.seed] = event
            self._rows_cache.clear()
            return True
        if isinstance(event, RunStarted):
            search = event.profile.get("search", {}) if isinstance(event.profile, dict) else {}
            tie_break = as_tie_break(search.get("tie_break", "val_auc") if isinstance(search, dict) else "val_auc")
            changed = tie_break is not None and tie_break != self.tie_break
            if tie_break is not None and changed:
                self.tie_break = tie_break
                self._rows_cache.clear()
            return changed
        return False

    def replace_record(self, record: CandidateRecord) -> None:
        """Hold ``record`` for its candidate instead of the one it has: a copy that ranks and exports
        the same (``CandidateRecord.light``, for a view that keeps thousands)."""
        if record.candidate_id not in self._candidates:
            raise KeyError(f"no candidate #{record.candidate_id} on the leaderboard")
        old = self._candidates[record.candidate_id]
        if old.status != record.status or (record.ok and rank_key(old, self.tie_break) != rank_key(record, self.tie_break)):
            raise ValueError(f"candidate #{record.candidate_id}: the copy does not rank as the record it replaces")
        self._candidates[record.candidate_id] = record
        self._rows_cache.clear()

    def __len__(self) -> int:
        return len(self._candidates)

    def records(self) -> list[CandidateRecord]:
        """Every candidate's record, by id."""
        return [self._candidates[c] for c in sorted(self._candidates)]

    def finals(self, candidate_id: int) -> list[FinalResult]:
        """The final results of one finalist, by seed."""
        return [r for _, r in sorted(self._finals.get(candidate_id, {}).items())]

    def rows(
        self,
        sort_by: str = "fitness",
        include_duplicates: bool = False,
        include_infeasible: bool = False,
    ) -> list[Row]:
        """The leaderboard rows.

        Args:
            sort_by: ``fitness`` (rank order, then unranked rows by id) or a
                column in ``SORT_KEYS``; metrics sort best first, sizes and
                ids ascending; unknown values (None) last.
            include_duplicates: also list candidates that reused another's result.
            include_infeasible: also list candidates that were never trained.

        Raises:
            ValueError: unknown ``sort_by``.
        """
        if sort_by not in SORT_KEYS:
            raise ValueError(f"unknown sort_by {sort_by!r}; allowed: {', '.join(SORT_KEYS)}")
        key = (sort_by, include_duplicates, include_infeasible, self.tie_break)
        if key not in self._rows_cache:
            self._rows_cache[key] = self._rows(sort_by, include_duplicates, include_infeasible)
        return list(self._rows_cache[key])

    def _orders(self) -> tuple[list[tuple[Any, ...]], list[int]]:
        """The rank keys of the ok records in rank order, and the other candidates' ids in order."""
        arrived, self._arrived = self._arrived, []
        if self._ranked is None or self._unranked is None:
            self._ranked = sorted(rank_key(r, self.tie_break) for r in self._candidates.values() if r.ok)
            self._unranked = sorted(c for c, r in self._candidates.items() if not r.ok)
        else:
            for r in map(self._candidates.__getitem__, arrived):
                if r.ok:
                    bisect.insort(self._ranked, rank_key(r, self.tie_break))
                else:
                    bisect.insort(self._unranked, r.candidate_id)
        return self._ranked, self._unranked

    def head(self, n: int) -> list[Row]:
        """``rows()[:n]`` without building the others: what a dashboard shows of a long run."""
        keys, ids = self._orders()
        rows: list[Row] = []
        above: CandidateRecord | None = None
        for i, key in enumerate(keys[:n]):
            record = self._candidates[key[-1]]
            rows.append(self._row(record, i + 1, _decided_by(above, record, self.tie_break) if above else ""))
            above = record
        for cid in ids:
            if len(rows) >= n:
                break
            record = self._candidates[cid]
            if record.status not in _HIDDEN:
                rows.append(self._row(record, None, ""))
        return rows

    def count(self) -> int:
        """``len(rows())``: every candidate but duplicates and infeasible ones."""
        return len(self._candidates) - self._hidden_count

    def _rows(self, sort_by: str, include_duplicates: bool, include_infeasible: bool) -> list[Row]:
        keys, ids = self._orders()
        ranked = [self._candidates[key[-1]] for key in keys]
        hidden = set()
        if not include_duplicates:
            hidden.add("duplicate")
        if not include_infeasible:
            hidden.add("infeasible")
        unranked = [r for r in (self._candidates[c] for c in ids) if r.status not in hidden]
        rows = [
            self._row(r, i + 1, _decided_by(ranked[i - 1], r, self.tie_break) if i else "")
            for i, r in enumerate(ranked)
        ]
        rows += [self._row(r, None, "") for r in unranked]
        if sort_by in ("fitness", "rank"):
            return rows
        descending = SORT_KEYS[sort_by]

        def key(row: Row) -> tuple[int, float, int]:
            value = getattr(row, sort_by)
            if value is None:
                return (1, 0.0, row.candidate_id)
            return (0, -value if descending else value, row.candidate_id)

        return sorted(rows, key=key)

    def best(self) -> Row | None:
        """The rank-1 row, or None before any candidate finished ok."""
        keys, _ = self._orders()
        return self._row(self._candidates[keys[0][-1]], 1, "") if keys else None

    def _row(self, record: CandidateRecord, rank: int | None, tie: str) -> Row:
        finals = self._finals.get(record.candidate_id, {})
        auc, auc_std = mean_std([f.test_auc for f in finals.values()])
        acc, acc_std = mean_std([f.test_acc for f in finals.values()])
        return Row(
            rank=rank,
            record=record,
            test_auc=auc,
            test_acc=acc,
            final_seeds=len(finals),
            test_auc_std=auc_std,
            test_acc_std=acc_std,
            tie_break=tie,
        )


# --------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------


def _plain(value: object) -> object:
    """JSON-safe: non-finite floats become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _md_cell(name: str, value: object) -> str:
    if value is None:
        return "–"
    if name == "seconds" and isinstance(value, (int, float)):
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e6 else f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def export(rows: Sequence[Row], fmt: str, path: str | os.PathLike[str] | None = None) -> str:
    """Render rows as ``csv``, ``json`` (a list of objects) or ``md`` (a Markdown table).

    Args:
        rows: from ``Leaderboard.rows()``.
        fmt: ``csv`` | ``json`` | ``md``.
        path: when given, the text is also written there atomically
            (temp file in the same folder, fsync, rename).

    Returns:
        The rendered text.

    Raises:
        ValueError: unknown ``fmt``.
        OSError: the file cannot be written.
    """
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(ROW_FIELDS)
        for row in rows:
            writer.writerow(["" if (v := _plain(getattr(row, f))) is None else v for f in ROW_FIELDS])
        text = buf.getvalue()
    elif fmt == "json":
        text = _json_rows([{f: _plain(getattr(row, f)) for f in ROW_FIELDS} for row in rows]) + "\n"
    elif fmt == "md":
        lines = [
            "| " + " | ".join(ROW_FIELDS) + " |",
            "|" + "|".join("---:" if _numeric_field(f) else "---" for f in ROW_FIELDS) + "|",
        ]
        for row in rows:
            lines.append("| " + " | ".join(_md_cell(f, getattr(row, f)) for f in ROW_FIELDS) + " |")
        text = "\n".join(lines) + "\n"
    else:
        raise ValueError(f"unknown export format {fmt!r}; allowed: {', '.join(EXPORT_FORMATS)}")
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    return text


def _json_rows(data: list[dict[str, object]]) -> str:
    """``json.dumps(data, indent=2, allow_nan=False)``, character for character, for flat rows.

    The standard library indents with its pure-Python encoder (a third of the
    time of exporting 2,000 candidates); rows of plain values are written here
    with the C string encoder instead. A row holding anything else goes to
    ``json.dumps`` as a whole.
    """
    blocks = []
    for item in data:
        fields = []
        for key, value in item.items():
            scalar = _json_scalar(value)
            if scalar is None or type(key) is not str:
                return json.dumps(data, indent=2, allow_nan=False)
            fields.append(f"    {_encode_str(key)}: {scalar}")
        blocks.append("  {\n" + ",\n".join(fields) + "\n  }" if fields else "  {}")
    return "[\n" + ",\n".join(blocks) + "\n]" if blocks else "[]"


def _json_scalar(value: object) -> str | None:
    """The JSON text ``json.dumps`` gives a plain value (None for any other value)."""
    kind = type(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):  # type: ignore[arg-type]
        return float.__repr__(value)
    if kind is str:
        return _encode_str(value)  # type: ignore[arg-type]
    return None  # (a non-finite float too: json.dumps then refuses it, as it always did)


_TEXT_FIELDS = {"phase", "key", "genotype", "status", "worker", "tie_break"}


def _numeric_field(name: str) -> bool:
    return name not in _TEXT_FIELDS

