"""``ferlib data verify`` and the other ``ferlib data`` commands."""

from __future__ import annotations

import json

import pytest

import fakes
from ferlib.cli import main
from ferlib.data.verify import verify_dataset


def test_verify_clean_copy_reports_count_difference_but_passes(tmp_path):
    fakes.make_rafdb(tmp_path, duplicate=True)
    report = verify_dataset("rafdb", tmp_path, progress=False)
    assert report.ok
    train = [s for s in report.splits if s.split == "train"][0]
    assert train.loaded == 7 and train.expected == 12271 and train.difference == 7 - 12271
    assert train.decoded == 7 and train.duplicates == 1
    text = report.summary()
    assert "differs by -12264" in text and "loaded once" in text and text.endswith("result: OK")


def test_verify_finds_missing_and_corrupt_files(tmp_path):
    tree = fakes.make_rafdb(tmp_path, n_train=14, missing=True, corrupt=True)
    report = verify_dataset("rafdb", tmp_path, progress=False)
    assert not report.ok
    kinds = {p.kind: p for p in report.problems}
    assert kinds["missing"].file == str(tree.missing[0])
    assert kinds["corrupt"].file == str(tree.corrupt[0]) and "re-extract" in kinds["corrupt"].fix
    assert "result: FAILED" in report.summary()


def test_verify_layout_problem_names_file_and_fix(tmp_path):
    report = verify_dataset("affectnet7", tmp_path, progress=False)
    assert not report.ok
    files = [p.file for p in report.problems]
    assert str(tmp_path / "Manually_Annotated_file_lists/training.csv") in files
    assert all("request it at" in p.fix for p in report.problems)


def test_verify_every_family_on_fakes(tmp_path):
    fakes.make_kdef(tmp_path / "kdef")
    fakes.make_ckplus(tmp_path / "ck")
    fakes.make_fer2013(tmp_path / "fer")
    fakes.make_class_folders(tmp_path / "sfew", {"train": "Train", "val": "Val"}, ["Angry", "Happy"])
    for name, root in (("kdef", "kdef"), ("ckplus", "ck"), ("fer2013", "fer"), ("sfew2", "sfew")):
        report = verify_dataset(name, tmp_path / root, progress=False, max_images=3)
        assert report.ok, report.summary()


def test_cli_verify_exit_codes_and_json(tmp_path, capsys):
    fakes.make_rafdb(tmp_path / "good")
    assert main(["data", "verify", "rafdb", "--root", str(tmp_path / "good")]) == 0
    assert "result: OK" in capsys.readouterr().out
    fakes.make_rafdb(tmp_path / "bad", missing=True)
    assert main(["data", "verify", "rafdb", "--root", str(tmp_path / "bad"), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["problems"][0]["kind"] == "missing"
    assert {"file", "expectation", "fix"} <= set(out["problems"][0])
    assert main(["data", "verify", "nosuch", "--root", str(tmp_path)]) == 1
    assert "no manifest named 'nosuch'" in capsys.readouterr().err


def test_cli_list(capsys):
    assert main(["data", "list", "--json"]) == 0
    names = {m["name"] for m in json.loads(capsys.readouterr().out)}
    assert {"rafdb", "synthfer", "ran_ferplus"} <= names
    assert main(["data", "list"]) == 0
    assert "12,271" in capsys.readouterr().out


def test_cli_synth_then_load_and_cache(tmp_path, capsys):
    pytest.importorskip("ferlib.data.synthfer")
    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out), "--n", "8", "--seed", "2", "--image-size", "32", "--json"]) == 0
    from ferlib.data.datasets import build_dataset

    train = build_dataset("synthfer", "train", out, image_size=32)
    test = build_dataset("synthfer", "test", out, image_size=32)
    assert len(train) == 8 and len(test) >= 7
    assert {r.subject for r in train.records}.isdisjoint({r.subject for r in test.records})
    capsys.readouterr()
    assert main(["data", "cache", "synthfer", "--root", str(out), "--split", "train", "--image-size", "32",
                 "--cache-dir", str(tmp_path / "c"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n"] == 8 and info["built_now"] is True


def test_cli_occlude(tmp_path, capsys):
    pytest.importorskip("ferlib.occlusion")
    fakes.make_synthfer_folder(tmp_path / "sf", n=3, size=48)
    out = tmp_path / "occ"
    assert main(["data", "occlude", "synthfer", "--root", str(tmp_path / "sf"), "--split", "train", "--kind", "sunglasses",
                 "--out", str(out), "--image-size", "48", "--num-classes", "8", "--json"]) == 0
    from ferlib.data.datasets import build_dataset

    occluded = build_dataset("synthfer", "train", out, image_size=48, num_classes=8)
    assert len(occluded) == 3
    assert occluded[0]["meta"]["occlusion"] == "sunglasses"
    assert main(["data", "occlude", "rafdb", "--kind", "mask", "--out", str(out)]) == 1
    assert "needs root=PATH" in capsys.readouterr().err


def test_verify_ran_without_list_file_names_where_to_get_it(tmp_path):
    fakes.make_rafdb(tmp_path)
    report = verify_dataset("ran_rafdb", tmp_path, progress=False, splits=["occlusion"])
    assert not report.ok
    problem = report.problems[0]
    assert problem.file.endswith("RAN/rafdb_occlusion_list.txt")
    assert "Challenge-condition-FER-dataset" in problem.fix and "list_file=PATH" in problem.fix
