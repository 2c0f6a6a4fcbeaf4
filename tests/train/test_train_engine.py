"""The trainer on a tiny CNN: honest splits, seeded samplers, the schedule, checkpoints and their errors."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from ferlib.data.protocols import EpochSampler, stratified_split
from ferlib.train import evaluate_checkpoint, read_checkpoint, train
from ferlib.train.checkpoint import load_model_state
from ferlib.train.optim import epoch_plan, lr_at
from ferlib.train.recipes import load_recipe, rebudget
from test_train_helpers import TINY, ColourDataset, tiny_config

pytestmark = pytest.mark.usefixtures("tiny_models")


def _cfg(tmp_path, **kw):
    return tiny_config(tmp_path, **({"val_fraction": 0.2} | kw))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("engine")
    train_ds, test_ds = ColourDataset(200, seed=0), ColourDataset(60, seed=1)
    return train(_cfg(tmp), train_dataset=train_ds, test_dataset=test_ds), train_ds, test_ds


def test_validation_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(7), [50, 10, 30, 5, 20, 40, 2])
    tr, va = stratified_split(labels, 0.2, seed=3)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(labels)
    for c in range(7):  # every class keeps ~20 % in validation and at least one in training
        n_c = (labels == c).sum()
        assert abs((labels[va] == c).sum() - 0.2 * n_c) <= 1
        assert (labels[tr] == c).sum() >= 1
    tr2, va2 = stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(va, va2)
    assert not np.array_equal(va, stratified_split(labels, 0.2, seed=4)[1])


def test_run_folder_selects_on_validation_and_tests_once(trained):
    result, train_ds, test_ds = trained
    run = result.run_dir
    for name in (
        "config.json",
        "recipe.json",
        "versions.json",
        "seed.json",
        "split.json",
        "metrics.json",
        "history.csv",
        "history.json",
        "curves.png",
        "confusion_matrix.png",
        "checkpoints/best.pt",
        "checkpoints/last.pt",
    ):
        assert (run / name).is_file(), name
    split = json.loads((run / "split.json").read_text())
    val_idx = np.array(split["val_indices"])
    assert split["n_val"] == len(val_idx) == 40 and split["n_train"] == 160 and split["n_test"] == 60
    # validation is carved from the *training* data, stratified
    expected_val = stratified_split(train_ds.labels, 0.2, 0)[1]
    assert np.array_equal(val_idx, expected_val)
    m = result.metrics
    hist = result.history
    assert len(hist) == 3 and [h["epoch"] for h in hist] == [1, 2, 3]
    best = max(range(3), key=lambda i: (hist[i]["val_accuracy"], -i))
    assert m["best_epoch"] == best + 1  # first epoch with the highest validation accuracy
    assert m["best_val_accuracy"] == hist[best]["val_accuracy"]
    assert m["test_final"]["n"] == m["test_selected"]["n"] == 60
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]  # it learns
    assert m["test_selected"]["accuracy"] > 0.4  # chance is 1/7
    # best.pt holds the selected epoch's weights; evaluating it reproduces test_selected
    ckpt = read_checkpoint(run / "checkpoints" / "best.pt")
    assert ckpt["epoch"] == m["best_epoch"]
    assert "optimizer" not in ckpt and "optimizer" in read_checkpoint(run / "checkpoints" / "last.pt")
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["test_selected"]["confusion_matrix"] == m["test_selected"]["confusion_matrix"]


def test_learning_rate_follows_the_step_schedule_per_iteration():
    r = rebudget(load_recipe("ma-net"), epochs=6)  # lr 0.01, ×0.1 every round(15·6/100)=1 epoch
    assert [lr_at(r, t, steps_per_epoch=4) for t in (0, 3, 4, 8)] == pytest.approx([0.01, 0.01, 1e-3, 1e-4])
    man = rebudget(load_recipe("man"), iterations=8)  # ×0.1 every 2 iterations, restarting per stage
    plan = epoch_plan(man, steps_per_epoch=3)
    assert plan == [
        (0, "rasnet", 3),
        (0, "rasnet", 3),
        (0, "rasnet", 2),
        (1, "ersnet", 3),
        (1, "ersnet", 3),
        (1, "ersnet", 2),
    ]
    assert [lr_at(man, t, 3) for t in (0, 1, 2, 5)] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-5])


def test_epoch_sampler_is_seeded_sharded_and_balanced():
    labels = np.array([0] * 90 + [1] * 10)
    s = EpochSampler(labels, seed=5)
    s.set_epoch(2)
    a = list(s)
    s.set_epoch(3)
    assert list(s) != a
    s.set_epoch(2)
    assert list(s) == a and sorted(a) == list(range(100))
    # two ranks with half batches rebuild exactly the single-process global batches of 8
    shards = []
    for rank in (0, 1):
        r = EpochSampler(labels, seed=5, rank=rank, world_size=2)
        r.set_epoch(2)
        shards.append(list(r))
    for b in range(100 // 8):
        assert sorted(shards[0][4 * b : 4 * b + 4] + shards[1][4 * b : 4 * b + 4]) == sorted(a[8 * b : 8 * b + 8])
    bal = EpochSampler(labels, seed=0, balanced=True)
    draws = np.concatenate([labels[list(bal)] for bal.epoch in range(20)])
    assert abs(draws.mean() - 0.5) < 0.05  # minority class oversampled to ~half


def test_bad_checkpoints_get_clear_errors(tmp_path, trained):
    result = trained[0]
    with pytest.raises(FileNotFoundError, match="nope.pt does not exist"):
        read_checkpoint(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt could not be read with torch.load\\(weights_only=True\\)"):
        read_checkpoint(junk)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((result.run_dir / "checkpoints" / "last.pt").read_bytes()[:2000])
    with pytest.raises(ValueError, match="truncated.pt could not be read"):
        read_checkpoint(truncated)
    plain = tmp_path / "plain.pt"
    torch.save({"conv1.weight": torch.zeros(1)}, plain)
    with pytest.raises(ValueError, match="plain.pt is not a ferlib training checkpoint.*--init-format"):
        read_checkpoint(plain)

    evil = tmp_path / "evil.pt"  # pickled objects are refused by weights_only=True
    torch.save({"format": "ferlib-train-checkpoint", "obj": argparse.Namespace(x=1)}, evil)
    with pytest.raises(ValueError, match="evil.pt could not be read"):
        read_checkpoint(evil)
    # mismatched weights: names and shapes are reported
    from test_train_helpers import TinyCNN

    state = read_checkpoint(result.run_dir / "checkpoints" / "best.pt")["model"]
    with pytest.raises(ValueError, match=r"other shapes.*fc.weight: file \(7, 16\) vs model \(8, 16\)"):
        load_model_state(TinyCNN(num_classes=8), state, "best.pt")
    with pytest.raises(ValueError, match="missing.*bn"):
        load_model_state(TinyCNN(batchnorm=True), state, "best.pt")


def test_resume_refuses_a_changed_config_and_a_reused_folder(tmp_path, trained):
    result, train_ds, test_ds = trained
    with pytest.raises(FileExistsError, match="--resume"):
        train(_cfg(tmp_path, run_dir=str(result.run_dir)), train_dataset=train_ds, test_dataset=test_ds)
    with pytest.raises(ValueError, match="configuration differs.*lr"):
        train(
            _cfg(tmp_path, run_dir=str(result.run_dir), resume=True, lr=0.5),
            train_dataset=train_ds,
            test_dataset=test_ds,
        )
    with pytest.raises(ValueError, match="--resume needs --run-dir"):
        train(_cfg(tmp_path, run_dir=None, resume=True), train_dataset=train_ds, test_dataset=test_ds)


def test_evaluate_checkpoint_rebuilds_the_model_and_matches_a_manual_pass(trained):
    from ferlib.data.datasets import build_dataset
    from ferlib.data.schema import collate_samples
    from ferlib.data.transforms import normalize_images
    from ferlib.train.metrics import classification_metrics
    from test_train_helpers import TinyCNN

    ckpt = trained[0].run_dir / "checkpoints" / "best.pt"
    m = evaluate_checkpoint(ckpt, "synthfer", n=12, device="cpu", batch_size=5, progress=False)
    assert m["synthetic"] and m["n"] == 12 and m["model"] == TINY
    model = TinyCNN()
    model.load_state_dict(read_checkpoint(ckpt)["model"])
    model.eval()
    ds = build_dataset("synthfer", "test", None, n=12)
    batch = collate_samples([ds[i] for i in range(12)])
    with torch.no_grad():
        pred = model(normalize_images(batch["image"])).logits.argmax(1)
    expected = classification_metrics(batch["label"], pred, class_names=m["class_names"])
    assert m["confusion_matrix"] == expected["confusion_matrix"]
    assert m["accuracy"] == expected["accuracy"]


def test_a_diverging_run_stops_with_a_clear_error_before_checkpointing(tmp_path):
    with pytest.raises(FloatingPointError, match="training loss became .* in epoch 1; lower the learning rate"):
        train(_cfg(tmp_path, lr=1e30, epochs=2), train_dataset=ColourDataset(60, 0), test_dataset=ColourDataset(10, 1))
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()
