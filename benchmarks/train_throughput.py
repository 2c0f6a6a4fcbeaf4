"""Training throughput per model: model-only vs end-to-end, on CPU and (when present) CUDA.

* **model-only** — synthetic, already-normalised tensors on the device; times forward, loss,
  backward and optimiser step. The ceiling the data pipeline can at best reach.
* **end-to-end** — the trainer's own pipeline: SynthFER decoded once into the uint8 memory-mapped
  cache (:mod:`ferlib.data.cache`), ``DataLoader`` with the trainer's seeded sampler and collation,
  pinned memory and non-blocking transfer on CUDA, the recipe's augmentation on the device
  (``LandmarkAugment``), normalisation on the device, then the same step.

Targets (issue 5): end-to-end ≥ 90 % of model-only on 2 CPU cores, ≥ 85 % on a GPU.

    python benchmarks/train_throughput.py --batch-size 8 --threads 2 --steps 2 --write docs/benchmarks.md

The table (with the command, the machine and the library versions) is written between markers in
the target Markdown file, one section per device, so CPU and GPU runs can fill it independently.

``--suite`` measures what issue 16 asks of a GPU, per model, batch size, precision and eager vs
compiled: model-only and end-to-end images/s (end-to-end here is the trainer's device-resident path,
:mod:`ferlib.train.device_data`: the uint8 set on the device, sampled order, augmentation and
normalisation there, no DataLoader), FLOPs per step from ``torch.utils.flop_counter.FlopCounterMode``
and the TFLOP/s they imply with their share of a stated bf16 peak, peak memory, compile time and the
time of one 12,271-face (RAF-DB) epoch. ``--paper-batches`` uses the papers' batch sizes (MA-Net 128,
AMP-Net 128 and 350, LAN 64, FFRA-Net 128, MAN 42):

    python benchmarks/train_throughput.py --suite --paper-batches --devices cuda --precisions fp32,bf16 \
        --compile --steps 10 --warmup 3 --write docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from _report import header, publish  # noqa: E402

from ferlib.data.protocols import EpochSampler  # noqa: E402
from ferlib.data.transforms import normalize_images  # noqa: E402
from ferlib.models import create_model, list_models, model_inputs, recipe_name  # noqa: E402
from ferlib.models._stacked import set_batched_regions  # noqa: E402
from ferlib.train.batches import (  # noqa: E402
    autocast_factory,
    build_augment,
    compute_loss,
    to_device,
)
from ferlib.train.data import make_loader  # noqa: E402
from ferlib.train.device_data import DeviceTrainSet  # noqa: E402
from ferlib.train.optim import make_optimizer, optimizer_step  # noqa: E402
from ferlib.train.recipes import load_recipe  # noqa: E402

PAPER_MODELS = ("amp-net", "ma-net", "lan", "ffra-net", "man")
#: The papers' training batch sizes (AMP-Net trains at 128 and at 350; issue 16).
PAPER_BATCHES = (("ma-net", 128), ("amp-net", 128), ("amp-net", 350), ("lan", 64), ("ffra-net", 128), ("man", 42))
RAFDB_TRAIN_FACES = 12_271
#: bf16 dense matrix throughput the share of peak is stated against (TFLOP/s), by device-name fragment:
#: issue 16's figure for the H200 (and the H100, same tensor cores). Override with --peak-tflops.
PEAK_BF16_TFLOPS = {"H200": 790.0, "H100": 790.0}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _prepare(name: str, device: torch.device, channels_last: bool):
    recipe = load_recipe(recipe_name(name))
    torch.manual_seed(0)
    model = create_model(name, num_classes=7).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if recipe.stages:
        model.set_stage(recipe.stages[-1].name)  # the expensive stage (MAN: ERSnet)
    model.train()
    return recipe, model, make_optimizer(recipe, model.parameters())


def _step(model, optimizer, batch, autocast, scaler):
    with autocast():
        out = model(batch["image"], **model_inputs(model, batch))
        loss = compute_loss(model, out, batch)
    optimizer_step(loss, optimizer, scaler)


def _guidance_stub(name: str, batch_size: int, device: torch.device) -> dict:
    # LAN's loss reads batch["guidance"] (B×7×7); the benchmark supplies a fixed map so that the
    # BCE term is part of the timed step, as in training after the warm-up.
    return {"guidance": torch.zeros(batch_size, 7, 7, device=device)} if name == "lan" else {}


class ModelOnly:
    """Synthetic, already-normalised tensors on the device; one call = one timed training step."""

    def __init__(self, name: str, device: torch.device, batch_size: int, channels_last: bool, amp: str):
        from ferlib.data.datasets import build_dataset
        from ferlib.data.schema import collate_samples

        self.recipe, self.model, self.optimizer = _prepare(name, device, channels_last)
        self.autocast, dtype = autocast_factory(device, amp)
        self.scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
        # Real landmarks (MAN's masks and AMP-Net's regions depend on them), fixed on the device.
        ds = build_dataset("synthfer", "train", None, n=batch_size, seed=123)
        real = to_device(collate_samples([ds[i] for i in range(batch_size)]), device)
        images = torch.randn(batch_size, 3, 224, 224, device=device)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        self.batch = {
            "image": images,
            "label": real["label"],
            "landmarks5": real["landmarks5"],
            "landmarks8": real["landmarks8"],
            **_guidance_stub(name, batch_size, device),
        }

    def __call__(self) -> None:
        _step(self.model, self.optimizer, self.batch, self.autocast, self.scaler)


class EndToEnd:
    """The trainer's pipeline from the decoded cache; one call = load, transfer, augment, step."""

    def __init__(
        self, name: str, device: torch.device, batch_size: int, channels_last: bool, amp: str, cache, workers: int
    ):
        self.name, self.device, self.channels_last = name, device, channels_last
        self.recipe, self.model, self.optimizer = _prepare(name, device, channels_last)
        self.autocast, dtype = autocast_factory(device, amp)
        self.scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
        self.augment = build_augment(self.recipe, True)
        self.sampler = EpochSampler(cache.labels, seed=0)
        self.loader = make_loader(
            cache,
            batch_size,
            sampler=self.sampler,
            num_workers=workers,
            pin_memory=device.type == "cuda",
            drop_last=True,
        )
        self.it = iter(self.loader)

    def pipeline(self) -> dict:
        """Everything but the training step: load from the cache, collate, transfer, augment, normalise."""
        try:
            raw = next(self.it)
        except StopIteration:
            self.sampler.set_epoch(self.sampler.epoch + 1)
            self.it = iter(self.loader)
            raw = next(self.it)
        batch = to_device(raw, self.device)
        if self.augment is not None:
            batch = self.augment(batch)
        images = normalize_images(batch["image"])
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        batch["image"] = images
        batch.update(_guidance_stub(self.name, images.shape[0], self.device))
        return batch

    def __call__(self) -> None:
        _step(self.model, self.optimizer, self.pipeline(), self.autocast, self.scaler)


def measure(
    name: str,
    device: torch.device,
    batch_size: int,
    steps: int,
    warmup: int,
    channels_last: bool,
    amp: str,
    cache,
    workers: int,
    pipeline_repeats: int = 20,
) -> dict:
    """Interleave model-only and end-to-end steps so both see the same machine load; report the
    fastest step of each (``min``, as ``timeit`` does: interference only ever adds time) and the median."""
    runners = {
        "model_only": ModelOnly(name, device, batch_size, channels_last, amp),
        "end_to_end": EndToEnd(name, device, batch_size, channels_last, amp, cache, workers),
    }
    times: dict[str, list[float]] = {k: [] for k in runners}
    for i in range(warmup + steps):
        for key, run in runners.items():
            _sync(device)
            t0 = time.perf_counter()
            run()
            _sync(device)
            if i >= warmup:
                times[key].append(time.perf_counter() - t0)
    out = {"model": name}
    for key, ts in times.items():
        ts = sorted(ts)
        out[key] = batch_size / ts[0]
        out[key + "_median"] = batch_size / ts[len(ts) // 2]
    out["ratio"] = out["end_to_end"] / out["model_only"]
    # The pipeline alone is cheap, so it can be timed many times: a load-robust figure for what
    # end-to-end adds to each step, and the ratio it implies.
    e2e = runners["end_to_end"]
    pipe = []
    for _ in range(pipeline_repeats):
        _sync(device)
        t0 = time.perf_counter()
        e2e.pipeline()
        _sync(device)
        pipe.append(time.perf_counter() - t0)
    out["pipeline_ms"] = 1000 * sorted(pipe)[len(pipe) // 2]
    step = batch_size / out["model_only"]
    out["implied_ratio"] = step / (step + out["pipeline_ms"] / 1000)
    return out


def render(device: torch.device, rows: list[dict], command: str, batch_size: int, note: str) -> str:
    lines = header(
        device,
        command,
        f"batch {batch_size}, 224×224, images per second of training (forward + loss + "
        "backward + step); model-only and end-to-end steps interleaved; figures from the fastest step "
        "of each (median in brackets)",
        note,
    )
    lines += [
        "",
        "| model | model-only img/s | end-to-end img/s | end-to-end / model-only | data pipeline ms/batch "
        "(median of 20) | ratio implied by the pipeline time |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['model_only']:.2f} ({r['model_only_median']:.2f}) | "
            f"{r['end_to_end']:.2f} ({r['end_to_end_median']:.2f}) | {100 * r['ratio']:.0f} % | "
            f"{r['pipeline_ms']:.1f} | {100 * r['implied_ratio']:.1f} % |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# --suite: issue 16's GPU table (runs on a CPU too, for the tests)
# --------------------------------------------------------------------------------------------


class SuiteRunner:
    """One model at one batch size and precision, eager or compiled, with both timed steps:
    ``model_only()`` on a fixed normalised batch, ``end_to_end()`` from the device-resident set."""

    def __init__(
        self, name: str, device: torch.device, batch_size: int, amp: str, cache, compiled: bool, regions: bool | None
    ):
        self.name, self.device, self.batch_size = name, device, batch_size
        self.channels_last = device.type == "cuda"
        self.recipe, self.core, self.optimizer = _prepare(name, device, self.channels_last)
        self.has_regions = set_batched_regions(self.core, regions) > 0
        self.model = torch.compile(self.core) if compiled else self.core
        self.autocast, dtype = autocast_factory(device, amp)
        self.scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
        self.augment = build_augment(self.recipe, True)
        self.data = DeviceTrainSet(cache, device)
        self.sampler = EpochSampler(cache.labels, seed=0)
        self._batches = iter(())
        self.fixed = self._normalised(self._next_raw())

    def _next_raw(self) -> dict:
        for _ in range(2):
            try:
                return next(self._batches)
            except StopIteration:
                self.sampler.set_epoch(self.sampler.epoch + 1)
                self._batches = self.data.epoch_batches(self.sampler.indices(), self.batch_size)
        raise ValueError(f"the benchmark set has fewer than {self.batch_size} images")

    def _normalised(self, batch: dict) -> dict:
        images = normalize_images(batch["image"])
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        batch["image"] = images
        batch.update(_guidance_stub(self.name, images.shape[0], self.device))
        return batch

    def _step(self, batch: dict) -> None:
        with self.autocast():
            out = self.model(batch["image"], **model_inputs(self.core, batch))
            loss = compute_loss(self.core, out, batch)
        optimizer_step(loss, self.optimizer, self.scaler)

    def model_only(self) -> None:
        self._step(self.fixed)

    def end_to_end(self) -> None:
        batch = self._next_raw()
        if self.augment is not None:
            batch = self.augment(batch)
        self._step(self._normalised(batch))

    def step_flops(self) -> float:
        """FLOPs of one training step (forward + backward), counted on the eager model with the region
        stacks as separate modules: the batched call does the same arithmetic, but FlopCounterMode counts
        a vmapped ``convolution_backward`` about 2.5× higher (MA-Net's local branch: 41.1 against 16.4
        GFLOP at batch 2), which CPU step times do not show."""
        from torch.utils.flop_counter import FlopCounterMode

        flags = [(m, m.batched_regions) for m in self.core.modules() if hasattr(m, "batched_regions")]
        model, self.model = self.model, self.core
        set_batched_regions(self.core, False)
        try:
            with FlopCounterMode(display=False) as counter:
                self.model_only()
        finally:
            self.model = model
            for m, flag in flags:
                m.batched_regions = flag
        return float(counter.get_total_flops())


def _timed(device: torch.device, fn) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def measure_suite(
    name: str,
    device: torch.device,
    batch_size: int,
    amp: str,
    compiled: bool,
    cache,
    steps: int,
    warmup: int,
    regions: bool | None = None,
) -> dict:
    """One row of the suite table (medians of ``steps`` interleaved model-only / end-to-end steps)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    runner = SuiteRunner(name, device, batch_size, amp, cache, compiled, regions)
    flops = runner.step_flops()
    first = _timed(device, runner.model_only)  # compiles when compiled
    for _ in range(warmup):
        runner.model_only(), runner.end_to_end()
    times: dict[str, list[float]] = {"model_only": [], "end_to_end": []}
    for _ in range(steps):
        times["model_only"].append(_timed(device, runner.model_only))
        times["end_to_end"].append(_timed(device, runner.end_to_end))
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    row = {
        "model": name,
        "batch": batch_size,
        "precision": "bf16" if amp == "bf16" else "fp32" if amp == "off" else amp,
        "mode": "compiled" if compiled else "eager",
        "regions": "—"
        if not runner.has_regions
        else "batched"
        if (regions is None and device.type != "cpu") or regions
        else "loop",
        "model_only": batch_size / med["model_only"],
        "end_to_end": batch_size / med["end_to_end"],
        "gflop_per_image": flops / batch_size / 1e9,
        "tflops": flops / med["model_only"] / 1e12,
        "compile_s": max(first - med["model_only"], 0.0) if compiled else None,
        "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    }
    row["ratio"] = row["end_to_end"] / row["model_only"]
    row["epoch_s"] = RAFDB_TRAIN_FACES / row["end_to_end"]
    return row


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given is not None:
        return given
    if device.type != "cuda":
        return None
    gpu = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu), None)


def render_suite(device: torch.device, rows: list[dict], command: str, peak: float | None, note: str) -> str:
    what = (
        "images per second of training (forward + loss + backward + step), median of the timed steps; "
        "model-only = a fixed normalised batch on the device; end-to-end = the trainer's device-resident "
        "data path (ferlib/train/device_data.py: sampled order, augmentation, normalisation on the device); "
        "FLOPs per step from torch.utils.flop_counter.FlopCounterMode (forward + backward); "
        f"TFLOP/s from the model-only step; epoch = {RAFDB_TRAIN_FACES:,} faces at the end-to-end rate"
    )
    lines = header(device, command, what, note)
    lines.append(f"* bf16 peak the share is stated against: {f'{peak:g} TFLOP/s' if peak else 'not stated'}")
    lines += [
        "",
        "| model | batch | precision | mode | region stacks | model-only img/s | end-to-end img/s "
        "| end-to-end / model-only | GFLOP/image (train) | TFLOP/s | share of bf16 peak | peak memory GiB "
        "| compile s | epoch s (12,271) |",
        "|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        share = f"{100 * r['tflops'] / peak:.1f} %" if peak else "—"
        mem = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "—"
        comp = f"{r['compile_s']:.0f}" if r["compile_s"] is not None else "—"
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['precision']} | {r['mode']} | {r['regions']} | "
            f"{r['model_only']:.1f} | "
            f"{r['end_to_end']:.1f} | {100 * r['ratio']:.0f} % | {r['gflop_per_image']:.1f} | {r['tflops']:.2f} | "
            f"{share} | {mem} | {comp} | {r['epoch_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def run_suite(args, models: list[str], command: str) -> int:
    from ferlib.data.cache import cached_dataset
    from ferlib.data.datasets import build_dataset

    runs = [(m, b) for m, b in PAPER_BATCHES if m in models] if args.paper_batches else []
    runs += [(m, args.batch_size) for m in models if not args.paper_batches]
    if not runs:
        print("no model to measure", file=sys.stderr)
        return 2
    n_images = 2 * max(b for _, b in runs)
    cache_root = Path(args.cache_dir or tempfile.mkdtemp(prefix="ferlib-bench-cache-"))
    cache = cached_dataset(build_dataset("synthfer", "train", None, n=n_images, seed=7), cache_root, progress=False)
    precisions = [p for p in args.precisions.split(",") if p]
    compile_precisions = [p for p in (args.compile_precisions or args.precisions).split(",") if p]
    region_modes = {"auto": [None], "on": [True], "off": [False], "both": [True, False]}[args.batched_regions]
    for dev_name in args.devices.split(","):
        if dev_name == "cuda" and not torch.cuda.is_available():
            print("CUDA not available: GPU figures still to come", file=sys.stderr)
            continue
        device = torch.device(dev_name)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        peak = peak_tflops(device, args.peak_tflops)
        rows = []
        for name, batch in runs:
            for precision in precisions:
                amp = {"fp32": "off", "bf16": "bf16"}[precision]
                variants = [(False, regions) for regions in region_modes]
                variants += [(True, region_modes[0])] if args.compile and precision in compile_precisions else []
                for compiled, regions in variants:
                    if regions is False and name not in ("ma-net", "amp-net"):
                        continue  # only MA-Net and AMP-Net have per-region stacks
                    try:
                        r = measure_suite(name, device, batch, amp, compiled, cache, args.steps, args.warmup, regions)
                    except torch.cuda.OutOfMemoryError:
                        print(f"{device.type} {name} batch {batch} {precision}: out of memory, skipped", flush=True)
                        continue
                    except Exception as exc:  # a compile failure is a finding to report, not a reason to stop
                        if not compiled:
                            raise
                        print(f"{device.type} {name} batch {batch} {precision} compiled: failed: {exc!r}", flush=True)
                        continue
                    rows.append(r)
                    print(
                        f"{device.type:4} {name:9} b{batch:<4} {r['precision']} {r['mode']:8} {r['regions']:7} "
                        "model-only "
                        f"{r['model_only']:9.1f} img/s  end-to-end {r['end_to_end']:9.1f} img/s "
                        f"({100 * r['ratio']:.0f} %)  {r['tflops']:.2f} TFLOP/s  epoch {r['epoch_s']:.1f} s",
                        flush=True,
                    )
        publish(render_suite(device, rows, command, peak, args.note), args.write, "train-throughput", device.type)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(PAPER_MODELS), help="comma-separated model names")
    p.add_argument("--devices", default="cpu,cuda", help="devices to measure (cuda skipped when absent)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers for end-to-end")
    p.add_argument("--amp", default="auto", choices=("auto", "off", "bf16", "fp16"))
    p.add_argument("--cache-dir", help="decoded-cache folder (default: a temporary one)")
    p.add_argument("--write", help="Markdown file to write the table into (e.g. docs/benchmarks.md)")
    p.add_argument("--note", default="", help="a remark recorded with the table (e.g. machine load)")
    p.add_argument("--suite", action="store_true", help="issue 16's table: precisions, compile, FLOPs, memory, epoch")
    p.add_argument("--paper-batches", action="store_true", help="with --suite: the papers' batch sizes per model")
    p.add_argument("--precisions", default="fp32,bf16", help="with --suite: comma-separated fp32, bf16")
    p.add_argument("--compile", action="store_true", help="with --suite: also measure torch.compile (and its time)")
    p.add_argument("--compile-precisions", help="with --compile: the precisions to compile (default: all)")
    p.add_argument("--peak-tflops", type=float, help="with --suite: bf16 peak to state the share against")
    p.add_argument(
        "--batched-regions",
        default="auto",
        choices=("auto", "on", "off", "both"),
        help="with --suite: MA-Net/AMP-Net region stacks as one batched call (auto: on accelerators); both = compare",
    )
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    import shlex

    command = "python benchmarks/train_throughput.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    from ferlib.data.cache import cached_dataset
    from ferlib.data.datasets import build_dataset

    models = [m for m in args.models.split(",") if m]
    missing = [m for m in models if m not in list_models()]
    if missing:
        print(f"not registered, skipped: {missing}", file=sys.stderr)
        models = [m for m in models if m not in missing]
    if args.suite:
        return run_suite(args, models, command)
    n_images = args.batch_size * (args.steps + args.warmup + 1)  # never wraps within a model's run
    cache_root = Path(args.cache_dir or tempfile.mkdtemp(prefix="ferlib-bench-cache-"))
    cache = cached_dataset(build_dataset("synthfer", "train", None, n=n_images, seed=7), cache_root)

    for dev_name in args.devices.split(","):
        if dev_name == "cuda" and not torch.cuda.is_available():
            print("CUDA not available: GPU figures still to come", file=sys.stderr)
            continue
        device = torch.device(dev_name)
        channels_last = device.type == "cuda"
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        rows = []
        for name in models:
            r = measure(
                name, device, args.batch_size, args.steps, args.warmup, channels_last, args.amp, cache, args.workers
            )
            rows.append(r)
            print(
                f"{device.type:4} {name:10} model-only {r['model_only']:8.2f} img/s  end-to-end "
                f"{r['end_to_end']:8.2f} img/s  ({100 * r['ratio']:.0f} %)  medians {r['model_only_median']:.2f} / "
                f"{r['end_to_end_median']:.2f}; pipeline {r['pipeline_ms']:.1f} ms/batch "
                f"(implied {100 * r['implied_ratio']:.1f} %)",
                flush=True,
            )
        publish(render(device, rows, command, args.batch_size, args.note), args.write, "train-throughput", device.type)
    return 0


if __name__ == "__main__":
    sys.exit(main())
