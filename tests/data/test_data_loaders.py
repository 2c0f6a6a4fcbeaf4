"""Every manifest's loader on fake trees in the official layouts, and the bad-input cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import fakes
from ferlib.data.datasets import (
    CorruptImageError,
    LabelFileError,
    LayoutError,
    build_dataset,
    landmarks5_from_68,
)
from ferlib.data.manifests import list_manifests

SFEW_CLASSES = ["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]


def _check_schema(sample, size):
    assert sample["image"].dtype == torch.uint8 and tuple(sample["image"].shape) == (3, size, size)
    assert isinstance(sample["label"], int)
    assert sample["landmarks5"].shape == (5, 2) and sample["landmarks5"].dtype == torch.float32
    for key in ("id", "path", "subject", "yaw", "pitch", "roll", "occlusion"):
        assert key in sample["meta"]


# ---- RAF-DB -------------------------------------------------------------------------------------


def test_rafdb_labels_crlf_and_schema(tmp_path):
    tree = fakes.make_rafdb(tmp_path)
    for split in ("train", "test"):
        ds = build_dataset("rafdb", split, tmp_path, image_size=32)
        assert len(ds) == tree.counts[split]
        assert ds.labels.tolist() == tree.labels[split]  # native 1-7 -> canonical, CRLF stripped
        assert ds.class_names[0] == "neutral"
        sample = ds[2]
        _check_schema(sample, 32)
        assert sample["label"] == tree.labels[split][2]
        assert torch.isnan(sample["landmarks5"]).all()  # aligned images ship no landmarks


def test_rafdb_original_landmarks_scaled_and_ordered(tmp_path):
    fakes.make_rafdb(tmp_path)
    ds = build_dataset("rafdb", "test", tmp_path, image_size=32, variant="original")
    lm = ds[0]["landmarks5"].numpy()
    # file: image-right eye (25, 10) written before image-left eye (12, 11); original is 40×30
    raw = np.array([[12.0, 11.0], [25.0, 10.0], [19.5, 16.0], [14.0, 22.0], [24.0, 22.5]])
    expected = np.stack([(raw[:, 0] + 0.5) * 32 / 40 - 0.5, (raw[:, 1] + 0.5) * 32 / 30 - 0.5], axis=1)
    np.testing.assert_allclose(lm, expected, atol=1e-5)


def test_rafdb_duplicate_row_loaded_once_and_counted(tmp_path):
    tree = fakes.make_rafdb(tmp_path, duplicate=True)
    ds = build_dataset("rafdb", "train", tmp_path, image_size=16)
    assert len(ds) == tree.counts["train"]
    assert ds.report.count("duplicate") == 1
    assert tree.duplicated[0] in ds.report.problems[0].expectation


def test_rafdb_conflicting_rows_error_names_line(tmp_path):
    fakes.make_rafdb(tmp_path, conflict=True)
    with pytest.raises(LabelFileError, match=r"list_patition_label.txt:\d+.*train_00002"):
        build_dataset("rafdb", "train", tmp_path)
    with pytest.warns(UserWarning, match="skipped 1 item"):
        ds = build_dataset("rafdb", "train", tmp_path, on_corrupt="skip")
    assert ds.report.count("conflict") == 1
    assert len(ds) == 7  # the first of the two rows is kept


def test_rafdb_missing_file_error_and_counted_skip(tmp_path):
    tree = fakes.make_rafdb(tmp_path, missing=True)
    with pytest.raises(LayoutError) as info:
        build_dataset("rafdb", "train", tmp_path)
    msg = str(info.value)
    assert "train_09999_aligned.jpg" in msg and "list_patition_label.txt" in msg and "Fix:" in msg
    with pytest.warns(UserWarning, match="skipped 1"):
        ds = build_dataset("rafdb", "train", tmp_path, on_corrupt="skip")
    assert len(ds) == tree.counts["train"]
    assert ds.report.count("missing") == 1 and str(tree.missing[0]) == ds.report.problems[0].file


def test_rafdb_corrupt_jpeg_error_and_counted_skip(tmp_path):
    tree = fakes.make_rafdb(tmp_path, n_train=14, corrupt=True)  # every class twice: a stand-in exists
    ds = build_dataset("rafdb", "train", tmp_path, image_size=16)
    with pytest.raises(CorruptImageError) as info:
        ds[1]
    assert str(tree.corrupt[0]) in str(info.value) and "on_corrupt='skip'" in str(info.value)
    ds = build_dataset("rafdb", "train", tmp_path, image_size=16, on_corrupt="skip")
    with pytest.warns(UserWarning, match="skipped unreadable image"):
        sample = ds[1]
    assert ds.report.count("corrupt") == 1
    assert sample["meta"]["substituted_for"] == "train_00002"
    assert sample["label"] == ds.labels[1]  # stand-in has the same class, so labels stay truthful
    ds[1]
    assert ds.report.count("corrupt") == 1  # counted once


def test_missing_root_and_label_file_messages(tmp_path):
    with pytest.raises(ValueError, match="needs the folder of your local copy"):
        build_dataset("rafdb", "train")
    with pytest.raises(LayoutError, match="list_patition_label.txt.*Fix: point root"):
        build_dataset("rafdb", "train", tmp_path)


# ---- AffectNet ------------------------------------------------------------------------------------


def test_affectnet_7_and_8_classes_drop_none_uncertain_nonface(tmp_path):
    tree = fakes.make_affectnet(tmp_path)
    ds7 = build_dataset("affectnet7", "train", tmp_path, image_size=32)
    assert ds7.labels.tolist() == tree.labels["train"]
    assert ds7.report.dropped["none"] == 1 and ds7.report.dropped["uncertain"] == 1
    assert ds7.report.dropped["contempt (7-class run)"] == 1
    ds8 = build_dataset("affectnet8", "test", tmp_path, image_size=32, num_classes=8)
    assert ds8.labels.tolist() == tree.extra["test_labels8"]
    assert 7 in ds8.labels


def test_affectnet_crop_and_landmarks(tmp_path):
    tree = fakes.make_affectnet(tmp_path)
    ds = build_dataset("affectnet7", "train", tmp_path, image_size=60)
    first = tree.extra["train_first"]
    x, y, w, h = first["box"]
    lm5 = landmarks5_from_68(first["lm68"])
    expected = np.stack([(lm5[:, 0] - x + 0.5) * 60 / w - 0.5, (lm5[:, 1] - y + 0.5) * 60 / h - 0.5], 1)
    sample = ds[0]
    _check_schema(sample, 60)
    np.testing.assert_allclose(sample["landmarks5"].numpy(), expected, atol=1e-4)
    assert sample["landmarks8"].shape == (8, 2)
    # the face crop is the box of the original image, resized
    from PIL import Image

    img = Image.open(tmp_path / "Manually_Annotated_Images" / first["rel"]).convert("RGB")
    crop = np.asarray(img.crop((x, y, x + w, y + h)).resize((60, 60), Image.BILINEAR))
    np.testing.assert_array_equal(sample["image"].permute(1, 2, 0).numpy(), crop)


def test_affectnet_bad_inputs(tmp_path):
    tree = fakes.make_affectnet(tmp_path, n_train=22, duplicate=True, missing=True, corrupt=True)
    with pytest.raises(LayoutError, match="missing.jpg"):
        build_dataset("affectnet7", "train", tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = build_dataset("affectnet7", "train", tmp_path, on_corrupt="skip", image_size=16)
        assert ds.report.count("duplicate") == 1 and ds.report.count("missing") == 1
        assert len(ds) == tree.counts["train"]
        for i in range(len(ds)):
            ds[i]
    assert ds.report.count("corrupt") == 1


def test_affectnet_without_header(tmp_path):
    tree = fakes.make_affectnet(tmp_path, header=False)
    ds = build_dataset("affectnet7", "test", tmp_path)
    assert ds.labels.tolist() == tree.labels["test"]


# ---- FER-2013 / FERPlus --------------------------------------------------------------------------


def test_fer2013_splits_pixels_and_corrupt_row(tmp_path):
    tree = fakes.make_fer2013(tmp_path)
    for split in ("train", "val", "test"):
        ds = build_dataset("fer2013", split, tmp_path, image_size=48)
        assert ds.labels.tolist() == tree.labels[split]
    ds = build_dataset("fer2013", "train", tmp_path, image_size=48)
    img = ds[0]["image"]
    assert img.shape == (3, 48, 48)
    assert torch.equal(img[0], img[1])  # grey replicated to RGB
    assert img[0].flatten().tolist() == tree.extra["first_pixels"].tolist()
    bad = tmp_path / "bad"
    fakes.make_fer2013(bad, corrupt=True)
    with pytest.raises(CorruptImageError, match=r"fer2013.csv:\d+.*2304"):
        build_dataset("fer2013", "train", bad)
    with pytest.warns(UserWarning):
        ds = build_dataset("fer2013", "train", bad, on_corrupt="skip")
    assert ds.report.count("corrupt") == 1 and len(ds) == tree.counts["train"]


@pytest.mark.parametrize("folders", [True, False])
def test_ferplus_majority_vote(tmp_path, folders):
    tree = fakes.make_ferplus(tmp_path, folders=folders)
    ds8 = build_dataset("ferplus", "train", tmp_path, num_classes=8, image_size=48)
    assert ds8.labels.tolist() == tree.extra["train_labels8"]
    assert ds8.report.dropped["tied majority"] == 1
    assert ds8.report.dropped["majority unknown"] == 1 and ds8.report.dropped["majority NF"] == 1
    assert ds8.report.dropped["no image name (not usable)"] == 1
    ds7 = build_dataset("ferplus", "val", tmp_path, num_classes=7, image_size=48)
    assert ds7.labels.tolist() == tree.labels["val"]
    _check_schema(ds7[0], 48)


def test_ferplus_bad_inputs(tmp_path):
    fakes.make_ferplus(tmp_path, per_split=16, duplicate=True, missing=True, corrupt=True)
    with pytest.raises(LayoutError, match="fer0000001.png"):
        build_dataset("ferplus", "train", tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = build_dataset("ferplus", "train", tmp_path, on_corrupt="skip", num_classes=8, image_size=16)
        assert ds.report.count("duplicate") == 1 and ds.report.count("missing") == 1
        for i in range(len(ds)):
            ds[i]
    assert ds.report.count("corrupt") == 1


# ---- folder datasets: SFEW 2.0, CAER-S, FED-RO ---------------------------------------------------


def test_sfew2_folders(tmp_path):
    tree = fakes.make_class_folders(tmp_path, {"train": "Train", "val": "Val"}, SFEW_CLASSES)
    for split in ("train", "val"):
        ds = build_dataset("sfew2", split, tmp_path, image_size=24)
        assert ds.labels.tolist() == tree.labels[split]
    assert build_dataset("sfew2", "test", tmp_path).labels.tolist() == tree.labels["val"]  # test = Val
    _check_schema(ds[0], 24)


def test_caers_folders_with_corrupt_image(tmp_path):
    classes = ["Anger", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]
    tree = fakes.make_class_folders(tmp_path, {"train": "train", "test": "test"}, classes, corrupt=True)
    ds = build_dataset("caers", "train", tmp_path, image_size=16)
    assert len(ds) == tree.counts["train"]
    bad = [i for i, r in enumerate(ds.records) if r.path == str(tree.corrupt[0])][0]
    with pytest.raises(CorruptImageError):
        ds[bad]
    assert build_dataset("caers", "test", tmp_path).labels.tolist() == tree.labels["test"]


def test_fedro_folders_and_unknown_class_folder(tmp_path):
    classes = ["anger", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    tree = fakes.make_class_folders(tmp_path, {"test": "."}, classes, ext=".jpg", extra_folder="misc")
    with pytest.raises(LayoutError, match="misc.*not an expression"):
        build_dataset("fedro", "test", tmp_path)
    with pytest.warns(UserWarning):
        ds = build_dataset("fedro", "test", tmp_path, on_corrupt="skip")
    assert ds.labels.tolist() == tree.labels["test"]


# ---- KDEF / CK+ ----------------------------------------------------------------------------------


def test_kdef_names_subjects_angles(tmp_path):
    tree = fakes.make_kdef(tmp_path)
    ds = build_dataset("kdef", "all", tmp_path, image_size=16)
    assert len(ds) == tree.counts["all"]
    rec = [r for r in ds.records if r.id == "AM03HAHL"][0]
    assert rec.label == 1 and rec.subject == "M03" and rec.meta["yaw"] == -45.0
    assert set(ds.labels.tolist()) == set(range(7))
    frontal = build_dataset("kdef", "all", tmp_path, angles=["S"])
    assert len(frontal) == tree.counts["all"] // 2


def test_kdef_flat_root_and_bad_name(tmp_path):
    tree = fakes.make_kdef(tmp_path, nested=False, bad_name=True)
    with pytest.raises(LabelFileError, match="AF01SUX.JPG"):
        build_dataset("kdef", "all", tmp_path)
    with pytest.warns(UserWarning):
        ds = build_dataset("kdef", "all", tmp_path, on_corrupt="skip")
    assert len(ds) == tree.counts["all"] and ds.report.count("bad_name") == 1


def test_kdef_folds_need_fold_and_are_disjoint(tmp_path):
    fakes.make_kdef(tmp_path)
    with pytest.raises(ValueError, match="fold=k"):
        build_dataset("kdef", "train", tmp_path)
    train = build_dataset("kdef", "train", tmp_path, fold=3)
    test = build_dataset("kdef", "test", tmp_path, fold=3)
    assert {r.subject for r in train.records}.isdisjoint({r.subject for r in test.records})
    assert len(train) + len(test) == len(build_dataset("kdef", "all", tmp_path))


def test_ckplus_last_three_frames_labels_landmarks(tmp_path):
    tree = fakes.make_ckplus(tmp_path)
    ds = build_dataset("ckplus", "all", tmp_path, num_classes=8, image_size=28)
    assert len(ds) == tree.counts["all"]
    assert ds.labels.tolist() == tree.labels["all"]
    assert [r.id for r in ds.records[:3]] == ["S005_001_00000003", "S005_001_00000004", "S005_001_00000005"]
    sample = ds[0]
    _check_schema(sample, 28)
    assert sample["landmarks"].shape == (68, 2) and not torch.isnan(sample["landmarks5"]).any()
    ds7 = build_dataset("ckplus", "all", tmp_path, num_classes=7)
    assert 7 not in ds7.labels and len(ds7) == sum(1 for y in tree.labels["all"] if y != 7)


def test_ckplus_bad_inputs(tmp_path):
    fakes.make_ckplus(tmp_path, n_subjects=10, missing_sequence=True, bad_emotion=True)
    with pytest.raises(LabelFileError, match="S998_001_00000009_emotion.txt.*0-7"):
        build_dataset("ckplus", "all", tmp_path)
    with pytest.warns(UserWarning):
        ds = build_dataset("ckplus", "all", tmp_path, on_corrupt="skip")
    assert ds.report.count("bad_row") == 1 and ds.report.count("missing") == 1


# ---- RAN lists and SynthFER ----------------------------------------------------------------------


def test_ran_rafdb_lists_map_to_the_users_copy(tmp_path):
    tree = fakes.make_rafdb(tmp_path)
    stems = [f"test_{i:04d}" for i in range(1, 6)]
    natives = [(i - 1) % 7 + 1 for i in range(1, 6)]
    fakes.make_ran_lists(tmp_path, stems, natives)
    occ = build_dataset("ran_rafdb", "occlusion", tmp_path, image_size=16)
    assert len(occ) == 5 and occ.report.count("duplicate") == 1
    assert occ.labels.tolist() == tree.labels["test"]
    assert occ[0]["meta"]["occlusion"] == 1
    both = build_dataset("ran_rafdb", "occlusion", tmp_path, keep_duplicates=True)
    assert len(both) == 6
    pose = build_dataset("ran_rafdb", "pose45", tmp_path)
    assert pose.labels.tolist() == tree.labels["test"][:2]


def test_ran_list_entry_not_in_copy(tmp_path):
    fakes.make_rafdb(tmp_path)
    fakes.write_lines(tmp_path / "RAN" / "val_raf_db_list.txt", ["3/test_0001_aligned.jpg", "3/test_0777_aligned.jpg"])
    with pytest.raises(LayoutError, match="test_0777"):
        build_dataset("ran_rafdb", "pose30", tmp_path)


def test_synthfer_materialised_folder(tmp_path):
    tree = fakes.make_synthfer_folder(tmp_path, n=6, size=32)
    ds = build_dataset("synthfer", "train", tmp_path, image_size=64, num_classes=8)
    assert ds.labels.tolist() == tree.labels["train"]
    s = ds[0]
    _check_schema(s, 64)
    np.testing.assert_allclose(s["landmarks5"][0].numpy(), [(10 + 0.5) * 2 - 0.5, (12 + 0.5) * 2 - 0.5])
    assert s["landmarks8"].shape == (8, 2) and s["meta"]["yaw"] == 10.0 and s["meta"]["subject"] == "s0"
    assert len(build_dataset("synthfer", "train", tmp_path, num_classes=7)) == 6 - sum(
        1 for y in tree.labels["train"] if y == 7
    )


def test_synthfer_without_root_is_lazy():
    ds = build_dataset("synthfer", "test", n=5, seed=3, image_size=48)
    assert len(ds) == 5 and len(ds.labels) == 5 and len(ds.class_names) == 7
    s = ds[1]
    assert s["image"].shape == (3, 48, 48) and s["label"] == int(ds.labels[1])


def test_synthfer_real_materialise_roundtrip(tmp_path):
    import ferlib.data.synthfer as synthfer

    synthfer.materialise(tmp_path, n=4, seed=1, split="train", image_size=40, progress=False)
    lazy = build_dataset("synthfer", "train", n=4, seed=1, image_size=40)
    folder = build_dataset("synthfer", "train", tmp_path, image_size=40)
    assert folder.labels.tolist() == lazy.labels.tolist()
    a, b = lazy[2], folder[2]
    assert torch.equal(a["image"], b["image"])  # PNG is lossless
    np.testing.assert_allclose(a["landmarks5"].numpy(), b["landmarks5"].numpy(), atol=1e-3)


def test_every_manifest_has_a_loader_test():
    tested = {
        "rafdb",
        "affectnet7",
        "affectnet8",
        "fer2013",
        "ferplus",
        "sfew2",
        "caers",
        "fedro",
        "kdef",
        "ckplus",
        "ran_rafdb",
        "ran_affectnet",
        "ran_ferplus",
        "synthfer",
    }
    assert set(list_manifests()) <= tested


def test_unknown_keyword_is_explained(tmp_path):
    fakes.make_rafdb(tmp_path)
    with pytest.raises(TypeError, match="rafdb.*keywords"):
        build_dataset("rafdb", "train", tmp_path, fold=1)


def test_landmarks_file_overrides(tmp_path):
    fakes.make_rafdb(tmp_path)
    csv_path = tmp_path / "lm.csv"
    csv_path.write_text(
        "id,lm5\ntrain_00001," + " ".join(["3", "4", "15", "4", "9", "10", "5", "15", "14", "15"]) + "\n"
    )
    ds = build_dataset("rafdb", "train", tmp_path, image_size=40, landmarks_file=csv_path)
    lm = ds[0]["landmarks5"].numpy()
    np.testing.assert_allclose(lm[0], [(3 + 0.5) * 2 - 0.5, (4 + 0.5) * 2 - 0.5])  # 20 px aligned -> 40
    assert math.isnan(float(ds[1]["landmarks5"][0, 0]))


def test_landmarks_file_from_ferlib_landmarks_jsonl(tmp_path):
    import json

    from ferlib.data.landmark_files import bytes_hash

    fakes.make_rafdb(tmp_path)
    aligned = tmp_path / "Image" / "aligned"
    header = {"format": "ferlib-landmarks", "version": 1, "detector": {"backend": "test"}}
    pts = [[4.0, 6.0], [14.0, 6.0], [9.0, 10.0], [5.0, 14.0], [13.0, 14.0]]
    records = [
        # run on the files themselves (20×20 on disk): file coordinates
        {
            "path": "Image/aligned/train_00001_aligned.jpg",
            "hash": bytes_hash((aligned / "train_00001_aligned.jpg").read_bytes()),  # a record fits only its file
            "width": 20,
            "height": 20,
            "status": "ok",
            "landmarks5": pts,
        },
        # run on a loader output of 64×64: rescaled from that frame
        {
            "path": str(aligned / "train_00002_aligned.jpg"),
            "hash": bytes_hash((aligned / "train_00002_aligned.jpg").read_bytes()),
            "width": 64,
            "height": 64,
            "status": "no_face",
            "fallback": True,
            "landmarks5": [[p * 3.2 for p in xy] for xy in pts],
        },
    ]
    path = tmp_path / "lm.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [header, *records]) + "\n")
    ds = build_dataset("rafdb", "train", tmp_path, image_size=40, landmarks_file=path)
    want = np.array([[(x + 0.5) * 2 - 0.5, (y + 0.5) * 2 - 0.5] for x, y in pts])
    a, b = ds[0], ds[1]
    np.testing.assert_allclose(a["landmarks5"].numpy(), want, atol=1e-5)
    assert a["meta"]["landmarks_status"] == "ok"
    np.testing.assert_allclose(
        b["landmarks5"].numpy(),
        [[(x * 3.2 + 0.5) * 40 / 64 - 0.5, (y * 3.2 + 0.5) * 40 / 64 - 0.5] for x, y in pts],
        atol=1e-4,
    )
    assert b["meta"]["landmarks_fallback"] is True
    assert torch.isnan(ds[2]["landmarks5"]).all() and ds[2]["meta"]["landmarks_status"] == "missing"


def test_ckplus_fold_split_follows_protocol(tmp_path):
    from ferlib.data.protocols import ckplus_folds

    tree = fakes.make_ckplus(tmp_path, n_subjects=12)
    everything = build_dataset("ckplus", "all", tmp_path, num_classes=8)
    folds = ckplus_folds([r.subject for r in everything.records])
    for k in (0, 1):
        test = build_dataset("ckplus", "test", tmp_path, num_classes=8, fold=k)
        train = build_dataset("ckplus", "train", tmp_path, num_classes=8, fold=k)
        assert {r.subject for r in test.records} == set(folds[k])
        assert {r.subject for r in train.records}.isdisjoint(folds[k])
        assert len(test) + len(train) == tree.counts["all"]
    assert folds[0] == ["S005", "S075"] and folds[1] == ["S012", "S082"]  # ids ascending, every 10th
