"""Two gloo processes under torchrun train to the same numbers as one process (CPU)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

SCRIPT = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import torch
from test_train_helpers import TINY, ColourDataset, register_test_models
register_test_models()
from ferlib.train import TrainConfig, train
from ferlib.train import distributed
# No dropout and no augmentation: those draw per-rank random numbers by design. fp32 (amp="off"): the
# comparison is of the sharded arithmetic at 1e-4, which bf16 autocast (auto on a bf16 CPU) cannot hold.
cfg = TrainConfig(model=TINY, recipe="ma-net", profile="smoke", epochs=3, batch_size=16, lr=0.05,
                  model_kwargs={{"dropout": 0.0}}, augment=False, run_dir=sys.argv[1], progress=False,
                  tensorboard=False, val_fraction=0.2, device="cpu", cpu_threads=1, amp="off")
train(cfg, train_dataset=ColourDataset(160, 0), test_dataset=ColourDataset(51, 1))
distributed.shutdown()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # one plus two Python processes
def test_two_process_ddp_matches_single_process(tmp_path):
    pytest.importorskip("torch.distributed")
    import torch.distributed as dist

    if not dist.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    script = tmp_path / "ddp_script.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    env.pop("WORLD_SIZE", None)
    single = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "single")], env=env, capture_output=True, text=True, timeout=240
    )
    assert single.returncode == 0, single.stdout + single.stderr
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            "1",
            "--nproc-per-node",
            "2",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(_free_port()),
            str(script),
            str(tmp_path / "ddp"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stdout + ddp.stderr

    h1 = json.loads((tmp_path / "single" / "history.json").read_text())
    h2 = json.loads((tmp_path / "ddp" / "history.json").read_text())
    assert len(h1) == len(h2) == 3
    for a, b in zip(h1, h2):
        assert a["steps"] == b["steps"] and a["lr"] == b["lr"]
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4, abs=1e-5)
        assert b["train_accuracy"] == pytest.approx(a["train_accuracy"])
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4, abs=1e-5)
        assert b["val_accuracy"] == pytest.approx(a["val_accuracy"])
    m1 = json.loads((tmp_path / "single" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    for key in ("test_final", "test_selected"):
        assert m2[key]["n"] == m1[key]["n"] == 51  # every test image once, none duplicated by the shards
        assert m2[key]["confusion_matrix"] == m1[key]["confusion_matrix"]
    assert m2["best_epoch"] == m1["best_epoch"]
    # only rank 0 wrote the run folder
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == sorted(
        p.name for p in (tmp_path / "single").iterdir()
    )
