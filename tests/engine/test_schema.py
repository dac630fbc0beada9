"""engine.schema: the one check of what a run reads back, driven by a dataclass's annotations alone.

A small dataclass with a ``Literal`` field, a nested dataclass and a list of
them stands for the vocabulary's ``Literal`` types and the epoch history's
``Epoch``: whatever is annotated is checked, in one line naming the field.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from engine.schema import SchemaError, load


@dataclass(frozen=True)
class Point:
    epoch: int
    val_auc: float
    note: str = ""


@dataclass(frozen=True)
class Thing:
    id: int
    status: Literal["ok", "failed"]
    best: Point | None = None
    history: list[Point] = field(default_factory=list)
    vector: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    fitness: float | None = None
    flag: bool = False


def rule(name: str, value: float) -> str:
    if name == "val_auc":
        return "" if math.isnan(value) or 0 <= value <= 1 else "expected a number in [0, 1] or NaN"
    return "" if math.isfinite(value) else "expected a finite number"


GOOD = {"id": 3, "status": "ok", "best": {"epoch": 2, "val_auc": 0.75}, "history": [{"epoch": 1, "val_auc": 0.5},
        {"epoch": 2, "val_auc": 0.75, "note": "best"}], "vector": [0, 0.5, 1], "extra": {"a": [1, 2]}, "fitness": 1}


def error(data: object) -> str:
    with pytest.raises(SchemaError) as info:
        load(Thing, data, rule)
    message = str(info.value)
    assert "\n" not in message and "$" not in message and "`" not in message, message  # our words, not msgspec's
    return message


def test_a_valid_object_builds_the_dataclass_with_its_nested_ones():
    thing = load(Thing, json.loads(json.dumps(GOOD)), rule)
    assert thing == Thing(3, "ok", Point(2, 0.75), [Point(1, 0.5), Point(2, 0.75, "best")], [0.0, 0.5, 1.0],
                          {"a": [1, 2]}, 1.0)
    assert type(thing.fitness) is float and all(type(x) is float for x in thing.vector)  # an integer is a number


def test_defaults_fill_missing_fields_and_unknown_keys_are_ignored():
    thing = load(Thing, {"id": 0, "status": "failed", "from_a_newer_version": {"x": 1}})
    assert thing == Thing(0, "failed")
    assert vars(thing) == vars(Thing(0, "failed")), "every field is the instance's own, as the constructor makes it"


@pytest.mark.parametrize("change, expected", [
    ({"status": "weird"}, "status = 'weird'; expected one of 'ok', 'failed'"),
    ({"status": 3}, "status = 3 is int; expected one of 'ok', 'failed'"),
    ({"id": "3"}, "id = '3' is str; expected an integer"),
    ({"id": True}, "id = True is bool; expected an integer"),
    ({"id": 1.5}, "id = 1.5 is float; expected an integer"),
    ({"fitness": "high"}, "fitness = 'high' is str; expected a number or null"),
    ({"fitness": False}, "fitness = False is bool; expected a number or null"),
    ({"flag": 1}, "flag = 1 is int; expected true or false"),
    ({"vector": [0.5, "a"]}, "vector[1] = 'a' is str; expected a number"),
    ({"vector": {}}, "vector = {} is dict; expected a list of numbers"),
    ({"extra": []}, "extra = [] is list; expected an object"),
    ({"best": {"epoch": 1}}, "field 'best.val_auc' is missing"),
    ({"best": {"epoch": 1, "val_auc": "x"}}, "best.val_auc = 'x' is str; expected a number"),
    ({"history": [{"epoch": 1, "val_auc": 0.5}, {"epoch": "2", "val_auc": 0.5}]},
     "history[1].epoch = '2' is str; expected an integer"),
    ({"history": [{"epoch": 1, "val_auc": 0.5}, 7]}, "history[1] = 7 is int; expected an object"),
    ({"history": [{"val_auc": 0.5}]}, "field 'history[0].epoch' is missing"),
    ({"fitness": 10**400}, "is out of range; expected a number or null"),
    # the rule, at any depth
    ({"id": -1}, "id = -1; expected an integer >= 0"),
    ({"id": 2**64}, "id = 18446744073709551616; expected an integer >= 0"),
    ({"fitness": float("inf")}, "fitness = inf; expected a finite number"),
    ({"best": {"epoch": 1, "val_auc": 7}}, "best.val_auc = 7.0; expected a number in [0, 1] or NaN"),
    ({"history": [{"epoch": 1, "val_auc": 0.5}, {"epoch": -2, "val_auc": 0.5}]},
     "history[1].epoch = -2; expected an integer >= 0"),
])
def test_every_wrong_field_is_one_line_naming_it(change, expected):
    assert expected in error({**GOOD, **change})


def test_a_required_field_missing_and_a_value_that_is_no_object():
    assert error({"status": "ok"}) == "field 'id' is missing"
    assert error([GOOD]) == "expected a JSON object, got list"
    assert error(None) == "expected a JSON object, got null"


def test_nan_is_the_rules_business():
    thing = load(Thing, {**GOOD, "best": {"epoch": 1, "val_auc": float("nan")}}, rule)
    assert thing.best is not None and math.isnan(thing.best.val_auc)
    assert "fitness = nan; expected a finite number" in error({**GOOD, "fitness": float("nan")})


def test_the_field_is_kept_on_the_error():
    with pytest.raises(SchemaError) as info:
        load(Thing, {**GOOD, "history": [{"epoch": 1, "val_auc": 2.0}]}, rule)
    assert info.value.field == "history[0].val_auc" and isinstance(info.value, ValueError)
