"""Robustness of trained FER models under one protocol: occlusion × area, pose, degradations, expression
intensity, with bootstrap intervals, paired tests and attention-on-occluder measurements (issue 15).

``run_robustness(run_dirs, "synthfer")`` (:mod:`ferlib.robustness.runner`) is the entry point; the CLI is
``ferlib robustness``. Modules: :mod:`~ferlib.robustness.conditions` (the test conditions built from the same
faces), :mod:`~ferlib.robustness.faces` (the clean test faces), :mod:`~ferlib.robustness.stats` (intervals and
paired tests), :mod:`~ferlib.robustness.attention` (CAM and attention mass on the occluder),
:mod:`~ferlib.robustness.figures` (seaborn figures), :mod:`~ferlib.robustness.runner`.
"""

from ferlib.robustness.conditions import (
    CLEAN,
    DEGRADATION_LEVELS,
    CleanFaces,
    Condition,
    ConditionGrid,
    ConditionSet,
    degrade,
    face_region,
    occlude_area,
    reposed,
)
from ferlib.robustness.stats import compare_models, mcnemar_test, metric_summary

__all__ = [
    "CLEAN",
    "DEGRADATION_LEVELS",
    "Condition",
    "ConditionGrid",
    "ConditionSet",
    "CleanFaces",
    "compare_models",
    "degrade",
    "face_region",
    "mcnemar_test",
    "metric_summary",
    "occlude_area",
    "reposed",
]
