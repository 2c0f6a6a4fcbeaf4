"""Cached, resumable extraction: counts, no-face/multi-face records, SIGKILL and Ctrl-C resume, reading back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ferlib.landmarks import (
    attach_landmarks,
    canonical_template,
    create_detector,
    extract_landmarks,
    load_landmarks_file,
)
from ferlib.landmarks.examples import faces_side_by_side, lfw_face
from ferlib.landmarks.extract import LandmarkTable, bytes_hash, journal_path, pixels_hash, record_key

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[2]
N_FACES = 40


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory) -> Path:
    """40 LFW faces (96 px), a flat grey image, two faces side by side and a corrupt JPEG."""
    root = tmp_path_factory.mktemp("faces")
    (root / "faces").mkdir()
    for i in range(N_FACES):
        Image.fromarray(lfw_face(i, 64, 96)).save(root / "faces" / f"lfw_{i:03d}.png")
    Image.fromarray(np.full((120, 100, 3), 128, np.uint8)).save(root / "grey.png")
    Image.fromarray(faces_side_by_side(lfw_face(0, 160), lfw_face(3, 96, 144))).save(root / "pair.png")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


@pytest.fixture(scope="module")
def mtcnn():
    return create_detector("mtcnn")


def by_path(records: dict) -> dict:
    return {r["path"]: r for r in records.values()}


def test_extract_folder_records_and_counts(image_dir, mtcnn, tmp_path):
    out = tmp_path / "lm.jsonl"
    report = extract_landmarks(image_dir, out, detector=mtcnn, batch_size=8, progress=False)
    total = N_FACES + 3
    assert report.total == total and report.computed == total and report.reused == 0
    assert not journal_path(out).exists()
    records = load_landmarks_file(out)
    assert len(records) == total
    recs = by_path(records)
    for key, r in records.items():
        assert key == record_key(r["path"], r["hash"], r["root"]) and r["root"] == image_dir.resolve().as_posix()
    grey = recs["grey.png"]
    assert grey["status"] == "no_face" and grey["fallback"] and grey["n_faces"] == 0
    np.testing.assert_allclose(grey["landmarks5"], canonical_template((120, 100)), atol=1e-3)
    pair = recs["pair.png"]
    assert pair["status"] == "multiple_faces" and pair["n_faces"] == 2
    assert (pair["box"][0] + pair["box"][2]) / 2 < 160, "the larger face (left half) is kept"
    bad = recs["corrupt.jpg"]
    assert bad["status"] == "unreadable" and "cannot decode image file corrupt.jpg" in bad["error"]
    found = [r for p, r in recs.items() if p.startswith("faces/") and r["status"] == "ok"]
    assert len(found) >= 30, "MTCNN finds most enlarged LFW faces"
    for r in found:
        re, le, nose, rm, lm = np.asarray(r["landmarks5"])
        assert re[0] < le[0] and max(re[1], le[1]) < nose[1] < min(rm[1], lm[1])
    c = report.counts
    assert c["multiple_faces"] == 1 and c["unreadable"] == 1 and c["fallback"] == c["no_face"] >= 1
    assert c["ok"] + c["multiple_faces"] + c["no_face"] + c["unreadable"] == total
    header = json.loads(out.read_text().splitlines()[0])
    assert header["format"] == "ferlib-landmarks" and header["counts"]["total"] == total

    # a cached rerun recomputes nothing; a changed file is recomputed and replaces its old record
    again = extract_landmarks(image_dir, out, detector=mtcnn, progress=False)
    assert again.computed == 0 and again.reused == total
    Image.fromarray(np.full((120, 100, 3), 90, np.uint8)).save(image_dir / "grey.png")
    changed = extract_landmarks(image_dir, out, detector=mtcnn, progress=False)
    assert changed.computed == 1
    after = by_path(load_landmarks_file(out))
    assert len(after) == total and after["grey.png"]["hash"] != grey["hash"]


def test_ctrl_c_keeps_finished_batches(image_dir, mtcnn, tmp_path):
    out = tmp_path / "lm.jsonl"

    def interrupt(done: int) -> None:
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_landmarks(image_dir / "faces", out, detector=mtcnn, batch_size=4, progress=False, on_batch=interrupt)
    assert not out.exists()
    assert len(load_landmarks_file(out)) == 8  # read from the journal
    resumed = extract_landmarks(image_dir / "faces", out, detector=mtcnn, batch_size=4, progress=False)
    assert resumed.reused == 8 and resumed.computed == N_FACES - 8


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ferlib", "landmarks", *args]


def test_resume_after_sigkill(image_dir, tmp_path):
    out = tmp_path / "killed.jsonl"
    journal = journal_path(out)
    args = (str(image_dir / "faces"), "--out", str(out), "--batch-size", "2", "--threads", "1", "--no-progress")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(_cli(*args), cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_bytes().count(b"\n") >= 2:  # first batch done
            break
        time.sleep(0.02)
    assert proc.poll() is None, "extraction finished before it could be killed: " + proc.stderr.read().decode()[-500:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not out.exists(), "a killed run must not leave a final file"
    # Simulate the kill landing mid-write: a torn last line.
    with open(journal, "ab") as fh:
        fh.write(b'{"path": "faces/lfw_9')
    done = LandmarkTable.from_file(out)  # the journal alone, torn line ignored
    assert done.ignored_lines == 1 and 2 <= len(done) < N_FACES
    before = dict(done.records)

    result = subprocess.run(_cli(*args, "--json"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["reused"] == len(before), "finished images must not be recomputed"
    assert report["computed"] == N_FACES - len(before) and report["total"] == N_FACES
    assert not journal.exists()
    final = LandmarkTable.from_file(out, include_partial=False)  # strict: every line valid
    assert len(final) == N_FACES and final.ignored_lines == 0
    for key, rec in before.items():
        assert final.records[key] == rec


def test_damaged_final_file_is_reported(tmp_path):
    out = tmp_path / "lm.jsonl"
    out.write_text('{"format":"ferlib-landmarks","version":1}\n{"path": "a.png", "hash": "00"\n')
    with pytest.raises(ValueError, match=r"lm.jsonl line 2 is not a valid record.*--repair"):
        load_landmarks_file(out)
    with pytest.raises(FileNotFoundError, match="ferlib landmarks"):
        load_landmarks_file(tmp_path / "missing.jsonl")


def test_attach_landmarks_rescales_and_matches_paths(image_dir, mtcnn, tmp_path, monkeypatch):
    monkeypatch.chdir(image_dir)  # the relative sample paths below name real files, whose bytes are checked
    out = tmp_path / "lm.jsonl"
    extract_landmarks(image_dir / "faces", out, detector=mtcnn, progress=False)
    table = LandmarkTable.from_file(out)
    names = sorted(p.name for p in (image_dir / "faces").iterdir())[:4]
    samples = []
    for i, name in enumerate(names):
        im = Image.open(image_dir / "faces" / name).convert("RGB").resize((48, 48), Image.BILINEAR)
        path = str(image_dir / "faces" / name) if i % 2 else f"faces/{name}"  # absolute or relative
        samples.append(
            {
                "image": torch.from_numpy(np.array(im)).permute(2, 0, 1).contiguous(),
                "label": 0,
                "landmarks5": torch.full((5, 2), float("nan")),
                "meta": {"path": path},
            }
        )
    samples.append({"image": torch.zeros(3, 48, 48, dtype=torch.uint8), "label": 0, "meta": {"path": "nowhere.png"}})
    ds = attach_landmarks(samples, out)
    assert len(ds) == 5
    for i, name in enumerate(names):
        rec = table.lookup(f"faces/{name}", bytes_hash((image_dir / "faces" / name).read_bytes()))
        got = ds[i]
        assert got["meta"]["landmarks_status"] == rec["status"]
        if rec["landmarks5"] is not None:
            np.testing.assert_allclose(got["landmarks5"].numpy(), np.asarray(rec["landmarks5"]) * 48 / 96, rtol=1e-5)
    assert ds[4]["meta"]["landmarks_status"] == "missing" and torch.isnan(ds[4]["landmarks5"]).all()
    with pytest.raises(KeyError, match="no landmarks for sample 4"):
        attach_landmarks(samples, table, strict=True)[4]


def test_synthfer_annotations_backend_roundtrip(tmp_path):
    from ferlib.data.synthfer import SynthFERDataset

    ds = SynthFERDataset(n=6, seed=0, split="test", image_size=40)
    out = tmp_path / "synth.jsonl"
    report = extract_landmarks(ds, out, detector="annotations", batch_size=4, progress=False)
    assert report.counts["ok"] == 6
    table = LandmarkTable.from_file(out)
    for i in range(6):
        s = ds[i]
        rec = table.lookup(s["meta"]["id"], pixels_hash(s["image"]))
        assert rec is not None and rec["width"] == 40
        np.testing.assert_allclose(rec["landmarks5"], s["landmarks5"].numpy(), atol=1e-3)
    attached = attach_landmarks(ds, table)
    np.testing.assert_allclose(attached[2]["landmarks5"].numpy(), ds[2]["landmarks5"].numpy(), atol=1e-3)


def test_csv_export_reads_in_the_data_layer(tmp_path):
    from ferlib.data.datasets import load_landmarks_file as data_layer_load
    from ferlib.landmarks.extract import write_landmarks_csv

    pts = [[10.0, 20.0], [30.0, 20.0], [20.0, 30.0], [12.0, 40.0], [28.0, 40.0]]
    base = {"hash": "0" * 16, "width": 50, "height": 50, "backend": "mtcnn", "n_faces": 1, "fallback": False}
    records = [
        {**base, "path": "a/x.jpg", "status": "ok", "space": "file", "landmarks5": pts},
        {**base, "path": "a/y.jpg", "status": "unreadable", "space": "file", "landmarks5": None},
        {**base, "path": "train_000001", "status": "ok", "space": "sample", "landmarks5": pts},
    ]
    path, left_out = write_landmarks_csv(records, tmp_path / "lm.csv")
    assert left_out == 2
    table = data_layer_load(path)
    assert list(table) == ["a/x.jpg"]
    np.testing.assert_allclose(table["a/x.jpg"]["landmarks5"], pts)


def test_two_runs_on_one_file_are_refused(tmp_path):
    from ferlib.landmarks.extract import _Journal

    first = _Journal(tmp_path / "x.jsonl.partial", [])
    try:
        with pytest.raises(RuntimeError, match=r"another `ferlib landmarks` run \(process \d+\) is writing"):
            _Journal(tmp_path / "x.jsonl.partial", [])
    finally:
        first.close(remove=True)
    assert not list(tmp_path.iterdir())
