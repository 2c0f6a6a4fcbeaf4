"""Benchmark (not a test): where MTCNN puts the five points of turned SynthFER faces (synthetic).

Usage::

    .venv/bin/python benchmarks/mtcnn_turn_bias.py                 # yaw 10°, 25°, 38°; 40 faces each
    .venv/bin/python benchmarks/mtcnn_turn_bias.py --yaws 0 20 40 --n 80

Renders the first ``--n`` test faces of the ``standard`` preset (seed 0) without occluder at each ``--yaw`` (half
of them turned left, half right), pads each with ``--margin`` px of replicated edge pixels (MTCNN's points drift on
tight crops, see docs/synthfer.md), runs MTCNN and prints, per yaw, the detection rate and the mean *signed* error of
each point in inter-ocular distances. Faces turned left are mirrored so that every row reads as "nose towards the
image right": ``near`` is the eye or mouth corner on the side the face turns away from, ``far`` the one it turns
towards. A common negative x error on every point means MTCNN places the whole face as if it were less turned.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from ferlib.data.synthfer import SynthFERDataset, render_face
from ferlib.landmarks import create_detector
from ferlib.landmarks.benchmark import inter_ocular_distance, matching_face, pad_face

POINTS = ("near eye", "far eye", "nose", "near mouth", "far mouth")
#: Slot order after mirroring a face turned left (image-left and image-right swap; x flips).
_MIRROR = [1, 0, 2, 4, 3]


def turn_bias(yaw: float, n: int, margin: int, detector) -> dict:
    """Detection rate and the mean signed (x, y) error per point, in inter-ocular distances, at ``±yaw``."""
    ds = SynthFERDataset(n, seed=0, split="test", config="standard")
    images, truths, signs = [], [], []
    for i in range(n):
        sign = 1.0 if i % 2 else -1.0
        p = dataclasses.replace(ds.params(i), yaw=sign * yaw, occlusion="none")
        image, info = render_face(p)
        padded, truth = pad_face(image, info["landmarks5"], margin)
        images.append(padded)
        truths.append(np.asarray(truth, dtype=np.float64).reshape(5, 2))
        signs.append(sign)
    errors = []
    for truth, sign, faces in zip(truths, signs, detector.detect(images)):
        face = matching_face(faces, truth)
        if face is None:
            continue
        err = (np.asarray(face.landmarks5, dtype=np.float64).reshape(5, 2) - truth) / inter_ocular_distance(truth)
        errors.append(err if sign > 0 else err[_MIRROR] * [-1.0, 1.0])
    errs = np.array(errors).reshape(-1, 5, 2)
    return {
        "yaw": yaw,
        "n": n,
        "detected": len(errors),
        "mean_signed_error": errs.mean(0).tolist() if len(errs) else None,
        "mean_abs_error": np.linalg.norm(errs, axis=2).mean(0).tolist() if len(errs) else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--yaws", type=float, nargs="+", default=[10.0, 25.0, 38.0])
    p.add_argument("--n", type=int, default=40, help="faces per yaw (default 40)")
    p.add_argument("--margin", type=int, default=56)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    detector = create_detector("mtcnn")
    print(
        "SynthFER is synthetic. Mean signed error (x, y) of MTCNN's points / inter-ocular distance, nose turned right."
    )
    print("| yaw | found | " + " | ".join(POINTS) + " |")
    print("|---|---|" + "---|" * len(POINTS))
    for yaw in args.yaws:
        r = turn_bias(yaw, args.n, args.margin, detector)
        cells = (
            ["—"] * 5 if r["mean_signed_error"] is None else [f"{x:+.2f}, {y:+.2f}" for x, y in r["mean_signed_error"]]
        )
        print(f"| {yaw:g}° | {r['detected']}/{r['n']} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
