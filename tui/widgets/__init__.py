"""Dashboard panels: one module per widget, each reading a ``DashboardState``."""
from .cell import CellPanel
from .fitness import FitnessPanel
from .leaderboard import COLUMN_LABELS, LeaderboardPanel, LeaderboardTable
from .log import EventLog
from .memory import MemoryPanel
from .status import StatusLine

__all__ = [
    "COLUMN_LABELS",
    "CellPanel",
    "EventLog",
    "FitnessPanel",
    "LeaderboardPanel",
    "LeaderboardTable",
    "MemoryPanel",
    "StatusLine",
]
