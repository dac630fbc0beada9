"""The help screen: keys and what each panel shows."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["HelpScreen", "HELP_TEXT"]

HELP_TEXT = """\
[b]Keys[/b]
  p      pause / resume (at the next batch boundary)
  s      stop, saving the search state (STOPPING until it ends)
  e      export the leaderboard (CSV, JSON, Markdown) into the
         run directory
  enter  details of the selected candidate: genotype, epochs,
         test metrics
  ↑ ↓    select a leaderboard row: the Cell panel shows it
  esc    the Cell panel follows the training candidate again
  o / r  sort by the next column / reverse (or click a header)
  ← →    scroll the leaderboard sideways
  x      scatter against FLOPs or parameters
  tab    move between panels
  ?      this help
  q      quit: an in-process search stops, saving its state
         (nas3d-tui resume RUN_DIR); an attached one goes on
  R      (attached) the runs of this run's folder: enter
         attaches to another one

[b]Panels[/b]
  Population fitness  best / mean / worst per generation
                      (│ marks a generation jump); fitness of
                      every trained candidate against its cost
  Cell                the decoded cell, one line per node
                      (◉ input / output), edges as lanes and
                      as "← predecessors"; macro choices, cost
  Leaderboard         candidates with a result, by fitness
  Log                 latest events (time since the run start)
  GPU memory          used / total per device, the current
                      candidate's peak, history; "CPU" and the
                      process memory without CUDA

States: RUNNING, PAUSED, STOPPING, FINISHED, FAILED.
Press escape or ? to close."""


class HelpScreen(ModalScreen[None]):
    """Keys and panels."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box", classes="dialog"):
            yield Static(HELP_TEXT, id="help-text")
