"""LAN attention guidance maps by per-position K-means (lan.txt §III-C, Eqs. 3–4).

The recipe, step by step:

1. Run a backbone over the *training* set and keep its conv5_x feature map ``F_o`` (512×7×7).
2. At each of the 7×7 = 49 positions ``p``, cluster the N feature vectors ``f_p^1 … f_p^N`` with
   K-means, K = 2 (Eq. 3: a centre is the mean of its cluster's vectors).
3. The cluster with fewer samples is the *attentive* one (Eq. 4; on a tie the second cluster).
4. A sample's guidance map is 1 at the positions whose feature is nearer (Euclidean) to the
   attentive centre than to the general one, 0 elsewhere.

ferlib's API:

* :func:`fit_guidance` — steps 1–3 as one batched, progress-barred pass; returns
  :class:`GuidanceCentres`, which saves to / loads from ``.npz`` so the clustering runs once per
  backbone and training set and is then reused. Uses scikit-learn's ``KMeans`` when the features
  fit in memory and ``MiniBatchKMeans`` (streamed with ``partial_fit``, then a second counting
  pass) when the set is large.
* :func:`guidance_maps` — step 4 as a pure batched function: features B×C×H×W → B×H×W of 0/1.
* :class:`GuidanceAnnotator` — a frozen copy of the clustering backbone plus the centres; call it
  on a (possibly augmented) batch of images to get ``batch["guidance"]`` for :meth:`LAN.loss`.
* :class:`TrainingGuidance` — the trainer's glue: fits the centres after the recipe's warm-up,
  annotates every batch, and saves/restores its state with the checkpoints.

This is a training procedure (a pass over a DataLoader, K-means, progress bars), so it lives on the
training floor; the LAN network itself (:mod:`ferlib.models.lan`) only consumes ``batch["guidance"]``.

When it runs. The paper clusters the features of a *pre-trained* backbone (ResNet-18 pre-trained
on MS-Celeb-1M, lan.txt §IV-B), so the clusters describe how that fixed backbone sees each
position, not how the network being trained sees it. With ferlib this means one of:

* **from a loaded backbone** (the paper's setting): load face-recognition ResNet-18 weights into a
  ``lan`` model (or a ``resnet18``), call :func:`fit_guidance` on the training loader *before*
  training, save the centres, and train with ``GuidanceAnnotator(that_backbone, centres)``;
* **after a warm-up** (no pre-trained weights, e.g. on SynthFER): train ``lan`` for a few epochs
  with the CE loss only (``LAN.loss`` is CE alone while ``batch`` has no ``"guidance"``), then fit
  the centres on the warmed-up backbone, freeze a copy of it in a :class:`GuidanceAnnotator`, and
  continue training with the full loss. Clustering a randomly initialised backbone gives
  meaningless maps.

Because the annotator computes maps from the images it is given, augmentations (flips, crops)
move the guidance together with the image; nothing per-sample has to be cached.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ferlib.data.transforms import normalize_images
from ferlib.train.data import make_loader

#: Above this many training samples :func:`fit_guidance` streams with MiniBatchKMeans
#: (16,384 × 49 × 512 float32 features are 1.6 GB).
MAX_IN_MEMORY_SAMPLES = 16_384


@dataclass(frozen=True)
class GuidanceCentres:
    """Per-position K = 2 cluster centres (lan.txt Eqs. 3–4).

    ``attentive`` and ``general`` are H×W×C float32 centres of the smaller and the larger cluster
    at each position; ``counts`` is H×W×2 (samples in the attentive, general cluster).
    """

    attentive: np.ndarray
    general: np.ndarray
    counts: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.attentive.shape != self.general.shape or self.attentive.ndim != 3:
            raise ValueError(
                f"GuidanceCentres: attentive {self.attentive.shape} and general {self.general.shape} "
                "centres must both be H×W×C"
            )

    def save(self, path: str | Path) -> Path:
        """Write the centres to ``path`` (``.npz``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        info_keys = np.array(list(self.info.keys()), dtype=str)
        info_values = np.array([str(v) for v in self.info.values()], dtype=str)
        with open(path, "wb") as fh:  # an open handle keeps numpy from appending a second ".npz"
            np.savez(
                fh,
                attentive=self.attentive,
                general=self.general,
                counts=self.counts,
                info_keys=info_keys,
                info_values=info_values,
            )
        return path

    @classmethod
    def load(cls, path: str | Path) -> GuidanceCentres:
        """Read centres written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"LAN guidance centres not found at {path}; make them with "
                "ferlib.train.guidance.fit_guidance(...).save(path)"
            )
        with np.load(path) as data:
            missing = {"attentive", "general", "counts"} - set(data.files)
            if missing:
                raise ValueError(f"{path} is not a ferlib guidance-centres file: missing {sorted(missing)}")
            info = (
                dict(zip(data["info_keys"].tolist(), data["info_values"].tolist())) if "info_keys" in data.files else {}
            )
            return cls(data["attentive"], data["general"], data["counts"], info)

    def tensors(self, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(attentive, general) centres as float32 tensors H×W×C."""
        return (
            torch.as_tensor(self.attentive, dtype=torch.float32, device=device),
            torch.as_tensor(self.general, dtype=torch.float32, device=device),
        )


def guidance_maps(features: torch.Tensor, centres: GuidanceCentres | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Attention guidance maps (lan.txt §III-C): B×C×H×W features → B×H×W float of 0/1.

    A position is 1 when its feature vector is strictly nearer (Euclidean) to the attentive centre
    than to the general centre of that position.
    """
    if isinstance(centres, GuidanceCentres):
        attentive, general = centres.tensors(features.device)
    else:
        attentive, general = (c.to(features.device, torch.float32) for c in centres)
    if features.dim() != 4 or tuple(features.shape[1:]) != (attentive.shape[2], *attentive.shape[:2]):
        raise ValueError(
            f"guidance_maps: features must be B×C×H×W = B×{attentive.shape[2]}×{attentive.shape[0]}×"
            f"{attentive.shape[1]} like the centres, got {tuple(features.shape)}"
        )
    f = features.float().permute(0, 2, 3, 1)  # B×H×W×C
    d_attentive = (f - attentive).pow(2).sum(-1)
    d_general = (f - general).pow(2).sum(-1)
    return (d_attentive < d_general).float()


def _feature_extractor(model_or_backbone: nn.Module) -> nn.Module:
    """The module that maps images to the conv5_x feature map.

    A ``lan`` model gives its ``backbone``; a torchvision-style ResNet (``resnet18`` baseline,
    face-recognition ResNet-18) its stem and ``layer1``–``layer4``; any other module is used as is
    and must return B×C×H×W.
    """
    if isinstance(getattr(model_or_backbone, "backbone", None), nn.Module):
        return model_or_backbone.backbone
    m = model_or_backbone
    if all(hasattr(m, k) for k in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")):
        return nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3, m.layer4)
    return m


def _batch_images(batch: Any, prepare: Callable[[Any], torch.Tensor] | None) -> torch.Tensor:
    if prepare is not None:
        return prepare(batch)
    images = batch["image"] if isinstance(batch, dict) else batch[0] if isinstance(batch, (list, tuple)) else batch
    if not torch.is_floating_point(images):
        images = normalize_images(images)
    return images


@torch.no_grad()
def _iter_features(
    extractor: nn.Module,
    loader: Iterable,
    device: torch.device,
    prepare: Callable[[Any], torch.Tensor] | None,
    desc: str,
    progress: bool = True,
) -> Iterable[torch.Tensor]:
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress):
        images = _batch_images(batch, prepare).to(device)
        features = extractor(images)
        if not isinstance(features, torch.Tensor) or features.dim() != 4:
            got = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise ValueError(
                f"LAN guidance (ferlib/train/guidance.py): the backbone must return B×C×H×W features, got {got}; "
                "pass a lan model, a ResNet, or a module ending at conv5_x"
            )
        yield features.float()


def _attentive_first(centres: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eq. 4: cluster 0 is attentive if strictly smaller, otherwise cluster 1."""
    attentive = 0 if counts[0] < counts[1] else 1
    general = 1 - attentive
    return centres[attentive], centres[general], np.array([counts[attentive], counts[general]], dtype=np.int64)


def kmeans2_torch(
    x: torch.Tensor, *, seed: int = 0, n_init: int = 3, max_iter: int = 300, tol: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """K-means with K = 2 for P independent problems at once, in torch on ``x``'s device (lan.txt Eq. 3).

    ``x`` is P×N×C (P positions, N samples). Each of ``n_init`` restarts seeds its two centres by
    k-means++ (a random sample, then one drawn with probability ∝ squared distance; the generator is a
    CPU one seeded by ``seed``, so CPU and GPU start alike), then runs Lloyd's iterations — assign each
    sample to the nearer centre, move each centre to its cluster's mean (Eq. 3) — until the centres
    move less than ``tol`` × the mean per-feature variance (scikit-learn's criterion); per position the
    restart with the lowest inertia wins. Returns ``(centres P×2×C, labels P×N)``. Used by
    :func:`fit_guidance` (``method="torch"``): 49 positions are a few batched matrix products instead
    of 49 scikit-learn fits over features copied back to the host.
    """
    p, n, c = x.shape
    if n < 2:
        raise ValueError(f"K-means with K=2 needs at least 2 samples, got {n}")
    x = x.float()
    g = torch.Generator().manual_seed(int(seed))
    sq = x.pow(2).sum(-1)  # P×N
    threshold = tol * x.var(dim=1, unbiased=False).mean(-1)  # P
    rows = torch.arange(p, device=x.device)

    def distances(centres: torch.Tensor) -> torch.Tensor:  # P×N×2 squared Euclidean
        d = sq[..., None] - 2 * torch.bmm(x, centres.transpose(1, 2)) + centres.pow(2).sum(-1)[:, None, :]
        return d.clamp_min(0)

    best_centres, best_inertia = None, None
    for _ in range(max(1, n_init)):
        first = torch.randint(n, (p,), generator=g).to(x.device)
        c0 = x[rows, first]  # P×C
        d0 = (sq - 2 * torch.einsum("pnc,pc->pn", x, c0) + c0.pow(2).sum(-1, keepdim=True)).clamp_min(0)
        u = torch.rand(p, 1, generator=g, dtype=torch.float64).to(x.device)
        cum = d0.double().cumsum(1)
        second = torch.searchsorted(cum, u * cum[:, -1:]).clamp_max(n - 1).squeeze(1)
        centres = torch.stack([c0, x[rows, second]], dim=1)  # P×2×C
        for _ in range(max_iter):
            onehot = torch.nn.functional.one_hot(distances(centres).argmin(-1), 2).to(x.dtype)  # P×N×2
            counts = onehot.sum(1)  # P×2
            means = torch.bmm(onehot.transpose(1, 2), x) / counts.clamp_min(1)[..., None]
            moved = torch.where(counts[..., None] > 0, means, centres)  # an emptied cluster keeps its centre
            shift = (moved - centres).pow(2).sum((-1, -2))
            centres = moved
            if bool((shift <= threshold).all()):
                break
        inertia = distances(centres).min(-1).values.sum(-1)  # P
        if best_centres is None:
            best_centres, best_inertia = centres, inertia
        else:
            better = inertia < best_inertia
            best_centres = torch.where(better[:, None, None], centres, best_centres)
            best_inertia = torch.minimum(inertia, best_inertia)
    return best_centres, distances(best_centres).argmin(-1)


def fit_guidance(
    model_or_backbone: nn.Module,
    loader: Iterable,
    device: torch.device | str = "cpu",
    *,
    method: str = "auto",
    seed: int = 0,
    n_init: int = 3,
    max_in_memory: int = MAX_IN_MEMORY_SAMPLES,
    chunk_size: int = 2048,
    kmeans_threads: int = 1,
    prepare: Callable[[Any], torch.Tensor] | None = None,
    progress: bool = True,
) -> GuidanceCentres:
    """Cluster the backbone's features at each position into K = 2 (lan.txt §III-C).

    ``loader`` yields collated batches (``batch["image"]``, float normalised or uint8) of the
    training set, without shuffling-dependent augmentation; ``prepare`` overrides how images are
    taken from a batch. ``method``: ``"kmeans"`` (all features in memory, scikit-learn KMeans
    with ``n_init`` restarts), ``"minibatch"`` (MiniBatchKMeans streamed over the loader, then a
    second pass counting the cluster sizes) or ``"auto"`` (KMeans up to ``max_in_memory``
    samples; on a CUDA device ``"torch"`` instead: :func:`kmeans2_torch`, all 49 positions at once on the
    device). MiniBatchKMeans is fed ``chunk_size`` samples at a time (per-call overhead dominates
    on small batches). ``kmeans_threads`` caps scikit-learn's OpenMP/BLAS threads: 49 small
    problems run much faster single-threaded than with oversubscribed thread pools. The model's
    train/eval mode is restored afterwards. ``progress=False`` hides the progress bars (notebooks
    pass it: ``tqdm.auto`` ignores ``TQDM_DISABLE`` inside a kernel).
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    if method not in ("auto", "kmeans", "minibatch", "torch"):
        raise ValueError(f"fit_guidance: method must be 'auto', 'kmeans', 'minibatch' or 'torch', got {method!r}")
    device = torch.device(device)
    extractor = _feature_extractor(model_or_backbone)
    was_training = extractor.training
    extractor.eval()
    if method == "auto":
        n = len(loader.dataset) if hasattr(loader, "dataset") else None  # type: ignore[attr-defined]
        method = "kmeans" if n is not None and n <= max_in_memory else "minibatch"
        method = "torch" if method == "kmeans" and device.type == "cuda" else method  # K-means on the GPU
    try:
        if method == "torch":
            chunks = list(_iter_features(extractor, loader, device, prepare, "LAN guidance: features", progress))
            if not chunks:
                raise ValueError("fit_guidance: the loader yielded no batches")
            feats = torch.cat(chunks)  # N×C×H×W, on the device
            n, c, h, w = feats.shape
            centres_t, labels_t = kmeans2_torch(feats.flatten(2).permute(2, 0, 1), seed=seed, n_init=n_init)
            sizes = torch.stack([(labels_t == 0).sum(1), (labels_t == 1).sum(1)], 1).cpu().numpy()
            centres_np = centres_t.cpu().numpy()
            attentive = np.empty((h, w, c), np.float32)
            general = np.empty((h, w, c), np.float32)
            counts = np.empty((h, w, 2), np.int64)
            for q in range(h * w):
                i, j = divmod(q, w)
                attentive[i, j], general[i, j], counts[i, j] = _attentive_first(centres_np[q], sizes[q])
        elif method == "kmeans":
            chunks = [
                f.permute(0, 2, 3, 1).cpu().numpy()
                for f in _iter_features(extractor, loader, device, prepare, "LAN guidance: features", progress)
            ]
            if not chunks:
                raise ValueError("fit_guidance: the loader yielded no batches")
            feats = np.concatenate(chunks)  # N×H×W×C
            n, h, w, c = feats.shape
            if n < 2:
                raise ValueError(f"fit_guidance: K-means with K=2 needs at least 2 samples, got {n}")
            attentive = np.empty((h, w, c), np.float32)
            general = np.empty((h, w, c), np.float32)
            counts = np.empty((h, w, 2), np.int64)
            for p in tqdm(range(h * w), desc="LAN guidance: K-means per position", unit="pos", disable=not progress):
                i, j = divmod(p, w)
                with threadpool_limits(limits=kmeans_threads):
                    km = KMeans(n_clusters=2, n_init=n_init, random_state=seed).fit(feats[:, i, j])
                size = np.bincount(km.labels_, minlength=2)
                attentive[i, j], general[i, j], counts[i, j] = _attentive_first(km.cluster_centers_, size)
        else:
            models: list[Any] = []
            shape: tuple[int, ...] | None = None
            n = 0
            buffer: list[np.ndarray] = []

            def feed(chunk: list[np.ndarray]) -> None:
                x = np.concatenate(chunk)
                if x.shape[0] < 2:  # partial_fit needs at least K samples per call
                    return
                with threadpool_limits(limits=kmeans_threads):
                    for p, km in enumerate(models):
                        km.partial_fit(x[:, p // shape[1], p % shape[1]])

            for f in _iter_features(extractor, loader, device, prepare, "LAN guidance: MiniBatchKMeans", progress):
                x = f.permute(0, 2, 3, 1).cpu().numpy()
                if shape is None:
                    shape = x.shape[1:]
                    models = [
                        MiniBatchKMeans(n_clusters=2, random_state=seed, n_init=n_init)
                        for _ in range(shape[0] * shape[1])
                    ]
                n += x.shape[0]
                buffer.append(x)
                if sum(len(b) for b in buffer) >= chunk_size:
                    feed(buffer)
                    buffer = []
            if buffer and models:
                feed(buffer)
            if shape is None or n < 2:
                raise ValueError("fit_guidance: the loader yielded fewer than 2 usable samples")
            h, w, c = shape
            centres = torch.as_tensor(
                np.stack([km.cluster_centers_ for km in models]).reshape(h, w, 2, c), dtype=torch.float32
            )
            size = torch.zeros(h, w, 2, dtype=torch.int64)
            for f in _iter_features(extractor, loader, device, prepare, "LAN guidance: cluster sizes", progress):
                d0 = (f.permute(0, 2, 3, 1).cpu() - centres[:, :, 0]).pow(2).sum(-1)
                d1 = (f.permute(0, 2, 3, 1).cpu() - centres[:, :, 1]).pow(2).sum(-1)
                nearer1 = (d1 < d0).long()
                size[..., 1] += nearer1.sum(0)
                size[..., 0] += (1 - nearer1).sum(0)
            attentive = np.empty((h, w, c), np.float32)
            general = np.empty((h, w, c), np.float32)
            counts = np.empty((h, w, 2), np.int64)
            for i in range(h):
                for j in range(w):
                    attentive[i, j], general[i, j], counts[i, j] = _attentive_first(
                        centres[i, j].numpy(), size[i, j].numpy()
                    )
    finally:
        extractor.train(was_training)
    info = {"method": method, "n_samples": int(counts[0, 0].sum()), "seed": seed, "k": 2}
    return GuidanceCentres(attentive, general, counts, info)


def attentive_share_summary(counts: np.ndarray) -> dict[str, Any]:
    """Per-position share of training samples in the attentive (smaller) cluster, from H×W×2 counts."""
    counts = np.asarray(counts, dtype=np.float64)
    share = counts[..., 0] / np.maximum(counts.sum(-1), 1.0)
    return {
        "n_samples": int(counts[0, 0].sum()),
        "attentive_share": np.round(share, 4).tolist(),
        "attentive_share_mean": round(float(share.mean()), 4),
        "attentive_share_min": round(float(share.min()), 4),
        "attentive_share_max": round(float(share.max()), 4),
    }


class GuidanceAnnotator(nn.Module):
    """Frozen clustering backbone + centres: images → guidance maps B×H×W (lan.txt §III-C).

    ``backbone`` is copied and frozen (``requires_grad=False``, always in eval mode), so the maps
    keep describing the backbone the centres were fitted on while the LAN being trained changes.
    """

    def __init__(self, model_or_backbone: nn.Module, centres: GuidanceCentres):
        super().__init__()
        self.backbone = copy.deepcopy(_feature_extractor(model_or_backbone))
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        attentive, general = centres.tensors()
        self.register_buffer("attentive", attentive)
        self.register_buffer("general", general)
        self.backbone.eval()

    def train(self, mode: bool = True) -> GuidanceAnnotator:
        super().train(mode)
        self.backbone.eval()  # BatchNorm statistics stay those of the clustered backbone
        return self

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return guidance_maps(self.backbone(images), (self.attentive, self.general))


class TrainingGuidance:
    """LAN guidance maps during training (lan.txt §III-C) through :class:`GuidanceAnnotator`.

    The centres are fitted once, after ``recipe.guidance_warmup_epochs`` epochs (before the first
    epoch when the run starts from ``--init`` weights, as the paper clusters its pre-trained
    backbone), on the training part (never the validation or test data); a frozen copy of the backbone at that
    moment then annotates every (augmented) batch. Its state goes into the checkpoints.
    """

    def __init__(self) -> None:
        self.annotator: nn.Module | None = None
        self.counts: np.ndarray | None = None  # H×W×2 cluster sizes of the last fit (not restored)

    def fit(
        self, core: nn.Module, ds: Dataset, batch_size: int, device: torch.device, seed: int, progress: bool = True
    ) -> None:
        centres = fit_guidance(core, make_loader(ds, batch_size), device=device, seed=seed, progress=progress)
        self.annotator = GuidanceAnnotator(core, centres).to(device)
        self.counts = centres.counts

    def summary(self) -> dict[str, Any]:
        """The clusters' balance after fitting: the attentive share per position (H×W, Eq. 4 makes it
        ≤ 0.5), its mean, min and max. Empty when the centres were restored from a checkpoint."""
        if self.counts is None:
            return {}
        return attentive_share_summary(self.counts)

    def state(self) -> dict[str, Any] | None:
        return None if self.annotator is None else self.annotator.state_dict()

    def restore(self, core: nn.Module, state: dict[str, Any], device: torch.device) -> None:
        att, gen = state["attentive"].numpy(), state["general"].numpy()
        counts = np.zeros(att.shape[:2] + (2,), np.int64)
        self.annotator = GuidanceAnnotator(core, GuidanceCentres(att, gen, counts)).to(device)
        self.annotator.load_state_dict(state)

    def maps(self, images: torch.Tensor) -> torch.Tensor:
        return self.annotator(images)

    @property
    def fn(self) -> Callable | None:
        return self.maps if self.annotator is not None else None
