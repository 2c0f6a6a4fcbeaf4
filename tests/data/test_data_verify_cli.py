"""``ferlib data verify`` and the other ``ferlib data`` commands."""

from __future__ import annotations

import json

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
    """Per loader family: a clean fake copy verifies OK, and one with a missing file or a broken label row
    fails with a problem that names that file (or list row) and says how to fix it."""
    from ferlib.data.manifests import LOADERS

    def folders(root, bad):
        fakes.make_class_folders(
            root, {"train": "Train", "val": "Val"}, ["Angry", "Happy"], extra_folder="Bogus" if bad else None
        )  # a class folder that is no expression

    def ran(root, bad):
        fakes.make_rafdb(root)
        stems, natives = [f"test_{i:04d}" for i in range(1, 6)], [(i - 1) % 7 + 1 for i in range(1, 6)]
        lists = fakes.make_ran_lists(root, stems, natives)
        if bad:  # row 7 (after 5 rows and a repeated one): a label that is not a number
            with open(lists["occlusion"], "ab") as f:
                f.write(b"test_0003_aligned seven 2\r\n")

    def synthfer(root, bad):
        fakes.make_synthfer_folder(root)
        if bad:
            (root / "images/train/train_000002.png").unlink()

    # family: (manifest, writes the clean (bad=False) or broken (bad=True) copy, what the problem must name)
    cases = {
        "rafdb": ("rafdb", lambda r, bad: fakes.make_rafdb(r, missing=bad), "Image/aligned/train_09999_aligned.jpg"),
        "affectnet": (
            "affectnet7",
            lambda r, bad: fakes.make_affectnet(r, missing=bad),
            "Manually_Annotated_Images/999/missing.jpg",
        ),
        "fer2013": ("fer2013", lambda r, bad: fakes.make_fer2013(r, corrupt=bad), "fer2013.csv:14"),  # 1 + 12 rows + 1
        "ferplus": ("ferplus", lambda r, bad: fakes.make_ferplus(r, missing=bad), "FER2013Train/fer0000001.png"),
        "folders": ("sfew2", folders, "Train/Bogus"),
        "kdef": ("kdef", lambda r, bad: fakes.make_kdef(r, bad_name=bad), "KDEF/AF01/AF01SUX.JPG"),
        "ckplus": (
            "ckplus",
            lambda r, bad: fakes.make_ckplus(r, bad_emotion=bad),
            "Emotion/S998/001/S998_001_00000009_emotion.txt",
        ),
        "ran": ("ran_rafdb", ran, "RAN/rafdb_occlusion_list.txt:7"),
        "synthfer": ("synthfer", synthfer, "images/train/train_000002.png"),
    }
    assert set(cases) == set(LOADERS), "every loader family needs a clean and a broken case here"
    for family, (name, write, culprit) in cases.items():
        splits = ["occlusion"] if family == "ran" else None
        clean, broken = tmp_path / family / "clean", tmp_path / family / "broken"
        write(clean, False)
        write(broken, True)
        report = verify_dataset(name, clean, progress=False, max_images=3, splits=splits)
        assert report.ok, f"{family}: {report.summary()}"
        report = verify_dataset(name, broken, progress=False, max_images=3, splits=splits)
        assert not report.ok, f"{family}: the broken copy verified OK"
        named = [p for p in report.problems if culprit in p.file or culprit in p.expectation]
        assert named, f"{family}: no problem names {culprit}: {report.summary()}"
        assert all(p.fix for p in named) and "result: FAILED" in report.summary()


def test_cli_verify_exit_codes_and_json(tmp_path, capsys):
    fakes.make_rafdb(tmp_path / "good")
    assert main(["data", "verify", "rafdb", "--root", str(tmp_path / "good")]) == 0
    assert "result: OK" in capsys.readouterr().out
    fakes.make_rafdb(tmp_path / "bad", missing=True)
    assert main(["data", "verify", "rafdb", "--root", str(tmp_path / "bad"), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["problems"][0]["kind"] == "missing"
    assert {"file", "expectation", "fix"} <= set(out["problems"][0])
    assert main(["data", "verify", "nosuch", "--root", str(tmp_path)]) == 2
    assert "ferlib data verify: unknown dataset nosuch (" in capsys.readouterr().err


def test_cli_list(capsys):
    assert main(["data", "list", "--json"]) == 0
    names = {m["name"] for m in json.loads(capsys.readouterr().out)}
    assert {"rafdb", "synthfer", "ran_ferplus"} <= names
    assert main(["data", "list"]) == 0
    assert "12,271" in capsys.readouterr().out


def test_cli_synth_then_load_and_cache(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out), "--n", "8", "--seed", "2", "--image-size", "32", "--json"]) == 0
    from ferlib.data.datasets import build_dataset

    train = build_dataset("synthfer", "train", out, image_size=32)
    test = build_dataset("synthfer", "test", out, image_size=32)
    assert len(train) == 8 and len(test) >= 7
    assert {r.subject for r in train.records}.isdisjoint({r.subject for r in test.records})
    capsys.readouterr()
    assert (
        main(
            [
                "data",
                "cache",
                "synthfer",
                "--root",
                str(out),
                "--split",
                "train",
                "--image-size",
                "32",
                "--cache-dir",
                str(tmp_path / "c"),
                "--json",
            ]
        )
        == 0
    )
    info = json.loads(capsys.readouterr().out)
    assert info["n"] == 8 and info["built_now"] is True


def test_cli_occlude(tmp_path, capsys):
    """The occluded copy differs from its source inside each occluder's mask and equals it everywhere else."""
    import csv

    import numpy as np
    from PIL import Image

    from ferlib.data.datasets import build_dataset
    from ferlib.occlusion import occlude

    fakes.make_synthfer_folder(tmp_path / "sf", n=3, size=48)
    out = tmp_path / "occ"
    assert (
        main(
            [
                "data",
                "occlude",
                "synthfer",
                "--root",
                str(tmp_path / "sf"),
                "--split",
                "train",
                "--kind",
                "sunglasses",
                "--out",
                str(out),
                "--image-size",
                "48",
                "--num-classes",
                "8",
                "--json",
            ]
        )
        == 0
    )
    occluded = build_dataset("synthfer", "train", out, image_size=48, num_classes=8)
    assert len(occluded) == 3
    assert occluded[0]["meta"]["occlusion"] == "sunglasses"
    source = build_dataset("synthfer", "train", tmp_path / "sf", image_size=48, num_classes=8)
    rows = {row["id"]: row for row in csv.DictReader((out / "manifest.csv").open())}
    for i in range(len(source)):
        sample = source[i]
        before = sample["image"].permute(1, 2, 0).numpy()
        row = rows[sample["meta"]["id"]]
        after = np.asarray(Image.open(out / row["path"]).convert("RGB"))
        # the mask the command drew: sample i is occluded with seed (0, i) on the sample's own landmarks
        _, mask = occlude(before.copy(), sample["landmarks5"].numpy(), "sunglasses", np.random.default_rng([0, i]))
        assert mask.any() and not mask.all() and row["occluder_area"] == f"{mask.mean():.5f}"
        assert np.array_equal(after[~mask], before[~mask]), f"sample {i} changed outside the occluder"
        changed = (after[mask] != before[mask]).any(axis=-1).mean()
        assert changed > 0.9, f"sample {i}: only {changed:.0%} of the occluder's pixels differ from the source"
    assert main(["data", "occlude", "rafdb", "--kind", "mask", "--out", str(out)]) == 2
    assert "needs the folder of your local copy (--root PATH" in capsys.readouterr().err


def test_verify_ran_without_list_file_names_where_to_get_it(tmp_path):
    fakes.make_rafdb(tmp_path)
    report = verify_dataset("ran_rafdb", tmp_path, progress=False, splits=["occlusion"])
    assert not report.ok
    problem = report.problems[0]
    assert problem.file.endswith("RAN/rafdb_occlusion_list.txt")
    assert "Challenge-condition-FER-dataset" in problem.fix and "list_file=PATH" in problem.fix
