"""Training augmentation speed: LandmarkAugment image by image vs the whole batch at once.

``ferlib.data.transforms.LandmarkAugment`` has two paths that give the same images (to within one
grey level) and the same landmarks: torchvision's functional ops one image at a time, and a
whole-batch path (``torch.where`` flip, two-gather shift, one ``grid_sample`` warp, batched colour
blends). It picks the per-image path on a CPU and the batched one on accelerators; this benchmark
is the measurement behind that choice. Each recipe's own augmentation is timed on uint8 224×224
batches already on the device, per image, for both paths:

    python benchmarks/augment_speed.py --threads 2 --devices cpu,cuda --write docs/benchmarks.md

The table (command, machine, versions) is written between markers in the target Markdown file,
one section per device.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from _report import header, publish  # noqa: E402

from ferlib.data.transforms import LandmarkAugment  # noqa: E402
from ferlib.train.batches import build_augment  # noqa: E402
from ferlib.train.recipes import load_recipe  # noqa: E402

#: Recipes whose augmentation differs: AMP-Net (flip, shift, colour), MA-Net (flip, shift, zoom),
#: LAN/FFRA-Net (flip only).
RECIPES = ("amp-net", "ma-net", "lan")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_path(aug: LandmarkAugment, batch: dict, repeats: int) -> float:
    """Median milliseconds per batch of ``aug`` on ``batch`` (parameters drawn each call)."""
    aug(batch)  # warm-up
    times = []
    for _ in range(repeats):
        _sync(batch["image"].device)
        t0 = time.perf_counter()
        aug(batch)
        _sync(batch["image"].device)
        times.append(time.perf_counter() - t0)
    return 1000 * sorted(times)[len(times) // 2]


def measure(recipe_name: str, device: torch.device, batch_size: int, repeats: int) -> dict:
    base = build_augment(load_recipe(recipe_name), True)
    assert base is not None, f"recipe {recipe_name} has no augmentation"
    g = torch.Generator().manual_seed(0)
    batch = {
        "image": torch.randint(0, 256, (batch_size, 3, 224, 224), dtype=torch.uint8, generator=g).to(device),
        "landmarks5": (torch.rand(batch_size, 5, 2, generator=g) * 200 + 12).to(device),
    }
    row = {"recipe": recipe_name, "augment": repr(base).removeprefix("LandmarkAugment"), "batch": batch_size}
    for label, batched in (("per_image", False), ("batched", True)):
        aug = LandmarkAugment(
            flip=base.flip,
            translate=base.translate,
            rotate=base.rotate,
            scale=base.scale,
            color_jitter=base.color_jitter,
            seed=0,
            batched=batched,
        )
        row[label] = time_path(aug, batch, repeats)
    row["default"] = "batched" if device.type != "cpu" else "per-image"
    return row


def render(device: torch.device, rows: list[dict], command: str, note: str) -> str:
    lines = header(device, command, "uint8 224×224 batches on the device, median of the timed calls", note)
    lines += [
        "",
        "| recipe | augmentation | batch | per-image ms/batch | batched ms/batch | batched speed-up | ferlib uses |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['recipe']} | `{r['augment']}` | {r['batch']} | {r['per_image']:.1f} | {r['batched']:.1f} | "
            f"{r['per_image'] / r['batched']:.2f}× | {r['default']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipes", default=",".join(RECIPES))
    p.add_argument("--devices", default="cpu,cuda", help="devices to measure (cuda skipped when absent)")
    p.add_argument("--batch-sizes", default="32", help="CPU batch sizes, comma-separated")
    p.add_argument("--cuda-batch-sizes", default="128,350", help="CUDA batch sizes (the papers' 128 and 350)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--write", help="Markdown file to write the table into (e.g. docs/benchmarks.md)")
    p.add_argument("--note", default="", help="a remark recorded with the table")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "python benchmarks/augment_speed.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    for dev_name in args.devices.split(","):
        if dev_name == "cuda" and not torch.cuda.is_available():
            print("CUDA not available: GPU figures still to come", file=sys.stderr)
            continue
        device = torch.device(dev_name)
        sizes = args.cuda_batch_sizes if device.type == "cuda" else args.batch_sizes
        rows = []
        for name in args.recipes.split(","):
            for bs in (int(b) for b in sizes.split(",")):
                r = measure(name, device, bs, args.repeats)
                rows.append(r)
                print(
                    f"{device.type:4} {name:9} batch {bs:4}: per-image {r['per_image']:8.1f} ms, batched "
                    f"{r['batched']:8.1f} ms",
                    flush=True,
                )
        publish(render(device, rows, command, args.note), args.write, "augment-speed", device.type)
    return 0


if __name__ == "__main__":
    sys.exit(main())
