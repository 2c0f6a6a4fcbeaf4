"""Mixed precision on the CPU: native-bf16 detection, the ``amp="auto"`` choice, the record of what ran,
and a bf16 run that learns as well as fp32 within noise."""

from __future__ import annotations

import math
import platform

import pytest
import torch

from ferlib.runs import cpu_bf16_flags, cpu_has_native_bf16
from ferlib.train import TrainConfig, read_checkpoint, train
from ferlib.train.batches import autocast_dtype, autocast_factory, precision_record, use_channels_last
from test_train_helpers import TINY_BN, ColourDataset

pytestmark = pytest.mark.usefixtures("tiny_models")

CPU = torch.device("cpu")
X86_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
X86_PLAIN = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n"
ARM_BF16 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes sve bf16 i8mm\n"


def test_bf16_flags_are_read_from_cpuinfo():
    assert cpu_bf16_flags(X86_BF16) == ["avx512_bf16"]
    assert cpu_bf16_flags(X86_PLAIN) == []
    assert cpu_bf16_flags(ARM_BF16) == ["bf16"]
    assert cpu_bf16_flags("flags : amx_bf16 amx_tile avx512_bf16\n") == ["avx512_bf16", "amx_bf16"]
    assert cpu_bf16_flags("model name : avx512_bf16 in a name only\n") == []  # only the flag lines count
    assert cpu_bf16_flags("") == []


def test_native_bf16_is_detected_not_assumed(monkeypatch):
    monkeypatch.delenv("FERLIB_CPU_BF16", raising=False)
    assert cpu_has_native_bf16(X86_PLAIN) is False  # AVX512 without the BF16 extension emulates bf16
    assert cpu_has_native_bf16("") is False
    if platform.machine().lower() in ("x86_64", "amd64"):
        # With the flag, the answer is torch's: oneDNN there, AVX512/AMX kernels, bf16 supported.
        want = (
            torch.backends.mkldnn.is_available()
            and torch.backends.cpu.get_cpu_capability().startswith(("AVX512", "AMX"))
            and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        )
        assert cpu_has_native_bf16(X86_BF16) is want
    monkeypatch.setenv("FERLIB_CPU_BF16", "0")
    assert cpu_has_native_bf16(X86_BF16) is False
    monkeypatch.setenv("FERLIB_CPU_BF16", "1")
    assert cpu_has_native_bf16(X86_PLAIN) is True


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_and_channels_last_exactly_on_a_native_bf16_cpu(monkeypatch, native):
    monkeypatch.setenv("FERLIB_CPU_BF16", "1" if native else "0")
    assert autocast_dtype(CPU, "auto") == (torch.bfloat16 if native else None)
    assert use_channels_last(CPU, "auto", None) is native
    factory, dtype = autocast_factory(CPU, "auto")
    with factory():
        y = torch.nn.functional.linear(torch.randn(2, 4), torch.randn(3, 4))
    assert y.dtype == (torch.bfloat16 if native else torch.float32) and dtype == autocast_dtype(CPU, "auto")
    # --amp off is fp32 and contiguous whatever the CPU; explicit choices win over the detection.
    assert autocast_dtype(CPU, "off") is None and use_channels_last(CPU, "off", None) is False
    assert autocast_dtype(CPU, "bf16") == torch.bfloat16 and use_channels_last(CPU, "bf16", None) is True
    assert use_channels_last(CPU, "auto", False) is False and use_channels_last(CPU, "off", True) is True
    rec = precision_record(CPU, "auto", use_channels_last(CPU, "auto", None))
    assert rec["autocast_dtype"] == ("bfloat16" if native else "float32") and rec["cpu_native_bf16"] is native
    assert rec["memory_format"] == ("channels_last" if native else "contiguous")
    with pytest.raises(ValueError, match="--amp auto"):
        autocast_dtype(CPU, "half")


@pytest.mark.parametrize("native", [True, False])
def test_a_run_records_the_precision_that_ran_and_amp_off_is_fp32(monkeypatch, tmp_path, native):
    torch.set_num_threads(1)
    monkeypatch.setenv("FERLIB_CPU_BF16", "1" if native else "0")
    kw = dict(
        model=TINY_BN,
        recipe="ma-net",
        profile="smoke",
        epochs=1,
        batch_size=16,
        lr=0.05,
        progress=False,
        tensorboard=False,
        val_fraction=0.2,
        device="cpu",
    )
    data = dict(train_dataset=ColourDataset(64, 0), test_dataset=ColourDataset(16, 1))
    auto = train(TrainConfig(run_dir=str(tmp_path / "auto"), **kw), **data)
    off = train(TrainConfig(run_dir=str(tmp_path / "off"), amp="off", **kw), **data)
    assert auto.metrics["precision"] == {
        "amp": "auto",
        "autocast_dtype": "bfloat16" if native else "float32",
        "memory_format": "channels_last" if native else "contiguous",
        "device": "cpu",
        "cpu_native_bf16": native,
    }
    assert off.metrics["precision"]["autocast_dtype"] == "float32"
    assert off.metrics["precision"]["memory_format"] == "contiguous"
    # Autocast keeps fp32 master weights either way; only the arithmetic differs.
    for result in (auto, off):
        state = read_checkpoint(result.run_dir / "checkpoints" / "last.pt")["model"]
        assert all(t.dtype == torch.float32 for t in state.values() if t.is_floating_point())
    same = auto.history[0]["train_loss"] == off.history[0]["train_loss"]
    assert same is (not native)  # fp32 twice: bit for bit; bf16 vs fp32: different arithmetic


class _InMemory(torch.utils.data.Dataset):
    """A dataset's samples rendered once, so that the fp32 and the bf16 run see the same tensors."""

    def __init__(self, ds):
        self.items = [ds[i] for i in range(len(ds))]
        self.labels, self.class_names = ds.labels, ds.class_names

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


@pytest.mark.slow
def test_a_bf16_run_reaches_the_fp32_accuracy_within_noise(tmp_path):
    """ResNet-18 on SynthFER's frontal preset at 64 px, same seed and data, fp32 vs bf16 autocast + channels-last.

    Interval: the two test accuracies must differ by at most 2 standard errors of a difference of
    two accuracies on ``n`` faces, ``2·sqrt(2·p(1-p)/n)`` with ``p`` the fp32 accuracy. The fp32 run
    must first clear chance by 2 standard errors, so that the comparison is not between two guessers.
    """
    from ferlib.data.datasets import build_dataset

    torch.set_num_threads(1)
    size, n_train, n_test = 64, 280, 140
    train_ds = _InMemory(build_dataset("synthfer", "train", None, n=n_train, image_size=size, config="frontal"))
    test_ds = _InMemory(build_dataset("synthfer", "test", None, n=n_test, image_size=size, config="frontal"))
    kw = dict(
        model="resnet18",
        recipe="ffra-net",  # Adam at 1e-3: learns from scratch in a few epochs
        dataset="synthfer",
        profile="default",
        epochs=3,
        batch_size=16,
        lr=1e-3,
        image_size=size,
        augment=False,
        val_fraction=0.1,
        device="cpu",
        progress=False,
        tensorboard=False,
        seed=0,
    )
    acc = {}
    for amp in ("off", "bf16"):
        result = train(
            TrainConfig(run_dir=str(tmp_path / amp), amp=amp, **kw), train_dataset=train_ds, test_dataset=test_ds
        )
        acc[amp] = result.metrics["test_final"]["accuracy"]
        want = ("float32", "contiguous") if amp == "off" else ("bfloat16", "channels_last")
        assert (result.metrics["precision"]["autocast_dtype"], result.metrics["precision"]["memory_format"]) == want
    p, chance = acc["off"], 1 / 7
    assert p >= chance + 2 * math.sqrt(chance * (1 - chance) / n_test), acc  # fp32 learnt something
    assert abs(acc["bf16"] - p) <= 2 * math.sqrt(2 * p * (1 - p) / n_test), acc


def test_cpu_precision_benchmark_times_the_four_paths_and_rewrites_its_block(tmp_path):
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "cpu_precision.py"
    spec = importlib.util.spec_from_file_location("bench_cpu_precision", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    doc = tmp_path / "bench.md"
    doc.write_text("# Benchmarks\n\nkept\n")
    argv = ["--model", "resnet18", "--batch-size", "2", "--image-size", "32", "--threads", "1"]
    assert bench.main([*argv, "--rounds", "1", "--warmup", "1", "--write", str(doc)]) == 0
    assert bench.main([*argv, "--rounds", "2", "--warmup", "1", "--write", str(doc)]) == 0
    text = doc.read_text()
    assert (
        text.startswith("# Benchmarks\n\nkept\n")
        and text.count(bench.BEGIN) == 1
        and text.count("## CPU precision") == 1
    )
    assert "--rounds 2" in text and "load average (1, 5, 15 min) at start" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "s/step" not in line]
    assert [r.split("|")[1].strip() for r in rows] == ["fp32", "channels-last", "bf16 autocast", "bf16 + channels-last"]
    assert all(float(r.split("|")[2]) > 0 for r in rows)
