"""Shared pytest setup: keep torch to the machine's cores and never touch the network.

``--reverse-files`` runs the test files in reverse order (tests inside a file keep their order): the
suite must pass in any file order, so no test may rely on what another file left behind.
``tiny_models`` registers the training tests' tiny models for one test file and removes them again.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

os.environ.setdefault("FERLIB_PROFILE", "smoke")
os.environ.setdefault("TQDM_DISABLE", "1")


def pytest_addoption(parser):
    parser.addoption(
        "--reverse-files",
        action="store_true",
        default=False,
        help="run the test files in reverse order (checks that no file depends on another's leftovers)",
    )


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--reverse-files"):
        return
    files: dict[str, list] = {}
    for item in items:
        files.setdefault(str(item.path), []).append(item)
    items[:] = [item for path in reversed(list(files)) for item in files[path]]


def pytest_configure(config):
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared not found beside the repository (looked in {SHARED})")
    return SHARED


@pytest.fixture(scope="module")
def tiny_models():
    """The test-only models ``test-tiny-cnn`` and ``test-tiny-cnn-bn``, registered while one test module runs.

    Module scope, so that a module-scoped fixture (a model trained once per file) can build them; a file
    asks for them with ``pytestmark = pytest.mark.usefixtures("tiny_models")``.
    """
    from test_train_helpers import registered_test_models

    with registered_test_models():
        yield
