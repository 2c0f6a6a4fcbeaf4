"""``run_robustness(run_dirs, dataset)``: every trained model under every test condition, one protocol.

1. Load each run folder (``ferlib train`` output: ``config.json`` and ``checkpoints/best.pt`` or ``last.pt``);
   its model name, seed and **training condition** (clean or occluded faces, from its config) are columns.
2. Build the clean test faces once (:mod:`ferlib.robustness.faces`) and, one family at a time, every condition
   of the profile's :class:`~ferlib.robustness.conditions.ConditionGrid`; every model predicts every condition.
3. Statistics (:mod:`ferlib.robustness.stats`): accuracy and macro-F1 per model and condition (mean ± std over
   seeds, bootstrap interval over faces), the paired drop from clean, McNemar and a paired bootstrap interval of
   the accuracy difference for every model pair; attention on the occluder (:mod:`ferlib.robustness.attention`).
4. Write ``results.json`` and one CSV per table (``accuracy.csv``, ``per_run.csv``, ``drops.csv``,
   ``pairs.csv``, ``attention.csv``) and the seaborn figures (:mod:`ferlib.robustness.figures`) into ``out_dir``.

Sizes come from a :class:`RobustnessProfile` (``smoke``: CI, seconds; ``default``: `make study`'s quick version;
``lecture``: 84 faces, the committed outputs; ``full``: the whole test split, for a GPU).
SynthFER numbers are synthetic and labelled so.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ferlib.robustness.attention import attention_records, summarise_attention
from ferlib.robustness.conditions import (
    DEGRADATION_LEVELS,
    ConditionGrid,
    ConditionSet,
    iter_condition_sets,
)
from ferlib.robustness.stats import compare_models, metric_summary, paired_mean_interval


@dataclass(frozen=True)
class RobustnessProfile:
    """How big a robustness run is: test faces (None = the whole test split), the condition grid, faces whose
    CAMs are measured per occluder (at ``attention_area``), bootstrap resamples, batch size, CAM method and
    processes that draw occluders."""

    name: str
    n_faces: int | None
    grid: ConditionGrid
    attention_faces: int
    attention_area: float = 0.3
    n_resamples: int = 2000
    batch_size: int = 32
    cam_method: str = "GradCAM"
    workers: int = 1


def _mild_strong() -> dict[str, tuple[float, ...]]:
    return {k: (v[0], v[-1]) for k, v in DEGRADATION_LEVELS.items()}


_SMALL_GRID = ConditionGrid(
    areas=(0.2, 0.4),
    yaws=(0.0, 30.0, 60.0),
    real_yaw_bins=(0.0, 30.0),
    degradations=_mild_strong(),
    intensities=(0.5, 1.0),
)

PROFILES: dict[str, RobustnessProfile] = {
    "smoke": RobustnessProfile("smoke", 14, _SMALL_GRID, 3, attention_area=0.2, n_resamples=200, batch_size=16),
    # `make study`'s quick version of `lecture` (15 minutes in all): about two minutes for five runs.
    "default": RobustnessProfile("default", 21, _SMALL_GRID, 3, n_resamples=500, batch_size=16),
    # The committed outputs (16 runs: 5 networks + ResNet-18 over 3 seeds, MAN 1): 84 faces, 30 conditions,
    # 2174 s on 2 partly shared cores (forward passes 1392 s, attention 735 s; results.json, docs/study.md).
    "lecture": RobustnessProfile(
        "lecture",
        n_faces=84,
        grid=ConditionGrid(
            areas=(0.1, 0.3, 0.5),
            yaws=(0.0, 30.0, 60.0),
            degradations=_mild_strong(),
            intensities=(0.5, 1.0),
        ),
        attention_faces=42,
        workers=2,
    ),
    "full": RobustnessProfile(
        "full", n_faces=None, grid=ConditionGrid(), attention_faces=400, n_resamples=5000, batch_size=64, workers=4
    ),
}


def get_profile(profile: str | RobustnessProfile, **overrides: Any) -> RobustnessProfile:
    """A :class:`RobustnessProfile` by name (:data:`PROFILES`), with ``overrides`` that are not None."""
    if isinstance(profile, RobustnessProfile):
        base = profile
    else:
        try:
            base = PROFILES[str(profile).lower()]
        except KeyError:
            raise ValueError(f"unknown robustness profile {profile!r}; choose one of {', '.join(PROFILES)}") from None
    changes = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(base, **changes) if changes else base


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


@dataclass
class LoadedRun:
    """A trained model from a run folder, with what the tables need to know about it."""

    run_dir: Path
    model_name: str
    seed: int
    training: str  # "clean" | "occluded" | "unknown"
    training_detail: str
    model: torch.nn.Module
    num_classes: int
    image_size: int
    class_names: list[str]
    dataset: str
    synthfer_preset: str | None = None
    key: str = ""  # the model's name in the tables (model, plus [training] when runs differ in it)


def find_checkpoint(run_dir: Path) -> Path:
    for name in ("best.pt", "last.pt"):
        if (run_dir / "checkpoints" / name).is_file():
            return run_dir / "checkpoints" / name
    raise FileNotFoundError(
        f"run folder {run_dir} has no checkpoints/best.pt or checkpoints/last.pt; pass folders written by "
        "`ferlib train` (or a folder above them)"
    )


def expand_run_dirs(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders from ``paths``: a folder with ``config.json`` and ``checkpoints/`` is a run; any other folder
    is searched below for runs (e.g. a study's ``train/`` folder with ``<model>/seed-<k>`` runs)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.is_dir():
            raise FileNotFoundError(f"run folder {p} does not exist")
        if (p / "config.json").is_file() and (p / "checkpoints").is_dir():
            out.append(p)
            continue
        found = sorted(c.parent for c in p.rglob("config.json") if (c.parent / "checkpoints").is_dir())
        if not found:
            raise FileNotFoundError(f"no run folder (config.json + checkpoints/) in or below {p}")
        out.extend(found)
    return list(dict.fromkeys(out))


def training_condition(config: dict[str, Any]) -> tuple[str, str, str | None]:
    """``(condition, detail, synthfer_preset)`` of a run from its ``config.json``: ``occluded`` when its training
    faces carried occluders (a SynthFER preset with occlusion, or a folder written by ``ferlib data occlude``),
    else ``clean``."""
    dataset = str(config.get("dataset", "synthfer")).lower()
    kw = dict(config.get("dataset_kwargs") or {})
    root = config.get("root")
    if dataset == "synthfer" and not root:
        from ferlib.data.synthfer import resolve_config
        from ferlib.train.recipes import load_profile

        preset = kw.get("config")
        if preset is None:
            try:
                preset = load_profile(str(config.get("profile", "default"))).synthfer_preset
            except (KeyError, ValueError, FileNotFoundError):
                preset = None
        preset = preset or "standard"
        cfg = resolve_config(preset)
        probs = {k: float(v) for k, v in cfg.occlusion_probs.items()}
        occluded = 1.0 - probs.get("none", 0.0) / max(sum(probs.values()), 1e-12)
        name = preset if isinstance(preset, str) else json.dumps(preset, sort_keys=True)
        detail = f"SynthFER {name} preset: {occluded:.0%} of training faces occluded (synthetic)"
        return ("occluded" if occluded > 0 else "clean"), detail, preset if isinstance(preset, str) else None
    manifest = Path(str(root)) / "manifest.csv" if root else None
    if manifest is not None and manifest.is_file():
        import csv

        with manifest.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        occ = [r.get("occlusion", "none") not in ("", "none", None) for r in rows if r.get("split", "train") == "train"]
        if occ:
            share = float(np.mean(occ))
            return ("occluded" if share > 0 else "clean"), f"{root}: {share:.0%} of training faces occluded", None
    return "clean", f"{dataset} as distributed (no occluders added)", None


def load_run(run_dir: str | Path, device: torch.device) -> LoadedRun:
    """The model of a run folder (validation-selected ``best.pt``, else ``last.pt``) in eval mode on ``device``."""
    from ferlib.models import create_model
    from ferlib.train.checkpoint import load_model_state, read_checkpoint

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path} not found: pass run folders written by `ferlib train`")
    config = json.loads(cfg_path.read_text())
    ckpt = find_checkpoint(run_dir)
    state = read_checkpoint(ckpt)
    model = create_model(state["model_name"], num_classes=int(state["num_classes"]), **dict(state["model_kwargs"]))
    load_model_state(model, state["model"], str(ckpt))
    model.to(device).eval()
    training, detail, preset = training_condition(config)
    return LoadedRun(
        run_dir=run_dir,
        model_name=str(state["model_name"]),
        seed=int(config.get("seed", 0)),
        training=training,
        training_detail=detail,
        model=model,
        num_classes=int(state["num_classes"]),
        image_size=int(state.get("image_size", config.get("image_size", 224))),
        class_names=list(state.get("class_names") or []),
        dataset=str(config.get("dataset", "synthfer")),
        synthfer_preset=preset,
    )


def _assign_keys(runs: list[LoadedRun]) -> None:
    both = {r.model_name for r in runs if r.training == "clean"} & {r.model_name for r in runs if r.training != "clean"}
    for r in runs:
        r.key = f"{r.model_name} [{r.training}]" if r.model_name in both else r.model_name


# ---------------------------------------------------------------------------------------------
# Prediction
# ---------------------------------------------------------------------------------------------


def _batch(cset: ConditionSet, sl: slice, labels: np.ndarray, device: torch.device) -> dict[str, Any]:
    from ferlib.data.transforms import normalize_images

    batch: dict[str, Any] = {
        "image": normalize_images(cset.images[sl].to(device)),
        "landmarks5": torch.as_tensor(np.asarray(cset.landmarks5[sl]), dtype=torch.float32, device=device),
        "label": torch.as_tensor(labels[cset.index[sl]], device=device),
    }
    if cset.landmarks8 is not None:
        batch["landmarks8"] = torch.as_tensor(np.asarray(cset.landmarks8[sl]), dtype=torch.float32, device=device)
    return batch


@torch.no_grad()
def predict_set(run: LoadedRun, cset: ConditionSet, labels: np.ndarray, batch_size: int, device: torch.device):
    """Predicted classes of ``run`` on ``cset`` and the seconds spent inside the model's forward passes."""
    from ferlib.models import model_inputs

    preds, forward = [], 0.0
    for start in range(0, len(cset), batch_size):
        batch = _batch(cset, slice(start, start + batch_size), labels, device)
        inputs = model_inputs(run.model, batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        logits = run.model(batch["image"], **inputs).logits
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        forward += time.perf_counter() - t0
        preds.append(logits.float().argmax(1).cpu().numpy())
    return (np.concatenate(preds) if preds else np.zeros(0, np.int64)), forward


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------

TABLES = ("accuracy", "per_run", "drops", "pairs", "attention")


@dataclass
class RobustnessResults:
    """What :func:`run_robustness` measured (also written to ``out_dir``): one list of row dicts per table of
    :data:`TABLES`, the settings, the runs, timings and notes."""

    out_dir: Path | None
    settings: dict[str, Any]
    runs: list[dict[str, Any]]
    conditions: list[dict[str, Any]]
    accuracy: list[dict[str, Any]] = field(default_factory=list)
    per_run: list[dict[str, Any]] = field(default_factory=list)
    drops: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    attention: list[dict[str, Any]] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)

    def table(self, name: str):
        """One table as a pandas DataFrame."""
        import pandas as pd

        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; tables are {TABLES}")
        return pd.DataFrame(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "runs": self.runs,
            "conditions": self.conditions,
            **{t: getattr(self, t) for t in TABLES},
            "timing": self.timing,
            "notes": self.notes,
            "figures": self.figures,
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.floating, float)):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, Path):
        return str(v)
    return v


def write_results(results: RobustnessResults, out_dir: Path) -> None:
    """``results.json`` (everything) and one CSV per table into ``out_dir``."""
    from ferlib.fileio import atomic_write_json, atomic_write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "results.json", _jsonable(results.to_dict()))
    for name in TABLES:
        df = results.table(name)
        atomic_write_text(out_dir / f"{name}.csv", df.to_csv(index=False))


def _condition_columns(cset: ConditionSet) -> dict[str, Any]:
    c = cset.condition
    return {"condition": c.name, "family": c.family, "factor": c.factor, "level": c.level}


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def run_robustness(
    run_dirs: Sequence[str | Path],
    dataset: str = "synthfer",
    root: str | None = None,
    *,
    profile: str | RobustnessProfile = "smoke",
    out_dir: str | Path | None = None,
    device: str = "auto",
    seed: int = 0,
    n_faces: int | None = None,
    landmarks_file: str | None = None,
    synthfer_preset: str | None = None,
    figures: bool = True,
    progress: bool = True,
    workers: int | None = None,
    dataset_kwargs: dict[str, Any] | None = None,
) -> RobustnessResults:
    """Evaluate every run of ``run_dirs`` (folders, or folders above them) on every condition; see the module
    docstring. ``dataset``: ``synthfer`` (generated test identities; ``root`` None) or a real dataset with its
    ``root`` (faces need five landmarks: ``landmarks_file`` supplies them). ``synthfer_preset``: the SynthFER
    world of the clean test faces (default: the first run's training preset). ``dataset_kwargs`` go to the real
    dataset's loader (e.g. ``{"variant": "original"}`` for RAF-DB's uncropped images with their five points).
    Returns the tables; with ``out_dir`` also writes them, plus figures unless ``figures=False``."""
    from ferlib.robustness.faces import real_faces, synthfer_faces
    from ferlib.runs import resolve_device

    prof = get_profile(profile, n_faces=n_faces, workers=workers)
    dev = resolve_device(device)
    t_start = time.perf_counter()
    paths = expand_run_dirs(run_dirs)
    runs = [load_run(p, dev) for p in tqdm(paths, desc="load runs", disable=not progress)]
    sizes = {(r.num_classes, r.image_size) for r in runs}
    if len(sizes) > 1:
        raise ValueError(
            f"the runs differ in (classes, image size): {sorted(sizes)}; evaluate runs of one class count and image "
            "size together"
        )
    num_classes, image_size = sizes.pop()
    _assign_keys(runs)
    synthetic = dataset.lower() == "synthfer" and root is None
    if synthetic:
        preset = synthfer_preset or next((r.synthfer_preset for r in runs if r.synthfer_preset), None) or "standard"
        faces = synthfer_faces(
            prof.n_faces or 3000, seed=seed, image_size=image_size, num_classes=num_classes, preset=preset
        )
    else:
        if root is None:
            raise ValueError(f"{dataset} needs --root (the folder of your copy); only SynthFER is generated")
        preset = None
        faces = real_faces(
            dataset, root, n=prof.n_faces, seed=seed, image_size=image_size, num_classes=num_classes,
            landmarks_file=landmarks_file, **(dataset_kwargs or {}),
        )  # fmt: skip
    t_faces = time.perf_counter()
    labels = faces.labels
    keys = list(dict.fromkeys(r.key for r in runs))
    preds: dict[str, list[np.ndarray]] = {}
    index: dict[str, np.ndarray] = {}
    conditions: list[dict[str, Any]] = []
    results_notes: list[str] = []
    att_records: list[dict[str, Any]] = []
    forward = predict_time = build_time = attention_time = 0.0
    attention_area = min(prof.grid.areas, key=lambda a: abs(a - prof.attention_area)) if prof.grid.areas else None
    n_conditions = len(prof.grid.conditions(synthetic))
    bar = tqdm(total=n_conditions, desc="conditions", disable=not progress)
    t_build = time.perf_counter()
    for cset in iter_condition_sets(faces, prof.grid, seed=seed, workers=prof.workers):
        build_time += time.perf_counter() - t_build
        name = cset.condition.name
        if len(cset) == 0:
            results_notes.append(f"{name}: no test face in this condition (left out)")
            bar.update(1)
            t_build = time.perf_counter()
            continue
        row = {**_condition_columns(cset), "n": len(cset)}
        if cset.achieved_area is not None:
            row["achieved_area"] = float(np.mean(cset.achieved_area))
        conditions.append(row)
        index[name] = cset.index
        t0 = time.perf_counter()
        preds[name] = []
        for run in runs:
            p, f = predict_set(run, cset, labels, prof.batch_size, dev)
            preds[name].append(p)
            forward += f
        predict_time += time.perf_counter() - t0
        if cset.condition.family == "occlusion" and cset.condition.level == attention_area and prof.attention_faces > 0:
            t0 = time.perf_counter()
            att_records += _attention_for_set(runs, cset, labels, preds[name], prof, dev)
            attention_time += time.perf_counter() - t0
        bar.update(1)
        t_build = time.perf_counter()
    bar.close()
    t_stats = time.perf_counter()
    results = RobustnessResults(
        out_dir=Path(out_dir) if out_dir else None,
        settings={
            "dataset": "synthfer" if synthetic else dataset,
            "synthetic": synthetic,
            "synthfer_preset": preset,
            "root": root,
            "profile": prof.name,
            "n_faces": len(faces),
            "seed": seed,
            "image_size": image_size,
            "num_classes": num_classes,
            "class_names": faces.class_names,
            "grid": dataclasses.asdict(prof.grid),
            "attention_area": attention_area,
            "attention_faces": prof.attention_faces,
            "cam_method": prof.cam_method,
            "n_resamples": prof.n_resamples,
            "confidence": 0.95,
            "device": str(dev),
            "label": (
                f"SynthFER (synthetic, {preset} preset), {len(faces)} test faces"
                if synthetic
                else f"{dataset}, {len(faces)} test faces"
            ),
        },  # fmt: skip
        runs=[
            {
                "run_dir": str(r.run_dir),
                "model": r.model_name,
                "key": r.key,
                "seed": r.seed,
                "training": r.training,
                "training_detail": r.training_detail,
            }
            for r in runs
        ],
        conditions=conditions,
        notes=list(faces.notes) + results_notes,
    )
    _fill_tables(results, runs, keys, labels, preds, index, num_classes, prof, seed)
    results.attention = summarise_attention(
        att_records, ("key", "training", "condition", "factor", "source"), n_resamples=prof.n_resamples, seed=seed
    )
    total = time.perf_counter() - t_start
    results.timing = {
        "total_s": total,
        "test_faces_s": t_faces - t_start - 0.0,
        "build_conditions_s": build_time,
        "predict_s": predict_time,
        "forward_s": forward,
        "forward_share_of_predict": forward / predict_time if predict_time > 0 else float("nan"),
        "forward_share_of_evaluation": forward / (predict_time + build_time) if predict_time + build_time else 0.0,
        "attention_s": attention_time,
        "statistics_s": time.perf_counter() - t_stats,
    }
    if out_dir is not None:
        out = Path(out_dir)
        if figures:
            from ferlib.robustness.figures import save_figures

            results.figures = [str(p.relative_to(out)) for p in save_figures(results, out)]
        write_results(results, out)
    return results


def _attention_for_set(runs, cset, labels, preds_by_run, prof, dev) -> list[dict[str, Any]]:
    """Attention records of the first seed's run of every model on the first ``attention_faces`` faces."""
    out = []
    seen: set[str] = set()
    n = min(prof.attention_faces, len(cset))
    for run, pred in zip(runs, preds_by_run):
        if run.key in seen:
            continue
        seen.add(run.key)
        for start in range(0, n, prof.batch_size):
            sl = slice(start, min(n, start + prof.batch_size))
            batch = _batch(cset, sl, labels, dev)
            with torch.enable_grad():
                recs = attention_records(
                    run.model,
                    batch["image"],
                    batch,
                    pred[sl],
                    labels[cset.index[sl]],
                    cset.occluder_mask[sl],
                    cset.face_mask[cset.index[sl]],
                    method=prof.cam_method,
                )
            for r in recs:
                r.update(
                    key=run.key, training=run.training, condition=cset.condition.name, factor=cset.condition.factor
                )
                r["face"] += start
            out += recs
    return out


def _fill_tables(results, runs, keys, labels, preds, index, num_classes, prof, seed) -> None:
    by_key = {k: [i for i, r in enumerate(runs) if r.key == k] for k in keys}
    training = {r.key: r.training for r in runs}
    cond_rows = {c["condition"]: c for c in results.conditions}
    nr = prof.n_resamples
    for name, row in cond_rows.items():
        y = labels[index[name]]
        cols = {k: row[k] for k in ("condition", "family", "factor", "level")}
        if "achieved_area" in row:
            cols["achieved_area"] = row["achieved_area"]
        for i, run in enumerate(runs):
            s = metric_summary(y, preds[name][i][None], num_classes, n_resamples=nr, seed=seed)
            results.per_run.append(
                {"key": run.key, "model": run.model_name, "seed": run.seed, "training": run.training, **cols, **s}
            )
        for k in keys:
            p = np.stack([preds[name][i] for i in by_key[k]])
            s = metric_summary(y, p, num_classes, n_resamples=nr, seed=seed)
            results.accuracy.append({"key": k, "training": training[k], **cols, **s})
        correct = {k: np.stack([preds[name][i] == y for i in by_key[k]]) for k in keys}
        for a, b in itertools.combinations(keys, 2):
            c = compare_models(correct[a], correct[b], n_resamples=nr, seed=seed)
            results.pairs.append({"model_a": a, "model_b": b, **cols, **c})
        if name == "clean":
            continue
        # Paired drop: the same faces on clean (index into the clean set = the face index).
        clean_y = labels[index["clean"]]
        pos = np.searchsorted(index["clean"], index[name])
        for k in keys:
            clean_c = np.stack([preds["clean"][i] == clean_y for i in by_key[k]]).mean(0)[pos]
            cond_c = np.stack([preds[name][i] == y for i in by_key[k]]).mean(0)
            drop, low, high = paired_mean_interval(clean_c - cond_c, n_resamples=nr, seed=seed)
            results.drops.append(
                {
                    "key": k,
                    "training": training[k],
                    **cols,
                    "n": int(len(y)),
                    "clean_accuracy": float(clean_c.mean()) if len(y) else float("nan"),
                    "accuracy": float(cond_c.mean()) if len(y) else float("nan"),
                    "drop": drop,
                    "drop_low": low,
                    "drop_high": high,
                }
            )
