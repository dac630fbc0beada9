"""The comparison's two documents: a self-contained HTML page and a Markdown file.

Sections: the runs (one row each), the anytime curves, the Pareto fronts,
the finalists of every run (test AUC / ACC mean ± std over seeds), and the
profile keys that differ. Tables and figures are drawn the way the single-run
report draws them (``render``), so both reports look alike; the HTML embeds
its PNGs and needs no network and no script.

Reads the PNG files it embeds and nothing else; writes nothing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from tui.fmt import duration, si

from .compare import MISSING, Comparison
from .figures import FigureFile
from .render import _CSS, DASH, _anchor, _esc, _html_figure, _html_table, _md_figure, _md_table, _num, _pm, _value

__all__ = ["CompareSection", "runs_table", "finalists_table", "diff_table", "render_comparison_html",
           "render_comparison_markdown"]

Table = tuple[list[str], list[list[str]]]


class CompareSection:
    """Names of the comparison's sections, in order (anchors in the HTML)."""

    RUNS = "Runs"
    ANYTIME = "Anytime curves"
    FRONTS = "Pareto fronts"
    FINALISTS = "Finalists"
    PROFILES = "Profile differences"


def title(c: Comparison) -> str:
    return "nas3d-tui comparison · " + " vs ".join(r.label for r in c.runs)


def runs_table(c: Comparison) -> Table:
    """One row per run: what it searched, how it ended, how far it got, its best."""
    header = ["run", "dataset", "strategy", "outcome", "trained", f"best ({c.fitness_metric})",
              "search time", "final time", "run directory"]
    rows = []
    for r in c.runs:
        s = r.summary
        best = s.ranked[0] if s.ranked else None
        budget = f"/{s.budget}" if s.budget else ""
        rows.append([r.label, f"{s.dataset} {s.size}³" if s.size else s.dataset, r.strategy, s.outcome,
                     f"{s.trained}{budget}", f"{_num(best.fitness)} (#{best.candidate_id})" if best else DASH,
                     duration(s.search_seconds), duration(s.final_seconds) if s.finals else DASH, str(r.run_dir)])
    return header, rows


def finalists_table(c: Comparison) -> Table:
    """Every finalist of every run: test AUC / ACC mean ± std over its seeds."""
    header = ["run", "model", "seeds", "test AUC", "test ACC", "val ACC", "params", "FLOPs"]
    rows = []
    for r in c.runs:
        s = r.summary
        rank_of = {e.candidate_id: k for k, e in enumerate(s.ranked, start=1)}
        if not s.finals:
            rows.append([r.label, "no final result (final.top_k = 0, or the run ended before)", DASH, DASH, DASH,
                         DASH, DASH, DASH])
        for f in s.finals:
            rank = f" (search rank {rank_of[f.candidate_id]})" if f.candidate_id in rank_of else ""
            rows.append([r.label, f"#{f.candidate_id}{rank}", f"{len(f.seeds)}: {', '.join(map(str, f.seeds))}",
                         _pm(f.test_auc_mean, f.test_auc_std), _pm(f.test_acc_mean, f.test_acc_std),
                         _num(f.val_acc_mean), si(f.params), si(f.flops)])
    return header, rows


def _shown(v: Any) -> str:
    return DASH if v is MISSING else _value(v)


def diff_table(c: Comparison) -> Table:
    """The profile keys whose values differ, one column per run (``—``: the run's profile has no such key)."""
    return ["key"] + [r.label for r in c.runs], [[k] + [_shown(v) for v in vs] for k, vs in c.profile_diff]


_DIFF_NONE = "The runs' resolved profiles are identical."
_FINAL_NOTE = "Mean ± sample standard deviation over seeds (a single seed shows its value)."


def render_comparison_html(c: Comparison, figures: Sequence[FigureFile], base: Path) -> str:
    """The HTML page; figure links are relative to ``base`` (the folder the page is written to)."""
    charts = {f.name: f for f in figures}
    head = title(c)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(head)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(head)}</h1>",
        f'<h2 id="{_anchor(CompareSection.RUNS)}">{CompareSection.RUNS}</h2>',
        _html_table(runs_table(c), numeric=frozenset({4, 5})),
    ]
    parts += [f'<p class="note">{_esc(n)}</p>' for n in c.notes]
    parts.append(f'<h2 id="{_anchor(CompareSection.ANYTIME)}">{CompareSection.ANYTIME}</h2>')
    parts += [_html_figure(charts[n], base) for n in ("compare_anytime", "compare_anytime_time") if n in charts]
    parts.append(f'<h2 id="{_anchor(CompareSection.FRONTS)}">{CompareSection.FRONTS}</h2>')
    parts += [_html_figure(charts[n], base) for n in ("compare_pareto_flops",) if n in charts]
    parts.append(f'<h2 id="{_anchor(CompareSection.FINALISTS)}">{CompareSection.FINALISTS}</h2>')
    parts.append(_html_table(finalists_table(c), numeric=frozenset(range(3, 8))))
    parts.append(f'<p class="note">{_esc(_FINAL_NOTE)}</p>')
    parts.append(f'<h2 id="{_anchor(CompareSection.PROFILES)}">{CompareSection.PROFILES}</h2>')
    if c.profile_diff:
        parts.append(_html_table(diff_table(c)))
        parts.append(f'<p class="note">Only the keys whose values differ; {len(c.runs)} resolved profiles '
                     "compared.</p>")
    else:
        parts.append(f'<p class="note">{_DIFF_NONE}</p>')
    journals = ", ".join(str(r.journal) for r in c.runs)
    parts.append(f"<footer>Written by <code>nas3d-tui report</code> from {_esc(journals)} alone.</footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_comparison_markdown(c: Comparison, figures: Sequence[FigureFile], base: Path) -> str:
    """The Markdown document; figure links are relative to ``base``."""
    charts = {f.name: f for f in figures}
    out = [f"# {title(c)}", "", f"## {CompareSection.RUNS}", "", _md_table(runs_table(c)), ""]
    out += [n + "\n" for n in c.notes]
    out += [f"## {CompareSection.ANYTIME}", ""]
    out += [_md_figure(charts[n], base) + "\n" for n in ("compare_anytime", "compare_anytime_time") if n in charts]
    out += [f"## {CompareSection.FRONTS}", ""]
    out += [_md_figure(charts[n], base) + "\n" for n in ("compare_pareto_flops",) if n in charts]
    out += [f"## {CompareSection.FINALISTS}", "", _md_table(finalists_table(c)), "", _FINAL_NOTE, ""]
    out += [f"## {CompareSection.PROFILES}", ""]
    if c.profile_diff:
        header, rows = diff_table(c)
        out += [_md_table((header, [[f"`{row[0]}`"] + [f"`{v}`" for v in row[1:]] for row in rows])), ""]
        out += [f"Only the keys whose values differ; {len(c.runs)} resolved profiles compared.", ""]
    else:
        out += [_DIFF_NONE, ""]
    journals = ", ".join(f"`{r.journal}`" for r in c.runs)
    out += [f"Written by `nas3d-tui report` from {journals} alone.", ""]
    return "\n".join(out)
