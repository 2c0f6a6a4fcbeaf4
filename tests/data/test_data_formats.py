"""The dataset-format registry (ferlib.data.formats) and the data floor's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ferlib
from ferlib.data.formats import get_format, list_formats, register_format
from ferlib.data.manifests import LOADERS, list_manifests, load_manifest


def test_every_manifest_has_a_registered_format():
    names = list_manifests()
    assert len(names) >= 10
    for name in names:
        loader = load_manifest(name).loader
        assert loader in list_formats(), f"{name}: loader {loader!r} has no registered format"
        assert callable(get_format(loader))
    assert set(list_formats()) == set(LOADERS)


def test_the_raf_db_parser_is_found_by_its_name():
    from ferlib.data.formats import rafdb

    assert get_format("rafdb") is rafdb.rafdb
    assert get_format("ran").__module__ == "ferlib.data.formats.ran"


def test_registry_refuses_a_second_format_under_one_name_and_names_the_known_ones():
    with pytest.raises(ValueError, match="already registered"):
        register_format("rafdb")(lambda *a, **k: [])
    with pytest.raises(ValueError, match="rafdb"):
        get_format("no-such-format")


def _imported_modules(path: Path) -> set[str]:
    """Every module an import statement in ``path`` names (function bodies included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def test_data_floor_never_imports_a_floor_above():
    package = Path(ferlib.__file__).parent
    above = (
        "ferlib.landmarks",
        "ferlib.models",
        "ferlib.train",
        "ferlib.explain",
        "ferlib.study",
        "ferlib.occlusion",
        "ferlib.plots",
        "ferlib.widgets",
        "ferlib.commands",
        "ferlib.cli",
    )
    for path in sorted((package / "data").rglob("*.py")):
        bad = sorted(m for m in _imported_modules(path) if m.startswith(above))
        assert not bad, f"{path} imports {bad}"


def test_landmarks_base_never_imports_a_backend():
    base = Path(ferlib.__file__).parent / "landmarks" / "base.py"
    imported = _imported_modules(base)
    assert not {m for m in imported if m.startswith("ferlib.landmarks")}, imported
