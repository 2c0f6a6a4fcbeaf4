"""Benchmark (not a test): how close SynthFER (synthetic) is to the aligned face photographs the papers use.

Issue 13's measurements, on demand:

* **MTCNN** (trained on real photographs; facenet-pytorch's weights) detection rate and landmark NME against
  SynthFER's exact five points, per preset (``frontal``, ``standard``), per pose bin and per occluder
  (:func:`ferlib.landmarks.benchmark.detection_by_condition`; NME = mean point error / true inter-ocular distance).
* The same NME on **real faces**: scikit-image's astronaut portrait, the one real face shipped offline with
  reference points (:data:`ferlib.landmarks.examples.ASTRONAUT_LANDMARKS5`, all five points annotated by hand),
  as the full 512-px photo and aligned to the 224-px template at rolls −10°, 0°, +10° and scales 1 and 0.75
  (the points move with the image, exactly). One face, seven views: a small reference, said so wherever it is used.
* **Template offset**: the mean true 5 points of near-frontal (|yaw|, |pitch| ≤ 10°) faces against ArcFace's
  template scaled to the image (:func:`ferlib.landmarks.benchmark.template_offset`).
* **Contact sheets** per class of the ``frontal`` preset, at 224 px colour and at 64 px grey (the resolution
  most FER classifiers see), written as PNG into ``--figures`` (default ``docs/figures``).

Goals (issue 13): MTCNN finds ≥ 98 % of ``frontal`` and ≥ 90 % of unoccluded ``standard`` faces; its NME on
SynthFER is within 2× of its NME on the real faces.

    .venv/bin/python benchmarks/synthfer_realism.py                      # n = 200 per preset, ~2-4 min on 2 cores
    .venv/bin/python benchmarks/synthfer_realism.py --n 400 --write-docs docs/synthfer.md

Writes ``--out``/realism.json (every number) and ``--out``/realism.md (the Markdown tables); ``--write-docs FILE``
also replaces the ``<!-- synthfer-realism:cpu:begin/end -->`` block of FILE with the tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

PRESETS = ("frontal", "standard")
SHEET_COLUMNS_224 = 4
SHEET_COLUMNS_64 = 8


def real_face_views():
    """(name, image, true 5 points) for the astronaut: the full photo and six aligned 224-px views."""
    import numpy as np

    from ferlib.data.face_geometry import canonical_template
    from ferlib.landmarks import align_face
    from ferlib.landmarks.examples import ASTRONAUT_LANDMARKS5, astronaut_image

    photo = astronaut_image()
    views = [("astronaut 512 px photo", photo, ASTRONAUT_LANDMARKS5.copy())]
    template = canonical_template(224).astype(np.float64)
    centre = np.array([111.5, 111.5])
    for scale in (1.0, 0.75):
        for roll in (-10.0, 0.0, 10.0):
            a = np.deg2rad(roll)
            rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            dst = (template - centre) @ (scale * rot).T + centre
            aligned = align_face(photo, ASTRONAUT_LANDMARKS5, template=dst.astype(np.float32), border="edge")
            views.append(
                (f"astronaut aligned 224 px, roll {roll:+.0f}°, scale {scale:g}", aligned.image, aligned.landmarks5)
            )
    return views


def real_face_nme(detector) -> dict:
    import numpy as np

    from ferlib.landmarks.benchmark import matching_face, normalised_mean_error

    rows = []
    views = real_face_views()
    found = detector.detect([v[1] for v in views])
    for (name, _, truth), faces in zip(views, found):
        face = matching_face(faces, truth)
        rows.append(
            {
                "view": name,
                "detected": face is not None,
                "nme": float(normalised_mean_error(face.landmarks5, truth)) if face is not None else float("nan"),
            }
        )
    nmes = [r["nme"] for r in rows if r["detected"]]
    return {
        "points": "all five (eye centres, nose tip, mouth corners), hand-annotated on the astronaut photo",
        "views": rows,
        "detected": sum(r["detected"] for r in rows),
        "n": len(rows),
        "nme": float(np.mean(nmes)) if nmes else float("nan"),
    }


def _label_strip(text: str, width: int, height: int, grey: bool):
    from PIL import Image, ImageDraw

    strip = Image.new("L" if grey else "RGB", (width, height), 255 if grey else (255, 255, 255))
    ImageDraw.Draw(strip).text((4, height // 2 - 6), text, fill=0 if grey else (0, 0, 0))
    return strip


def contact_sheets(n_per_class: int, seed: int, figures: Path) -> dict:
    """Per-class sheets of the frontal preset: 224 px colour (palette PNG) and 64 px grey. Returns paths and sizes."""
    import numpy as np
    from PIL import Image

    from ferlib.data.images import tensor_to_array
    from ferlib.data.synthfer import SynthFERDataset

    ds = SynthFERDataset(7 * max(SHEET_COLUMNS_224, SHEET_COLUMNS_64) * 3, seed=seed, split="test", config="frontal")
    by_class: dict[int, list[int]] = {c: [] for c in range(len(ds.class_names))}
    for i, label in enumerate(ds.labels):
        if len(by_class[int(label)]) < n_per_class:
            by_class[int(label)].append(i)
    out = {}
    for size, cols, grey, name in (
        (224, SHEET_COLUMNS_224, False, "synthfer_classes_224.png"),
        (64, SHEET_COLUMNS_64, True, "synthfer_classes_64_grey.png"),
    ):
        label_w = 70 if size == 64 else 90
        sheet = Image.new("L" if grey else "RGB", (label_w + cols * size, len(by_class) * size), 255)
        for row, (c, idx) in enumerate(by_class.items()):
            sheet.paste(_label_strip(ds.class_names[c], label_w, size, grey), (0, row * size))
            for col, i in enumerate(idx[:cols]):
                img = Image.fromarray(tensor_to_array(ds[i]["image"]))
                if grey:
                    img = img.convert("L").resize((size, size), Image.BILINEAR)
                sheet.paste(img, (label_w + col * size, row * size))
        if not grey:  # an adaptive palette keeps the 224-px sheet under ~300 KB
            sheet = sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        path = figures / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(path, optimize=True)
        out[name] = {"path": str(path), "kb": round(path.stat().st_size / 1024, 1), "size_px": size}
    _ = np
    return out


def _pct(x: float) -> str:
    return "—" if x != x else f"{100 * x:.1f}"


def markdown(result: dict) -> str:
    lines = [
        f"* command: `{result['command']}`",
        f"* measured: {result['measured']}; {result['elapsed_s']:.0f} s; n = {result['n']} faces per preset, seed "
        f"{result['seed']}, split test; MTCNN (facenet-pytorch weights, trained on real photographs).",
        "* SynthFER is synthetic: these numbers describe how a real-photo detector sees it, nothing about the papers.",
        "",
        "| preset | condition | n | detected | rate % | NME % |",
        "|---|---|---|---|---|---|",
    ]

    def row(preset: str, condition: str, r: dict) -> str:
        return f"| {preset} | {condition} | {r['n']} | {r['detected']} | {_pct(r['rate'])} | {_pct(r.get('nme', 0))} |"

    for preset, res in result["presets"].items():
        lines.append(row(preset, "all", res["overall"]))
        lines.append(row(preset, "no occluder", res["unoccluded"]))
        lines += [row(preset, f"\\|yaw\\| {r['yaw_bin']}°", r) for r in res["by_yaw_bin"]]
        lines += [row(preset, f"occluder {r['occluder']}", r) for r in res["by_occluder"]]
    real = result["real"]
    lines += [
        "",
        f"Real reference ({real['points']}; one face, {real['n']} views): detected {real['detected']}/{real['n']}, "
        f"NME {_pct(real['nme'])} %.",
        "",
        "| real view | detected | NME % |",
        "|---|---|---|",
    ]
    lines += [f"| {r['view']} | {'yes' if r['detected'] else 'no'} | {_pct(r['nme'])} |" for r in real["views"]]
    g = result["goals"]
    lines += [
        "",
        "| goal (issue 13) | measured | met |",
        "|---|---|---|",
        f"| MTCNN finds ≥ 98 % of `frontal` faces | {_pct(g['frontal_rate'])} % | "
        f"{'yes' if g['frontal_met'] else 'no'} |",
        f"| MTCNN finds ≥ 90 % of unoccluded `standard` faces | {_pct(g['standard_unoccluded_rate'])} % | "
        f"{'yes' if g['standard_met'] else 'no'} |",
        f"| SynthFER NME (unoccluded `standard`) ≤ 2 × real NME | {_pct(g['synthfer_nme'])} % vs 2 × "
        f"{_pct(g['real_nme'])} % | {'yes' if g['nme_met'] else 'no'} |",
        f"| the same, against the full photo alone (stricter) | {_pct(g['synthfer_nme'])} % vs 2 × "
        f"{_pct(g['real_photo_nme'])} % | {'yes' if g['synthfer_nme'] <= 2 * g['real_photo_nme'] else 'no'} |",
    ]
    t = result["template"]
    lines += [
        "",
        f"Template offset ({t['n']} `frontal` faces with |yaw|, |pitch| ≤ 10°, {t['image_size'][1]} px): mean points "
        f"{t['mean_offset_px']:.1f} px from ArcFace's template on average, spread {t['spread_px']:.1f} px (RMS); "
        f"inter-ocular {t['inter_ocular_px']:.1f} px (template {t['template_inter_ocular_px']:.1f}), eyes-to-mouth "
        f"{t['eye_to_mouth_px']:.1f} px (template {t['template_eye_to_mouth_px']:.1f}).",
        "",
        "| point | template x, y | SynthFER mean x, y | offset x, y |",
        "|---|---|---|---|",
    ]
    names = ("image-left eye", "image-right eye", "nose tip", "image-left mouth", "image-right mouth")
    for name, tp, mp, off in zip(names, t["template"], t["mean_points"], t["offset"]):
        lines.append(f"| {name} | {tp[0]:.1f}, {tp[1]:.1f} | {mp[0]:.1f}, {mp[1]:.1f} | {off[0]:+.1f}, {off[1]:+.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200, help="faces per preset (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/synthfer_realism", help="folder for realism.json and realism.md")
    p.add_argument("--figures", default="docs/figures", help="folder for the contact sheets (PNG)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--sheet-faces", type=int, default=8, help="faces per class in the contact sheets")
    p.add_argument("--write-docs", default=None, help="Markdown file whose synthfer-realism block is rewritten")
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from ferlib.data.synthfer import SynthFERDataset
    from ferlib.landmarks import create_detector
    from ferlib.landmarks.benchmark import detection_records, summarise_detection, template_offset

    torch.set_num_threads(args.threads)
    t0 = time.time()
    detector = create_detector("mtcnn")
    result: dict = {
        "command": "python benchmarks/synthfer_realism.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "n": args.n,
        "seed": args.seed,
        "presets": {},
    }
    for preset in PRESETS:
        ds = SynthFERDataset(args.n, seed=args.seed, split="test", config=preset)
        records = detection_records(ds, detector)
        unocc = records[records["occluder"] == "none"]

        def rows(frame, by):
            return json.loads(summarise_detection(frame, by).to_json(orient="records"))

        result["presets"][preset] = {
            "overall": rows(records, ())[0],
            "unoccluded": rows(unocc, ())[0] if len(unocc) else {"n": 0, "detected": 0, "rate": float("nan")},
            "by_yaw_bin": rows(records, "yaw_bin"),
            "by_occluder": rows(records, "occluder"),
            "by_yaw_bin_and_occluder": rows(records, ("yaw_bin", "occluder")),
            "by_class": rows(records, "class_name"),
        }
        print(f"{preset}: {result['presets'][preset]['overall']}", flush=True)
    result["real"] = real_face_nme(detector)
    result["template"] = template_offset(SynthFERDataset(args.n, seed=args.seed, split="test", config="frontal"))
    result["figures"] = contact_sheets(args.sheet_faces, args.seed, Path(args.figures))
    fr = result["presets"]["frontal"]["overall"]["rate"]
    su = result["presets"]["standard"]["unoccluded"]
    real_nme = result["real"]["nme"]
    result["goals"] = {
        "frontal_rate": fr,
        "frontal_met": bool(fr >= 0.98),
        "standard_unoccluded_rate": su["rate"],
        "standard_met": bool(su["rate"] >= 0.90),
        "synthfer_nme": su.get("nme", float("nan")),
        "real_nme": real_nme,
        "nme_met": bool(np.isfinite(real_nme) and su.get("nme", np.inf) <= 2 * real_nme),
        "real_photo_nme": result["real"]["views"][0]["nme"],
    }
    result["elapsed_s"] = time.time() - t0
    result["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "realism.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    text = markdown(result)
    (out / "realism.md").write_text(text)
    print(text)
    if args.write_docs:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _report import write_section

        write_section(Path(args.write_docs), "synthfer-realism", "cpu", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
