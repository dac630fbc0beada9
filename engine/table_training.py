"""Training a cell of a tabular benchmark again, exactly as the run that built the table trained it.

A table's header holds the whole profile of its run; ``retrain`` rebuilds
that run's search data (the dataset, the search subset of ``run.seed``) and
trains one entry's cell with the search protocol (``train_candidate`` with
the profile's training settings and fitness, its best epoch scored on the
test split), either with the entry's own seed (a check that the table is what
training gives: on the same machine the same numbers, elsewhere the CPU's
floating point can move them a little) or with another seed (a second
training: the seed-to-seed noise the table carries).

Uses torch; ``engine.bench_table`` (the file format) stays pure.
"""
from __future__ import annotations

from dataclasses import dataclass

from .bench_table import BenchTable, TableEntry, table_seed
from .data import Dataset
from .profile import Profile
from .space import Genotype, SearchSpace
from .training.loop import CandidateResult

__all__ = ["TableProtocol", "second_seed"]


def second_seed(run_seed: int, candidate_id: int, offset: int = 1) -> int:
    """The seed of a cell's ``offset``-th extra training: the one a run of seed ``run_seed + offset`` would give it."""
    return table_seed(int(run_seed) + int(offset), candidate_id)


@dataclass
class TableProtocol:
    """The table's run's profile, space and search data, loaded once for any number of trainings."""

    profile: Profile
    space: SearchSpace
    data: Dataset

    @classmethod
    def of(cls, table: BenchTable, where: str = "table", device: str = "cpu") -> "TableProtocol":
        """Load the data of ``table``'s run (``header.profile``) onto ``device``.

        Raises:
            engine.errors.UserError: the header's profile is not valid here, or its data cannot be loaded.
        """
        from .session.setup import load_data, space_of

        profile = Profile.from_dict(table.header["profile"], origin=f"{where} header.profile")
        data = load_data(profile, device).search_subset(profile.data.search_fraction, profile.run.seed)
        return cls(profile, space_of(profile), data)

    def genotype(self, entry: TableEntry) -> Genotype:
        """The entry's cell, decoded from its proposed vector (its key must be the entry's)."""
        g = self.space.decode(entry.record.vector)
        if g.key != entry.record.key:
            raise ValueError(f"entry {entry.record.candidate_id}: its vector decodes to {g.key}, not {entry.record.key}")
        return g

    def train(self, entry: TableEntry, seed: int | None = None, device: str = "cpu") -> CandidateResult:
        """Train ``entry``'s cell with the run's search protocol and ``seed`` (None: the entry's own)."""
        from .training.loop import train_candidate

        p = self.profile
        return train_candidate(
            self.genotype(entry),
            self.data,
            p.training,
            seed=entry.seed if seed is None else int(seed),
            fitness=p.search.fitness,
            device=device,
            score_test=True,
        )
