"""One item of a dataset before decoding (:class:`Record`), and parsing the numbers label files carry."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Record:
    """One item before decoding: where the pixels are, its label and what is known about it."""

    id: str
    label: int
    path: str | None = None
    subject: str | None = None
    landmarks5: np.ndarray | None = None  # 5×2, pixel coords of the file on disk
    landmarks8: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    crop: tuple[float, float, float, float] | None = None  # x1, y1, x2, y2 (xyxy) in the file's pixels
    pixels: np.ndarray | None = None  # H×W or H×W×3 uint8 when there is no file (FER-2013)
    meta: dict[str, Any] = field(default_factory=dict)


def parse_floats(text: str, n: int, what: str, where: str) -> np.ndarray:
    """``n`` numbers from a label-file cell (separated by ``;``, spaces or commas); ValueError naming ``where``."""
    text = text.strip()
    parts = text.split(";") if ";" in text else re.split(r"[\s,]+", text)
    values = [float(v) for v in parts if v]
    if len(values) != n:
        raise ValueError(f"{where}: {what} needs {n} numbers, found {len(values)}")
    return np.asarray(values, dtype=np.float32)


def float_or_none(text: str) -> float | None:
    """A label-file cell as a float, or None when it is empty or not a number."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


__all__ = ["Record", "float_or_none", "parse_floats"]
