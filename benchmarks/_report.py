"""What every benchmark records with its numbers: the machine, the versions, and a Markdown block
between markers that reruns rewrite in place (``<!-- tag:device:begin -->`` … ``end``)."""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

import torch


def machine_line(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, {os.cpu_count()} CPU cores"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores visible, torch threads {torch.get_num_threads()}"


def versions_line() -> str:
    import numpy
    import torchvision

    import ferlib

    return (
        f"Python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"numpy {numpy.__version__}, ferlib {ferlib.__version__}"
    )


def write_section(path: Path, tag: str, device_type: str, text: str) -> None:
    """Replace the ``<!-- tag:device:begin/end -->`` block of ``path`` with ``text`` (appended when absent)."""
    begin, end = f"<!-- {tag}:{device_type}:begin -->", f"<!-- {tag}:{device_type}:end -->"
    block = f"{begin}\n{text}{end}"
    content = path.read_text() if path.exists() else ""
    if begin in content and end in content:
        content = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, content, flags=re.S)
    else:
        content = content.rstrip() + "\n\n" + block + "\n"
    from ferlib.fileio import atomic_write_text

    atomic_write_text(path, content)


def header(device: torch.device, command: str, what: str, note: str = "") -> list[str]:
    """The lines that open a device's section: command, machine, versions, date and what was measured."""
    lines = [
        f"### {device.type.upper()}",
        "",
        f"* command: `{command}`",
        f"* machine: {machine_line(device)}",
        f"* versions: {versions_line()}",
        f"* measured: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {what}",
    ]
    if note:
        lines.append(f"* note: {note}")
    return lines


def publish(text: str, write: str | None, tag: str, device_type: str) -> None:
    """Write ``text`` into the ``tag`` section of the Markdown file ``write``, or print it."""
    if write:
        write_section(Path(write), tag, device_type, text)
    else:
        print(text)
