"""Checkpoints and run folders: reading and checking ``last.pt``/``best.pt``, loading weights with a
report of what does not match, the RNG states a resumed run restores, and the run-folder files a
run writes besides its checkpoints (``history.json``/``history.csv``).

A checkpoint is a plain dict of tensors and Python values (``torch.load(weights_only=True)``
reads it): ``format``/``version``, the model's name, keywords and class count, the config, the
epoch, step and stage, the weights, the history, the best epoch so far and LAN's guidance state;
``last.pt`` adds the optimiser, the gradient scaler and the RNG states.
"""

from __future__ import annotations

import csv
import io
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

import ferlib.train.distributed as dist_utils
from ferlib.config import to_dict
from ferlib.fileio import atomic_write_json, atomic_write_text
from ferlib.runs import RunFolder, make_folder
from ferlib.train.config import TrainConfig

CHECKPOINT_FORMAT = "ferlib-train-checkpoint"
CHECKPOINT_VERSION = 1

#: Config fields that may differ between an interrupted run and its resumption.
RESUME_FREE_FIELDS = (
    "resume",
    "progress",
    "num_workers",
    "device",
    "tensorboard",
    "cpu_threads",
    "save_every_epoch",
    "eval_batch_size",
    "data_on_device",  # the device path gives the loader's batches (ferlib/train/device_data.py)
    "data_device_budget_gb",
    # where the run lives is not what it computes: a run folder may be given relative, through a link or moved
    "run_dir",
    "runs_root",
)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a ferlib training checkpoint with ``torch.load(weights_only=True)``.

    Raises ``FileNotFoundError`` / ``ValueError`` naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; pass a run's checkpoints/best.pt or last.pt")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        text = str(exc)
        if "weights only load failed" in text.lower() or "weights_only" in text:
            # torch's message goes on to suggest weights_only=False, which would run the file's code: never pass it on
            raise ValueError(
                f"checkpoint {path} could not be read with torch.load(weights_only=True): it holds pickled Python "
                "objects other than tensors and plain values, and ferlib loads only safe checkpoints. Use a checkpoint "
                "written by ferlib train, or outside weights through --init PATH --init-format"
            ) from None
        raise ValueError(
            f"checkpoint {path} could not be read with torch.load(weights_only=True): "
            f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}. "
            "It is truncated or not a PyTorch file"
        ) from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        kind = type(data).__name__ if not isinstance(data, dict) else f"dict with keys {sorted(data)[:8]}"
        raise ValueError(
            f"checkpoint {path} is not a ferlib training checkpoint (expected a dict with "
            f"format={CHECKPOINT_FORMAT!r}, found a {kind}); outside weights go through "
            "--init PATH --init-format torchvision|vgg-face|manet-official|ampnet-official"
        )
    missing = [k for k in ("model_name", "num_classes", "model", "model_kwargs") if k not in data]
    if missing:
        raise ValueError(f"checkpoint {path} lacks the field(s) {missing}; it was not written by ferlib.train")
    return data


def load_model_state(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    where: str,
    hint: str = "Check --model, --num-classes and the model variant the checkpoint was trained with",
) -> None:
    """``load_state_dict`` that reports missing, unexpected and mis-shaped tensors by name; ``hint`` ends the
    message and names only options the calling command has."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(own[k].shape) != tuple(state[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} with other shapes (e.g. {shapes[:3]})")
        raise ValueError(f"weights in {where} do not match the model: " + "; ".join(parts) + f". {hint}")
    model.load_state_dict(state)


def load_init(
    core: nn.Module, path: str, fmt: str, *, partial: bool = False, num_classes: int | None = None
) -> dict[str, Any]:
    """Start from outside weights: a ferlib training checkpoint (``fmt="ferlib"``: every tensor, strictly)
    or any source :func:`ferlib.models.load_checkpoint` maps (``torchvision``, ``vgg-face``, the cards'
    formats). Returns the load report as a dict (what loaded, what stayed at init, what was ignored).

    A load that leaves a non-head tensor of the part the source maps at its initialisation is refused
    (:class:`ferlib.models.checkpoints.IncompleteLoadError`, naming the tensors) unless ``partial``.
    """
    if fmt == "ferlib":
        state = read_checkpoint(path)
        load_model_state(core, state["model"], path)
        names = list(core.state_dict())
        return {
            "path": str(path),
            "source": "ferlib",
            "layout": CHECKPOINT_FORMAT,
            "partial": partial,
            "mapped": ["(the whole model)"],
            "loaded": names,
            "missing": [],
            "unset": [],
            "ignored": {},
            "replaced_heads": {},
            "notes": [],
        }
    from ferlib.models.checkpoints import load_checkpoint

    report = load_checkpoint(core, path, source=fmt, partial=partial, num_classes=num_classes)
    out = report.to_dict()
    out["summary"] = report.summary()
    return out


#: The load report of ``--init`` in a run folder (also under ``"init"`` in ``metrics.json``).
INIT_REPORT = "init_report.json"


def save_init_report(run_dir: Path, report: dict[str, Any]) -> None:
    """Write ``init_report.json`` and print the report's summary (stderr: stdout may carry ``--json``)."""
    atomic_write_json(Path(run_dir) / INIT_REPORT, report)
    summary = report.get("summary") or f"{report['path']} ({report['source']}): loaded {len(report['loaded'])} tensors"
    print(f"init: {summary}", file=sys.stderr)


def read_init_report(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``init_report.json`` (``None`` when the run started from scratch), without the long lists."""
    path = Path(run_dir) / INIT_REPORT
    if not path.is_file():
        return None
    import json

    report = json.loads(path.read_text())
    return {
        **{k: report.get(k) for k in ("path", "source", "layout", "partial", "mapped", "unset", "notes")},
        "n_loaded": len(report.get("loaded", [])),
        "n_missing": len(report.get("missing", [])),
        "n_ignored": len(report.get("ignored", {})),
        "replaced_heads": report.get("replaced_heads", {}),
        "report": INIT_REPORT,
    }


def rng_state() -> dict[str, Any]:
    """The global torch, NumPy and Python RNG states as checkpoint-safe values."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.as_tensor(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def prepare_run_dir(cfg: TrainConfig, ctx: dist_utils.DistContext) -> Path:
    """The run folder: ``cfg.run_dir`` (refused if it holds a run and ``resume`` is off) or a new one."""
    if cfg.run_dir:
        path = Path(cfg.run_dir)
        problem = None
        if ctx.is_main:
            make_folder(path)
            if not cfg.resume and (path / "checkpoints" / "last.pt").exists():
                problem = (
                    f"run folder {path} already holds a training run (checkpoints/last.pt); "
                    "pass --resume to continue it or choose another --run-dir"
                )
        problem = dist_utils.broadcast_object(problem, ctx)  # every rank stops, none waits forever
        if problem:
            raise FileExistsError(problem)
        return path
    if cfg.resume:
        raise ValueError("--resume needs --run-dir: the folder of the run to continue")
    name = f"{cfg.model}-{cfg.dataset}-{cfg.profile}-seed{cfg.seed}"
    path = RunFolder.create(name, cfg.runs_root).path if ctx.is_main else None
    return Path(dist_utils.broadcast_object(str(path) if path else None, ctx))


def folder_entries(run_dir: str | None) -> set[str] | None:
    """What ``run_dir`` holds before the run starts (None: the folder does not exist yet)."""
    path = Path(run_dir) if run_dir else None
    return set(p.name for p in path.iterdir()) if path is not None and path.is_dir() else None


def remove_created(run_dir: Path, before: set[str] | None) -> None:
    """Undo what a refused run wrote: the folder it created, or in a folder the user had, the new entries only."""
    if before is None:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for p in run_dir.iterdir():
        if p.name not in before:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def check_resume_config(run_dir: Path, cfg: TrainConfig, state: dict[str, Any]) -> None:
    """Refuse to resume a run whose saved config differs outside :data:`RESUME_FREE_FIELDS`."""
    saved = dict(state.get("config") or {})
    now = to_dict(cfg)
    # a field added to TrainConfig after the run started counts as its default
    defaults = to_dict(TrainConfig(model=cfg.model))
    diff = [k for k in now if k not in RESUME_FREE_FIELDS and saved.get(k, defaults[k]) != now[k]]
    if diff:
        detail = ", ".join(f"{k}: run has {saved.get(k)!r}, now {now[k]!r}" for k in diff[:6])
        raise ValueError(
            f"cannot resume {run_dir}: the configuration differs ({detail}); "
            "resume with the same options or start a new --run-dir"
        )


def write_history(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """``history.json`` and ``history.csv`` (one row per epoch), written atomically."""
    atomic_write_json(run_dir / "history.json", history)
    buf = io.StringIO()
    fields = list(history[0]) if history else []
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(history)
    atomic_write_text(run_dir / "history.csv", buf.getvalue())


def open_tensorboard(run_dir: Path):
    """A TensorBoard writer into ``<run_dir>/tensorboard``, or None when tensorboard (an optional
    extra) is not installed: the run goes on without it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))
