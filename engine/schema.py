"""The one check of everything a run reads back from disk: a JSON object against a dataclass's annotations.

Candidate records (``candidates/NNNNNN.json``), journal events (``events.jsonl``),
the search state (``checkpoint.json``) and the final results (``result.json``)
are all read the same way: ``load(SomeDataclass, data, rule)`` builds the
dataclass from a decoded JSON object, checking every field against its
annotation -- ``int``, ``float``, ``str``, ``bool``, ``X | None``, ``Literal``,
``list[...]``, ``dict[str, ...]`` and nested dataclasses -- then the values
annotations cannot say, those a real run writes: every integer field is a
count (0 <= n < 2**63: nothing a run writes is negative, and a longer integer
is damage), and every float field passes the reader's ``rule`` (a metric lies
in [0, 1] or is NaN, a time is finite, ...).

The type check is msgspec's (``msgspec.convert(..., strict=True)``: no bool
for a number, no string for an integer; an integer is accepted for a float and
made one); what it finds wrong is said here, in one line naming the field
(``history[3].val_auc = 'x' is str; expected a number``), never in msgspec's
words. Keys the dataclass does not know are ignored (a newer version may add
some); a field missing from the object takes its default, and one without a
default is missing (``field 'status' is missing``).

The caller names the file: ``SchemaError`` says what is wrong with which field,
the reader puts ``<file> is corrupt: `` in front.

Pure Python and msgspec: no torch, no I/O.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Callable, Literal, TypeVar, Union

import msgspec

__all__ = ["SchemaError", "NumberRule", "load", "short", "kind_of"]

T = TypeVar("T")

# A float's check by the name of its field: "" when a run writes such a value, else what it would
# write ("expected a number in [0, 1]"). Called for every float field, at any depth.
NumberRule = Callable[[str, float], str]

_LARGEST_COUNT = 2**63  # a count beyond 64 bits is damage (and where orjson would have given a float)


class SchemaError(ValueError):
    """A JSON value that does not fit its dataclass: one line, the field first (``field``: its path, '' for the whole)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def load(cls: type[T], data: object, rule: NumberRule | None = None) -> T:
    """``cls`` built from the JSON object ``data``, every field checked against its annotation and ``rule``.

    Raises:
        SchemaError: ``data`` is not an object, a field without a default is missing, a field has the
            wrong type or a value its ``Literal`` does not allow, or ``rule`` refuses a number.
    """
    if type(data) is not dict:
        raise SchemaError("", f"expected a JSON object, got {kind_of(data)}")
    try:
        value = msgspec.convert(data, cls, strict=True)
    except msgspec.ValidationError as exc:
        raise _explain(cls, data, str(exc)) from None
    _finish(value, cls, rule, "")
    return value


def short(value: object) -> str:
    """``repr(value)``, cut to 40 characters (a damaged field can be a whole file)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def kind_of(value: object) -> str:
    return "null" if value is None else type(value).__name__


# -- numbers -----------------------------------------------------------------------------------


def _finish(value: object, cls: type[Any], rule: NumberRule | None, prefix: str) -> None:
    """Check every integer of ``value`` (and of the dataclasses in it) to be a count and every float against
    ``rule``, and give each
    the fields msgspec left to their class defaults (it sets no attribute for a plain default: the
    instance would lack them in its ``__dict__``, which ``CandidateRecord.light`` copies)."""
    counts, numbers, nested, defaults = _plan(cls)
    fields = getattr(value, "__dict__", None)  # (None with slots: msgspec then sets every field)
    if fields is not None and len(fields) < len(_hints(cls)):
        for name, default in defaults:
            if name not in fields:
                fields[name] = default  # (a frozen dataclass refuses setattr, not its __dict__)
    for name in counts:
        v = getattr(value, name)
        if v is not None and not 0 <= v < _LARGEST_COUNT:
            raise SchemaError(prefix + name, f"{prefix}{name} = {short(v)}; expected an integer >= 0")
    if rule is not None:
        for name in numbers:
            v = getattr(value, name)
            if v is not None:
                problem = rule(name, v)
                if problem:
                    raise SchemaError(prefix + name, f"{prefix}{name} = {short(v)}; {problem}")
    for name, inner, many in nested:
        v = getattr(value, name)
        if v is None:
            continue
        if many:
            for i, item in enumerate(v):
                _finish(item, inner, rule, f"{prefix}{name}[{i}].")
        else:
            _finish(v, inner, rule, f"{prefix}{name}.")


_Plan = tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, type[Any], bool], ...], tuple[tuple[str, Any], ...]]


_PLANS: dict[type[Any], _Plan] = {}


def _plan(cls: type[Any]) -> _Plan:
    """The fields of ``cls`` that hold an integer, those that hold a float, those that hold a dataclass (or a
    list of them), and the plain defaults, worked out once."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _make_plan(cls)
    return plan


def _make_plan(cls: type[Any]) -> _Plan:
    counts: list[str] = []
    numbers: list[str] = []
    nested: list[tuple[str, type[Any], bool]] = []
    for name, hint in _hints(cls).items():
        hint = _without_none(hint)
        if hint is int:
            counts.append(name)
        elif hint is float:
            numbers.append(name)
        elif _is_dataclass(hint):
            nested.append((name, hint, False))
        elif typing.get_origin(hint) is list:
            args = typing.get_args(hint)
            if args and _is_dataclass(_without_none(args[0])):
                nested.append((name, _without_none(args[0]), True))
    defaults = tuple((f.name, f.default) for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING)
    return tuple(counts), tuple(numbers), tuple(nested), defaults


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    """The resolved annotation of each dataclass field of ``cls`` (class variables are no fields), worked out once."""
    hints = _HINTS.get(cls)
    if hints is None:
        resolved = typing.get_type_hints(cls)
        hints = _HINTS[cls] = {f.name: resolved[f.name] for f in dataclasses.fields(cls)}
    return hints


_UNIONS = (Union, types.UnionType)


def _without_none(hint: object) -> Any:
    """``X`` for ``X | None`` (any other annotation as it is)."""
    if typing.get_origin(hint) in _UNIONS:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _is_dataclass(hint: object) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


# -- msgspec's findings, in our words --------------------------------------------------------------

_AT = re.compile(r" - at `\$([^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `([^`]*)`")
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _explain(cls: type[Any], data: object, message: str) -> SchemaError:
    """The one line that says what msgspec found wrong: the field's path, its value, what its annotation expects."""
    at = _AT.search(message)
    path = at.group(1) if at else ""
    steps = [(name, int(index) if index else None) for name, index in _STEP.findall(path)]
    missing = _MISSING.match(message)
    if missing:
        steps.append((missing.group(1), None))
        where = _path(steps)
        return SchemaError(where, f"field {where!r} is missing")
    where = _path(steps)
    try:
        value, hint = _follow(cls, data, steps)
    except (KeyError, IndexError, TypeError):  # a finding this does not know how to place: say it as it is
        said = message[: at.start()] if at else message
        return SchemaError(where, f"{where or 'the object'}: {said}")
    name = where or "the object"
    if message.startswith("Number out of range"):
        return SchemaError(where, f"{name} = {short(value)} is out of range; expected {_describe(hint)}")
    choices = typing.get_args(_without_none(hint)) if typing.get_origin(_without_none(hint)) is Literal else ()
    if type(value) in {type(c) for c in choices}:  # the right type, not one of the values allowed
        return SchemaError(where, f"{name} = {short(value)}; expected {_describe(hint)}")
    return SchemaError(where, f"{name} = {short(value)} is {kind_of(value)}; expected {_describe(hint)}")


def _path(steps: list[tuple[str, int | None]]) -> str:
    out = ""
    for name, index in steps:
        out += f"[{index}]" if index is not None else (f".{name}" if out else name)
    return out


def _follow(cls: type[Any], data: object, steps: list[tuple[str, int | None]]) -> tuple[Any, Any]:
    """The value at ``steps`` in ``data`` and the annotation it was checked against."""
    value: Any = data
    hint: Any = cls
    for name, index in steps:
        hint = _without_none(hint)
        if index is not None:
            value = value[index]
            hint = typing.get_args(hint)[0] if typing.get_args(hint) else Any
        else:
            value = value[name]
            if _is_dataclass(hint):
                hint = _hints(hint)[name]
            else:
                args = typing.get_args(hint)
                hint = args[1] if len(args) == 2 else Any
    return value, hint


_WORDS: dict[type, tuple[str, str]] = {int: ("an integer", "integers"), float: ("a number", "numbers"), str: ("a string", "strings"),
          bool: ("true or false", "booleans"), dict: ("an object", "objects"), list: ("a list", "lists")}


def _describe(hint: object, plural: bool = False) -> str:
    """What a value of annotation ``hint`` is, in words: ``a number or null``, ``a list of objects``."""
    origin = typing.get_origin(hint)
    if origin in _UNIONS:
        return " or ".join(_describe(a, plural) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin is Literal:
        choices = typing.get_args(hint)
        return repr(choices[0]) if len(choices) == 1 else "one of " + ", ".join(repr(a) for a in choices)
    if _is_dataclass(hint):
        return "objects" if plural else "an object"
    if origin is list:
        args = typing.get_args(hint)
        return ("lists" if plural else "a list") + (f" of {_describe(args[0], True)}" if args and args[0] is not Any else "")
    base = origin or hint
    words = _WORDS.get(base) if isinstance(base, type) else None
    if words is None:
        return "values" if plural else "a value"
    return words[plural]
