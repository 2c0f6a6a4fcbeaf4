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
