"""The papers' protocol (``--protocol paper``) beside the default validation-selected one, and landmark
coverage as a precondition of training and evaluating a model that needs landmarks (issue 11, findings 2 and 5)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import fakes
from ferlib.cli import main
from ferlib.data.datasets import build_dataset
from ferlib.models import create_model
from ferlib.train import train
from ferlib.train.landmark_coverage import check_coverage, landmark_requirements, split_coverage
from test_train_helpers import TINY, ColourDataset, tiny_config

pytestmark = pytest.mark.usefixtures("tiny_models")


def _cfg(tmp_path, **kw):
    return tiny_config(tmp_path, **kw)


# -- the protocols ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("paper")
    train_ds, test_ds = ColourDataset(120, seed=0), ColourDataset(50, seed=1)
    return train(_cfg(tmp, protocol="paper"), train_dataset=train_ds, test_dataset=test_ds), train_ds


def test_paper_protocol_trains_on_the_full_split_and_reports_the_best_test_epoch_as_optimistic(paper_run):
    result, train_ds = paper_run
    split = json.loads((result.run_dir / "split.json").read_text())
    assert split["protocol"] == "paper" and split["n_val"] == 0 and split["n_train"] == len(train_ds)
    m = json.loads((result.run_dir / "metrics.json").read_text())
    assert m["protocol"] == "paper" and "optimistic" in m["selection"] and "TEST" in m["selection"]
    best, final = m["test_best_epoch"], m["test_final"]
    assert best["optimistic"] is True and "optimistic" not in final
    # the test set was watched after every epoch; the best of those is the reported one
    test_accs = [row["test_accuracy"] for row in result.history]
    assert len(test_accs) == 3 and all(row["val_accuracy"] is None for row in result.history)
    assert best["accuracy"] == max(test_accs) and best["epoch"] == m["best_epoch"] == 1 + int(np.argmax(test_accs))
    assert final["accuracy"] == pytest.approx(test_accs[-1])  # the final epoch's weights, evaluated again
    assert best["accuracy"] >= final["accuracy"]
    assert m["test_selected"] == best and m["best_val_accuracy"] is None
    assert set(m["optimistic"]) == {"test_best_epoch", "test_selected"}


def test_default_protocol_is_validation_selected_and_says_so(tmp_path):
    result = train(
        _cfg(tmp_path, epochs=1, val_fraction=0.2),
        train_dataset=ColourDataset(60, seed=0),
        test_dataset=ColourDataset(20, seed=1),
    )
    m = result.metrics
    assert m["protocol"] == "validation" and "validation accuracy" in m["selection"]
    assert "test_best_epoch" not in m and "optimistic" not in m["test_selected"]
    assert json.loads((result.run_dir / "split.json").read_text())["n_val"] > 0


def test_validation_protocol_refuses_a_zero_validation_share_and_paper_refuses_one(tmp_path):
    data = dict(train_dataset=ColourDataset(30, seed=0), test_dataset=ColourDataset(10, seed=1))
    with pytest.raises(ValueError, match="--protocol paper"):
        train(_cfg(tmp_path, val_fraction=0.0), **data)
    with pytest.raises(ValueError, match="full training split.*drop --val-fraction"):
        train(_cfg(tmp_path, protocol="paper", val_fraction=0.2, run_dir=str(tmp_path / "b")), **data)
    with pytest.raises(ValueError, match="protocol must be one of validation, paper"):
        train(_cfg(tmp_path, protocol="best", run_dir=str(tmp_path / "c")), **data)


def test_cli_reports_the_paper_protocol_number_as_optimistic(tmp_path, capsys):
    args = ["train", "--model", TINY, "--dataset", "synthfer", "--recipe", "ffra-net", "--profile", "smoke"]
    args += ["--n-train", "21", "--n-test", "14", "--epochs", "2", "--batch-size", "4", "--no-progress"]
    rc = main([*args, "--protocol", "paper", "--run-dir", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "paper protocol" in out and "OPTIMISTIC" in out and "final epoch" in out
    rc = main([*args, "--protocol", "paper", "--val-fraction", "0.2", "--run-dir", str(tmp_path / "r2")])
    assert rc == 2 and "ferlib train: --protocol paper" in capsys.readouterr().err


# -- landmark coverage ----------------------------------------------------------------------------


class _Started(Exception):
    """Raised in place of the first training epoch: the run got past its preconditions."""


def _stop_at_first_epoch(monkeypatch):
    import ferlib.train.loop as loop

    def first_epoch(run, epoch):
        raise _Started(run.run_dir)

    monkeypatch.setattr(loop, "_train_one_epoch", first_epoch)


def _landmarks_csv(path, tree_root, n_train=7):
    """A CSV giving every fake RAF-DB image (train and test) five landmarks in its 20×20 aligned frame."""
    rows = ["id,lm5"]
    for split, n in (("train", n_train), ("test", 5)):
        for i in range(1, n + 1):
            stem = f"{split}_{i:05d}" if split == "train" else f"{split}_{i:04d}"
            rows.append(f"{stem},5 6 14 6 10 10 6 15 14 15")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("model", ["amp-net", "man"])
def test_a_model_that_needs_landmarks_refuses_a_rafdb_tree_without_them(tmp_path, model, capsys, monkeypatch):
    # aligned images, no landmarks file: every landmarks5 is NaN; 4 per class so that the validation split
    # keeps one of each (a smaller tree is refused earlier, for its empty validation split)
    fakes.make_rafdb(tmp_path / "raf", n_train=28)
    _stop_at_first_epoch(monkeypatch)
    args = ["train", "--model", model, "--dataset", "rafdb", "--root", str(tmp_path / "raf"), "--profile", "smoke"]
    args += ["--epochs", "1", "--iterations", "1", "--batch-size", "2", "--no-progress"]
    rc = main([*args, "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"ferlib train: {model} needs landmark")
    assert "of rafdb have none (NaN landmarks" in err and "train images (100.0 %)" in err
    assert "ferlib landmarks" in err and "--landmarks-file" in err  # the fix, named
    # with the landmarks supplied, the same command starts training
    csv = _landmarks_csv(tmp_path / "lm.csv", tmp_path / "raf", n_train=28)
    with pytest.raises(_Started):
        main([*args, "--run-dir", str(tmp_path / "run2"), "--landmarks-file", str(csv)])
    coverage = json.loads((tmp_path / "run2" / "landmark_coverage.json").read_text())
    assert coverage["training"]["splits"]["train"]["n_missing"] == 0
    assert coverage["training"]["required"]  # AMP-Net: its forward; MAN: its RASnet stage's mask loss
    if model == "man":  # MAN's forward needs none: its test set is not held to it
        assert coverage["training"]["required"] == ["landmarks8 or landmarks5"] and coverage["test"]["required"] == []
    else:
        assert coverage["test"]["required"] == ["landmarks5"] and coverage["test"]["splits"]["test"]["n_missing"] == 0


def test_a_share_below_one_percent_passes_and_is_recorded():
    ds = ColourDataset(300, seed=0)
    ds.landmarks5[[5, 77]] = np.nan  # 2 of 300 = 0.67 %
    amp = create_model("amp-net", num_classes=7)
    record = check_coverage(amp, {"train": ds}, model_name="amp-net", dataset_name="colours", stages=[""])
    c = record["splits"]["train"]
    assert (c["n"], c["n_missing"]) == (300, 2) and c["missing_share"] == pytest.approx(2 / 300)
    assert "four equal quadrants" in record["fallback"]
    ds.landmarks5[[6, 8]] = np.nan  # 4 of 300 = 1.33 %: refused
    with pytest.raises(ValueError, match=r"4 of 300 train images \(1.3 %\)"):
        check_coverage(amp, {"train": ds}, model_name="amp-net", dataset_name="colours", stages=[""])


def test_requirements_follow_the_model_contract_and_the_stage():
    assert landmark_requirements(create_model(TINY)) == []
    assert landmark_requirements(create_model("amp-net")) == [("landmarks5",)]
    assert landmark_requirements(create_model("amp-net", branches=("gp",))) == []  # GP alone needs none
    man = create_model("man")
    assert landmark_requirements(man) == []  # evaluation: RASnet predicts the masks
    assert landmark_requirements(man, ["rasnet", "ersnet"]) == [("landmarks8", "landmarks5")]
    assert landmark_requirements(man, ["ersnet"]) == []


def test_coverage_reads_rafdb_records_without_decoding(tmp_path, monkeypatch):
    fakes.make_rafdb(tmp_path)
    ds = build_dataset("rafdb", "train", tmp_path, image_size=40, variant="original")  # manual 5 points
    monkeypatch.setattr(type(ds), "_decode", lambda self, rec: pytest.fail("coverage decoded an image"))
    assert split_coverage(ds, [("landmarks5",)])["n_missing"] == 0
    aligned = build_dataset("rafdb", "train", tmp_path, image_size=40)
    monkeypatch.setattr(type(aligned), "_decode", lambda self, rec: pytest.fail("coverage decoded an image"))
    assert split_coverage(aligned, [("landmarks5",)])["n_missing"] == len(aligned)
    assert math.isclose(split_coverage(aligned, [("landmarks5",)])["missing_share"], 1.0)


def test_evaluate_refuses_a_landmark_model_on_images_without_landmarks(tmp_path, capsys, monkeypatch):
    import ferlib.train.evaluate as evaluate

    fakes.make_rafdb(tmp_path / "raf")
    state = {"model_name": "amp-net", "num_classes": 7, "model_kwargs": {}, "model": {}, "image_size": 224}
    monkeypatch.setattr(evaluate, "read_checkpoint", lambda path: state)  # no 400 MB checkpoint on disk
    monkeypatch.setattr(evaluate, "load_model_state", lambda model, weights, where, **kw: None)
    args = ["evaluate", "--checkpoint", "amp.pt", "--dataset", "rafdb", "--root", str(tmp_path / "raf")]
    rc = main([*args, "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("ferlib evaluate: amp-net needs landmarks5 for every image (evaluate)")
    assert "5 of 5 test images (100.0 %)" in err and "--landmarks-file" in err
    csv = _landmarks_csv(tmp_path / "lm.csv", tmp_path / "raf")
    rc = main([*args, "--no-progress", "--json", "--landmarks-file", str(csv)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["n"] == 5
    assert out["landmark_coverage"]["splits"]["test"]["n_missing"] == 0
