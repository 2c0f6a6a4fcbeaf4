"""Project-level checks: packaging, environment file, run folders, configs and atomic writes."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import tomllib
import yaml

from ferlib.config import from_dict, load_config, save_config
from ferlib.fileio import atomic_path, atomic_write_json
from ferlib.runs import RunFolder, new_run_dir, resolve_device, seed_everything

REPO = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_environment_yml_extras_exist_in_pyproject():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    assert any(str(d).startswith("python=3.11") for d in deps)
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert pip_sections, "environment.yml needs a pip section that installs ferlib"
    extras_named = set()
    for line in pip_sections[0]:
        m = re.fullmatch(r"-e \.\[([a-z_,\s-]+)\]", line.strip())
        if m:
            extras_named |= {e.strip() for e in m.group(1).split(",")}
    assert extras_named, "environment.yml must install '-e .[extras]'"
    extras = set(_pyproject()["project"]["optional-dependencies"])
    assert extras_named <= extras, f"extras {extras_named - extras} not defined in pyproject.toml"


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt line {line!r} is not an exact pin NAME==VERSION"
            pins[name.lower()] = version
    return pins


def _requirement_name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].lower()


def test_torch_is_a_range_in_pyproject_and_exact_in_constraints():
    deps = _pyproject()["project"]["dependencies"]
    assert "torch>=2.3" in deps and "torchvision>=0.18" in deps, "keep ranges: a GPU machine may carry torch 2.11"
    assert not any(d.startswith(("torch==", "torchvision==")) for d in deps)
    pins = _constraints()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_every_extra_is_pinned_in_constraints_and_used_by_the_makefile():
    pins = _constraints()
    extras = _pyproject()["project"]["optional-dependencies"]
    unpinned = [r for reqs in extras.values() for r in reqs if _requirement_name(r) not in pins]
    assert not unpinned, f"add exact pins for {unpinned} to constraints.txt"
    assert "ruff==0.17.6" in extras["test"] and pins["ruff"] == "0.17.6"
    makefile = (REPO / "Makefile").read_text()
    assert "-c constraints.txt" in makefile
    assert re.search(r"^test:.*\blint\b", makefile, re.M), "make test must run the lint target"
    assert "ruff check" in makefile and "ruff format --check" in makefile


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci
    head = "\n".join((REPO / "README.md").read_text().splitlines()[:40])
    assert "make study" in head and "make test" in head


def test_gitignore_keeps_data_and_runs_out():
    ignored = (REPO / ".gitignore").read_text().split()
    for entry in (".venv/", "runs/", "*.pt", "*.pth"):
        assert entry in ignored


@dataclasses.dataclass(frozen=True)
class _Inner:
    lr: float = 0.1
    milestones: tuple[int, ...] = (20, 40)


@dataclasses.dataclass(frozen=True)
class _Outer:
    name: str = "x"
    inner: _Inner = _Inner()


def test_config_round_trip(tmp_path):
    cfg = _Outer(name="amp", inner=_Inner(lr=0.01, milestones=(15,)))
    path = save_config(cfg, tmp_path / "config.json")
    assert json.loads(path.read_text())["inner"]["milestones"] == [15]
    assert load_config(_Outer, path) == cfg


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown field.*'lrr'"):
        from_dict(_Inner, {"lrr": 1})


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "m.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_run_folders_are_unique_and_hold_results(tmp_path):
    a = new_run_dir("study", tmp_path)
    b = new_run_dir("study", tmp_path)
    assert a != b and a.is_dir() and b.is_dir()
    assert re.fullmatch(r"\d{8}-\d{6}-study(-\d+)?", a.name)
    run = RunFolder.create("x y/z", tmp_path)
    run.write_config(_Outer())
    run.write_versions()
    run.write_metrics({"accuracy": 0.5})
    assert {p.name for p in run.path.iterdir()} == {"config.json", "versions.json", "metrics.json"}
    assert json.loads((run.path / "versions.json").read_text())["torch"].startswith("2.14.1")


def test_seed_everything_repeats_random_streams():
    import numpy as np
    import torch

    seed_everything(3)
    a = (torch.rand(3), np.random.rand(3))
    seed_everything(3)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_resolve_device():
    import torch

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="--device cpu"):
            resolve_device("cuda")
