"""Multiple Attention Network ground-truth region masks from 8 landmarks (man.txt §III-A-1).

Pure, batched tensor geometry (no per-sample loops, no state), used by the RASnet mask loss.

**The 8 points** (man.txt Fig. 4; ``ferlib.data.schema.LANDMARK8_NAMES``), indices 0..7 for
l1..l8: l1 nose tip; l2, l3 image-left eye outer and inner corners; l4, l5 image-right eye inner and
outer corners; l6, l7 image-left and image-right mouth corners; l8 a point below the mouth.

**The N = 8 regions** (Table 2), each a box (x, y, w, h) with centre (x, y) and size (w, h) on the
W×H input image:

====  ==========================  ===================  ==================
r     region                      centre (x, y)        size (w, h)
====  ==========================  ===================  ==================
0     whole image                 (W/2, H/2)           (W, H)
1     eyes together with brows    (l2 + l5)/2          (0.36 W, 0.72 H)
2     mouth together with nose    (l1 + l8)/2          (0.36 W, 0.54 H)
3     left eye (image left)       (l2 + l3)/2          (0.27 W, 0.27 H)
4     right eye (image right)     (l4 + l5)/2          (0.27 W, 0.27 H)
5     nose                        l1                   (0.27 W, 0.27 H)
6     left mouth corner           l6                   (0.27 W, 0.27 H)
7     right mouth corner          l7                   (0.27 W, 0.27 H)
====  ==========================  ===================  ==================

Table 2 prints one size cell for the fine-grained rows (left eye ... right mouth corner), so all five
use (0.27 W, 0.27 H). Note on row 1: as printed, the eyes-and-brows box is portrait
(0.36 W wide, 0.72 H tall), narrower than the distance between the outer eye corners of an aligned
face, while a landscape (0.72 W, 0.36 H) box would cover both eyes and brows. ferlib follows the
table as printed by default (:data:`REGION_SIZES_TABLE2`) and offers the landscape reading as
:data:`REGION_SIZES_EYES_LANDSCAPE` (model variant ``mask_sizes="eyes-landscape"``).

**Eq. 4** turns a box into a mask on the A×B feature map of the MA block: element (i, j) is 1 when
``λ(x − w/2) ≤ i ≤ λ(x + w/2)`` and ``λ(y − h/2) ≤ j ≤ λ(y + h/2)``, with λ = 1/16 (the stride of
VGG16 after conv block 4: 224 px → 14×14). ``i`` runs along x (columns) and ``j`` along y (rows);
the returned masks are laid out like images, ``mask[..., row j, column i]``.
"""

from __future__ import annotations

import torch

#: Region names in the order of Table 2 / man.txt §III-A-1.
MAN_REGION_NAMES: tuple[str, ...] = (
    "whole_image",
    "eyes_with_brows",
    "mouth_with_nose",
    "left_eye",
    "right_eye",
    "nose",
    "left_mouth_corner",
    "right_mouth_corner",
)

#: (w/W, h/H) per region, as printed in man.txt Table 2.
REGION_SIZES_TABLE2: tuple[tuple[float, float], ...] = (
    (1.0, 1.0),
    (0.36, 0.72),
    (0.36, 0.54),
    (0.27, 0.27),
    (0.27, 0.27),
    (0.27, 0.27),
    (0.27, 0.27),
    (0.27, 0.27),
)
#: The same with the eyes-and-brows box landscape (0.72 W × 0.36 H); see the module docstring.
REGION_SIZES_EYES_LANDSCAPE: tuple[tuple[float, float], ...] = (
    (1.0, 1.0),
    (0.72, 0.36),
    (0.36, 0.54),
    (0.27, 0.27),
    (0.27, 0.27),
    (0.27, 0.27),
    (0.27, 0.27),
    (0.27, 0.27),
)
REGION_SIZES = {"table2": REGION_SIZES_TABLE2, "eyes-landscape": REGION_SIZES_EYES_LANDSCAPE}

#: Eq. 4's scale factor for masks on VGG16's conv-block-4 output (stride 16).
MASK_SCALE = 1.0 / 16.0

#: Half the width of an eye (corner to corner) as a fraction of the distance between the eye
#: centres: typical adult eye fissures are about 30 mm long for about 63 mm between the pupils,
#: so each corner lies about 0.23 of that distance from its eye centre.
EYE_HALF_WIDTH = 0.23
#: How far below the mouth l8 lies, as a fraction of the eye-centre-to-mouth-centre vector
#: (roughly the chin's mentolabial fold on an aligned face).
BELOW_MOUTH_FRACTION = 0.4


def landmarks5_to_8(landmarks5: torch.Tensor) -> torch.Tensor:
    """Derive MAN's 8 points from RetinaFace's 5 (``...×5×2`` → ``...×8×2``, pixel xy).

    How: with e_L, e_R the image-left and image-right eye centres (RetinaFace slots 0 and 1),
    ``u = e_R − e_L``:

    * l1 = the nose tip (slot 2); l6, l7 = the mouth corners (slots 3 and 4);
    * eye corners lie on the inter-ocular line, :data:`EYE_HALF_WIDTH`·u from each centre:
      l2 = e_L − 0.23u (outer), l3 = e_L + 0.23u (inner), l4 = e_R − 0.23u (inner),
      l5 = e_R + 0.23u (outer);
    * l8 = m + :data:`BELOW_MOUTH_FRACTION`·(m − e), with m the mouth-corner midpoint and e the
      eye midpoint: below the mouth along the face's own vertical, so it follows roll.

    The construction commutes with horizontal flips (flip the 5 points with
    ``LANDMARK5_FLIP_PERM`` or flip the 8 results with ``LANDMARK8_FLIP_PERM``: same points).
    NaN inputs give NaN outputs.
    """
    if landmarks5.shape[-2:] != (5, 2):
        raise ValueError(
            f"landmarks5_to_8: expected ...×5×2 landmarks (RetinaFace order), got {tuple(landmarks5.shape)}"
        )
    eye_l, eye_r, nose, mouth_l, mouth_r = landmarks5.unbind(dim=-2)
    u = eye_r - eye_l
    eye_mid = 0.5 * (eye_l + eye_r)
    mouth_mid = 0.5 * (mouth_l + mouth_r)
    below_mouth = mouth_mid + BELOW_MOUTH_FRACTION * (mouth_mid - eye_mid)
    points = (
        nose,
        eye_l - EYE_HALF_WIDTH * u,
        eye_l + EYE_HALF_WIDTH * u,
        eye_r - EYE_HALF_WIDTH * u,
        eye_r + EYE_HALF_WIDTH * u,
        mouth_l,
        mouth_r,
        below_mouth,
    )
    return torch.stack(points, dim=-2)


def region_boxes(
    landmarks8: torch.Tensor,
    image_size: tuple[int, int] = (224, 224),
    region_sizes: tuple[tuple[float, float], ...] = REGION_SIZES_TABLE2,
) -> torch.Tensor:
    """Table 2 boxes: B×8×2 landmarks → B×N×4 of (x, y, w, h) in pixels (centre and size).

    ``image_size`` is (H, W) of the image the landmarks are given in.
    """
    if landmarks8.dim() != 3 or landmarks8.shape[1:] != (8, 2):
        raise ValueError(f"region_boxes: expected B×8×2 landmarks (man.txt l1..l8), got {tuple(landmarks8.shape)}")
    if len(region_sizes) != len(MAN_REGION_NAMES):
        raise ValueError(f"region_boxes: region_sizes must give {len(MAN_REGION_NAMES)} (w, h) fractions")
    height, width = image_size
    lm = landmarks8.float()
    l1, l2, l3, l4, l5, l6, l7, l8 = lm.unbind(dim=1)
    whole = torch.tensor([width / 2.0, height / 2.0], dtype=lm.dtype, device=lm.device).expand_as(l1)
    centres = torch.stack(
        [whole, 0.5 * (l2 + l5), 0.5 * (l1 + l8), 0.5 * (l2 + l3), 0.5 * (l4 + l5), l1, l6, l7], dim=1
    )  # B×N×2
    sizes = torch.tensor(region_sizes, dtype=lm.dtype, device=lm.device) * torch.tensor(
        [float(width), float(height)], dtype=lm.dtype, device=lm.device
    )
    return torch.cat([centres, sizes.expand(lm.shape[0], -1, -1)], dim=2)


def boxes_to_masks(
    boxes: torch.Tensor, feature_size: tuple[int, int] = (14, 14), scale: float = MASK_SCALE
) -> torch.Tensor:
    """Eq. 4: B×N×4 pixel boxes (x, y, w, h) → B×N×A×B masks of 0/1 (float), rows along y.

    Bounds are inclusive, so a cell index i is in the mask when it lies in
    ``[λ(x − w/2), λ(x + w/2)]``; boxes reaching outside the map are clipped by the index range.
    """
    rows, cols = feature_size
    x, y, w, h = boxes.float().unbind(dim=-1)
    i = torch.arange(cols, dtype=torch.float32, device=boxes.device)
    j = torch.arange(rows, dtype=torch.float32, device=boxes.device)
    in_x = (i >= (scale * (x - 0.5 * w))[..., None]) & (i <= (scale * (x + 0.5 * w))[..., None])  # B×N×cols
    in_y = (j >= (scale * (y - 0.5 * h))[..., None]) & (j <= (scale * (y + 0.5 * h))[..., None])  # B×N×rows
    return (in_y[..., :, None] & in_x[..., None, :]).float()


def ground_truth_masks(
    landmarks8: torch.Tensor,
    image_size: tuple[int, int] = (224, 224),
    feature_size: tuple[int, int] = (14, 14),
    scale: float = MASK_SCALE,
    region_sizes: tuple[tuple[float, float], ...] = REGION_SIZES_TABLE2,
) -> torch.Tensor:
    """MAN ground-truth masks M̂ (Table 2 + Eq. 4): B×8×2 landmarks → B×8×A×B of 0/1."""
    return boxes_to_masks(region_boxes(landmarks8, image_size, region_sizes), feature_size, scale)
