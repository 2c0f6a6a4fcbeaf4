"""The decoded-image cache: built once, later passes never decode an image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fakes
from ferlib.data.cache import DecodedCache, cached_dataset
from ferlib.data.datasets import FERDataset, build_dataset


def _forbid_decoding(monkeypatch):
    def boom(self, rec):
        raise AssertionError(f"decoded {rec.path} although the cache exists")

    monkeypatch.setattr(FERDataset, "_decode", boom)


def test_cache_matches_dataset_and_second_pass_reads_no_image(tmp_path, monkeypatch):
    fakes.make_rafdb(tmp_path / "raf")
    ds = build_dataset("rafdb", "test", tmp_path / "raf", image_size=24, variant="original")
    cache = cached_dataset(ds, tmp_path / "cache", progress=False)
    assert cache.built_now and len(cache) == len(ds)
    assert np.array_equal(cache.labels, ds.labels) and cache.class_names == ds.class_names
    expected = [ds[i] for i in range(len(ds))]
    _forbid_decoding(monkeypatch)
    for i, want in enumerate(expected):
        got = cache[i]
        assert torch.equal(got["image"], want["image"]) and got["label"] == want["label"]
        assert torch.equal(got["landmarks5"], want["landmarks5"])
        assert got["meta"]["id"] == want["meta"]["id"] and got["meta"]["path"] == want["meta"]["path"]
    again = cached_dataset(ds, tmp_path / "cache", progress=False)  # a later run: reuse, no decoding
    assert not again.built_now and torch.equal(again[1]["image"], expected[1]["image"])
    assert len(list((tmp_path / "cache").iterdir())) == 1  # no temporary leftovers


def test_cache_key_changes_with_preprocessing(tmp_path):
    fakes.make_rafdb(tmp_path / "raf")
    a = cached_dataset(build_dataset("rafdb", "test", tmp_path / "raf", image_size=16), tmp_path / "c", progress=False)
    b = cached_dataset(build_dataset("rafdb", "test", tmp_path / "raf", image_size=20), tmp_path / "c", progress=False)
    assert a.path != b.path and b.built_now and b[0]["image"].shape == (3, 20, 20)


def test_cache_keeps_landmarks8_and_nan(tmp_path):
    fakes.make_synthfer_folder(tmp_path / "sf", n=4)
    ds = build_dataset("synthfer", "train", tmp_path / "sf", image_size=32, num_classes=8)
    cache = DecodedCache(ds, tmp_path / "c", progress=False)
    assert torch.equal(cache[2]["landmarks8"], ds[2]["landmarks8"])
    fakes.make_rafdb(tmp_path / "raf")
    raf = DecodedCache(build_dataset("rafdb", "test", tmp_path / "raf", image_size=16), tmp_path / "c", progress=False)
    assert torch.isnan(raf[0]["landmarks5"]).all() and "landmarks8" not in raf[0]


def test_interrupted_build_leaves_no_cache(tmp_path, monkeypatch):
    fakes.make_rafdb(tmp_path / "raf", n_test=5)
    ds = build_dataset("rafdb", "test", tmp_path / "raf", image_size=16)
    real = FERDataset.load_sample
    calls = {"n": 0}

    def flaky(self, i):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, i)

    monkeypatch.setattr(FERDataset, "load_sample", flaky)
    with pytest.raises(KeyboardInterrupt):
        DecodedCache(ds, tmp_path / "c", progress=False)
    assert list((tmp_path / "c").iterdir()) == []
    monkeypatch.setattr(FERDataset, "load_sample", real)
    assert DecodedCache(ds, tmp_path / "c", progress=False).built_now


def test_cache_counts_skipped_corrupt_images(tmp_path):
    tree = fakes.make_rafdb(tmp_path / "raf", n_train=14, corrupt=True)
    ds = build_dataset("rafdb", "train", tmp_path / "raf", image_size=16, on_corrupt="skip")
    with pytest.warns(UserWarning, match="skipped unreadable"):
        cache = cached_dataset(ds, tmp_path / "c", progress=False)
    assert cache.report.count("corrupt") == 1 and cache.report.problems[0].file == str(tree.corrupt[0])
    assert cache[1]["meta"]["substituted_for"] == "train_00002"


def test_cache_key_of_a_subset_wrapper_follows_its_base_and_indices(tmp_path):
    from torch.utils.data import Subset

    from ferlib.data.cache import cache_key

    fakes.make_rafdb(tmp_path / "a")
    fakes.make_rafdb(tmp_path / "b", n_test=6)
    a = build_dataset("rafdb", "test", tmp_path / "a", image_size=16)
    b = build_dataset("rafdb", "test", tmp_path / "b", image_size=16)
    assert cache_key(Subset(a, [0, 1])) != cache_key(Subset(b, [0, 1]))  # same length, different data
    assert cache_key(Subset(a, [0, 1])) != cache_key(Subset(a, [0, 2]))
    assert cache_key(Subset(a, [0, 1])) == cache_key(Subset(a, [0, 1]))
