"""The paper card: every fact ferlib holds about one model family, typed, in one place.

A card is defined in the family's own file (``amp_net.py``, ``ma_net.py``...) and handed to
:func:`ferlib.models.registry.register_model` with the factory, like timm's ``PretrainedCfg`` beside
the architecture or torchvision's ``Weights.meta`` beside the builder. The rest of ferlib looks the
facts up here (``ferlib.models.get_card(name)``) instead of keeping its own table:

* :class:`Citation` — who wrote the paper, where, and which text in ``../shared/papers`` it is;
* :class:`Claims` — parameters and MACs per part and in total, *as the paper states them*;
* :class:`ReportedResult` — accuracy per dataset, the table it comes from, the pre-training, and
  whether the headline is the best epoch on the test set;
* the training recipe name (``ferlib/recipes/<name>.yaml``), the ablation grids
  (:class:`AblationGrid`, notebook 04), the primary Grad-CAM target, the reader of the network's own
  attention maps (``attention``, :mod:`ferlib.models._attention`), the checkpoint formats it can
  load (:class:`CheckpointFormat`: a key map) and the explorer's region views (:class:`RegionView`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AblationGrid",
    "AblationRow",
    "BoxLayer",
    "CheckpointFormat",
    "Citation",
    "Claims",
    "PaperCard",
    "RegionPanel",
    "RegionView",
    "ReportedResult",
]


@dataclass(frozen=True)
class Citation:
    """The paper. ``paper_file`` is the text in ``../shared/papers`` the docstrings cite."""

    authors: tuple[str, ...]
    title: str
    venue: str
    year: int
    doi: str = ""
    paper_file: str = ""

    def short(self) -> str:
        """``"Zhao, Liu & Wang, IEEE TIP 2021"``."""
        surnames = [a.split()[-1] for a in self.authors]
        who = surnames[0] if len(surnames) == 1 else ", ".join(surnames[:-1]) + " & " + surnames[-1]
        if len(surnames) > 3:
            who = f"{surnames[0]} et al."
        return f"{who}, {self.venue} {self.year}"


@dataclass(frozen=True)
class Claims:
    """Parameter and multiply-accumulate figures as the paper states them.

    ``params``: parameters per part (``"total"`` and part names of ``model.parts()``), absolute
    counts; ``gmacs``: giga multiply-accumulates per part. Empty when the paper gives none.
    ``reference_*`` hold figures that are not the paper's but help to read them (e.g. measured on
    the public code), each explained in ``notes``; ``facts`` keeps other stated numbers by name.
    """

    params: Mapping[str, float] = field(default_factory=dict)
    gmacs: Mapping[str, float] = field(default_factory=dict)
    reference_params: Mapping[str, float] = field(default_factory=dict)
    reference_gmacs: Mapping[str, float] = field(default_factory=dict)
    #: ferlib's exact parameter count with 7-class heads (a regression pin, not a paper figure).
    ferlib_params_7cls: int | None = None
    notes: tuple[str, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)

    def total_params(self) -> float | None:
        return self.params.get("total")

    def total_gmacs(self) -> float | None:
        return self.gmacs.get("total")


@dataclass(frozen=True)
class ReportedResult:
    """One accuracy the paper reports for this model."""

    dataset: str
    accuracy: float  # %
    source: str  # table/section in the paper text
    pretraining: str = ""
    #: True when the figure is the best epoch measured on the test set (what the public code does).
    best_epoch_on_test: bool = False
    note: str = ""


@dataclass(frozen=True)
class AblationRow:
    """One configuration of an ablation table: a label, model variant keywords, the paper's number."""

    label: str
    variant: Mapping[str, Any]
    paper: float | None = None
    #: Model name when the row uses another network than the grid's (baselines).
    model: str | None = None


@dataclass(frozen=True)
class AblationGrid:
    name: str
    model: str
    source: str  # paper, table/figure
    paper_dataset: str  # what the paper's numbers were measured on
    rows: tuple[AblationRow, ...]

    def select(self, points: int | None) -> tuple[AblationRow, ...]:
        """The first ``points`` rows, always including the row that is the paper's own setting
        (the row with the highest paper number) so that the comparison has its reference."""
        if points is None or points >= len(self.rows):
            return self.rows
        numbered = [r for r in self.rows if r.paper is not None]
        best = max(numbered, key=lambda r: r.paper) if numbered else self.rows[0]
        chosen = list(self.rows[:points])
        if best not in chosen:
            chosen[-1] = best
        return tuple(chosen)


def ablation_rows(*items: tuple) -> tuple[AblationRow, ...]:
    """``AblationRow(*item)`` for each tuple: the compact way the cards write their tables."""
    return tuple(AblationRow(*item) for item in items)


@dataclass(frozen=True)
class CheckpointFormat:
    """An outside checkpoint layout this family loads (``load_checkpoint(model, path, source=name)``).

    ``key_map(name) -> ferlib name | None`` receives a checkpoint tensor name with ``module.``
    stripped; ``None`` means "known but unused"; ``KeyError`` means "not part of this layout".
    ``heads`` are the ferlib module paths of the classifier heads: a tensor of another class count
    there is an identity head to skip; a shape mismatch anywhere else is refused.
    """

    name: str
    key_map: Callable[[str], str | None]
    description: str = ""
    heads: tuple[str, ...] = ()


#: Labels of the five RetinaFace points when a region view draws them.
LANDMARK5_LABELS = ("eye1", "eye2", "nose", "mouth1", "mouth2")


@dataclass(frozen=True)
class BoxLayer:
    """Boxes ``(x0, y0, x1, y1)`` to draw, in pixels (``scale`` 1) or grid cells (``scale`` = stride)."""

    boxes: Any  # K×4 array
    names: tuple[str, ...] | None = None
    scale: float = 1.0
    style: str = "solid"  # "solid" | "thin" | "dashed" | "filled"
    colour_offset: int = 0


@dataclass(frozen=True)
class RegionPanel:
    """One panel of a region figure: the face (``"face"``) or the feature grid (``"grid"``), with
    boxes, points (``(K×2 array, names, colour)``), dotted lines (``((x0, y0), (x1, y1))`` in the
    panel's coordinates) or a ready RGB ``image`` (e.g. a padding mosaic) instead."""

    kind: str
    title: str
    boxes: tuple[BoxLayer, ...] = ()
    points: tuple[tuple[Any, tuple[str, ...] | None, str], ...] = ()
    lines: tuple[tuple[tuple[float, float], tuple[float, float]], ...] = ()
    image: Any = None
    width: float = 1.0


@dataclass(frozen=True)
class RegionView:
    """A view of the region explorer (notebook 02).

    ``regions(landmarks5, image_size, grid_size, patch_size) -> dict`` computes the geometry from
    one face's five landmarks (NumPy arrays; keys are the view's own, e.g. ``"lp"``, ``"ap"``,
    ``"grid_boxes"``); ``panels(geometry, landmarks5, image_size, grid_size) -> tuple[RegionPanel]``
    says what to draw. Drawing itself is generic (``ferlib.plots.plot_region_panels``).
    """

    name: str
    regions: Callable[..., dict[str, Any]]
    panels: Callable[..., tuple[RegionPanel, ...]]
    info: Callable[[Mapping[str, Any]], str] | None = None


@dataclass(frozen=True)
class PaperCard:
    """Everything ferlib knows about one registered model from its paper (see the module docstring)."""

    citation: Citation | None = None
    claims: Claims = field(default_factory=Claims)
    results: tuple[ReportedResult, ...] = ()
    #: Training recipe in ``ferlib/recipes/<recipe>.yaml``; "baseline" when the paper gives none.
    recipe: str = "baseline"
    ablations: tuple[AblationGrid, ...] = ()
    #: Name among ``model.cam_targets()`` of the one map to show when one per model is wanted.
    primary_cam_target: str = ""
    checkpoint_formats: tuple[CheckpointFormat, ...] = ()
    region_views: tuple[RegionView, ...] = ()
    #: Reads the attention the network computes, in image coordinates
    #: (``(model, images, inputs) -> ferlib.models._attention.OwnAttention``); None: it has none.
    attention: Callable[..., Any] | None = None
    #: The RAF-DB figure shown beside ferlib's results (``study.PAPER_RESULTS``), or None.
    headline_dataset: str = "RAF-DB"
    note: str = ""

    def result(self, dataset: str) -> ReportedResult | None:
        """The first reported result on ``dataset`` (cards list the headline first)."""
        return next((r for r in self.results if r.dataset == dataset), None)

    def checkpoint_format(self, name: str) -> CheckpointFormat | None:
        return next((f for f in self.checkpoint_formats if f.name == name), None)
