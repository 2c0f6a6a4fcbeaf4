"""LAN guidance maps by per-position K-means (lan.txt §III-C, Eqs. 3–4) and the trainer's glue.

Moved from tests/models/test_lan.py with :mod:`ferlib.train.guidance` (formerly ``ferlib.models.guidance``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from ferlib.models import create_model
from ferlib.train.guidance import (
    GuidanceAnnotator,
    GuidanceCentres,
    TrainingGuidance,
    fit_guidance,
    guidance_maps,
)


def _synthetic_features(n: int = 40, c: int = 6, seed: int = 0):
    """Features N×C×7×7 where, at every position, a known minority of samples is deformed.

    The minority at position p is the ``size_p`` samples starting at ``offset_p``, with size_p between
    5 and 15 of 40, so each position has its own minority; their vectors sit far from the others'.
    """
    rng = np.random.default_rng(seed)
    general = rng.normal(size=(7, 7, c))
    deformed = general + 6.0 * rng.normal(size=(7, 7, c))
    feats = general[None] + 0.1 * rng.normal(size=(n, 7, 7, c))
    minority = np.zeros((n, 7, 7), dtype=bool)
    for p in range(49):
        i, j = divmod(p, 7)
        size, offset = 5 + p % 11, (3 * p) % n
        members = [(offset + k) % n for k in range(size)]
        minority[members, i, j] = True
        feats[members, i, j] = deformed[i, j] + 0.1 * rng.normal(size=(size, c))
    return torch.tensor(feats, dtype=torch.float32).permute(0, 3, 1, 2).contiguous(), minority


class _Loader(list):
    """A list of batches with a ``dataset`` length, like a DataLoader."""

    def __init__(self, batches, n):
        super().__init__(batches)
        self.dataset = range(n)


@pytest.mark.parametrize("method", ["kmeans", "minibatch"])
def test_guidance_maps_mark_the_minority_cluster(method, tmp_path):
    feats, minority = _synthetic_features()
    loader = _Loader([{"image": feats[k : k + 10]} for k in range(0, 40, 10)], 40)
    # chunk_size=10: MiniBatchKMeans sees the 40 samples as a stream of four partial fits
    centres = fit_guidance(nn.Identity(), loader, "cpu", method=method, seed=0, chunk_size=10)
    assert centres.attentive.shape == (7, 7, 6)
    np.testing.assert_array_equal(centres.counts[..., 0], minority.sum(0))  # the attentive cluster is the smaller
    np.testing.assert_array_equal(centres.counts.sum(-1), 40)
    maps = guidance_maps(feats, centres)
    assert maps.shape == (40, 7, 7)
    np.testing.assert_array_equal(maps.numpy().astype(bool), minority)

    path = centres.save(tmp_path / "centres.npz")
    loaded = GuidanceCentres.load(path)
    np.testing.assert_array_equal(loaded.attentive, centres.attentive)
    np.testing.assert_array_equal(loaded.counts, centres.counts)
    assert loaded.info["method"] == method


def test_guidance_maps_pure_function_by_hand():
    attentive = torch.zeros(7, 7, 2)
    general = torch.zeros(7, 7, 2)
    attentive[..., 0] = 1.0  # attentive centre (1, 0), general centre (0, 0) everywhere
    features = torch.zeros(1, 2, 7, 7)
    features[0, 0, 2, 3] = 0.9  # nearer the attentive centre
    features[0, 0, 4, 4] = 0.4  # still nearer the general one
    maps = guidance_maps(features, (attentive, general))
    expected = torch.zeros(1, 7, 7)
    expected[0, 2, 3] = 1
    assert torch.equal(maps, expected)
    with pytest.raises(ValueError, match="B×"):
        guidance_maps(torch.zeros(1, 3, 7, 7), (attentive, general))


def test_annotator_uses_a_frozen_copy_of_the_lan_backbone():
    torch.manual_seed(4)
    model = create_model("lan").eval()
    images = torch.randn(4, 3, 64, 64)
    feats = model.backbone(images)
    # centres fitted on this model's features (2×2 map at 64 px)
    loader = _Loader([{"image": images}], 4)
    centres = fit_guidance(model, loader, "cpu", method="kmeans")
    annotator = GuidanceAnnotator(model, centres)
    annotator.train()
    assert not annotator.backbone.training
    assert not any(p.requires_grad for p in annotator.parameters())
    maps = annotator(images)
    assert torch.equal(maps, guidance_maps(feats, centres))
    assert maps.sum(dim=0).min() >= 1  # every position has at least one attentive sample
    with torch.no_grad():
        model.backbone.layer4[1].conv2.weight.mul_(0)  # training the LAN does not move the annotator
    assert torch.equal(annotator(images), maps)


def test_fit_guidance_accepts_a_resnet_and_rejects_non_maps():
    torch.manual_seed(5)
    resnet = create_model("resnet18")
    images = torch.randn(4, 3, 64, 64)
    centres = fit_guidance(resnet, _Loader([{"image": images}], 4), "cpu")
    assert centres.attentive.shape == (2, 2, 512) and centres.info["method"] == "kmeans"
    np.testing.assert_array_equal(centres.counts.sum(-1), 4)
    assert resnet.training  # mode restored
    with pytest.raises(ValueError, match="B×C×H×W"):
        fit_guidance(nn.Flatten(), _Loader([{"image": images}], 4), "cpu")


def test_uint8_batches_are_normalised_like_the_trainer_does():
    torch.manual_seed(6)
    resnet = create_model("resnet18")
    images = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    from ferlib.data.transforms import normalize_images as normalize

    a = fit_guidance(resnet, _Loader([{"image": images}], 4), "cpu", method="kmeans")
    b = fit_guidance(resnet, _Loader([{"image": normalize(images)}], 4), "cpu", method="kmeans")
    np.testing.assert_array_equal(a.attentive, b.attentive)
    np.testing.assert_array_equal(a.counts, b.counts)


def test_training_guidance_state_restores_the_same_maps():
    torch.manual_seed(7)
    model = create_model("lan").eval()
    images = torch.randn(4, 3, 64, 64)
    g = TrainingGuidance()
    assert g.fn is None and g.state() is None  # before the warm-up ends: no maps, nothing saved
    g.annotator = GuidanceAnnotator(model, fit_guidance(model, _Loader([{"image": images}], 4), "cpu"))
    state = {k: v.clone() for k, v in g.state().items()}
    restored = TrainingGuidance()
    restored.restore(create_model("lan"), state, torch.device("cpu"))  # other weights: the state's backbone wins
    assert torch.equal(restored.fn(images), g.maps(images))
