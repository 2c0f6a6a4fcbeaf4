"""The training set on the device (ferlib/train/device_data.py): the loader's batches without the loader.

Checked on the CPU (the path is device-agnostic; the CUDA test at the end runs where a GPU is): the
batches equal the DataLoader's for the same epoch (raw and after the recipe's augmentation), from a
dataset, a decoded cache and an index view of it, resident or streamed; an epoch visits every index
once; two runs give the same batches; a whole training run gives bit-for-bit the metrics of the
loader path, and an interrupted run resumed on the device path ends like an uninterrupted one.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ferlib.train.loop as loop
from ferlib.data.cache import cached_dataset
from ferlib.data.protocols import EpochSampler, IndexedDataset, derive_seed
from ferlib.data.transforms import LandmarkAugment
from ferlib.train import TrainConfig, train
from ferlib.train.data import make_loader
from ferlib.train.device_data import DeviceTrainSet, build_device_data
from test_train_helpers import TINY_BN, ColourDataset

pytestmark = [
    pytest.mark.usefixtures("tiny_models"),
    pytest.mark.filterwarnings("ignore:ColourDataset has no fingerprint"),
]

KEYS = ("image", "label", "landmarks5")


def _loader_batches(ds, sampler, batch_size):
    return [{k: b[k] for k in KEYS} for b in make_loader(ds, batch_size, sampler=sampler, drop_last=True)]


def _assert_same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for k in KEYS:
            assert torch.equal(x[k].cpu(), y[k].cpu()), k


@pytest.mark.parametrize("source", ["dataset", "cache", "view"])
def test_device_batches_are_the_loader_batches(tmp_path, source):
    ds = ColourDataset(50, seed=2)
    if source != "dataset":
        ds = cached_dataset(ds, tmp_path / "cache", progress=False)
    if source == "view":
        ds = IndexedDataset(ds, np.arange(49, 3, -2))  # a reversed, strided view: rows ≠ positions
    sampler = EpochSampler(ds.labels, seed=5)
    dev = DeviceTrainSet(ds, "cpu")
    assert dev.resident and len(dev) == len(ds)
    for epoch in (0, 3):
        sampler.set_epoch(epoch)
        _assert_same(list(dev.epoch_batches(sampler.indices(), 8)), _loader_batches(ds, sampler, 8))


def test_streamed_batches_equal_resident_ones_and_augment_alike(tmp_path):
    ds = cached_dataset(ColourDataset(40, seed=1), tmp_path / "cache", progress=False)
    resident, streamed = DeviceTrainSet(ds, "cpu"), DeviceTrainSet(ds, "cpu", budget_bytes=0)
    assert resident.resident and not streamed.resident
    sampler = EpochSampler(ds.labels, seed=0, balanced=True)
    sampler.set_epoch(2)
    order = sampler.indices()
    a, b = list(resident.epoch_batches(order, 16)), list(streamed.epoch_batches(order, 16))
    _assert_same(a, b)
    loader = _loader_batches(ds, sampler, 16)
    augment = LandmarkAugment(flip=True, translate=0.1, color_jitter=(0.4, 0.4, 0.4))
    for x, y in zip(a, loader):
        augment.generator = torch.Generator().manual_seed(derive_seed(0, 2, "augment"))
        ax = augment(x)
        augment.generator = torch.Generator().manual_seed(derive_seed(0, 2, "augment"))
        ay = augment(y)
        _assert_same([ax], [ay])


def test_an_epoch_visits_every_index_once_and_repeats_exactly():
    ds = ColourDataset(48, seed=4)
    sampler = EpochSampler(ds.labels, seed=9)
    sampler.set_epoch(1)
    dev = DeviceTrainSet(ds, "cpu")
    first = list(dev.epoch_batches(sampler.indices(), 12))
    again = list(DeviceTrainSet(ds, "cpu").epoch_batches(sampler.indices(), 12))
    _assert_same(first, again)
    rows = {ds.images[i].tobytes(): i for i in range(len(ds))}
    seen = [rows[img.numpy().tobytes()] for b in first for img in b["image"]]
    assert sorted(seen) == list(range(len(ds)))
    sampler.set_epoch(2)
    other = [rows[img.numpy().tobytes()] for b in dev.epoch_batches(sampler.indices(), 12) for img in b["image"]]
    assert sorted(other) == sorted(seen) and other != seen  # a new order each epoch, still each index once


def test_mode_selection_and_bad_mode():
    ds = ColourDataset(8)
    assert build_device_data(ds, torch.device("cpu"), "auto") is None  # CPU: the loader's memory map is local
    assert build_device_data(ds, torch.device("cpu"), "off") is None
    assert isinstance(build_device_data(ds, torch.device("cpu"), "on"), DeviceTrainSet)
    assert not build_device_data(ds, torch.device("cpu"), "on", budget_gb=0.0).resident
    with pytest.raises(ValueError, match="data_on_device must be"):
        build_device_data(ds, torch.device("cpu"), "yes")


def _cfg(tmp_path, name: str, mode: str, **kw) -> TrainConfig:
    return TrainConfig(
        model=TINY_BN,
        recipe="ma-net",
        profile="smoke",
        epochs=3,
        batch_size=16,
        lr=0.05,
        run_dir=str(tmp_path / name),
        progress=False,
        tensorboard=False,
        val_fraction=0.2,
        device="cpu",
        data_on_device=mode,
        **kw,
    )


def _comparable(run_dir) -> tuple[dict, list]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    for row in history:
        row.pop("epoch_seconds")
        row.pop("train_images_per_second")
    return metrics, history


def _data():
    return dict(train_dataset=ColourDataset(96, 0), test_dataset=ColourDataset(32, 1))


def test_training_on_the_device_path_equals_the_loader_path(tmp_path):
    off = train(_cfg(tmp_path, "off", "off"), **_data())
    on = train(_cfg(tmp_path, "on", "on"), **_data())
    assert _comparable(on.run_dir) == _comparable(off.run_dir)


def test_an_interrupted_device_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    reference = train(_cfg(tmp_path, "ref", "on"), **_data())
    real = loop._validate_epoch

    def dies_in_epoch_three(run, epoch, *args):
        if epoch == 2:  # trained epoch 3, not yet saved: last.pt is epoch 2's
            raise KeyboardInterrupt
        return real(run, epoch, *args)

    monkeypatch.setattr(loop, "_validate_epoch", dies_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(tmp_path, "victim", "on"), **_data())
    monkeypatch.setattr(loop, "_validate_epoch", real)
    resumed = train(_cfg(tmp_path, "victim", "on", resume=True), **_data())
    assert _comparable(resumed.run_dir) == _comparable(reference.run_dir)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_data_is_resident_and_equals_the_cpu_batches():
    ds = ColourDataset(64, seed=3)
    sampler = EpochSampler(ds.labels, seed=1)
    gpu, cpu = DeviceTrainSet(ds, "cuda"), DeviceTrainSet(ds, "cpu")
    assert gpu.resident and gpu.tensors["image"].is_cuda
    batches = list(gpu.epoch_batches(sampler.indices(), 16))
    assert all(b["image"].is_cuda for b in batches)
    _assert_same(batches, list(cpu.epoch_batches(sampler.indices(), 16)))
    streamed = DeviceTrainSet(ds, "cuda", budget_bytes=0)
    _assert_same(list(streamed.epoch_batches(sampler.indices(), 16)), batches)
