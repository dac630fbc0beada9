"""The report's two documents: a self-contained HTML page and a Markdown file.

This module owns the text of the report: the run facts, the figure captions,
the top-k table, the final test metrics (mean ± std over seeds) with the
published reference rows, and the full resolved profile. The HTML embeds each
figure's PNG as a data URI (it opens offline, from anywhere, with no scripts
and no network fetches) and links the PNG / SVG files beside it; the
Markdown links the same files.

Given a table (``overlay.TableOverlay``) the run facts name its file, and
the footer says the report drew on it besides the journal.

It reads the PNG files it embeds and nothing else; it writes nothing.
"""
from __future__ import annotations

import base64
import html
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from tui.fmt import duration, mb, si

from .cellplot import macro_line
from .figures import FigureFile
from .overlay import TableOverlay
from .paper import MEDMNIST3D, REFERENCE_ROWS, reference_rows
from .summary import STATUSES, RunSummary, flatten_profile

__all__ = ["Section", "facts", "top_table", "final_table", "render_html", "render_markdown"]

DASH = "—"
Table = tuple[list[str], list[list[str]]]  # header, rows


class Section:
    """Names of the report's sections, in order (anchors in the HTML)."""

    RUN = "Run"
    PROGRESS = "Search progress"
    COST = "Fitness against cost"
    CELLS = "Top cells"
    FINAL = "Final test metrics"
    PROFILE = "Profile"


def _num(x: Any, digits: int = 4) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return DASH
    return f"{v:.{digits}f}" if math.isfinite(v) else DASH


def _pm(mean: float, std: float | None) -> str:
    return f"{mean:.4f} ± {std:.4f}" if std is not None else f"{mean:.4f}"


def _when(ts: float | None) -> str:
    if ts is None:
        return DASH
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _peak(s: RunSummary) -> str:
    if s.peak_memory_mb is None:
        return f"{DASH} (no reading)"
    if s.gpu_readings:
        return f"{mb(s.peak_memory_mb)} (GPU)"
    return f"{mb(s.peak_memory_mb)} (no GPU: a candidate's growth of process memory)"


def _pruned(s: RunSummary) -> str:
    """The candidates pruning stopped, with the epoch each stopped at (search.pruning)."""
    pruned = [e for e in s.candidates if e.status == "pruned"]
    if not pruned:
        return f"none (search.pruning = {s.profile.get('search', {}).get('pruning', 'none')!r})" \
            if isinstance(s.profile.get("search"), dict) else "none"
    listed = ", ".join(f"#{e.candidate_id} at epoch {e.pruned_at}" for e in pruned[:12])
    more = f", … ({len(pruned) - 12} more)" if len(pruned) > 12 else ""
    return f"{len(pruned)} stopped early, could no longer win: {listed}{more}"


def facts(s: RunSummary, journal: Path, table: TableOverlay | None = None) -> list[tuple[str, str]]:
    """The run facts as (label, value) pairs (a ``table`` row when the report draws on one)."""
    counts = " · ".join(f"{s.counts.get(k, 0)} {k}" for k in STATUSES)
    extra = sorted(set(s.counts) - set(STATUSES))
    if extra:
        counts += " · " + " · ".join(f"{s.counts[k]} {k}" for k in extra)
    best = s.ranked[0] if s.ranked else None
    resumes = s.segments - 1
    size = f" {s.size}³" if s.size else ""
    rows = [
        ("run", s.run_name),
        ("dataset", f"{s.dataset}{size}"),
        ("device", ", ".join(s.devices) or DASH),
        ("outcome", s.outcome),
        ("segments", f"{s.segments} ({resumes} resume{'s' if resumes != 1 else ''})" if s.segments else "0"),
        ("fitness", s.fitness_metric),
        ("budget", f"{s.budget} trained candidates" if s.budget else DASH),
        ("population", str(s.population) if s.population else DASH),
        ("wall time, search", duration(s.search_seconds)),
        ("wall time, final phase", duration(s.final_seconds) if s.finalists or s.finals else DASH),
        ("trained", f"{s.trained} candidates (budget spent, oom and failed included)"),
        ("candidates", counts),
        ("pruned", _pruned(s)),
        ("best", f"#{best.candidate_id}: {s.fitness_metric} {_num(best.fitness)}" if best else DASH),
        ("peak memory", _peak(s)),
        ("peak process RSS", mb(s.peak_rss_mb)),
        ("journal", f"{journal} ({s.events} events, {_when(s.first_ts)} to {_when(s.last_ts)})"),
    ]
    if table is not None:
        rows.append(("table", f"{table.path} ({table.cells} cells, optimum {table.fitness_metric} "
                              f"{table.optimum:.4f}): its optimum and the random-search expectation are drawn "
                              "on the anytime curve"))
    return rows


def _source(journal: Path, table: TableOverlay | None) -> str:
    """What the report was written from, for its last line."""
    return f"{journal} and the table {table.path}" if table is not None else f"{journal} alone"


def top_table(s: RunSummary, k: int) -> Table:
    """The top-``k`` trained candidates."""
    header = ["rank", "id", "gen", "phase", f"fitness ({s.fitness_metric})", "val ACC", "val AUC", "params", "FLOPs",
              "epochs", "time", "S · M · F", "genotype"]
    rows = []
    for rank, e in enumerate(s.top(k), start=1):
        g = dict(e.genotype or {})
        rows.append([str(rank), f"#{e.candidate_id}", str(e.generation), e.phase, _num(e.fitness),
                     _num(e.val_acc), _num(e.val_auc), si(e.params), si(e.flops), str(e.epochs),
                     duration(e.seconds), macro_line(g), str(g.get("compact") or (e.key or "")[:12])])
    return header, rows


def no_better_than_majority(f: Any) -> bool:
    """A finalist whose mean test AUC is at most chance, or whose test ACC is at most the majority class's."""
    if f.test_auc_mean <= 0.5 + 1e-9:
        return True
    return f.majority_acc is not None and f.test_acc_mean <= f.majority_acc + 1e-9 and f.test_auc_mean < 0.6


def final_table(s: RunSummary) -> tuple[Table, str]:
    """Final test metrics per finalist (mean ± std over seeds), then the reference rows, and a note."""
    header = ["model", "seeds", "test AUC", "test ACC", "val ACC", "params", "FLOPs", "source"]
    rank_of = {e.candidate_id: r for r, e in enumerate(s.ranked, start=1)}
    rows = []
    for f in s.finals:
        rank = f" (search rank {rank_of[f.candidate_id]})" if f.candidate_id in rank_of else ""
        rows.append([f"#{f.candidate_id}{rank}", f"{len(f.seeds)}: {', '.join(map(str, f.seeds))}",
                     _pm(f.test_auc_mean, f.test_auc_std), _pm(f.test_acc_mean, f.test_acc_std),
                     _num(f.val_acc_mean), si(f.params), si(f.flops), "this run"])
    for ref in reference_rows(s.dataset):
        rows.append([ref.label, DASH, _num(ref.test_auc, 3), _num(ref.test_acc, 3), DASH, DASH, DASH, ref.source])
    if not s.finals:
        note = ("The final phase has not reported a result: it was skipped (final.top_k = 0), "
                "or the run ended before it.")
    else:
        note = "Mean ± sample standard deviation over seeds (a single seed shows its value)."
        for f in s.finals:
            if no_better_than_majority(f):
                majority = f" (test ACC {_num(f.majority_acc)})" if f.majority_acc is not None else ""
                note += (f" Finalist #{f.candidate_id} is no better than always answering the most frequent "
                         f"class{majority}: test AUC {_num(f.test_auc_mean)}, test ACC {_num(f.test_acc_mean)}. "
                         "It has not learned to tell the classes apart; train longer (final.epochs, "
                         "training.epochs) or search more.")
    flag = s.dataset.lower()
    if flag in MEDMNIST3D and flag not in REFERENCE_ROWS:
        note += f" No reference rows for {s.dataset} are recorded yet (nas3d_tui/report/paper.py)."
    return (header, rows), note


# -- HTML ---------------------------------------------------------------------------------

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #111827;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #d1d5db; padding-bottom: 0.2em; margin-top: 1.8em; }
.outcome { color: #374151; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #e5e7eb; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.reference td { background: #fefce8; font-style: italic; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e5e7eb; }
figcaption { color: #374151; font-size: 0.92em; }
.cells { display: flex; flex-wrap: wrap; gap: 1em; }
.cells figure { flex: 0 1 440px; }
.note { color: #4b5563; font-size: 0.92em; }
code { font-size: 0.92em; }
footer { margin-top: 3em; color: #6b7280; font-size: 0.85em; }
"""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _anchor(title: str) -> str:
    return title.lower().replace(" ", "-")


def _html_table(table: Table, numeric: frozenset[int] = frozenset(), reference_from: int | None = None) -> str:
    """A table; columns in ``numeric`` are right-aligned, rows from ``reference_from`` shaded."""
    header, rows = table
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr>")
    for i, row in enumerate(rows):
        cls = ' class="reference"' if reference_from is not None and i >= reference_from else ""
        cells = "".join(
            f'<td class="num">{_esc(c)}</td>' if k in numeric else f"<td>{_esc(c)}</td>" for k, c in enumerate(row)
        )
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _html_figure(f: FigureFile, base: Path) -> str:
    png, svg = f.png.relative_to(base).as_posix(), f.svg.relative_to(base).as_posix()
    return (
        f'<figure id="fig-{_esc(f.name)}">'
        f'<img src="{_data_uri(f.png)}" width="{f.size[0]}" height="{f.size[1]}" alt="{_esc(f.title)}">'
        f"<figcaption>{_esc(f.caption)} "
        f'(<a href="{_esc(png)}">PNG</a> · <a href="{_esc(svg)}">SVG</a>)</figcaption></figure>'
    )


def render_html(s: RunSummary, figures: Sequence[FigureFile], base: Path, journal: Path, top_k: int,
                table: TableOverlay | None = None) -> str:
    """The HTML page; figure links are relative to ``base`` (the folder the page is written to)."""
    charts = {f.name: f for f in figures}
    cells = [f for f in figures if f.name.startswith("cell_")]
    final, note = final_table(s)
    title = f"nas3d-tui report · {s.run_name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f'<p class="outcome">{_esc(s.dataset)} · {_esc(s.outcome)}</p>',
        f'<h2 id="{_anchor(Section.RUN)}">{Section.RUN}</h2>',
        _html_table(([], [[k, v] for k, v in facts(s, journal, table)])),
        f'<h2 id="{_anchor(Section.PROGRESS)}">{Section.PROGRESS}</h2>',
    ]
    parts += [_html_figure(charts[n], base) for n in ("fitness_by_generation", "anytime") if n in charts]
    parts.append(f'<h2 id="{_anchor(Section.COST)}">{Section.COST}</h2>')
    parts += [_html_figure(charts[n], base) for n in ("pareto_flops", "pareto_params") if n in charts]
    parts.append(f'<h2 id="{_anchor(Section.CELLS)}">{Section.CELLS}</h2>')
    if cells:
        parts.append(_html_table(top_table(s, top_k), numeric=frozenset(range(4, 11))))
        parts.append('<div class="cells">' + "".join(_html_figure(f, base) for f in cells) + "</div>")
    else:
        parts.append('<p class="note">No candidate was trained before the journal ends.</p>')
    parts.append(f'<h2 id="{_anchor(Section.FINAL)}">{Section.FINAL}</h2>')
    if final[1]:
        parts.append(_html_table(final, numeric=frozenset(range(2, 7)), reference_from=len(s.finals)))
    parts.append(f'<p class="note">{_esc(note)}</p>')
    parts.append(f'<h2 id="{_anchor(Section.PROFILE)}">{Section.PROFILE}</h2>')
    profile = flatten_profile(s.profile)
    if profile:
        parts.append(_html_table((["key", "value"], [[k, _value(v)] for k, v in profile])))
    else:
        parts.append('<p class="note">The journal holds no resolved profile.</p>')
    parts.append(f"<footer>Written by <code>nas3d-tui report</code> from {_esc(_source(journal, table))}.</footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _value(v: Any) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# -- Markdown -----------------------------------------------------------------------------

def _md_cell(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> str:
    header, rows = table
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _md_figure(f: FigureFile, base: Path) -> str:
    png, svg = f.png.relative_to(base).as_posix(), f.svg.relative_to(base).as_posix()
    return f"![{f.title}]({png})\n\n*{f.caption}* ([SVG]({svg}))"


def render_markdown(s: RunSummary, figures: Sequence[FigureFile], base: Path, journal: Path, top_k: int,
                    table: TableOverlay | None = None) -> str:
    """The Markdown report; figure links are relative to ``base``."""
    charts = {f.name: f for f in figures}
    cells = [f for f in figures if f.name.startswith("cell_")]
    final, note = final_table(s)
    out = [f"# nas3d-tui report · {s.run_name}", "", f"{s.dataset} · {s.outcome}", "", f"## {Section.RUN}", ""]
    out += [_md_table((["fact", "value"], [[k, v] for k, v in facts(s, journal, table)])), ""]
    out += [f"## {Section.PROGRESS}", ""]
    out += [_md_figure(charts[n], base) + "\n" for n in ("fitness_by_generation", "anytime") if n in charts]
    out += [f"## {Section.COST}", ""]
    out += [_md_figure(charts[n], base) + "\n" for n in ("pareto_flops", "pareto_params") if n in charts]
    out += [f"## {Section.CELLS}", ""]
    if cells:
        out += [_md_table(top_table(s, top_k)), ""]
        out += [_md_figure(f, base) + "\n" for f in cells]
    else:
        out += ["No candidate was trained before the journal ends.", ""]
    out += [f"## {Section.FINAL}", ""]
    if final[1]:
        out += [_md_table(final), ""]
    out += [note, "", f"## {Section.PROFILE}", ""]
    profile = flatten_profile(s.profile)
    out += [_md_table((["key", "value"], [[f"`{k}`", f"`{_value(v)}`"] for k, v in profile])) if profile
            else "The journal holds no resolved profile.", ""]
    source = f"`{journal}` and the table `{table.path}`" if table is not None else f"`{journal}` alone"
    out += [f"Written by `nas3d-tui report` from {source}.", ""]
    return "\n".join(out)
