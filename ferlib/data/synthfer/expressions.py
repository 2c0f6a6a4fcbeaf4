"""SynthFER's facial action units (FACS) and the prototype AUs of each expression class, the occlusion kinds and
the names of the contour landmarks. Change an expression here.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# Action units and expression prototypes
# ---------------------------------------------------------------------------------------------

#: FACS action units the face model implements (columns of ``FaceParams.au``).
AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 12, 14, 15, 16, 20, 23, 26)
AU_INDEX = {au: k for k, au in enumerate(AUS)}

#: Prototype AUs per canonical class (EMFACS-style prototypes named in issue 2). Contempt is
#: unilateral: AU12+14 on one randomly chosen side.
AU_PROTOTYPES: dict[str, tuple[int, ...]] = {
    "neutral": (),
    "happy": (6, 12),
    "sad": (1, 4, 15),
    "surprise": (1, 2, 5, 26),
    "fear": (1, 2, 4, 5, 20, 26),
    "disgust": (9, 15, 16),
    "anger": (4, 5, 7, 23),
    "contempt": (12, 14),
}

#: Occlusion kinds in ``meta["occlusion"]`` (``none`` plus :data:`ferlib.data.occlusion.OCCLUDER_KINDS`).
OCCLUSIONS: tuple[str, ...] = ("none", "mask", "sunglasses", "hand", "random")

SPLIT_CODES = {"train": 0, "test": 1, "val": 2}

#: Names of the K = 40 contour points in ``landmarks`` (image-left before image-right).
CONTOUR_NAMES: tuple[str, ...] = (
    tuple(f"jaw_{k:02d}" for k in range(17))
    + ("brow_l_outer", "brow_l_mid", "brow_l_inner", "brow_r_inner", "brow_r_mid", "brow_r_outer")
    + (
        "eye_l_outer",
        "eye_l_top",
        "eye_l_inner",
        "eye_l_bottom",
        "eye_r_inner",
        "eye_r_top",
        "eye_r_outer",
        "eye_r_bottom",
    )
    + ("nose_tip", "nostril_l", "nostril_r")
    + ("mouth_l", "lip_top", "mouth_r", "lip_bottom", "lip_inner_top", "lip_inner_bottom")
)
