"""Figure helpers for the study notebooks: faces with landmarks and region boxes, the 28×28 grid,
per-class grids.

Only drawing lives here; the geometry comes from the models (``ferlib.models.regions`` for
AMP-Net's pose-based division, location-based padding and AP patches, ``ferlib.models.ma_net`` for
MA-Net's splits, ``ferlib.models.man_masks`` for the Multiple Attention Network's Table 2 boxes).

Conventions: images are uint8 H×W×3 NumPy arrays or 3×H×W tensors (the sample schema); grid boxes
are ``(x0, y0, x1, y1)`` in cells with exclusive ends, pixel boxes likewise in pixels.
"""

from __future__ import annotations

import io
from typing import Any, Mapping, Sequence

import numpy as np

#: Colours of the four LP regions / five AP patches / other box families (colour-blind friendly).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")
#: Short names of the five RetinaFace points as drawn on faces.
LANDMARK5_SHORT = ("eye1", "eye2", "nose", "mouth1", "mouth2")


def _plt():
    import matplotlib.pyplot as plt

    return plt


def as_hwc(image: Any) -> np.ndarray:
    """uint8 H×W×3 NumPy view of a 3×H×W tensor, an H×W×3 array or a PIL image."""
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
        if image.ndim == 3 and image.shape[0] in (1, 3):
            image = image.transpose(1, 2, 0)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return arr


def as_points(points: Any) -> np.ndarray:
    """K×2 float NumPy array from a tensor or array."""
    if hasattr(points, "detach"):
        points = points.detach().cpu().numpy()
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)


def draw_landmarks(ax, points: Any, *, names: Sequence[str] | None = LANDMARK5_SHORT, color: str = "#FF2D2D",
                   size: float = 18, fontsize: float = 7) -> None:
    """Scatter landmarks on ``ax`` (pixel xy), labelled with ``names`` when given."""
    pts = as_points(points)
    ax.scatter(pts[:, 0], pts[:, 1], s=size, c=color, edgecolors="white", linewidths=0.6, zorder=5)
    if names is not None and len(names) == len(pts):
        for (x, y), name in zip(pts, names):
            if np.isfinite(x) and np.isfinite(y):
                ax.annotate(name, (x, y), xytext=(3, -3), textcoords="offset points", color=color,
                            fontsize=fontsize, zorder=6)


def draw_boxes(ax, boxes: Any, *, names: Sequence[str] | None = None, colors: Sequence[str] = PALETTE,
               scale: float = 1.0, linewidth: float = 1.6, linestyle: str = "-", fill_alpha: float = 0.0,
               fontsize: float = 7) -> None:
    """Draw ``(x0, y0, x1, y1)`` boxes (times ``scale``) on ``ax``; NaN boxes are skipped.

    For a pixel image and grid boxes, ``scale`` is the stride (224 / 28 = 8). Boxes are drawn on cell
    edges: in ``imshow`` coordinates cell ``i`` spans ``[i − ½, i + ½)`` so 0.5 is subtracted.
    """
    from matplotlib.patches import Rectangle

    b = as_points(boxes).reshape(-1, 4) if np.asarray(boxes).size else np.zeros((0, 4))
    for k, (x0, y0, x1, y1) in enumerate(b):
        if not np.all(np.isfinite([x0, y0, x1, y1])):
            continue
        color = colors[k % len(colors)]
        rect = Rectangle((x0 * scale - 0.5, y0 * scale - 0.5), (x1 - x0) * scale, (y1 - y0) * scale,
                         fill=fill_alpha > 0, facecolor=color, alpha=None, edgecolor=color,
                         linewidth=linewidth, linestyle=linestyle)
        if fill_alpha > 0:
            rect.set_facecolor((*_rgb(color), fill_alpha))
        ax.add_patch(rect)
        if names is not None and k < len(names):
            ax.text(x0 * scale, y0 * scale, names[k], color="white", fontsize=fontsize, va="top",
                    bbox=dict(facecolor=color, edgecolor="none", pad=0.8, alpha=0.85))


def _rgb(color: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return to_rgb(color)


def show_face(ax, image: Any, title: str | None = None) -> None:
    ax.imshow(as_hwc(image))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def show_grid(ax, grid_size: int, *, title: str | None = None, background: Any = None) -> None:
    """An empty ``grid_size``×``grid_size`` feature grid (or ``background`` resized onto it) with cell lines."""
    if background is not None:
        from PIL import Image

        small = np.asarray(Image.fromarray(as_hwc(background)).resize((grid_size, grid_size), Image.BILINEAR))
        ax.imshow(small, alpha=0.45)
    else:
        ax.imshow(np.ones((grid_size, grid_size, 3)), vmin=0, vmax=1)
    ax.set_xticks(np.arange(-0.5, grid_size, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, grid_size, 1), minor=True)
    ax.grid(which="minor", color="#dddddd", linewidth=0.4)
    ax.tick_params(which="minor", length=0)
    step = 7 if grid_size >= 14 else 1
    ax.set_xticks(range(0, grid_size, step))
    ax.set_yticks(range(0, grid_size, step))
    ax.tick_params(labelsize=6)
    ax.set_xlim(-0.5, grid_size - 0.5)
    ax.set_ylim(grid_size - 0.5, -0.5)
    if title:
        ax.set_title(title, fontsize=9)


# ---------------------------------------------------------------------------------------------
# AMP-Net regions (geometry from ferlib.models.regions)
# ---------------------------------------------------------------------------------------------


def amp_net_boxes(landmarks5: Any, image_size: int = 224, grid_size: int = 28, *, scheme: str = "proposed",
                  patch_size: int = 10) -> dict[str, np.ndarray]:
    """AMP-Net's geometry for one face, as NumPy: grid landmarks, division points, LP and AP boxes.

    Calls :func:`ferlib.models.regions.landmarks_to_grid`, ``division_points``,
    ``pose_based_division`` (Eqs. 2–4) and ``ap_patch_boxes`` (Eq. 6) on a batch of one.
    """
    import torch

    from ferlib.models import regions

    lm = torch.as_tensor(as_points(landmarks5), dtype=torch.float32)[None]
    grid = regions.landmarks_to_grid(lm, (image_size, image_size), grid_size)
    x_top, x_bottom, y_center = regions.division_points(grid, grid_size)
    lp = regions.pose_based_division(grid, grid_size, scheme=scheme)
    ap = regions.ap_patch_boxes(grid, grid_size, patch_size)
    return {
        "grid_landmarks": grid[0].numpy(),
        "division": np.array([float(x_top[0]), float(x_bottom[0]), float(y_center[0])]),
        "lp": lp[0].numpy(),
        "ap": ap[0].numpy(),
    }


def plot_amp_net_regions(image: Any, landmarks5: Any, *, image_size: int = 224, grid_size: int = 28,
                         patch_size: int = 10, scheme: str = "proposed", title: str = "", axes=None):
    """Three panels: the face with LP and AP boxes in pixels, the LP boxes on the grid, and the
    location-based padding of each LP region into its (r/2)×(r/2) map (Fig. 4(d) of amp-net.txt).
    Returns the figure (or None when ``axes`` were given)."""
    import torch

    from ferlib.models import regions

    plt = _plt()
    geo = amp_net_boxes(landmarks5, image_size, grid_size, scheme=scheme, patch_size=patch_size)
    stride = image_size / grid_size
    fig = None
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1, 1, 1.05]})
    ax_face, ax_grid, ax_lbp = axes
    show_face(ax_face, image, "face: LP (solid), AP (dashed)")
    draw_boxes(ax_face, geo["lp"], scale=stride, names=regions.LP_REGION_NAMES)
    draw_boxes(ax_face, geo["ap"], scale=stride, colors=PALETTE[4:] + PALETTE[:4], linestyle="--", linewidth=1.0)
    draw_landmarks(ax_face, landmarks5)
    show_grid(ax_grid, grid_size, title=f"{grid_size}×{grid_size} grid: pose-based division", background=image)
    draw_boxes(ax_grid, geo["lp"], fill_alpha=0.18)
    g = geo["grid_landmarks"]
    ax_grid.scatter(g[:, 0] - 0.5, g[:, 1] - 0.5, s=14, c="#FF2D2D", zorder=5)
    xt, xb, yc = geo["division"]
    ax_grid.plot([xt - 0.5, xt - 0.5], [-0.5, yc - 0.5], color="k", lw=0.8, ls=":")
    ax_grid.plot([xb - 0.5, xb - 0.5], [yc - 0.5, grid_size - 0.5], color="k", lw=0.8, ls=":")
    ax_grid.axhline(yc - 0.5, color="k", lw=0.8, ls=":")
    # Location-based padding: which cells of each 14×14 map are filled.
    occupancy = torch.ones(1, 1, grid_size, grid_size)
    padded = regions.location_based_padding(occupancy, torch.as_tensor(geo["lp"])[None])[0, :, 0].numpy()
    s = padded.shape[-1]
    mosaic = np.ones((2 * s + 1, 2 * s + 1, 3))
    for k in range(4):
        r0, c0 = (k // 2) * (s + 1), (k % 2) * (s + 1)
        colour = np.array(_rgb(PALETTE[k]))
        mosaic[r0:r0 + s, c0:c0 + s] = np.where(padded[k][..., None] > 0, colour, 0.92)
    ax_lbp.imshow(mosaic)
    ax_lbp.set_title(f"location-based padding into {s}×{s} maps", fontsize=9)
    ax_lbp.set_xticks([])
    ax_lbp.set_yticks([])
    if title and fig is not None:
        fig.suptitle(title, fontsize=10)
    if fig is not None:
        fig.tight_layout()
    return fig


def plot_grid_boxes(boxes: Any, grid_size: int = 28, *, names: Sequence[str] | None = None, title: str = "",
                    image: Any = None, ax=None):
    """Boxes on a feature grid (optionally over the face shrunk to the grid)."""
    plt = _plt()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(3.4, 3.4))
    show_grid(ax, grid_size, title=title, background=image)
    draw_boxes(ax, boxes, names=names, fill_alpha=0.15)
    return fig


def plot_masks(masks: Any, names: Sequence[str], *, image: Any = None, title: str = "", cols: int = 4):
    """A row/grid of 2-D masks (e.g. the Multiple Attention Network's 8 region masks), each over
    the face when ``image`` is given."""
    plt = _plt()
    m = masks.detach().cpu().numpy() if hasattr(masks, "detach") else np.asarray(masks)
    n = len(m)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.3 * rows))
    axes = np.atleast_1d(axes).ravel()
    for k, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.axis("off")
            continue
        if image is not None:
            face = as_hwc(image)
            ax.imshow(face)
            ax.imshow(m[k], cmap="magma", alpha=0.55, vmin=0, vmax=max(1.0, float(m[k].max())),
                      extent=(-0.5, face.shape[1] - 0.5, face.shape[0] - 0.5, -0.5), interpolation="nearest")
        else:
            ax.imshow(m[k], cmap="magma", vmin=0, vmax=1)
        ax.set_title(names[k], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def class_grid(images: Sequence[Any], labels: Sequence[int], class_names: Sequence[str], *, per_class: int = 3,
               captions: Sequence[str] | None = None, overlays: Sequence[Any] | None = None,
               title: str = "", cell: float = 1.6):
    """A grid with one column per class and ``per_class`` rows (the papers' per-class figures).

    ``overlays`` (optional, same length as ``images``): H×W heat maps drawn over the faces.
    """
    plt = _plt()
    columns = list(range(len(class_names)))
    fig, axes = plt.subplots(per_class, len(columns), figsize=(cell * len(columns), cell * per_class + 0.4),
                             squeeze=False)
    counts = {c: 0 for c in columns}
    for idx, lab in enumerate(labels):
        lab = int(lab)
        if lab not in counts or counts[lab] >= per_class:
            continue
        ax = axes[counts[lab], lab]
        if overlays is not None and overlays[idx] is not None:
            ax.imshow(as_hwc(overlays[idx]))
        else:
            ax.imshow(as_hwc(images[idx]))
        if captions is not None:
            ax.set_xlabel(captions[idx], fontsize=7)
        counts[lab] += 1
    for r in range(per_class):
        for c in columns:
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(class_names[c], fontsize=9)
            if not ax.images:
                ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def figure_png(fig, dpi: int = 90, close: bool = True) -> bytes:
    """PNG bytes of a matplotlib figure (for ipywidgets.Image); closes it by default."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    if close:
        _plt().close(fig)
    return buf.getvalue()


def table_figure(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, title: str = "", col_width: float = 1.6):
    """A small matplotlib table figure (for run folders that have no notebook renderer)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(col_width * len(columns), 0.32 * (len(rows) + 2)))
    ax.axis("off")
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    tab = ax.table(cellText=cells, colLabels=list(columns), loc="center", cellLoc="left")
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def torch_image(image: Any):
    """A uint8 face (H×W×3 array or 3×H×W tensor) → the model input: float32 1×3×H×W, ImageNet-normalised."""
    import torch

    from ferlib.data.transforms import normalize_images

    arr = np.ascontiguousarray(as_hwc(image))
    return normalize_images(torch.from_numpy(arr).permute(2, 0, 1)[None].contiguous())


def heat_overlay(image: Any, heat: Any, image_weight: float = 0.5) -> np.ndarray:
    """A small heat map (e.g. a 7×7 guidance map) stretched over the face with pytorch-grad-cam's
    ``show_cam_on_image`` (nearest-neighbour, so the cells stay visible)."""
    from PIL import Image

    from ferlib.explain import overlay

    face = as_hwc(image)
    h = heat.detach().cpu().numpy() if hasattr(heat, "detach") else np.asarray(heat)
    h = h.astype(np.float32)
    if h.max() > h.min():
        h = (h - h.min()) / (h.max() - h.min())
    big = np.asarray(Image.fromarray(h, mode="F").resize((face.shape[1], face.shape[0]), Image.NEAREST))
    return overlay(face, big, image_weight=image_weight)
