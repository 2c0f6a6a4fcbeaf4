"""The CAM explorer's state → picture logic (notebook 05): the target-class selector, empty maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def explorer():
    from ferlib.models import create_model
    from ferlib.widgets import CamExplorer

    torch.manual_seed(0)
    net = create_model("resnet18").eval()
    images = torch.randn(2, 3, 64, 64)
    faces = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    batch = {"label": torch.tensor([4, 2]), "image": faces}
    return CamExplorer({"resnet18": net}, images, faces, batch, [f"c{i}" for i in range(7)])


def test_target_class_selector_chooses_the_explained_class(explorer):
    from ferlib.explain import compute_cams

    net = explorer.models["resnet18"]
    pred = int(net(explorer.images[:1]).logits.argmax(1))
    assert explorer.explained_class("resnet18", 0, "predicted") == pred
    assert explorer.explained_class("resnet18", 0, "true") == 4
    assert explorer.explained_class("resnet18", 0, 6) == 6
    with pytest.raises(ValueError, match="explain_class"):
        explorer.explained_class("resnet18", 0, 9)
    cam6, cls, _ = explorer.cam("resnet18", "layer4", 0, explain_class=6)
    assert cls == 6
    np.testing.assert_allclose(cam6, compute_cams(net, explorer.images[:1], net.layer4, classes=[6])[0], atol=1e-6)
    _, caption = explorer.overlay("resnet18", "layer4", 1, explain_class="true")
    assert "explains c2" in caption and "true c2" in caption


def test_an_empty_cam_is_shown_as_empty(explorer):
    import copy

    net = copy.deepcopy(explorer.models["resnet18"])
    with torch.no_grad():
        net.fc.weight.zero_()
    explorer.models["zeroed"] = net
    frame, caption = explorer.overlay("zeroed", "layer4", 0)
    assert "EMPTY map" in caption
    assert (frame[..., 0] == frame[..., 1]).all()  # the grey face, no colour map
    del explorer.models["zeroed"]
