"""Modal screens: candidate details, help, quit confirmation."""
from .confirm import ConfirmQuit
from .details import CandidateDetails
from .help import HelpScreen

__all__ = ["CandidateDetails", "ConfirmQuit", "HelpScreen"]
