"""The words a run's values are made of, as types: what a status, a phase or a command can be.

This module owns the closed sets of strings that cross the engine's seams --
a candidate's status and phase, an epoch's phase, the strategy, the pruning
rule, the tie-break, the fitness, a control command, a run's kind -- as
``Literal`` types, so the type checker holds every producer and reader to the
same values. They are plain strings at run time: the JSON on disk (candidate
files, ``events.jsonl``, ``checkpoint.json``) is unchanged. Each type has the
tuple of its values beside it (``typing.get_args``), for the checks of a
profile or a file.

Pure Python: no torch, no I/O, no other engine module.
"""
from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "CandidateStatus",
    "RecordStatus",
    "CandidatePhase",
    "EpochPhase",
    "Strategy",
    "PruningRule",
    "TieBreak",
    "Fitness",
    "Command",
    "RunKind",
    "CANDIDATE_STATUSES",
    "TRAINED_STATUSES",
    "CANDIDATE_PHASES",
    "EPOCH_PHASES",
    "STRATEGIES",
    "PRUNING_RULES",
    "TIE_BREAKS",
    "FITNESSES",
    "COMMANDS",
    "RUN_KINDS",
    "as_tie_break",
]

# A finished candidate's status. ``pruned``: stopped early because it could no longer win;
# ``infeasible`` / ``duplicate``: never trained (no cell; a result reused by architecture key).
CandidateStatus = Literal["ok", "pruned", "infeasible", "duplicate", "oom", "failed"]
# A record's status: a finished one's, or ``""`` for the draft of a proposal not yet decided
# (``CandidateRecord.proposed``; never written to disk or published).
RecordStatus = Literal[CandidateStatus, ""]
TrainedStatus = Literal["ok", "pruned", "oom", "failed"]  # the statuses that spent budget

# Where a candidate came from: the ODE's batches (init, opposite, trial, jump), random search,
# the exhaustive enumeration, or ``seed`` (one seed of ``nas3d-tui train``, an architecture retrained).
CandidatePhase = Literal["init", "opposite", "trial", "jump", "random", "exhaustive", "seed"]
# An epoch's training: a search candidate's, or a finalist's retraining.
EpochPhase = Literal["search", "final"]

Strategy = Literal["ode", "random", "exhaustive"]  # ``search.strategy``
PruningRule = Literal["none", "parent", "median"]  # ``search.pruning``
TieBreak = Literal["val_auc", "none"]  # ``search.tie_break``
Fitness = Literal["val_acc", "val_auc"]  # ``search.fitness``

Command = Literal["pause", "resume", "stop"]  # a user's command to a run (keys, ``control.json``)
RunKind = Literal["search", "train"]  # ``RunStarted.run_kind``: a search, or one architecture retrained

CANDIDATE_STATUSES: Final[tuple[CandidateStatus, ...]] = get_args(CandidateStatus)
TRAINED_STATUSES: Final[tuple[TrainedStatus, ...]] = get_args(TrainedStatus)
CANDIDATE_PHASES: Final[tuple[CandidatePhase, ...]] = get_args(CandidatePhase)
EPOCH_PHASES: Final[tuple[EpochPhase, ...]] = get_args(EpochPhase)
STRATEGIES: Final[tuple[Strategy, ...]] = get_args(Strategy)
PRUNING_RULES: Final[tuple[PruningRule, ...]] = get_args(PruningRule)
TIE_BREAKS: Final[tuple[TieBreak, ...]] = get_args(TieBreak)
FITNESSES: Final[tuple[Fitness, ...]] = get_args(Fitness)
COMMANDS: Final[tuple[Command, ...]] = get_args(Command)
RUN_KINDS: Final[tuple[RunKind, ...]] = get_args(RunKind)


def as_tie_break(value: object) -> TieBreak | None:
    """``value`` as a ``TieBreak`` when it is one, else None (a reader that falls back to a default)."""
    for tie in TIE_BREAKS:
        if value == tie:
            return tie
    return None
