"""CK+ (Lucey et al., 2010): ``cohn-kanade-images``, ``Emotion`` labels per sequence and the 68 ``Landmarks`` per
frame; the last frames of each labelled sequence, subject-disjoint folds; see ``data_manifests/ckplus.yaml``.
"""

from __future__ import annotations

from pathlib import Path

from ferlib.data import native_labels
from ferlib.data.errors import LayoutError
from ferlib.data.face_geometry import landmarks68_to_5, landmarks68_to_8
from ferlib.data.formats._common import LoadContext, folds_split, require
from ferlib.data.formats._registry import register_format
from ferlib.data.manifests import Manifest
from ferlib.data.records import Record, parse_floats


@register_format("ckplus")
def ckplus(
    ctx: LoadContext,
    root: Path,
    split: str,
    m: Manifest,
    *,
    fold: int | None = None,
    num_folds: int = 10,
    frames: int = 3,
    include_neutral: bool = False,
) -> list[Record]:
    images = require(root / "cohn-kanade-images", "CK+ image folder", m, is_dir=True)
    emotion = require(root / "Emotion", "CK+ emotion label folder", m, is_dir=True)
    landmarks_dir = root / "Landmarks"
    records = []
    for emo_file in sorted(emotion.glob("S*/*/*_emotion.txt")):
        subject, seq = emo_file.parent.parent.name, emo_file.parent.name
        text = emo_file.read_bytes().decode("utf-8", errors="replace").strip()
        try:
            value = float(text.split()[0])
            if value != int(value) or int(value) not in native_labels.CKPLUS:
                raise ValueError
        except (ValueError, IndexError):
            ctx.problem(
                "bad_row",
                emo_file,
                f"expected one number 0-7 (e.g. '3.0000000e+00'), found {text[:40]!r}",
                "restore the official emotion file",
            )
            continue
        ctx.report.rows += 1
        label = native_labels.CKPLUS[int(value)]
        seq_dir = images / subject / seq
        frame_files = sorted(p for p in seq_dir.glob("*.png") if not p.name.startswith(".")) if seq_dir.is_dir() else []
        if not frame_files:
            ctx.problem(
                "missing",
                seq_dir,
                f"no frames for the labelled sequence {subject}/{seq} ({emo_file})",
                "restore cohn-kanade-images from the CK+ archive",
                exc=LayoutError,
            )
            continue
        chosen = [(p, label) for p in frame_files[-frames:]]
        if include_neutral and len(frame_files) > frames:
            chosen.insert(0, (frame_files[0], native_labels.CKPLUS[0]))
        for p, lab in chosen:
            lm_file = landmarks_dir / subject / seq / f"{p.stem}_landmarks.txt"
            lm68 = lm5 = lm8 = None
            if lm_file.is_file():
                try:
                    lm68 = parse_floats(lm_file.read_text(errors="replace"), 136, "68 landmarks", str(lm_file)).reshape(
                        68, 2
                    )
                    lm5, lm8 = landmarks68_to_5(lm68), landmarks68_to_8(lm68)
                except ValueError as exc:
                    ctx.problem("bad_row", lm_file, str(exc), "restore the official landmark file")
            records.append(
                Record(
                    id=p.stem,
                    label=lab,
                    path=str(p),
                    subject=subject,
                    landmarks5=lm5,
                    landmarks8=lm8,
                    landmarks=lm68,
                    meta={"sequence": f"{subject}/{seq}"},
                )
            )
    if not records and ctx.report.rows == 0:
        raise LayoutError(
            emotion,
            "no Emotion/S*/*/*_emotion.txt label files found",
            f"extract Emotion_labels into root; see {m.path}",
        )
    return folds_split(ctx, records, split, fold, num_folds, "CK+")
