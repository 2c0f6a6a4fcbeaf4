"""ferlib's canonical expression classes and the maps from each dataset's native labels.

Canonical order (8 classes) follows AffectNet's 0-7 order, which also puts contempt last so that
a 7-class run simply drops index 7::

    0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust, 6 anger, 7 contempt

The 0-6 part equals the folder order used by the public MA-Net code.
"""

from __future__ import annotations

CANONICAL_CLASSES: tuple[str, ...] = (
    "neutral",
    "happy",
    "sad",
    "surprise",
    "fear",
    "disgust",
    "anger",
    "contempt",
)
CLASSES_7: tuple[str, ...] = CANONICAL_CLASSES[:7]
CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CANONICAL_CLASSES)}


def class_names(num_classes: int) -> tuple[str, ...]:
    """Class names for a 7- or 8-class run."""
    if num_classes not in (7, 8):
        raise ValueError(f"num_classes must be 7 or 8, got {num_classes}")
    return CANONICAL_CLASSES[:num_classes]
