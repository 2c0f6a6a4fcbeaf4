"""One training step on the CPU in four numeric paths, measured side by side: fp32, channels-last,
bf16 autocast and bf16 autocast + channels-last (and, with ``--compile``, the last one compiled).

The variants are timed **interleaved** in one process — round after round, each variant one step,
the order rotated every round — so that a change of machine load during the run (the machine may
be shared) affects every variant alike. Each variant has its own copy of the model (same seeded
initial weights), optimiser and batch; the batch is random normalised images with real SynthFER
labels and landmarks. The step is the trainer's: autocast forward, the model's loss, backward,
optimiser step (:mod:`ferlib.train.batches`, :mod:`ferlib.train.optim`).

    python benchmarks/cpu_precision.py --model ma-net --batch-size 8 --threads 2 --rounds 8 --write docs/benchmarks.md

The table (command, machine, versions, the load average at the start, the native-bf16 detection
of :func:`ferlib.runs.cpu_has_native_bf16`) is written between ``<!-- cpu-precision:begin -->`` and
``<!-- cpu-precision:end -->`` of the target Markdown file; a rerun replaces it.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from _report import machine_line, versions_line  # noqa: E402

from ferlib.models import create_model, model_inputs, recipe_name  # noqa: E402
from ferlib.runs import cpu_bf16_flags, cpu_has_native_bf16  # noqa: E402
from ferlib.train.batches import autocast_factory, compute_loss  # noqa: E402
from ferlib.train.optim import make_optimizer, optimizer_step  # noqa: E402
from ferlib.train.recipes import load_recipe  # noqa: E402

BEGIN, END = "<!-- cpu-precision:begin -->", "<!-- cpu-precision:end -->"

#: (label, amp, channels_last, compiled)
VARIANTS = (
    ("fp32", "off", False, False),
    ("channels-last", "off", True, False),
    ("bf16 autocast", "bf16", False, False),
    ("bf16 + channels-last", "bf16", True, False),
)
COMPILED = ("bf16 + channels-last + torch.compile", "bf16", True, True)


class Variant:
    """One numeric path: its model, optimiser, batch and autocast; a call is one training step."""

    def __init__(self, label, amp, channels_last, compiled, model_name, batch_size, image_size, real):
        self.label, self.amp, self.channels_last, self.compiled = label, amp, channels_last, compiled
        device = torch.device("cpu")
        self.recipe = load_recipe(recipe_name(model_name))
        torch.manual_seed(0)
        self.core = create_model(model_name, num_classes=7)
        if channels_last:
            self.core = self.core.to(memory_format=torch.channels_last)
        if self.recipe.stages:
            self.core.set_stage(self.recipe.stages[-1].name)
        self.core.train()
        self.model = torch.compile(self.core) if compiled else self.core
        self.optimizer = make_optimizer(self.recipe, self.core.parameters())
        self.autocast, _ = autocast_factory(device, amp)
        g = torch.Generator().manual_seed(1)
        images = torch.randn(batch_size, 3, image_size, image_size, generator=g)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        self.batch = {"image": images, **real}
        if model_name == "lan":
            self.batch["guidance"] = torch.zeros(batch_size, 7, 7)
        self.times: list[float] = []
        self.first_step_s: float | None = None

    def step(self) -> float:
        t0 = time.perf_counter()
        with self.autocast():
            out = self.model(self.batch["image"], **model_inputs(self.core, self.batch))
            loss = compute_loss(self.core, out, self.batch)
        optimizer_step(loss, self.optimizer, None)
        return time.perf_counter() - t0


def measure(args) -> tuple[list[Variant], dict]:
    from ferlib.data.datasets import build_dataset
    from ferlib.data.schema import collate_samples

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    ds = build_dataset("synthfer", "train", None, n=args.batch_size, seed=123, image_size=args.image_size)
    real = collate_samples([ds[i] for i in range(args.batch_size)])
    real = {k: real[k] for k in ("label", "landmarks5", "landmarks8") if k in real}
    specs = list(VARIANTS) + ([COMPILED] if args.compile else [])
    variants = [Variant(*s, args.model, args.batch_size, args.image_size, real) for s in specs]
    for v in variants:  # warm-up (the compiled variant compiles here: its first step is the compile time)
        for i in range(args.warmup):
            dt = v.step()
            if i == 0:
                v.first_step_s = dt
            print(f"warm-up {v.label}: {dt:.2f} s", flush=True)
    for r in range(args.rounds):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for v in order:
            v.times.append(v.step())
        print(f"round {r + 1}: " + ", ".join(f"{v.label} {v.times[-1]:.2f}" for v in variants), flush=True)
    info = {"load_start": load_start, "load_end": os.getloadavg()}
    return variants, info


def render(variants: list[Variant], info: dict, args, command: str) -> str:
    base = statistics.median(variants[0].times)
    la, lb = info["load_start"], info["load_end"]
    lines = [
        "## CPU precision",
        "",
        "The trainer's `amp=auto` (`ferlib train --amp auto`, the default) runs bf16 autocast and channels-last on",
        "a CPU with native bf16 — detected by `ferlib.runs.cpu_has_native_bf16()`: `/proc/cpuinfo` lists",
        "`avx512_bf16`, `amx_bf16` (x86) or `bf16` (AArch64), and torch's oneDNN reports bf16 support (on x86",
        "with `torch.backends.cpu.get_cpu_capability()` AVX512 or AMX). Elsewhere it stays fp32 and contiguous;",
        "`--amp off` forces fp32 (and, on CPU, the contiguous layout); `--channels-last on|off` overrides the layout.",
        "What ran is recorded in the run's `metrics.json` under `precision`. The seeded golden trainer tests pin",
        '`amp="off"`; the committed default-profile notebook outputs were made in fp32, before this default.',
        "`tests/test_train_amp_cpu.py` checks that a small bf16 run reaches the fp32 accuracy within noise.",
        "",
        f"* command: `{command}`",
        f"* machine: {machine_line(torch.device('cpu'))}; native bf16 detected: {cpu_has_native_bf16()} "
        f"(flags {', '.join(cpu_bf16_flags()) or 'none'}; capability {torch.backends.cpu.get_cpu_capability()})",
        f"* versions: {versions_line()}",
        f"* measured: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.model} training step "
        f"(forward, loss, backward, SGD step), batch {args.batch_size}, {args.image_size} px, "
        f"{args.threads} threads, {args.rounds} interleaved rounds after {args.warmup} warm-up step(s) per variant",
        f"* load average (1, 5, 15 min) at start {la[0]:.2f}, {la[1]:.2f}, {la[2]:.2f}; at end "
        f"{lb[0]:.2f}, {lb[1]:.2f}, {lb[2]:.2f}",
    ]
    if not args.compile:
        lines.append("* torch.compile: not measured in this run (pass `--compile`; its compile time is the first step)")
    if args.note:
        lines.append(f"* note: {args.note}")
    lines += [
        "",
        "| path | median s/step | min s/step | max s/step | speed-up vs fp32 (medians) | first step s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for v in variants:
        med = statistics.median(v.times)
        lines.append(
            f"| {v.label} | {med:.3f} | {min(v.times):.3f} | {max(v.times):.3f} | {base / med:.2f}× "
            f"| {v.first_step_s:.1f} |"
        )
    lines.append("")
    return "\n".join(lines) + "\n"


def write_block(path: Path, text: str) -> None:
    """Replace the ``cpu-precision`` block of ``path`` with ``text`` (appended when absent)."""
    block = f"{BEGIN}\n{text}{END}"
    content = path.read_text() if path.exists() else ""
    if BEGIN in content and END in content:
        content = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, content, flags=re.S)
    else:
        content = content.rstrip() + "\n\n" + block + "\n"
    from ferlib.fileio import atomic_write_text

    atomic_write_text(path, content)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="ma-net")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--rounds", type=int, default=8, help="interleaved timed rounds (one step per variant each)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first")
    p.add_argument("--compile", action="store_true", help="add bf16 + channels-last under torch.compile")
    p.add_argument("--write", help="Markdown file to write the table into (e.g. docs/benchmarks.md)")
    p.add_argument("--note", default="", help="a remark recorded with the table (e.g. machine load)")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.warmup < 1:
        p.error("--rounds and --warmup must be at least 1")
    command = "python benchmarks/cpu_precision.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    variants, info = measure(args)
    text = render(variants, info, args, command)
    if args.write:
        write_block(Path(args.write), text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
