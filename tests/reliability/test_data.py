"""Reliability cases for images, datasets and ``ferlib data verify`` (issue 12, items 4-7 and the wording).

Each case builds its bad input on the fly (``tests/fakes.py``) and asserts the refusal text or the correct
handling; the rows of ``docs/reliability.md`` (DATA section) describe the same cases.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fakes
from ferlib.cli import main
from ferlib.data.datasets import (
    CorruptImageError,
    EmptyDatasetError,
    LabelFileError,
    build_dataset,
)
from ferlib.data.images import MIN_IMAGE_SIDE, decode_image, to_rgb_array
from ferlib.data.verify import verify_dataset

refused = pytest.mark.reliability("refused")
handled = pytest.mark.reliability("handled")

SFEW = {"train": "Train", "val": "Val"}


def _sfew(root: Path):
    return fakes.make_class_folders(root, SFEW, ["Angry", "Happy"])


def _gradient16(w: int = 32, h: int = 32) -> np.ndarray:
    """A 16-bit grey ramp over the whole range (an 8-bit clip would make almost all of it white)."""
    return np.linspace(0, 65535, w * h).reshape(h, w).round().astype(np.uint16)


def _grey_mean(image) -> float:
    return float(np.asarray(image, dtype=np.float64).mean())


# -- item 4: images decoded correctly ----------------------------------------------------------------------


@handled
def test_16bit_png_decoded_like_its_8bit_rendering_in_loader_cache_and_landmark_extraction(tmp_path):
    from ferlib.data.cache import cached_dataset
    from ferlib.landmarks.extract import items_from_files

    _sfew(tmp_path)
    a16 = _gradient16()
    target = tmp_path / "Train" / "Angry" / "angry_000.png"
    Image.fromarray(a16).save(target)
    with Image.open(target) as im:
        assert im.mode.startswith("I")  # the file really is 16-bit
    expected = _grey_mean(np.rint(a16 / 257.0))  # the 8-bit rendering
    assert expected < 200  # while clipping to 8 bit would give almost pure white

    ds = build_dataset("sfew2", "train", tmp_path, image_size=32)
    index = [r.path for r in ds.records].index(str(target))
    sample = ds[index]["image"]
    assert abs(_grey_mean(sample) - expected) <= 1.0
    cache = cached_dataset(ds, tmp_path / "cache", progress=False)
    assert abs(_grey_mean(cache[index]["image"]) - expected) <= 1.0
    item = next(i for i in items_from_files(tmp_path / "Train") if i.path.endswith("angry_000.png"))
    assert abs(_grey_mean(item.load()) - expected) <= 1.0


@handled
@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_every_16bit_mode_is_scaled_not_clipped(mode):
    a16 = _gradient16(20, 20)
    if mode == "I":
        image = Image.fromarray(a16.astype(np.int32), "I")
    else:
        dtype = "<u2" if mode == "I;16" else ">u2"
        image = Image.frombytes(mode, (20, 20), a16.astype(dtype).tobytes())
    expected = _grey_mean(np.rint(a16 / 257.0))
    assert abs(_grey_mean(decode_image(image)) - expected) <= 1.0
    assert abs(_grey_mean(to_rgb_array(image)) - expected) <= 1.0


def _exif_rotated_jpeg(path: Path) -> np.ndarray:
    """An upright 40×24 (W×H) picture, bright on top, stored rotated with EXIF orientation 6 (as phones do)."""
    upright = np.zeros((24, 40, 3), dtype=np.uint8)
    upright[:12] = 230
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # what the sensor wrote: 24 wide, 40 high
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(stored).save(path, format="JPEG", quality=95, exif=exif.tobytes())
    return upright


@handled
def test_exif_rotated_jpeg_decodes_upright_everywhere(tmp_path):
    from ferlib.landmarks.extract import items_from_files

    _sfew(tmp_path)
    target = tmp_path / "Train" / "Happy" / "phone.jpg"
    upright = _exif_rotated_jpeg(target)
    decoded = np.asarray(decode_image(target))
    assert decoded.shape == upright.shape  # 24 high, 40 wide: upright, not sideways
    assert np.abs(decoded.astype(int) - upright).mean() < 8
    ds = build_dataset("sfew2", "train", tmp_path, image_size=32)
    image = ds[[r.path for r in ds.records].index(str(target))]["image"].numpy()
    assert image[:, :14].mean() > 200 and image[:, 18:].mean() < 30  # bright on top, dark at the bottom
    item = next(i for i in items_from_files(tmp_path / "Train") if i.path.endswith("phone.jpg"))
    assert item.load().shape == upright.shape


@refused
def test_tiny_image_refused_by_loader_and_verify_with_the_file_named(tmp_path, capsys):
    tree = _sfew(tmp_path)
    tiny = tmp_path / "Train" / "Angry" / "angry_001.png"
    Image.new("RGB", (1, 1), (128, 128, 128)).save(tiny)
    ds = build_dataset("sfew2", "train", tmp_path, image_size=32)
    with pytest.raises(CorruptImageError, match=rf"only 1×1 px; ferlib needs at least {MIN_IMAGE_SIDE} px") as info:
        ds.load_sample([r.path for r in ds.records].index(str(tiny)))
    assert info.value.file == str(tiny)
    assert main(["data", "verify", "sfew2", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"[corrupt] {tiny}: the image is only 1×1 px" in out and "result: FAILED" in out
    skip = build_dataset("sfew2", "train", tmp_path, image_size=32, on_corrupt="skip")
    with pytest.warns(UserWarning, match="skipped unreadable image"):
        [skip[i] for i in range(len(skip))]
    assert skip.skipped == 1 and len(skip) == tree.counts["train"]


# -- item 5: nothing to load ------------------------------------------------------------------------------


@refused
def test_empty_label_file_refused_by_verify_exit_2_and_by_the_loader(tmp_path, capsys):
    fakes.make_rafdb(tmp_path)
    label_file = tmp_path / "EmoLabel" / "list_patition_label.txt"
    label_file.write_bytes(b"")
    assert main(["data", "verify", "rafdb", "--root", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"ferlib data verify: {label_file}: RAF-DB (basic emotions) split 'train' has no")
    assert "(0 label rows read); 2 split(s) without images. Fix: restore the complete label files" in captured.err
    assert "result: FAILED" in captured.out
    with pytest.raises(EmptyDatasetError, match=r"split 'test' has no images \(0 label rows read\)"):
        build_dataset("rafdb", "test", tmp_path)


@refused
def test_split_with_no_rows_of_its_own_is_refused(tmp_path):
    fakes.make_rafdb(tmp_path)
    label_file = tmp_path / "EmoLabel" / "list_patition_label.txt"
    train_only = [ln for ln in label_file.read_text().splitlines() if ln.startswith("train_")]
    fakes.write_lines(label_file, train_only)
    report = verify_dataset("rafdb", tmp_path, progress=False)
    assert report.empty and not report.ok
    (problem,) = [p for p in report.problems if p.kind == "empty"]
    assert problem.file == str(label_file) and "split 'test' has no images (7 label rows read)" in problem.expectation


@refused
def test_every_row_skipped_leaves_an_empty_split_that_is_refused(tmp_path):
    fakes.make_rafdb(tmp_path, n_train=2, n_test=1)
    label_file = tmp_path / "EmoLabel" / "list_patition_label.txt"
    fakes.write_lines(label_file, ["train_00001.jpg 9", "train_00002.jpg x", "test_0001.jpg 1"])
    with pytest.raises(EmptyDatasetError, match=r"has no images \(1 label rows read, 2 skipped as bad\)"):
        build_dataset("rafdb", "train", tmp_path, on_corrupt="skip")


# -- item 6: names that leave the dataset folder ----------------------------------------------------------


def _outside_image(tmp_path: Path) -> Path:
    return fakes.write_image(tmp_path / "elsewhere" / "secret.jpg", (24, 24))


@refused
def test_affectnet_csv_names_outside_the_root_refused_with_file_and_line(tmp_path):
    root = tmp_path / "affectnet"
    fakes.make_affectnet(root)
    outside = _outside_image(tmp_path)
    csv_path = root / "Manually_Annotated_file_lists" / "training.csv"
    lines = csv_path.read_text().splitlines()
    rest = lines[2].split(",", 1)[1]
    lines[2] = "../../elsewhere/secret.jpg," + rest  # line 3
    lines[3] = f"{outside}," + lines[3].split(",", 1)[1]  # line 4: an absolute path
    fakes.write_lines(csv_path, lines)
    with pytest.raises(LabelFileError, match="leads outside the dataset folder") as info:
        build_dataset("affectnet7", "train", root)
    assert info.value.file == f"{csv_path}:3" and "no '..', no absolute paths" in info.value.fix
    report = verify_dataset("affectnet7", root, progress=False, splits=["train"])
    bad = [p for p in report.problems if p.kind == "bad_path"]
    assert [p.file for p in bad] == [f"{csv_path}:3", f"{csv_path}:4"] and not report.ok
    assert f"resolves to {outside}" in bad[0].expectation


@refused
def test_rafdb_symlink_leading_out_of_the_image_folder_refused(tmp_path):
    root = tmp_path / "raf"
    fakes.make_rafdb(root)
    outside = _outside_image(tmp_path)
    link = root / "Image" / "aligned" / "train_00003_aligned.jpg"
    link.unlink()
    os.symlink(outside, link)
    with pytest.raises(LabelFileError, match=f"resolves to {outside}") as info:
        build_dataset("rafdb", "train", root)
    assert info.value.file == f"{root / 'EmoLabel' / 'list_patition_label.txt'}:3"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = build_dataset("rafdb", "train", root, on_corrupt="skip")
    assert len(ds) == 6 and ds.skipped == 1 and ds.report.count("bad_path") == 1


@handled
def test_a_linked_image_folder_is_still_accepted(tmp_path):
    """The folder the list names into may live on another disk; only names leading out of it are refused."""
    real = tmp_path / "disk2"
    fakes.make_rafdb(real)
    root = tmp_path / "raf"
    (root / "Image").mkdir(parents=True)
    os.symlink(real / "EmoLabel", root / "EmoLabel")
    os.symlink(real / "Image" / "aligned", root / "Image" / "aligned")
    assert len(build_dataset("rafdb", "train", root)) == 7


@refused
def test_ferplus_and_synthfer_names_outside_the_root_refused(tmp_path):
    fp = tmp_path / "ferplus"
    fakes.make_ferplus(fp)
    label_path = fp / "fer2013new.csv"
    lines = label_path.read_text().splitlines()
    lines[1] = lines[1].replace("fer0000000.png", "../../elsewhere/secret.png")
    fakes.write_lines(label_path, lines)
    with pytest.raises(LabelFileError, match="'../../elsewhere/secret.png' leads outside") as info:
        build_dataset("ferplus", "train", fp)
    assert info.value.file == f"{label_path}:2"

    sf = tmp_path / "synth"
    fakes.make_synthfer_folder(sf)
    manifest = sf / "manifest.csv"
    text = manifest.read_text().replace("images/train/train_000001.png", "/etc/hostname")
    manifest.write_text(text)
    report = verify_dataset("synthfer", sf, progress=False, splits=["train"])
    (bad,) = [p for p in report.problems if p.kind == "bad_path"]
    assert bad.file == f"{manifest}:3" and "'/etc/hostname' leads outside" in bad.expectation


# -- item 7: skips that reach the report ------------------------------------------------------------------


@handled
def test_corrupt_stand_in_is_warned_about_and_counted(tmp_path, capsys):
    root = tmp_path / "sfew"
    fakes.make_class_folders(root, SFEW, ["Angry", "Happy"], per_class=3)
    for i in (0, 1):  # the first Angry image and the stand-in the loader would try first
        fakes.write_corrupt(root / "Train" / "Angry" / f"angry_{i:03d}.png")
    ds = build_dataset("sfew2", "train", root, image_size=32, on_corrupt="skip")
    with pytest.warns(UserWarning) as caught:
        sample = ds[0]
    texts = [str(w.message) for w in caught]
    assert any("angry_000.png (counted" in t for t in texts)
    assert any("angry_001.png, met while looking for a stand-in for" in t for t in texts)
    assert sample["meta"]["substituted_for"] == ds.records[0].id and sample["meta"]["path"].endswith("angry_002.png")
    assert ds.skipped == 2 and ds.report.count("corrupt") == 2
    assert main(["data", "verify", "sfew2", "--root", str(root), "--json"]) == 1
    splits = {s["split"]: s for s in json.loads(capsys.readouterr().out)["splits"]}
    assert splits["train"]["skipped"] == 2 and splits["val"]["skipped"] == 0


# -- words ------------------------------------------------------------------------------------------------


@refused
def test_verify_lists_each_label_file_problem_once_and_quotes_the_files_values(tmp_path, capsys):
    fakes.make_rafdb(tmp_path, conflict=True)
    label_file = tmp_path / "EmoLabel" / "list_patition_label.txt"
    with open(label_file, "ab") as fh:
        fh.write(b"garbage line\r\n")
    assert main(["data", "verify", "rafdb", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("cannot parse 'garbage line'") == 1
    # train_00002.jpg is 2 (fear) on line 2 and 3 (disgust) on line 13: the file's values, not canonical ids
    assert "'train_00002.jpg' listed with label 3 here but 2 on line 2" in out


@refused
def test_unknown_dataset_message_has_no_stray_quotes(tmp_path, capsys):
    assert main(["data", "verify", "nosuch", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ferlib data verify: unknown dataset nosuch (no manifest ") and '"' not in err
    with pytest.raises(KeyError) as info:
        build_dataset("nosuch", "train", tmp_path)
    assert str(info.value).startswith("unknown dataset nosuch")


@refused
def test_ran_occlusion_line_hint_shows_the_occlusion_format(tmp_path):
    from ferlib.data.ran_lists import parse_rafdb_list

    path = fakes.write_lines(tmp_path / "rafdb_occlusion_list.txt", ["test_0001_aligned 3 1", "3/test_0003 3 2"])
    with pytest.raises(LabelFileError) as info:
        parse_rafdb_list(path)
    assert info.value.file == f"{path}:2"
    assert "expected 'test_0003_aligned <label> <occlusion type>'" in str(info.value) and "<label>/" not in str(
        info.value
    )


@refused
def test_ran_manifest_without_subset_names_the_evaluate_command(tmp_path):
    fakes.make_rafdb(tmp_path)
    with pytest.raises(ValueError) as info:
        build_dataset("ran_rafdb", "test", tmp_path)
    text = str(info.value)
    assert "ran_rafdb holds the RAN test lists of rafdb (occlusion, pose30, pose45), not a 'test' split" in text
    assert "`ferlib evaluate --dataset rafdb --subset occlusion` (or --subset pose30 or --subset pose45)" in text


@handled
@pytest.mark.usefixtures("tiny_models")
def test_skip_counts_reach_the_cache_and_metrics_json(tmp_path):
    from ferlib.data.cache import cached_dataset
    from ferlib.train import TrainConfig, train
    from test_train_helpers import TINY

    root = tmp_path / "sfew"
    tree = fakes.make_class_folders(root, SFEW, ["Angry", "Happy"], per_class=6, corrupt=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = build_dataset("sfew2", "train", root, image_size=32, on_corrupt="skip")
        cache = cached_dataset(ds, tmp_path / "cache", progress=False)
        assert cache.skipped == 1
        again = cached_dataset(
            build_dataset("sfew2", "train", root, image_size=32, on_corrupt="skip"), tmp_path / "cache"
        )
        assert not again.built_now and again.skipped == 1  # a reused cache still reports the skip
        test = build_dataset("sfew2", "val", root, image_size=32, on_corrupt="skip")
        cfg = TrainConfig(
            model=TINY,
            recipe="ma-net",
            profile="smoke",
            epochs=1,
            batch_size=4,
            lr=0.01,
            image_size=32,
            run_dir=str(tmp_path / "run"),
            progress=False,
            tensorboard=False,
            val_fraction=0.2,
        )
        result = train(
            cfg,
            train_dataset=build_dataset("sfew2", "train", root, image_size=32, on_corrupt="skip"),
            test_dataset=test,
        )
    metrics = json.loads((Path(result.run_dir) / "metrics.json").read_text())
    assert metrics["skipped"] == {"train": 1, "test": 0}, tree.corrupt
