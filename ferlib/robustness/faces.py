"""The clean test faces every robustness condition is built from: SynthFER's test identities, or the test split
of a real dataset with landmarks (a :class:`~ferlib.robustness.conditions.CleanFaces`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ferlib.robustness.conditions import CleanFaces


def _clean_synthfer_config(preset: str | dict | None) -> dict:
    """The run's SynthFER world with no occluder and no degradation: every condition adds exactly one."""
    base = dict(preset) if isinstance(preset, dict) else {"preset": preset or "standard"}
    return {**base, "occlusion_probs": {"none": 1.0}, "degradation_probs": {}}


def synthfer_faces(
    n: int, *, seed: int = 0, image_size: int = 224, num_classes: int = 7, preset: str | dict | None = "standard"
) -> CleanFaces:
    """``n`` SynthFER **test** faces (identities never seen in training) of the run's ``preset``, rendered
    clean; their parameters are kept so that pose and intensity can be re-rendered. Synthetic data."""
    from ferlib.data.labels import class_names
    from ferlib.data.synthfer import SynthFERDataset

    if n < 1:
        raise ValueError(f"need at least one test face, got n={n}")
    ds = SynthFERDataset(
        n,
        seed=seed,
        split="test",
        image_size=image_size,
        num_classes=num_classes,
        config=_clean_synthfer_config(preset),
    )
    samples = [ds[i] for i in range(n)]
    params = [ds.params(i) for i in range(n)]
    lm8 = np.stack([s["landmarks8"].numpy() for s in samples]).astype(np.float32)
    return CleanFaces(
        images=torch.stack([s["image"] for s in samples]),
        labels=np.array([s["label"] for s in samples], dtype=np.int64),
        landmarks5=np.stack([s["landmarks5"].numpy() for s in samples]).astype(np.float32),
        landmarks8=lm8,
        ids=[s["meta"]["id"] for s in samples],
        class_names=list(class_names(num_classes)),
        yaw=np.array([p.yaw for p in params], dtype=np.float64),
        params=params,
        synthetic=True,
        dataset="synthfer",
    )


def real_faces(
    dataset: str,
    root: str,
    *,
    n: int | None = None,
    seed: int = 0,
    image_size: int = 224,
    num_classes: int = 7,
    landmarks_file: str | None = None,
    **dataset_kwargs: Any,
) -> CleanFaces:
    """Up to ``n`` faces (a seeded random choice; all when None) of the test split of a real dataset copy.

    Occluders are placed from the five points, so faces without them (no detection) are left out and
    counted in ``notes``; run ``ferlib landmarks extract`` first when the copy ships none. The yaw of every face
    is estimated from its points (:func:`ferlib.landmarks.pose.estimate_pose`).
    """
    from ferlib.landmarks.pose import estimate_pose
    from ferlib.train.evaluate import build_eval_dataset

    ds = build_eval_dataset(
        dataset,
        root,
        split="test",
        num_classes=num_classes,
        image_size=image_size,
        **({"landmarks_file": landmarks_file} if landmarks_file else {}),
        **dataset_kwargs,
    )
    order = np.random.default_rng(seed).permutation(len(ds))
    picked, missing = [], 0
    for i in order:
        s = ds[int(i)]
        lm = s.get("landmarks5")
        if lm is None or not torch.isfinite(torch.as_tensor(lm)).all():
            missing += 1
            continue
        picked.append(s)
        if n is not None and len(picked) >= n:
            break
    if not picked:
        raise ValueError(
            f"no test face of {dataset} at {root} has five landmarks; occluders and pose bins are placed from them: "
            "run `ferlib landmarks extract` and pass --landmarks-file"
        )
    lm5 = np.stack([np.asarray(s["landmarks5"], dtype=np.float32).reshape(5, 2) for s in picked])
    has8 = all(s.get("landmarks8") is not None for s in picked)
    lm8 = np.stack([np.asarray(s["landmarks8"], dtype=np.float32).reshape(8, 2) for s in picked]) if has8 else None
    yaw, _ = estimate_pose(lm5.astype(np.float64))
    notes = [f"{missing} test face(s) without five landmarks left out"] if missing else []
    names = list(getattr(ds, "class_names", None) or [str(c) for c in range(num_classes)])
    return CleanFaces(
        images=torch.stack([torch.as_tensor(s["image"]) for s in picked]),
        labels=np.array([int(s["label"]) for s in picked], dtype=np.int64),
        landmarks5=lm5,
        landmarks8=lm8,
        ids=[str(s["meta"].get("id", i)) for i, s in enumerate(picked)],
        class_names=names,
        yaw=np.atleast_1d(np.asarray(yaw, dtype=np.float64)),
        params=None,
        synthetic=False,
        dataset=dataset,
        notes=notes,
    )
