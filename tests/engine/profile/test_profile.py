"""Tests of engine/profile.py: shipped profiles, validation messages, overrides, round trip."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.profile import (
    DATASETS,
    Profile,
    ProfileError,
    list_profiles,
    load_profile,
    parse_override,
)

FIXTURES = Path(__file__).parent / "fixtures" / "profiles"
SHIPPED = Path(__file__).resolve().parents[3] / "profiles"


def error_of(*args, **kwargs) -> str:
    with pytest.raises(ProfileError) as info:
        load_profile(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, "a profile error must be one line"
    assert isinstance(info.value, ValueError)
    return message


# ---------------------------------------------------------------- shipped profiles


def test_default_is_quick():
    p = load_profile()
    assert p == load_profile("quick")
    assert p.run.name == "quick"
    assert p.search.fitness == "val_auc"
    assert p.data.dataset == "adrenalmnist3d" and p.data.size == 28


def test_list_profiles_has_quick_paper_and_every_dataset():
    listed = dict(list_profiles())
    assert {"quick", "paper", *DATASETS} <= set(listed)
    assert all(desc for desc in listed.values()), "every shipped profile has a [run] description"


@pytest.mark.parametrize("name", sorted(p.stem for p in SHIPPED.glob("*.toml")))
def test_every_shipped_profile_loads_and_documents_its_keys(name):
    p = load_profile(name)
    assert p.run.name == name
    text = (SHIPPED / f"{name}.toml").read_text(encoding="utf-8")
    for section, values in p.to_dict().items():
        assert f"[{section}]" in text
        for key in values:
            line = next((ln for ln in text.splitlines() if ln.startswith(f"{key} ")), None)
            assert line is not None, f"{name}: {section}.{key} not written out"
            if key != "description":
                assert "#" in line, f"{name}: {section}.{key} has no comment"
    assert text.startswith("#")


def test_paper_profile_is_the_published_protocol():
    p = load_profile("paper")
    defaults = Profile()
    assert p.search == defaults.search
    assert p.training == defaults.training
    assert p.space == defaults.space
    assert p.final == defaults.final
    assert (p.search.population, p.search.budget, p.search.jumping_rate) == (20, 200, 0.3)
    assert p.space.ops == tuple(range(15))


@pytest.mark.parametrize("flag", DATASETS)
def test_dataset_profiles_follow_the_paper(flag):
    p = load_profile(flag)
    assert p.data.dataset == flag
    paper = load_profile("paper")
    assert (p.search, p.training, p.space, p.final) == (paper.search, paper.training, paper.space, paper.final)


def test_unknown_shipped_name():
    msg = error_of("quik")
    assert "quik" in msg and "quick" in msg


def test_missing_file():
    msg = error_of(FIXTURES / "does_not_exist.toml")
    assert "not found" in msg and "does_not_exist.toml" in msg


def test_run_name_defaults_to_file_stem():
    assert load_profile(FIXTURES / "valid_partial.toml").run.name == "valid_partial"


def test_partial_profile_takes_defaults():
    p = load_profile(str(FIXTURES / "valid_partial.toml"))
    assert p.search.population == 8 and p.search.budget == 12
    assert p.space.filters == (16,)
    assert p.training == Profile().training


# ---------------------------------------------------------------- one fixture per failure mode


@pytest.mark.parametrize(
    "fixture, must_contain",
    [
        ("unknown_key.toml", ["data.datset", "data.dataset"]),
        ("typo_section.toml", ["[serach]", "search"]),
        ("wrong_type.toml", ["search.population", '"twenty"', "integer"]),
        ("out_of_range.toml", ["search.population", "= 2", ">= 4"]),
        ("bad_op.toml", ["space.ops", "15", "0..14"]),
        ("unknown_dataset.toml", ["data.dataset", "brainmnist3d", "vesselmnist3d"]),
        ("malformed.toml", ["malformed TOML", "line 3", "epochs"]),
        ("bool_as_int.toml", ["training.epochs", "true", "boolean", "integer"]),
        ("float_as_int.toml", ["final.top_k", "2.5", "integer"]),
        ("bce_multiclass.toml", ["training.loss", "bce", "organmnist3d"]),
        ("top_level_key.toml", ["population", "search.population"]),
    ],
)
def test_failure_modes_give_one_line_naming_the_key(fixture, must_contain):
    msg = error_of(FIXTURES / fixture)
    assert fixture in msg, "the message names the file"
    for part in must_contain:
        assert part in msg, f"{part!r} missing from: {msg}"


@pytest.mark.parametrize(
    "override, key",
    [
        ("search.mutation_factor=0", "search.mutation_factor"),
        ("search.mutation_factor=2.5", "search.mutation_factor"),
        ("search.crossover_rate=1.5", "search.crossover_rate"),
        ("search.jumping_rate=-0.1", "search.jumping_rate"),
        ("search.budget=0", "search.budget"),
        ("search.fitness=loss", "search.fitness"),
        ("search.time_budget_minutes=-1", "search.time_budget_minutes"),
        ("data.search_fraction=0", "data.search_fraction"),
        ("data.search_fraction=1.5", "data.search_fraction"),
        ("data.size=32", "data.size"),
        ("data.download=1", "data.download"),
        ("run.device=gpu", "run.device"),
        ("run.device=cuda:x", "run.device"),
        ("run.seed=-1", "run.seed"),
        ('run.name="a b"', "run.name"),
        ("space.ops=[]", "space.ops"),
        ("space.ops=[1, 1]", "space.ops"),
        ('space.ops="some"', "space.ops"),
        ("space.ops=[true]", "space.ops"),
        ("space.stacks=[0]", "space.stacks"),
        ("space.stacks=[1, 9]", "space.stacks"),
        ("space.modules=[1.5]", "space.modules"),
        ("space.filters=8", "space.filters"),
        ("space.filters=[-8]", "space.filters"),
        ("space.max_edges=0", "space.max_edges"),
        ("space.max_edges=22", "space.max_edges"),
        ("training.lr=0", "training.lr"),
        ("training.lr=nan", "training.lr"),
        ("training.patience=0", "training.patience"),
        ("training.amp=yes", "training.amp"),
        ("final.top_k=-1", "final.top_k"),
        ("final.seeds=[]", "final.seeds"),
        ("executor.kind=slurm", "executor.kind"),
        ("executor.workers=0", "executor.workers"),
    ],
)
def test_bad_overrides_name_key_value_and_override(override, key):
    msg = error_of(None, [override])
    assert key in msg
    assert f"override '{override}'" in msg
    assert "allowed" in msg


# ---------------------------------------------------------------- overrides


def test_overrides_parse_toml_values():
    p = load_profile(
        "quick",
        [
            "space.filters=[8, 16]",
            'data.dataset="vesselmnist3d"',
            "search.budget=8",
            "training.amp=true",
            "search.mutation_factor=1",  # an integer is fine where a float is needed
            "space.ops=[0, 3, 14]",
        ],
    )
    assert p.space.filters == (8, 16)
    assert p.data.dataset == "vesselmnist3d"
    assert p.search.budget == 8
    assert p.training.amp is True
    assert p.search.mutation_factor == 1.0 and isinstance(p.search.mutation_factor, float)
    assert p.space.ops == (0, 3, 14)


def test_bare_words_are_strings():
    p = load_profile("quick", ["data.dataset=synapsemnist3d", "data.root=/data/medmnist", "run.device=cuda:1"])
    assert p.data.dataset == "synapsemnist3d"
    assert p.data.root == "/data/medmnist"
    assert p.run.device == "cuda:1"
    assert parse_override("data.root=") == ("data", "root", "")


def test_later_override_wins_and_override_beats_file():
    p = load_profile(FIXTURES / "valid_partial.toml", ["search.budget=3", "search.budget=5"])
    assert p.search.budget == 5


def test_malformed_override_keys():
    assert "section.key" in error_of(None, ["budget=3"])
    assert "section.key=VALUE" in error_of(None, ["search.budget"])
    msg = error_of(None, ["serach.budget=3"])
    assert "override 'serach.budget=3'" in msg and "search" in msg
    msg = error_of(None, ["search.budgte=3"])
    assert "search.budgte" in msg and "search.budget" in msg


def test_override_can_fix_a_cross_field_error():
    p = load_profile(FIXTURES / "bce_multiclass.toml", ['data.dataset="nodulemnist3d"'])
    assert p.training.loss == "bce"


# ---------------------------------------------------------------- round trip


@pytest.mark.parametrize("name", sorted(p.stem for p in SHIPPED.glob("*.toml")))
def test_to_toml_round_trip(name, tmp_path):
    p = load_profile(name)
    path = p.save(tmp_path / "profile.toml")
    assert load_profile(path) == p
    assert Profile.from_dict(json.loads(json.dumps(p.to_dict()))) == p


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=40, deadline=None)
@given(
    description=_text,
    root=_text,
    address=_text,
    lr=st.floats(1e-8, 10.0),
    f=st.floats(0.01, 2.0),
    filters=st.lists(st.integers(1, 512), min_size=1, max_size=4, unique=True),
    ops=st.lists(st.integers(0, 14), min_size=1, max_size=15, unique=True),
)
def test_round_trip_any_values(description, root, address, lr, f, filters, ops):
    d = Profile().to_dict()
    d["run"]["description"] = description
    d["data"]["root"] = root
    d["executor"]["address"] = address
    d["training"]["lr"] = lr
    d["search"]["mutation_factor"] = f
    d["space"]["filters"] = filters
    d["space"]["ops"] = ops
    p = Profile.from_dict(d)
    import tomllib

    assert Profile.from_dict(tomllib.loads(p.to_toml())) == p


def test_from_dict_validates():
    with pytest.raises(ProfileError, match="search.population"):
        Profile.from_dict({"search": {"population": 1}})
    assert Profile.from_dict({}) == Profile()


def test_profile_is_frozen_and_json_safe():
    p = load_profile()
    with pytest.raises(AttributeError):
        p.search.budget = 3  # type: ignore[misc]
    json.dumps(p.to_dict())
    assert p.num_classes == 2
