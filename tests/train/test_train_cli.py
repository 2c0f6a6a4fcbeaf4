"""``ferlib train`` and ``ferlib evaluate`` end to end on SynthFER (synthetic) with the tiny CNN."""

from __future__ import annotations

import json

import pytest

from ferlib.cli import main
from test_train_helpers import TINY

pytestmark = pytest.mark.usefixtures("tiny_models")


def test_train_two_seeds_then_evaluate_a_subset(tmp_path, capsys):
    run = tmp_path / "multi"
    rc = main(
        [
            "train",
            "--model",
            TINY,
            "--dataset",
            "synthfer",
            "--recipe",
            "ffra-net",
            "--profile",
            "smoke",
            "--n-train",
            "21",
            "--n-test",
            "14",
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--seeds",
            "0,1",
            "--run-dir",
            str(run),
            "--no-progress",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert [r["seed"] for r in out["runs"]] == [0, 1]
    assert (run / "seed-0" / "metrics.json").is_file() and (run / "seed-1" / "metrics.json").is_file()
    summary = json.loads((run / "summary.json").read_text())
    accs = [r["test_selected"]["accuracy"] for r in out["runs"]]
    assert summary["summary"]["test_selected.accuracy"]["mean"] == pytest.approx(sum(accs) / 2)
    assert summary["synthetic"] is True
    # seeds change the training, not the validation split (split_seed is fixed)
    s0 = json.loads((run / "seed-0" / "split.json").read_text())
    s1 = json.loads((run / "seed-1" / "split.json").read_text())
    assert s0["val_indices"] == s1["val_indices"]

    rc = main(
        [
            "evaluate",
            "--checkpoint",
            str(run / "seed-0" / "checkpoints" / "best.pt"),
            "--dataset",
            "synthfer",
            "--subset",
            "pose30",
            "--n",
            "40",
            "--no-progress",
            "--json",
        ]
    )
    ev = json.loads(capsys.readouterr().out)
    assert rc == 0 and ev["subset"] == "pose30" and ev["synthetic"] is True
    from ferlib.data.datasets import build_dataset

    ds = build_dataset("synthfer", "test", None, n=40)
    turned = [i for i in range(40) if max(abs(ds.params(i).yaw), abs(ds.params(i).pitch)) > 30]
    assert ev["n"] == len(turned) > 0


def test_cli_errors_name_the_problem(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 10)
    assert main(["evaluate", "--checkpoint", str(bad), "--dataset", "synthfer", "--json"]) == 2
    assert "bad.pt could not be read" in capsys.readouterr().err
    assert main(["train", "--model", TINY, "--resume", "--profile", "smoke", "--no-progress"]) == 2
    assert "--resume needs --run-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--model", TINY, "--seeds", "a,b"])


def test_dataset_params_reach_the_loader():
    from ferlib.cli import build_parser

    args = build_parser().parse_args(
        ["train", "--model", "ma-net", "--dataset", "ckplus", "-p", "fold=3", "-p", "variant=original"]
    )
    assert dict(args.dataset_param) == {"fold": 3, "variant": "original"}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--model", "ma-net", "-p", "fold"])


def test_profile_accepts_every_engine_profile_and_refuses_others():
    from ferlib.cli import build_parser
    from ferlib.train import load_profile

    args = build_parser().parse_args(
        ["train", "--model", "lan", "--recipe", "lan-alpha0", "--profile", "study-lecture"]
    )
    assert args.profile == "study-lecture" and load_profile(args.profile).epochs == 3  # notebook 03's lecture budget
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["train", "--model", "lan", "--profile", "lecture"]
        )  # a study profile, not an engine one


# -- outside weights (issue 11, finding 1) ---------------------------------------------------------


def _resnet_file(path, depth: int = 18, head: int = 12666):
    import torch
    import torchvision

    builder = {18: torchvision.models.resnet18, 34: torchvision.models.resnet34}[depth]
    state = builder(weights=None, num_classes=head).state_dict()
    torch.save({"module." + k: v for k, v in state.items()}, path)
    return state


SMOKE = ["--dataset", "synthfer", "--profile", "smoke", "--n-train", "12", "--n-test", "6", "--epochs", "1"]
FAST = ["--batch-size", "4", "--no-progress", "--json"]


@pytest.mark.slow
def test_init_report_is_printed_saved_and_in_metrics(tmp_path, capsys):
    weights = tmp_path / "msceleb_resnet18.pth"
    _resnet_file(weights)
    run = tmp_path / "r18"
    argv = ["train", "--model", "resnet18", *SMOKE, *FAST, "--run-dir", str(run)]
    rc = main([*argv, "--init", str(weights), "--init-format", "torchvision"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "init: " in captured.err and "ResNet-18" in captured.err and "12666-way" in captured.err
    report = json.loads((run / "init_report.json").read_text())
    assert report["source"] == "torchvision" and report["layout"] == "ResNet-18"
    assert len(report["loaded"]) == 120 and report["unset"] == []
    assert set(report["replaced_heads"]) == {"fc.weight", "fc.bias"}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["init"]["n_loaded"] == 120 and metrics["init"]["layout"] == "ResNet-18"
    assert json.loads(captured.out)["runs"][0]["init"]["source"] == "torchvision"


@pytest.mark.slow
def test_partial_init_is_refused_unless_asked_for(tmp_path, capsys):
    weights = tmp_path / "resnet18.pth"
    _resnet_file(weights, head=1000)
    argv = ["train", "--model", "resnet34", *SMOKE, *FAST, "--init", str(weights), "--init-format", "torchvision"]
    assert main([*argv, "--run-dir", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ferlib train: ") and "layer1.2.conv1.weight" in err and "--init-partial" in err
    assert main([*argv, "--run-dir", str(tmp_path / "partial"), "--init-partial"]) == 0
    capsys.readouterr()
    report = json.loads((tmp_path / "partial" / "init_report.json").read_text())
    assert report["partial"] is True and "layer3.5.conv2.weight" in report["unset"]


def test_model_kw_builds_the_variant_in_train_and_evaluate(tmp_path, capsys):
    run = tmp_path / "narrow"
    argv = ["train", "--model", TINY, *SMOKE, *FAST, "--run-dir", str(run)]
    rc = main([*argv, "--model-kw", "width=4", "--model-kw", "dropout=0.0"])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    assert json.loads((run / "config.json").read_text())["model_kwargs"] == {"width": 4, "dropout": 0.0}
    assert json.loads((run / "metrics.json").read_text())["model_kwargs"] == {"width": 4, "dropout": 0.0}
    import torch

    state = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    assert state["model"]["conv1.weight"].shape[0] == 4  # the narrow variant was built

    best = str(run / "checkpoints" / "best.pt")
    ev = ["evaluate", "--checkpoint", best, "--dataset", "SynthFER", "--n", "8", "--no-progress", "--json"]
    assert main([*ev, "--model-kw", "dropout=0.5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model_kwargs"] == {"width": 4, "dropout": 0.5} and out["dataset"] == "synthfer"
    assert main([*ev, "--model-kw", "width=8"]) == 2  # the weights do not fit that variant
    assert "do not match the model" in capsys.readouterr().err

    assert main([*argv, "--model-kw", "depth=3"]) == 2
    err = capsys.readouterr().err
    assert "--model-kw depth" in err and "width" in err
    assert main([*argv, "--model-kw", "width=4", "--model-kw", "width=5"]) == 2
    assert "given twice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv, "--model-kw", "width"])


def test_dataset_aliases_are_resolved_once():
    from ferlib.train.config import TrainConfig, resolve_recipe
    from ferlib.train.recipes import load_recipe

    for alias, canonical in (("caer-s", "caers"), ("CAER-S", "caers"), ("fer-2013", "fer2013"), ("CK+", "ckplus")):
        assert TrainConfig(model="ma-net", dataset=alias).dataset == canonical
    # MA-Net's CAER-S schedule (written under "caer-s" in the recipe) applies under the canonical name
    caers = resolve_recipe(TrainConfig(model="ma-net", dataset="caers", profile="full"))[0]
    rafdb = resolve_recipe(TrainConfig(model="ma-net", dataset="rafdb", profile="full"))[0]
    assert (caers.lr, caers.epochs) == (0.1, 400) and (rafdb.lr, rafdb.epochs) != (0.1, 400)
    # MAN's CK+ schedule ("ck+") under ckplus; AMP-Net's FER-2013 colour jitter ("fer2013") under fer-2013
    assert load_recipe("man", "ckplus").schedule.step_size == 500 != load_recipe("man", "rafdb").schedule.step_size
    assert load_recipe("amp-net", "fer-2013").augment == load_recipe("amp-net", "fer2013").augment
    assert (
        load_recipe("amp-net", "fer-2013").augment.brightness
        == 0.0
        != load_recipe("amp-net", "rafdb").augment.brightness
    )
