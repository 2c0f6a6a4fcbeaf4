"""Seeded training runs reproduce recorded numbers: the trainer's numeric behaviour must not drift.

Two runs, each two epochs with a fixed seed, recorded once on the engine before it was split into
``ferlib.train.{config,data,batches,checkpoint,evaluate,guidance,loop}``:

* the tiny CNN with BatchNorm, dropout and the MA-Net recipe's augmentation (flip, shift, zoom) —
  sample order, augmentation, dropout and momentum all enter the numbers;
* LAN on SynthFER under the smoke profile — the warm-up epoch, the K-means guidance centres
  (lan.txt §III-C, Eqs. 3–4) and the guided epoch with the attention loss.

What is compared: the history without wall-clock fields, the final metrics, and per-tensor sums of
``last.pt``/``best.pt`` (model, optimiser, guidance). Set ``FERLIB_GOLDEN_DUMP=<dir>`` to write the
full record, with a SHA-256 of every tensor, for a bit-for-bit comparison on one machine.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from ferlib.train import TrainConfig, read_checkpoint, train
from test_train_helpers import TINY_BN, ColourDataset

pytestmark = pytest.mark.usefixtures("tiny_models")

GOLDEN = Path(__file__).resolve().parent / "golden" / "train_golden.json"


def _tensors(obj, prefix=""):
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            yield from _tensors(obj[k], f"{prefix}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}/{i}")


def _record(result) -> dict:
    history = [
        {k: v for k, v in row.items() if k not in ("epoch_seconds", "train_images_per_second")}
        for row in result.history
    ]
    rec = {"history": history, "metrics": json.loads(json.dumps(result.metrics)), "sums": {}, "sha256": {}}
    for name in ("last.pt", "best.pt"):
        path = result.run_dir / "checkpoints" / name
        if not path.exists():
            continue
        state = read_checkpoint(path)
        for key in ("model", "optimizer", "guidance"):
            for k, t in _tensors(state.get(key), f"{name}/{key}"):
                t = t.detach().cpu()
                rec["sums"][k] = [float(t.double().sum()), float(t.double().abs().sum())]
                rec["sha256"][k] = hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()
    return rec


def _run(case: str, tmp_path: Path):
    torch.set_num_threads(1)
    if case == "tiny":
        cfg = TrainConfig(
            model=TINY_BN,
            recipe="ma-net",
            profile="smoke",
            epochs=2,
            batch_size=16,
            lr=0.05,
            run_dir=str(tmp_path / case),
            progress=False,
            tensorboard=False,
            val_fraction=0.2,
            device="cpu",
            amp="off",  # the recorded fp32, contiguous path (bf16 autocast would be auto on a bf16 CPU)
            seed=3,
        )
        return train(cfg, train_dataset=ColourDataset(96, 0), test_dataset=ColourDataset(32, 1))
    cfg = TrainConfig(
        model="lan",
        dataset="synthfer",
        profile="smoke",
        n_train=12,
        n_test=4,
        val_fraction=0.25,
        epochs=2,
        iterations=None,
        batch_size=4,
        run_dir=str(tmp_path / case),
        progress=False,
        tensorboard=False,
        device="cpu",
        amp="off",  # the recorded fp32, contiguous path (bf16 autocast would be auto on a bf16 CPU)
        eval_batch_size=8,
        seed=1,
    )
    return train(cfg)


@pytest.mark.parametrize("case", ["tiny", "lan"])
def test_seeded_run_reproduces_the_recorded_numbers(case, tmp_path):
    rec = _record(_run(case, tmp_path))
    dump = os.environ.get("FERLIB_GOLDEN_DUMP")
    if dump:
        Path(dump).mkdir(parents=True, exist_ok=True)
        (Path(dump) / f"{case}.json").write_text(json.dumps(rec, indent=1, sort_keys=True))
    golden = json.loads(GOLDEN.read_text())[case]
    if case == "lan":
        assert any(k.startswith("last.pt/guidance/") for k in rec["sums"])  # the guided path ran
    assert len(rec["history"]) == len(golden["history"])
    for row, want in zip(rec["history"], golden["history"]):
        assert sorted(row) == sorted(want)
        for k, v in want.items():
            assert row[k] == (v if isinstance(v, str) else pytest.approx(v, rel=1e-5)), (row["epoch"], k)
    for split in ("test_final", "test_selected"):
        assert rec["metrics"][split]["confusion_matrix"] == golden["metrics"][split]["confusion_matrix"]
    assert rec["metrics"]["best_epoch"] == golden["metrics"]["best_epoch"]
    assert sorted(rec["sums"]) == sorted(golden["sums"])
    for k, (s, a) in golden["sums"].items():
        assert rec["sums"][k] == pytest.approx([s, a], rel=1e-4, abs=1e-6), k
