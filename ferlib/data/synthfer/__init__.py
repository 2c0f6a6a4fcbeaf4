"""SynthFER: ferlib's procedural, *synthetic* facial-expression dataset with exact landmarks.

The package: :mod:`.expressions` (action units and the prototype of each class), :mod:`.parameters` (config,
presets, identities, sampling), :mod:`.geometry` (head frame, pose, the template alignment), :mod:`.shapes`
(AU-driven eyes, brows, mouth), :mod:`.shading` (lit head, relief and hair), :mod:`.render` (drawing),
:mod:`.dataset` (the dataset and ``materialise``). ``from ferlib.data.synthfer import ...`` keeps working for
every public name.

No package ships a labelled expression dataset and nothing may be downloaded, so ferlib renders its
own faces. SynthFER is a drawn-and-shaded world for running the pipeline, teaching and controlled
robustness tests; numbers measured on it are **not** reproductions of any paper's results.

How a face is made (``render_face``):

1. **Canonical 3D face frame.** x to the image right, y down, z towards the camera; the head is an
   ellipsoid with semi-axes (a, 1, c). Every feature (eyes, brows, nose, lips, cheeks) is a 2D shape
   in the frontal (x, y) plane lifted onto the ellipsoid surface ``z = c·sqrt(1 - x²/a² - y²)``; the
   nose gets an extra protrusion. Identity (``Identity``) sets face shape, skin tone, hair, eye
   spacing and size, iris colour, nose, mouth width, lips, brows, background and lighting.
2. **Facial action units** (FACS) deform the shapes with intensities in [0, 1], per side so that
   contempt can be unilateral (magnitudes in :mod:`.shapes`, as fractions of the inter-ocular
   distance). Each class uses its standard prototype (:data:`AU_PROTOTYPES`: happiness AU6+12,
   sadness AU1+4+15, surprise AU1+2+5+26, fear AU1+2+4+5+20+26, anger AU4+5+7+23, disgust
   AU9+15+16, contempt unilateral AU12+14, neutral none) at a random intensity, plus small random
   activity on every AU so that classes overlap (fear vs surprise differ only by AU4+20).
3. **Pose and alignment** (:func:`.geometry.alignment`). Rotate by pitch (about x), then yaw (about y),
   project orthographically, fit the similarity that puts the identity's neutral 5 points on the
   ArcFace template scaled to the image (jittered by ``FaceParams.centre``/``scale``), then roll the
   crop about the template centre. Positive yaw turns the nose towards the image right, positive
   pitch moves it down, positive roll rotates the face clockwise on screen. The head outline is the
   exact silhouette of the rotated ellipsoid (the ellipse ``{P·S·u : |u| = 1}``), narrowed at the jaw.
4. **Drawing and shading.** Filled PIL polygons at ``supersample``× resolution, box-reduced
   (anti-aliasing), then per-pixel shading of the head and hair surfaces (:mod:`.shading`), an
   occluder from :mod:`ferlib.data.occlusion` placed from the exact landmarks, and degradations
   (brightness/contrast, Gaussian blur, noise, JPEG).

Landmarks are the projected positions of the very points the polygons are built from, in pixel
coordinates of the output image with pixel ``(row r, column c)`` centred at ``(x=c, y=r)``:
``landmarks5`` (RetinaFace order, :data:`ferlib.data.schema.LANDMARK5_NAMES`; the eye points are the
pupil centres), ``landmarks8`` (Multiple Attention Network l1..l8, ``man.txt`` Table 2 / Fig. 4:
nose tip, image-left eye outer & inner corner, image-right eye inner & outer corner, image-left and
image-right mouth corner, a point below the mouth) and ``landmarks`` (:data:`CONTOUR_NAMES`).

Determinism: sample ``i`` of ``(seed, split, config)`` depends on nothing else (not on ``n`` or on
which worker renders it). Identities are keyed by ``(seed, split, subject)`` and subject names carry
the split (``train-0042``), so train and test identities are disjoint.
"""

from ferlib.data.synthfer.dataset import (
    SynthFERDataset,
    materialise,
    synthfer_labels,
    synthfer_subjects,
)
from ferlib.data.synthfer.expressions import (
    AU_PROTOTYPES,
    AUS,
    CONTOUR_NAMES,
    OCCLUSIONS,
)
from ferlib.data.synthfer.parameters import (
    CLEAN_CONFIG,
    SYNTHFER_PRESETS,
    Degradations,
    FaceParams,
    Identity,
    SynthFERConfig,
    expression_aus,
    resolve_config,
    sample_identity,
    sample_params,
    split_code,
    subject_name,
)
from ferlib.data.synthfer.render import (
    render_face,
    rotation_matrix,
)

__all__ = [
    "AUS",
    "AU_PROTOTYPES",
    "OCCLUSIONS",
    "CONTOUR_NAMES",
    "CLEAN_CONFIG",
    "SYNTHFER_PRESETS",
    "resolve_config",
    "SynthFERConfig",
    "Identity",
    "Degradations",
    "FaceParams",
    "sample_identity",
    "expression_aus",
    "sample_params",
    "render_face",
    "rotation_matrix",
    "SynthFERDataset",
    "synthfer_labels",
    "synthfer_subjects",
    "split_code",
    "subject_name",
    "materialise",
]
