"""AMP-Net region geometry (ferlib/models/regions.py) against hand computations from amp-net.txt
Eqs. 2-4 (PBD + special cases), §III-C-2 (LBP), Table III (schemes) and Eq. 6 (AP centres).

All expected boxes below are worked out by hand in the comments, on the 28×28 grid of a 224-px
input (stride 8, r = 28, r/2 = 14, r/3 = 9.33). Boxes are (x0, y0, x1, y1), x1/y1 exclusive.
"""

from __future__ import annotations

import math

import pytest
import torch

from ferlib.models.regions import (
    ap_patch_boxes,
    division_points,
    equal_split_boxes,
    extract_patches,
    landmarks_to_grid,
    location_based_padding,
    lp_scheme_index,
    pose_based_division,
    roi_align_regions,
)

R = 28
NAN = math.nan


def grid_of(points_px) -> torch.Tensor:
    """One face's 5 pixel points (224 input) → 1×5×2 grid points."""
    return landmarks_to_grid(torch.tensor([points_px], dtype=torch.float32), (224, 224), R)


# Normal frontal face, pixels → grid (/8): eye1 (10,12), eye2 (18,12), nose (14,16), mouth1 (11,21), mouth2 (17,21).
NORMAL = [(80, 96), (144, 96), (112, 128), (88, 168), (136, 168)]
# Face near the image-left border: grid eye1 (2,10), eye2 (10,10), nose (6,14), mouth1 (3,20), mouth2 (9,20).
LEFT = [(16, 80), (80, 80), (48, 112), (24, 160), (72, 160)]
# Left-shifted face with a long nose-mouth distance:
# grid eye1 (4,8), eye2 (12,8), nose (8,11), mouth1 (5,20), mouth2 (11,20).
LONG = [(32, 64), (96, 64), (64, 88), (40, 160), (88, 160)]


def test_landmarks_to_grid_rounds_half_to_even_and_clamps():
    g = landmarks_to_grid(torch.tensor([[[84.0, 92.0], [-5.0, 300.0], [NAN, 8.0]]]), (224, 224), R)
    # 84/8 = 10.5 → 10 (half to even), 92/8 = 11.5 → 12; (-5, 300) clamps to (0, 224) → (0, 28); NaN stays.
    assert g[0, 0].tolist() == [10.0, 12.0]
    assert g[0, 1].tolist() == [0.0, 28.0]
    assert math.isnan(g[0, 2, 0].item()) and g[0, 2, 1].item() == 1.0


def test_division_points_eq2():
    x_top, x_bottom, y_center = division_points(grid_of(NORMAL), R)
    # x_top = (10+18)/2 = 14, x_bottom = (11+17)/2 = 14, y_center = y_nose = 16.
    assert (x_top.item(), x_bottom.item(), y_center.item()) == (14.0, 14.0, 16.0)


def test_pbd_normal_face():
    boxes = pose_based_division(grid_of(NORMAL), R)[0]
    # Eq. 3: l_top = min(x_top=14, y_center=16, 28-14=14) = 14 ≥ r/3;
    #        l_bottom = min(14, 28-16=12, 14) = 12 ≥ r/3 → no special case.
    # Eq. 4: LT = [14-14, 16-14, 14, 16], RT = [14, 2, 28, 16], LB = [14-12, 16, 14, 28], RB = [14, 16, 26, 28].
    # Every region contains its point (eye1 (10,12) ∈ LT, eye2 (18,12) ∈ RT, mouth1 (11,21) ∈ LB, mouth2 ∈ RB).
    assert boxes.tolist() == [[0, 2, 14, 16], [14, 2, 28, 16], [2, 16, 14, 28], [14, 16, 26, 28]]


def test_pbd_special_case_1_small_l():
    boxes = pose_based_division(grid_of(LEFT), R)[0]
    # Top: x_top = (2+10)/2 = 6, y_center = 14: l_top = min(14, 6, 22) = 6 < 28/3, the binding distance is
    # the left one (x_top) → left-top keeps l = 6, right-top gets l1 = min(y_center 14, r - x_top 22, r/2 14) = 14.
    # Bottom: x_bottom = (3+9)/2 = 6: l_bottom = min(28-14=14, 6, 22) = 6 < r/3, left-binding →
    # left-bottom 6, right-bottom l1 = min(14, 22, 14) = 14. All four points stay inside (mouth1: dx=3, dy=6 ≤ 6).
    assert boxes.tolist() == [[0, 8, 6, 14], [6, 0, 20, 14], [0, 14, 6, 20], [6, 14, 20, 28]]


def test_pbd_special_case_1_mirrored_and_vertical():
    # Mirror LEFT about the vertical axis (x → 224 - x, left/right slots swapped): grid eye1 (18,10),
    # eye2 (26,10), nose (22,14), mouth1 (19,20), mouth2 (25,20). x_top = 22: l_top = min(14, 22, 6) = 6,
    # right-binding → right-top 6, left-top l1 = min(14, 22, 14) = 14; bottom likewise (x_bottom = 22).
    mirrored = [
        (224 - LEFT[1][0], LEFT[1][1]),
        (224 - LEFT[0][0], LEFT[0][1]),
        (224 - LEFT[2][0], LEFT[2][1]),
        (224 - LEFT[4][0], LEFT[4][1]),
        (224 - LEFT[3][0], LEFT[3][1]),
    ]
    boxes = pose_based_division(grid_of(mirrored), R)[0]
    assert boxes.tolist() == [[8, 0, 22, 14], [22, 8, 28, 14], [8, 14, 22, 28], [22, 14, 28, 20]]
    # Vertical binding: nose high at grid y = 5 (eyes at y = 3): l_top = min(5, 14, 14) = 5 < r/3 and the
    # vertical room is the smallest → both top squares keep 5: LT [9,0,14,5], RT [14,0,19,5].
    # Bottom: l_bottom = min(23, 14, 14) = 14 → LB [0,5,14,19], RB [14,5,28,19] (mouth at y = 12, inside).
    high = [(80, 24), (144, 24), (112, 40), (88, 96), (136, 96)]
    boxes = pose_based_division(grid_of(high), R)[0]
    assert boxes.tolist() == [[9, 0, 14, 5], [14, 0, 19, 5], [0, 5, 14, 19], [14, 5, 28, 19]]


def test_pbd_special_case_2_point_outside():
    boxes = pose_based_division(grid_of(LONG), R)[0]
    # Top: x_top = 8, y_center = 11: l_top = min(11, 8, 20) = 8 < r/3, left-binding → LT side 8,
    # RT side l1 = min(11, 20, 14) = 11 → LT [0,3,8,11], RT [8,0,19,11]; eyes inside (dx = 4, dy = 3).
    # Bottom: x_bottom = 8: l_bottom = min(17, 8, 20) = 8 < r/3, left-binding → LB side 8, RB side min(17,20,14) = 14.
    # mouth1 (5,20): dy = 20 - 11 = 9 > 8 → LB misses its point vertically (case 2): width stays l = 8,
    # height l2 = min(room below 28-11 = 17, r/2 = 14) = 14 → LB [0, 11, 8, 25].
    # Its symmetric RB becomes a square of side l2 = 14 (already 14) → RB [8, 11, 22, 25].
    assert boxes.tolist() == [[0, 3, 8, 11], [8, 0, 19, 11], [0, 11, 8, 25], [8, 11, 22, 25]]
    # Without case 2 the LB box would be [0, 11, 8, 19] and miss mouth1 at y = 20: the fix is what made it contain it.
    x0, y0, x1, y1 = boxes[2].tolist()
    assert x0 <= 5 < x1 and y0 <= 20 < y1


def test_pbd_special_case_2_enlarges_partner_to_square():
    # eye1 far above the nose while the top pair is left-limited: grid eye1 (3,2), eye2 (9,10),
    # nose (6,13), mouth1 (4,20), mouth2 (8,20).
    pts = [(24, 16), (72, 80), (48, 104), (32, 160), (64, 160)]
    boxes = pose_based_division(grid_of(pts), R)[0]
    # Top: x_top = 6, y_center = 13: l = min(13, 6, 22) = 6 < r/3, left-binding → LT 6, RT l1 = min(13, 22, 14) = 13.
    # eye1: dy = 13 - 2 = 11 > 6 → LT misses vertically: height l2 = min(13, 14) = 13, width 6 → LT [0, 0, 6, 13].
    # RT contains eye2 (dx 3, dy 3); it becomes a square of side
    # max(13, min(l2=13, room 22, room 13)) = 13 → [6, 0, 19, 13].
    # Bottom: x_bottom = 6: l = min(15, 6, 22) = 6, left-binding → LB 6, RB min(15, 22, 14) = 14;
    # mouth1 (4,20): dy = 7 > 6 → LB height l2 = min(15, 14) = 14 → LB [0, 13, 6, 27]; RB square 14 → [6, 13, 20, 27].
    assert boxes.tolist() == [[0, 0, 6, 13], [6, 0, 19, 13], [0, 13, 6, 27], [6, 13, 20, 27]]


def test_pbd_missing_landmark_nan():
    pts = [list(p) for p in NORMAL]
    pts[3] = [NAN, NAN]  # mouth1 unknown (occluded)
    boxes = pose_based_division(grid_of(pts), R)[0]
    # x_bottom falls back to the known mouth corner: x = 17 → x_bottom = 17; y_center = 16.
    # Top unchanged from the normal face. Bottom: l = min(12, 17, 11) = 11 ≥ r/3 → sides 11.
    # LB lacks its point (NaN) → case 2: height l2 = min(12, 14) = 12, width 11 → LB [6, 16, 17, 28].
    # RB contains mouth2 (17,21) (dx 0, dy 5) → square max(11, min(12, room 11, room 12)) = 11 → RB [17, 16, 28, 27].
    assert boxes.tolist() == [[0, 2, 14, 16], [14, 2, 28, 16], [6, 16, 17, 28], [17, 16, 28, 27]]
    # All five unknown: division points fall back to the grid centre and every region misses its point
    # → the four equal quadrants.
    unknown = pose_based_division(grid_of([[NAN, NAN]] * 5), R)
    assert torch.equal(unknown, equal_split_boxes(1, R))


def test_modified_pbd_scheme3():
    boxes = pose_based_division(grid_of(LEFT), R, scheme="modified")[0]
    # Each region: side = min(room towards its own horizontal and vertical borders, r/2).
    # x_top = 6, x_bottom = 6, y_center = 14: LT min(6, 14) = 6; RT min(22, 14, 14) = 14; LB min(6, 14) = 6; RB 14.
    assert boxes.tolist() == [[0, 8, 6, 14], [6, 0, 20, 14], [0, 14, 6, 20], [6, 14, 20, 28]]
    boxes = pose_based_division(grid_of(NORMAL), R, scheme="modified")[0]
    # x = 14, y_center = 16: LT min(14, 16, 14) = 14, RT min(14, 16, 14) = 14, LB min(14, 12) = 12, RB min(14, 12) = 12.
    assert boxes.tolist() == [[0, 2, 14, 16], [14, 2, 28, 16], [2, 16, 14, 28], [14, 16, 26, 28]]


def test_pbd_is_batched_without_cross_talk():
    batch = torch.cat([grid_of(NORMAL), grid_of(LEFT), grid_of(LONG)])
    together = pose_based_division(batch, R)
    for i, pts in enumerate((NORMAL, LEFT, LONG)):
        assert torch.equal(together[i], pose_based_division(grid_of(pts), R)[0])


def _index_map(channels: int = 2) -> torch.Tensor:
    """1×C×28×28 features whose value at (y, x) is 100·y + x (+ 10000·c)."""
    y, x = torch.meshgrid(torch.arange(R), torch.arange(R), indexing="ij")
    base = (100 * y + x).float()
    return torch.stack([base + 10000 * c for c in range(channels)])[None]


def test_location_based_padding_corners():
    feats = _index_map()
    boxes = pose_based_division(grid_of(LEFT), R)  # LT [0,8,6,14], RT [6,0,20,14], LB [0,14,6,20], RB [6,14,20,28]
    maps = location_based_padding(feats, boxes)
    assert maps.shape == (1, 4, 2, 14, 14)
    lt, rt, lb, rb = maps[0, :, 0]
    # LT (6×6) sits in the bottom-right corner (padding to the left and top): rows 8..13, cols 8..13
    # hold grid rows 8..13, cols 0..5; the rest is 0.
    assert torch.equal(lt[8:, 8:], feats[0, 0, 8:14, 0:6])
    assert lt[:8].abs().sum() == 0 and lt[:, :8].abs().sum() == 0
    # RT (14×14) fills the whole map: rows 0..13, cols 6..19.
    assert torch.equal(rt, feats[0, 0, 0:14, 6:20])
    # LB (6×6) in the top-right corner: map rows 0..5, cols 8..13 = grid rows 14..19, cols 0..5.
    assert torch.equal(lb[:6, 8:], feats[0, 0, 14:20, 0:6])
    assert lb[6:].abs().sum() == 0 and lb[:, :8].abs().sum() == 0
    # RB (14×14): grid rows 14..27, cols 6..19.
    assert torch.equal(rb, feats[0, 0, 14:28, 6:20])
    # Channel 1 is gathered from the same cells.
    assert torch.equal(maps[0, 0, 1, 8:, 8:], feats[0, 1, 8:14, 0:6])


def test_location_based_padding_rectangle_and_top_left_corner():
    feats = _index_map(1)
    boxes = pose_based_division(grid_of(LONG), R)  # LB [0, 11, 8, 25] is 8 wide × 14 high
    lb = location_based_padding(feats, boxes)[0, 2, 0]
    # Left-bottom region: padded on the left (6 zero columns), flush with the top.
    assert torch.equal(lb[:, 6:], feats[0, 0, 11:25, 0:8])
    assert lb[:, :6].abs().sum() == 0
    rb = location_based_padding(feats, boxes)[0, 3, 0]  # RB [8, 11, 22, 25] → top-left corner, full
    assert torch.equal(rb, feats[0, 0, 11:25, 8:22])


def test_equal_split_scheme2_is_the_quadrants():
    feats = _index_map(1)
    maps = location_based_padding(feats, equal_split_boxes(1, R))[0, :, 0]
    assert torch.equal(maps[0], feats[0, 0, :14, :14]) and torch.equal(maps[1], feats[0, 0, :14, 14:])
    assert torch.equal(maps[2], feats[0, 0, 14:, :14]) and torch.equal(maps[3], feats[0, 0, 14:, 14:])


def test_roi_align_scheme1_samples_the_box():
    # On a linear ramp, bilinear ROI Align is exact: with aligned=True a 14×14 box pooled to 14×14
    # returns the box's own cells (interior box, so no border clamping).
    y, x = torch.meshgrid(torch.arange(R), torch.arange(R), indexing="ij")
    feats = (3.0 * x + 5.0 * y).float()[None, None]
    boxes = torch.tensor([[[2.0, 2.0, 16.0, 16.0]]])
    out = roi_align_regions(feats, boxes)
    assert out.shape == (1, 1, 1, 14, 14)
    torch.testing.assert_close(out[0, 0, 0], feats[0, 0, 2:16, 2:16])
    # A 7×7 box stretched to 14×14: bin i spans [1.5 + i/2, 2 + i/2] after the -0.5 alignment shift; its two
    # samples average to coordinate 1.75 + i/2 = 2 + (i + 0.5)/2 - 0.5.
    small = roi_align_regions(feats, torch.tensor([[[2.0, 2.0, 9.0, 9.0]]]))[0, 0, 0]
    expected = 3.0 * (2 + (torch.arange(14) + 0.5) / 2 - 0.5) + 5.0 * (2 + (torch.arange(14) + 0.5) / 2 - 0.5)[:, None]
    torch.testing.assert_close(small, expected)


def test_ap_boxes_eq6_normal_face():
    boxes = ap_patch_boxes(grid_of(NORMAL), R, patch_size=10)[0]
    # Eq. 6 centres on the grid: eye1 (10,12), eye2 (18,12), eye middle ((10+18)/2, 12) = (14,12),
    # mouth1 (11,21), mouth2 (17,21). L = 10 → [c − 5, c + 5): clamps not needed except y of the mouths:
    # 21 − 5 = 16, 16 + 10 = 26 ≤ 28 fine.
    assert boxes.tolist() == [[5, 7, 15, 17], [13, 7, 23, 17], [9, 7, 19, 17], [6, 16, 16, 26], [12, 16, 22, 26]]


def test_ap_boxes_clamped_and_sizes():
    # Near the border (LEFT face: eye1 (2,10)): x0 = clamp(2 − 5, 0, 18) = 0; mouth2 (9,20) with L = 14:
    # x0 = clamp(9 − 7, 0, 14) = 2, y0 = clamp(20 − 7, 0, 14) = 13.
    b10 = ap_patch_boxes(grid_of(LEFT), R, 10)[0]
    assert b10[0].tolist() == [0, 5, 10, 15]
    b14 = ap_patch_boxes(grid_of(LEFT), R, 14)[0]
    assert b14[4].tolist() == [2, 13, 16, 27]
    for size in (6, 8, 10, 12, 14):
        b = ap_patch_boxes(grid_of(LONG), R, size)
        assert torch.all(b[..., 2] - b[..., 0] == size) and torch.all(b[..., 3] - b[..., 1] == size)
        assert b.min() >= 0 and b.max() <= R


def test_ap_missing_centre_gives_zero_patch():
    pts = [list(p) for p in NORMAL]
    pts[0] = [NAN, NAN]  # eye1 unknown
    g = grid_of(pts)
    boxes = ap_patch_boxes(g, R, 10)
    assert torch.isnan(boxes[0, 0]).all()
    # Eye middle falls back to the known eye (18,12) → [13, 7, 23, 17].
    assert boxes[0, 2].tolist() == [13, 7, 23, 17]
    feats = _index_map(1) + 1.0
    patches = extract_patches(feats, boxes, 10)
    assert patches.shape == (1, 5, 1, 10, 10)
    assert patches[0, 0].abs().sum() == 0
    assert torch.equal(patches[0, 1, 0], feats[0, 0, 7:17, 13:23])
    assert torch.equal(patches[0, 3, 0], feats[0, 0, 16:26, 6:16])


def test_scheme_names():
    assert [lp_scheme_index(s) for s in (1, 2, 3, 4)] == [1, 2, 3, 4]
    assert lp_scheme_index("pbd-lbp") == 4 and lp_scheme_index("pbd-roi-align") == 1
    with pytest.raises(ValueError, match="Table III"):
        lp_scheme_index(5)
