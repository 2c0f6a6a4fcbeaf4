"""Datasets, manifests, transforms and the SynthFER synthetic dataset (one sample schema for all)."""

from ferlib.data.labels import CANONICAL_CLASSES, CLASSES_7, class_names
from ferlib.data.schema import (
    LANDMARK5_FLIP_PERM,
    LANDMARK5_NAMES,
    LANDMARK8_FLIP_PERM,
    LANDMARK8_NAMES,
    Sample,
    collate_samples,
)

__all__ = [
    "CANONICAL_CLASSES",
    "CLASSES_7",
    "class_names",
    "LANDMARK5_NAMES",
    "LANDMARK5_FLIP_PERM",
    "LANDMARK8_NAMES",
    "LANDMARK8_FLIP_PERM",
    "Sample",
    "collate_samples",
    # loaded lazily (see __getattr__): importing ferlib.data stays light
    "build_dataset",
    "load_manifest",
    "list_manifests",
    "verify_dataset",
    "normalize_images",
    "LandmarkAugment",
    "cached_dataset",
    "DecodedCache",
    "stratified_val_split",
    "class_balanced_sampler",
]

_LAZY = {
    "build_dataset": "ferlib.data.datasets",
    "load_manifest": "ferlib.data.manifests",
    "list_manifests": "ferlib.data.manifests",
    "verify_dataset": "ferlib.data.verify",
    "normalize_images": "ferlib.data.transforms",
    "LandmarkAugment": "ferlib.data.transforms",
    "cached_dataset": "ferlib.data.cache",
    "DecodedCache": "ferlib.data.cache",
    "stratified_val_split": "ferlib.data.protocols",
    "class_balanced_sampler": "ferlib.data.protocols",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ferlib.data' has no attribute {name!r}")
