"""Benchmark (not a test): how close SynthFER (synthetic) is to the aligned face photographs the papers use.

Issue 13's measurements, on demand:

* **MTCNN** (trained on real photographs; facenet-pytorch's weights) detection rate (with its 95 % Wilson
  interval) and landmark NME against SynthFER's exact five points, per preset (``frontal``, ``standard``), per pose
  bin and per occluder (:mod:`ferlib.landmarks.benchmark`; NME = mean point error / true inter-ocular distance).
  Each is measured twice: on the images as rendered, and with a ``--margin`` of replicated edge pixels around them
  (:class:`ferlib.landmarks.benchmark.WithMargin`), because MTCNN's points drift on tight aligned crops — on real
  photographs too (the astronaut rows show it).
* The same NME on a **real face**: scikit-image's astronaut portrait, the one real face shipped offline with
  reference points (:data:`ferlib.landmarks.examples.ASTRONAUT_LANDMARKS5`, all five points annotated by hand):
  the full 512-px photo, and the photo aligned onto the 224-px template at rolls −10°, 0°, +10° (the papers'
  crop; the points move with the image exactly), as is and with the same margin. One face: a small reference,
  said so wherever it is used.
* **Template offset**: the mean true 5 points of near-frontal (|yaw|, |pitch| ≤ 10°) ``frontal`` faces against
  ArcFace's template scaled to the image (:func:`ferlib.landmarks.benchmark.template_offset`).
* **Contact sheets** per class of the ``frontal`` preset, at 224 px colour and at 64 px grey (the resolution
  most FER classifiers see), written as PNG into ``--figures`` (default ``docs/figures``).

Goals (issue 13): MTCNN finds ≥ 98 % of ``frontal`` and ≥ 90 % of unoccluded ``standard`` faces (as rendered);
its NME on SynthFER is within 2× of its NME on the real face (compared like for like: aligned crops as is, and
with the margin).

    .venv/bin/python benchmarks/synthfer_realism.py                      # n = 160 per preset, 3-7 min on 2 shared cores
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
ROLLS = (-10.0, 0.0, 10.0)


def real_face_views(margin: int):
    """(name, crop kind, image, true 5 points) for the astronaut: the 512-px photo, and aligned 224-px crops at
    :data:`ROLLS` as is (``tight``) and padded by ``margin`` px (``margin``)."""
    import numpy as np

    from ferlib.data.face_geometry import canonical_template
    from ferlib.landmarks import align_face
    from ferlib.landmarks.benchmark import pad_face
    from ferlib.landmarks.examples import ASTRONAUT_LANDMARKS5, astronaut_image

    photo = astronaut_image()
    views = [("astronaut, 512-px photo", "photo", photo, ASTRONAUT_LANDMARKS5.copy())]
    template = canonical_template(224).astype(np.float64)
    centre = np.array([111.5, 111.5])
    for roll in ROLLS:
        a = np.deg2rad(roll)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        dst = ((template - centre) @ rot.T + centre).astype(np.float32)
        aligned = align_face(photo, ASTRONAUT_LANDMARKS5, template=dst, border="edge")
        views.append((f"astronaut aligned 224 px, roll {roll:+.0f}°", "tight", aligned.image, aligned.landmarks5))
        image, points = pad_face(aligned.image, aligned.landmarks5, margin)
        views.append((f"… the same + {margin}-px margin", "margin", image, points))
    return views


def real_face_nme(detector, margin: int) -> dict:
    import numpy as np

    from ferlib.landmarks.benchmark import matching_face, normalised_mean_error

    rows = []
    views = real_face_views(margin)
    found = detector.detect([v[2] for v in views])
    for (name, kind, _, truth), faces in zip(views, found):
        face = matching_face(faces, truth)
        nme = float(normalised_mean_error(face.landmarks5, truth)) if face is not None else float("nan")
        rows.append({"view": name, "kind": kind, "detected": face is not None, "nme": nme})

    def mean_nme(kind: str) -> float:
        values = [r["nme"] for r in rows if r["kind"] == kind and r["detected"]]
        return float(np.mean(values)) if values else float("nan")

    return {
        "points": "all five (eye centres, nose tip, mouth corners), hand-annotated on the astronaut photo",
        "views": rows,
        "detected": sum(r["detected"] for r in rows),
        "n": len(rows),
        "nme_photo": mean_nme("photo"),
        "nme_tight": mean_nme("tight"),
        "nme_margin": mean_nme("margin"),
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


def _pct(x) -> str:
    return "—" if x is None or x != x else f"{100 * x:.1f}"


def markdown(result: dict) -> str:
    m = result["margin"]
    lines = [
        f"* command: `{result['command']}`",
        f"* measured: {result['measured']}; {result['elapsed_s']:.0f} s; n = {result['n']} faces per preset, seed "
        f"{result['seed']}, split test; MTCNN (facenet-pytorch weights, trained on real photographs); "
        f"margin = {m} px of replicated edge pixels on every side.",
        "* SynthFER is synthetic: these numbers describe how a real-photo detector sees it, nothing about the papers.",
        "",
        "| preset | condition | n | found % (95 % CI) | NME % | found % + margin | NME % + margin |",
        "|---|---|---|---|---|---|---|",
    ]

    def row(preset: str, condition: str, r: dict, w: dict) -> str:
        ci = f"{_pct(r['rate'])} ({_pct(r['rate_low'])}–{_pct(r['rate_high'])})"
        return f"| {preset} | {condition} | {r['n']} | {ci} | {_pct(r['nme'])} | {_pct(w['rate'])} | {_pct(w['nme'])} |"

    for preset, res in result["presets"].items():
        tight, wide = res["as_rendered"], res["with_margin"]
        lines.append(row(preset, "all", tight["overall"], wide["overall"]))
        lines.append(row(preset, "no occluder", tight["unoccluded"], wide["unoccluded"]))
        for key, label in (("by_yaw_bin", "\\|yaw\\| {}°"), ("by_occluder", "occluder {}")):
            col = "yaw_bin" if key == "by_yaw_bin" else "occluder"
            wide_rows = {r[col]: r for r in wide[key]}
            for r in tight[key]:
                if preset == "frontal" and len(tight[key]) == 1:
                    continue  # one pose bin and no occluder: the same as "all"
                lines.append(row(preset, label.format(r[col]), r, wide_rows.get(r[col], {"rate": None, "nme": None})))
    lines += ["", "Per class, as rendered (found % / NME %):", ""]
    presets = list(result["presets"])
    lines += ["| class | " + " | ".join(presets) + " |", "|---" * (len(presets) + 1) + "|"]
    per_class = {p: {r["class_name"]: r for r in result["presets"][p]["as_rendered"]["by_class"]} for p in presets}
    for name in per_class[presets[0]]:
        cells = [
            f"{_pct(per_class[p][name]['rate'])} / {_pct(per_class[p][name]['nme'])}" if name in per_class[p] else "—"
            for p in presets
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    real = result["real"]
    lines += [
        "",
        f"Real reference ({real['points']}; one face): detected {real['detected']}/{real['n']} views.",
        "",
        "| real view | detected | NME % |",
        "|---|---|---|",
    ]
    lines += [f"| {r['view']} | {'yes' if r['detected'] else 'no'} | {_pct(r['nme'])} |" for r in real["views"]]
    g = result["goals"]
    yes = {True: "yes", False: "no"}
    lines += [
        "",
        "| goal (issue 13) | measured | met |",
        "|---|---|---|",
    ]
    goal_rows = (
        ("MTCNN finds ≥ 98 % of `frontal` faces (as rendered)", f"{_pct(g['frontal_rate'])} %", g["frontal_met"]),
        (
            "MTCNN finds ≥ 90 % of unoccluded `standard` faces (as rendered)",
            f"{_pct(g['standard_unoccluded_rate'])} %",
            g["standard_met"],
        ),
        (
            "NME, aligned crops as rendered: SynthFER `frontal` ≤ 2 × real aligned",
            f"{_pct(g['synthfer_nme_tight'])} % vs 2 × {_pct(g['real_nme_tight'])} %",
            g["nme_tight_met"],
        ),
        (
            "NME with the margin: SynthFER `frontal` ≤ 2 × real aligned + margin",
            f"{_pct(g['synthfer_nme_margin'])} % vs 2 × {_pct(g['real_nme_margin'])} %",
            g["nme_margin_met"],
        ),
        (
            "NME with the margin: unoccluded `standard` ≤ 2 × real aligned + margin",
            f"{_pct(g['standard_nme_margin'])} % vs 2 × {_pct(g['real_nme_margin'])} %",
            g["standard_nme_margin_met"],
        ),
    )
    lines += [f"| {goal} | {measured} | {yes[bool(met)]} |" for goal, measured, met in goal_rows]
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


def measure(records) -> dict:
    """Overall, unoccluded, per pose bin, per occluder, per pose bin × occluder and per class, as JSON rows."""
    from ferlib.landmarks.benchmark import summarise_detection

    def rows(frame, by):
        return json.loads(summarise_detection(frame, by).to_json(orient="records"))

    unocc = records[records["occluder"] == "none"]
    empty = {"n": 0, "detected": 0, "rate": None, "rate_low": None, "rate_high": None, "nme": None}
    return {
        "overall": rows(records, ())[0],
        "unoccluded": rows(unocc, ())[0] if len(unocc) else empty,
        "by_yaw_bin": rows(records, "yaw_bin"),
        "by_occluder": rows(records, "occluder"),
        "by_yaw_bin_and_occluder": rows(records, ("yaw_bin", "occluder")),
        "by_class": rows(records, "class_name"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=160, help="faces per preset (default 160)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--margin", type=int, default=56, help="px of edge padding for the second measurement (56)")
    p.add_argument("--out", default="runs/synthfer_realism", help="folder for realism.json and realism.md")
    p.add_argument("--figures", default="docs/figures", help="folder for the contact sheets (PNG)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--sheet-faces", type=int, default=8, help="faces per class in the contact sheets")
    p.add_argument("--write-docs", default=None, help="Markdown file whose synthfer-realism block is rewritten")
    args = p.parse_args(argv)

    import torch

    from ferlib.data.synthfer import SynthFERDataset
    from ferlib.landmarks import create_detector
    from ferlib.landmarks.benchmark import WithMargin, detection_records, template_offset

    torch.set_num_threads(args.threads)
    t0 = time.time()
    detector = create_detector("mtcnn")
    result: dict = {
        "command": "python benchmarks/synthfer_realism.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "n": args.n,
        "seed": args.seed,
        "margin": args.margin,
        "presets": {},
    }
    for preset in PRESETS:
        ds = SynthFERDataset(args.n, seed=args.seed, split="test", config=preset)
        result["presets"][preset] = {
            "as_rendered": measure(detection_records(ds, detector)),
            "with_margin": measure(detection_records(WithMargin(ds, args.margin), detector)),
        }
        print(f"{preset}: {result['presets'][preset]['as_rendered']['overall']}", flush=True)
    result["real"] = real_face_nme(detector, args.margin)
    result["template"] = template_offset(SynthFERDataset(args.n, seed=args.seed, split="test", config="frontal"))
    result["figures"] = contact_sheets(args.sheet_faces, args.seed, Path(args.figures))
    fr = result["presets"]["frontal"]
    st = result["presets"]["standard"]
    real = result["real"]

    def within(a, b) -> bool:
        return a is not None and b is not None and a == a and b == b and a <= 2 * b

    result["goals"] = {
        "frontal_rate": fr["as_rendered"]["overall"]["rate"],
        "frontal_met": bool(fr["as_rendered"]["overall"]["rate"] >= 0.98),
        "standard_unoccluded_rate": st["as_rendered"]["unoccluded"]["rate"],
        "standard_met": bool((st["as_rendered"]["unoccluded"]["rate"] or 0) >= 0.90),
        "synthfer_nme_tight": fr["as_rendered"]["overall"]["nme"],
        "real_nme_tight": real["nme_tight"],
        "nme_tight_met": within(fr["as_rendered"]["overall"]["nme"], real["nme_tight"]),
        "synthfer_nme_margin": fr["with_margin"]["overall"]["nme"],
        "real_nme_margin": real["nme_margin"],
        "nme_margin_met": within(fr["with_margin"]["overall"]["nme"], real["nme_margin"]),
        "standard_nme_margin": st["with_margin"]["unoccluded"]["nme"],
        "standard_nme_margin_met": within(st["with_margin"]["unoccluded"]["nme"], real["nme_margin"]),
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
