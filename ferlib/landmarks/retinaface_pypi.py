"""``retina-face`` backend: the PyPI ``retina-face`` package (0.0.19) on its PyTorch engine, offline.

The package (optional extra ``retinaface-pypi``: ``pip install -c constraints.txt .[retinaface-pypi]``) ships
RetinaFace with a ResNet-50 v2 trunk ported from the InsightFace MXNet model, in TensorFlow, PyTorch and ONNX
engines. Its PyTorch engine (``retinaface/model/retinaface_pth_model.py``) reads
``$DEEPFACE_HOME/.deepface/weights/retinaface.pth`` (``DEEPFACE_HOME`` defaults to the home folder) through
``retinaface.commons.weight_utils.download_weights_if_necessary``, which *downloads* the file with gdown when it
is missing. ferlib never lets it: this backend checks the file itself, refuses with the path and how to obtain it
when it is absent, builds the package's network and loads the state dict directly, so the download function is
never called. The engine is chosen by the package's ``retinaface/commons/backend_utils.py`` (TensorFlow, then
PyTorch, then ONNX; ``DEEPFACE_BACKEND_ENGINE`` enforces one); this backend sets ``DEEPFACE_BACKEND_ENGINE=pytorch``
when it is unset and refuses if the package already runs on another engine.

The package takes BGR arrays (OpenCV's convention); ferlib's RGB images are flipped before the call. Its
``landmarks`` dict names the subject's sides (``right_eye`` is on the image's left), which is RetinaFace order
(:mod:`ferlib.landmarks.base`): right_eye, left_eye, nose, mouth_right, mouth_left.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ferlib.landmarks.base import Detector, Face, register_detector

#: Environment variable the package reads to enforce an engine, and the engine this backend uses.
ENGINE_ENV_VAR = "DEEPFACE_BACKEND_ENGINE"
ENGINE = "pytorch"
#: The file name the PyTorch engine expects under ``<home>/.deepface/weights/``.
WEIGHTS_NAME = "retinaface.pth"
#: Where the package itself would fetch it (named in the refusal, never contacted by ferlib).
WEIGHTS_SOURCE = "https://github.com/serengil/deepface_models/releases/download/v1.0/retinaface.pth"
#: The package's landmark names in RetinaFace order.
POINT_NAMES: tuple[str, ...] = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")


def default_weights_path() -> Path:
    """``$DEEPFACE_HOME/.deepface/weights/retinaface.pth`` (home folder when ``DEEPFACE_HOME`` is unset)."""
    home = os.environ.get("DEEPFACE_HOME") or str(Path.home())
    return Path(home) / ".deepface" / "weights" / WEIGHTS_NAME


def _import_package() -> tuple[Any, Any]:
    """The package's ``RetinaFace`` module and PyTorch model module, on the PyTorch engine."""
    try:
        from retinaface.commons import backend_utils
    except ImportError as exc:
        raise ImportError(
            "the 'retina-face' backend needs the optional package retina-face==0.0.19: "
            "pip install -c constraints.txt '.[retinaface-pypi]' (or use --backend mtcnn / retinaface)"
        ) from exc
    os.environ.setdefault(ENGINE_ENV_VAR, ENGINE)
    engine = backend_utils.get_backend_engine()
    if engine != ENGINE:
        raise RuntimeError(
            f"the retina-face package runs on its {engine!r} engine "
            f"({ENGINE_ENV_VAR}={os.environ.get(ENGINE_ENV_VAR)!r} or an earlier import decided it); "
            f"ferlib's 'retina-face' backend needs {ENGINE!r}: "
            f"set {ENGINE_ENV_VAR}={ENGINE} before starting Python"
        )
    from retinaface import RetinaFace as api
    from retinaface.model import retinaface_pth_model

    return api, retinaface_pth_model


def load_package_model(weights: str | Path | None = None) -> Any:
    """The package's PyTorch RetinaFace with ``weights`` (default :func:`default_weights_path`) loaded, in eval mode.

    Raises ``FileNotFoundError`` naming the path and how to obtain the file when it is missing; the package's
    download function is never called.
    """
    import torch

    path = Path(weights) if weights is not None else default_weights_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"retina-face weights not found at {path}. ferlib never downloads weights: obtain {WEIGHTS_NAME} "
            f"(the package's own source is {WEIGHTS_SOURCE}) on a machine with internet access and copy it to "
            f"{default_weights_path()} (set DEEPFACE_HOME to choose the folder above .deepface/), or pass its "
            "path as weights=... (--weights)"
        )
    _, pth = _import_package()
    net = pth.RetinaFace()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the same user error
        raise ValueError(f"could not load {path} into retina-face's PyTorch RetinaFace: {exc}") from exc
    return net.eval()


@register_detector("retina-face")
class RetinaFacePyPIDetector(Detector):
    """RetinaFace from the PyPI ``retina-face`` package (ResNet-50 v2), PyTorch engine, local weights only.

    ``weights`` is the ``retinaface.pth`` file (default ``$DEEPFACE_HOME/.deepface/weights/retinaface.pth``);
    ``score_threshold`` is the package's ``threshold`` (0.9 there); ``allow_upscaling`` lets the package scale the
    shorter side up to 1024 px as it does by default (``False`` keeps small images small).
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        score_threshold: float = 0.9,
        allow_upscaling: bool = True,
        device: str = "cpu",
    ) -> None:
        if str(device) != "cpu":
            raise ValueError("the 'retina-face' package runs its PyTorch model on the CPU only (device='cpu')")
        self.weights = Path(weights) if weights is not None else default_weights_path()
        self.model = load_package_model(self.weights)
        self._api, _ = _import_package()
        self.score_threshold = float(score_threshold)
        self.allow_upscaling = bool(allow_upscaling)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "package": "retina-face==0.0.19",
            "weights": self.weights.name,
            "score_threshold": self.score_threshold,
            "allow_upscaling": self.allow_upscaling,
        }

    def detect_arrays(self, images: list[np.ndarray]) -> list[list[Face]]:
        return [self._detect_one(im) for im in images]

    def _detect_one(self, image: np.ndarray) -> list[Face]:
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        found = self._api.detect_faces(
            bgr, threshold=self.score_threshold, model=self.model, allow_upscaling=self.allow_upscaling
        )
        faces = []
        for face in found.values():
            points = np.array([face["landmarks"][k] for k in POINT_NAMES], dtype=np.float32)
            faces.append(
                Face(box=np.asarray(face["facial_area"], np.float32), score=float(face["score"]), landmarks5=points)
            )
        return faces
