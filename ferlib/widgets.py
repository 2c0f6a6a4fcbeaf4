"""ipywidgets explorers for the study notebooks.

* :class:`RegionExplorer` (notebook 02): choose a SynthFER face, turn it (yaw), drag one of the five
  landmarks with two sliders, and watch each model's regions follow. The views come from the paper
  cards (``ferlib.models.region_views()``): AMP-Net's pose-based division, location-based padding
  and AP patches (amp-net.txt Eqs. 2–6), MA-Net's fixed splits (ma-net.txt §III-C, Table III), the
  Multiple Attention Network's Table 2 boxes (man.txt Eq. 4).
* :class:`CamExplorer` (notebook 05): choose a trained model, a Grad-CAM target layer, a CAM method, an
  image and the class the CAM explains (predicted, true or any class); see the overlay and the prediction.

The state → figure logic is plain Python (``render`` methods return PNG bytes), so it is tested
without a browser; ``widget()`` only wires ipywidgets controls to it. The explorer's outer box has the
CSS class ``ferlib-region-explorer`` / ``ferlib-cam-explorer`` (the browser test looks for it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ferlib import explain, plots
from ferlib.models import region_views
from ferlib.plots import LANDMARK5_SHORT

#: Names of the explorer's views, in the cards' order (AMP-Net, MA-Net ×2, MAN).
REGION_VIEWS = tuple(region_views())


def demo_faces(seed: int = 0, label: int = 1, subject: int = 3) -> dict[str, Any]:
    """Named SynthFER faces (``FaceParams``, synthetic) for the explorers and notebook 02.

    One identity and expression, clean (no degradations), in five situations: frontal, turned
    (yaw 35°), turned the other way with roll, a face mask, sunglasses.
    """
    from ferlib.data.synthfer import CLEAN_CONFIG, sample_params

    rng = np.random.default_rng([seed, 17])
    base = sample_params(rng, label, "test", CLEAN_CONFIG, subject=subject, seed=seed)
    base = dataclasses.replace(base, yaw=0.0, pitch=0.0, roll=0.0, centre=(0.5, 0.47), scale=0.36)
    return {
        "frontal": base,
        "turned right (yaw +35°)": dataclasses.replace(base, yaw=35.0),
        "turned left, tilted (yaw −30°, roll 10°)": dataclasses.replace(base, yaw=-30.0, roll=10.0),
        "face mask": dataclasses.replace(base, occlusion="mask", occlusion_seed=1),
        "sunglasses": dataclasses.replace(base, occlusion="sunglasses", occlusion_seed=2),
    }


class RegionExplorer:
    """Faces → landmarks → regions, interactively.

    ``faces``: name → SynthFER ``FaceParams`` (default :func:`demo_faces`). ``render_face`` is
    called on each change, so the regions always come from the landmarks of the face being shown.
    """

    def __init__(
        self, faces: Mapping[str, Any] | None = None, *, grid_size: int = 28, patch_size: int = 10, dpi: int = 80
    ):
        self.faces = dict(faces) if faces is not None else demo_faces()
        if not self.faces:
            raise ValueError("RegionExplorer needs at least one face")
        self.grid_size = grid_size
        self.patch_size = patch_size
        self.dpi = dpi
        self._cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def face(self, name: str, yaw: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(image H×W×3 uint8, landmarks5 5×2) of face ``name`` turned to ``yaw`` (None = its own)."""
        from ferlib.data.synthfer import render_face

        if name not in self.faces:
            raise KeyError(f"unknown face {name!r}; choose one of {list(self.faces)}")
        params = self.faces[name]
        if yaw is not None:
            params = dataclasses.replace(params, yaw=float(yaw))
        key = (name, params.yaw)
        if key not in self._cache:
            image, info = render_face(params)
            self._cache[key] = (image, info["landmarks5"].astype(np.float32))
        return self._cache[key]

    def state(
        self,
        name: str,
        yaw: float | None = None,
        point: int = 0,
        dx: float = 0.0,
        dy: float = 0.0,
        view: str = REGION_VIEWS[0],
    ) -> dict[str, Any]:
        """Everything one frame shows: image, (moved) landmarks and the geometry of ``view`` (the
        card's :class:`~ferlib.models._card.RegionView`, e.g. ``"lp"``/``"ap"`` boxes for AMP-Net)."""
        views = region_views()
        if view not in views:
            raise ValueError(f"unknown view {view!r}; choose one of {tuple(views)}")
        image, lm = self.face(name, yaw)
        lm = lm.copy()
        lm[int(point)] += np.array([dx, dy], dtype=np.float32)
        size = image.shape[0]
        out: dict[str, Any] = {"image": image, "landmarks5": lm, "view": view}
        out.update(views[view].regions(lm, size, self.grid_size, self.patch_size))
        return out

    def figure(self, state: Mapping[str, Any]):
        """Matplotlib figure of one state: the view's panels, drawn by :func:`ferlib.plots.plot_region_panels`."""
        view = region_views()[state["view"]]
        image, lm = state["image"], state["landmarks5"]
        panels = view.panels(state, lm, image.shape[0], self.grid_size)
        return plots.plot_region_panels(image, panels, grid_size=self.grid_size)

    def info(self, state: Mapping[str, Any]) -> str:
        """The view's one-line text summary of ``state`` (empty when it has none)."""
        view = region_views()[state["view"]]
        return view.info(state) if view.info is not None else ""

    def render(self, *args: Any, **kwargs: Any) -> bytes:
        """PNG of ``state(*args, **kwargs)``."""
        return plots.figure_png(self.figure(self.state(*args, **kwargs)), dpi=self.dpi)

    def widget(self):
        """The ipywidgets explorer (a VBox with class ``ferlib-region-explorer``)."""
        import ipywidgets as w

        names = list(self.faces)
        face = w.Dropdown(options=names, value=names[0], description="face")
        view = w.Dropdown(
            options=list(REGION_VIEWS), value=REGION_VIEWS[0], description="regions", layout=w.Layout(width="320px")
        )
        yaw = w.FloatSlider(
            value=float(self.faces[names[0]].yaw),
            min=-45,
            max=45,
            step=5,
            description="yaw (°)",
            continuous_update=False,
        )
        point = w.Dropdown(options=[(n, i) for i, n in enumerate(LANDMARK5_SHORT)], value=0, description="move point")
        dx = w.IntSlider(value=0, min=-40, max=40, step=2, description="Δx (px)", continuous_update=False)
        dy = w.IntSlider(value=0, min=-40, max=40, step=2, description="Δy (px)", continuous_update=False)
        image = w.Image(format="png", layout=w.Layout(max_width="900px"))
        info = w.HTML()

        def refresh(_=None) -> None:
            st = self.state(face.value, yaw.value, point.value, dx.value, dy.value, view.value)
            image.value = plots.figure_png(self.figure(st), dpi=self.dpi)
            text = self.info(st)
            info.value = f"<small>{text}</small>" if text else ""

        def on_face(change) -> None:
            yaw.value = float(self.faces[change["new"]].yaw)  # triggers refresh when it changes
            refresh()

        face.observe(on_face, names="value")
        for ctl in (view, yaw, point, dx, dy):
            ctl.observe(refresh, names="value")
        refresh()
        box = w.VBox([w.HBox([face, view]), w.HBox([yaw, point]), w.HBox([dx, dy]), image, info])
        box.add_class("ferlib-region-explorer")
        self.controls = {
            "face": face,
            "view": view,
            "yaw": yaw,
            "point": point,
            "dx": dx,
            "dy": dy,
            "image": image,
            "info": info,
        }
        return box


class CamExplorer:
    """Grad-CAM overlays of trained models, interactively (notebook 05).

    ``models``: name → model (eval mode); ``images``: normalised B×3×H×W; ``faces``: the same images
    as uint8; ``batch``: the collated batch (labels, landmarks); ``class_names``.
    """

    def __init__(
        self,
        models: Mapping[str, Any],
        images,
        faces,
        batch: Mapping[str, Any],
        class_names: Sequence[str],
        methods: Sequence[str] = ("GradCAM",),
    ):
        if not models:
            raise ValueError("CamExplorer needs at least one model")
        self.models = dict(models)
        self.images = images
        self.faces = faces
        self.batch = batch
        self.class_names = list(class_names)
        self.methods = list(methods)

    def explained_class(self, model: str, index: int, explain_class: str | int = "predicted") -> int:
        """The class a CAM explains: ``"predicted"`` (the model's decision), ``"true"`` (the label) or
        a class index (any class: "what in this face speaks for *fear*?")."""
        if explain_class == "predicted":
            net = self.models[model]
            sl = slice(index, index + 1)
            kw = {k: v[sl] for k, v in explain.model_inputs(net, self.batch).items()}
            return int(explain.predicted_classes(net, self.images[sl], **kw)[0])
        if explain_class == "true":
            return int(self.batch["label"][index])
        c = int(explain_class)
        if not 0 <= c < len(self.class_names):
            raise ValueError(f"explain_class must be 'predicted', 'true' or 0..{len(self.class_names) - 1}, got {c}")
        return c

    def cam(
        self, model: str, target: str, index: int, method: str = "GradCAM", explain_class: str | int = "predicted"
    ) -> tuple[np.ndarray, int, int]:
        """The CAM (H×W, in image coordinates: ``place_cams``), the class it explains, the prediction."""
        net = self.models[model]
        layer = explain.branch_targets(net, [target])[target]
        inputs = explain.model_inputs(net, self.batch)
        sl = slice(index, index + 1)
        kw = {k: v[sl] for k, v in inputs.items()}
        pred = int(explain.predicted_classes(net, self.images[sl], **kw)[0])
        cls = pred if explain_class == "predicted" else self.explained_class(model, index, explain_class)
        cam = explain.compute_cams(net, self.images[sl], layer, classes=[cls], method=method, **kw)
        if hasattr(net, "place_cams"):
            cam = net.place_cams(target, cam, kw, int(self.images.shape[-1]))
        return cam[0], cls, pred

    def overlay(
        self, model: str, target: str, index: int, method: str = "GradCAM", explain_class: str | int = "predicted"
    ) -> tuple[np.ndarray, str]:
        """The overlay (uint8 RGB) and its caption; an empty (all-zero) CAM gives the grey face and
        says so instead of showing a rescaled nothing."""
        cam, cls, pred = self.cam(model, target, index, method, explain_class)
        truth = int(self.batch["label"][index])
        caption = (
            f"{model} / {target} / {method}: explains {self.class_names[cls]} "
            f"(predicted {self.class_names[pred]}, true {self.class_names[truth]})"
        )
        if cam.max() <= 0:
            grey = plots.as_hwc(self.faces[index]).mean(axis=2, keepdims=True).astype(np.uint8)
            return np.repeat(grey, 3, axis=2), caption + " — EMPTY map (no positive evidence for this class here)"
        return explain.overlay(self.faces[index], cam), caption

    def widget(self):
        import io

        import ipywidgets as w
        from PIL import Image

        names = list(self.models)
        model = w.Dropdown(options=names, value=names[0], description="model")
        target = w.Dropdown(options=list(self.models[names[0]].cam_targets()), description="layer")
        method = w.Dropdown(options=self.methods, value=self.methods[0], description="method")
        explains = w.Dropdown(
            options=[("predicted class", "predicted"), ("true class", "true")]
            + [(f"class: {n}", i) for i, n in enumerate(self.class_names)],
            value="predicted",
            description="explains",
        )
        index = w.IntSlider(
            value=0, min=0, max=int(self.images.shape[0]) - 1, description="image", continuous_update=False
        )
        image = w.Image(format="png")
        caption = w.HTML()

        def refresh(_=None) -> None:
            if target.value is None:
                return
            over, text = self.overlay(model.value, target.value, index.value, method.value, explains.value)
            buf = io.BytesIO()
            Image.fromarray(over).resize((336, 336)).save(buf, format="PNG")
            image.value = buf.getvalue()
            caption.value = f"<small>{text}</small>"

        def on_model(change) -> None:
            target.options = list(self.models[change["new"]].cam_targets())
            refresh()

        model.observe(on_model, names="value")
        for ctl in (target, method, index, explains):
            ctl.observe(refresh, names="value")
        refresh()
        box = w.VBox([w.HBox([model, target]), w.HBox([method, index]), explains, image, caption])
        box.add_class("ferlib-cam-explorer")
        return box
