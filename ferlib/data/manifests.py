"""Dataset manifests: what a local copy of each dataset must look like.

One YAML file per dataset in ``data_manifests/<name>.yaml`` describes the expected folder layout,
split sizes, the native-label → canonical map, the landmark annotations the dataset ships, its
citation, licence and where to request it. :func:`load_manifest` reads one into a frozen
:class:`Manifest`; the loaders (:mod:`ferlib.data.datasets`) and ``ferlib data verify`` use it.

The YAML files are package data (``ferlib/data_manifests/``, shipped inside the wheel); the
repository's top-level ``data_manifests`` is a symlink to that folder, so readers find them where
they always were. The folder is ``$FERLIB_MANIFESTS`` when set, else the package's own copy, found
through :mod:`importlib.resources` (never through the location of this file).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ferlib.data.labels import CANONICAL_CLASSES

#: Loader families :mod:`ferlib.data.datasets` implements.
LOADERS = ("rafdb", "affectnet", "fer2013", "ferplus", "folders", "kdef", "ckplus", "ran", "synthfer")


def manifests_dir() -> Path:
    """Folder holding the ``<name>.yaml`` manifests: ``$FERLIB_MANIFESTS``, else ``ferlib/data_manifests``."""
    env = os.environ.get("FERLIB_MANIFESTS")
    if env:
        return Path(env)
    folder = resources.files("ferlib") / "data_manifests"
    if not isinstance(folder, Path):
        # A zip import would hand back a zipfile.Path; pip installs wheels unpacked, so this is a broken install.
        raise FileNotFoundError(
            f"ferlib's manifests at {folder} are not on the file system; "
            "install ferlib with pip (unpacked) or set FERLIB_MANIFESTS"
        )
    return folder


@dataclass(frozen=True)
class Manifest:
    """One dataset's manifest (``data_manifests/<name>.yaml``)."""

    name: str
    title: str
    loader: str
    num_classes: int
    description: str
    layout: tuple[str, ...]
    splits: Mapping[str, int]
    label_map: Mapping[str, str]
    landmarks: str
    citation: str
    licence: str
    request: str
    path: Path
    optional_layout: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()
    split_dirs: Mapping[str, str] = field(default_factory=dict)
    list_files: Mapping[str, str] = field(default_factory=dict)
    base: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def expected_size(self, split: str) -> int | None:
        return self.splits.get(split)

    def where_to_get(self) -> str:
        return f"{self.title}: request at {self.request} (see {self.path})"


_REQUIRED = (
    "name",
    "title",
    "loader",
    "num_classes",
    "layout",
    "splits",
    "label_map",
    "citation",
    "licence",
    "request",
    "landmarks",
)
_KNOWN = set(_REQUIRED) | {"description", "optional_layout", "assumptions", "split_dirs", "list_files", "base"}


def _parse(path: Path) -> Manifest:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"manifest {path} is not valid YAML ({exc}); fix the file") from exc
    if not isinstance(data, dict):
        raise ValueError(f"manifest {path} must be a YAML mapping; fix the file")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"manifest {path} lacks required key(s) {missing}; add them")
    if data["name"] != path.stem:
        raise ValueError(f"manifest {path} has name {data['name']!r}; expected {path.stem!r} (the file name)")
    if data["loader"] not in LOADERS:
        raise ValueError(f"manifest {path}: loader {data['loader']!r} is not one of {LOADERS}")
    label_map = {str(k): str(v) for k, v in (data["label_map"] or {}).items()}
    bad = sorted(
        v
        for v in label_map.values()
        if v not in CANONICAL_CLASSES and v not in ("dropped", "none", "uncertain", "non-face")
    )
    if bad:
        raise ValueError(
            f"manifest {path}: label_map targets {bad} are not canonical classes {CANONICAL_CLASSES}; fix the map"
        )
    extra = {k: v for k, v in data.items() if k not in _KNOWN}
    return Manifest(
        name=data["name"],
        title=str(data["title"]),
        loader=data["loader"],
        num_classes=int(data["num_classes"]),
        description=str(data.get("description", "")).strip(),
        layout=tuple(str(p).split("#")[0].strip() for p in data["layout"]),
        optional_layout=tuple(str(p) for p in data.get("optional_layout") or ()),
        splits={str(k): int(v) for k, v in (data["splits"] or {}).items()},
        label_map=label_map,
        landmarks=str(data["landmarks"]).strip(),
        citation=str(data["citation"]).strip(),
        licence=str(data["licence"]).strip(),
        request=str(data["request"]).strip(),
        assumptions=tuple(str(a) for a in data.get("assumptions") or ()),
        split_dirs={str(k): str(v) for k, v in (data.get("split_dirs") or {}).items()},
        list_files={str(k): str(v) for k, v in (data.get("list_files") or {}).items()},
        base=data.get("base"),
        extra=extra,
        path=path,
    )


@cache
def _load_cached(path_str: str, mtime: float) -> Manifest:
    return _parse(Path(path_str))


def list_manifests() -> list[str]:
    """Names of every manifest, sorted."""
    folder = manifests_dir()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"manifest folder {folder} not found; expected the package data ferlib/data_manifests/ "
            "(reinstall ferlib, or set FERLIB_MANIFESTS to a folder of <name>.yaml files)"
        )
    return sorted(p.stem for p in folder.glob("*.yaml"))


class UnknownDatasetError(KeyError, ValueError):
    """No manifest of that name. A ``KeyError`` (as before) whose text prints without the quotes ``KeyError`` adds."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def load_manifest(name: str) -> Manifest:
    """The manifest ``data_manifests/<name>.yaml`` as a frozen :class:`Manifest`."""
    path = manifests_dir() / f"{name}.yaml"
    if not path.is_file():
        raise UnknownDatasetError(
            f"unknown dataset {name} (no manifest {path}); known datasets: {', '.join(list_manifests())} "
            "(`ferlib data list` describes them)"
        )
    return _load_cached(str(path), path.stat().st_mtime)


__all__ = ["Manifest", "UnknownDatasetError", "load_manifest", "list_manifests", "manifests_dir", "LOADERS"]
