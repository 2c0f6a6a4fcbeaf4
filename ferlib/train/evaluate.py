"""Evaluate any ferlib checkpoint on any dataset, split or RAN occlusion/pose list.

``evaluate_checkpoint(ckpt, "rafdb", root=..., subset="occlusion")`` rebuilds the model the
checkpoint was trained as (its name, variant keywords and class count are stored in it), loads the
weights with ``torch.load(weights_only=True)`` and reports accuracy, per-class accuracy, macro-F1
and the confusion matrix (:func:`ferlib.train.metrics.classification_metrics`).

Subsets (the RAN test lists of Wang et al., used by AMP-Net, MA-Net and LAN):
``occlusion``, ``pose30``, ``pose45`` or a path to a list file; on a real copy they go through
``data_manifests/ran_<dataset>.yaml``. On SynthFER (generated, no root) the same names select
the test faces with an occluder, or with |yaw| or |pitch| above 30°/45°, from the generator's
parameters — synthetic, and reported as such.

The trainer's own evaluation is here too: :func:`predict` runs a model over a loader without
augmentation, and :func:`evaluate_split` turns that into metrics, each rank of a data-parallel run
predicting a shard and the shards gathered before the metrics are computed.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

import ferlib.train.distributed as dist_utils
from ferlib.data.protocols import IndexedDataset
from ferlib.models import create_model, model_inputs
from ferlib.runs import resolve_device
from ferlib.train.batches import compute_loss, prepare_images, to_device
from ferlib.train.checkpoint import load_model_state, read_checkpoint
from ferlib.train.data import make_loader
from ferlib.train.distributed import DistContext
from ferlib.train.guidance import TrainingGuidance
from ferlib.train.landmark_coverage import check_coverage
from ferlib.train.metrics import classification_metrics


@torch.no_grad()
def predict(
    core: nn.Module,
    loader: DataLoader,
    device: torch.device,
    *,
    guidance_fn: Callable | None = None,
    autocast: Callable = nullcontext,
    channels_last: bool = False,
    progress: bool = False,
    desc: str = "eval",
) -> dict[str, Any]:
    """Labels, predictions and mean loss of ``core`` over ``loader`` (no augmentation)."""
    was_training = core.training
    core.eval()
    ys, ps, loss_sum, n = [], [], 0.0, 0
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
        batch = to_device(batch, device)
        images = prepare_images(batch, channels_last)
        with autocast():
            if guidance_fn is not None:
                batch["guidance"] = guidance_fn(images)
            out = core(images, **model_inputs(core, batch))
            loss = compute_loss(core, out, batch)
        loss_sum += float(loss) * len(batch["label"])
        n += len(batch["label"])
        ys.append(batch["label"].cpu())
        ps.append(out.logits.float().argmax(1).cpu())
    core.train(was_training)
    return {
        "y_true": torch.cat(ys).numpy() if ys else np.zeros(0, np.int64),
        "y_pred": torch.cat(ps).numpy() if ps else np.zeros(0, np.int64),
        "loss_sum": loss_sum,
        "n": n,
    }


def gather_predictions(pred: dict[str, Any], ctx: DistContext) -> dict[str, Any]:
    """All ranks' shards → one prediction set (rank order; the order does not matter to metrics)."""
    if ctx.world_size == 1:
        return pred
    parts = dist_utils.all_gather_object(pred)
    return {
        "y_true": np.concatenate([p["y_true"] for p in parts]),
        "y_pred": np.concatenate([p["y_pred"] for p in parts]),
        "loss_sum": sum(p["loss_sum"] for p in parts),
        "n": sum(p["n"] for p in parts),
    }


def evaluate_split(core, ds, batch_size, device, ctx, class_names, **kw) -> dict[str, Any]:
    """Metrics of ``core`` on all of ``ds``; under DDP each rank predicts a shard."""
    idx = np.arange(len(ds))[ctx.rank :: ctx.world_size]
    loader = make_loader(IndexedDataset(ds, idx) if ctx.world_size > 1 else ds, batch_size)
    pred = gather_predictions(predict(core, loader, device, **kw), ctx)
    metrics = classification_metrics(pred["y_true"], pred["y_pred"], class_names=class_names)
    metrics["loss"] = pred["loss_sum"] / max(pred["n"], 1)
    return metrics


# --------------------------------------------------------------------------------------------
# Any checkpoint on any dataset or RAN subset
# --------------------------------------------------------------------------------------------

SUBSETS = ("occlusion", "pose30", "pose45")

#: Dataset name → RAN manifest holding its occlusion/pose lists.
RAN_MANIFESTS = {
    "rafdb": "ran_rafdb",
    "affectnet7": "ran_affectnet",
    "affectnet8": "ran_affectnet",
    "ferplus": "ran_ferplus",
}


def _synthfer_subset(ds: Any, subset: str) -> np.ndarray:
    params = getattr(ds, "params", None) or getattr(getattr(ds, "base", None), "params", None)
    if params is None:
        raise ValueError("this SynthFER dataset cannot report per-face parameters; subsets need ferlib.data.synthfer")
    keep = []
    for i in range(len(ds)):
        p = params(i)
        if subset == "occlusion":
            ok = p.occlusion not in (None, "none")
        else:
            ok = max(abs(p.yaw), abs(p.pitch)) > (30.0 if subset == "pose30" else 45.0)
        if ok:
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def build_eval_dataset(
    dataset: str,
    root: str | None = None,
    *,
    subset: str | None = None,
    split: str = "test",
    num_classes: int = 7,
    image_size: int = 224,
    n: int | None = None,
    **kw: Any,
) -> Dataset:
    """The dataset (or RAN subset) an evaluation runs on."""
    from ferlib.data.datasets import build_dataset, resolve_name

    name = resolve_name(dataset)
    common = dict(num_classes=num_classes, image_size=image_size, **kw)
    if name == "synthfer" and root is None:
        ds = build_dataset("synthfer", split, None, n=n, **common)
        if subset is None:
            return ds
        if subset not in SUBSETS:
            raise ValueError(
                f"SynthFER subsets are {SUBSETS}; list files apply to real RAF-DB/AffectNet/FERPlus copies"
            )
        return IndexedDataset(ds, _synthfer_subset(ds, subset))
    if subset is None:
        return build_dataset(dataset, split, root, **common)
    ran = RAN_MANIFESTS.get(name)
    if ran is None:
        raise ValueError(f"occlusion/pose lists exist for {sorted(RAN_MANIFESTS)}, not {dataset!r}")
    if subset in SUBSETS:
        return build_dataset(ran, subset, root, **common)
    path = Path(subset)
    if not path.is_file():
        raise FileNotFoundError(f"--subset {subset!r} is neither one of {SUBSETS} nor an existing list file")
    # The parser follows the dataset family, not the split; any split name of the manifest will do.
    from ferlib.data.manifests import load_manifest

    split_name = next(iter(load_manifest(ran).list_files))
    return build_dataset(ran, split_name, root, list_file=path, **common)


def evaluate_checkpoint(
    checkpoint: str | Path,
    dataset: str,
    root: str | None = None,
    *,
    subset: str | None = None,
    split: str = "test",
    device: str = "auto",
    batch_size: int = 32,
    n: int | None = None,
    progress: bool = True,
    dataset_kwargs: dict[str, Any] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    landmarks_file: str | None = None,
) -> dict[str, Any]:
    """Metrics of ``checkpoint`` on ``dataset`` (``split`` or ``subset``); see the module docstring.

    ``model_kwargs`` override the variant keywords stored in the checkpoint (``--model-kw``). A model
    whose forward needs landmarks is refused when more than 1 % of the images lack them
    (:mod:`ferlib.train.landmark_coverage`); ``landmarks_file`` supplies them (``ferlib landmarks``)."""
    from ferlib.data.datasets import resolve_name

    if n is not None:
        if n < 1:
            raise ValueError(f"--n must be a positive number of SynthFER images, got {n}")
        if dataset.lower() != "synthfer" or root is not None:
            raise ValueError(
                f"--n sets how many SynthFER images are generated and has no effect on {dataset}; leave it out"
            )
    if batch_size < 1:
        raise ValueError(f"--batch-size must be a positive integer, got {batch_size}")
    state = read_checkpoint(checkpoint)
    variant = {**dict(state["model_kwargs"]), **(model_kwargs or {})}
    try:
        model = create_model(state["model_name"], num_classes=int(state["num_classes"]), **variant)
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"checkpoint {checkpoint} names model {state['model_name']!r} with keywords "
            f"{variant} that this ferlib cannot build: {exc}"
        ) from None
    load_model_state(
        model,
        state["model"],
        str(checkpoint),
        hint="The checkpoint's weights do not fit the model it names; it was edited or written by another "
        "ferlib version: evaluate a checkpoint written by this ferlib's `ferlib train`",
    )
    dev = resolve_device(device)
    model.to(dev).eval()
    ds = build_eval_dataset(
        dataset,
        root,
        subset=subset,
        split=split,
        num_classes=int(state["num_classes"]),
        image_size=int(state.get("image_size", 224)),
        n=n,
        **({"landmarks_file": landmarks_file} if landmarks_file else {}),
        **(dataset_kwargs or {}),
    )
    if len(ds) == 0:
        raise ValueError(f"{dataset} {subset or split} has no images to evaluate")
    coverage = check_coverage(
        model, {subset or split: ds}, model_name=state["model_name"], dataset_name=dataset, command="evaluate"
    )
    guidance_fn = None
    if state.get("guidance") is not None:
        g = TrainingGuidance()
        g.restore(model, state["guidance"], dev)
        guidance_fn = g.fn
    class_names = list(state.get("class_names") or getattr(ds, "class_names", None) or [])
    metrics = evaluate_split(
        model,
        ds,
        batch_size,
        dev,
        DistContext(device=dev),
        class_names or None,
        guidance_fn=guidance_fn,
        progress=progress,
        desc="evaluate",
    )
    return {
        "checkpoint": str(checkpoint),
        "model": state["model_name"],
        "model_kwargs": variant,
        "trained_epochs": int(state.get("epoch", 0)),
        "dataset": resolve_name(dataset),
        "subset": subset,
        "split": split if subset is None else None,
        "synthetic": dataset.lower() == "synthfer" and root is None,
        **metrics,
        "landmark_coverage": coverage,
    }
