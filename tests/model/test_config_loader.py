"""The config loader: plain data becomes nested frozen dataclasses; every wrong key, type or value
is one ConfigError naming the source and the dotted field; text values (variables, flags) parse
into a field's type; `to_data` round-trips."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

import pytest

from model.config_loader import (
    ConfigError,
    FieldError,
    field_types,
    from_data,
    parse_text,
    require,
    required_in_file,
    to_data,
)


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Inner:
    rate: float = 1.0
    names: tuple[str, ...] = ("a",)

    def __post_init__(self) -> None:
        require(self.rate > 0, "rate", f"must be > 0, got {self.rate}")


@dataclass(frozen=True)
class Foreign:
    """A dataclass whose validator names no field (like model.sampling.SamplingParams)."""

    top_p: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p}")


@dataclass(frozen=True)
class Outer:
    steps: int
    inner: Inner = field(default_factory=Inner)
    foreign: Foreign = field(default_factory=Foreign)
    mode: Literal["fast", "slow"] = "fast"
    colour: Colour = Colour.RED
    seed: int | None = None
    enabled: bool = True
    where: Path = Path("out")
    pair: tuple[float, float] = (0.0, 1.0)
    version: str = required_in_file("v1")

    def __post_init__(self) -> None:
        require(self.steps >= 1, "steps", "must be ≥ 1")
        require(self.mode == "fast" or self.seed is not None, "seed", "required when slow")


GOOD = {"steps": 3, "version": "v1"}


def load(**changes) -> Outer:
    return from_data(Outer, {**GOOD, **changes}, source="run.yaml")


def error_of(raw, root: str = "") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        from_data(Outer, raw, source="run.yaml", root=root)
    return info.value


def test_nested_data_becomes_typed_frozen_dataclasses():
    config = load(inner={"rate": 2, "names": ["x", "y"]}, mode="slow", seed=7, colour="blue",
                  where="a/b", pair=[-1, 2], foreign={"top_p": 0.5})
    assert config.inner == Inner(rate=2.0, names=("x", "y"))
    assert isinstance(config.inner.rate, float)
    assert (config.mode, config.seed, config.colour) == ("slow", 7, Colour.BLUE)
    assert config.where == Path("a/b") and config.pair == (-1.0, 2.0)
    assert config.foreign.top_p == 0.5
    with pytest.raises(AttributeError):
        config.steps = 4  # type: ignore[misc]
    assert load() == Outer(steps=3)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({**GOOD, "stepz": 1}, "run.yaml: stepz: unknown key; known: steps, inner"),
        ({**GOOD, "inner": {"rat": 1}}, "run.yaml: inner.rat: unknown key; known: rate, names"),
        ({"version": "v1"}, "run.yaml: steps: missing (required)"),
        ({"steps": 1}, "run.yaml: version: missing (required)"),
        ({**GOOD, "steps": 0}, "run.yaml: steps: must be ≥ 1"),
        ({**GOOD, "steps": "3"}, "run.yaml: steps: expected an integer, got '3'"),
        ({**GOOD, "steps": True}, "run.yaml: steps: expected an integer, got True"),
        ({**GOOD, "enabled": "yes"}, "run.yaml: enabled: expected true or false, got 'yes'"),
        ({**GOOD, "inner": {"rate": -1}}, "run.yaml: inner.rate: must be > 0, got -1.0"),
        ({**GOOD, "inner": {"rate": "fast"}}, "run.yaml: inner.rate: expected a number"),
        ({**GOOD, "inner": 3}, "run.yaml: inner: expected a mapping, got int"),
        ({**GOOD, "inner": {"names": "x"}}, "run.yaml: inner.names: expected a list, got str"),
        ({**GOOD, "inner": {"names": ["x", 2]}}, "run.yaml: inner.names[1]: expected a string"),
        ({**GOOD, "mode": "medium"}, "run.yaml: mode: must be one of 'fast', 'slow'; got 'medium'"),
        ({**GOOD, "colour": "green"}, "run.yaml: colour: must be one of 'red', 'blue'"),
        ({**GOOD, "mode": "slow"}, "run.yaml: seed: required when slow"),
        ({**GOOD, "pair": [1.0]}, "run.yaml: pair: expected a list of 2 items, got 1"),
        ({**GOOD, "where": 5}, "run.yaml: where: expected a path, got 5"),
        ({**GOOD, "foreign": {"top_p": 2.0}}, "run.yaml: foreign: top_p must lie in (0, 1]"),
    ],
)
def test_each_problem_names_the_source_and_the_dotted_field(raw, expected):
    assert str(error_of(raw)).startswith(expected)


def test_the_error_carries_its_parts_and_a_root_name():
    error = error_of({**GOOD, "inner": {"rate": 0}})
    assert (error.source, error.field, error.message) == ("run.yaml", "inner.rate",
                                                          "must be > 0, got 0.0")
    assert str(error_of([1, 2], root="recipe")) == "run.yaml: recipe: expected a mapping, got list"
    assert str(error_of([1, 2])) == "run.yaml: expected a mapping, got list"


def test_validators_raise_field_errors_for_direct_construction():
    with pytest.raises(FieldError) as info:
        Outer(steps=0)
    assert (info.value.field, info.value.message, str(info.value)) == (
        "steps", "must be ≥ 1", "steps: must be ≥ 1")


def test_yaml_1_1_exponent_strings_are_floats():
    assert load(inner={"rate": "4e-5"}).inner.rate == 4e-5


def test_to_data_round_trips():
    config = load(inner={"rate": 2.5, "names": ["x"]}, colour="blue", where="a", mode="slow",
                  seed=1)
    data = to_data(config)
    assert data["colour"] == "blue" and data["where"] == "a" and data["pair"] == [0.0, 1.0]
    assert data["inner"] == {"rate": 2.5, "names": ["x"]}
    assert from_data(Outer, data, source="again") == config


def test_field_types_resolve_string_annotations():
    types = field_types(Outer)
    assert types["seed"] == int | None and types["inner"] is Inner and types["where"] is Path


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("steps", "12", 12), ("seed", "", None), ("seed", "None", None), ("seed", "5", 5),
        ("enabled", "off", False), ("enabled", "YES", True), ("where", "/x", Path("/x")),
        ("mode", "slow", "slow"), ("colour", "blue", Colour.BLUE), ("version", "", ""),
        ("pair", "1, 2.5", (1.0, 2.5)),
    ],
)
def test_text_parses_into_the_fields_type(name, text, value):
    parsed = parse_text(field_types(Outer)[name], text, name)
    assert parsed == value and type(parsed) is type(value)


def test_optional_text_keeps_the_word_none():
    assert parse_text(str | None, "none") == "none"
    assert parse_text(str | None, "") is None


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("steps", "eighty", "steps: expected an integer, got 'eighty'"),
        ("enabled", "maybe", "enabled: expected true or false, got 'maybe'"),
        ("mode", "medium", "mode: must be one of 'fast', 'slow'; got 'medium'"),
        ("inner", "x", None),
        ("pair", "1", "pair: expected a list of 2 items, got 1"),
    ],
)
def test_bad_text_names_the_field(name, text, message):
    if message is None:  # a nested section has no text form
        with pytest.raises(TypeError, match="inner"):
            parse_text(field_types(Outer)[name], text, name)
        return
    with pytest.raises(FieldError) as info:
        parse_text(field_types(Outer)[name], text, name)
    assert str(info.value) == message
