"""Regenerate the README's dashboard capture and docs/REPORTS.md's two figures from a finished run.

    make run                                   # the default profile, `quick`: leaves runs/<name>/
    python scripts/readme_figures.py runs/<name>
    python scripts/readme_figures.py runs/<name> --check   # exit 1 if README.md or the figures are stale

The capture: the dashboard (``tui.app.NasApp``, the app ``run`` and ``attach``
show) rebuilt from the run's ``events.jsonl`` at 120×40 in Textual's headless
pilot, the screen as plain text, trailing spaces stripped. It replaces the
fenced block under "## What you see" in the README; the rest of the file is
left byte for byte. It shows what ``make run`` showed at the end: the journal
replayed as the run itself (no " · attached" mark), status FINISHED, the
finalists' test AUC, the leaderboard's first row (the best candidate)
selected and its cell in the Cell panel.

The figures: ``nas3d-tui report``'s own code (``nas3d_tui.report.build_report``)
writes the report into a temporary folder; its ``pareto_flops.png`` and
``fitness_by_generation.png`` become ``quick-pareto-flops.png`` and
``quick-fitness-by-generation.png`` in ``--img``. (``compare-anytime.png``
compares two runs, so one run directory cannot remake it: see docs/REPORTS.md.)

Exit codes: 0 written (or, with ``--check``, up to date); 1 ``--check`` found
the README block or a figure stale (one line says which); 2 bad input (no such
directory, not a run directory, a run that has not finished or has no final
phase, a README without the block), one line on stderr.
"""
from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python scripts/readme_figures.py` without an install
    sys.path.insert(0, str(REPO))

SIZE = (120, 40)
HEADING = "## What you see"
# report figure -> the name docs/REPORTS.md shows it under
FIGURES = {
    "pareto_flops.png": "quick-pareto-flops.png",
    "fitness_by_generation.png": "quick-fitness-by-generation.png",
}
EXIT_OK, EXIT_STALE, EXIT_BAD_INPUT = 0, 1, 2
README_LIMIT = 12288  # bytes: scripts/check_doc_links.py's default (tests/test_docs.py)


class BadInput(Exception):
    """A one-line message for the user (exit 2)."""


def finished_run(run_dir: str) -> list:
    """The events of ``run_dir``'s journal, checked to be a run that finished with a final phase.

    Raises:
        BadInput: no such directory, not a run directory, an unreadable journal, a run
            still going, stopped, crashed or failed, or one without a final-phase result.
    """
    from engine import events as ev
    from engine.errors import UserError
    from nas3d_tui.report import read_run

    try:
        _, events = read_run(run_dir)  # the report's own checks of the directory and its journal
    except UserError as exc:
        raise BadInput(str(exc)) from None
    last = events[-1]
    if not isinstance(last, ev.RunFinished):
        what = "failed" if isinstance(last, ev.RunFailed) else "not finished (still running, or it crashed)"
        raise BadInput(f"{run_dir}: the run has {what}; give a finished `make run`")
    if last.reason == "stopped":
        raise BadInput(f"{run_dir}: the run was stopped before its end; give a finished `make run`")
    if not any(isinstance(e, ev.FinalResult) for e in events):
        raise BadInput(f"{run_dir}: the run has no final-phase result (test AUC); give a `make run` "
                       f"of the default profile")
    return events


def screen_text(app) -> str:
    """The app's screen as plain text, no colours, trailing spaces stripped."""
    from tui.screentext import screen_text as padded

    return "\n".join(line.rstrip() for line in padded(app).splitlines())


async def _capture(run_dir: str, events: list) -> str:
    from tui.app import NasApp
    from tui.replay import ReplayHandle
    from tui.state import FINISHED

    class AsTheRun(ReplayHandle):
        """The journal replayed as the run that wrote it: the dashboard `make run` showed, not attach's."""

        attached = False

    handle = AsTheRun(events, run_dir=run_dir, echo_commands=False)
    app = NasApp(handle)
    async with app.run_test(size=SIZE) as pilot:
        if not handle.wait(60):
            raise RuntimeError("the journal was not replayed within 60 s")
        # A redraw takes several hops (widget -> screen layout -> compositor): pause until the
        # screen is the same three times in a row.
        previous, same, text = None, 0, ""
        for _ in range(100):
            app.drain_now()
            await pilot.pause()
            text = screen_text(app)
            same = same + 1 if text == previous else 0
            if same == 2:
                break
            previous = text
        else:
            raise RuntimeError("the dashboard did not settle")
        best = app.state.best()
        table = app.leaderboard.table
        row = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if app.state.status != FINISHED or best is None or row is None or int(row) != best.candidate_id:
            raise RuntimeError(f"the dashboard is not at the run's end (status {app.state.status}, "
                               f"selected row {row}, best {best and best.candidate_id})")
    return text


def capture(run_dir: str, events: list) -> str:
    """The dashboard of the finished run at 120×40, as plain text."""
    return asyncio.run(_capture(run_dir, events))


def replace_block(readme: str, capture_text: str) -> str:
    """``readme`` with the first fenced block under ``## What you see`` holding ``capture_text``.

    Raises:
        BadInput: no such heading, or no fenced block in its section.
    """
    head = re.search(rf"^{re.escape(HEADING)}[ \t]*$", readme, re.M)
    if head is None:
        raise BadInput(f'the README has no "{HEADING}" heading')
    section_end = re.compile(r"^## ", re.M).search(readme, head.end())
    stop = section_end.start() if section_end else len(readme)
    block = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S).search(readme, head.end(), stop)
    if block is None:
        raise BadInput(f'the README has no fenced block under "{HEADING}"')
    body = capture_text.rstrip("\n") + "\n"
    return readme[:block.start(1)] + body + readme[block.end(1):]


def report_figures(run_dir: str, out: Path) -> dict[str, bytes]:
    """The two figures, by their docs/img name, drawn by `nas3d-tui report`'s code."""
    from nas3d_tui.report import build_report

    files = build_report(run_dir, out, top_k=0)
    by_name = {f.png.name: f.png for f in files.figures}
    return {target: by_name[source].read_bytes() for source, target in FIGURES.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", metavar="RUN_DIR", help="a finished run of the default profile (`make run`'s runs/<name>)")
    ap.add_argument("--readme", default=str(REPO / "README.md"), help="the README to update (default: README.md)")
    ap.add_argument("--img", default=str(REPO / "docs" / "img"), help="where the figures go (default: docs/img)")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if the README block or a figure would change")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except BadInput as exc:
        print(f"readme_figures: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_BAD_INPUT


def run(args: argparse.Namespace) -> int:
    readme_path, img = Path(args.readme), Path(args.img)
    try:
        readme = readme_path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read {readme_path}: {exc.strerror or exc}") from None
    replace_block(readme, "")  # the README has the block: checked before the minutes of work
    if not args.check and not img.is_dir():
        raise BadInput(f"{img} is not a folder")
    events = finished_run(args.run_dir)

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # library warnings (matplotlib, textual) are not this script's output
        text = capture(args.run_dir, events)
        with tempfile.TemporaryDirectory(prefix="readme-figures-") as tmp:
            figures = report_figures(args.run_dir, Path(tmp))

    updated = replace_block(readme, text)
    stale = ([readme_path.name] if updated != readme else []) + [
        name for name, data in figures.items() if not (img / name).is_file() or (img / name).read_bytes() != data]
    if args.check:
        if stale:
            print(f"readme_figures: stale against {args.run_dir}: {', '.join(stale)} "
                  f"(rerun without --check to update)", file=sys.stderr)
            return EXIT_STALE
        return EXIT_OK
    if updated != readme:
        readme_path.write_bytes(updated.encode("utf-8"))
    for name, data in figures.items():
        (img / name).write_bytes(data)
    print(f"{readme_path}: capture of {args.run_dir} ({text.count(chr(10)) + 1} lines); "
          f"{', '.join(str(img / n) for n in figures)}")
    size = len(updated.encode("utf-8"))
    if size >= README_LIMIT:
        print(f"readme_figures: warning: {readme_path} is now {size} bytes, over the {README_LIMIT} "
              f"that scripts/check_doc_links.py allows", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
