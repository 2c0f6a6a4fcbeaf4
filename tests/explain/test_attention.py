"""ferlib.explain's own-attention maps, their placement in image coordinates, face-part shares."""

from __future__ import annotations

import numpy as np
import pytest
import torch

LM5 = torch.tensor([[[80.0, 100], [144, 100], [112, 130], [88, 165], [136, 165]]])


def _paper_models() -> list[str]:
    from ferlib.models import get_card, list_models

    return [n for n in list_models() if get_card(n) is not None and get_card(n).attention is not None]


def test_every_paper_family_has_an_attention_reader():
    assert {"amp-net", "amp-net-r18", "ma-net", "lan", "man", "ffra-net"} <= set(_paper_models())


@pytest.mark.parametrize("name", ["amp-net-r18", "ma-net", "lan", "man", "ffra-net"])
def test_attention_maps_have_image_shape_and_are_non_negative(name):
    from ferlib.explain import attention_maps, attention_weights, own_attention
    from ferlib.models import create_model

    torch.manual_seed(0)
    model = create_model(name).eval()
    images = torch.randn(2, 3, 224, 224)
    lm5 = LM5.repeat(2, 1, 1)
    with torch.no_grad():
        logits = model(images, landmarks5=lm5).logits if model.needs_landmarks else model(images).logits
    own = own_attention(model, images, lm5)
    np.testing.assert_allclose(own["logits"], logits.numpy(), rtol=1e-5, atol=1e-5)  # reading changes nothing
    maps = attention_maps(model, images, lm5)
    expected = {
        "amp-net-r18": {f"lp_{r}" for r in ("left_top", "right_top", "left_bottom", "right_bottom")}
        | {f"ap_{p}" for p in ("eye1", "eye2", "eye_middle", "mouth1", "mouth2")},
        "ma-net": {"local_top_left", "local_top_right", "local_bottom_left", "local_bottom_right"},
        "lan": {"attention"},
        "man": {
            "mask_" + r
            for r in (
                "whole_image",
                "eyes_with_brows",
                "mouth_with_nose",
                "left_eye",
                "right_eye",
                "nose",
                "left_mouth_corner",
                "right_mouth_corner",
            )
        },
        "ffra-net": {"shuffle_spatial"},
    }[name]
    assert set(maps) == expected
    for key, stack in maps.items():
        assert stack.shape == (2, 224, 224), key
        assert np.isfinite(stack).all() and stack.min() >= 0 and stack.max() <= 1, key
        assert stack.max() > 0, key  # sigmoid gates are never all zero on their region
    weights = attention_weights(model, images, lm5)
    if name == "man":
        assert weights["region_weights"].shape == (2, 8)
        np.testing.assert_allclose(weights["region_weights"].sum(1), 1.0, rtol=1e-5)
    else:
        assert weights == {}


def test_lan_guidance_map_is_a_second_entry():
    from ferlib.explain import attention_maps
    from ferlib.models import create_model

    model = create_model("lan").eval()
    guidance = torch.zeros(1, 7, 7)
    guidance[0, 2, 3] = 1.0  # one cell of the 7×7 grid: pixels 64..96 × 96..128 at 224 px
    maps = attention_maps(model, torch.randn(1, 3, 224, 224), guidance=guidance)
    assert set(maps) == {"attention", "guidance"}
    g = maps["guidance"][0]
    assert g[64:96, 96:128].min() == 1.0 and g.sum() == 32 * 32


def test_lbp_canvas_to_image_by_hand():
    """Grid 28 = image 28 px (stride 1), canvas S = 14: canvas cell (i, j) of a left/top region shows
    grid cell (y1 − 14 + i, x1 − 14 + j); of a right/bottom one (y0 + i, x0 + j)."""
    from ferlib.models._attention import lbp_canvas_to_image

    canvas = torch.arange(14 * 14, dtype=torch.float32).reshape(14, 14)  # value = 14·i + j
    canvas = canvas.expand(1, 4, 14, 14).clone() + 1.0
    boxes = torch.tensor([[[2, 3, 14, 14], [14, 0, 28, 14], [0, 14, 14, 28], [14, 14, 25, 22]]], dtype=torch.float32)
    out = lbp_canvas_to_image(canvas, boxes, grid_size=28, image_size=28)[0]
    lt = out[0]
    assert lt[6, 5] == 14 * 6 + 5 + 1  # left-top: anchor x = 14 − 14 = 0, y = 0
    assert lt[:3].sum() == 0 and lt[:, :2].sum() == 0 and lt[14:].sum() == 0 and lt[:, 14:].sum() == 0
    rb = out[3]
    assert rb[20, 17] == 14 * (20 - 14) + (17 - 14) + 1  # right-bottom: anchor (x0, y0) = (14, 14)
    inside = torch.zeros(28, 28, dtype=torch.bool)
    inside[14:22, 14:25] = True
    assert rb[~inside].abs().sum() == 0 and rb[inside].min() > 0


def test_amp_net_region_maps_lie_inside_their_region_boxes():
    from ferlib.explain import attention_maps
    from ferlib.models import create_model

    torch.manual_seed(0)
    model = create_model("amp-net-r18").eval()
    images = torch.randn(1, 3, 224, 224)
    maps = attention_maps(model, images, LM5)
    with torch.no_grad():
        aux = model(images, landmarks5=LM5).aux
    for k, region in enumerate(("left_top", "right_top", "left_bottom", "right_bottom")):
        x0, y0, x1, y1 = (int(v) * 8 for v in aux["lp_boxes"][0, k].round())
        m = maps[f"lp_{region}"][0]
        assert m[y0:y1, x0:x1].min() > 0, region
        outside = m.copy()
        outside[y0:y1, x0:x1] = 0
        assert outside.max() == 0, region
    x0, y0, x1, y1 = (int(v) * 8 for v in aux["ap_boxes"][0, 0].round())
    m = maps["ap_eye1"][0]
    assert m[y0:y1, x0:x1].min() > 0 and m.sum() == pytest.approx(m[y0:y1, x0:x1].sum())


def test_amp_net_lp_cam_is_placed_on_the_face_not_the_canvas():
    from ferlib.models import create_model

    model = create_model("amp-net-r18").eval()
    placed = model.place_cams("lp", np.ones((1, 224, 224), np.float32), {"landmarks5": LM5}, 224)
    with torch.no_grad():
        boxes = model(torch.randn(1, 3, 224, 224), landmarks5=LM5).aux["lp_boxes"][0] * 8
    union = np.zeros((224, 224), bool)
    for x0, y0, x1, y1 in boxes.round().int().tolist():
        union[y0:y1, x0:x1] = True
    assert placed.shape == (1, 224, 224)
    assert placed[0][union].min() == pytest.approx(1.0) and placed[0][~union].max() == 0


def test_ma_net_local_maps_stay_in_their_quadrant():
    from ferlib.explain import attention_maps
    from ferlib.models import create_model

    torch.manual_seed(0)
    maps = attention_maps(create_model("ma-net").eval(), torch.randn(1, 3, 224, 224))
    tl = maps["local_top_left"][0]
    assert tl[:112, :112].min() > 0 and tl[112:].max() == 0 and tl[:, 112:].max() == 0
    br = maps["local_bottom_right"][0]
    assert br[112:, 112:].min() > 0 and br[:112].max() == 0


def test_face_part_masks_follow_the_landmarks():
    from ferlib.data.face_geometry import TEMPLATE_112
    from ferlib.explain import face_part_masks

    masks = face_part_masks(TEMPLATE_112, 112)
    eyes, nose, mouth = masks["eyes"][0], masks["nose"][0], masks["mouth"][0]
    assert eyes[52, 38] and eyes[52, 73] and not eyes[52, 56]  # both pupils, not between them
    assert nose[65, 56] and mouth[92, 56] and not mouth[65, 56]
    assert not (eyes & nose).any() and not (nose & mouth).any() and not (eyes & mouth).any()
    # A face rolled by 90° (eyes one above the other) has its eye boxes rolled with it.
    c = np.array([56.0, 56.0])
    rolled = (TEMPLATE_112 - c) @ np.array([[0.0, 1.0], [-1.0, 0.0]]).T + c  # (x, y) → (c − (y − c), x)
    eyes_r = face_part_masks(rolled, 112)["eyes"][0]
    px, py = rolled[0]
    assert eyes_r[int(round(py)), int(round(px))] and eyes_r.sum() == eyes.sum()
    assert not face_part_masks(np.full((5, 2), np.nan), 112)["eyes"].any()


def test_region_attention_share_on_hand_made_maps():
    from ferlib.data.face_geometry import TEMPLATE_112
    from ferlib.explain import face_part_masks, region_attention_share

    lm = np.stack([TEMPLATE_112, TEMPLATE_112])
    masks = face_part_masks(lm, 112)
    on_mouth = masks["mouth"].astype(np.float32)
    uniform = np.ones((2, 112, 112), np.float32)
    table = region_attention_share(
        {"mouth": on_mouth, "uniform": uniform}, lm, labels=[3, 5], class_names=list("abcdef")
    )
    get = table.set_index(["map", "class", "region"])
    assert get.loc[("mouth", "all", "mouth"), "share"] == pytest.approx(1.0)
    assert get.loc[("mouth", "all", "eyes"), "share"] == 0.0
    assert get.loc[("mouth", "d", "mouth"), "n"] == 1 and get.loc[("mouth", "f", "mouth"), "share"] == 1.0
    area = masks["eyes"][0].mean()
    assert get.loc[("uniform", "all", "eyes"), "share"] == pytest.approx(area)
    assert get.loc[("uniform", "all", "eyes"), "ratio"] == pytest.approx(1.0)
    assert set(table["class"]) == {"all", "d", "f"}


def test_lan_guidance_from_an_annotator_matches_its_maps():
    """A callable guidance (the run's GuidanceAnnotator, as restored from LAN's checkpoint) is applied to the images."""
    from ferlib.explain import attention_maps
    from ferlib.models import create_model
    from ferlib.train.guidance import GuidanceAnnotator, GuidanceCentres

    torch.manual_seed(0)
    model = create_model("lan").eval()
    rng = np.random.default_rng(0)
    centres = GuidanceCentres(
        rng.normal(size=(7, 7, 512)).astype(np.float32),
        rng.normal(size=(7, 7, 512)).astype(np.float32),
        np.ones((7, 7, 2), np.int64),
    )
    annotator = GuidanceAnnotator(model, centres)
    images = torch.randn(2, 3, 224, 224)
    maps = attention_maps(model, images, guidance=annotator)
    expected = annotator(images).numpy().repeat(32, axis=1).repeat(32, axis=2)  # 7×7 cells of 32 px
    np.testing.assert_array_equal(maps["guidance"], expected)
