"""Run folders, seeding and device choice: the conventions every ferlib run shares.

A run lives in ``runs/<YYYYmmdd-HHMMSS>-<name>/`` and holds ``config.json``,
``versions.json``, ``metrics.json``, figures (``*.png``) and, for training, checkpoints.
"""

from __future__ import annotations

import os
import platform
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferlib.fileio import atomic_write_json

DEFAULT_RUNS_ROOT = Path("runs")


class DeviceUnavailableError(RuntimeError):
    """The device the user asked for (``--device cuda``…) does not exist on this machine."""


def make_folder(path: str | Path, what: str = "run folder", option: str = "--run-dir") -> Path:
    """``mkdir -p path`` that explains a regular file in the way (``FileExistsError``/``NotADirectoryError``
    become one ``NotADirectoryError`` naming the file and ``option``)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), path)
        raise NotADirectoryError(
            f"cannot create the {what} {path}: {blocker} is a file, not a folder; choose another {option}"
        ) from None
    return path


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA).

    With ``deterministic=True`` torch is asked for deterministic kernels as well
    (``torch.use_deterministic_algorithms(True, warn_only=True)``).
    """
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        if hasattr(torch.backends, "cudnn"):
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True


def worker_init_fn(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: derive NumPy/Python seeds from torch's per-worker seed."""
    import numpy as np
    import torch

    seed = torch.initial_seed() % (2**32)
    random.seed(seed)
    np.random.seed(seed)


def resolve_device(device: str = "auto") -> torch.device:  # noqa: F821
    """``auto`` → cuda, then mps, then cpu; anything else is passed to ``torch.device``.

    Asking for ``cuda`` on a machine without it raises a clear error instead of failing later.
    """
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"device {device!r} requested but torch.cuda.is_available() is False; use --device cpu or --device auto"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceUnavailableError(
            f"device {device!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s) "
            f"(cuda:0 … cuda:{torch.cuda.device_count() - 1}); pick one of them or use --device auto"
        )
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceUnavailableError(
            f"device {device!r} requested but this machine has no MPS device; use --device cpu or --device auto"
        )
    return dev


#: ``/proc/cpuinfo`` flags of a CPU that computes bf16 in hardware: x86 AVX512-BF16 (Cooper Lake,
#: Zen 4 and later) or AMX-BF16 (Sapphire Rapids and later), AArch64 ``bf16`` (Armv8.6 BFDOT/BFMMLA,
#: e.g. Graviton 3, Neoverse V1/V2).
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The native-bf16 flags (:data:`CPU_BF16_FLAGS`) the CPU reports in ``/proc/cpuinfo``.

    ``cpuinfo`` is the file's text (read from ``/proc/cpuinfo`` when ``None``); a system without
    that file (macOS, Windows) reports none, so it is never assumed to have native bf16.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return []
    found: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):  # x86 "flags", AArch64 "Features"
            found.update(value.split())
    return [f for f in CPU_BF16_FLAGS if f in found]


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether bf16 autocast on this CPU runs on bf16 hardware instructions (detected, not assumed).

    The rule: the CPU reports one of :data:`CPU_BF16_FLAGS` in ``/proc/cpuinfo`` **and** this torch
    build can use it — oneDNN (mkldnn) is available and says bf16 is supported
    (``torch.ops.mkldnn._is_mkldnn_bf16_supported()``, which on x86 also needs AVX512 as reported
    by ``torch.backends.cpu.get_cpu_capability()``). Without native bf16, autocast still works but
    emulates bf16 and is slower than fp32, so the trainer's ``amp="auto"`` stays fp32 there.
    ``FERLIB_CPU_BF16=0``/``1`` overrides the detection (e.g. to compare both paths).
    """
    override = os.environ.get("FERLIB_CPU_BF16")
    if override in ("0", "1"):
        return override == "1"
    flags = cpu_bf16_flags(cpuinfo)
    if not flags:
        return False
    import torch

    if not torch.backends.mkldnn.is_available():
        return False
    if platform.machine().lower() in ("x86_64", "amd64", "i686", "x86"):
        capability = torch.backends.cpu.get_cpu_capability()
        if not (capability.startswith("AVX512") or capability.startswith("AMX")):
            return False
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check()) if check is not None else False


def versions() -> dict[str, Any]:
    """Versions of Python, ferlib and the libraries that decide numerical results."""
    import numpy as np
    import torch
    import torchvision

    import ferlib

    out: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "ferlib": ferlib.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16_flags": cpu_bf16_flags(),
    }
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"


def new_run_dir(name: str, root: str | Path | None = None) -> Path:
    """Create ``<root>/<YYYYmmdd-HHMMSS>-<name>/`` (root defaults to ``$FERLIB_RUNS`` or ``runs``).

    A numeric suffix is added if the folder already exists, so two runs never share one.
    """
    root = Path(root if root is not None else os.environ.get("FERLIB_RUNS", DEFAULT_RUNS_ROOT))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = root / f"{stamp}-{_slug(name)}"
    path, i = base, 1
    make_folder(root, "runs folder", "$FERLIB_RUNS or runs_root")
    while True:
        try:
            path.mkdir(exist_ok=False)
            return path
        except FileExistsError:
            i += 1
            path = base.with_name(f"{base.name}-{i}")


@dataclass
class RunFolder:
    """Helper around one run directory: config, versions, metrics and figures."""

    path: Path

    @classmethod
    def create(cls, name: str, root: str | Path | None = None) -> RunFolder:
        return cls(new_run_dir(name, root))

    @classmethod
    def at(cls, path: str | Path) -> RunFolder:
        return cls(make_folder(path))

    def write_config(self, cfg: Any) -> Path:
        from ferlib.config import to_dict

        return atomic_write_json(self.path / "config.json", to_dict(cfg))

    def write_versions(self) -> Path:
        return atomic_write_json(self.path / "versions.json", versions())

    def write_metrics(self, metrics: dict, name: str = "metrics.json") -> Path:
        return atomic_write_json(self.path / name, metrics)

    def figure_path(self, name: str) -> Path:
        if not name.endswith(".png"):
            name += ".png"
        return self.path / name

    def save_figure(self, fig: Any, name: str, dpi: int = 110) -> Path:
        """Save a matplotlib figure as PNG atomically and return its path."""
        from ferlib.fileio import atomic_path

        target = self.figure_path(name)
        with atomic_path(target, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
        return target
