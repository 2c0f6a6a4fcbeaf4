"""Typed, frozen dataclass configs that round-trip through JSON/YAML.

Every run saves its full config next to its results (``config.json``), and
``from_dict`` rebuilds the dataclass, refusing unknown keys with a clear message.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(cfg: Any) -> dict:
    """Dataclass (possibly nested) → plain dict of JSON-able values."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def from_dict(cls: type[T], data: dict) -> T:
    """Build dataclass ``cls`` from ``data``; nested dataclasses are rebuilt too.

    Unknown keys raise ``ValueError`` naming the key and the accepted fields.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown field(s) {unknown} for {cls.__name__}; accepted: {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        hint = hints.get(key)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value)
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def save_config(cfg: Any, path: str | Path) -> Path:
    from ferlib.fileio import atomic_write_json

    return atomic_write_json(path, to_dict(cfg))


def load_config(cls: type[T], path: str | Path) -> T:
    return from_dict(cls, json.loads(Path(path).read_text()))
