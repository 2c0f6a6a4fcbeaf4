"""Protocols: person-independent folds, class-balanced sampler, stratified validation split."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from ferlib.data.protocols import (
    ckplus_folds,
    class_balanced_sampler,
    fold_indices,
    kdef_folds,
    stratified_val_split,
)


def test_ckplus_folds_every_tenth_subject_ascending():
    subjects = [
        f"S{n:03d}"
        for n in (
            5,
            10,
            11,
            14,
            22,
            26,
            29,
            32,
            34,
            35,
            37,
            42,
            44,
            45,
            46,
            50,
            51,
            52,
            53,
            54,
            55,
            56,
            57,
            58,
            59,
            60,
            61,
            62,
            63,
            64,
            65,
            66,
            67,
            68,
            69,
            70,
            71,
            72,
            73,
            74,
            75,
            76,
            77,
            78,
            79,
            80,
            81,
            82,
            83,
            84,
            85,
            86,
            87,
            88,
            89,
            90,
            91,
            92,
            93,
            94,
            95,
            96,
            97,
            98,
            99,
            100,
            101,
            102,
            103,
            104,
            105,
            106,
            107,
            108,
            109,
            110,
            111,
            112,
            113,
            114,
            115,
            116,
            117,
            118,
            119,
            120,
            121,
            122,
            124,
            125,
            126,
            127,
            128,
            129,
            130,
            131,
            132,
            133,
            134,
            135,
            136,
            137,
            138,
            139,
            147,
            148,
            149,
            151,
            154,
            155,
            156,
            157,
            158,
            160,
            501,
            502,
            503,
            504,
            505,
            506,
            161,
            895,
            999,
        )
    ]
    assert len(subjects) == 123
    shuffled = list(np.random.default_rng(0).permutation(subjects))
    folds = ckplus_folds(shuffled * 3)  # repeated images of the same subjects
    ordered = sorted(subjects, key=lambda s: int(s[1:]))
    for k, fold in enumerate(folds):
        assert fold == ordered[k::10]
    assert folds[0][:3] == ["S005", "S037", "S055"]
    flat = [s for f in folds for s in f]
    assert sorted(flat) == sorted(subjects) and len(flat) == len(set(flat))  # disjoint, complete


def test_numeric_subject_order_not_lexicographic():
    folds = ckplus_folds([f"S{n}" for n in (5, 10, 100, 20, 3, 7, 8, 9, 11, 12, 13)], num_folds=10)
    assert folds[0] == ["S3", "S100"]  # S3 < S5 < ... < S20 < S100


def test_fold_indices_disjoint_by_subject():
    subjects = [f"F{i % 7:02d}" for i in range(70)] + [f"M{i % 13:02d}" for i in range(52)]
    seen_test = set()
    for fold in range(10):
        train, test = fold_indices(subjects, fold)
        assert set(train).isdisjoint(test) and len(train) + len(test) == len(subjects)
        assert {subjects[i] for i in train}.isdisjoint({subjects[i] for i in test})
        seen_test |= set(test.tolist())
    assert seen_test == set(range(len(subjects)))
    assert len(kdef_folds(subjects)) == 10


def test_too_few_subjects_or_missing_subject():
    with pytest.raises(ValueError, match="cannot fill"):
        ckplus_folds(["a", "b"], 10)
    with pytest.raises(ValueError, match="subject id"):
        ckplus_folds(["a", None])


def test_class_balanced_sampler_oversamples_rare_classes():
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)
    sampler = class_balanced_sampler(labels, num_samples=6000, seed=1)
    drawn = list(sampler)
    counts = Counter(labels[drawn].tolist())
    for c in (0, 1, 2):
        assert 1700 < counts[c] < 2300  # ~2000 each although class 2 has 10 items
    assert list(class_balanced_sampler(labels, 50, seed=4)) == list(class_balanced_sampler(labels, 50, seed=4))


def test_stratified_val_split_is_stratified_disjoint_deterministic():
    rng = np.random.default_rng(0)
    labels = rng.choice(7, size=1000, p=[0.3, 0.25, 0.15, 0.1, 0.1, 0.05, 0.05])
    train, val = stratified_val_split(labels, 0.1, seed=7)
    assert set(train).isdisjoint(val) and len(train) + len(val) == len(labels)
    counts, vcounts = np.bincount(labels, minlength=7), np.bincount(labels[val], minlength=7)
    np.testing.assert_array_equal(vcounts, np.round(counts * 0.1).astype(int))
    t2, v2 = stratified_val_split(labels, 0.1, seed=7)
    assert np.array_equal(train, t2) and np.array_equal(val, v2)
    _, v3 = stratified_val_split(labels, 0.1, seed=8)
    assert not np.array_equal(val, v3)


def test_stratified_val_split_small_classes():
    labels = np.array([0, 0, 0, 1, 1, 2])
    train, val = stratified_val_split(labels, 0.1, seed=0)
    assert sorted(labels[val].tolist()) == [0, 1]  # one from each class with >= 2 items
    assert 5 in train  # a singleton class stays in training
    with pytest.raises(ValueError):
        stratified_val_split(labels, 1.5)
