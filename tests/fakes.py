"""Tiny fake dataset trees in each dataset's official layout, for the loader tests.

Real datasets are never shipped. Each ``make_*`` writes a few small images and the dataset's own
label files (CRLF line endings where the real files have them) into a folder and returns a
:class:`FakeTree` saying what it wrote: the expected items per split, and which files were made
bad on purpose (a duplicated row, a missing file, a corrupt JPEG) when asked.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

CORRUPT_BYTES = b"\xff\xd8\xff\xe0 this is not really a JPEG \x00\x01"


@dataclass
class FakeTree:
    root: Path
    counts: dict[str, int] = field(default_factory=dict)  # split -> items a clean load returns
    labels: dict[str, list[int]] = field(default_factory=dict)  # split -> canonical labels in load order
    missing: list[Path] = field(default_factory=list)
    corrupt: list[Path] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def write_image(
    path: Path,
    size: tuple[int, int] = (24, 20),
    seed: int = 0,
    fmt: str | None = None,
    dots: list[tuple[int, int]] | None = None,
) -> Path:
    """A small random RGB image (W×H = size); ``dots`` are made pure white 1-pixel points."""
    rng = np.random.default_rng(seed)
    arr = (rng.random((size[1], size[0], 3)) * 120).astype(np.uint8)
    for x, y in dots or []:
        arr[y, x] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = fmt or ("PNG" if path.suffix.lower() == ".png" else "JPEG")
    Image.fromarray(arr).save(path, format=fmt, quality=95)
    return path


def write_corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(CORRUPT_BYTES)
    return path


def write_lines(path: Path, lines: list[str], crlf: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    eol = "\r\n" if crlf else "\n"
    path.write_bytes((eol.join(lines) + eol).encode())
    return path


# Canonical indices for readability: 0 neutral 1 happy 2 sad 3 surprise 4 fear 5 disgust 6 anger 7 contempt
RAF_NATIVE_TO_CANON = {1: 3, 2: 4, 3: 5, 4: 1, 5: 2, 6: 6, 7: 0}


def make_rafdb(
    root: Path,
    n_train: int = 7,
    n_test: int = 5,
    *,
    duplicate: bool = False,
    missing: bool = False,
    corrupt: bool = False,
    conflict: bool = False,
) -> FakeTree:
    """RAF-DB basic: EmoLabel/list_patition_label.txt (CRLF), Image/aligned, Image/original and
    Annotation/manual landmarks (5 "x y" lines then attribute lines)."""
    tree = FakeTree(root)
    lines = []
    for split, n in (("train", n_train), ("test", n_test)):
        labels = []
        for i in range(1, n + 1):
            native = (i - 1) % 7 + 1
            name = f"{split}_{i:05d}.jpg" if split == "train" else f"{split}_{i:04d}.jpg"
            stem = name[:-4]
            lines.append(f"{name} {native}")
            write_image(root / "Image" / "aligned" / f"{stem}_aligned.jpg", (20, 20), seed=i)
            write_image(root / "Image" / "original" / name, (40, 30), seed=100 + i)
            # image-right eye written first on purpose: the loader orders pairs by x
            pts = ["25.0 10.0", "12.0 11.0", "19.5 16.0", "14.0 22.0", "24.0 22.5"]
            write_lines(root / "Annotation" / "manual" / f"{stem}_manu_attri.txt", pts + ["1", "0", "2"])
            labels.append(RAF_NATIVE_TO_CANON[native])
        tree.labels[split] = labels
        tree.counts[split] = n
    if duplicate:
        lines.insert(3, lines[0])
        tree.duplicated.append(lines[0].split()[0])
    if conflict:
        name, native = lines[1].split()
        lines.append(f"{name} {int(native) % 7 + 1}")
    if missing:
        lines.append("train_09999.jpg 4")
        tree.missing.append(root / "Image" / "aligned" / "train_09999_aligned.jpg")
    if corrupt:
        bad = root / "Image" / "aligned" / "train_00002_aligned.jpg"
        write_corrupt(bad)
        tree.corrupt.append(bad)
    write_lines(root / "EmoLabel" / "list_patition_label.txt", lines, crlf=True)
    return tree


def _lm68(box: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    x, y, w, h = box
    pts = np.stack([x + rng.random(68) * w, y + rng.random(68) * h], axis=1)
    pts[36:42] = [x + 0.3 * w, y + 0.35 * h]  # image-left eye
    pts[42:48] = [x + 0.7 * w, y + 0.35 * h]
    pts[30] = [x + 0.5 * w, y + 0.55 * h]
    pts[48] = [x + 0.35 * w, y + 0.75 * h]
    pts[54] = [x + 0.65 * w, y + 0.75 * h]
    return pts


def make_affectnet(
    root: Path,
    n_train: int = 10,
    n_val: int = 9,
    *,
    duplicate: bool = False,
    missing: bool = False,
    corrupt: bool = False,
    header: bool = True,
) -> FakeTree:
    """AffectNet: Manually_Annotated_file_lists/{training,validation}.csv (CRLF) and
    Manually_Annotated_Images/<dir>/<hash>.jpg; expressions cycle through 0-10 (8-10 are dropped)."""
    tree = FakeTree(root)
    rng = np.random.default_rng(0)
    cols = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"
    for split, fname, n in (("train", "training.csv", n_train), ("test", "validation.csv", n_val)):
        rows = [cols] if header else []
        labels7, labels8 = [], []
        for i in range(n):
            expression = i % 11
            rel = f"{100 + i}/{split}{i:03d}abcdef{i:02d}.jpg"
            box = (4, 6, 30, 30)
            write_image(root / "Manually_Annotated_Images" / rel, (40, 44), seed=i + (0 if split == "train" else 50))
            lm = _lm68(box, rng)
            lm_text = ";".join(f"{v:.2f}" for v in lm.ravel())
            rows.append(f"{rel},{box[0]},{box[1]},{box[2]},{box[3]},{lm_text},{expression},0.1,-0.2")
            if expression <= 7:
                labels8.append(expression)
                if expression < 7:
                    labels7.append(expression)
            if i == 0:
                tree.extra[f"{split}_first"] = {"rel": rel, "box": box, "lm68": lm}
        if duplicate and split == "train":
            rows.insert(2, rows[1])
            tree.duplicated.append(rows[1].split(",")[0])
        if missing and split == "train":
            rows.append("999/missing.jpg,0,0,10,10,,1,0,0")
            tree.missing.append(root / "Manually_Annotated_Images" / "999" / "missing.jpg")
        if corrupt and split == "train":
            bad = root / "Manually_Annotated_Images" / f"{101}/train001abcdef01.jpg"
            write_corrupt(bad)
            tree.corrupt.append(bad)
        write_lines(root / "Manually_Annotated_file_lists" / fname, rows, crlf=True)
        tree.labels[split] = labels7
        tree.extra[f"{split}_labels8"] = labels8
        tree.counts[split] = len(labels7)
    return tree


FER_NATIVE_TO_CANON = {0: 6, 1: 5, 2: 4, 3: 1, 4: 2, 5: 3, 6: 0}
USAGES = (("train", "Training"), ("val", "PublicTest"), ("test", "PrivateTest"))


def _fer_rows(per_split: int) -> list[tuple[int, str, np.ndarray]]:
    rows = []
    k = 0
    for _, usage in USAGES:
        for _ in range(per_split):
            pixels = (np.arange(48 * 48) * (k + 1) % 256).astype(np.uint8)
            rows.append(((k % 7), usage, pixels))
            k += 1
    return rows


def make_fer2013(root: Path, per_split: int = 4, *, corrupt: bool = False, crlf: bool = True) -> FakeTree:
    """FER-2013: fer2013.csv (emotion,pixels,Usage)."""
    tree = FakeTree(root)
    lines = ["emotion,pixels,Usage"]
    for emotion, usage, pixels in _fer_rows(per_split):
        lines.append(f"{emotion},{' '.join(map(str, pixels))},{usage}")
    for split, usage in USAGES:
        labs = [FER_NATIVE_TO_CANON[e] for e, u, _ in _fer_rows(per_split) if u == usage]
        tree.labels[split] = labs
        tree.counts[split] = len(labs)
    if corrupt:
        lines.append("3,1 2 3,Training")  # 3 pixels instead of 2304
        tree.corrupt.append(Path("fer2013.csv"))
    write_lines(root / "fer2013.csv", lines, crlf=crlf)
    tree.extra["first_pixels"] = _fer_rows(per_split)[0][2]
    return tree


#: FERPlus vote rows (neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF)
#: cycled over the images, with the canonical majority (None = dropped).
FERPLUS_VOTES = [
    ([8, 1, 0, 0, 0, 0, 0, 1, 0, 0], 0),  # neutral
    ([0, 9, 0, 0, 0, 0, 0, 0, 1, 0], 1),  # happiness
    ([1, 0, 7, 0, 0, 0, 2, 0, 0, 0], 3),  # surprise
    ([0, 0, 0, 6, 4, 0, 0, 0, 0, 0], 2),  # sadness
    ([0, 0, 0, 0, 1, 0, 0, 9, 0, 0], 7),  # contempt
    ([0, 0, 0, 0, 0, 0, 0, 0, 10, 0], None),  # unknown majority
    ([0, 0, 0, 0, 0, 0, 0, 0, 0, 10], None),  # not a face
    ([5, 5, 0, 0, 0, 0, 0, 0, 0, 0], None),  # tie
]


def make_ferplus(
    root: Path,
    per_split: int = 8,
    *,
    folders: bool = True,
    duplicate: bool = False,
    missing: bool = False,
    corrupt: bool = False,
) -> FakeTree:
    """FERPlus: fer2013new.csv (CRLF) plus FER2013Train/Valid/Test PNG folders (``folders=True``)
    or fer2013.csv pixels beside it (``folders=False``). One empty "Image name" row per split."""
    tree = FakeTree(root)
    header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
    lines = [header]
    fer_lines = ["emotion,pixels,Usage"]
    dirs = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
    k = 0
    for split, usage in USAGES:
        labels8 = []
        for i in range(per_split + 1):
            votes, label = FERPLUS_VOTES[i % len(FERPLUS_VOTES)]
            name = f"fer{k:07d}.png"
            if i == per_split:
                name, label = "", None  # FER image unusable: empty name
            lines.append(f"{usage},{name}," + ",".join(map(str, votes)))
            pixels = np.full(48 * 48, (k * 7) % 256, dtype=np.uint8)
            fer_lines.append(f"0,{' '.join(map(str, pixels))},{usage}")
            if name and folders:
                Image.fromarray(pixels.reshape(48, 48)).save(_mk(root / dirs[usage] / name))
            if label is not None:
                labels8.append(label)
            k += 1
        tree.extra[f"{split}_labels8"] = labels8
        tree.labels[split] = [y for y in labels8 if y != 7]
        tree.counts[split] = len(tree.labels[split])
    if duplicate:
        lines.insert(2, lines[1])
        tree.duplicated.append(lines[1].split(",")[1])
    if missing and folders:
        gone = root / "FER2013Train" / "fer0000001.png"
        gone.unlink()
        tree.missing.append(gone)
    if corrupt and folders:
        bad = root / "FER2013Train" / "fer0000000.png"
        write_corrupt(bad)
        tree.corrupt.append(bad)
    write_lines(root / "fer2013new.csv", lines, crlf=True)
    if not folders:
        write_lines(root / "fer2013.csv", fer_lines, crlf=True)
    return tree


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def make_class_folders(
    root: Path,
    split_dirs: dict[str, str],
    classes: list[str],
    per_class: int = 2,
    *,
    ext: str = ".png",
    missing: bool = False,
    corrupt: bool = False,
    extra_folder: str | None = None,
) -> FakeTree:
    """ImageFolder-style copies (SFEW 2.0 Train/Val, CAER-S train/test, FED-RO): <dir>/<Class>/*."""
    from ferlib.data.native_labels import folder_label

    tree = FakeTree(root)
    for split, d in split_dirs.items():
        labels = []
        for c in sorted(classes):
            for i in range(per_class):
                write_image(root / d / c / f"{c.lower()}_{i:03d}{ext}", (22, 26), seed=i)
                labels.append(folder_label(c))
        tree.labels[split] = labels
        tree.counts[split] = len(labels)
    first_split, first_dir = next(iter(split_dirs.items()))
    if corrupt:
        c = sorted(classes)[0]
        bad = write_corrupt(root / first_dir / c / f"{c.lower()}_999{ext}")
        tree.corrupt.append(bad)
        tree.counts[first_split] += 1
    if extra_folder:
        write_image(root / first_dir / extra_folder / f"x{ext}")
    return tree


KDEF_EXPR = {"AF": 4, "AN": 6, "DI": 5, "HA": 1, "NE": 0, "SA": 2, "SU": 3}


def make_kdef(
    root: Path,
    n_per_gender: int = 6,
    angles: tuple[str, ...] = ("S", "HL"),
    sessions: tuple[str, ...] = ("A",),
    *,
    bad_name: bool = False,
    nested: bool = True,
) -> FakeTree:
    """KDEF: KDEF/<session><gender><id>/<session><gender><id><expr><angle>.JPG."""
    tree = FakeTree(root)
    base = root / "KDEF" if nested else root
    subjects = []
    n = 0
    for gender in ("F", "M"):
        for sid in range(1, n_per_gender + 1):
            subjects.append(f"{gender}{sid:02d}")
            for s in sessions:
                folder = base / f"{s}{gender}{sid:02d}"
                for expr in KDEF_EXPR:
                    for angle in angles:
                        write_image(folder / f"{s}{gender}{sid:02d}{expr}{angle}.JPG", (16, 18), seed=n)
                        n += 1
    if bad_name:
        write_image(base / f"{sessions[0]}F01" / "AF01SUX.JPG", (16, 18))
    tree.counts["all"] = n
    tree.extra["subjects"] = subjects
    return tree


CK_NATIVE_TO_CANON = {0: 0, 1: 6, 2: 7, 3: 5, 4: 4, 5: 1, 6: 2, 7: 3}


def make_ckplus(
    root: Path,
    n_subjects: int = 12,
    frames: int = 5,
    *,
    missing_sequence: bool = False,
    bad_emotion: bool = False,
    landmarks: bool = True,
) -> FakeTree:
    """CK+: cohn-kanade-images/S###/###/S###_###_########.png, Emotion/.../*_emotion.txt
    ("   3.0000000e+00" + CRLF) for the last frame, Landmarks/.../*_landmarks.txt (68 lines)."""
    tree = FakeTree(root)
    rng = np.random.default_rng(1)
    subjects, labels, n_images = [], [], 0
    for k in range(n_subjects):
        subject = f"S{5 + 7 * k:03d}"
        subjects.append(subject)
        for seq_no in (1, 2):
            seq = f"{seq_no:03d}"
            frame_paths = []
            for f in range(1, frames + 1):
                stem = f"{subject}_{seq}_{f:08d}"
                frame_paths.append(
                    write_image(root / "cohn-kanade-images" / subject / seq / f"{stem}.png", (32, 28), seed=k * 100 + f)
                )
                if landmarks:
                    lm = _lm68((4, 4, 24, 20), rng)
                    write_lines(
                        root / "Landmarks" / subject / seq / f"{stem}_landmarks.txt",
                        [f"   {x:.7e}   {y:.7e}" for x, y in lm],
                        crlf=False,
                    )
            if seq_no == 2 and k % 3 == 0:
                continue  # unlabelled sequence (like most CK+ sequences)
            native = (k + seq_no) % 8
            last = frame_paths[-1].stem
            write_lines(root / "Emotion" / subject / seq / f"{last}_emotion.txt", [f"   {native:.7e}"], crlf=True)
            labels.extend([CK_NATIVE_TO_CANON[native]] * min(3, frames))
            n_images += min(3, frames)
    if missing_sequence:
        write_lines(root / "Emotion" / "S999" / "001" / "S999_001_00000009_emotion.txt", ["   1.0000000e+00"])
    if bad_emotion:
        write_lines(root / "Emotion" / "S998" / "001" / "S998_001_00000009_emotion.txt", ["happy"])
    tree.counts["all"] = n_images
    tree.labels["all"] = labels
    tree.extra["subjects"] = subjects
    return tree


def make_ran_lists(
    root: Path, rafdb_test_stems: list[str], rafdb_native: list[int], *, folder: str = "RAN"
) -> dict[str, Path]:
    """RAF-DB RAN lists for the given test images: occlusion (CRLF, first row duplicated) and pose."""
    occ = [
        f"{stem}_aligned {native - 1} {1 + i % 4}"
        for i, (stem, native) in enumerate(zip(rafdb_test_stems, rafdb_native))
    ]
    occ.insert(1, occ[0])
    pose = [f"{native - 1}/{stem}_aligned.jpg" for stem, native in zip(rafdb_test_stems, rafdb_native)]
    return {
        "occlusion": write_lines(root / folder / "rafdb_occlusion_list.txt", occ, crlf=True),
        "pose30": write_lines(root / folder / "val_raf_db_list.txt", pose, crlf=False),
        "pose45": write_lines(root / folder / "val_raf_db_list_45.txt", pose[:2], crlf=False),
    }


def make_synthfer_folder(root: Path, n: int = 6, size: int = 32, *, split: str = "train") -> FakeTree:
    """A folder in the layout ``ferlib data synth`` writes (manifest.csv + images/<split>/<id>.png)."""
    tree = FakeTree(root)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "path", "split", "label", "subject", "yaw", "pitch", "roll", "occlusion", "lm5", "lm8"])
    labels = []
    for i in range(n):
        rel = f"images/{split}/{split}_{i:06d}.png"
        write_image(root / rel, (size, size), seed=i)
        lm5 = " ".join(f"{v:.3f}" for v in [10, 12, 22, 12, 16, 18, 11, 24, 21, 24])
        lm8 = " ".join(f"{v:.3f}" for v in [16, 18, 7, 12, 13, 12, 19, 12, 25, 12, 11, 24, 21, 24, 16, 27])
        writer.writerow(
            [f"{split}_{i:06d}", rel, split, i % 8, f"s{i % 3}", "10.000", "-5.000", "0.000", "none", lm5, lm8]
        )
        labels.append(i % 8)
    (root / "manifest.csv").write_text(buf.getvalue())
    tree.labels[split] = labels
    tree.counts[split] = n
    return tree
