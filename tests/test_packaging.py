"""The built wheel works without the source tree: manifests ship as package data.

The wheel is built offline from a copy of the sources (``pip wheel --no-deps --no-build-isolation``),
installed with ``pip install --no-deps --target`` into a throwaway folder and run from a working
directory outside the repository with ``PYTHONPATH`` pointing at that folder. ``PYTHONPATH`` entries
are searched before the editable install's finder (setuptools appends it to ``sys.meta_path``), and
the test checks that the ``ferlib`` it ran is the installed copy, not the repository's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import fakes

REPO = Path(__file__).resolve().parents[1]


def test_top_level_data_manifests_is_the_package_folder():
    top = REPO / "data_manifests"
    assert top.is_symlink(), "data_manifests must be a committed symlink to ferlib/data_manifests"
    assert top.resolve() == (REPO / "ferlib" / "data_manifests").resolve()
    assert (top / "rafdb.yaml").is_file()


def test_manifests_are_found_through_importlib_resources(monkeypatch):
    from importlib import resources

    from ferlib.data.manifests import list_manifests, manifests_dir

    monkeypatch.delenv("FERLIB_MANIFESTS", raising=False)
    assert manifests_dir() == resources.files("ferlib") / "data_manifests"
    assert {"rafdb", "synthfer"} <= set(list_manifests())


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """Build the wheel from a copy of the sources and install it into a folder; return that folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "ferlib", src / "ferlib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "FERLIB_MANIFESTS"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    pip = [sys.executable, "-m", "pip"]
    built = _run(
        pip + ["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(tmp / "dist"), str(src)],
        tmp,
        env,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp / "dist").glob("ferlib-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "ferlib/data_manifests/rafdb.yaml" in names and "ferlib/recipes/profiles.yaml" in names
    assert not any(n.startswith("data_manifests/") for n in names)
    site = tmp / "site"
    done = _run(pip + ["install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)], tmp, env)
    assert done.returncode == 0, done.stdout + done.stderr
    return site


def test_wheel_runs_data_list_and_verify_outside_the_source_tree(installed_wheel, tmp_path):
    site = installed_wheel
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "FERLIB_MANIFESTS"}
    env["PYTHONPATH"] = str(site)
    python = [sys.executable]

    probe = _run(
        python
        + [
            "-c",
            "import json, ferlib; from ferlib.data.manifests import manifests_dir; "
            "print(json.dumps([ferlib.__file__, str(manifests_dir())]))",
        ],
        work,
        env,
    )
    assert probe.returncode == 0, probe.stderr
    package_file, folder = map(Path, json.loads(probe.stdout))
    assert package_file.is_relative_to(site), f"imported {package_file}, not the wheel installed in {site}"
    assert folder == site / "ferlib" / "data_manifests"

    listed = _run(python + ["-m", "ferlib", "data", "list", "--json"], work, env)
    assert listed.returncode == 0, listed.stderr
    names = {m["name"] for m in json.loads(listed.stdout)}
    assert {"rafdb", "affectnet7", "synthfer", "ran_rafdb"} <= names

    fakes.make_rafdb(tmp_path / "rafdb")
    ok = _run(python + ["-m", "ferlib", "data", "verify", "rafdb", "--root", str(tmp_path / "rafdb")], work, env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "result: OK" in ok.stdout

    # An empty folder fails on layout, and the fix names the manifest file the installed package read.
    (tmp_path / "empty").mkdir()
    bad = _run(
        python + ["-m", "ferlib", "data", "verify", "rafdb", "--root", str(tmp_path / "empty"), "--json"], work, env
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    report = json.loads(bad.stdout)
    assert report["ok"] is False
    assert any(str(site / "ferlib" / "data_manifests" / "rafdb.yaml") in p["fix"] for p in report["problems"])
