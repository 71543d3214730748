"""The one config loader: plain data (a dict from JSON or YAML) → a self-validating dataclass.

Bundles (bundle.json), training recipes (YAML) and server settings (ICOT_ variables and flags) all
load through here. A config is a dataclass whose field annotations say what each value may be
(nested dataclasses, Optional, Literal, enums, tuples, bool/int/float/str/Path) and whose
`__post_init__` checks the rest, raising `FieldError(field, message)`. `from_data` checks keys and
types, builds the dataclasses inside out and reports the first problem as one `ConfigError` that
names the source (a file) and the dotted field: `bundle.json: generation.max_new_tokens: must be
≥ 1`. `parse_text` reads one value of a field's type from text (an environment variable or a
flag). Pure data: no file reading, no torch, nothing of bundles, recipes or servers.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

T = TypeVar("T")

REQUIRED_IN_FILE = "config_loader.required_in_file"
"""Field metadata key: the key must be written in the data even though the dataclass has a
default (the default serves code that constructs the dataclass directly)."""

_NONE_WORDS = ("none", "null")
_TRUE_WORDS = ("true", "1", "yes", "on")
_FALSE_WORDS = ("false", "0", "no", "off")


class FieldError(ValueError):
    """A value that fails validation; `field` is its dotted key relative to the dataclass that
    raised it ("" for the whole value)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class ConfigError(ValueError):
    """A config that cannot be used, for the user: `source: field: message` (empty parts left
    out); `field` is the dotted key from the top of the source."""

    def __init__(self, source: str, field: str, message: str) -> None:
        super().__init__(": ".join(part for part in (source, field, message) if part))
        self.source = source
        self.field = field
        self.message = message


def require(condition: bool, field: str, message: str) -> None:
    """Raise `FieldError(field, message)` unless `condition` holds (for `__post_init__`)."""
    if not condition:
        raise FieldError(field, message)


def required_in_file(default: Any) -> Any:
    """A dataclass field with `default` for code, that data loaded by `from_data` must spell out."""
    return dataclasses.field(default=default, metadata={REQUIRED_IN_FILE: True})


def from_data(cls: type[T], raw: Any, *, source: str, root: str = "") -> T:
    """Build dataclass `cls` from plain data; any problem is a `ConfigError` naming `source` and
    the dotted field (`root` names the whole value, e.g. "recipe", where it is not a mapping)."""
    try:
        return _build(cls, raw, "", root)
    except FieldError as error:
        raise ConfigError(source, error.field, error.message) from None


def field_types(cls: type) -> dict[str, Any]:
    """Each field of dataclass `cls` with its resolved annotation (string annotations evaluated)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def parse_text(tp: Any, text: str, field: str = "") -> Any:
    """Read a value of annotation `tp` from `text` (an environment variable, a flag); a bad text is
    a `FieldError(field, …)`. Optional types read "" (and "none"/"null" unless the inner type is
    text) as None; tuples are comma-separated; bools read true/false, 1/0, yes/no, on/off."""
    options = _optional_inner(tp)
    if options is not None:
        words = ("",) if options in (str, Path) else ("", *_NONE_WORDS)
        return None if text.strip().lower() in words else parse_text(options, text, field)
    origin = typing.get_origin(tp)
    if origin is Literal:
        for allowed in typing.get_args(tp):
            if text == str(allowed):
                return allowed
        raise FieldError(field, f"must be one of {_choices(typing.get_args(tp))}; got {text!r}")
    if origin is tuple:
        items = [part.strip() for part in text.split(",") if part.strip()]
        return _convert(tp, [parse_text(_item_type(tp, i), item, f"{field}[{i}]")
                             for i, item in enumerate(items)], field)
    if tp is bool:
        word = text.strip().lower()
        if word in _TRUE_WORDS or word in _FALSE_WORDS:
            return word in _TRUE_WORDS
        raise FieldError(field, f"expected true or false, got {text!r}")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise FieldError(field, f"expected an integer, got {text!r}") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise FieldError(field, f"expected a number, got {text!r}") from None
    if tp in (str, Path) or _is_enum(tp):
        return _convert(tp, text, field)
    raise TypeError(f"{field}: config field type {tp!r} cannot be read from text")


def to_data(value: Any) -> Any:
    """Plain data that `from_data` reads back: dataclasses → dicts, tuples → lists, paths → str,
    enums → their values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {key: to_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_data(item) for item in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value


# ---- building ----------------------------------------------------------------------------------


def _key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _build(cls: type, raw: Any, key: str, root: str = "") -> Any:
    """Dataclass `cls` from mapping `raw` found at dotted `key`; problems are FieldErrors with the
    dotted key from the top."""
    if not isinstance(raw, dict):
        raise FieldError(key or root, f"expected a mapping, got {type(raw).__name__}")
    fields = dataclasses.fields(cls)
    known = [f.name for f in fields]
    for name in raw:
        if name not in known:
            raise FieldError(_key(key, str(name)), f"unknown key; known: {', '.join(known)}")
    hints = field_types(cls)
    kwargs = {}
    for f in fields:
        if f.name in raw:
            kwargs[f.name] = _convert(hints[f.name], raw[f.name], _key(key, f.name))
        elif f.metadata.get(REQUIRED_IN_FILE) or (
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ):
            raise FieldError(_key(key, f.name), "missing (required)")
    try:
        return cls(**kwargs)
    except FieldError as error:
        raise FieldError(_key(key, error.field), error.message) from None
    except ValueError as error:  # a validator that names no field: the problem is the section's
        raise FieldError(key or root, str(error)) from None


def _convert(tp: Any, value: Any, key: str) -> Any:
    """Check `value` against annotation `tp`, converting only where the data format is ambiguous
    (a list for a tuple, an int or a YAML 1.1 `4e-5` string for a float, a str for a Path)."""
    inner = _optional_inner(tp)
    if inner is not None:
        return None if value is None else _convert(inner, value, key)
    origin = typing.get_origin(tp)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed or (
            isinstance(value, bool) and not any(a is value for a in allowed)
        ):
            raise FieldError(key, f"must be one of {_choices(allowed)}; got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise FieldError(key, f"expected a list, got {type(value).__name__}")
        args = typing.get_args(tp)
        if not (len(args) == 2 and args[1] is Ellipsis) and len(value) != len(args):
            raise FieldError(key, f"expected a list of {len(args)} items, got {len(value)}")
        return tuple(_convert(_item_type(tp, i), item, f"{key}[{i}]")
                     for i, item in enumerate(value))
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if _is_enum(tp):
        members = [member.value for member in tp]
        if isinstance(value, bool) or value not in members:
            raise FieldError(key, f"must be one of {_choices(members)}; got {value!r}")
        return tp(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise FieldError(key, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(key, f"expected an integer, got {value!r}")
        return value
    if tp is float:
        # PyYAML (YAML 1.1) reads `4e-5` as a string: it wants `4.0e-5`. Accept both spellings.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldError(key, f"expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise FieldError(key, f"expected a string, got {value!r}")
        return value
    if tp is Path:
        if isinstance(value, Path):
            return value
        if not isinstance(value, str) or not value:
            raise FieldError(key, f"expected a path, got {value!r}")
        return Path(value)
    raise TypeError(f"{key}: config field type {tp!r} is not supported by the loader")


def _optional_inner(tp: Any) -> Any:
    """`X` for `X | None`, else None (a union of two real types is not supported)."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    options = [option for option in typing.get_args(tp) if option is not type(None)]
    if len(options) != 1 or len(options) == len(typing.get_args(tp)):
        raise TypeError(f"config field type {tp!r}: only `X | None` unions are supported")
    return options[0]


def _item_type(tp: Any, index: int) -> Any:
    args = typing.get_args(tp)
    return args[0] if len(args) == 2 and args[1] is Ellipsis else args[index]


def _is_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, enum.Enum)


def _choices(values: Any) -> str:
    return ", ".join(map(repr, values))
