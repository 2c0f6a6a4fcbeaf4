"""``run_robustness`` and ``ferlib robustness`` end to end: tiny trained runs (clean and occluded training, two
seeds) on SynthFER at smoke size and on a fake RAF-DB tree with landmarks; the outputs' structure and values."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from ferlib.robustness.runner import PROFILES, run_robustness, training_condition
from test_train_helpers import TINY, TINY_BN

# About 20 s on 2 idle cores (five tiny trainings and the smoke grid); more on a shared machine.
pytestmark = [pytest.mark.usefixtures("tiny_models"), pytest.mark.slow]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from ferlib.train import TrainConfig, train

    root = tmp_path_factory.mktemp("robust_runs")
    common = dict(profile="smoke", epochs=1, iterations=2, batch_size=8, n_train=16, n_test=8, image_size=40,
                  val_fraction=0.25, progress=False, tensorboard=False)  # fmt: skip
    made = []
    for model, preset, seeds in ((TINY, "clean", (0, 1)), (TINY_BN, "standard", (0, 1)), (TINY, "standard", (0,))):
        for seed in seeds:
            run_dir = root / f"{model}-{preset}" / f"seed-{seed}"
            train(
                TrainConfig(model=model, seed=seed, dataset_kwargs={"config": preset}, run_dir=str(run_dir), **common)
            )
            made.append(run_dir)
    return root, made


def test_training_condition_is_read_from_the_run_config():
    assert training_condition({"dataset": "synthfer", "dataset_kwargs": {"config": "clean"}})[0] == "clean"
    cond, detail, preset = training_condition({"dataset": "synthfer", "dataset_kwargs": {"config": "standard"}})
    assert (cond, preset) == ("occluded", "standard") and "30% of training faces occluded" in detail
    # the engine profile's preset when the config names none (study-default trains on 'frontal': no occluder)
    assert training_condition({"dataset": "synthfer", "profile": "study-default"})[:3:2] == ("clean", "frontal")


@pytest.fixture(scope="module")
def synth_result(runs, tmp_path_factory):
    root, _ = runs
    out = tmp_path_factory.mktemp("robust_out")
    res = run_robustness([root], "synthfer", profile="smoke", out_dir=out, progress=False, synthfer_preset="clean")
    return res, out


def test_synthfer_smoke_run_writes_every_table_and_figure(synth_result):
    res, out = synth_result
    for name in ("results.json", "accuracy.csv", "per_run.csv", "drops.csv", "pairs.csv", "attention.csv"):
        assert (out / name).is_file(), name
    for fig in ("accuracy_vs_area.png", "accuracy_vs_yaw.png", "degradations.png", "accuracy_vs_intensity.png",
                "pairs_clean.png"):  # fmt: skip
        assert (out / fig).stat().st_size > 1000, fig
    data = json.loads((out / "results.json").read_text())
    assert data["settings"]["synthetic"] is True and "synthetic" in data["settings"]["label"]
    grid_conditions = PROFILES["smoke"].grid.conditions(synthetic=True)
    left_out = [n for n in res.notes if "left out" in n]
    assert len(res.conditions) == len(grid_conditions) - len(left_out)


def test_tables_have_one_row_per_model_condition_and_pair(synth_result):
    res, out = synth_result
    acc = pd.read_csv(out / "accuracy.csv")
    keys = ["test-tiny-cnn [clean]", "test-tiny-cnn [occluded]", "test-tiny-cnn-bn"]
    assert sorted(acc.key.unique()) == sorted(keys)
    n_cond = len(res.conditions)
    assert len(acc) == 3 * n_cond
    assert set(zip(acc.key, acc.seeds)) == {(keys[0], 2), (keys[1], 1), (keys[2], 2)}
    assert len(pd.read_csv(out / "per_run.csv")) == 5 * n_cond
    assert len(pd.read_csv(out / "pairs.csv")) == 3 * n_cond  # C(3, 2) pairs per condition
    drops = pd.read_csv(out / "drops.csv")
    assert len(drops) == 3 * (n_cond - 1)
    np.testing.assert_allclose(drops["drop"], drops.clean_accuracy - drops.accuracy, atol=1e-9)
    assert (acc.accuracy_low <= acc.accuracy + 1e-9).all() and (acc.accuracy <= acc.accuracy_high + 1e-9).all()
    assert set(acc.training) == {"clean", "occluded"}
    # every accuracy is a mean over the seeds' per-run accuracies
    per_run = pd.read_csv(out / "per_run.csv")
    mean = per_run.groupby(["key", "condition"]).accuracy.mean()
    for r in acc.itertuples():
        assert r.accuracy == pytest.approx(mean[(r.key, r.condition)])


def test_attention_table_measures_every_occluder_with_shares_that_add_up(synth_result):
    res, _ = synth_result
    att = res.table("attention")
    assert set(att.factor) == {"mask", "sunglasses", "hand", "random"}
    assert set(att.source) == {"conv2"}
    allrows = att[att.predictions == "all"]
    assert (allrows.n == PROFILES["smoke"].attention_faces).all()
    assert ((allrows.on_occluder >= 0) & (allrows.on_occluder + allrows.on_visible_face <= 1 + 1e-9)).all()
    split = att[att.predictions != "all"].groupby(["key", "condition"]).n.sum()
    assert (split == PROFILES["smoke"].attention_faces).all()


def test_fake_real_dataset_with_landmarks(runs, tmp_path):
    from fakes import make_rafdb

    root, made = runs
    tree = make_rafdb(tmp_path / "raf", n_train=3, n_test=9)
    with pytest.raises(ValueError, match="has five landmarks"):  # the aligned crops ship no points
        run_robustness(made[:2], "rafdb", str(tree.root), profile="smoke", progress=False, figures=False)
    res = run_robustness(made[:2], "rafdb", str(tree.root), profile="smoke", out_dir=tmp_path / "out", progress=False,
                         dataset_kwargs={"variant": "original"})  # fmt: skip
    assert res.settings["synthetic"] is False and res.settings["n_faces"] == 9
    families = {c["family"] for c in res.conditions}
    assert families == {"clean", "occlusion", "pose", "degradation"}  # no re-rendering or intensity on photos
    pose = [c for c in res.conditions if c["family"] == "pose"]
    assert sum(c["n"] for c in pose) == 9  # the yaw bins partition the faces
    acc = res.table("accuracy")
    clean = acc[acc.condition == "clean"].iloc[0]
    assert clean.n == 9 and 0 <= clean.accuracy <= 1 and not math.isnan(clean.accuracy_low)
    assert (tmp_path / "out" / "accuracy.csv").is_file()


def test_cli_json_and_errors(runs, tmp_path, capsys):
    from ferlib.cli import main

    root, made = runs
    rc = main(["robustness", str(made[0]), str(made[1]), "--out", str(tmp_path / "o"), "--n-faces", "6",
               "--no-progress", "--no-figures", "--json"])  # fmt: skip
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["settings"]["n_faces"] == 6 and len(summary["runs"]) == 2
    assert not list((tmp_path / "o").glob("*.png"))
    assert main(["robustness", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["robustness", str(made[0]), "--dataset", "rafdb"]) == 2
    assert "--root" in capsys.readouterr().err
