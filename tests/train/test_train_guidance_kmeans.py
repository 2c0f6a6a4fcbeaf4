"""LAN's K = 2 per-position K-means in torch (``ferlib.train.guidance.kmeans2_torch``, lan.txt Eq. 3)
finds the clusters scikit-learn's KMeans finds, and ``fit_guidance(method="torch")`` the same centres."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from test_train_guidance import _Loader, _synthetic_features

from ferlib.train.guidance import fit_guidance, guidance_maps, kmeans2_torch


def _blobs(positions: int = 6, n: int = 300, c: int = 16, seed: int = 0) -> np.ndarray:
    """Per position two Gaussian blobs 8σ apart (noise norm ≈ 4σ in 16-d: one clear partition), of
    unequal, position-dependent sizes."""
    rng = np.random.default_rng(seed)
    out = np.empty((positions, n, c), np.float32)
    for p in range(positions):
        k = 40 + 25 * p
        centre = rng.normal(size=c)
        direction = rng.normal(size=c)
        direction *= 8.0 / np.linalg.norm(direction)
        out[p, :k] = centre + direction + rng.normal(size=(k, c))
        out[p, k:] = centre + rng.normal(size=(n - k, c))
    return out


def test_torch_kmeans_finds_scikit_learns_clusters():
    KMeans = pytest.importorskip("sklearn.cluster").KMeans  # optional on the GPU image; the CUDA test needs none
    x = _blobs()
    # tol=0 on both sides: iterate to the fixed point, so the comparison does not depend on where each stops
    centres, labels = kmeans2_torch(torch.from_numpy(x), seed=0, n_init=3, tol=0.0)
    assert centres.shape == (6, 2, 16) and labels.shape == (6, 300)
    for p in range(len(x)):
        km = KMeans(n_clusters=2, n_init=3, random_state=0, tol=0.0).fit(x[p])
        ours = labels[p].numpy()
        same = ours == km.labels_
        swapped = not same.all()
        assert same.all() or (~same).all(), f"position {p}: {int((~same).sum())} samples differ"
        sk = km.cluster_centers_[::-1] if swapped else km.cluster_centers_
        np.testing.assert_allclose(centres[p].numpy(), sk, atol=1e-4)


def test_torch_kmeans_is_seeded():
    x = torch.from_numpy(_blobs(seed=1))
    a, b = kmeans2_torch(x, seed=3), kmeans2_torch(x, seed=3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="at least 2 samples"):
        kmeans2_torch(x[:, :1])


def test_fit_guidance_torch_method_matches_the_scikit_learn_path():
    feats, minority = _synthetic_features()
    loader = _Loader([{"image": feats[k : k + 10]} for k in range(0, 40, 10)], 40)
    ref = fit_guidance(nn.Identity(), loader, "cpu", method="kmeans", seed=0, progress=False)
    ours = fit_guidance(nn.Identity(), loader, "cpu", method="torch", seed=0, progress=False)
    np.testing.assert_array_equal(ours.counts, ref.counts)
    np.testing.assert_allclose(ours.attentive, ref.attentive, atol=1e-5)
    np.testing.assert_allclose(ours.general, ref.general, atol=1e-5)
    np.testing.assert_array_equal(guidance_maps(feats, ours).numpy().astype(bool), minority)
    assert ours.info["method"] == "torch"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_kmeans_equals_the_cpu_result():
    x = torch.from_numpy(_blobs(positions=49, n=2000, c=64, seed=2))
    cpu_centres, cpu_labels = kmeans2_torch(x, seed=0)
    gpu_centres, gpu_labels = kmeans2_torch(x.cuda(), seed=0)
    assert gpu_centres.is_cuda
    assert torch.equal(gpu_labels.cpu(), cpu_labels)
    torch.testing.assert_close(gpu_centres.cpu(), cpu_centres, atol=1e-4, rtol=1e-4)
