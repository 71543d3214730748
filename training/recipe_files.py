"""Recipe files: a shipped recipe's name or a YAML path, `section.key=value` overrides → `Recipe`.

Reads YAML through model/config_loader.py and reports any bad key or value as
`file: section.key: what is wrong`. Knows nothing of what a recipe runs (training/pipeline.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from model.config_loader import ConfigError, from_data
from training.config import Recipe

RECIPES_DIR = Path(__file__).parent / "recipes"


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and the YAML key."""


def _apply_override(raw: dict[str, Any], override: str) -> None:
    """Set `section.key=value` (value parsed as YAML) in the raw recipe mapping."""
    dotted, sep, text = override.partition("=")
    if not sep or not dotted:
        raise RecipeError(f"override {override!r}: expected section.key=value")
    *parents, leaf = dotted.split(".")
    node = raw
    for depth, part in enumerate(parents):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            section = ".".join(parents[: depth + 1])
            raise RecipeError(f"override {override!r}: {section} is not a section")
    node[leaf] = yaml.safe_load(text)


def recipe_from_dict(raw: Any, *, source: str = "recipe") -> Recipe:
    """Build a `Recipe` from plain data; errors read `source: section.key: problem`."""
    try:
        return from_data(Recipe, raw, source=source, root="recipe")
    except ConfigError as error:
        raise RecipeError(str(error)) from None


def shipped_recipes() -> list[Path]:
    """The YAML recipes that ship in training/recipes/, sorted by name."""
    return sorted(RECIPES_DIR.glob("*.yaml"))


def resolve_recipe(name_or_path: str | Path) -> Path:
    """A recipe file: an existing path, or the name of a shipped recipe (`demo` → demo.yaml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = RECIPES_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    names = ", ".join(p.stem for p in shipped_recipes())
    raise RecipeError(f"no recipe file {str(name_or_path)!r} and no shipped recipe of that name "
                      f"(shipped: {names})")


def load_recipe(name_or_path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read a recipe file (or shipped recipe name), apply `section.key=value` overrides."""
    path = resolve_recipe(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise RecipeError(f"{path}: not valid YAML: {error}") from None
    if raw is None:
        raw = {}
    if isinstance(raw, dict):
        for override in overrides:
            _apply_override(raw, override)
    return recipe_from_dict(raw, source=str(path))
