"""TOML run profiles: schema, defaults, validation and ``--set`` overrides.

This module owns the profile format (SPEC §9): the frozen ``Profile`` value
with one frozen dataclass per section, the lookup of shipped profiles
(``profiles/*.toml``, installed as the package ``nas3d_tui.profiles``), the
strict validation that turns every bad input into a one-line
``ProfileError`` naming the key, the value and what is allowed, and a tiny
TOML writer so the resolved profile saved in a run directory loads back
identically.

Defaults are the published protocol (the paper's); shipped profiles override
them. A profile file only needs the keys it changes. ``run.name`` defaults to
the file's stem when the file does not set it.

Descriptions shown by ``list_profiles`` come from the ``[run] description``
key of each shipped profile.

It must not import torch or a UI library; the only I/O is reading profile
files and, in ``Profile.save``, writing one file atomically.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

from .rundir import atomic_write_text

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
    "DATASET_CLASSES",
    "NUM_OPS",
    "DEFAULT_PROFILE",
    "load_profile",
    "list_profiles",
    "shipped_profile_path",
    "parse_override",
]

DEFAULT_PROFILE = "quick"
NUM_OPS = 15

# Classes per MedMNIST3D flag (medmnist INFO); only binary tasks allow BCE.
DATASET_CLASSES: dict[str, int] = {
    "organmnist3d": 11,
    "nodulemnist3d": 2,
    "adrenalmnist3d": 2,
    "fracturemnist3d": 3,
    "vesselmnist3d": 2,
    "synapsemnist3d": 2,
}
DATASETS = tuple(DATASET_CLASSES)


class ProfileError(ValueError):
    """A profile cannot be used. The message is one line naming the key, the value and what is allowed."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


# --------------------------------------------------------------------------
# Sections (frozen; defaults = the published protocol)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RunConfig:
    """``[run]``: identity and placement of a run."""

    name: str = "quick"
    seed: int = 42
    output_dir: str = "runs"
    device: str = "auto"
    description: str = ""


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: which MedMNIST3D split files and how much of them the search sees."""

    dataset: str = "adrenalmnist3d"
    size: int = 28
    root: str = ""  # empty: the bundled file (Adrenal 28³) or medmnist's default root
    download: bool = False
    search_fraction: float = 0.25


@dataclass(frozen=True)
class SpaceConfig:
    """``[space]``: the search space (the paper's by default)."""

    ops: tuple[int, ...] = tuple(range(NUM_OPS))
    stacks: tuple[int, ...] = (1, 2)
    modules: tuple[int, ...] = (1, 2)
    filters: tuple[int, ...] = (8, 16, 32)
    max_edges: int = 9


@dataclass(frozen=True)
class SearchConfig:
    """``[search]``: ODE settings and stopping rules."""

    population: int = 20
    mutation_factor: float = 0.5
    crossover_rate: float = 0.5
    jumping_rate: float = 0.3
    budget: int = 200
    time_budget_minutes: float = 0.0  # 0: no time limit
    fitness: str = "val_acc"


@dataclass(frozen=True)
class TrainingConfig:
    """``[training]``: low-fidelity training of one candidate."""

    epochs: int = 50
    patience: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    loss: str = "cross_entropy"
    amp: bool = False
    channels_last: bool = True
    max_batches_per_epoch: int = 0  # 0: all batches


@dataclass(frozen=True)
class FinalConfig:
    """``[final]``: retraining of the top-k on the full training set."""

    top_k: int = 3  # 0 skips the final phase
    epochs: int = 50
    seeds: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class ExecutorConfig:
    """``[executor]``: where candidates are trained."""

    kind: str = "local"
    workers: int = 1
    per_gpu: int = 1
    address: str = ""


_SECTION_TYPES: dict[str, type] = {
    "run": RunConfig,
    "data": DataConfig,
    "space": SpaceConfig,
    "search": SearchConfig,
    "training": TrainingConfig,
    "final": FinalConfig,
    "executor": ExecutorConfig,
}


@dataclass(frozen=True)
class Profile:
    """A resolved, validated profile: one frozen dataclass per section."""

    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    final: FinalConfig = field(default_factory=FinalConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)

    @property
    def num_classes(self) -> int:
        """Number of classes of ``data.dataset``."""
        return DATASET_CLASSES[self.data.dataset]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain JSON-safe nested dict (tuples become lists)."""
        out: dict[str, dict[str, Any]] = {}
        for section in _SECTION_TYPES:
            values = dataclasses.asdict(getattr(self, section))
            out[section] = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "profile") -> "Profile":
        """Validate a nested dict (as ``to_dict`` or a TOML document gives); missing keys take defaults.

        Raises:
            ProfileError: unknown section or key, wrong type, value out of range.
        """
        return _build({}, data, origin, {})

    def to_toml(self) -> str:
        """The profile as TOML text that ``load_profile`` reads back to an equal ``Profile``."""
        lines = ["# Resolved nas3d-tui profile: every key, defaults included."]
        for section, values in self.to_dict().items():
            lines.append("")
            lines.append(f"[{section}]")
            for key, value in values.items():
                lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``to_toml()`` atomically (temp file, fsync, rename); returns the path."""
        p = Path(path)
        atomic_write_text(p, self.to_toml())
        return p

    def replace(self, **sections: Any) -> "Profile":
        """A copy with whole sections replaced (``profile.replace(search=...)``)."""
        return dataclasses.replace(self, **sections)


# --------------------------------------------------------------------------
# Schema: one checker per key. A checker returns the normalised value or
# raises _Bad(problem, allowed).
# --------------------------------------------------------------------------


class _Bad(Exception):
    def __init__(self, problem: str, allowed: str, hint: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.allowed = allowed
        self.hint = hint


Checker = Callable[[Any], Any]


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _int(lo: int | None = None, hi: int | None = None, what: str = "") -> Checker:
    allowed = what or _range_text("an integer", lo, hi)

    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _Bad(f"wrong type ({_type_name(v)})", allowed)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise _Bad("out of range", allowed)
        return v

    return check


def _float(lo: float | None = None, hi: float | None = None, lo_open: bool = False, what: str = "") -> Checker:
    allowed = what or _range_text("a number", lo, hi, lo_open)

    def check(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _Bad(f"wrong type ({_type_name(v)})", allowed)
        v = float(v)
        if not math.isfinite(v):
            raise _Bad("not a finite number", allowed)
        if lo is not None and (v <= lo if lo_open else v < lo):
            raise _Bad("out of range", allowed)
        if hi is not None and v > hi:
            raise _Bad("out of range", allowed)
        return v

    return check


def _range_text(kind: str, lo: float | None, hi: float | None, lo_open: bool = False) -> str:
    if lo is not None and hi is not None:
        return f"{kind} {'>' if lo_open else '>='} {lo} and <= {hi}"
    if lo is not None:
        return f"{kind} {'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f"{kind} <= {hi}"
    return kind


def _bool() -> Checker:
    def check(v: Any) -> bool:
        if not isinstance(v, bool):
            raise _Bad(f"wrong type ({_type_name(v)})", "true or false")
        return v

    return check


def _str(pattern: str | None = None, allowed: str = "a string", nonempty: bool = False) -> Checker:
    rx = re.compile(pattern) if pattern else None

    def check(v: Any) -> str:
        if not isinstance(v, str):
            raise _Bad(f"wrong type ({_type_name(v)})", allowed)
        if nonempty and not v:
            raise _Bad("empty", allowed)
        if rx is not None and not rx.fullmatch(v):
            raise _Bad("not allowed", allowed)
        return v

    return check


def _choice(options: Sequence[str]) -> Checker:
    allowed = "one of " + ", ".join(f'"{o}"' for o in options)

    def check(v: Any) -> str:
        if not isinstance(v, str):
            raise _Bad(f"wrong type ({_type_name(v)})", allowed)
        if v not in options:
            close = [o for o in options if v and o.startswith(v.lower())]
            close = close or difflib.get_close_matches(v, options, n=1, cutoff=0.75)
            raise _Bad("unknown value", allowed, f'did you mean "{close[0]}"?' if close else "")
        return v

    return check


def _int_list(lo: int, hi: int | None = None, what: str = "integers", example: str = "[0]") -> Checker:
    allowed = f"a non-empty list of unique {what}, e.g. {example}"

    def check(v: Any) -> tuple[int, ...]:
        if not isinstance(v, list):
            raise _Bad(f"wrong type ({_type_name(v)})", allowed)
        if not v:
            raise _Bad("empty list", allowed)
        for x in v:
            if isinstance(x, bool) or not isinstance(x, int):
                raise _Bad(f"element {_fmt(x)} is {_type_name(x)}", allowed)
            if x < lo or (hi is not None and x > hi):
                raise _Bad(f"element {x} is out of range", allowed)
        if len(set(v)) != len(v):
            raise _Bad("repeated elements", allowed)
        return tuple(v)

    return check


def _ops() -> Checker:
    inner = _int_list(0, NUM_OPS - 1, what=f"operation indices 0..{NUM_OPS - 1}")
    allowed = f'"all" or a non-empty list of unique operation indices 0..{NUM_OPS - 1}'

    def check(v: Any) -> tuple[int, ...]:
        if isinstance(v, str):
            if v == "all":
                return tuple(range(NUM_OPS))
            raise _Bad("unknown string", allowed)
        try:
            return inner(v)
        except _Bad as bad:
            raise _Bad(bad.problem, allowed) from None

    return check


def _size() -> Checker:
    as_int = _int(what="28 or 64")

    def check(v: Any) -> int:
        v = as_int(v)
        if v not in (28, 64):
            raise _Bad("not a MedMNIST3D size", "28 or 64")
        return v

    return check


_SCHEMA: dict[str, dict[str, Checker]] = {
    "run": {
        "name": _str(r"[A-Za-z0-9][A-Za-z0-9._-]*", "a non-empty name of letters, digits, '.', '_', '-'"),
        "seed": _int(0, 2**63 - 1, "an integer >= 0"),
        "output_dir": _str(allowed="a non-empty path", nonempty=True),
        "device": _str(r"auto|cpu|cuda|cuda:\d+", 'one of "auto", "cpu", "cuda", "cuda:N"'),
        "description": _str(),
    },
    "data": {
        "dataset": _choice(DATASETS),
        "size": _size(),
        "root": _str(allowed="a path (empty: the bundled file or medmnist's default root)"),
        "download": _bool(),
        "search_fraction": _float(0.0, 1.0, lo_open=True, what="a number > 0 and <= 1"),
    },
    "space": {
        "ops": _ops(),
        "stacks": _int_list(1, what="positive integers", example="[1, 2]"),
        "modules": _int_list(1, what="positive integers", example="[1, 2]"),
        "filters": _int_list(1, what="positive integers", example="[8, 16, 32]"),
        "max_edges": _int(1, 21),
    },
    "search": {
        "population": _int(4, what="an integer >= 4"),
        "mutation_factor": _float(0.0, 2.0, lo_open=True),
        "crossover_rate": _float(0.0, 1.0),
        "jumping_rate": _float(0.0, 1.0),
        "budget": _int(1),
        "time_budget_minutes": _float(0.0, what="a number >= 0 (0: no time limit)"),
        "fitness": _choice(("val_acc", "val_auc")),
    },
    "training": {
        "epochs": _int(1),
        "patience": _int(1),
        "batch_size": _int(1),
        "lr": _float(0.0, lo_open=True),
        "loss": _choice(("cross_entropy", "bce")),
        "amp": _bool(),
        "channels_last": _bool(),
        "max_batches_per_epoch": _int(0, what="an integer >= 0 (0: all batches)"),
    },
    "final": {
        "top_k": _int(0, what="an integer >= 0 (0 skips the final phase)"),
        "epochs": _int(1),
        "seeds": _int_list(0, what="integers >= 0", example="[0, 1, 2]"),
    },
    "executor": {
        "kind": _choice(("local", "ray")),
        "workers": _int(1),
        "per_gpu": _int(1),
        "address": _str(allowed='a Ray address such as "auto" or "ray://host:10001" (empty: start locally)'),
    },
}

# Sanity: schema and dataclasses name the same keys.
assert all(
    set(_SCHEMA[s]) == {f.name for f in dataclasses.fields(t)} for s, t in _SECTION_TYPES.items()
)



# --------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    """A value as the user wrote it (TOML-ish), kept on one short line."""
    try:
        text = _toml_value(value)
    except TypeError:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(word: str, options: Sequence[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {prefix}{close[0]}?" if close else ""


def _build(
    base: Mapping[str, Any],
    data: Mapping[str, Any],
    origin: str,
    origins: dict[tuple[str, str], str],
) -> Profile:
    """Check the shape of ``data`` (sections and keys), then every value, then cross-field rules.

    ``origins`` maps (section, key) to where a value came from (an override) so
    messages name it; otherwise ``origin`` is used.
    """
    merged: dict[str, dict[str, Any]] = {s: dict(v) for s, v in base.items()}
    sections = list(_SCHEMA)
    for section, table in data.items():
        if section not in _SCHEMA:
            if not isinstance(table, dict):
                hint = ""
                owners = [s for s in sections if section in _SCHEMA[s]]
                if owners:
                    hint = f"; did you mean {owners[0]}.{section} (under [{owners[0]}])?"
                raise ProfileError(
                    f"{origin}: top-level key {section} = {_fmt(table)} is not allowed{hint} "
                    f"(keys belong in a section: {', '.join(sections)})"
                )
            where = next((origins[(section, k)] for k in table if (section, k) in origins), origin)
            raise ProfileError(
                f"{where}: unknown section [{section}]{_suggest(section, sections)} "
                f"(allowed sections: {', '.join(sections)})"
            )
        if not isinstance(table, dict):
            raise ProfileError(
                f"{origin}: {section} = {_fmt(table)} must be a table [{section}] "
                f"(allowed keys: {', '.join(_SCHEMA[section])})"
            )
        for key, value in table.items():
            where = origins.get((section, key), origin)
            if key not in _SCHEMA[section]:
                raise ProfileError(
                    f"{where}: unknown key {section}.{key}"
                    f"{_suggest(key, list(_SCHEMA[section]), prefix=section + '.')} "
                    f"(allowed keys in [{section}]: {', '.join(_SCHEMA[section])})"
                )
            merged.setdefault(section, {})[key] = value

    built: dict[str, Any] = {}
    for section, cls in _SECTION_TYPES.items():
        values: dict[str, Any] = {}
        for key, check in _SCHEMA[section].items():
            if key not in merged.get(section, {}):
                continue
            raw = merged[section][key]
            try:
                values[key] = check(raw)
            except _Bad as bad:
                where = origins.get((section, key), origin)
                hint = f" ({bad.hint})" if bad.hint else ""
                raise ProfileError(
                    f"{where}: {section}.{key} = {_fmt(raw)}: {bad.problem}; allowed: {bad.allowed}{hint}"
                ) from None
        built[section] = cls(**values)
    profile = Profile(**built)
    _cross_checks(profile, origin, origins)
    return profile


def _cross_checks(p: Profile, origin: str, origins: dict[tuple[str, str], str]) -> None:
    def where(section: str, key: str) -> str:
        return origins.get((section, key), origin)

    if p.training.loss == "bce" and p.num_classes != 2:
        raise ProfileError(
            f'{where("training", "loss")}: training.loss = "bce" is not allowed for '
            f"{p.data.dataset} ({p.num_classes} classes); allowed: \"bce\" only for binary "
            'datasets, "cross_entropy" for any'
        )
    # A stack after the first halves the resolution; the last stack needs >= 1 voxel.
    max_stacks = 1 + int(math.log2(p.data.size))
    too_deep = [s for s in p.space.stacks if s > max_stacks]
    if too_deep:
        raise ProfileError(
            f"{where('space', 'stacks')}: space.stacks = {_fmt(list(p.space.stacks))}: "
            f"{too_deep[0]} stacks pool a {p.data.size}³ input below one voxel; "
            f"allowed: stack counts 1..{max_stacks} for data.size = {p.data.size}"
        )


# --------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------


def parse_override(text: str) -> tuple[str, str, Any]:
    """Split ``section.key=VALUE`` and parse VALUE as TOML (a bare word is a string).

    Raises:
        ProfileError: no ``=``, or the key is not ``section.key``.
    """
    name, sep, raw = text.partition("=")
    name = name.strip()
    where = f"override '{text}'"
    if not sep or not name:
        raise ProfileError(f"{where}: expected section.key=VALUE, e.g. search.budget=8")
    parts = name.split(".")
    if len(parts) != 2 or not all(parts):
        raise ProfileError(
            f"{where}: the key must be section.key (e.g. search.budget), got {name!r}"
        )
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word (vesselmnist3d, /data/medmnist) is a string
    return parts[0], parts[1], value


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

_NAME_RX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def _shipped_dirs() -> list[Any]:
    """Traversables that may hold shipped profiles: the installed package, then the repo."""
    dirs: list[Any] = []
    try:
        from importlib.resources import files

        d = files("nas3d_tui.profiles")
        if d.is_dir():
            dirs.append(d)
    except Exception:  # not installed, or an importer without resources: use the repo folder
        pass
    repo = Path(__file__).resolve().parent.parent / "profiles"
    if repo.is_dir():
        dirs.append(repo)
    return dirs


def _shipped() -> dict[str, Any]:
    """Shipped profile name -> traversable file (first directory wins)."""
    found: dict[str, Any] = {}
    for d in _shipped_dirs():
        for entry in d.iterdir():
            if entry.name.endswith(".toml") and entry.is_file():
                found.setdefault(entry.name[: -len(".toml")], entry)
    return found


def shipped_profile_path(name: str) -> Any:
    """The file of shipped profile ``name`` (a Path or importlib Traversable).

    Raises:
        ProfileError: no such shipped profile.
    """
    shipped = _shipped()
    if name not in shipped:
        names = sorted(shipped)
        raise ProfileError(
            f"unknown profile {name!r}{_suggest(name, names)} "
            f"(shipped profiles: {', '.join(names) or 'none found'}; or give a path to a .toml file)"
        )
    return shipped[name]


def list_profiles() -> list[tuple[str, str]]:
    """(name, description) of every shipped profile, sorted by name.

    The description is the profile's ``[run] description``; a profile that
    cannot be parsed is listed with the parse error as its description.
    """
    out = []
    for name, entry in sorted(_shipped().items()):
        try:
            doc = tomllib.loads(entry.read_text(encoding="utf-8"))
            run = doc.get("run", {})
            desc = run.get("description", "") if isinstance(run, dict) else ""
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
            desc = f"(unreadable: {' '.join(str(exc).split())})"
        out.append((name, str(desc)))
    return out


def _read(path_or_name: str | os.PathLike[str] | None) -> tuple[str, str, str]:
    """(text, origin for messages, default run name) of a profile."""
    if path_or_name is None:
        path_or_name = DEFAULT_PROFILE
    text_name = os.fspath(path_or_name)
    is_name = (
        not isinstance(path_or_name, Path)
        and not text_name.endswith(".toml")
        and "/" not in text_name
        and os.sep not in text_name
        and (os.altsep is None or os.altsep not in text_name)
    )
    if is_name:
        if not _NAME_RX.fullmatch(text_name):
            raise ProfileError(
                f"profile name {text_name!r} is not valid: use a shipped name (letters, digits, "
                "'_', '-') or a path to a .toml file"
            )
        entry = shipped_profile_path(text_name)
        origin = f"{text_name}.toml (shipped)"
        try:
            return entry.read_text(encoding="utf-8"), origin, text_name
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{origin}: cannot read: {exc}") from None
    path = Path(text_name)
    origin = str(path)
    if not path.exists():
        raise ProfileError(f"profile file not found: {path} (give a .toml path or a shipped name)")
    if not path.is_file():
        raise ProfileError(f"profile path is not a file: {path}")
    try:
        return path.read_text(encoding="utf-8"), origin, path.stem
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{origin}: cannot read: {' '.join(str(exc).split())}") from None


def load_profile(
    path_or_name: str | os.PathLike[str] | None = None, overrides: Sequence[str] = ()
) -> Profile:
    """Load, override and validate a profile.

    Args:
        path_or_name: None for the default shipped profile (``quick``); a str
            without ``.toml`` and without a path separator for a shipped
            profile; else (any other str, or a ``Path``) a TOML file.
        overrides: ``section.key=VALUE`` strings (``--set``); VALUE is parsed
            as a TOML value, a bare word that is not TOML is a string. Later
            overrides win.

    Returns:
        The validated ``Profile``. ``run.name`` defaults to the file's stem.

    Raises:
        ProfileError: missing file, malformed TOML, unknown section or key,
            wrong type, out-of-range value, or a bad override; the message is
            one line naming the key, the value and what is allowed.
    """
    text, origin, stem = _read(path_or_name)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{origin}: malformed TOML: {_decode_error(exc, text)}") from None

    data: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in doc.items()}
    origins: dict[tuple[str, str], str] = {}
    for text_override in overrides:
        section, key, value = parse_override(text_override)
        where = f"override '{text_override}'"
        table = data.get(section)
        if table is None:
            table = data[section] = {}
        elif not isinstance(table, dict):
            raise ProfileError(f"{where}: {section} in {origin} is not a table")
        table[key] = value
        origins[(section, key)] = where

    base = {}
    if _valid_name(stem):
        base = {"run": {"name": stem}}
    return _build(base, data, origin, origins)


def _decode_error(exc: Exception, text: str) -> str:
    """tomllib's message plus the offending line, which names the key."""
    message = " ".join(str(exc).split())
    m = re.search(r"at line (\d+)", message)
    if m:
        lines = text.splitlines()
        n = int(m.group(1))
        if 1 <= n <= len(lines) and lines[n - 1].strip():
            message += ": " + " ".join(lines[n - 1].split())[:80]
    return message


def _valid_name(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name))


# --------------------------------------------------------------------------
# TOML writer (the subset profiles use)
# --------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        return text if any(c in text for c in ".eEn") else text + ".0"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_string(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
