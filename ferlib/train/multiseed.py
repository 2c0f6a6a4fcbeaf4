"""Several seeds of one configuration: one run folder per seed and a ``summary.json`` (mean ± std)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

import ferlib.train.distributed as dist_utils
from ferlib.fileio import atomic_write_json
from ferlib.runs import RunFolder, make_folder
from ferlib.train.config import TrainConfig, TrainResult, check_train_config
from ferlib.train.loop import train
from ferlib.train.metrics import summarize_seeds


@dataclass
class MultiSeedResult:
    run_dir: Path
    runs: list[TrainResult]
    summary: dict[str, dict[str, float]]


def train_seeds(cfg: TrainConfig, seeds: Sequence[int], **datasets: Dataset) -> MultiSeedResult:
    """Train once per seed in ``<run_dir>/seed-<s>/`` and write ``summary.json`` (mean ± std)."""
    check_train_config(cfg)
    if len(seeds) == 1:
        res = train(dataclasses.replace(cfg, seed=seeds[0]), **datasets)
        return MultiSeedResult(res.run_dir, [res], summarize_seeds([res.metrics]))
    created = False
    if cfg.run_dir:
        parent = Path(cfg.run_dir)
        created = not parent.exists()
        make_folder(parent)
    elif cfg.resume:
        raise ValueError("--resume needs --run-dir: the folder of the multi-seed run to continue")
    else:
        parent = RunFolder.create(f"{cfg.model}-{cfg.dataset}-{cfg.profile}-seeds", cfg.runs_root).path
        created = True
    try:
        runs = [train(dataclasses.replace(cfg, seed=s, run_dir=str(parent / f"seed-{s}")), **datasets) for s in seeds]
    except BaseException:
        # a refused first seed leaves no empty parent behind; finished seeds are never touched
        if created and dist_utils.current_context().is_main and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
        raise
    summary = summarize_seeds([r.metrics for r in runs])
    if dist_utils.current_context().is_main:
        atomic_write_json(
            parent / "summary.json",
            {"seeds": list(seeds), "summary": summary, "synthetic": cfg.dataset.lower() == "synthfer"},
        )
    return MultiSeedResult(parent, runs, summary)
