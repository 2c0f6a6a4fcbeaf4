"""The registry of dataset formats: ``loader`` name in a manifest → the function that lists its records.

A format is a function ``(ctx, root, split, manifest, **options) -> list[Record]`` registered with
:func:`register_format`; the built-in ones are registered by importing their modules in
:mod:`ferlib.data.formats` (this module never imports a format).
"""

from __future__ import annotations

from collections.abc import Callable

from ferlib.data.records import Record

FormatFn = Callable[..., list[Record]]

_FORMATS: dict[str, FormatFn] = {}


def register_format(name: str) -> Callable[[FormatFn], FormatFn]:
    """Decorator: make a record-listing function the loader of manifests whose ``loader`` is ``name``."""

    def deco(fn: FormatFn) -> FormatFn:
        if name in _FORMATS and _FORMATS[name] is not fn:
            raise ValueError(f"dataset format {name!r} is already registered by {_FORMATS[name]!r}")
        _FORMATS[name] = fn
        return fn

    return deco


def get_format(name: str) -> FormatFn:
    """The function registered as ``name``; a clear error naming the registered ones otherwise."""
    if name not in _FORMATS:
        raise ValueError(f"no dataset format {name!r} is registered; registered: {sorted(_FORMATS)}")
    return _FORMATS[name]


def list_formats() -> list[str]:
    """Names of the registered formats (the manifests' ``loader`` values)."""
    return sorted(_FORMATS)
