"""A run killed with SIGKILL in the middle of an epoch and resumed ends exactly like an uninterrupted one.

The tiny model has BatchNorm and dropout and the MA-Net recipe's augmentation (flip, shift, zoom)
is on, so sample order, augmentation, dropout masks and optimiser momentum all have to be resumed
correctly for the numbers to agree.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
EPOCHS = 4

SCRIPT = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import torch
torch.set_num_threads(1)
from test_train_helpers import TINY_BN, ColourDataset, register_test_models
register_test_models()
from ferlib.train import TrainConfig, train
run_dir, resume, delay = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3])
cfg = TrainConfig(model=TINY_BN, recipe="ma-net", profile="smoke", epochs={EPOCHS}, batch_size=16, lr=0.05,
                  run_dir=run_dir, resume=resume, progress=False, tensorboard=False, val_fraction=0.2,
                  device="cpu", cpu_threads=1)
train(cfg, train_dataset=ColourDataset(160, 0, delay=delay), test_dataset=ColourDataset(48, 1))
"""


def _run(script: Path, run_dir: Path, resume: bool, delay: float) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    return subprocess.Popen(
        [sys.executable, str(script), str(run_dir), "1" if resume else "0", str(delay)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finished(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out


def _comparable(run_dir: Path) -> tuple[dict, list]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    for row in history:  # wall-clock fields differ between any two runs
        row.pop("epoch_seconds")
        row.pop("train_images_per_second")
    return metrics, history


@pytest.mark.slow  # three Python processes, one deliberately slowed down
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path):
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    reference = _run(script, tmp_path / "reference", resume=False, delay=0.0)

    victim_dir = tmp_path / "victim"
    victim = _run(script, victim_dir, resume=False, delay=0.01)  # ~1.5 s per epoch
    history = victim_dir / "history.json"
    deadline = time.time() + 180
    while time.time() < deadline:
        if history.exists() and len(json.loads(history.read_text())) >= 2:
            break
        assert victim.poll() is None, victim.communicate()[0]
        time.sleep(0.05)
    else:
        pytest.fail("the run did not finish two epochs in time")
    time.sleep(0.5)  # well inside epoch 3
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    import torch

    state = torch.load(victim_dir / "checkpoints" / "last.pt", weights_only=True)
    assert 2 <= state["epoch"] < EPOCHS  # killed before the end
    assert not (victim_dir / "metrics.json").exists()

    _finished(_run(script, victim_dir, resume=True, delay=0.0))
    _finished(reference)
    m_resumed, h_resumed = _comparable(victim_dir)
    m_ref, h_ref = _comparable(tmp_path / "reference")
    assert h_resumed == h_ref
    for key in ("test_final", "test_selected"):
        assert m_resumed[key] == m_ref[key]
    assert m_resumed["best_epoch"] == m_ref["best_epoch"]
    assert m_resumed["iterations"] == m_ref["iterations"]
