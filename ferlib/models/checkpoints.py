"""Load outside checkpoints into ferlib models: public MA-Net / AMP-Net, torchvision, VGG-Face, ferlib.

>>> from ferlib.models import create_model, load_checkpoint
>>> model = create_model("ma-net")
>>> report = load_checkpoint(model, "MA-Net_msceleb.pth", source="manet-official")
>>> print(report.summary())

Sources: a family's own formats come from its paper card (``PaperCard.checkpoint_formats``, a
name, a key map and the classifier heads), e.g.

* ``"manet-official"`` (MA-Net's card) — the public MA-Net checkpoints (MS-Celeb-1M pre-training
  with 12,666-way heads, or fine-tuned 7-class), through :func:`ferlib.models._ma_net_keys.manet_official_key_map`;
* ``"ampnet-official"`` (AMP-Net's cards) — the public AMP-Net checkpoints (VGGFace2 pre-training
  with 8,631-way heads, or fine-tuned), through :func:`ferlib.models._amp_net_keys.map_ampnet_official_key`
  (``None`` for the public modules its forward never uses);

and three generic formats:

* ``"torchvision"`` — a torchvision ResNet-18/34 or VGG16 state dict (e.g. a face-recognition
  ResNet-18 with a 12,666-way identity head, ``module.``/``backbone.`` prefixes allowed);
* ``"vgg-face"`` — VGG-Face in the ``vgg_face_dag`` layout (``conv1_1 … conv5_3``, ``fc6``-``fc8``), its
  input convention folded into the first convolution (:mod:`ferlib.models._weight_layouts`);

  both are placed by the model's ``torchvision_stages`` (torchvision module path → ferlib module path,
  ``None`` for what the family deliberately initialises itself): the *mapped part* of the model;
* ``"ferlib"`` — a state dict saved from a ferlib model (names already match).

Everything is read with ``torch.load(weights_only=True)``; ``module.`` prefixes (DataParallel) are
stripped; checkpoints wrapped as ``{"state_dict": ...}``/``{"model": ...}`` are unwrapped.

What is refused, with the file, the tensor names and the fix:

* a load that leaves any non-head tensor of the mapped part unset (:class:`IncompleteLoadError`,
  listing them) — unless ``partial=True`` (``--init-partial``); BN ``num_batches_tracked`` counters are
  not required. For a card format and ``"ferlib"`` the mapped part is the whole model;
* a file tensor that falls inside the mapped part but has no counterpart (a ResNet-34 into a
  ResNet-18 stage), a layout the model does not take (VGG16 into a ResNet family), a shape mismatch
  outside the classifier heads (``strict_shapes=True``).

Classifier heads of another class count (identity heads: 12,666-way MS-Celeb, 8,631-way VGGFace2,
2,622-way VGG-Face, ImageNet's 1,000-way) are skipped with a note and the model's own head keeps its
initialisation. The heads are known from the layout (torchvision ``fc``/``classifier.6``), the card's
format (``CheckpointFormat.heads``) or the class count (``num_classes``: the linear layers with that many
outputs) — never guessed from "any linear layer".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

import ferlib.models._weight_layouts as _layouts
from ferlib.models._base import FERModel
from ferlib.models._card import CheckpointFormat
from ferlib.models.registry import get_card, list_models

__all__ = [
    "CheckpointError",
    "GENERIC_SOURCES",
    "IncompleteLoadError",
    "OUTSIDE_SOURCES",
    "LoadReport",
    "checkpoint_sources",
    "classifier_heads",
    "load_checkpoint",
    "read_state_dict",
]

#: Outside layouts placed by a model's ``torchvision_stages`` (see :mod:`ferlib.models._weight_layouts`).
OUTSIDE_SOURCES = ("torchvision", "vgg-face")
#: Formats not tied to one paper card: the outside layouts and ferlib's own state dicts.
GENERIC_SOURCES = (*OUTSIDE_SOURCES, "ferlib")


def checkpoint_sources() -> tuple[str, ...]:
    """Every source name ``load_checkpoint`` accepts: the cards' formats, then the generic ones."""
    names: list[str] = []
    for model_name in list_models():
        card = get_card(model_name)
        for fmt in card.checkpoint_formats if card is not None else ():
            if fmt.name not in names:
                names.append(fmt.name)
    return (*names, *GENERIC_SOURCES)


def __getattr__(name: str):
    # ``SOURCES`` (the old constant) is computed from the cards on access, once every family is registered.
    if name == "SOURCES":
        return checkpoint_sources()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Identity-classification head sizes of known pre-training sets.
IDENTITY_HEADS = {
    12666: "MS-Celeb-1M subset (MA-Net pre-training)",
    8631: "VGGFace2 (AMP-Net pre-training)",
    2622: "VGG-Face identities",
    1000: "ImageNet",
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


@dataclass
class LoadReport:
    """What :func:`load_checkpoint` did.

    ``loaded``          ferlib state names that received a checkpoint tensor;
    ``missing``         ferlib state names the checkpoint did not provide (they keep their init);
    ``ignored``         checkpoint names not used, with the reason;
    ``replaced_heads``  ferlib classifier names whose checkpoint tensor had another class count
                        (identity heads): skipped, the ferlib head keeps its initialisation;
    ``layout``          what the file holds (``"ResNet-18"``, ``"VGG-Face (vgg_face_dag)"``; outside sources);
    ``mapped``          the mapped part (``torchvision name → ferlib module``, or the whole model);
    ``unset``           non-head tensors of the mapped part the file did not fill (refused unless ``partial``);
    ``notes``           conversions applied (e.g. VGG-Face's input convention folded into ``conv1_1``).
    """

    path: str
    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)
    replaced_heads: dict[str, str] = field(default_factory=dict)
    layout: str = ""
    mapped: list[str] = field(default_factory=list)
    unset: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    partial: bool = False

    def summary(self) -> str:
        kind = f"{self.source}, {self.layout}" if self.layout else self.source
        lines = [
            f"{self.path} ({kind}): loaded {len(self.loaded)} tensors, "
            f"{len(self.missing)} missing, {len(self.ignored)} ignored, {len(self.replaced_heads)} heads replaced"
        ]
        if self.mapped:
            lines.append(f"  mapped part: {', '.join(self.mapped)}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        for name, note in self.replaced_heads.items():
            lines.append(f"  head {name}: {note}")
        if self.unset:
            lines.append(f"  LEFT AT INIT inside the mapped part (--init-partial): {_grouped(self.unset)}")
        if self.missing:
            shown = ", ".join(self.missing[:8]) + (" ..." if len(self.missing) > 8 else "")
            lines.append(f"  missing (kept at init): {shown}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "source": self.source,
            "layout": self.layout,
            "partial": self.partial,
            "mapped": list(self.mapped),
            "loaded": list(self.loaded),
            "missing": list(self.missing),
            "unset": list(self.unset),
            "ignored": dict(self.ignored),
            "replaced_heads": dict(self.replaced_heads),
            "notes": list(self.notes),
        }


def _grouped(names: list[str]) -> str:
    """``a.b.weight, a.b.bias, c.weight`` → ``a.b.{weight, bias}, c.weight``: every name, compactly."""
    groups: dict[str, list[str]] = {}
    for name in names:
        module, _, leaf = name.rpartition(".")
        groups.setdefault(module, []).append(leaf)
    return ", ".join(
        f"{m}.{{{', '.join(leaves)}}}" if len(leaves) > 1 else f"{m}.{leaves[0]}" for m, leaves in groups.items()
    )


class IncompleteLoadError(CheckpointError):
    """A load that would leave non-head tensors of the mapped part at their initialisation.

    ``report`` is the :class:`LoadReport` of the refused load (``report.unset`` lists them); the model
    was not changed. ``load_checkpoint(..., partial=True)`` (``--init-partial``) accepts it.
    """

    def __init__(self, report: LoadReport):
        self.report = report
        super().__init__(
            f"{report.path} ({report.source}{', ' + report.layout if report.layout else ''}) leaves "
            f"{len(report.unset)} tensor(s) of the part it should fill at their random initialisation: "
            f"{_grouped(report.unset)}. The file does not hold the whole backbone this model takes (wrong file, "
            "depth or variant?); pass --init-partial (partial=True) to accept a partial start on purpose"
        )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file safely (``weights_only=True``) and return its flat state dict (names
    as saved, ``module.`` included). Raises :class:`CheckpointError` naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}; pass the path of a .pth/.pt file")
    try:
        try:  # memory-map zip-format files: no second copy of a 500 MB checkpoint in memory
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated zips, non-tensor payloads...
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
            "expected a PyTorch state dict saved with torch.save (re-save it as "
            "torch.save(model.state_dict(), path) if it holds a whole pickled model)"
        ) from exc
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model", "net"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and any(torch.is_tensor(v) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        kind = type(obj).__name__
        raise CheckpointError(
            f"{path} does not hold a state dict (found {kind}"
            + (f" with keys {sorted(map(str, obj))[:6]}" if isinstance(obj, Mapping) else "")
            + "); expected a mapping of tensor names to tensors, possibly under 'state_dict'"
        )
    return dict(obj)


def _strip_module(key: str) -> str:
    return key[len("module.") :] if key.startswith("module.") else key


def _label(model: nn.Module) -> str:
    name = model.__dict__.get("ferlib_name") or getattr(model, "ferlib_name", "")
    return f"{name} ({type(model).__name__})" if name else type(model).__name__


def _card_format(model: nn.Module, source: str) -> CheckpointFormat:
    """The checkpoint format ``source`` of ``model``'s paper card; a clear error if it has none."""
    card = model.card if isinstance(model, FERModel) else get_card(model.__dict__.get("ferlib_name"))
    fmt = card.checkpoint_format(source) if card is not None else None
    if fmt is None:
        own = [f.name for f in card.checkpoint_formats] if card is not None else []
        raise CheckpointError(
            f"{type(model).__name__} cannot load source={source!r}: its paper card lists "
            f"{own or 'no own formats'}; every model loads {', '.join(GENERIC_SOURCES)}"
        )
    return fmt


def _under(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def _optional(name: str) -> bool:
    """Tensors a load need not provide: BN's batch counters (old files lack them; nothing reads them
    with a fixed momentum)."""
    return name.endswith("num_batches_tracked")


def classifier_heads(model: nn.Module, fmt: CheckpointFormat | None = None, num_classes: int | None = None) -> set[str]:
    """ferlib module paths of ``model``'s classifier heads.

    From the card's format when it names them (``CheckpointFormat.heads``); otherwise the linear
    layers with ``num_classes`` outputs (``num_classes`` or the model's ``num_classes`` attribute);
    otherwise the heads every format of the model's card names. A model none of these describe has
    no heads: a mismatched linear layer is then refused, never skipped.
    """
    if fmt is not None and fmt.heads:
        return set(fmt.heads)
    n = num_classes if num_classes is not None else getattr(model, "num_classes", None)
    if isinstance(n, int):
        return {name for name, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features == n}
    card = model.card if isinstance(model, FERModel) else get_card(model.__dict__.get("ferlib_name"))
    heads: set[str] = set()
    for f in card.checkpoint_formats if card is not None else ():
        heads.update(f.heads)
    return heads


@dataclass
class _Plan:
    """Where each file tensor goes: ``entries`` (saved name, tensor, ferlib name or None, reason),
    the ferlib tensors that must arrive (``required``), the head tensors (``heads``)."""

    entries: list[tuple[str, torch.Tensor, str | None, str]] = field(default_factory=list)
    required: set[str] = field(default_factory=set)
    heads: set[str] = field(default_factory=set)
    mapped: list[str] = field(default_factory=list)


def _named_plan(
    model: nn.Module, raw: dict[str, torch.Tensor], source: str, path: str, num_classes: int | None
) -> _Plan:
    """Card formats (their key maps) and ``"ferlib"`` (names as they are): the whole model is mapped."""
    fmt = None if source == "ferlib" else _card_format(model, source)
    stripped = {_strip_module(k): k for k in raw}
    if len(stripped) != len(raw):
        raise CheckpointError(f"{path}: names collide once 'module.' is stripped; re-save it without DataParallel")
    own = model.state_dict()
    head_modules = classifier_heads(model, fmt, num_classes)
    heads = {k for k in own if any(_under(k, h) for h in head_modules)}
    plan = _Plan(required={k for k in own if k not in heads}, heads=heads, mapped=["(the whole model)"])
    for name, key in stripped.items():
        if fmt is None:
            plan.entries.append((key, raw[key], name, ""))
            continue
        try:
            target = fmt.key_map(name)
        except KeyError:  # a name-map that knows the full public layout refuses strangers
            plan.entries.append((key, raw[key], None, f"not part of the {source} layout"))
            continue
        reason = "" if target is not None else "no counterpart in ferlib (module unused by the forward pass)"
        plan.entries.append((key, raw[key], target, reason))
    return plan


def _stage_map(model: nn.Module, names: list[str]) -> dict[str, str | None] | None:
    stages = model.torchvision_stages if isinstance(model, FERModel) else None
    if stages:
        return dict(stages)
    prefix = model.torchvision_prefix if isinstance(model, FERModel) else None
    if prefix is None:
        return None
    modules = dict(model.named_modules())
    tops = {n.split(".", 1)[0] for n in names}
    return {top: prefix + top for top in tops if prefix + top in modules}


def _outside_plan(model: nn.Module, raw: dict[str, torch.Tensor], source: str, path: str, report: LoadReport) -> _Plan:
    """torchvision ResNet/VGG16 and VGG-Face files, placed by the model's ``torchvision_stages``."""
    state, saved = _layouts.strip_wrappers(raw, path)
    names = list(state)
    report.layout = _layouts.describe_layout(names)
    family = _layouts.layout_family(names)
    stages = _stage_map(model, names)
    if not stages:
        raise CheckpointError(
            f"{_label(model)} names no torchvision_stages, so it cannot place {source} weights from {path}; "
            "it loads ferlib checkpoints (source='ferlib') and the formats of its paper card"
        )
    wants = "vgg16" if any(k.startswith(("features.", "classifier.")) for k in stages) else "resnet"
    if source == "vgg-face":
        if family != "vgg-face":
            raise CheckpointError(
                f"{path} holds {report.layout}, not VGG-Face in the vgg_face_dag layout (conv1_1 … conv5_3, fc6-fc8); "
                "load torchvision files with source='torchvision' (--init-format torchvision)"
            )
        state, origin, notes = _layouts.vgg_face_to_torchvision(state, path)
        saved = {k: saved[origin[k]] for k in state}
        report.notes.extend(notes)
        family = "vgg16"
    elif family == "vgg-face":
        raise CheckpointError(
            f"{path} holds VGG-Face in the vgg_face_dag layout; load it with source='vgg-face' "
            "(--init-format vgg-face), which also converts its 0-255 mean-subtracted input convention"
        )
    what = {"resnet": "torchvision ResNet", "vgg16": "torchvision VGG16 or VGG-Face"}[wants]
    if family != wants:
        raise CheckpointError(
            f"{_label(model)} takes {what} weights (see its torchvision_stages), but {path} holds "
            f"{report.layout} (first names: {names[:3]}); pass weights of the backbone this model is built on"
        )
    own = model.state_dict()
    layout_heads = _layouts.LAYOUT_HEADS[wants]
    plan = _Plan()
    for prefix, target in stages.items():
        if target is None:
            continue
        members = {k for k in own if _under(k, target)}
        if prefix in layout_heads:
            plan.heads |= members
        else:
            plan.required |= members
            plan.mapped.append(f"{prefix} → {target}")
    label = _label(model)
    by_length = sorted(stages, key=len, reverse=True)
    unexpected = []
    for name, tensor in state.items():
        key = saved[name]
        prefix = next((p for p in by_length if _under(name, p)), None)
        if prefix is None:
            if any(_under(name, h) for h in layout_heads):
                note = IDENTITY_HEADS.get(int(tensor.shape[0]), f"{tensor.shape[0]}-way") if tensor.dim() else ""
                plan.entries.append((key, tensor, None, f"classification head ({note}); {label} has its own head"))
            else:
                plan.entries.append((key, tensor, None, f"not used by {label} (outside its torchvision_stages)"))
            continue
        if stages[prefix] is None:
            plan.entries.append(
                (key, tensor, None, f"left out on purpose: {label} initialises {prefix} itself (torchvision_stages)")
            )
            continue
        target = stages[prefix] + name[len(prefix) :]
        if target not in own:
            unexpected.append(f"{key} → {target}")
            continue
        plan.entries.append((key, tensor, target, ""))
    if unexpected:
        raise CheckpointError(
            f"{path} ({report.layout}) has {len(unexpected)} tensor(s) inside the part {label} takes that the "
            f"model does not have, e.g. {unexpected[:4]}: the file was saved from another depth or variant "
            "(e.g. ResNet-34 into a ResNet-18 stage); pass weights of the backbone this model is built on"
        )
    return plan


def load_checkpoint(
    model: nn.Module,
    path: str | Path,
    source: str = "ferlib",
    strict_shapes: bool = True,
    partial: bool = False,
    num_classes: int | None = None,
) -> LoadReport:
    """Load checkpoint ``path`` (of kind ``source``, see the module docstring) into ``model``.

    Returns a :class:`LoadReport`. Raises :class:`CheckpointError` when the file cannot be read,
    when it matches none of the model's tensors, when it holds another layout or depth than the
    model takes, or (``strict_shapes=True``) when a non-head tensor's shape differs from the model's
    (with ``strict_shapes=False`` such tensors are listed under ``ignored``); raises
    :class:`IncompleteLoadError` — before touching the model — when a non-head tensor of the mapped
    part would stay at its initialisation, unless ``partial=True``. ``num_classes`` tells which
    linear layers are classifier heads when the model does not say it (see :func:`classifier_heads`).
    """
    sources = checkpoint_sources()
    if source not in sources:
        raise ValueError(f"unknown checkpoint source {source!r}; choose one of {', '.join(sources)}")
    raw = read_state_dict(path)
    report = LoadReport(path=str(path), source=source, partial=partial)
    try:
        if source in OUTSIDE_SOURCES:
            plan = _outside_plan(model, raw, source, str(path), report)
        else:
            plan = _named_plan(model, raw, source, str(path), num_classes)
    except ValueError as exc:
        raise exc if isinstance(exc, CheckpointError) else CheckpointError(str(exc)) from None
    report.mapped = list(plan.mapped)
    own = model.state_dict()
    to_load: dict[str, torch.Tensor] = {}
    for key, tensor, target, reason in plan.entries:
        if target is None:
            report.ignored[key] = reason
            continue
        if target not in own:
            report.ignored[key] = f"ferlib tensor {target!r} does not exist in this model/variant"
            continue
        expected = own[target]
        if tuple(tensor.shape) != tuple(expected.shape):
            if target in plan.heads and tensor.dim() >= 1 and tensor.shape[1:] == expected.shape[1:]:
                what = IDENTITY_HEADS.get(int(tensor.shape[0]), f"{tensor.shape[0]}-way")
                report.replaced_heads[target] = (
                    f"checkpoint {key} is a {tensor.shape[0]}-way head ({what}); skipped, ferlib's "
                    f"{expected.shape[0]}-way head keeps its initialisation"
                )
                report.ignored[key] = "classification head with another class count"
                continue
            message = (
                f"{path}: tensor {key!r} has shape {tuple(tensor.shape)} but ferlib's {target!r} has shape "
                f"{tuple(expected.shape)}; the checkpoint was saved from a different architecture or variant. "
                f"Build the model with the variant the checkpoint was trained with, check source={source!r}, "
                "or pass strict_shapes=False to skip mismatched tensors"
            )
            if strict_shapes:
                raise CheckpointError(message)
            report.ignored[key] = f"shape {tuple(tensor.shape)} != {tuple(expected.shape)}"
            continue
        if target in to_load:
            report.ignored[key] = f"duplicate: {target!r} already filled"
            continue
        to_load[target] = tensor.to(dtype=expected.dtype)
    if not to_load:
        raise CheckpointError(
            f"{path}: none of its {len(raw)} tensors matches a tensor of {type(model).__name__} with "
            f"source={source!r} (first names: {list(raw)[:3]}); pick the right source "
            f"({', '.join(sources)}) or model"
        )
    report.loaded = [k for k in own if k in to_load]
    report.missing = [k for k in own if k not in to_load]
    report.unset = [k for k in own if k in plan.required and k not in to_load and not _optional(k)]
    if report.unset and not partial:
        raise IncompleteLoadError(report)
    model.load_state_dict(to_load, strict=False)
    return report
