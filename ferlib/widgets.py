"""ipywidgets explorers for the study notebooks.

* :class:`RegionExplorer` (notebook 02): choose a SynthFER face, turn it (yaw), drag one of the five
  landmarks with two sliders, and watch each model's regions follow — AMP-Net's pose-based division,
  location-based padding and AP patches (amp-net.txt Eqs. 2–6), MA-Net's fixed split (ma-net.txt
  §III-C, Table III), the Multiple Attention Network's Table 2 boxes (man.txt Eq. 4).
* :class:`CamExplorer` (notebook 05): choose a trained model, a Grad-CAM target layer, a CAM method and
  an image; see the overlay and the prediction.

The state → figure logic is plain Python (``render`` methods return PNG bytes), so it is tested
without a browser; ``widget()`` only wires ipywidgets controls to it. The explorer's outer box has the
CSS class ``ferlib-region-explorer`` / ``ferlib-cam-explorer`` (the browser test looks for it).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ferlib.plots import LANDMARK5_SHORT

REGION_VIEWS = ("AMP-Net: PBD + LBP + AP", "MA-Net: 2×2 split", "MA-Net: 3×3 overlap 7", "MAN: Table 2 regions")


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

    def __init__(self, faces: Mapping[str, Any] | None = None, *, grid_size: int = 28, patch_size: int = 10,
                 dpi: int = 80):
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

    def state(self, name: str, yaw: float | None = None, point: int = 0, dx: float = 0.0, dy: float = 0.0,
              view: str = REGION_VIEWS[0]) -> dict[str, Any]:
        """Everything one frame shows: image, (moved) landmarks and the boxes of ``view``."""
        import torch

        image, lm = self.face(name, yaw)
        lm = lm.copy()
        lm[int(point)] += np.array([dx, dy], dtype=np.float32)
        size = image.shape[0]
        out: dict[str, Any] = {"image": image, "landmarks5": lm, "view": view}
        if view.startswith("AMP-Net"):
            from ferlib.plots import amp_net_boxes

            out.update(amp_net_boxes(lm, size, self.grid_size, patch_size=self.patch_size))
        elif view.startswith("MA-Net"):
            from ferlib.models.ma_net import ma_net_regions

            split, overlap = (2, 0) if "2×2" in view else (3, 7)
            out["grid_boxes"] = ma_net_regions(self.grid_size, split, overlap).numpy()
        elif view.startswith("MAN"):
            from ferlib.models.man_masks import landmarks5_to_8, region_boxes

            lm8 = landmarks5_to_8(torch.as_tensor(lm)[None])
            xywh = region_boxes(lm8, (size, size))[0].numpy()
            out["landmarks8"] = lm8[0].numpy()
            out["pixel_boxes"] = np.stack([xywh[:, 0] - xywh[:, 2] / 2, xywh[:, 1] - xywh[:, 3] / 2,
                                           xywh[:, 0] + xywh[:, 2] / 2, xywh[:, 1] + xywh[:, 3] / 2], 1)
        else:
            raise ValueError(f"unknown view {view!r}; choose one of {REGION_VIEWS}")
        return out

    def figure(self, state: Mapping[str, Any]):
        """Matplotlib figure of one state (face with boxes, and the feature grid)."""
        import matplotlib.pyplot as plt

        from ferlib import plots

        image, lm, view = state["image"], state["landmarks5"], state["view"]
        size = image.shape[0]
        if view.startswith("AMP-Net"):
            return plots.plot_amp_net_regions(image, lm, image_size=size, grid_size=self.grid_size,
                                              patch_size=self.patch_size)
        fig, (a, b) = plt.subplots(1, 2, figsize=(7.4, 3.8))
        if view.startswith("MA-Net"):
            plots.show_face(a, image, view)
            plots.draw_boxes(a, state["grid_boxes"], scale=size / self.grid_size)
            plots.draw_landmarks(a, lm)
            plots.plot_grid_boxes(state["grid_boxes"], self.grid_size, ax=b, image=image,
                                  title=f"{self.grid_size}×{self.grid_size} grid (landmark-free)")
        else:
            from ferlib.models.man_masks import MAN_REGION_NAMES

            plots.show_face(a, image, "8 points derived from the 5")
            plots.draw_landmarks(a, state["landmarks8"], names=[f"l{i}" for i in range(1, 9)], color="#FFD400")
            plots.show_face(b, image, "Table 2 regions")
            plots.draw_boxes(b, state["pixel_boxes"][1:], names=MAN_REGION_NAMES[1:], linewidth=1.2)
        fig.tight_layout()
        return fig

    def render(self, *args: Any, **kwargs: Any) -> bytes:
        """PNG of ``state(*args, **kwargs)``."""
        from ferlib.plots import figure_png

        return figure_png(self.figure(self.state(*args, **kwargs)), dpi=self.dpi)

    def widget(self):
        """The ipywidgets explorer (a VBox with class ``ferlib-region-explorer``)."""
        import ipywidgets as w

        names = list(self.faces)
        face = w.Dropdown(options=names, value=names[0], description="face")
        view = w.Dropdown(options=list(REGION_VIEWS), value=REGION_VIEWS[0], description="regions",
                          layout=w.Layout(width="320px"))
        yaw = w.FloatSlider(value=float(self.faces[names[0]].yaw), min=-45, max=45, step=5,
                            description="yaw (°)", continuous_update=False)
        point = w.Dropdown(options=[(n, i) for i, n in enumerate(LANDMARK5_SHORT)], value=0,
                           description="move point")
        dx = w.IntSlider(value=0, min=-40, max=40, step=2, description="Δx (px)", continuous_update=False)
        dy = w.IntSlider(value=0, min=-40, max=40, step=2, description="Δy (px)", continuous_update=False)
        image = w.Image(format="png", layout=w.Layout(max_width="900px"))
        info = w.HTML()

        def refresh(_=None) -> None:
            st = self.state(face.value, yaw.value, point.value, dx.value, dy.value, view.value)
            from ferlib.plots import figure_png

            image.value = figure_png(self.figure(st), dpi=self.dpi)
            if "lp" in st:
                rows = ", ".join(f"{n}: {tuple(int(v) for v in b)}" for n, b in
                                 zip(("LT", "RT", "LB", "RB"), st["lp"]))
                info.value = f"<small>LP boxes on the grid (x0, y0, x1, y1): {rows}</small>"
            else:
                info.value = ""

        def on_face(change) -> None:
            yaw.value = float(self.faces[change["new"]].yaw)  # triggers refresh when it changes
            refresh()

        face.observe(on_face, names="value")
        for ctl in (view, yaw, point, dx, dy):
            ctl.observe(refresh, names="value")
        refresh()
        box = w.VBox([w.HBox([face, view]), w.HBox([yaw, point]), w.HBox([dx, dy]), image, info])
        box.add_class("ferlib-region-explorer")
        self.controls = {"face": face, "view": view, "yaw": yaw, "point": point, "dx": dx, "dy": dy,
                         "image": image, "info": info}
        return box


class CamExplorer:
    """Grad-CAM overlays of trained models, interactively (notebook 05).

    ``models``: name → model (eval mode); ``images``: normalised B×3×H×W; ``faces``: the same images
    as uint8; ``batch``: the collated batch (labels, landmarks); ``class_names``.
    """

    def __init__(self, models: Mapping[str, Any], images, faces, batch: Mapping[str, Any],
                 class_names: Sequence[str], methods: Sequence[str] = ("GradCAM",)):
        if not models:
            raise ValueError("CamExplorer needs at least one model")
        self.models = dict(models)
        self.images = images
        self.faces = faces
        self.batch = batch
        self.class_names = list(class_names)
        self.methods = list(methods)

    def overlay(self, model: str, target: str, index: int, method: str = "GradCAM") -> tuple[np.ndarray, str]:
        from ferlib import explain

        net = self.models[model]
        layer = explain.branch_targets(net, [target])[target]
        inputs = explain.model_inputs(net, self.batch)
        sl = slice(index, index + 1)
        kw = {k: v[sl] for k, v in inputs.items()}
        pred = int(explain.predicted_classes(net, self.images[sl], **kw)[0])
        cam = explain.compute_cams(net, self.images[sl], layer, classes=[pred], method=method, **kw)[0]
        truth = int(self.batch["label"][index])
        caption = f"{model} / {target} / {method}: predicted {self.class_names[pred]}, true {self.class_names[truth]}"
        return explain.overlay(self.faces[index], cam), caption

    def widget(self):
        import io

        import ipywidgets as w
        from PIL import Image

        names = list(self.models)
        model = w.Dropdown(options=names, value=names[0], description="model")
        target = w.Dropdown(options=list(self.models[names[0]].cam_targets()), description="layer")
        method = w.Dropdown(options=self.methods, value=self.methods[0], description="method")
        index = w.IntSlider(value=0, min=0, max=int(self.images.shape[0]) - 1, description="image",
                            continuous_update=False)
        image = w.Image(format="png")
        caption = w.HTML()

        def refresh(_=None) -> None:
            if target.value is None:
                return
            over, text = self.overlay(model.value, target.value, index.value, method.value)
            buf = io.BytesIO()
            Image.fromarray(over).resize((336, 336)).save(buf, format="PNG")
            image.value = buf.getvalue()
            caption.value = f"<small>{text}</small>"

        def on_model(change) -> None:
            target.options = list(self.models[change["new"]].cam_targets())
            refresh()

        model.observe(on_model, names="value")
        for ctl in (target, method, index):
            ctl.observe(refresh, names="value")
        refresh()
        box = w.VBox([w.HBox([model, target]), w.HBox([method, index]), image, caption])
        box.add_class("ferlib-cam-explorer")
        return box
