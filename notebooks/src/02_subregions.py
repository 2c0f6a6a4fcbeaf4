# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Where each network looks: landmarks → subregions
#
# Every network in this study splits the face before it attends to it, and each splits it
# differently: **AMP-Net** cuts the feature map at the landmarks (pose-based division), **MA-Net**
# cuts it into a fixed grid whatever the face does, the **Multiple Attention Network (MAN)** puts
# eight boxes around eight landmarks and learns masks for them, **LAN** (a *local attention
# network*) lets clustering of its own features say where to look, and **FFRA-Net** splits its
# map into four local maps. The splits are made on a **feature grid**, not on pixels: a 224-px face
# through a stride-8 pre-extractor gives a 28×28 grid, and a landmark at pixel $(x, y)$ falls in cell
# $\mathrm{round}(x \cdot 28/224)$.
#
# This notebook draws each division on a frontal face, an occluded face and a turned face, measures
# the regions against the face itself (in units of the **inter-ocular distance**, IOD, the distance
# between the two eye centres), and ends with an explorer in which you turn the face and move the
# landmarks yourself. It trains nothing: the *learnt* attention inside the regions (RASnet's masks,
# LAN's attention map, the CBAM and shuffle attention) needs trained networks and is drawn in
# notebook 05 from the models notebook 03 trains.
#
# All faces here come from **SynthFER**, ferlib's *synthetic* face renderer, which knows its exact
# landmarks. Nothing below is a result of any paper.
#
# **Learning goals.** After this notebook you can (1) compute AMP-Net's pose-based division by hand
# from five landmarks, including its two special cases; (2) say which MA-Net region holds which facial
# part and why the split ignores pose; (3) read MAN's Table 2 and explain its tall eyes-and-brows box;
# (4) say what a LAN guidance map is and why it needs a pre-trained backbone; (5) say which regions an
# occluder removes.
#
# **References** (equations below are tagged *paper, Eq. n*):
# - **AMP-Net** — H. Liu, H. Cai, Q. Lin, X. Li, H. Xiao, "Adaptive multilayer perceptual attention
#   network for facial expression recognition", *IEEE Transactions on Circuits and Systems for Video
#   Technology*, 2022.
# - **MA-Net** — Z. Zhao, Q. Liu, S. Wang, "Learning deep global multi-scale and local attention
#   features for facial expression recognition in the wild", *IEEE Transactions on Image Processing*
#   30, 2021, doi:[10.1109/TIP.2021.3093397](https://doi.org/10.1109/TIP.2021.3093397).
# - **MAN** — Y. Gan, J. Chen, Z. Yang, L. Xu, "Multiple attention network for facial expression
#   recognition", *IEEE Access* 8, 2020, doi:[10.1109/ACCESS.2020.2963913](https://doi.org/10.1109/ACCESS.2020.2963913).
# - **LAN** — S. Cho, J. Lee, "Learning local attention with guidance map for pose robust facial
#   expression recognition", *IEEE Access* 10, 2022, doi:[10.1109/ACCESS.2022.3198658](https://doi.org/10.1109/ACCESS.2022.3198658).
# - **FFRA-Net** — Y. Chen, S. Liu, D. Zhao, W. Ji, "Occlusion facial expression recognition based on
#   feature fusion residual attention network", *Frontiers in Neurorobotics* 17, 2023,
#   doi:[10.3389/fnbot.2023.1250706](https://doi.org/10.3389/fnbot.2023.1250706).
# - **ArcFace template** (the five-point alignment target) — J. Deng, J. Guo, N. Xue, S. Zafeiriou,
#   "ArcFace: additive angular margin loss for deep face recognition", CVPR 2019,
#   doi:[10.1109/CVPR.2019.00482](https://doi.org/10.1109/CVPR.2019.00482).
# - **Umeyama** (the least-squares similarity that carries the template's face parts onto a face) —
#   S. Umeyama, "Least-squares estimation of transformation parameters between two point patterns",
#   *IEEE TPAMI* 13(4), 1991, doi:[10.1109/34.88573](https://doi.org/10.1109/34.88573).

# %% tags=["parameters"]
profile = None  # None → $FERLIB_PROFILE, else "default"; or "smoke" / "default" / "full"
dataset = "synthfer"
data_root = None
models = None  # None → the profile's models
device = "auto"
seed = 0
run_dir = None  # None → runs/notebooks-<profile>/ beside this notebook

# %%
import numpy as np
import pandas as pd
import torch
import matplotlib.pyplot as plt
from matplotlib.colors import ListedColormap, to_hex
from matplotlib.lines import Line2D
from IPython.display import Image, display

from ferlib import plots
from ferlib.data.face_geometry import canonical_template
from ferlib.data.synthfer import render_face
from ferlib.models import create_model, regions
from ferlib.models.ma_net import TABLE_III_STRATEGIES, ma_net_regions
from ferlib.models.man_masks import (
    MAN_REGION_NAMES,
    REGION_SIZES_EYES_LANDSCAPE,
    REGION_SIZES_TABLE2,
    ground_truth_masks,
    landmarks5_to_8,
    region_boxes,
)
from ferlib.occlusion import OCCLUDER_KINDS, occlude
from ferlib.study import prepare_notebook
from ferlib.study.exercises import check_answer
from ferlib.widgets import RegionExplorer, demo_faces

ctx = prepare_notebook("02_subregions.ipynb", profile=profile, dataset=dataset, data_root=data_root,
                       models=models, device=device, seed=seed, run_dir=run_dir)
print(ctx.describe())
torch.set_grad_enabled(False)
faces = demo_faces(seed=0)
rendered = {name: render_face(p) for name, p in faces.items()}
STRIDE = 224 / 28  # pixels per cell of the 28×28 grid


def iod_of(points5):
    """Inter-ocular distance (px) of five RetinaFace points: eye centre to eye centre."""
    p = np.asarray(points5, dtype=float)
    return float(np.linalg.norm(p[1] - p[0]))


def cell_of(point, box):
    """Whether a grid-cell point (x, y) lies inside an (x0, y0, x1, y1) box with exclusive ends."""
    x, y = point
    return box[0] <= x < box[2] and box[1] <= y < box[3]

# %% [markdown]
# ## The faces and their five points
# The five points are in RetinaFace order: the subject's right eye (image left), left eye, nose tip,
# right and left mouth corners. SynthFER renders them exactly, so the geometry below is not blurred
# by detector error. The papers detect the face, align it with these five points onto a template
# and resize to 224×224; ferlib's template is ArcFace's (*Deng et al., 2019*) scaled to 224 px
# (orange crosses in the first panel).

# %%
template = canonical_template(224)
fig, axes = plt.subplots(1, len(rendered), figsize=(2.6 * len(rendered), 2.9))
for ax, (name, (img, info)) in zip(axes, rendered.items()):
    plots.show_face(ax, img, name)
    plots.draw_landmarks(ax, info["landmarks5"], names=None)
axes[0].scatter(template[:, 0], template[:, 1], marker="x", c="#D55E00", s=22, linewidths=1.2, zorder=6)
axes[0].set_title("frontal (× = ArcFace template)", fontsize=9)
fig.tight_layout()
ctx.show(fig, "faces")

# %%
frontal_img, frontal_info = rendered["frontal"]
lm5_np = np.asarray(frontal_info["landmarks5"], dtype=float)
iod = iod_of(lm5_np)
eye_mouth = float(np.linalg.norm(lm5_np[3:5].mean(0) - lm5_np[0:2].mean(0)))
iod_template = iod_of(template)
eye_mouth_template = float(np.linalg.norm(template[3:5].mean(0) - template[0:2].mean(0)))
offset = float(np.linalg.norm(lm5_np - template, axis=1).mean())
print(f"This frontal face: IOD {iod:.0f} px, eyes-to-mouth {eye_mouth:.0f} px; "
      f"ArcFace template at 224 px: {iod_template:.0f} and {eye_mouth_template:.0f} px; "
      f"mean distance of the 5 points from the template {offset:.1f} px.")
neutral_points = np.asarray(render_face(demo_faces(seed=0, label=0)["frontal"])[1]["landmarks5"], dtype=float)
neutral_offset = float(np.linalg.norm(neutral_points - template, axis=1).mean())
print(f"The same identity with a neutral expression: IOD {iod_of(neutral_points):.0f} px, eyes-to-mouth "
      f"{float(np.linalg.norm(neutral_points[3:5].mean(0) - neutral_points[0:2].mean(0))):.0f} px, "
      f"{neutral_offset:.1f} px from the template; the expression moves the points by the difference.")

# %% [markdown]
# **What to look for.** Every region below is defined either on these points (AMP-Net, MAN) or on
# fixed positions of the image (MA-Net, FFRA-Net). Both kinds only fall on the intended facial parts
# when the face sits where the papers' alignment puts it: the eyes about 70 px apart and about 81 px
# above the mouth on a 224-px crop. A face that is smaller than the template makes every fixed-size
# box relatively too big; a face that is off-centre moves the fixed splits onto the wrong parts.
# The lines printed above compare this notebook's demonstration face, and the same person with a
# neutral expression, with the template: SynthFER aligns a face's *neutral* points onto the template
# up to a few px of spread (as a detector plus alignment would), and an expression then moves them
# (a smile pulls the mouth corners up and outward). Keep these numbers in mind when you read the box
# sizes below, all of which are given in IOD units too.

# %%
# NBVAL_CHECK_OUTPUT
lm5 = torch.as_tensor(frontal_info["landmarks5"])[None]
grid_lm = regions.landmarks_to_grid(lm5, (224, 224), 28)
print("landmarks5:", tuple(lm5.shape[1:]), "landmarks8:", frontal_info["landmarks8"].shape,
      "contour points:", frontal_info["landmarks"].shape)
print("frontal face, 5 points on the 28×28 grid:", grid_lm[0].int().tolist())

# %% [markdown]
# ## AMP-Net: pose-based division and location-based padding (AMP-Net §III-C)
# The division points come from the landmarks on the grid (*AMP-Net, Eq. 2*)
# $$x_{top} = \lfloor (x_{eye1} + x_{eye2})/2 \rfloor,\quad x_{bottom} = \lfloor (x_{mouth1} + x_{mouth2})/2 \rfloor,\quad y_{center} = y_{nose},$$
# and each pair of regions is a square of side (*AMP-Net, Eq. 3*)
# $$l_{top} = \min(x_{top},\ y_{center},\ r - x_{top}),\qquad l_{bottom} = \min(x_{bottom},\ r - y_{center},\ r - x_{bottom})$$
# anchored at its division point (*AMP-Net, Eq. 4*). Two special cases keep the regions useful on
# turned faces: **(1)** when $l < r/3$ because the face sits near a border, the region on the other
# side grows to $\min(\text{its room}, r/2)$; **(2)** when a region misses its own eye or mouth
# corner, it is lengthened towards it. *Location-based padding* then copies each region into the
# corner of a 14×14 map that touches its division point, so that the four maps stay aligned however
# the face turns. The five dashed **AP patches** are $L\times L$ squares (L = 10 cells) around the
# two eyes, their middle and the two mouth corners (*AMP-Net, Eq. 6*); the legend names them.

# %%
AP_COLOURS = plots.PALETTE[4:] + plots.PALETTE[:4]  # the card view draws AP patch k in this colour
ap_legend = [Line2D([0], [0], color=AP_COLOURS[k], ls="--", lw=1.2, label=f"AP {name}")
             for k, name in enumerate(regions.AP_PATCH_NAMES)]
amp_geometry = {}
for name in ("frontal", "face mask", "turned right (yaw +35°)"):
    img, info = rendered[name]
    amp_geometry[name] = plots.amp_net_boxes(info["landmarks5"])
    fig = plots.plot_amp_net_regions(img, info["landmarks5"], title=f"AMP-Net regions — {name} (SynthFER)")
    fig.axes[0].legend(handles=ap_legend, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=6,
                       frameon=False, handlelength=1.6)
    fig.tight_layout()
    ctx.show(fig, "amp_net_" + name.split(" (")[0].replace(" ", "_"))

# %%
def lp_side_px(boxes):
    """Side (px) of each LP box given in grid cells."""
    return [float(b[2] - b[0]) * STRIDE for b in boxes]


fg, tg = amp_geometry["frontal"], amp_geometry["turned right (yaw +35°)"]
x_top, x_bottom, y_center = (float(v) for v in fg["division"])
quadrant_like = max(abs(x_top - 14), abs(x_bottom - 14), abs(y_center - 14)) <= 1
ap_side = float(fg["ap"][0][2] - fg["ap"][0][0]) * STRIDE
turned_shift = float(tg["division"][0] - fg["division"][0])
print(f"Frontal face: division point x_top = {x_top:.0f}, x_bottom = {x_bottom:.0f}, y_center = {y_center:.0f} "
      f"(the grid's centre is 14); LP sides {', '.join(f'{s:.0f}' for s in lp_side_px(fg['lp']))} px "
      f"= {lp_side_px(fg['lp'])[0] / iod:.2f} IOD.")
print("The four LP regions " + ("are (nearly) the four image quadrants: on a centred frontal face pose-based "
                                 "division reduces to an equal 2×2 split."
                                 if quadrant_like else
                                 "differ from the image quadrants: the division point follows the face."))
print(f"An AP patch is {ap_side:.0f} px wide = {ap_side / iod:.2f} IOD; the two eye patches overlap the "
      f"eye-middle patch.")
tmpl_geo = plots.amp_net_boxes(template)
print(f"On the ArcFace template itself (the papers' aligned geometry) the division point is "
      f"{tuple(int(v) for v in tmpl_geo['division'])} and the LP sides are "
      f"{', '.join(f'{s:.0f}' for s in lp_side_px(tmpl_geo['lp']))} px = {lp_side_px(tmpl_geo['lp'])[0] / iod_template:.2f} "
      f"template IODs; an AP patch is {ap_side / iod_template:.2f} template IODs.")
print(f"Turning the head by +35° moves x_top by {turned_shift:+.0f} cells ({turned_shift * STRIDE:+.0f} px); "
      f"the LP sides become {', '.join(f'{s:.0f}' for s in lp_side_px(tg['lp']))} px.")

# %% [markdown]
# **Reading the figures.** Left panel: the face with the four LP regions (solid, named) and the five
# AP patches (dashed, in the legend). Middle: the same division on the 28×28 grid, with the dotted
# division lines of Eq. 2. Right: location-based padding, each region copied into the corner of its
# 14×14 map that touches the division point. Look at how the division point follows the nose on the
# turned face while the quadrant sizes change: that is the whole idea of *pose-based* division. When
# the nose tip sits at the grid's centre the division is MA-Net's equal 2×2 split; on the papers'
# aligned geometry the nose tip sits below the centre (the template line above), so the top regions
# are taller than the bottom ones and the cut runs through the nose rather than between eyes and
# mouth. The printed lines say which case this face is.
# The AP patches are large relative to the eyes (see their size in IOD above): with L = 10 cells they
# cover the eye, the brow and part of the cheek, not the eye alone.

# %%
# NBVAL_CHECK_OUTPUT
def describe_pbd(name, grid_points):
    g = torch.as_tensor(grid_points, dtype=torch.float32)[None]
    x_top, x_bottom, y_center = (float(v[0]) for v in regions.division_points(g, 28))
    l_top = min(x_top, y_center, 28 - x_top)
    l_bottom = min(x_bottom, 28 - y_center, 28 - x_bottom)
    boxes = regions.pose_based_division(g, 28)[0].int().tolist()
    print(f"{name}: x_top={x_top:.0f} x_bottom={x_bottom:.0f} y_center={y_center:.0f} "
          f"l_top={l_top:.0f} l_bottom={l_bottom:.0f} (r/3 = 9.3)")
    for region, box in zip(regions.LP_REGION_NAMES, boxes):
        print(f"    {region:<12} {box}")
    return boxes

cases = {
    "frontal face": grid_lm[0].tolist(),
    "special case 1 (face near the left border, l < r/3)": [[3, 10], [9, 10], [6, 15], [4, 20], [9, 20]],
    "special case 2 (eye above its square)": [[4, 5], [20, 10], [14, 18], [9, 23], [19, 23]],
}
case_boxes = {name: describe_pbd(name, pts) for name, pts in cases.items()}
ap = regions.ap_patch_boxes(grid_lm, 28, patch_size=10)[0].int().tolist()
print("AP patches (L = 10):", dict(zip(regions.AP_PATCH_NAMES, ap)))

# %%
fig, axes = plt.subplots(1, 2, figsize=(7, 3.6))
for ax, name in zip(axes, list(cases)[1:]):
    pts = np.array(cases[name], dtype=float)
    plots.plot_grid_boxes(case_boxes[name], 28, names=[n.replace("_", "-") for n in regions.LP_REGION_NAMES],
                          title=name.split(" (")[0], ax=ax)
    ax.scatter(pts[:, 0] - 0.5, pts[:, 1] - 0.5, c="#FF2D2D", s=16, zorder=5)
fig.tight_layout()
ctx.show(fig, "pbd_special_cases")

# %%
case1 = case_boxes[list(cases)[1]]
case2 = case_boxes[list(cases)[2]]
case2_pts = cases[list(cases)[2]]
print(f"Special case 1: the left-top square is only {case1[0][2] - case1[0][0]} cells wide (< r/3 = 9.3), so the "
      f"right-top square grows to {case1[1][2] - case1[1][0]} cells (at most r/2 = 14).")
eye_inside = cell_of(case2_pts[0], case2[0])
print(f"Special case 2: the image-left eye at cell {tuple(case2_pts[0])} is "
      f"{'inside' if eye_inside else 'outside'} its left-top region {case2[0]} after lengthening.")

# %% [markdown]
# **Reading the special cases.** The red dots are the five grid landmarks. In case 1 the face is
# pressed against the left border, so Eq. 3 gives the left squares almost no room; the rule lets the
# right squares grow instead, so the network still sees a useful amount of face. In case 2 the eye
# lies above the square Eq. 4 anchors at the division point; the region is lengthened upwards until
# it holds the eye. Both rules exist because a turned head moves the landmarks towards one border —
# exactly the faces AMP-Net was built for.

# %% [markdown]
# ## MA-Net: a fixed split of the grid (MA-Net §III-C, Table III)
# MA-Net ignores landmarks: the 28×28 map is cut into equal square regions, neighbours sharing
# `overlap` rows/columns, side $s = (r + (n-1)\cdot o)/n$ for an $n\times n$ split with overlap $o$
# (the division of *MA-Net, Fig. 5*). The paper keeps 2×2 without overlap; Table III also tries 1×1,
# 2×2 overlapping by 6 and 3×3 overlapping by 1 or 7. Each region is drawn in its own colour, with
# its number in the top-left corner (row by row, top-left first); the 3×3 splits are also drawn as
# small multiples below, one region per panel, because nine overlapping boxes on one face cannot be
# told apart.

# %%
# NBVAL_CHECK_OUTPUT
REGION_COLOURS = tuple(to_hex(c) for c in plt.get_cmap("tab10").colors)
strategies = [(1, 0)] + [tuple(s) for s in TABLE_III_STRATEGIES if tuple(s) != (1, 0)]
split_boxes = {}
fig, axes = plt.subplots(1, len(strategies), figsize=(2.6 * len(strategies), 2.9))
for ax, (split, overlap) in zip(axes, strategies):
    boxes = ma_net_regions(28, split, overlap)
    split_boxes[(split, overlap)] = boxes.tolist()
    print(f"{split}×{split}, overlap {overlap}: region side {int(boxes[0, 2] - boxes[0, 0])}, "
          f"starts {sorted({int(b[0]) for b in boxes})}")
    plots.show_face(ax, frontal_img, f"{split}×{split} / overlap {overlap}")
    plots.draw_boxes(ax, boxes, names=[str(k + 1) for k in range(len(boxes))], scale=STRIDE,
                     colors=REGION_COLOURS,
                     linewidth=1.4, fontsize=6)
fig.tight_layout()
ctx.show(fig, "ma_net_splits")

# %%
for split, overlap in [s for s in strategies if s[0] == 3]:
    boxes = split_boxes[(split, overlap)]
    fig, axes = plt.subplots(split, split, figsize=(1.9 * split, 2.0 * split))
    for k, (ax, box) in enumerate(zip(axes.ravel(), boxes)):
        plots.show_face(ax, frontal_img, f"region {k + 1}")
        plots.draw_boxes(ax, [box], scale=STRIDE, colors=[REGION_COLOURS[k]], fill_alpha=0.3, linewidth=1.6)
        plots.draw_landmarks(ax, lm5_np, names=None, size=8)
    fig.suptitle(f"MA-Net {split}×{split}, overlap {overlap}: one region per panel (SynthFER)", fontsize=9)
    fig.tight_layout()
    ctx.show(fig, f"ma_net_split_{split}x{split}_overlap{overlap}")

# %%
PART_OF_POINT = ("image-left eye", "image-right eye", "nose tip", "image-left mouth corner", "image-right mouth corner")


def parts_in_regions(boxes, grid_points):
    """Region number(s) (1-based) that hold each of the five grid landmarks."""
    return {part: [k + 1 for k, b in enumerate(boxes) if cell_of(p, b)] for part, p in zip(PART_OF_POINT, grid_points)}


g_pts = grid_lm[0].tolist()
for split, overlap in strategies[1:]:
    boxes = split_boxes[(split, overlap)]
    side_px = (boxes[0][2] - boxes[0][0]) * STRIDE
    where = parts_in_regions(boxes, g_pts)
    empty = [k + 1 for k, b in enumerate(boxes) if not any(cell_of(p, b) for p in g_pts)]
    print(f"{split}×{split}/overlap {overlap}: side {side_px:.0f} px = {side_px / iod:.2f} IOD; "
          + "; ".join(f"{part} in {r}" for part, r in where.items())
          + (f"; regions without any landmark: {empty}" if empty else ""))

# %% [markdown]
# **Reading the splits.** In the paper's 2×2 split each region holds one eye or one mouth corner,
# and the nose tip sits on or next to the seam between the four (the lines above say which region
# holds which point on this face). With 3×3 splits the regions get smaller than the face's parts and several of
# them hold no landmark at all: forehead, cheeks or background. Overlap makes neighbouring regions
# share rows, so a part cut by a seam still lies whole in one region — the reason Table III tries
# it. None of this moves with the face: turn the head and MA-Net's boxes stay where they are, which
# is why MA-Net relies on its attention inside each region rather than on the split itself.

# %% [markdown]
# ## Multiple Attention Network: 8 regions from 8 points (MAN §III-A, Table 2, Eq. 4)
# MAN's RASnet learns to predict 8 masks on the 14×14 map of VGG16's conv block 4; its targets are
# boxes around landmarks (*MAN, Table 2*), turned into masks with scale $\lambda = 1/16$ (*MAN,
# Eq. 4*): $\hat M_r(i, j) = 1$ when $\lambda(x - w/2) \le i \le \lambda(x + w/2)$ and
# $\lambda(y - h/2) \le j \le \lambda(y + h/2)$. SynthFER renders the 8 points; for datasets with
# only 5, ferlib derives them (`landmarks5_to_8`).
#
# **The tall box.** Table 2 prints the *eyes together with brows* box as $(w, h) = (0.36W, 0.72H)$:
# twice as tall as wide, centred between the outer eye corners. Taken literally it reaches from the
# forehead down past the nose, although both eyes and brows lie in a band that is wider than tall.
# The width and height may have been swapped in print; the paper does not say. ferlib uses the
# printed size by default (`mask_sizes="table2"`) and offers the landscape reading
# $(0.72W, 0.36H)$ as a variant (`create_model("man", mask_sizes="eyes-landscape")`); both are drawn
# below.

# %%
lm8 = torch.as_tensor(frontal_info["landmarks8"])[None]


def xyxy_boxes(points8, sizes):
    xywh = region_boxes(points8, (224, 224), sizes)[0]
    return torch.cat([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], dim=1).numpy()


man_boxes = {"Table 2 as printed": xyxy_boxes(lm8, REGION_SIZES_TABLE2),
             "landscape eyes-and-brows": xyxy_boxes(lm8, REGION_SIZES_EYES_LANDSCAPE)}
short = ("whole", "eyes+brows", "mouth+nose", "left eye", "right eye", "nose", "l. corner", "r. corner")
fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.7))
plots.show_face(axes[0], frontal_img, "the 8 points l1…l8")
plots.draw_landmarks(axes[0], lm8[0], names=[f"l{i}" for i in range(1, 9)], color="#FFD400")
for ax, (title, boxes) in zip(axes[1:], man_boxes.items()):
    plots.show_face(ax, frontal_img, title)
    plots.draw_boxes(ax, boxes[1:], colors=REGION_COLOURS[1:], linewidth=1.4)
man_legend = [Line2D([0], [0], color=REGION_COLOURS[k], lw=1.6, label=short[k]) for k in range(1, 8)]
fig.legend(handles=man_legend, loc="lower center", ncol=7, fontsize=7, frameon=False)
fig.suptitle("MAN regions (Table 2) on a SynthFER face; the whole-image region is left out", fontsize=10)
fig.tight_layout(rect=(0, 0.06, 1, 1))
ctx.show(fig, "man_regions")

# %%
tall = man_boxes["Table 2 as printed"][1]
wide = man_boxes["landscape eyes-and-brows"][1]
nose_y = float(lm5_np[2, 1])
mouth_y = float(lm5_np[3:5, 1].mean())
below_nose = max(0.0, float(tall[3]) - nose_y) / float(tall[3] - tall[1])
eye_box = man_boxes["Table 2 as printed"][3]
nose_box = man_boxes["Table 2 as printed"][5]


def overlap_share(a, b):
    """Share of box a's area that box b covers."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / ((a[2] - a[0]) * (a[3] - a[1]))


print(f"Printed eyes-and-brows box: {tall[2] - tall[0]:.0f}×{tall[3] - tall[1]:.0f} px "
      f"= {(tall[2] - tall[0]) / iod:.2f}×{(tall[3] - tall[1]) / iod:.2f} IOD; {below_nose:.0%} of its height lies "
      f"below the nose tip, and its bottom edge lies {abs(tall[3] - mouth_y):.0f} px "
      f"{'below' if tall[3] > mouth_y else 'above'} the mouth line.")
print(f"Landscape reading: {wide[2] - wide[0]:.0f}×{wide[3] - wide[1]:.0f} px, from {wide[1]:.0f} to {wide[3]:.0f} px "
      f"in y (the eyes are at y ≈ {lm5_np[:2, 1].mean():.0f}, the nose tip at {nose_y:.0f}).")
print(f"Each single-part box is {eye_box[2] - eye_box[0]:.0f} px = {(eye_box[2] - eye_box[0]) / iod:.2f} IOD wide; "
      f"the nose box covers {overlap_share(eye_box, nose_box):.0%} of the left-eye box.")

# %% [markdown]
# **Reading the boxes.** The middle panel is Table 2 taken literally, the right panel the landscape
# reading. The numbers above measure the printed box against this face: how much of it lies below
# the nose tip, i.e. on the nose and cheeks rather than on eyes and brows. The single-part boxes
# (0.27 W) are large too: measured in IOD they are close to the distance between the eyes, so the
# eye boxes share area with the nose box (the last line) and the *local* views overlap more than
# their names suggest. Keep that in mind when notebook 05 shows MAN's region weights: regions that
# overlap this much cannot be told apart by where they are alone.

# %%
# NBVAL_CHECK_OUTPUT
masks = ground_truth_masks(lm8)
print("ground-truth masks:", tuple(masks.shape), "cells per region:", masks[0].sum((1, 2)).int().tolist())
derived = landmarks5_to_8(lm5)
print("8 points derived from 5 vs rendered: mean distance %.1f px" % (derived - lm8).norm(dim=-1).mean())

# %%
fig = plots.plot_masks(masks[0], MAN_REGION_NAMES, image=frontal_img,
                       title="MAN ground-truth region masks (Table 2, Eq. 4) on a SynthFER face")
ctx.show(fig, "man_gt_masks")
cells = masks[0].sum((1, 2)).int().tolist()
print(f"On the 14×14 map each cell is 16 px: the whole-image mask has {cells[0]} cells, the eyes-and-brows mask "
      f"{cells[1]}, each single-part mask {min(cells[3:])}–{max(cells[3:])} cells "
      f"({min(cells[3:]) / cells[0]:.0%}–{max(cells[3:]) / cells[0]:.0%} of the map).")

# %% [markdown]
# **Reading the masks.** These binary masks are the *targets* of RASnet's mask loss, not what MAN
# attends to: RASnet must learn to predict them from the image, and the ERSnet then weighs the
# eight masked feature maps. At 16 px per cell a single-part region is only a few cells wide, so a
# landmark error of 8 px moves a mask by half a cell. The predicted masks of an *untrained* RASnet
# are below: a sigmoid of random features, close to 0.5 and unrelated to the face.

# %%
man = create_model("man").eval()
out = man(plots.torch_image(frontal_img))
predicted = out.aux["masks"][0]
print(f"RASnet predicted masks {tuple(out.aux['masks'].shape)}, untrained: values {float(predicted.min()):.2f}–"
      f"{float(predicted.max()):.2f}, mean {float(predicted.mean()):.2f}; mean absolute difference from the "
      f"ground truth {float((predicted - masks[0]).abs().mean()):.2f}.")
fig = plots.plot_masks(predicted, MAN_REGION_NAMES, image=frontal_img,
                       title="RASnet's predicted masks, untrained network (before any training)")
ctx.show(fig, "man_predicted_masks")
del man

# %% [markdown]
# An untrained RASnet predicts nearly the same grey level everywhere, as the printed range shows.
# Training (notebook 03, when the profile includes `man`) pulls these maps towards the targets above;
# notebook 05 then draws the trained masks and the region weights per face.

# %% [markdown]
# ## LAN: attention guidance maps (LAN §III-C, Eqs. 3–4)
# LAN, the *local attention network*, does not use landmarks. It clusters the 7×7 conv5 features of
# its backbone at each position into K = 2 groups with K-means (*LAN, Eq. 3*); the smaller group is
# "attentive", and a face's guidance map marks the positions whose feature lies nearer the attentive
# centre (*LAN, Eq. 4*). The learnt 7×7 attention map is trained to match this guidance with a
# binary cross-entropy. The paper clusters a *pre-trained* backbone; here the backbone is untrained,
# so the maps only show the mechanics. When the profile trains LAN, notebook 03 fits the centres
# after a warm-up of the backbone and notebook 05 draws the trained attention beside its guidance.

# %%
from torch.utils.data import DataLoader
from ferlib.data.synthfer import SynthFERDataset
from ferlib.data.schema import collate_samples
from ferlib.data.transforms import normalize_images
from ferlib.train.guidance import fit_guidance, guidance_maps

lan_model = create_model("lan").eval()
guide_set = SynthFERDataset(ctx.profile.n_guidance_faces, seed=seed, split="train")
loader = DataLoader(guide_set, batch_size=16, collate_fn=collate_samples)
centres = fit_guidance(lan_model, loader, "cpu", prepare=lambda b: normalize_images(b["image"]))
batch = collate_samples([guide_set[i] for i in range(7)])
maps = guidance_maps(lan_model.backbone(normalize_images(batch["image"])), centres)
shade = ListedColormap([(0.0, 0.0, 0.0, 0.6), (0.0, 0.0, 0.0, 0.0)])  # guidance 0 → darkened, 1 → clear
fig, axes = plt.subplots(1, 7, figsize=(15, 2.6))
for i, ax in enumerate(axes):
    plots.show_face(ax, batch["image"][i], f"face {i}: {int(maps[i].sum())}/49 attentive")
    ax.imshow(maps[i].float().numpy(), cmap=shade, vmin=0, vmax=1, interpolation="nearest",
              extent=(-0.5, 223.5, 223.5, -0.5))
fig.suptitle("LAN guidance maps (7×7, 32 px per cell): clear cells are attentive (1), darkened cells 0; "
             "untrained backbone, mechanics only", fontsize=10)
fig.tight_layout()
ctx.show(fig, "lan_guidance")

# %%
# NBVAL_CHECK_OUTPUT
print("guidance maps:", tuple(maps.shape), "(one 7×7 map of 0/1 per face)")

# %%
attentive = maps.float().flatten(1).mean(1)
centre_share = float(maps[:, 2:5, 2:5].float().sum() / maps.float().sum().clamp(min=1))
print(f"Attentive share of the 49 positions per face: {attentive.min():.0%}–{attentive.max():.0%} "
      f"(mean {attentive.mean():.0%}), fitted on {len(guide_set)} faces; {centre_share:.0%} of the attentive "
      f"positions lie in the central 3×3 cells (9 of 49 = 18 % if they were spread evenly).")

# %% [markdown]
# **Reading the guidance maps.** Each 7×7 cell covers 32×32 px. With an untrained backbone the two
# K-means clusters separate whatever the random features separate — often image brightness or
# background versus face — so the printed shares say nothing yet about expressions. With a backbone
# pre-trained on faces, the paper's guidance marks the parts whose features differ from the rest of
# the face (eyes, mouth); that is why LAN warms up its backbone before fitting the centres.

# %% [markdown]
# ## FFRA-Net: a spatial split inside the local attention module (FFRA-Net §3.2)
# FFRA-Net splits the pre-extractor's map into m = 4 local maps (a 2×2 grid), runs each through a
# 3×3 convolution and shuffle attention in a cascade (*FFRA-Net, Eq. 4*), and re-assembles them.
# ferlib's pre-extractor ends after ResNet-18's layer3 (see `ferlib.models.ffra_net`), so the split
# is on a 14×14 map.

# %%
# NBVAL_CHECK_OUTPUT
ffra = create_model("ffra-net").eval()
feat = ffra.pre_extractor(plots.torch_image(frontal_img))
side = feat.shape[-1] // 2
ffra_boxes = [[c * side, r * side, (c + 1) * side, (r + 1) * side] for r in range(2) for c in range(2)]
print("FFRA-Net pre-extractor output:", tuple(feat.shape), "local maps:", ffra_boxes)
fig = plots.plot_grid_boxes(ffra_boxes, feat.shape[-1], names=["1", "2", "3", "4"], image=frontal_img,
                            title="FFRA-Net: m = 4 local maps")
ctx.show(fig, "ffra_split")
del ffra

# %%
ffra_stride = 224 / feat.shape[-1]
ffra_where = parts_in_regions(ffra_boxes, (lm5_np / ffra_stride).tolist())
print(f"Each local map covers {side * ffra_stride:.0f}×{side * ffra_stride:.0f} px = {side * ffra_stride / iod:.2f} IOD; "
      + "; ".join(f"{part} in map {r}" for part, r in ffra_where.items()))

# %% [markdown]
# **Reading the split.** FFRA-Net's four local maps are MA-Net's 2×2 split on a coarser map: one
# eye or one mouth corner per map on an aligned face, nothing following the pose. What differs is
# what happens inside: shuffle attention weights channels and positions of each local map, and the
# cascade passes each map's output on to the next. FFRA-Net was designed for occluded faces, which
# is where the next section goes.

# %% [markdown]
# ## Do the regions fall on the face parts?
# Notebook 05 measures how much of each network's attention falls on the **eyes**, the **nose** and
# the **mouth**. Those parts are defined once, from the five landmarks (`ferlib.explain.face_part_masks`):
# boxes fixed in the frame of the ArcFace template, carried onto each face by the similarity that
# aligns its five points (Umeyama's least-squares fit, IEEE TPAMI 1991, doi:[10.1109/34.88573](https://doi.org/10.1109/34.88573)),
# so they turn and scale with the face. Here the same parts are used to test the region
# definitions themselves: how much of a part does the region meant for it cover, and how much of the
# region is that part?

# %%
from ferlib.explain import face_part_masks

PART_COLOURS = {"eyes": "#0072B2", "nose": "#E69F00", "mouth": "#CC79A7"}
part_faces = ("frontal", "turned right (yaw +35°)", "turned left, tilted (yaw −30°, roll 10°)")
fig, axes = plt.subplots(1, len(part_faces), figsize=(2.9 * len(part_faces), 3.3))
for ax, name in zip(axes, part_faces):
    img, info = rendered[name]
    plots.show_face(ax, img, name)
    for part, mask in face_part_masks(info["landmarks5"], 224).items():
        ax.contour(mask[0], levels=[0.5], colors=PART_COLOURS[part], linewidths=1.4)
fig.legend(handles=[Line2D([0], [0], color=c, lw=1.6, label=p) for p, c in PART_COLOURS.items()],
           loc="lower center", ncol=3, fontsize=8, frameon=False)
fig.suptitle("Face parts from the five landmarks (SynthFER)", fontsize=10)
fig.tight_layout(rect=(0, 0.06, 1, 1))
ctx.show(fig, "face_parts")

# %%
parts = {k: v[0] for k, v in face_part_masks(lm5_np, 224).items()}


def boxes_mask(boxes_px):
    """Union of pixel boxes (x0, y0, x1, y1) as a 224×224 boolean mask."""
    m = np.zeros((224, 224), bool)
    for x0, y0, x1, y1 in np.clip(np.asarray(boxes_px, dtype=float), 0, 224):
        m[int(round(y0)):int(round(y1)), int(round(x0)):int(round(x1))] = True
    return m


region_for_part = {
    ("AMP-Net AP eye patches", "eyes"): np.asarray(fg["ap"][:2]) * STRIDE,
    ("AMP-Net AP mouth-corner patches", "mouth"): np.asarray(fg["ap"][3:]) * STRIDE,
    ("MAN left + right eye boxes", "eyes"): man_boxes["Table 2 as printed"][3:5],
    ("MAN eyes-and-brows, printed", "eyes"): man_boxes["Table 2 as printed"][1:2],
    ("MAN eyes-and-brows, landscape", "eyes"): man_boxes["landscape eyes-and-brows"][1:2],
    ("MAN nose box", "nose"): man_boxes["Table 2 as printed"][5:6],
    ("MAN mouth-corner boxes", "mouth"): man_boxes["Table 2 as printed"][6:8],
}
fit_rows = []
for (region, part), boxes in region_for_part.items():
    box_m, part_m = boxes_mask(boxes), parts[part]
    both = float((box_m & part_m).sum())
    fit_rows.append({"region": region, "part": part, "part covered": both / max(part_m.sum(), 1),
                     "region on the part": both / max(box_m.sum(), 1)})
part_fit = pd.DataFrame(fit_rows).set_index("region")
display(part_fit.round(2))
worst = part_fit["part covered"].idxmin()
tightest = part_fit["region on the part"].idxmax()
print(f"Every region covers at least {part_fit['part covered'].min():.0%} of its part (least: {worst}); "
      f"at most {part_fit['region on the part'].max():.0%} of a region is its part ({tightest}), i.e. the rest "
      f"is skin, brows or background around it.")
print(f"The printed eyes-and-brows box covers {part_fit.loc['MAN eyes-and-brows, printed', 'part covered']:.0%} "
      f"of the eyes, the landscape one {part_fit.loc['MAN eyes-and-brows, landscape', 'part covered']:.0%}.")

# %% [markdown]
# **Reading the table.** "part covered" is the share of the eyes (nose, mouth) mask inside the
# region meant for it: 1.0 means the region sees the whole part. "region on the part" is the share
# of the region that *is* the part: it stays well below 1 for every region, because the regions are built
# generously around their landmarks (a region must also hold the brows, wrinkles and the skin the
# muscles move). The two columns explain why the attention *inside* a region matters: a network
# that weights a region still has to find the part within it, and that is what the learnt spatial
# attention of AMP-Net, MA-Net, LAN and FFRA-Net, and RASnet's masks in MAN, are for. On a face that
# is not aligned like the papers' (too small, off-centre) the first column falls — the regions then
# no longer hold their parts.

# %% [markdown]
# ## Occluders placed by landmarks (FFRA-Net §4.1)
# FFRA-Net builds its occluded test sets (face masks, sunglasses) by placing the occluder with a
# transform computed from the eye and mouth landmarks. `ferlib.occlusion.occlude` does this
# procedurally and returns the occluder's pixel mask, which notebook 05 uses to measure how much
# attention falls on it. The table below measures which MAN regions each occluder hides.

# %%
fig, axes = plt.subplots(1, len(OCCLUDER_KINDS), figsize=(2.6 * len(OCCLUDER_KINDS), 2.9))
areas, covered = {}, {}
local_boxes = man_boxes["Table 2 as printed"]
for ax, kind in zip(axes, OCCLUDER_KINDS):
    occluded, mask = occlude(frontal_img, frontal_info["landmarks5"], kind, rng=seed)
    areas[kind] = float(mask.mean())
    covered[kind] = {}
    for name, box in zip(MAN_REGION_NAMES[1:], local_boxes[1:]):
        x0, y0, x1, y1 = (int(round(float(v))) for v in np.clip(box, 0, 224))
        covered[kind][name] = float(mask[y0:y1, x0:x1].mean()) if x1 > x0 and y1 > y0 else 0.0
    plots.show_face(ax, occluded, kind)
    ax.contour(mask, levels=[0.5], colors="#FF2D2D", linewidths=0.8)
fig.tight_layout()
ctx.show(fig, "occluders")
print("occluded share of the image:", {k: round(v, 2) for k, v in areas.items()})
coverage = pd.DataFrame(covered).T.round(2)
display(coverage)

# %%
most = {kind: max(row, key=row.get) for kind, row in covered.items()}
for kind in OCCLUDER_KINDS:
    print(f"{kind}: hides {areas[kind]:.0%} of the image and {covered[kind][most[kind]]:.0%} of MAN's "
          f"'{most[kind]}' region (its most-covered region).")

# %% [markdown]
# **Reading the occluders.** The red outline is the occluder's pixel mask. The table gives, per
# occluder, the share of each MAN region it hides (1.0 = the region is gone). An occluder that hides
# most of a small region removes that region's information, while the large eyes-and-brows and
# mouth-and-nose boxes keep some visible face. Where the most-covered region is not the part the
# occluder is meant for (sunglasses on the eyes, a mask on the mouth), the boxes are too large for
# the face or the face is not where the template puts it: compare the IOD printed at the top. This is the argument of
# the region-based papers: some regions survive any one occluder, so a network that weighs regions
# can shift its weight to them. Whether the trained networks do so is measured in notebook 05.

# %% [markdown]
# ## Explore
# Choose a face, turn it, drag one landmark: AMP-Net's regions follow the landmarks, MA-Net's
# split does not move, the MAN boxes follow the derived 8 points. (The static picture is the
# explorer's first frame, for readers without a live kernel.)

# %%
explorer = RegionExplorer(demo_faces(seed=0))
display(Image(explorer.render("turned right (yaw +35°)")))
explorer.widget()

# %% [markdown]
# ## Exercises
# Replace each `None` with your answer and run the cell below it; the check says whether it is
# right and gives a hint if not. (Left as `None`, a check only says "not answered yet".)
#
# **1.** On a 28×28 grid (r = 28) a face has $x_{top} = 12$ and $y_{center} = 15$. What is $l_{top}$
# (*AMP-Net, Eq. 3*), in cells?

# %%
answer_1 = None
check_answer(answer_1, name="Exercise 1 AMP-Net l_top", expected=min(12, 15, 28 - 12),
             hint="Eq. 3: the smallest of x_top, y_center and r − x_top.")

# %% [markdown]
# **2.** What is the side, in cells of the 28×28 grid, of one region of MA-Net's 3×3 split with
# overlap 1 (Table III)?

# %%
answer_2 = None
check_answer(answer_2, name="Exercise 2 MA-Net 3×3 overlap 1", expected=int(split_boxes[(3, 1)][0][2] - split_boxes[(3, 1)][0][0]),
             hint="side = (r + (n − 1)·overlap) / n with r = 28, n = 3.")

# %% [markdown]
# **3.** How many cells of the 14×14 map does this face's *left eye* ground-truth mask switch on
# (*MAN, Eq. 4*)? Work it out from the box (0.27 W = 60.5 px, λ = 1/16) before you count in the
# figure.

# %%
answer_3 = None
check_answer(answer_3, name="Exercise 3 MAN left-eye mask cells", expected=int(masks[0, 3].sum()),
             hint="60.5 px × 1/16 ≈ 3.8 cells per side: 3 or 4 cells in x and in y, depending on where the box starts.")

# %% [markdown]
# **4.** Which MAN region (a name from `MAN_REGION_NAMES`, without the whole image) do the
# sunglasses cover most? (Where two regions tie within one percentage point, either is right.)

# %%
answer_4 = None
sunglasses_top = {r for r, v in covered["sunglasses"].items() if v >= max(covered["sunglasses"].values()) - 0.01}
check_answer(answer_4, name="Exercise 4 sunglasses", expected=sunglasses_top,
             hint="Look at the coverage table: the sunglasses row, the largest share.")

# %% [markdown]
# **5.** True or false: on this notebook's frontal face, AMP-Net's pose-based division is (within one
# cell) the same as MA-Net's 2×2 split without overlap.

# %%
answer_5 = None
check_answer(answer_5, name="Exercise 5 PBD vs 2×2", expected=bool(quadrant_like),
             hint="Compare the division point printed in the AMP-Net section with the grid's centre, cell 14.")

# %% [markdown]
# ## What you now know
# - Each network's regions live on a feature grid (28×28 for AMP-Net and MA-Net, 14×14 for MAN and
#   FFRA-Net, 7×7 for LAN); a landmark error of one cell is 8–32 px in the image.
# - AMP-Net's pose-based division follows the nose and the eye and mouth midpoints, with two special
#   cases for faces near a border; it equals MA-Net's 2×2 split only when the nose tip sits at the
#   grid's centre, which on the papers' aligned geometry it does not.
# - MA-Net's and FFRA-Net's splits are fixed: they fall on the intended parts only for aligned faces,
#   and finer splits (3×3) leave regions without any facial landmark.
# - MAN's Table 2 boxes are large relative to the face (single-part boxes about one IOD wide), and the
#   printed eyes-and-brows box is tall; ferlib keeps it and offers the landscape reading.
# - LAN's guidance comes from clustering a backbone's features; it means something only once the
#   backbone has learnt face features.
# - Occluders placed from landmarks hide specific regions; region-based networks can move their
#   weight to the regions left visible.
#
# **Next:** notebook 03 trains the networks on SynthFER and compares them with their uncertainty;
# notebook 05 then draws the attention each trained network computes inside these regions.

# %%
ctx.record(
    headline=["frontal_lp_side", "special_case_1_right_top_side", "man_mask_cells_whole"],
    frontal_lp_side=int(case_boxes["frontal face"][0][2] - case_boxes["frontal face"][0][0]),
    special_case_1_right_top_side=int(case_boxes[list(cases)[1]][1][2] - case_boxes[list(cases)[1]][1][0]),
    man_mask_cells_whole=int(masks[0, 0].sum()),
    ap_boxes_frontal=ap,
    occluder_area=areas,
    frontal_iod_px=iod,
    template_offset_px=offset,
    man_eyes_box_below_nose=below_nose,
    occluder_man_coverage=covered,
    part_covered={r: float(v) for r, v in part_fit["part covered"].items()},
)
