"""Tiny model and in-memory dataset for the training-engine tests (not a test module itself).

The engine's behaviour (resume, splits, DDP, metrics) does not depend on which network it trains,
so these tests use a 2-layer CNN on 32-px images: seconds instead of minutes on 2 CPU cores.

The two test models (:data:`TINY`, :data:`TINY_BN`) are never registered at import: a test that builds
them by name asks for the ``tiny_models`` fixture (``tests/conftest.py``), which registers them for that
test and removes them again, so the registry-wide tests never see them, whatever the file order. A
script run in a subprocess (DDP, resume) calls :func:`register_test_models` once at its top.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ferlib.models import FERModel
from ferlib.models.output import ModelOutput
from ferlib.models.registry import _REGISTRY, register_model
from ferlib.train import TrainConfig

TINY = "test-tiny-cnn"
TINY_BN = "test-tiny-cnn-bn"


class TinyCNN(FERModel):
    """conv → ReLU → conv → ReLU → GAP → dropout → FC. Optional BatchNorm (left out for the DDP test)."""

    def __init__(self, num_classes: int = 7, width: int = 8, batchnorm: bool = False, dropout: float = 0.2):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(width) if batchnorm else nn.Identity()
        self.conv2 = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, images, landmarks5=None, landmarks8=None):
        x = F.relu(self.bn(self.conv1(images)))
        x = F.relu(self.conv2(x)).mean(dim=(2, 3))
        return ModelOutput(logits=self.fc(self.drop(x)))

    def cam_targets(self):
        return {"conv2": self.conv2}


def _tiny(num_classes: int = 7, **kw) -> TinyCNN:
    """Test helper: conv-conv-GAP-FC network without BatchNorm."""
    return TinyCNN(num_classes, **kw)


def _tiny_bn(num_classes: int = 7, **kw) -> TinyCNN:
    """Test helper: conv-BN-conv-GAP-FC network."""
    return TinyCNN(num_classes, batchnorm=True, **kw)


#: Test-only model names and their factories.
TEST_MODELS = {TINY: _tiny, TINY_BN: _tiny_bn}


def register_test_models() -> None:
    """Register the test models for the rest of this process (scripts run in a subprocess)."""
    import ferlib.models  # noqa: F401  (the real families register first, as in any process)

    for name, factory in TEST_MODELS.items():
        if name not in _REGISTRY:
            register_model(name, paper="test helper")(factory)


@contextmanager
def registered_test_models() -> Iterator[None]:
    """The test models are in the registry inside the ``with`` block and gone after it."""
    import ferlib.models  # noqa: F401  (so that no real family registers inside the block)

    present = [name for name in TEST_MODELS if name in _REGISTRY]
    assert not present, f"test models {present} are already registered: something leaked them"
    try:
        for name, factory in TEST_MODELS.items():
            register_model(name, paper="test helper")(factory)
        yield
    finally:
        for name in TEST_MODELS:
            _REGISTRY.pop(name, None)


class ColourDataset(torch.utils.data.Dataset):
    """``n`` 32×32 images whose class is encoded in a noisy colour pattern: learnable in a few steps."""

    def __init__(self, n: int, seed: int = 0, num_classes: int = 7, size: int = 32, delay: float = 0.0):
        self.delay = delay
        g = np.random.default_rng(seed)
        self.labels = g.integers(0, num_classes, n).astype(np.int64)
        self.class_names = [f"c{i}" for i in range(num_classes)]
        base = np.random.default_rng(1234).integers(0, 255, (num_classes, 3, 1, 1))  # same classes in every split
        noise = g.integers(-60, 60, (n, 3, size, size))
        self.images = np.clip(base[self.labels] + noise, 0, 255).astype(np.uint8)
        self.landmarks5 = (g.random((n, 5, 2)) * (size - 1)).astype(np.float32)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        if self.delay:
            time.sleep(self.delay)  # makes an epoch long enough to be killed in the middle
        return {
            "image": torch.from_numpy(self.images[i]),
            "label": int(self.labels[i]),
            "landmarks5": torch.from_numpy(self.landmarks5[i]),
            "meta": {"id": f"item{i}"},
        }


def test_test_models_are_registered_only_inside_the_block():
    from ferlib.models import create_model, list_models

    assert not set(TEST_MODELS) & set(list_models())
    with registered_test_models():
        assert set(TEST_MODELS) <= set(list_models())
        assert isinstance(create_model(TINY_BN, num_classes=3).bn, nn.BatchNorm2d)
    assert not set(TEST_MODELS) & set(list_models())


def test_colour_dataset_follows_the_sample_schema():
    from ferlib.data.schema import collate_samples

    ds = ColourDataset(10, seed=3)
    batch = collate_samples([ds[i] for i in range(4)])
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (4, 3, 32, 32)
    assert batch["label"].tolist() == ds.labels[:4].tolist()
    assert batch["landmarks5"].shape == (4, 5, 2)


def tiny_config(tmp_path, **kw) -> TrainConfig:
    """A quick run of :data:`TINY` under MA-Net's recipe shape (smoke profile, 3 epochs, batch 16) into
    ``tmp_path/run``; keywords override."""
    base = dict(
        model=TINY,
        recipe="ma-net",
        profile="smoke",
        epochs=3,
        batch_size=16,
        lr=0.05,
        run_dir=str(tmp_path / "run"),
        progress=False,
        tensorboard=False,
    )
    base.update(kw)
    return TrainConfig(**base)
