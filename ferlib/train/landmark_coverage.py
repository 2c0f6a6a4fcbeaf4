"""Landmark coverage: a model that needs landmarks does not train or evaluate on data that lacks them.

A sample without landmarks carries NaN ``landmarks5`` (:mod:`ferlib.data.schema`). The models
degrade quietly on such samples — AMP-Net's local branch falls back to four equal quadrants and its
eye/mouth patches are zero (so two images' AP features coincide), the Multiple Attention Network
leaves them out of RASnet's mask loss (man.txt Eq. 3's K counts the others). On RAF-DB's aligned
images without ``--landmarks-file`` every sample is such a sample (issue 11, finding 2).

So before a run, :func:`check_coverage` counts, for every split, the samples that lack what the
model needs, and refuses when more than :data:`MAX_MISSING_SHARE` (1 %) of a split lacks them,
naming the fix (extract them with ``ferlib landmarks``, then pass ``--landmarks-file``). Below
that share the run goes on and the count — and which fallback the model applies to those samples —
is recorded (``landmark_coverage.json`` in the run folder and ``metrics.json``).

What a model needs: ``model.needs_landmarks`` (the contract: what the *forward* of this variant
takes), and, for training only, what the current stages' *loss* takes: MAN's ``rasnet``/``joint``
stages need ``landmarks8`` or ``landmarks5`` for the Table 2 ground-truth masks (man.txt §III-B).

Counting never decodes an image when it can avoid it: ferlib's record datasets are read from their
records and landmarks table, SynthFER has exact landmarks by construction; other datasets are
iterated once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch.nn as nn
from torch.utils.data import Dataset

from ferlib.data.dataset import FERDataset
from ferlib.data.protocols import IndexedDataset
from ferlib.data.synthfer import SynthFERDataset
from ferlib.models import FERModel
from ferlib.models.man import MultipleAttentionNetwork

#: Largest share of a split that may lack the landmarks a model needs (issue 11: "say 1 %").
MAX_MISSING_SHARE = 0.01

#: A requirement: a tuple of landmark keys of which a sample must have *one* with finite points.
Requirement = tuple[str, ...]

#: What each model does with a sample that lacks its landmarks (recorded beside the count).
_FALLBACKS = {
    "amp-net": "AMP-Net: the LP branch splits such a face into four equal quadrants and the AP eye/mouth "
    "patches are zero (ferlib/models/amp_net.py)",
    "man": "MAN: such samples are left out of RASnet's mask loss (man.txt Eq. 3; ferlib/models/man.py)",
}


def landmark_requirements(model: nn.Module, stages: Iterable[str] | None = None) -> list[Requirement]:
    """What ``model`` needs: one requirement per landmark input of its forward
    (``model.needs_landmarks``), plus ``("landmarks8", "landmarks5")`` when one of the training
    ``stages`` computes MAN's mask loss (``""``: the stage the model is in; ``None``: evaluation,
    the forward only). Empty: the model needs no landmarks."""
    needs: list[Requirement] = []
    if isinstance(model, FERModel):
        needs = [(key,) for key in model.needs_landmarks]
    if isinstance(model, MultipleAttentionNetwork) and stages is not None:
        if any((s or model.stage) in ("rasnet", "joint") for s in stages):
            needs.append(("landmarks8", "landmarks5"))
    return needs


def _finite(points: Any) -> bool:
    if points is None:
        return False
    arr = np.asarray(points, dtype=np.float32)
    return arr.size > 0 and bool(np.isfinite(arr).all())


def _presence(dataset: Dataset, keys: set[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per item of ``dataset``: {key: has finite points} and whether its points are a detector's
    fallback template (ferlib landmarks files mark them ``fallback: true``)."""
    if isinstance(dataset, IndexedDataset):
        base, fallback = _presence(dataset.base, keys)
        return {k: v[dataset.indices] for k, v in base.items()}, fallback[dataset.indices]
    n = len(dataset)
    if isinstance(dataset, SynthFERDataset):  # rendered from exact landmarks: every item has them
        return {k: np.ones(n, dtype=bool) for k in keys}, np.zeros(n, dtype=bool)
    found = {k: np.zeros(n, dtype=bool) for k in keys}
    fallback = np.zeros(n, dtype=bool)
    if isinstance(dataset, FERDataset):
        for i, rec in enumerate(dataset.records):
            # the loader's own lookup (records, then the --landmarks-file table), without decoding the image
            lm5, lm8, extra = dataset.landmarks_of(i)
            points = {"landmarks5": lm5, "landmarks8": lm8, "landmarks": rec.landmarks}
            for k in keys:
                found[k][i] = _finite(points.get(k))
            fallback[i] = bool(extra.get("landmarks_fallback"))
        return found, fallback
    for i in range(n):
        sample = dataset[i]
        for k in keys:
            found[k][i] = _finite(sample.get(k))
        fallback[i] = bool(sample.get("meta", {}).get("landmarks_fallback"))
    return found, fallback


def split_coverage(dataset: Dataset, requirements: list[Requirement]) -> dict[str, Any]:
    """How many items of ``dataset`` meet every requirement: ``n``, ``n_missing``,
    ``missing_share`` and ``n_fallback`` (points that are a detector's fallback template)."""
    keys = {k for req in requirements for k in req}
    found, fallback = _presence(dataset, keys)
    n = len(dataset)
    ok = np.ones(n, dtype=bool)
    for req in requirements:
        ok &= np.logical_or.reduce([found[k] for k in req])
    n_missing = int((~ok).sum())
    return {
        "n": n,
        "n_missing": n_missing,
        "missing_share": n_missing / n if n else 0.0,
        "n_fallback": int((fallback & ok).sum()),
    }


def check_coverage(
    model: nn.Module,
    splits: Mapping[str, Dataset | None],
    *,
    model_name: str,
    dataset_name: str,
    stages: Iterable[str] | None = None,
    command: str = "train",
    max_missing_share: float = MAX_MISSING_SHARE,
) -> dict[str, Any]:
    """Refuse (``ValueError``, naming the fix) when more than ``max_missing_share`` of any split
    lacks the landmarks ``model`` needs (``stages``: see :func:`landmark_requirements`); otherwise
    return the record to keep with the run:
    ``{"required": [...], "max_missing_share", "splits": {name: split_coverage}, "fallback"}``.
    A model that needs no landmarks gets ``{"required": []}`` without any counting."""
    requirements = landmark_requirements(model, stages)
    record: dict[str, Any] = {"required": [" or ".join(r) for r in requirements]}
    if not requirements:
        return record
    record["max_missing_share"] = max_missing_share
    record["splits"] = {name: split_coverage(ds, requirements) for name, ds in splits.items() if ds is not None}
    family = "man" if isinstance(model, MultipleAttentionNetwork) else model_name
    record["fallback"] = _FALLBACKS.get(family, f"{model_name}: the model's own handling of NaN landmarks")
    bad = {name: c for name, c in record["splits"].items() if c["missing_share"] > max_missing_share}
    if bad:
        what = ", ".join(
            f"{c['n_missing']} of {c['n']} {name} images ({100 * c['missing_share']:.1f} %)" for name, c in bad.items()
        )
        needs = " and ".join(record["required"])
        raise ValueError(
            f"{model_name} needs {needs} for every image ({command}), but {what} of {dataset_name} have none "
            f"(NaN landmarks; at most {100 * max_missing_share:g} % may lack them, and ferlib does not silently "
            f"zero a branch). Extract them with `ferlib landmarks <your {dataset_name} image folder> --out "
            f"landmarks/{dataset_name}.jsonl` (docs/landmarks.md), then pass `--landmarks-file "
            f"landmarks/{dataset_name}.jsonl`"
        )
    return record


def run_coverage(
    model: nn.Module, splits: Mapping[str, Dataset | None], stages: Iterable[str], **names: str
) -> dict[str, Any]:
    """A training run's check: train and validation need what the recipe's ``stages`` need (MAN's
    RASnet stage: its mask loss's points), the test set what the forward needs. Refuses like
    :func:`check_coverage`; returns ``{"training": ..., "test": ...}`` for the run folder."""
    training = check_coverage(model, {k: v for k, v in splits.items() if k != "test"}, stages=list(stages), **names)
    test = check_coverage(model, {"test": splits["test"]}, command="evaluate", **names)
    return {"training": training, "test": test}


def coverage_summary(record: Mapping[str, Any]) -> str:
    """One line for logs: ``"landmarks5: train 0/120 missing, test 1/40 missing"``."""
    if not record.get("required"):
        return "no landmarks needed"
    parts = [f"{name} {c['n_missing']}/{c['n']} missing" for name, c in record["splits"].items()]
    return f"{' and '.join(record['required'])}: {', '.join(parts)}"


__all__ = [
    "MAX_MISSING_SHARE",
    "check_coverage",
    "coverage_summary",
    "landmark_requirements",
    "split_coverage",
]
