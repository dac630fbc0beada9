"""TOML run profiles (SPEC §9): schema, defaults, validation and ``--set`` overrides.

The package owns the profile format: ``sections`` (every key with its
default and its check), ``checks`` (the value checkers), ``resolve`` (the
``Profile`` value and the validation that builds it), ``files`` (shipped
profiles, reading files, overrides, ``load_profile``) and ``toml_out`` (the
writer, so a run directory's saved profile loads back identically).

Defaults are the published protocol (the paper's); shipped profiles override
them. A profile file only needs the keys it changes; ``run.name`` defaults to
the file's stem.

No module here imports torch or a UI library.
"""
from __future__ import annotations

from ..catalog import DATASETS as _CATALOG
from .checks import NUM_OPS
from .files import DEFAULT_PROFILE, list_profiles, load_profile, parse_override, shipped_profile_path
from .resolve import Profile, ProfileError
from .sections import (
    DataConfig,
    ExecutorConfig,
    FinalConfig,
    RunConfig,
    SearchConfig,
    SpaceConfig,
    TrainingConfig,
)

__all__ = [
    "ProfileError",
    "Profile",
    "RunConfig",
    "DataConfig",
    "SpaceConfig",
    "SearchConfig",
    "TrainingConfig",
    "FinalConfig",
    "ExecutorConfig",
    "DATASETS",
    "NUM_OPS",
    "DEFAULT_PROFILE",
    "load_profile",
    "list_profiles",
    "shipped_profile_path",
    "parse_override",
]

DATASETS = tuple(_CATALOG)  # the MedMNIST3D flags a profile may name
