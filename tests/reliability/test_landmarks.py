"""Reliability: bad input to landmark extraction and landmark files (issue 12, items 1–3 and 10, words, litter).

Every case builds its bad input on the fly and asserts the refusal text or the correct handling. Most cases
use a small fake detector (points derived from the pixels, so two different images get different points);
the MTCNN cases use the real detector on tiny images.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ferlib.cli import main
from ferlib.data.datasets import build_dataset
from ferlib.data.errors import LabelFileError
from ferlib.data.landmark_files import (
    LandmarksFileError,
    LandmarkTable,
    bytes_hash,
    journal_path,
    load_landmarks_file,
)
from ferlib.landmarks import Detector, Face, canonical_template, create_detector, extract_landmarks
from ferlib.landmarks.examples import faces_side_by_side, lfw_face
from ferlib.landmarks.journal import ExtractionJournal

torch.set_num_threads(1)
REFUSED = pytest.mark.reliability("refused")
HANDLED = pytest.mark.reliability("handled")


class PixelDetector(Detector):
    """One face per image; its points are the template shifted by the image's mean brightness (0–8 px)."""

    name = "pixels"

    def __init__(self, fail_on_mean: float | None = None) -> None:
        self.fail_on_mean = fail_on_mean
        self.calls = 0

    @staticmethod
    def points_for(image: np.ndarray) -> np.ndarray:
        return canonical_template(image.shape[:2]) + float(image.mean()) / 255.0 * 8.0

    def detect_arrays(self, images: list[np.ndarray]) -> list[list[Face]]:
        self.calls += 1
        if self.fail_on_mean is not None and any(abs(im.mean() - self.fail_on_mean) < 0.5 for im in images):
            raise RuntimeError("simulated detector failure")
        out = []
        for im in images:
            h, w = im.shape[:2]
            out.append([Face(np.array([1, 1, w - 2, h - 2]), 0.99, self.points_for(im))])
        return out


def _image(path: Path, seed: int, size: tuple[int, int] = (40, 44), value: int | None = None) -> Path:
    rng = np.random.default_rng(seed)
    arr = (
        np.full((size[1], size[0], 3), value, np.uint8)
        if value is not None
        else rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _folder_set(root: Path) -> None:
    """CAER-S layout: train/<Class>/x.png and test/<Class>/x.png with the same names, different pixels."""
    for s, split in enumerate(("train", "test")):
        for c, cls in enumerate(("Happy", "Sad")):
            for i in range(2):
                _image(root / split / cls / f"{i:04d}.png", seed=1000 * s + 10 * c + i)


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["landmarks", *args, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def _write_file(path: Path, records: list[dict]) -> Path:
    lines = [json.dumps({"format": "ferlib-landmarks", "version": 2})] + [json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def _record(path: str, content: str, pts, w: int = 40, h: int = 44) -> dict:
    return {"path": path, "hash": content, "width": w, "height": h, "backend": "pixels", "space": "file",
            "status": "ok", "n_faces": 1, "landmarks5": pts, "box": [1, 1, w - 2, h - 2], "score": 0.9,
            "fallback": False}  # fmt: skip


# -- item 1: records of two folders with the same relative names --------------------------------------------


@HANDLED
def test_train_then_test_into_one_file_keeps_both_and_each_image_gets_its_own_points(tmp_path):
    _folder_set(tmp_path / "caer")
    out = tmp_path / "lm.jsonl"
    det = PixelDetector()
    extract_landmarks(tmp_path / "caer" / "train", out, detector=det, progress=False)
    extract_landmarks(tmp_path / "caer" / "test", out, detector=det, progress=False)
    table = LandmarkTable.from_file(out)
    assert len(table) == 8, "the test run must not replace the train records"
    assert {r["path"] for r in table.records.values()} == {f"{c}/{i:04d}.png" for c in ("Happy", "Sad") for i in (0, 1)}
    for split in ("train", "test"):
        ds = build_dataset("caers", split, tmp_path / "caer", image_size=40, landmarks_file=out)
        assert ds.landmark_coverage()["usable"] == 4
        for i, rec in enumerate(ds.records):
            arr = np.asarray(Image.open(rec.path).convert("RGB"))
            expected = PixelDetector.points_for(arr)
            got = ds[i]["landmarks5"].numpy()
            # the sample is the 40×44 file resized to 40×40: y scales by 40/44 (pixel-centre convention)
            want = np.stack([expected[:, 0], (expected[:, 1] + 0.5) * 40 / 44 - 0.5], axis=1)
            np.testing.assert_allclose(got, want, atol=1e-3, err_msg=f"{split} {rec.path}")


# -- item 2: a record applies only to the image it was computed from --------------------------------------


@HANDLED
def test_file_made_for_other_pixels_counts_as_mismatched_not_applied(tmp_path):
    _folder_set(tmp_path / "a")
    out = tmp_path / "lm.jsonl"
    extract_landmarks(tmp_path / "a" / "train", out, detector=PixelDetector(), progress=False)
    # same names, other content and size
    for c, cls in enumerate(("Happy", "Sad")):
        for i in range(2):
            _image(tmp_path / "b" / "train" / cls / f"{i:04d}.png", seed=77 + c * 3 + i, size=(60, 50))
    ds = build_dataset("caers", "train", tmp_path / "b", image_size=32, landmarks_file=out)
    cov = ds.landmark_coverage()
    sample = ds[0]
    assert cov["mismatched"] == 4 and cov["usable"] == 0 and cov["total"] == 4
    assert sample["meta"]["landmarks_status"] == "mismatched" and torch.isnan(sample["landmarks5"]).all()


@HANDLED
def test_file_matching_none_of_the_samples_is_reported_as_missing(tmp_path):
    _folder_set(tmp_path / "caer")
    _image(tmp_path / "elsewhere" / "z.png", seed=5)
    out = tmp_path / "lm.jsonl"
    extract_landmarks(tmp_path / "elsewhere", out, detector=PixelDetector(), progress=False)
    ds = build_dataset("caers", "test", tmp_path / "caer", image_size=32, landmarks_file=out)
    cov = ds.landmark_coverage()
    assert cov == {**cov, "missing": 4, "usable": 0, "total": 4}
    assert ds[1]["meta"]["landmarks_status"] == "missing"


@HANDLED
def test_attach_landmarks_uses_a_record_only_for_its_own_content(tmp_path):
    from ferlib.landmarks import attach_landmarks

    a = _image(tmp_path / "img" / "a.png", seed=1)
    out = tmp_path / "lm.jsonl"
    extract_landmarks(tmp_path / "img", out, detector=PixelDetector(), progress=False)
    _image(a, seed=2)  # the file changed after extraction
    samples = [{"image": torch.zeros(3, 44, 40, dtype=torch.uint8), "label": 0, "meta": {"path": str(a)}}]
    ds = attach_landmarks(samples, out)
    assert ds[0]["meta"]["landmarks_status"] == "mismatched" and torch.isnan(ds[0]["landmarks5"]).all()
    assert ds.landmark_coverage()["mismatched"] == 1


@HANDLED
def test_csv_with_hash_column_is_not_applied_to_other_content(tmp_path):
    from ferlib.landmarks.extract import write_landmarks_csv

    _folder_set(tmp_path / "caer")
    out = tmp_path / "lm.jsonl"
    extract_landmarks(tmp_path / "caer" / "train", out, detector=PixelDetector(), progress=False)
    csv_path, _ = write_landmarks_csv(load_landmarks_file(out).values(), tmp_path / "lm.csv")
    assert "hash" in csv_path.read_text().splitlines()[0]
    own = build_dataset("caers", "train", tmp_path / "caer", image_size=32, landmarks_file=csv_path)
    assert own.landmark_coverage()["usable"] == 4
    other = build_dataset("caers", "test", tmp_path / "caer", image_size=32, landmarks_file=csv_path)
    cov = other.landmark_coverage()
    assert cov["mismatched"] == 4 and cov["usable"] == 0


# -- item 3: impossible landmarks ---------------------------------------------------------------------------


@REFUSED
def test_nan_inf_and_far_outside_points_are_marked_invalid_with_file_and_line(tmp_path):
    _image(tmp_path / "img" / "ok.png", seed=1)
    good = PixelDetector.points_for(np.asarray(Image.open(tmp_path / "img" / "ok.png").convert("RGB"))).tolist()
    nan = [[float("nan"), 1.0]] + good[1:]
    inf = [[float("inf"), 1.0]] + good[1:]
    far = [[4000.0, -3000.0]] + good[1:]
    path = _write_file(
        tmp_path / "lm.jsonl",
        [_record("a.png", "1" * 16, nan), _record("b.png", "2" * 16, inf), _record("c.png", "3" * 16, far),
         _record("ok.png", bytes_hash((tmp_path / "img" / "ok.png").read_bytes()), good)],
    )  # fmt: skip
    with pytest.warns(UserWarning) as caught:
        table = LandmarkTable.from_file(path)
    message = str(caught[0].message)
    assert "3 record(s) with impossible points are marked invalid" in message
    assert f"{path}:2: landmarks5 holds NaN or inf" in message and f"{path}:3:" in message
    assert re.search(rf"{re.escape(str(path))}:4: point \(4000.0, -3000.0\) lies far outside the 40×44 image", message)
    assert table.counts()["invalid"] == 3 and table.counts()["ok"] == 1
    assert np.isnan(table.landmarks5(table.lookup("a.png", "1" * 16))).all()


@REFUSED
def test_csv_with_nan_points_is_refused_with_file_and_line(tmp_path):
    path = tmp_path / "lm.csv"
    path.write_text("path,lm5\na.png,1 2 3 4 5 6 7 8 9 10\nb.png,1 2 nan 4 5 6 7 8 9 10\n")
    with pytest.raises(LabelFileError, match=r"lm.csv:3: landmarks hold NaN or inf"):
        load_landmarks_file(path)


@HANDLED
def test_csv_points_far_outside_the_image_are_not_used(tmp_path):
    _folder_set(tmp_path / "caer")
    path = tmp_path / "lm.csv"
    path.write_text("path,lm5\n0000.png,10 10 30 10 20 20 12 30 5000 30\n")
    ds = build_dataset("caers", "train", tmp_path / "caer", image_size=32, landmarks_file=path)
    cov = ds.landmark_coverage()
    assert cov["invalid"] == 2 and cov["missing"] == 2 and cov["usable"] == 0  # Happy/0000.png and Sad/0000.png
    sample = next(ds[i] for i in range(len(ds)) if ds.records[i].path.endswith("0000.png"))
    assert sample["meta"]["landmarks_status"] == "invalid" and "far outside" in sample["meta"]["landmarks_invalid"]


# -- item 10: crashes where a record belongs -----------------------------------------------------------------


@pytest.fixture(scope="module")
def mtcnn():
    return create_detector("mtcnn")


@HANDLED
def test_mtcnn_image_smaller_than_min_face_size_is_recorded_too_small(tmp_path, mtcnn):
    _image(tmp_path / "img" / "tiny.png", seed=1, size=(15, 15))
    Image.fromarray(lfw_face(0, 64, 96)).save(tmp_path / "img" / "face.png")
    out = tmp_path / "lm.jsonl"
    report = extract_landmarks(tmp_path / "img", out, detector=mtcnn, progress=False)
    recs = {r["path"]: r for r in LandmarkTable.from_file(out).records.values()}
    assert recs["tiny.png"]["status"] == "too_small" and recs["tiny.png"]["fallback"]
    assert recs["face.png"]["status"] == "ok"
    assert report.counts["too_small"] == 1
    again = extract_landmarks(tmp_path / "img", out, detector=mtcnn, progress=False)  # a rerun does not crash either
    assert again.reused == 2


@HANDLED
def test_detector_error_costs_only_the_failing_image_and_is_retried(tmp_path):
    for i in range(3):
        _image(tmp_path / "img" / f"{i}.png", seed=i)
    _image(tmp_path / "img" / "bad.png", seed=0, value=77)
    out = tmp_path / "lm.jsonl"
    report = extract_landmarks(tmp_path / "img", out, detector=PixelDetector(fail_on_mean=77), progress=False)
    recs = {r["path"]: r for r in LandmarkTable.from_file(out).records.values()}
    assert recs["bad.png"]["status"] == "detector_error" and "simulated detector failure" in recs["bad.png"]["error"]
    assert all(recs[f"{i}.png"]["status"] == "ok" for i in range(3))
    assert report.counts["detector_error"] == 1
    rerun = extract_landmarks(tmp_path / "img", out, detector=PixelDetector(), progress=False)
    assert rerun.computed == 1 and rerun.reused == 3  # only the failed image is tried again


@HANDLED
def test_dataset_mode_records_a_corrupt_image_as_unreadable_and_goes_on(tmp_path, capsys):
    import fakes

    tree = fakes.make_rafdb(tmp_path / "raf", corrupt=True)
    out = tmp_path / "raf.jsonl"
    code, _, err = _cli(capsys, "rafdb", "--root", str(tmp_path / "raf"), "--out", str(out), "--image-size", "32")
    assert code == 0, err
    recs = list(LandmarkTable.from_file(out).records.values())
    assert len(recs) == tree.counts["train"]
    bad = [r for r in recs if r["status"] == "unreadable"]
    assert len(bad) == 1 and bad[0]["path"].endswith("train_00002_aligned.jpg") and "cannot decode" in bad[0]["error"]


@REFUSED
def test_annotations_backend_on_an_image_file_is_refused(tmp_path, capsys):
    img = _image(tmp_path / "a.png", seed=1)
    code, _, err = _cli(capsys, str(img), "--backend", "annotations", "--out", str(tmp_path / "x.jsonl"))
    assert code == 2 and "Traceback" not in err
    assert err.startswith("ferlib landmarks: the 'annotations' backend reads the landmarks a dataset ships")
    assert "use --backend mtcnn or retinaface for image files" in err
    assert not (tmp_path / "x.jsonl").exists()


@REFUSED
def test_device_cuda_without_a_gpu_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    img = _image(tmp_path / "a.png", seed=1)
    code, _, err = _cli(capsys, str(img), "--device", "cuda", "--out", str(tmp_path / "x.jsonl"))
    assert code == 2 and err.count("\n") == 1
    assert "ferlib landmarks: device 'cuda' requested but torch.cuda.is_available() is False" in err
    assert "--device cpu" in err


@HANDLED
def test_mtcnn_downscales_large_images_and_maps_points_back(mtcnn, monkeypatch):
    from ferlib.landmarks.mtcnn import MTCNNDetector

    det = MTCNNDetector(max_size=1600)
    seen = []

    def fake_detect(batch, landmarks=True):
        seen.append(batch.shape)
        n, h, w = batch.shape[:3]
        box = np.array([[w * 0.25, h * 0.25, w * 0.75, h * 0.75]])
        pts = np.array(
            [[[w * 0.4, h * 0.4], [w * 0.6, h * 0.4], [w * 0.5, h * 0.5], [w * 0.4, h * 0.6], [w * 0.6, h * 0.6]]]
        )
        return [box] * n, [np.array([0.99])] * n, [pts] * n

    monkeypatch.setattr(det._mtcnn, "detect", fake_detect)
    big = np.zeros((2400, 3600, 3), np.uint8)  # 8.6 megapixels
    face = det.detect([big])[0][0]
    assert seen[0][1:3] == (1067, 1600), "the long side is brought down to 1600 px"
    np.testing.assert_allclose(face.landmarks5[2], [1800, 1200], atol=1.0)
    np.testing.assert_allclose(face.box, [900, 600, 2700, 1800], atol=1.0)

    # the real detector: a face enlarged 9× (1728 px) is found at the same place as on the small image
    small = lfw_face(0)  # 192 px
    ref = mtcnn.detect([small])[0][0].landmarks5
    large = np.asarray(Image.fromarray(small).resize((1728, 1728), Image.BILINEAR))
    got = MTCNNDetector(max_size=1600).detect([large])[0][0].landmarks5
    np.testing.assert_allclose(got / 9.0, ref, atol=2.0)


# -- words: not a landmarks file, damaged file, --repair -----------------------------------------------------


@REFUSED
def test_out_pointing_at_a_users_notes_is_refused_and_left_untouched(tmp_path, capsys):
    img = _image(tmp_path / "img" / "a.png", seed=1)
    notes = tmp_path / "notes.txt"
    notes.write_text("my thesis notes\nline two\n")
    code, _, err = _cli(capsys, str(img), "--backend", "mtcnn", "--out", str(notes))
    assert code == 2 and "Traceback" not in err
    assert f"ferlib landmarks: {notes} is not a ferlib landmarks file" in err and "damaged" not in err
    assert "choose another --out" in err
    assert notes.read_text() == "my thesis notes\nline two\n"
    assert not journal_path(notes).exists() and not Path(str(journal_path(notes)) + ".lock").exists()


@REFUSED
def test_damaged_file_is_refused_with_the_repair_hint(tmp_path):
    path = _write_file(tmp_path / "lm.jsonl", [_record("a.png", "1" * 16, [[10, 10]] * 5)])
    with open(path, "a") as fh:
        fh.write('{"path": "b.png", "hash": \n')
    with pytest.raises(LandmarksFileError, match=r"lm.jsonl line 3 is not a valid record.*--repair"):
        load_landmarks_file(path)


@HANDLED
def test_repair_keeps_the_readable_records_and_moves_the_damaged_file_aside(tmp_path, capsys):
    _folder_set(tmp_path / "caer")
    out = tmp_path / "lm.jsonl"
    extract_landmarks(tmp_path / "caer" / "train", out, detector=PixelDetector(), progress=False)
    lines = out.read_text().splitlines()
    lines[2] = lines[2][:25]  # a damaged line in the middle
    out.write_text("\n".join(lines) + "\n")
    with pytest.raises(LandmarksFileError, match="--repair"):
        extract_landmarks(tmp_path / "caer" / "train", out, detector=PixelDetector(), progress=False)
    notices = []
    report = extract_landmarks(
        tmp_path / "caer" / "train", out, detector=PixelDetector(), progress=False, repair=True, notice=notices.append
    )
    assert report.reused == 3 and report.computed == 1
    assert "kept 3 readable record(s), dropped 1 line(s)" in notices[0]
    assert (tmp_path / "lm.jsonl.damaged").read_text().splitlines()[2] == lines[2]
    assert len(LandmarkTable.from_file(out)) == 4


# -- litter: crashed runs, stale locks, concurrent runs ------------------------------------------------------


@HANDLED
def test_a_crash_saves_finished_work_and_leaves_no_partial_or_lock(tmp_path):
    for i in range(6):
        _image(tmp_path / "img" / f"{i}.png", seed=i)
    out = tmp_path / "lm.jsonl"

    def crash(done: int) -> None:
        if done >= 2:
            raise RuntimeError("disk trouble")

    notices = []
    with pytest.raises(RuntimeError, match="disk trouble"):
        extract_landmarks(
            tmp_path / "img", out, detector=PixelDetector(), batch_size=2, progress=False, on_batch=crash,
            notice=notices.append,
        )  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img", "lm.jsonl"], "no .partial or .lock left"
    assert "2 finished record(s) are saved" in notices[0]
    with pytest.warns(
        UserWarning, match=r"lm.jsonl is incomplete: its run stopped early \(RuntimeError: disk trouble\)"
    ):
        assert len(LandmarkTable.from_file(out)) == 2
    rerun = extract_landmarks(tmp_path / "img", out, detector=PixelDetector(), batch_size=2, progress=False)
    assert rerun.reused == 2 and rerun.computed == 4
    assert LandmarkTable.from_file(out).complete


@HANDLED
def test_stale_lock_of_a_dead_run_is_removed_with_a_message(tmp_path):
    _image(tmp_path / "img" / "a.png", seed=1)
    out = tmp_path / "lm.jsonl"
    lock = Path(str(journal_path(out)) + ".lock")
    lock.write_text("999999")  # a run that died without cleaning up
    notices = []
    extract_landmarks(tmp_path / "img", out, detector=PixelDetector(), progress=False, notice=notices.append)
    assert notices == [f"removed a stale lock {lock} left by a run that ended (process 999999)"]
    assert not lock.exists() and not journal_path(out).exists() and out.exists()


@REFUSED
def test_concurrent_extraction_gets_one_line(tmp_path, capsys):
    img = _image(tmp_path / "img" / "a.png", seed=1)
    out = tmp_path / "lm.jsonl"
    holder = ExtractionJournal(journal_path(out), [])
    try:
        code, _, err = _cli(capsys, str(img), "--out", str(out))
    finally:
        holder.close(remove=True)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert re.match(
        r"ferlib landmarks: another `ferlib landmarks` run \(process \d+\) is writing .*lm.jsonl.partial", err
    )
    assert "choose another --out" in err


# -- issue 11 item 9: --json prints every face ---------------------------------------------------------------


@HANDLED
def test_json_for_one_image_prints_every_face_with_box_score_and_points(tmp_path, capsys):
    img = tmp_path / "pair.png"
    Image.fromarray(faces_side_by_side(lfw_face(0, 160), lfw_face(3, 96, 144))).save(img)
    code, out, err = _cli(capsys, str(img), "--json", "--out", str(tmp_path / "lm.jsonl"))
    assert code == 0, err
    report = json.loads(out)
    (entry,) = report["images"]
    assert entry["path"] == "pair.png" and entry["status"] == "multiple_faces" and len(entry["faces"]) == 2
    for face in entry["faces"]:
        assert len(face["box"]) == 4 and 0 < face["score"] <= 1 and np.asarray(face["landmarks5"]).shape == (5, 2)
    # cached: a rerun prints the same faces
    code, out2, _ = _cli(capsys, str(img), "--json", "--out", str(tmp_path / "lm.jsonl"))
    assert json.loads(out2)["images"] == report["images"]


@REFUSED
def test_out_pointing_at_a_folder_is_refused(tmp_path, capsys):
    img = _image(tmp_path / "img" / "a.png", seed=1)
    (tmp_path / "outdir").mkdir()
    code, _, err = _cli(capsys, str(img), "--out", str(tmp_path / "outdir"))
    assert code == 2 and err.count("\n") == 1
    assert f"--out {tmp_path / 'outdir'} is a folder; give a file path such as" in err


@REFUSED
def test_a_foreign_file_where_the_journal_goes_is_refused_and_kept(tmp_path):
    _image(tmp_path / "img" / "a.png", seed=1)
    out = tmp_path / "lm.jsonl"
    foreign = journal_path(out)
    foreign.write_text("draft one\ndraft two\n")
    with pytest.raises(LandmarksFileError, match=r"lm.jsonl.partial is not the journal of a ferlib landmarks run"):
        extract_landmarks(tmp_path / "img", out, detector=PixelDetector(), progress=False)
    assert foreign.read_text() == "draft one\ndraft two\n" and not out.exists()


@HANDLED
def test_coverage_without_a_landmarks_file_counts_the_shipped_points(tmp_path):
    import fakes

    fakes.make_rafdb(tmp_path / "raf")
    shipped = build_dataset("rafdb", "train", tmp_path / "raf", image_size=32, variant="original").landmark_coverage()
    assert shipped["total"] == 7 and shipped["ok"] == 7 and shipped["usable"] == 7 and shipped["missing"] == 0
    aligned = build_dataset("rafdb", "train", tmp_path / "raf", image_size=32).landmark_coverage()
    assert aligned["missing"] == 7 and aligned["usable"] == 0  # RAF-DB ships points for the original images only
