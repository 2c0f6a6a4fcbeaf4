"""The cascading-randomisation sanity check (Adebayo et al., 2018) on a small model."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def test_spearman_per_map_by_hand():
    from ferlib.explain import spearman_per_map

    a = np.arange(16, dtype=float).reshape(1, 4, 4)
    rho = spearman_per_map(np.concatenate([a, a, a]), np.concatenate([a**2, -a, np.zeros_like(a)]))
    assert rho[0] == pytest.approx(1.0) and rho[1] == pytest.approx(-1.0) and np.isnan(rho[2])


def test_cascading_randomization_destroys_the_cam_and_leaves_the_model():
    from ferlib.explain import cascading_randomization, compute_cams
    from ferlib.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet18").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.randn(3, 3, 64, 64)
    table, cams = cascading_randomization(model, images, "layer4", classes=[0, 1, 2], steps=3, seed=1)
    assert list(table["step"]) == [0, 1, 2, 3]
    assert table.loc[0, "spearman"] == pytest.approx(1.0) and table.loc[0, "randomised"] == "(trained)"
    assert table["layers"].iloc[-1] == 41 and table["fraction"].iloc[-1] == 1.0  # every weighted layer
    assert table["randomised"].iloc[-1] == "conv1"  # the cascade ends at the input layer
    assert table["spearman"].iloc[-1] < 0.5  # the fully randomised model's CAMs no longer follow the trained ones
    np.testing.assert_allclose(cams[0], compute_cams(model, images, model.layer4, classes=[0, 1, 2]), atol=1e-6)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # worked on a copy
