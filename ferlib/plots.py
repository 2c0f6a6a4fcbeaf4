"""Figure helpers for the study notebooks: faces with landmarks and region boxes, the 28×28 grid,
per-class grids, CAM overlays.

Only drawing lives here, and it knows no model: the geometry and what to draw come from the paper
cards' region views (:class:`ferlib.models._card.RegionView`, e.g. AMP-Net's pose-based division,
MA-Net's splits, the Multiple Attention Network's Table 2 boxes), drawn by :func:`plot_region_panels`.

Conventions: images are uint8 H×W×3 NumPy arrays or 3×H×W tensors (the sample schema); grid boxes
are ``(x0, y0, x1, y1)`` in cells with exclusive ends, pixel boxes likewise in pixels.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

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


def draw_landmarks(
    ax,
    points: Any,
    *,
    names: Sequence[str] | None = LANDMARK5_SHORT,
    color: str = "#FF2D2D",
    size: float = 18,
    fontsize: float = 7,
) -> None:
    """Scatter landmarks on ``ax`` (pixel xy), labelled with ``names`` when given."""
    pts = as_points(points)
    ax.scatter(pts[:, 0], pts[:, 1], s=size, c=color, edgecolors="white", linewidths=0.6, zorder=5)
    if names is not None and len(names) == len(pts):
        for (x, y), name in zip(pts, names):
            if np.isfinite(x) and np.isfinite(y):
                ax.annotate(
                    name, (x, y), xytext=(3, -3), textcoords="offset points", color=color, fontsize=fontsize, zorder=6
                )


def draw_boxes(
    ax,
    boxes: Any,
    *,
    names: Sequence[str] | None = None,
    colors: Sequence[str] = PALETTE,
    scale: float = 1.0,
    linewidth: float = 1.6,
    linestyle: str = "-",
    fill_alpha: float = 0.0,
    fontsize: float = 7,
) -> None:
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
        rect = Rectangle(
            (x0 * scale - 0.5, y0 * scale - 0.5),
            (x1 - x0) * scale,
            (y1 - y0) * scale,
            fill=fill_alpha > 0,
            facecolor=color,
            alpha=None,
            edgecolor=color,
            linewidth=linewidth,
            linestyle=linestyle,
        )
        if fill_alpha > 0:
            rect.set_facecolor((*_rgb(color), fill_alpha))
        ax.add_patch(rect)
        if names is not None and k < len(names):
            ax.text(
                x0 * scale,
                y0 * scale,
                names[k],
                color="white",
                fontsize=fontsize,
                va="top",
                bbox=dict(facecolor=color, edgecolor="none", pad=0.8, alpha=0.85),
            )


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
# Region views (geometry and panels from the paper cards)
# ---------------------------------------------------------------------------------------------

_BOX_STYLES = {
    "solid": {},
    "thin": {"linewidth": 1.2},
    "dashed": {"linestyle": "--", "linewidth": 1.0},
    "filled": {"fill_alpha": 0.18},
}


def plot_region_panels(image: Any, panels: Sequence[Any], *, grid_size: int = 28, title: str = "", axes=None):
    """Draw a region view's panels (:class:`ferlib.models._card.RegionPanel`) side by side: the face,
    the feature grid (with the face shrunk onto it) or a ready image. Returns the figure (or None
    when ``axes`` were given)."""
    plt = _plt()
    fig = None
    if axes is None:
        fig, axes = plt.subplots(
            1, len(panels), figsize=(3.7 * len(panels), 3.8), gridspec_kw={"width_ratios": [p.width for p in panels]}
        )
    for ax, panel in zip(np.atleast_1d(axes), panels):
        if panel.kind == "face":
            show_face(ax, image, panel.title)
        elif panel.kind == "grid":
            show_grid(ax, grid_size, title=panel.title, background=image)
        else:
            ax.imshow(panel.image)
            ax.set_title(panel.title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        for layer in panel.boxes:
            colors = PALETTE[layer.colour_offset :] + PALETTE[: layer.colour_offset]
            draw_boxes(ax, layer.boxes, names=layer.names, scale=layer.scale, colors=colors, **_BOX_STYLES[layer.style])
        for (x0, y0), (x1, y1) in panel.lines:
            ax.plot([x0, x1], [y0, y1], color="k", lw=0.8, ls=":")
        for points, names, color in panel.points:
            draw_landmarks(ax, points, names=names, color=color)
    if title and fig is not None:
        fig.suptitle(title, fontsize=10)
    if fig is not None:
        fig.tight_layout()
    return fig


def plot_region_view(
    image: Any,
    landmarks5: Any,
    view: Any,
    *,
    image_size: int = 224,
    grid_size: int = 28,
    patch_size: int = 10,
    title: str = "",
    axes=None,
):
    """Compute a card's region ``view`` (:class:`ferlib.models._card.RegionView`) for one face and draw it."""
    geometry = view.regions(as_points(landmarks5), image_size, grid_size, patch_size)
    panels = view.panels(geometry, as_points(landmarks5), image_size, grid_size)
    return plot_region_panels(image, panels, grid_size=grid_size, title=title, axes=axes)


def amp_net_boxes(
    landmarks5: Any, image_size: int = 224, grid_size: int = 28, *, scheme: str = "proposed", patch_size: int = 10
) -> dict[str, np.ndarray]:
    """Kept for notebook 02: :func:`ferlib.models._amp_net_view.amp_net_geometry` (the geometry lives with AMP-Net)."""
    from ferlib.models._amp_net_view import amp_net_geometry

    return amp_net_geometry(landmarks5, image_size, grid_size, scheme=scheme, patch_size=patch_size)


def plot_amp_net_regions(
    image: Any,
    landmarks5: Any,
    *,
    image_size: int = 224,
    grid_size: int = 28,
    patch_size: int = 10,
    title: str = "",
    axes=None,
):
    """Kept for notebook 02: :func:`plot_region_view` with AMP-Net's card view (face with LP and AP
    boxes, pose-based division on the grid, location-based padding, amp-net.txt Fig. 4)."""
    from ferlib.models import get_card

    view = get_card("amp-net").region_views[0]
    return plot_region_view(
        image,
        landmarks5,
        view,
        image_size=image_size,
        grid_size=grid_size,
        patch_size=patch_size,
        title=title,
        axes=axes,
    )


def plot_grid_boxes(
    boxes: Any, grid_size: int = 28, *, names: Sequence[str] | None = None, title: str = "", image: Any = None, ax=None
):
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
            ax.imshow(
                m[k],
                cmap="magma",
                alpha=0.55,
                vmin=0,
                vmax=max(1.0, float(m[k].max())),
                extent=(-0.5, face.shape[1] - 0.5, face.shape[0] - 0.5, -0.5),
                interpolation="nearest",
            )
        else:
            ax.imshow(m[k], cmap="magma", vmin=0, vmax=1)
        ax.set_title(names[k], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def class_grid(
    images: Sequence[Any],
    labels: Sequence[int],
    class_names: Sequence[str],
    *,
    per_class: int = 3,
    captions: Sequence[str] | None = None,
    overlays: Sequence[Any] | None = None,
    title: str = "",
    cell: float = 1.6,
):
    """A grid with one column per class and ``per_class`` rows (the papers' per-class figures).

    ``overlays`` (optional, same length as ``images``): H×W heat maps drawn over the faces.
    """
    plt = _plt()
    columns = list(range(len(class_names)))
    fig, axes = plt.subplots(
        per_class, len(columns), figsize=(cell * len(columns), cell * per_class + 0.4), squeeze=False
    )
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


def overlay(image: Any, cam: np.ndarray, image_weight: float = 0.5) -> np.ndarray:
    """``show_cam_on_image`` of a uint8 face (H×W×3 or 3×H×W) and a CAM in [0, 1] → uint8 RGB."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    rgb = as_hwc(image).astype(np.float32) / 255.0
    return show_cam_on_image(rgb, np.clip(cam, 0, 1).astype(np.float32), use_rgb=True, image_weight=image_weight)


def heat_overlay(image: Any, heat: Any, image_weight: float = 0.5) -> np.ndarray:
    """A small heat map (e.g. a 7×7 guidance map) stretched over the face with pytorch-grad-cam's
    ``show_cam_on_image`` (nearest-neighbour, so the cells stay visible)."""
    from PIL import Image

    face = as_hwc(image)
    h = heat.detach().cpu().numpy() if hasattr(heat, "detach") else np.asarray(heat)
    h = h.astype(np.float32)
    if h.max() > h.min():
        h = (h - h.min()) / (h.max() - h.min())
    big = np.asarray(Image.fromarray(h, mode="F").resize((face.shape[1], face.shape[0]), Image.NEAREST))
    return overlay(face, big, image_weight=image_weight)


# --------------------------------------------------------------------------------------------
# CAMs and the networks' own attention: fixed colour scales, empty maps, weights, sanity check
# --------------------------------------------------------------------------------------------

#: pytorch-grad-cam's overlay colours (``show_cam_on_image``: OpenCV's JET); CAMs are each scaled to
#: their own maximum, so the bar reads "share of this map's peak", 0 to 1.
CAM_CMAP = "jet"
#: Own-attention maps are sigmoid gates: drawn on the fixed scale [0, 1] with this colour map.
ATTENTION_CMAP = "magma"


def wrap_text(text: str, width: int = 28) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(str(text), width)) if text else ""


def _mark_empty(ax, text: str = "empty map") -> None:
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=8,
        color="white",
        bbox={"boxstyle": "round", "facecolor": "#444444", "alpha": 0.85},
    )


def draw_cam(ax, image: Any, cam: Any, title: str | None = None, *, image_weight: float = 0.5) -> bool:
    """A CAM over the face (pytorch-grad-cam colours, 0..1); an all-zero CAM is drawn as the grey face
    labelled "empty map", never stretched. Returns False for an empty map."""
    c = np.asarray(cam, dtype=np.float32)
    empty = not np.isfinite(c).all() or c.max() <= 0
    if empty:
        ax.imshow(as_hwc(image).mean(axis=2), cmap="gray", vmin=0, vmax=255)
        _mark_empty(ax)
    else:
        ax.imshow(overlay(image, c, image_weight=image_weight))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(wrap_text(title), fontsize=7)
    return not empty


def draw_attention(
    ax, image: Any, heat: Any, title: str | None = None, *, vmin: float = 0.0, vmax: float = 1.0, alpha: float = 0.6
):
    """An own-attention map over the grey face on a FIXED scale [``vmin``, ``vmax``] (gates are in
    (0, 1), so two maps can be compared by colour); zero outside its region is left transparent. An
    all-zero map is labelled "empty map". Returns the image artist for a colour bar."""
    h = np.asarray(heat, dtype=np.float32)
    ax.imshow(as_hwc(image).mean(axis=2), cmap="gray", vmin=0, vmax=255)
    shown = np.ma.masked_where(h <= 0, h)
    art = ax.imshow(shown, cmap=ATTENTION_CMAP, vmin=vmin, vmax=vmax, alpha=alpha)
    if not np.isfinite(h).all() or h.max() <= 0:
        _mark_empty(ax)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(wrap_text(title), fontsize=7)
    return art


def add_colorbars(fig, axes, *, cam: bool = True, attention: bool = False) -> None:
    """Colour bars for :func:`draw_cam` (CAM, 0..1 of each map's peak) and/or :func:`draw_attention`
    (attention gate value, fixed 0..1), placed beside ``axes``."""
    import matplotlib as mpl

    plt, axes = _plt(), np.ravel(axes).tolist()
    bars = ((cam, CAM_CMAP, "Grad-CAM (÷ its own peak)"), (attention, ATTENTION_CMAP, "attention gate (fixed 0–1)"))
    for on, cmap, label in bars:
        if on:
            sm = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(0, 1), cmap=plt.get_cmap(cmap))
            bar = fig.colorbar(sm, ax=axes, fraction=0.025, pad=0.02)
            bar.set_label(label, fontsize=7)
            bar.ax.tick_params(labelsize=6)


def map_grid(
    faces: Sequence[Any],
    columns: Mapping[str, Any],
    kinds: Mapping[str, str],
    *,
    row_labels: Sequence[str] | None = None,
    title: str = "",
    cell: float = 1.7,
):
    """Faces in rows, maps in columns: ``columns`` name → N×H×W; ``kinds`` name → ``"cam"`` or
    ``"attention"`` (how to draw it, :func:`draw_cam` / :func:`draw_attention`), with one colour bar
    per kind. Column titles are wrapped so that they are never cut off."""
    plt = _plt()
    names = list(columns)
    n = len(faces)
    fig, axes = plt.subplots(
        n, len(names), figsize=(cell * len(names) + 1.2, cell * n + 0.6), squeeze=False, layout="constrained"
    )
    for r in range(n):
        for c, name in enumerate(names):
            ax = axes[r, c]
            head = name if r == 0 else None
            if kinds.get(name, "cam") == "attention":
                draw_attention(ax, faces[r], columns[name][r], head)
            else:
                draw_cam(ax, faces[r], columns[name][r], head)
            if c == 0 and row_labels is not None:
                ax.set_ylabel(wrap_text(row_labels[r], 18), fontsize=7)
    kinds_used = {kinds.get(k, "cam") for k in names}
    add_colorbars(fig, axes, cam="cam" in kinds_used, attention="attention" in kinds_used)
    if title:
        fig.suptitle(wrap_text(title, 110), fontsize=9)
    return fig


def plot_region_weights(ax, weights: Any, names: Sequence[str], title: str | None = None) -> None:
    """One face's region weights (e.g. MAN's ERSnet q, man.txt Eq. 6) as horizontal bars on a fixed
    0..1 axis, with the uniform weight 1/R dashed."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    y = np.arange(len(w))
    ax.barh(y, w, color=[PALETTE[i % len(PALETTE)] for i in y])
    ax.axvline(1.0 / len(w), color="black", linestyle="--", linewidth=0.8, label=f"uniform 1/{len(w)}")
    ax.set_yticks(y)
    ax.set_yticklabels([n.replace("_", " ") for n in names], fontsize=6)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.tick_params(axis="x", labelsize=6)
    ax.set_xlabel("weight q_r", fontsize=7)
    if title:
        ax.set_title(wrap_text(title), fontsize=7)


def plot_sanity_check(faces: Sequence[Any], cams: Mapping[int, Any], table: Any, *, title: str = "", cell: float = 1.5):
    """Adebayo et al.'s cascading randomisation: one row of CAMs per face (trained, then each step)
    and, at the right, the mean Spearman ρ with the trained CAM against the share of layers
    re-initialised (error bars: ±1 sd over faces)."""
    plt = _plt()
    steps = sorted(cams)
    n = len(faces)
    fig = plt.figure(figsize=(cell * len(steps) + 3.4, cell * n + 0.8), layout="constrained")
    grid = fig.add_gridspec(n, len(steps) + 2)
    rows = {int(r["step"]): r for r in table.to_dict(orient="records")}
    for r in range(n):
        for c, step in enumerate(steps):
            ax = fig.add_subplot(grid[r, c])
            label = None
            if r == 0:
                info = rows.get(step, {})
                label = "trained" if step == 0 else f"top {info.get('fraction', 0):.0%} random"
            draw_cam(ax, faces[r], np.asarray(cams[step])[r], label)
    ax = fig.add_subplot(grid[:, len(steps) :])
    x = table["fraction"].to_numpy()
    ax.errorbar(x, table["spearman"], yerr=table["spearman_sd"].fillna(0), marker="o", capsize=3)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlim(-0.05, 1.05)
    ax.set_xlabel("share of layers re-initialised (from the top)", fontsize=7)
    ax.set_ylabel("Spearman ρ with the trained CAM", fontsize=7)
    ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(wrap_text(title, 110), fontsize=9)
    return fig


def plot_region_share(table: Any, *, title: str = "", value: str = "share"):
    """Heat map of :func:`ferlib.explain.region_attention_share` (rows: map × class, columns: face
    parts) on a fixed 0..1 scale (``value="ratio"``: share ÷ area on a fixed 0..3 scale centred on 1),
    with the numbers."""
    import seaborn as sns

    plt = _plt()
    pivot = table.pivot_table(index=["map", "class"], columns="region", values=value, sort=False)
    pivot = pivot[[r for r in dict.fromkeys(table["region"])]]
    fig, ax = plt.subplots(figsize=(1.1 * pivot.shape[1] + 3.2, 0.26 * pivot.shape[0] + 1.2), layout="constrained")
    # fixed scales: shares 0..1; ratios 0..3 centred on 1 (no preference), larger ratios saturate
    kw = (
        {"vmin": 0, "vmax": 1, "cmap": "viridis"}
        if value == "share"
        else {"vmin": 0, "vmax": 3, "center": 1.0, "cmap": "RdBu_r"}
    )
    sns.heatmap(pivot, annot=True, fmt=".2f", annot_kws={"fontsize": 6}, ax=ax, cbar_kws={"label": value}, **kw)
    ax.set_ylabel("")
    ax.tick_params(labelsize=6)
    if title:
        ax.set_title(wrap_text(title, 90), fontsize=8)
    return fig
