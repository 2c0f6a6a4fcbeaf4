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
# Every model in this study splits the face before it attends to it. The split is made on the
# **28×28 feature grid** of the pre-extractor (a 224-px face, stride 8): a landmark at pixel
# $(x, y)$ falls in cell $\mathrm{round}(x \cdot 28/224)$. This notebook draws each model's regions on
# faces and on that grid, for a frontal, an occluded and a turned face, and ends with an explorer
# in which you turn the face and move the landmarks yourself.
#
# All faces here come from **SynthFER**, ferlib's *synthetic* face renderer, which knows its exact
# landmarks. Nothing below is a result of any paper.

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
import torch
import matplotlib.pyplot as plt
from IPython.display import Image, display

from ferlib import plots
from ferlib.data.synthfer import render_face
from ferlib.models import create_model, regions
from ferlib.models.ma_net import TABLE_III_STRATEGIES, ma_net_regions
from ferlib.models.man_masks import MAN_REGION_NAMES, ground_truth_masks, landmarks5_to_8, region_boxes
from ferlib.occlusion import OCCLUDER_KINDS, occlude
from ferlib.study import prepare_notebook
from ferlib.widgets import RegionExplorer, demo_faces

ctx = prepare_notebook("02_subregions.ipynb", profile=profile, dataset=dataset, data_root=data_root,
                       models=models, device=device, seed=seed, run_dir=run_dir)
print(ctx.describe())
torch.set_grad_enabled(False)
faces = demo_faces(seed=0)
rendered = {name: render_face(p) for name, p in faces.items()}

# %% [markdown]
# ## The faces and their five points
# RetinaFace order: the subject's right eye (image left), left eye, nose tip, right and left mouth
# corners. SynthFER renders them exactly, so the geometry below is not blurred by detector error.

# %%
fig, axes = plt.subplots(1, len(rendered), figsize=(2.6 * len(rendered), 2.9))
for ax, (name, (img, info)) in zip(axes, rendered.items()):
    plots.show_face(ax, img, name)
    plots.draw_landmarks(ax, info["landmarks5"], names=None)
fig.tight_layout()
ctx.show(fig, "faces")

# %%
# NBVAL_CHECK_OUTPUT
frontal_img, frontal_info = rendered["frontal"]
lm5 = torch.as_tensor(frontal_info["landmarks5"])[None]
grid_lm = regions.landmarks_to_grid(lm5, (224, 224), 28)
print("landmarks5:", tuple(lm5.shape[1:]), "landmarks8:", frontal_info["landmarks8"].shape,
      "contour points:", frontal_info["landmarks"].shape)
print("frontal face, 5 points on the 28×28 grid:", grid_lm[0].int().tolist())

# %% [markdown]
# ## AMP-Net: pose-based division and location-based padding (amp-net.txt §III-C)
# The division points come from the landmarks on the grid (Eq. 2)
# $$x_{top} = \lfloor (x_{eye1} + x_{eye2})/2 \rfloor,\quad x_{bottom} = \lfloor (x_{mouth1} + x_{mouth2})/2 \rfloor,\quad y_{center} = y_{nose},$$
# and each pair of regions is a square of side (Eq. 3)
# $$l_{top} = \min(x_{top},\ y_{center},\ r - x_{top}),\qquad l_{bottom} = \min(x_{bottom},\ r - y_{center},\ r - x_{bottom})$$
# anchored at its division point (Eq. 4). Two special cases keep the regions useful on turned faces:
# **(1)** when $l < r/3$ because the face sits near a border, the region on the other side grows to
# $\min(\text{its room}, r/2)$; **(2)** when a region misses its own eye or mouth corner, it is
# lengthened towards it. *Location-based padding* then copies each region into the corner of a
# 14×14 map that touches its division point, so that the four maps stay aligned however the face
# turns. The five dashed **AP patches** are $L\times L$ squares (L = 10) around the eyes, their middle
# and the mouth corners (Eq. 6).

# %%
for name in ("frontal", "face mask", "turned right (yaw +35°)"):
    img, info = rendered[name]
    fig = plots.plot_amp_net_regions(img, info["landmarks5"], title=f"AMP-Net regions — {name} (SynthFER)")
    ctx.show(fig, "amp_net_" + name.split(" (")[0].replace(" ", "_"))

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

# %% [markdown]
# ## MA-Net: a fixed split of the grid (ma-net.txt §III-C, Table III)
# MA-Net ignores landmarks: the 28×28 map is cut into equal regions, neighbours sharing
# `overlap` rows/columns. The paper keeps 2×2 without overlap; Table III also tries 1×1, 2×2
# overlapping by 6 and 3×3 overlapping by 1 or 7.

# %%
# NBVAL_CHECK_OUTPUT
strategies = [(1, 0)] + [tuple(s) for s in TABLE_III_STRATEGIES if tuple(s) != (1, 0)]
fig, axes = plt.subplots(1, len(strategies), figsize=(2.6 * len(strategies), 2.8))
for ax, (split, overlap) in zip(axes, strategies):
    boxes = ma_net_regions(28, split, overlap)
    print(f"{split}×{split}, overlap {overlap}: region side {int(boxes[0, 2] - boxes[0, 0])}, "
          f"starts {sorted({int(b[0]) for b in boxes})}")
    plots.plot_grid_boxes(boxes, 28, title=f"{split}×{split} / overlap {overlap}", ax=ax, image=frontal_img)
fig.tight_layout()
ctx.show(fig, "ma_net_splits")

# %% [markdown]
# ## Multiple Attention Network: 8 regions from 8 points (man.txt §III-A, Table 2, Eq. 4)
# RASnet learns to predict 8 masks on the 14×14 map of VGG16's conv block 4; its targets are boxes
# around landmark pairs (Table 2), turned into masks with scale $\lambda = 1/16$:
# $M_r(i, j) = 1$ when $\lambda(x - w/2) \le i \le \lambda(x + w/2)$ and
# $\lambda(y - h/2) \le j \le \lambda(y + h/2)$. SynthFER renders the 8 points; for datasets with only
# 5, ferlib derives them (`landmarks5_to_8`).

# %%
# NBVAL_CHECK_OUTPUT
lm8 = torch.as_tensor(frontal_info["landmarks8"])[None]
masks = ground_truth_masks(lm8)
print("ground-truth masks:", tuple(masks.shape), "cells per region:", masks[0].sum((1, 2)).int().tolist())
derived = landmarks5_to_8(lm5)
print("8 points derived from 5 vs rendered: mean distance %.1f px" % (derived - lm8).norm(dim=-1).mean())

# %%
fig = plots.plot_masks(masks[0], MAN_REGION_NAMES, image=frontal_img,
                       title="MAN ground-truth region masks (Table 2, Eq. 4) on a SynthFER face")
ctx.show(fig, "man_gt_masks")
man = create_model("man").eval()
out = man(plots.torch_image(frontal_img))
print("RASnet predicted masks:", tuple(out.aux["masks"].shape), "(untrained: random until notebook 03 trains it)")
fig = plots.plot_masks(out.aux["masks"][0], MAN_REGION_NAMES, image=frontal_img,
                       title="RASnet's predicted masks, untrained network")
ctx.show(fig, "man_predicted_masks")
del man

# %% [markdown]
# ## LAN: attention guidance maps (lan.txt §III-C, Eqs. 3–4)
# LAN does not use landmarks. It clusters the 7×7 conv5 features of a backbone at each position
# into K = 2 groups; the smaller group is "attentive", and a face's guidance map marks the positions
# whose feature lies nearer the attentive centre. The paper clusters a *pre-trained* backbone; here
# the backbone is untrained, so the maps only show the mechanics (notebook 03 fits them after a
# warm-up).

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
fig = plots.class_grid(batch["image"], list(range(7)), [f"face {i}" for i in range(7)], per_class=1,
                       overlays=[plots.heat_overlay(batch["image"][i], maps[i]) for i in range(7)],
                       title="LAN guidance maps (7×7), untrained backbone: mechanics only")
ctx.show(fig, "lan_guidance")

# %%
# NBVAL_CHECK_OUTPUT
print("guidance maps:", tuple(maps.shape), "(one 7×7 map of 0/1 per face)")

# %% [markdown]
# ## FFRA-Net: a spatial split inside the local attention module (ffra-net.txt §3.2)
# FFRA-Net splits the pre-extractor's map into m = 4 local maps (a 2×2 grid), runs each through a
# 3×3 convolution and shuffle attention in a cascade (Eq. 4), and re-assembles them. ferlib's
# pre-extractor ends after ResNet-18's layer3 (see `ferlib.models.ffra_net`), so the split is on a
# 14×14 map.

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

# %% [markdown]
# ## Occluders placed by landmarks (ffra-net.txt §4.1)
# FFRA-Net builds FM_RAF-DB and SG_RAF-DB by placing masks and sunglasses with a transform computed
# from the eye and mouth landmarks. `ferlib.occlusion.occlude` does this procedurally and returns the
# occluder's pixel mask, which notebook 05 uses to measure how much attention falls on it.

# %%
fig, axes = plt.subplots(1, len(OCCLUDER_KINDS), figsize=(2.6 * len(OCCLUDER_KINDS), 2.9))
areas = {}
for ax, kind in zip(axes, OCCLUDER_KINDS):
    occluded, mask = occlude(frontal_img, frontal_info["landmarks5"], kind, rng=seed)
    areas[kind] = float(mask.mean())
    plots.show_face(ax, occluded, kind)
    ax.contour(mask, levels=[0.5], colors="#FF2D2D", linewidths=0.8)
fig.tight_layout()
ctx.show(fig, "occluders")
print("occluded share of the image:", {k: round(v, 2) for k, v in areas.items()})

# %% [markdown]
# ## Explore
# Choose a face, turn it, drag one landmark: AMP-Net's regions follow the landmarks, MA-Net's
# split does not move, the MAN boxes follow the derived 8 points. (The static picture is the
# explorer's first frame, for readers without a live kernel.)

# %%
explorer = RegionExplorer(demo_faces(seed=0))
display(Image(explorer.render("turned right (yaw +35°)")))
explorer.widget()

# %%
ctx.record(
    headline=["frontal_lp_side", "special_case_1_right_top_side", "man_mask_cells_whole"],
    frontal_lp_side=int(case_boxes["frontal face"][0][2] - case_boxes["frontal face"][0][0]),
    special_case_1_right_top_side=int(case_boxes[list(cases)[1]][1][2] - case_boxes[list(cases)[1]][1][0]),
    man_mask_cells_whole=int(masks[0, 0].sum()),
    ap_boxes_frontal=ap,
    occluder_area=areas,
)
