"""What a session needs before it runs: a device, a run directory name, the data, a strategy.

Helpers the session (and the ``train`` command and the benchmarks) share; each
turns a profile into one ready object and raises one-line user errors.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CorruptFileError, SessionError
from ..exhaustive import STATE_FORMAT as EXHAUSTIVE_FORMAT
from ..exhaustive import ExhaustiveSearch, SpaceTooLarge
from ..ode import ODE
from ..ode import STATE_FORMAT as ODE_FORMAT
from ..profile import Profile
from ..random_search import STATE_FORMAT as RANDOM_FORMAT
from ..random_search import RandomSearch
from ..records import CandidateRecord
from ..rundir import run_dir_name
from ..space import SearchSpace

if TYPE_CHECKING:
    from ..data import Dataset

__all__ = [
    "resolve_device",
    "new_run_dir",
    "space_of",
    "make_strategy",
    "restore_strategy",
    "check_strategy_matches",
    "check_record_matches",
    "load_data",
]


def resolve_device(device: str) -> str:
    """Map a profile's ``run.device`` to a torch device string (``engine.training.resolve_device``).

    Raises:
        SessionError: CUDA was asked for and is not available, or no such GPU.
    """
    from ..training.device import resolve_device as resolve

    return resolve(device, "run.device")


def new_run_dir(profile: Profile, output_dir: str | os.PathLike[str] | None = None) -> Path:
    """A fresh directory name ``<output_dir>/<name>-YYYYmmdd-HHMMSS`` (suffixed if taken)."""
    return run_dir_name(output_dir or profile.run.output_dir, profile.run.name)


def space_of(profile: Profile) -> SearchSpace:
    """The search space a profile's ``[space]`` section describes."""
    s = profile.space
    return SearchSpace(ops=s.ops, stacks=s.stacks, modules=s.modules, filters=s.filters, max_edges=s.max_edges)


def make_strategy(profile: Profile, space: SearchSpace) -> ODE | RandomSearch:
    """A fresh search strategy for ``search.strategy`` (ODE, the random-search baseline, or every cell).

    Raises:
        SessionError: ``exhaustive`` over a space with more cells than ``engine.exhaustive.MAX_CELLS``.
    """
    s = profile.search
    if s.strategy == "exhaustive":
        try:
            return ExhaustiveSearch(space, population=s.population, seed=profile.run.seed)
        except SpaceTooLarge as exc:
            raise SessionError(f'search.strategy = "exhaustive": {exc}') from None
    if s.strategy == "random":
        return RandomSearch(dim=space.dim, population=s.population, seed=profile.run.seed)
    return ODE(
        dim=space.dim,
        population=s.population,
        mutation_factor=s.mutation_factor,
        crossover_rate=s.crossover_rate,
        jumping_rate=s.jumping_rate,
        seed=profile.run.seed,
        key_fn=space.key_of,
    )


def restore_strategy(state: dict[str, Any], space: SearchSpace, where: str) -> ODE | RandomSearch:
    """The strategy saved in the search state, checked field by field.

    Raises:
        CorruptFileError: the saved state is not a valid strategy state (names ``where``).
    """
    fmt = state.get("format") if isinstance(state, dict) else None
    try:
        if fmt == EXHAUSTIVE_FORMAT:
            return ExhaustiveSearch.from_state(state, key_fn=space.key_of, space=space)
        if fmt == RANDOM_FORMAT:
            return RandomSearch.from_state(state, key_fn=space.key_of)
        if fmt == ODE_FORMAT:
            return ODE.from_state(state, key_fn=space.key_of)
    except ValueError as exc:
        raise CorruptFileError(f"{where} is corrupt: {exc}; cannot resume") from None
    raise CorruptFileError(f"{where} is corrupt: unknown search state format {fmt!r}; cannot resume")


def check_strategy_matches(
    state: dict[str, Any], profile: Profile, space: SearchSpace, where: str, profile_path: str | os.PathLike[str]
) -> None:
    """The search state's strategy must be the one the run's profile makes: same kind and settings.

    A run whose profile (population, seed, F, CR, JR, strategy) changed after its
    search state was saved cannot continue as the uninterrupted run would.

    Raises:
        CorruptFileError: names both files and the first setting that differs.
    """
    fresh = make_strategy(profile, space).state_dict()
    if state.get("format") != fresh["format"]:
        raise CorruptFileError(
            f"{where} does not match {profile_path}: the search state holds a {_kind_of(state.get('format'))} state, "
            f"the profile asks for search.strategy = {profile.search.strategy!r}; cannot resume"
        )
    saved = state.get("settings", {})
    for name, value in fresh["settings"].items():
        if saved.get(name) != value:
            raise CorruptFileError(
                f"{where} does not match {profile_path}: {name} = {saved.get(name)!r} in the search state, "
                f"{value!r} in the profile; cannot resume"
            )


def _kind_of(fmt: object) -> str:
    """The strategy kind of a checkpoint's ``format`` value (any JSON value, from the file)."""
    kinds: dict[object, str] = {ODE_FORMAT: "ODE", RANDOM_FORMAT: "random-search", EXHAUSTIVE_FORMAT: "exhaustive"}
    return kinds.get(fmt, repr(fmt))


def check_record_matches(record: CandidateRecord, space: SearchSpace, where: str) -> None:
    """A candidate record must describe the architecture its vector decodes to in the run's space.

    Catches hand-edited vectors, genotypes and keys, and a ``[space]`` section
    changed after the record was written.

    Raises:
        CorruptFileError: names the file and what disagrees.
    """
    from ..space import Genotype

    try:
        key = space.key_of(record.vector)
    except ValueError as exc:
        raise CorruptFileError(f"{where} is corrupt: vector: {exc}; cannot resume") from None
    if key != record.key:
        raise CorruptFileError(
            f"{where} is corrupt: its vector decodes to key {key} in the run's search space, "
            f"the record says {record.key}; cannot resume"
        )
    if record.key is None and not record.genotype:
        return
    try:
        genotype = Genotype.from_dict(record.genotype, max_edges=space.max_edges)
    except (ValueError, AttributeError) as exc:
        raise CorruptFileError(f"{where} is corrupt: genotype: {exc}; cannot resume") from None
    if genotype.key != record.key:
        raise CorruptFileError(
            f"{where} is corrupt: its genotype has key {genotype.key}, the record says {record.key}; cannot resume"
        )


def load_data(profile: Profile, device: str) -> Dataset:
    """The profile's dataset, all splits resident on ``device``.

    Raises:
        engine.data_source.DataError: missing, malformed or unsuitable file (one line).
    """
    from ..data import load_datafile, load_dataset
    from ..data_source import DataError
    from ..datafile import min_size_for_stacks

    d = profile.data
    if not d.path:
        return load_dataset(d.dataset, d.size, d.root, d.download, device=device)
    data = load_datafile(d.path, device=device, min_size=min_size_for_stacks(max(profile.space.stacks)))
    if profile.training.loss == "bce" and data.num_classes != 2:
        raise DataError(
            f'training.loss = "bce" needs a binary dataset; {d.path} has {data.num_classes} classes '
            '(use "cross_entropy")'
        )
    return data
