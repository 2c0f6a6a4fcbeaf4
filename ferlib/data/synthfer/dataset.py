"""The lazily rendered :class:`SynthFERDataset` (the sample schema) and :func:`materialise`, which writes it as
an image folder with a ``manifest.csv`` (``ferlib data synth``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from ferlib.data.images import array_to_tensor, tensor_to_array
from ferlib.data.labels import class_names as _class_names
from ferlib.data.synthfer.parameters import (
    FaceParams,
    SynthFERConfig,
    resolve_config,
    sample_params,
    split_code,
    subject_name,
)
from ferlib.data.synthfer.render import render_face

# ---------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------


def synthfer_labels(n: int, seed: int, split: str, num_classes: int) -> np.ndarray:
    """Labels of samples 0..n-1: each block of ``num_classes`` consecutive indices is a seeded
    permutation of the classes, so classes are balanced (±1) and label i does not depend on n."""
    rng = np.random.default_rng([int(seed), split_code(split), 4, int(num_classes)])
    blocks = -(-int(n) // num_classes)
    keys = rng.random((blocks, num_classes))
    return np.argsort(keys, axis=1).ravel()[:n].astype(np.int64)


def synthfer_subjects(n: int, seed: int, split: str, subjects_per_split: int) -> np.ndarray:
    """Subject index of samples 0..n-1 (uniform over the split's pool; prefix-stable in n)."""
    rng = np.random.default_rng([int(seed), split_code(split), 3])
    return np.floor(rng.random(int(n)) * subjects_per_split).astype(np.int64)


class SynthFERDataset(Dataset):
    """A torch-style map dataset of ``n`` SynthFER faces, rendered lazily in ``__getitem__``.

    ``__getitem__(i)`` returns the ferlib sample dict (:mod:`ferlib.data.schema`): ``image`` uint8
    3×H×W tensor, ``label``, ``landmarks5``, ``landmarks8``, ``landmarks`` (float32), ``meta`` (``id``,
    ``path`` = None, ``subject``, ``split``, ``yaw``/``pitch``/``roll``, ``occlusion``, ``intensity``,
    ``occluder_area``) and, with ``config.return_occluder_mask``, ``occluder_mask`` (bool H×W).
    ``image_size``/``num_classes`` override the config's values when given.
    """

    def __init__(
        self,
        n: int,
        seed: int = 0,
        split: str = "train",
        image_size: int | None = None,
        num_classes: int | None = None,
        config: SynthFERConfig | str | dict | None = None,
    ) -> None:
        cfg = resolve_config(config)
        changes = {}
        if image_size is not None:
            changes["image_size"] = int(image_size)
        if num_classes is not None:
            changes["num_classes"] = int(num_classes)
        self.config = dataclasses.replace(cfg, **changes) if changes else cfg
        if int(n) < 0:
            raise ValueError(f"SynthFERDataset: n must be ≥ 0, got {n}")
        split_code(split)
        self.n = int(n)
        self.seed = int(seed)
        self.split = split
        self.class_names = _class_names(self.config.num_classes)
        self.labels = synthfer_labels(self.n, self.seed, split, self.config.num_classes)
        self.subject_index = synthfer_subjects(self.n, self.seed, split, self.config.subjects_per_split)
        self.subjects = np.array([subject_name(split, s) for s in self.subject_index], dtype=object)

    def __len__(self) -> int:
        return self.n

    def params(self, i: int) -> FaceParams:
        """The :class:`FaceParams` of sample ``i`` (render them with :func:`render_face`)."""
        if not 0 <= i < self.n:
            raise IndexError(f"SynthFER index {i} out of range for a dataset of {self.n}")
        rng = np.random.default_rng([self.seed, split_code(self.split), int(i), 1])
        return sample_params(
            rng, int(self.labels[i]), self.split, self.config, subject=int(self.subject_index[i]), seed=self.seed
        )

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        i = int(i)
        if i < 0:
            i += self.n
        p = self.params(i)
        image, info = render_face(p)
        sample: dict[str, Any] = {
            "image": array_to_tensor(image),
            "label": int(p.label),
            "landmarks5": torch.from_numpy(info["landmarks5"]),
            "landmarks8": torch.from_numpy(info["landmarks8"]),
            "landmarks": torch.from_numpy(info["landmarks"]),
            "meta": {
                "id": f"{self.split}_{i:06d}",
                "path": None,
                "subject": str(self.subjects[i]),
                "split": self.split,
                "yaw": p.yaw,
                "pitch": p.pitch,
                "roll": p.roll,
                "occlusion": p.occlusion,
                "intensity": p.intensity,
                "occluder_area": float(info["occluder_mask"].mean()),
                "dataset": "synthfer",
            },
        }
        if self.config.return_occluder_mask:
            sample["occluder_mask"] = torch.from_numpy(info["occluder_mask"])
        return sample


# ---------------------------------------------------------------------------------------------
# Materialise as an image folder with a manifest
# ---------------------------------------------------------------------------------------------


def _list_collate(batch: list) -> list:
    return batch


def materialise(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    split: str = "train",
    image_size: int = 224,
    num_classes: int = 7,
    *,
    n_test: int | None = None,
    config: SynthFERConfig | None = None,
    num_workers: int = 0,
    progress: bool = True,
) -> Path:
    """Write SynthFER as ``out_dir/images/<split>/<id>.png`` plus ``out_dir/manifest.csv``.

    ``split``: ``train``, ``test``, ``val`` or ``both`` (``n`` train images and ``n_test`` test
    images, default ``max(num_classes, n // 4)``). Manifest columns: ``id, path`` (relative to
    ``out_dir``), ``split, label, subject, yaw, pitch, roll, occlusion, lm5`` (10 floats
    ``x1 y1 … x5 y5``), ``lm8`` (16 floats). The manifest is written last and atomically, so a
    folder without one is an interrupted run. Returns the manifest's path.
    """
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from ferlib.data.occlusion import MANIFEST_COLUMNS, format_points
    from ferlib.fileio import atomic_write_bytes, atomic_write_text

    out_dir = Path(out_dir)
    if split == "both":
        plan = [("train", int(n)), ("test", int(n_test) if n_test is not None else max(num_classes, int(n) // 4))]
    else:
        split_code(split)
        plan = [(split, int(n))]
    rows: list[list[str]] = []
    for sp, count in plan:
        ds = SynthFERDataset(count, seed=seed, split=sp, image_size=image_size, num_classes=num_classes, config=config)
        loader = DataLoader(ds, batch_size=16, num_workers=num_workers, collate_fn=_list_collate)
        bar = tqdm(total=count, desc=f"SynthFER {sp}", disable=not progress, unit="img")
        for batch in loader:
            for s in batch:
                m = s["meta"]
                rel = Path("images") / sp / f"{m['id']}.png"
                buf = io.BytesIO()
                Image.fromarray(tensor_to_array(s["image"])).save(buf, format="PNG", compress_level=1)
                atomic_write_bytes(out_dir / rel, buf.getvalue())
                rows.append(
                    [
                        m["id"],
                        rel.as_posix(),
                        sp,
                        str(s["label"]),
                        m["subject"],
                        f"{m['yaw']:.3f}",
                        f"{m['pitch']:.3f}",
                        f"{m['roll']:.3f}",
                        m["occlusion"],
                        format_points(s["landmarks5"], 5),
                        format_points(s["landmarks8"], 8),
                    ]
                )
            bar.update(len(batch))
        bar.close()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows(rows)
    return atomic_write_text(out_dir / "manifest.csv", text.getvalue())


__all__ = ["SynthFERDataset", "materialise", "synthfer_labels", "synthfer_subjects"]
