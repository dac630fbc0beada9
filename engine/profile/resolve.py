"""A resolved profile: the ``Profile`` value and the validation that builds it.

This module owns turning nested data (a TOML document, ``--set`` overrides,
a saved run's profile) into a frozen ``Profile``: sections and keys must be
known (with a did-you-mean), every value passes its key's checker
(``engine.profile.sections``), and cross-field rules hold. Every refusal is a
``ProfileError`` of one line naming where the value came from, the key, the
value and what is allowed.

Pure Python: no torch; the only I/O is ``Profile.save``.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..catalog import DATASETS
from ..errors import UserError
from ..atomic import atomic_write_text
from . import checks as c
from .sections import (
    SECTIONS,
    DataConfig,
    ExecutorConfig,
    FinalConfig,
    RunConfig,
    SearchConfig,
    SpaceConfig,
    TrainingConfig,
    checker,
    keys,
)
from .toml_out import toml_value

__all__ = ["ProfileError", "Profile", "build", "fmt"]


class ProfileError(UserError, ValueError):
    """A profile cannot be used. The message is one line naming the key, the value and what is allowed."""


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
    def num_classes(self) -> int | None:
        """Classes of ``data.dataset``; None for an own file (``data.path``), known once it is read."""
        if self.data.path:
            return None
        return DATASETS[self.data.dataset].num_classes

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain JSON-safe nested dict (tuples become lists)."""
        out: dict[str, dict[str, Any]] = {}
        for section in SECTIONS:
            values = dataclasses.asdict(getattr(self, section))
            out[section] = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "profile") -> "Profile":
        """Validate a nested dict (as ``to_dict`` or a TOML document gives); missing keys take defaults.

        Raises:
            ProfileError: unknown section or key, wrong type, value out of range.
        """
        return build({}, data, origin, {})

    def to_toml(self) -> str:
        """The profile as TOML text that ``load_profile`` reads back to an equal ``Profile``."""
        lines = ["# Resolved nas3d-tui profile: every key, defaults included."]
        for section, values in self.to_dict().items():
            lines.append("")
            lines.append(f"[{section}]")
            for key, value in values.items():
                lines.append(f"{key} = {toml_value(value)}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``to_toml()`` atomically (temp file, fsync, rename); returns the path."""
        p = Path(path)
        atomic_write_text(p, self.to_toml())
        return p

    def replace(self, **sections: Any) -> "Profile":
        """A copy with whole sections replaced (``profile.replace(search=...)``)."""
        # ``Any``: mypy checks each keyword of dataclasses.replace against its field's type
        # and rejects any narrower ``**`` type (``object``, a union of the section classes).
        return dataclasses.replace(self, **sections)


def fmt(value: object) -> str:
    """A value as the user wrote it (TOML-ish), kept on one short line."""
    try:
        text = toml_value(value)
    except TypeError:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(word: str, options: Sequence[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {prefix}{close[0]}?" if close else ""


def build(
    base: Mapping[str, Any],
    data: Mapping[str, Any],
    origin: str,
    origins: dict[tuple[str, str], str],
) -> Profile:
    """Check the shape of ``data`` (sections and keys), then every value, then cross-field rules.

    Args:
        base: values applied before ``data`` (e.g. the run name from the file's stem).
        data: the document: ``{section: {key: value}}``.
        origin: where ``data`` came from, for messages (a file name).
        origins: (section, key) -> where that value came from when not ``origin`` (an override).

    Raises:
        ProfileError: one line.
    """
    merged: dict[str, dict[str, Any]] = {s: dict(v) for s, v in base.items()}
    sections = list(SECTIONS)
    for section, table in data.items():
        if section not in SECTIONS:
            if not isinstance(table, dict):
                hint = ""
                owners = [s for s in sections if section in keys(SECTIONS[s])]
                if owners:
                    hint = f"; did you mean {owners[0]}.{section} (under [{owners[0]}])?"
                raise ProfileError(
                    f"{origin}: top-level key {section} = {fmt(table)} is not allowed{hint} "
                    f"(keys belong in a section: {', '.join(sections)})"
                )
            where = next((origins[(section, k)] for k in table if (section, k) in origins), origin)
            raise ProfileError(
                f"{where}: unknown section [{section}]{_suggest(section, sections)} "
                f"(allowed sections: {', '.join(sections)})"
            )
        allowed = keys(SECTIONS[section])
        if not isinstance(table, dict):
            raise ProfileError(
                f"{origin}: {section} = {fmt(table)} must be a table [{section}] (allowed keys: {', '.join(allowed)})"
            )
        for key, value in table.items():
            where = origins.get((section, key), origin)
            if key not in allowed:
                raise ProfileError(
                    f"{where}: unknown key {section}.{key}"
                    f"{_suggest(key, allowed, prefix=section + '.')} "
                    f"(allowed keys in [{section}]: {', '.join(allowed)})"
                )
            merged.setdefault(section, {})[key] = value

    built: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        values: dict[str, Any] = {}
        for key, raw in merged.get(section, {}).items():
            try:
                values[key] = checker(cls, key)(raw)
            except c.Bad as bad:
                where = origins.get((section, key), origin)
                hint = f" ({bad.hint})" if bad.hint else ""
                raise ProfileError(
                    f"{where}: {section}.{key} = {fmt(raw)}: {bad.problem}; allowed: {bad.allowed}{hint}"
                ) from None
        built[section] = cls(**values)
    profile = Profile(**built)
    _cross_checks(profile, origin, origins)
    return profile


def _cross_checks(p: Profile, origin: str, origins: dict[tuple[str, str], str]) -> None:
    def where(section: str, key: str) -> str:
        return origins.get((section, key), origin)

    if p.data.path:  # an own file: classes and size are checked when it is read
        return
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
            f"{where('space', 'stacks')}: space.stacks = {fmt(list(p.space.stacks))}: "
            f"{too_deep[0]} stacks pool a {p.data.size}³ input below one voxel; "
            f"allowed: stack counts 1..{max_stacks} for data.size = {p.data.size}"
        )
