"""The leaderboard of a run: ranking of finished candidates and its export.

This module owns how candidates are ranked and how the leaderboard is
exported (csv / json / md). It is pure: it is rebuilt by folding events
(``CandidateFinished`` and ``FinalResult``) in journal order, so the live
dashboard, ``attach`` and ``nas3d-tui export`` all show the same table.

Ranking: candidates with status ``ok`` by fitness (descending), ties broken by
fewer FLOPs, then by lower candidate id. Candidates with any other status
(infeasible / duplicate / oom / failed) come after, unranked. Duplicates
(they reuse another candidate's result) and infeasible candidates (never
trained) are left out of ``rows()`` unless asked for.

It must not import torch or a UI library, and it does no I/O except the
atomic file write of ``export(..., path=...)``.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from .events import CandidateFinished, Event, FinalResult
from .rundir import atomic_write_text

__all__ = ["Row", "Leaderboard", "export", "rank_order", "EXPORT_FORMATS", "ROW_FIELDS", "SORT_KEYS"]

EXPORT_FORMATS = ("csv", "json", "md")


@dataclass(frozen=True)
class Row:
    """One candidate on the leaderboard. Metrics are None when unknown.

    ``rank`` is None for candidates whose status is not ``ok``; ``test_auc`` /
    ``test_acc`` are None until a final result arrived (mean over seeds).
    """

    rank: int | None
    candidate_id: int
    generation: int
    phase: str
    key: str
    genotype: str
    fitness: float | None
    val_acc: float | None
    val_auc: float | None
    params: int | None
    flops: int | None
    epochs: int
    seconds: float
    status: str
    worker: str
    test_auc: float | None = None
    test_acc: float | None = None
    final_seeds: int = 0


ROW_FIELDS = tuple(f.name for f in dataclasses.fields(Row))

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


def compact_genotype(genotype: dict | None, key: str = "") -> str:
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


class Leaderboard:
    """Folds ``CandidateFinished`` and ``FinalResult`` events into ranked rows.

    A later ``CandidateFinished`` for the same candidate id replaces the
    earlier one, and a repeated ``FinalResult`` for the same (candidate,
    seed) replaces the earlier one, so replaying a journal (or a resumed
    run's journal) is idempotent.
    """

    def __init__(self) -> None:
        self._candidates: dict[int, CandidateFinished] = {}
        self._finals: dict[int, dict[int, FinalResult]] = {}

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
            self._candidates[event.candidate_id] = event
            return True
        if isinstance(event, FinalResult):
            self._finals.setdefault(event.candidate_id, {})[event.seed] = event
            return True
        return False

    def __len__(self) -> int:
        return len(self._candidates)

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
        ranked = sorted(
            (e for e in self._candidates.values() if e.status == "ok"),
            key=lambda e: rank_order(e.fitness, e.flops, e.candidate_id),
        )
        hidden = set()
        if not include_duplicates:
            hidden.add("duplicate")
        if not include_infeasible:
            hidden.add("infeasible")
        unranked = sorted(
            (e for e in self._candidates.values() if e.status != "ok" and e.status not in hidden),
            key=lambda e: e.candidate_id,
        )
        rows = [self._row(e, i + 1) for i, e in enumerate(ranked)]
        rows += [self._row(e, None) for e in unranked]
        if sort_by in ("fitness", "rank"):
            return rows
        descending = SORT_KEYS[sort_by]

        def key(row: Row) -> tuple:
            value = getattr(row, sort_by)
            if value is None:
                return (1, 0.0, row.candidate_id)
            return (0, -value if descending else value, row.candidate_id)

        return sorted(rows, key=key)

    def best(self) -> Row | None:
        """The rank-1 row, or None before any candidate finished ok."""
        rows = self.rows()
        return rows[0] if rows and rows[0].rank == 1 else None

    def _row(self, e: CandidateFinished, rank: int | None) -> Row:
        finals = self._finals.get(e.candidate_id, {})
        test_auc = _mean([f.test_auc for f in finals.values()])
        test_acc = _mean([f.test_acc for f in finals.values()])
        return Row(
            rank=rank,
            candidate_id=e.candidate_id,
            generation=e.generation,
            phase=e.phase,
            key=e.key,
            genotype=compact_genotype(e.genotype, e.key),
            fitness=e.fitness,
            val_acc=e.val_acc,
            val_auc=e.val_auc,
            params=e.params,
            flops=e.flops,
            epochs=e.epochs,
            seconds=e.seconds,
            status=e.status,
            worker=e.worker,
            test_auc=test_auc,
            test_acc=test_acc,
            final_seeds=len(finals),
        )


def rank_order(fitness: float | None, flops: int | None, candidate_id: int) -> tuple:
    """The leaderboard's order: fitness descending, then fewer FLOPs, then lower id.

    The session picks its finalists with the same key, so the final phase
    retrains exactly the leaderboard's top-k.
    """
    return (-_num(fitness, -math.inf), _num(flops, math.inf), candidate_id)


def _num(value: float | int | None, missing: float) -> float:
    if value is None:
        return missing
    v = float(value)
    return missing if math.isnan(v) else v


def _mean(values: Sequence[float]) -> float | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(finite) / len(finite) if finite else None


# --------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-safe: non-finite floats become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _md_cell(name: str, value: Any) -> str:
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
        data = [{f: _plain(getattr(row, f)) for f in ROW_FIELDS} for row in rows]
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
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


_TEXT_FIELDS = {"phase", "key", "genotype", "status", "worker"}


def _numeric_field(name: str) -> bool:
    return name not in _TEXT_FIELDS

