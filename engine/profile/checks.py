"""Value checkers for profile keys: each returns the normalised value or raises ``Bad``.

A checker knows one key's type and range and how to say what is allowed;
where the value came from (a file, an override) is added by the caller.
Pure Python.
"""
from __future__ import annotations

import difflib
import math
import re
from typing import Any, Callable, Sequence

__all__ = [
    "Bad",
    "Checker",
    "type_name",
    "integer",
    "number",
    "boolean",
    "string",
    "choice",
    "bool_or_choice",
    "int_list",
    "operations",
    "one_of_ints",
    "NUM_OPS",
]

NUM_OPS = 15  # rows of the operation table (SPEC §3)

Checker = Callable[[object], Any]


class Bad(Exception):
    """A value a checker refuses: what is wrong, what is allowed, and an optional hint."""

    def __init__(self, problem: str, allowed: str, hint: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.allowed = allowed
        self.hint = hint


def type_name(value: object) -> str:
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


def _range_text(kind: str, lo: float | None, hi: float | None, lo_open: bool = False) -> str:
    if lo is not None and hi is not None:
        return f"{kind} {'>' if lo_open else '>='} {lo} and <= {hi}"
    if lo is not None:
        return f"{kind} {'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f"{kind} <= {hi}"
    return kind


def integer(lo: int | None = None, hi: int | None = None, what: str = "") -> Checker:
    allowed = what or _range_text("an integer", lo, hi)

    def check(v: object) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise Bad(f"wrong type ({type_name(v)})", allowed)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise Bad("out of range", allowed)
        return v

    return check


def number(lo: float | None = None, hi: float | None = None, lo_open: bool = False, what: str = "") -> Checker:
    allowed = what or _range_text("a number", lo, hi, lo_open)

    def check(v: object) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise Bad(f"wrong type ({type_name(v)})", allowed)
        x = float(v)
        if not math.isfinite(x):
            raise Bad("not a finite number", allowed)
        if lo is not None and (x <= lo if lo_open else x < lo):
            raise Bad("out of range", allowed)
        if hi is not None and x > hi:
            raise Bad("out of range", allowed)
        return x

    return check


def boolean() -> Checker:
    def check(v: object) -> bool:
        if not isinstance(v, bool):
            raise Bad(f"wrong type ({type_name(v)})", "true or false")
        return v

    return check


def string(pattern: str | None = None, allowed: str = "a string", nonempty: bool = False) -> Checker:
    rx = re.compile(pattern) if pattern else None

    def check(v: object) -> str:
        if not isinstance(v, str):
            raise Bad(f"wrong type ({type_name(v)})", allowed)
        if nonempty and not v:
            raise Bad("empty", allowed)
        if rx is not None and not rx.fullmatch(v):
            raise Bad("not allowed", allowed)
        return v

    return check


def choice(options: Sequence[str]) -> Checker:
    allowed = "one of " + ", ".join(f'"{o}"' for o in options)

    def check(v: object) -> str:
        if not isinstance(v, str):
            raise Bad(f"wrong type ({type_name(v)})", allowed)
        if v not in options:
            close = [o for o in options if v and o.startswith(v.lower())]
            close = close or difflib.get_close_matches(v, options, n=1, cutoff=0.75)
            raise Bad("unknown value", allowed, f'did you mean "{close[0]}"?' if close else "")
        return v

    return check


def bool_or_choice(options: Sequence[str]) -> Checker:
    """true, false, or one of ``options`` (e.g. ``"auto"``)."""
    allowed = "true, false or " + ", ".join(f'"{o}"' for o in options)

    def check(v: object) -> bool | str:
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v in options:
            return v
        problem = f"wrong type ({type_name(v)})" if not isinstance(v, str) else "unknown value"
        raise Bad(problem, allowed)

    return check


def int_list(lo: int, hi: int | None = None, what: str = "integers", example: str = "[0]") -> Checker:
    allowed = f"a non-empty list of unique {what}, e.g. {example}"

    def check(v: object) -> tuple[int, ...]:
        if not isinstance(v, list):
            raise Bad(f"wrong type ({type_name(v)})", allowed)
        if not v:
            raise Bad("empty list", allowed)
        for x in v:
            if isinstance(x, bool) or not isinstance(x, int):
                raise Bad(f"element {x!r} is {type_name(x)}", allowed)
            if x < lo or (hi is not None and x > hi):
                raise Bad(f"element {x} is out of range", allowed)
        if len(set(v)) != len(v):
            raise Bad("repeated elements", allowed)
        return tuple(v)

    return check


def operations() -> Checker:
    inner = int_list(0, NUM_OPS - 1, what=f"operation indices 0..{NUM_OPS - 1}")
    allowed = f'"all" or a non-empty list of unique operation indices 0..{NUM_OPS - 1}'

    def check(v: object) -> tuple[int, ...]:
        if isinstance(v, str):
            if v == "all":
                return tuple(range(NUM_OPS))
            raise Bad("unknown string", allowed)
        try:
            ops: tuple[int, ...] = inner(v)
        except Bad as bad:
            raise Bad(bad.problem, allowed) from None
        return ops

    return check


def one_of_ints(values: Sequence[int], what: str) -> Checker:
    """An integer from ``values`` (e.g. the MedMNIST sizes 28 and 64)."""
    as_int = integer(what=what)

    def check(v: object) -> int:
        n: int = as_int(v)
        if n not in values:
            raise Bad("not allowed", what)
        return n

    return check
