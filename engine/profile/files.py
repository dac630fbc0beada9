"""Where profiles come from: shipped profiles, profile files, and ``--set`` overrides.

This module owns finding the shipped profiles (``profiles/*.toml``, installed
as the package ``nas3d_tui.profiles``), reading a profile file (UTF-8, with or
without a byte-order mark), parsing ``section.key=VALUE`` overrides as TOML
values, and ``load_profile``, which puts them together and validates the
result (``engine.profile.resolve``). Every problem is a one-line
``ProfileError``.

No torch; the only I/O is reading profile files.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Sequence

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

from .resolve import Profile, ProfileError, _suggest, build

__all__ = ["DEFAULT_PROFILE", "load_profile", "list_profiles", "shipped_profile_path", "parse_override"]

DEFAULT_PROFILE = "quick"


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
    repo = Path(__file__).resolve().parents[2] / "profiles"
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
            doc = tomllib.loads(entry.read_text(encoding="utf-8-sig"))
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
            return entry.read_text(encoding="utf-8-sig"), origin, text_name
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{origin}: cannot read: {exc}") from None
    path = Path(text_name)
    origin = str(path)
    try:
        if not path.exists():
            raise ProfileError(f"profile file not found: {path} (give a .toml path or a shipped name)")
        if not path.is_file():
            raise ProfileError(f"profile path is not a file: {path}")
        # utf-8-sig: a byte-order mark (some Windows editors write one) is not part of the TOML
        return path.read_text(encoding="utf-8-sig"), origin, path.stem
    except OSError as exc:  # unreadable, or a name too long for the file system
        raise ProfileError(f"{origin}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{origin}: cannot read: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


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
    return build(base, data, origin, origins)


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


