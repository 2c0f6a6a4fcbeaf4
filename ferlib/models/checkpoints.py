"""Load outside checkpoints into ferlib models: public MA-Net / AMP-Net, torchvision, ferlib.

>>> from ferlib.models import create_model, load_checkpoint
>>> model = create_model("ma-net")
>>> report = load_checkpoint(model, "MA-Net_msceleb.pth", source="manet-official")
>>> print(report.summary())

Sources: a family's own formats come from its paper card (``PaperCard.checkpoint_formats``, a
name and a key map), e.g.

* ``"manet-official"`` (MA-Net's card) — the public MA-Net checkpoints (MS-Celeb-1M pre-training
  with 12,666-way heads, or fine-tuned 7-class), through :func:`ferlib.models.ma_net.manet_official_key_map`;
* ``"ampnet-official"`` (AMP-Net's cards) — the public AMP-Net checkpoints (VGGFace2 pre-training
  with 8,631-way heads, or fine-tuned), through :func:`ferlib.models._amp_net_keys.map_ampnet_official_key`
  (``None`` for the public modules its forward never uses);

and two generic formats work for every model:

* ``"torchvision"`` — a torchvision-layout state dict (``resnet18``/``resnet34``/``vgg16``, e.g. a
  face-recognition ResNet-18). Its names are loaded into the model's torchvision-derived stages:
  every tensor name ``k`` goes to ``<prefix>k`` for the one prefix that places the most tensors
  A model says where its torchvision-derived stages live with a ``torchvision_stages``
  attribute (torchvision top-level name → ferlib module path; MA-Net maps ``conv1``, ``bn1``,
  ``layer1``, ``layer2`` to its pre-extractor, plus ``layer3``/``layer4`` when a branch is
  ResNet-18's last two stages, so the deeper stages it re-defines are ignored). Otherwise every
  name ``k`` goes to ``<prefix>k`` for the one prefix that places the most tensors, or the
  model's ``torchvision_prefix`` attribute.
* ``"ferlib"`` — a state dict saved from a ferlib model (names already match).

Everything is read with ``torch.load(weights_only=True)``; ``module.`` prefixes (DataParallel) are
stripped; checkpoints wrapped as ``{"state_dict": ...}``/``{"model": ...}`` are unwrapped.
Identity-classification heads (12,666-way MS-Celeb, 8,631-way VGGFace2, ImageNet's 1,000-way,
or any class count other than the model's) are skipped with a note and the model's own head keeps
its initialisation. Any other shape mismatch is refused (``strict_shapes=True``) with a message
naming the file, the tensor, both shapes and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from ferlib.models._base import FERModel
from ferlib.models._card import CheckpointFormat
from ferlib.models.registry import get_card, list_models

__all__ = [
    "CheckpointError",
    "GENERIC_SOURCES",
    "LoadReport",
    "checkpoint_sources",
    "load_checkpoint",
    "read_state_dict",
]

#: Formats every model loads; the others come from the paper cards.
GENERIC_SOURCES = ("torchvision", "ferlib")


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
                        (identity heads): skipped, the ferlib head keeps its initialisation.
    """

    path: str
    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)
    replaced_heads: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [
            f"{self.path} ({self.source}): loaded {len(self.loaded)} tensors, "
            f"{len(self.missing)} missing, {len(self.ignored)} ignored, {len(self.replaced_heads)} heads replaced"
        ]
        for name, note in self.replaced_heads.items():
            lines.append(f"  head {name}: {note}")
        if self.missing:
            shown = ", ".join(self.missing[:8]) + (" ..." if len(self.missing) > 8 else "")
            lines.append(f"  missing (kept at init): {shown}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "source": self.source,
            "loaded": list(self.loaded),
            "missing": list(self.missing),
            "ignored": dict(self.ignored),
            "replaced_heads": dict(self.replaced_heads),
        }


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


def _torchvision_map(keys: list[str], model_keys: set[str], model: nn.Module) -> Callable[[str], str | None]:
    stages = model.torchvision_stages if isinstance(model, FERModel) else None
    if stages:
        # explicit: torchvision top-level module name -> ferlib module path
        def by_stage(key: str) -> str | None:
            head, _, rest = key.partition(".")
            return f"{stages[head]}.{rest}" if head in stages and rest else None

        return by_stage
    prefix = model.torchvision_prefix if isinstance(model, FERModel) else None
    if prefix is None:
        votes: dict[str, int] = {}
        for key in keys:
            for name in model_keys:
                if name == key or name.endswith("." + key):
                    p = name[: len(name) - len(key)]
                    votes[p] = votes.get(p, 0) + 1
        # most tensors placed wins; ties go to the shallower prefix
        prefix = min(votes, key=lambda p: (-votes[p], p.count("."), p)) if votes else ""
    return lambda key: prefix + key


def _is_head(model: nn.Module, name: str, model_tensor: torch.Tensor) -> bool:
    """A ferlib classifier tensor: belongs to an nn.Linear whose outputs are the model's classes."""
    module_name = name.rsplit(".", 1)[0]
    try:
        module = model.get_submodule(module_name)
    except AttributeError:
        return False
    num_classes = getattr(model, "num_classes", None)
    if not isinstance(module, nn.Linear):
        return False
    return num_classes is None or module.out_features == num_classes


def load_checkpoint(
    model: nn.Module,
    path: str | Path,
    source: str = "ferlib",
    strict_shapes: bool = True,
) -> LoadReport:
    """Load checkpoint ``path`` (of kind ``source``, see the module docstring) into ``model``.

    Returns a :class:`LoadReport`. Raises :class:`CheckpointError` when the file cannot be read,
    when it matches none of the model's tensors, or (``strict_shapes=True``) when a non-head
    tensor's shape differs from the model's; with ``strict_shapes=False`` such tensors are
    listed under ``ignored`` instead.
    """
    sources = checkpoint_sources()
    if source not in sources:
        raise ValueError(f"unknown checkpoint source {source!r}; choose one of {', '.join(sources)}")
    if source == "torchvision" or source == "ferlib":
        fmt = None
    else:
        fmt = _card_format(model, source)
    raw = read_state_dict(path)
    # DataParallel prefixes go; reports keep the names as saved in the file
    state = {_strip_module(k): v for k, v in raw.items()}
    saved_name = {_strip_module(k): k for k in raw}
    if len(state) != len(raw):
        raise CheckpointError(f"{path}: names collide once 'module.' is stripped; re-save it without DataParallel")
    own = model.state_dict()
    if fmt is not None:
        mapper = fmt.key_map
    elif source == "torchvision":
        mapper = _torchvision_map(list(state), set(own), model)
    else:
        mapper = lambda key: key  # noqa: E731

    report = LoadReport(path=str(path), source=source)
    to_load: dict[str, torch.Tensor] = {}
    for stripped, tensor in state.items():
        key = saved_name[stripped]
        try:
            target = mapper(stripped)
        except KeyError:  # a name-map that knows the full public layout refuses strangers
            report.ignored[key] = f"not part of the {source} layout"
            continue
        if target is None:
            report.ignored[key] = "no counterpart in ferlib (module unused by the forward pass or unknown name)"
            continue
        if target not in own:
            report.ignored[key] = f"ferlib tensor {target!r} does not exist in this model/variant"
            continue
        expected = own[target]
        if tuple(tensor.shape) != tuple(expected.shape):
            if _is_head(model, target, expected) and tensor.dim() >= 1 and tensor.shape[1:] == expected.shape[1:]:
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
            f"{path}: none of its {len(state)} tensors matches a tensor of {type(model).__name__} with "
            f"source={source!r} (first names: {list(state)[:3]}); pick the right source "
            f"({', '.join(sources)}) or model"
        )
    model.load_state_dict(to_load, strict=False)
    report.loaded = [k for k in own if k in to_load]
    report.missing = [k for k in own if k not in to_load]
    return report
