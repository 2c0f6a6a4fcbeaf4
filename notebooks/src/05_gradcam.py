# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · What the networks look at: Grad-CAM per branch
#
# Grad-CAM weights a layer's activation maps $A^k$ by the average gradient of the class score $y^c$:
# $$L^c_{\text{Grad-CAM}} = \mathrm{ReLU}\Big(\sum_k \alpha_k^c A^k\Big),\qquad \alpha_k^c = \frac{1}{Z}\sum_{i,j} \frac{\partial y^c}{\partial A^k_{ij}}.$$
# The papers use it to show that their attention lands on the eyes and mouth (AMP-Net Fig. 10,
# MA-Net Fig. 7, LAN Fig. 3, FFRA-Net Fig. 6, MAN Fig. 7). ferlib does not re-implement it: the
# models name their per-branch target layers (`model.cam_targets()`), and the notebook calls
# **pytorch-grad-cam** directly; `ferlib.explain` only adapts a model that needs landmarks into
# an `images → logits` module and pastes AMP-Net's patch-local AP maps back onto the face.
#
# The models are the ones notebook 03 trained, on the dataset and profile it printed; with SynthFER
# and a small profile they are weak, and their maps say more about the pipeline than about faces.

# %% tags=["parameters"]
profile = None  # None → $FERLIB_PROFILE, else "default"; or "smoke" / "default" / "full"
dataset = "synthfer"
data_root = None
models = None  # None → the models notebook 03 trained (else the profile's, untrained)
device = "auto"
seed = 0
run_dir = None

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Image, display

from ferlib import explain, plots
from ferlib.data.labels import class_names
from ferlib.data.schema import collate_samples
from ferlib.data.synthfer import SynthFERDataset, resolve_config
from ferlib.data.transforms import normalize_images
from ferlib.models import create_model
from ferlib.study import prepare_notebook
from ferlib.train import read_checkpoint
from ferlib.widgets import CamExplorer

ctx = prepare_notebook("05_gradcam.ipynb", profile=profile, dataset=dataset, data_root=data_root,
                       models=models, device=device, seed=seed, run_dir=run_dir)
print(ctx.describe())
names = class_names(7)

# %%
# NBVAL_CHECK_OUTPUT
for name in ("resnet18", "ma-net", "lan"):
    print(f"{name} Grad-CAM targets:", ", ".join(create_model(name).cam_targets()))
probe = create_model("resnet18").eval()
cam = explain.compute_cams(probe, torch.zeros(1, 3, 224, 224), probe.cam_targets()["layer4"], classes=[0])
print("one CAM:", cam.shape, cam.dtype)
del probe

# %% [markdown]
# ## The trained models and the images
# Checkpoints come from notebook 03's run folder (validation-selected epoch). Images: SynthFER test
# identities, `cam_per_class` per class from the profile, a share of them occluded (masks, sunglasses,
# hands, patches) with the occluder's exact pixel mask.

# %%
trained = (ctx.metrics_of("03_training") or {}).get("models", {})
wanted = list(models) if models is not None else (list(trained) or list(ctx.models))
nets, status = {}, {}
for name in wanted:
    if name in trained:
        ck = read_checkpoint(ctx.path(trained[name]["checkpoint"]))
        net = create_model(ck["model_name"], num_classes=ck["num_classes"], **ck["model_kwargs"])
        net.load_state_dict(ck["model"])
        status[name] = f"trained in notebook 03 (test accuracy {trained[name]['accuracy']:.3f})"
    else:
        net = create_model(name)
        status[name] = "UNTRAINED (notebook 03 did not train it): maps show the mechanics only"
    nets[name] = net.eval()
for name, text in status.items():
    print(f"{name}: {text}")

if ctx.synthetic:
    # the training preset's faces, half of them occluded, with the occluder's pixel mask
    cfg = resolve_config({"preset": ctx.synthfer_preset, "return_occluder_mask": True,
                          "occlusion_probs": {"none": 0.5, "mask": 0.15, "sunglasses": 0.15, "hand": 0.1, "random": 0.1}})
    pool = SynthFERDataset(7 * max(2, ctx.profile.cam_per_class) * 2, seed=seed + 1000, split="test", config=cfg)
else:
    from ferlib.train.evaluate import build_eval_dataset

    pool = build_eval_dataset(ctx.dataset, ctx.data_root, split="test")
picked, per_class = [], {c: 0 for c in range(7)}
for i in range(len(pool)):
    s = pool[i]
    if per_class[s["label"]] < ctx.profile.cam_per_class:
        picked.append(s)
        per_class[s["label"]] += 1
    if len(picked) == 7 * ctx.profile.cam_per_class:
        break
batch = collate_samples(picked)
images = normalize_images(batch["image"])
labels = batch["label"].tolist()
print(f"{len(picked)} images ({ctx.dataset_label}), classes {sorted(set(labels))}")

# %% [markdown]
# ## Per-branch Grad-CAM
# One row per target layer: AMP-Net's global (GP), local (LP, the 14×14 canvas of the four padded
# regions) and five AP patches; MA-Net's multi-scale and local branches; LAN's backbone ($F_o$) and
# its attention module; FFRA-Net's pre-extractor, modules, fused map and last stage.

# %%
show = min(ctx.profile.cam_images, len(picked))
all_cams = {}
for name, net in nets.items():
    preds = explain.predicted_classes(net, images, **explain.model_inputs(net, batch))
    cams = explain.branch_cams(net, images[:show], {k: v[:show] if hasattr(v, "shape") else v for k, v in batch.items()},
                               classes=preds[:show], method="GradCAM")
    all_cams[name] = (preds, cams)
    fig, axes = plt.subplots(len(cams), show, figsize=(2.1 * show, 2.2 * len(cams)), squeeze=False)
    for r, (target, stack) in enumerate(cams.items()):
        for c in range(show):
            ax = axes[r, c]
            ax.imshow(explain.overlay(batch["image"][c], stack[c]))
            ax.set_xticks([]); ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(target, fontsize=8)
            if r == 0:
                ax.set_title(f"true {names[labels[c]]}\npred {names[preds[c]]}", fontsize=8)
    fig.suptitle(f"{name}: Grad-CAM per branch — {ctx.dataset_label}", fontsize=9)
    fig.tight_layout()
    ctx.show(fig, f"branches_{name}", dpi=72)

# %% [markdown]
# ## Per class, like the papers' figures
# The best model of notebook 03, its main layer, one column per class.

# %%
best = max(nets, key=lambda n: trained.get(n, {}).get("accuracy", -1))
net = nets[best]
target = explain.primary_target(net)
preds = explain.predicted_classes(net, images, **explain.model_inputs(net, batch))
cams = explain.compute_cams(net, images, net.cam_targets()[target], classes=labels, **explain.model_inputs(net, batch))
fig = plots.class_grid(batch["image"], labels, names, per_class=ctx.profile.cam_per_class,
                       overlays=[explain.overlay(batch["image"][i], cams[i]) for i in range(len(labels))],
                       captions=[f"pred {names[p]}" for p in preds],
                       title=f"{best} / {target}: Grad-CAM of the true class — {ctx.dataset_label}")
ctx.show(fig, f"per_class_{best}", dpi=80)

# %% [markdown]
# ## CAM methods side by side
# The profile chooses the methods: the fast ones (GradCAM, HiResCAM) in `smoke`/`default`; ScoreCAM
# and AblationCAM, which run the network once per activation channel, only in `full`.

# %%
fig, axes = plt.subplots(1, len(ctx.profile.cam_methods) + 1, figsize=(2.4 * (len(ctx.profile.cam_methods) + 1), 2.6))
plots.show_face(axes[0], batch["image"][0], f"true {names[labels[0]]}")
for ax, method in zip(axes[1:], ctx.profile.cam_methods):
    m = explain.compute_cams(net, images[:1], net.cam_targets()[target], classes=labels[:1], method=method,
                             **{k: v[:1] for k, v in explain.model_inputs(net, batch).items()})
    plots.show_face(ax, explain.overlay(batch["image"][0], m[0]), method)
fig.tight_layout()
ctx.show(fig, "methods")

# %% [markdown]
# ## Misclassified examples
# Where did the best model look when it was wrong? (CAM of the predicted class.)

# %%
wrong = [i for i in range(len(labels)) if preds[i] != labels[i]][: ctx.profile.cam_images]
if wrong:
    wcams = explain.compute_cams(net, images[wrong], net.cam_targets()[target], classes=[int(preds[i]) for i in wrong],
                                 **{k: v[wrong] for k, v in explain.model_inputs(net, batch).items()})
    fig, axes = plt.subplots(1, len(wrong), figsize=(2.3 * len(wrong), 2.6), squeeze=False)
    for ax, i, c in zip(axes[0], wrong, wcams):
        plots.show_face(ax, explain.overlay(batch["image"][i], c), f"true {names[labels[i]]}\npred {names[preds[i]]}")
    fig.tight_layout()
    ctx.show(fig, "misclassified")
print(f"{best}: {len(wrong)} misclassified faces shown; {sum(int(p != t) for p, t in zip(preds, labels))} of {len(labels)} wrong")

# %% [markdown]
# ## Guided Grad-CAM (man.txt Fig. 7)
# Grad-CAM times guided backpropagation (pytorch-grad-cam's `GuidedBackpropReLUModel`): sharp
# detail where the coarse map is high. The Multiple Attention Network when notebook 03 trained it
# (the `full` profile), otherwise the best model.

# %%
guided_name = "man" if "man" in nets else best
gnet = nets[guided_name]
gtarget = explain.primary_target(gnet)
n_guided = min(3, ctx.profile.cam_images)
guided = explain.guided_gradcam(gnet, images[:n_guided], gnet.cam_targets()[gtarget], classes=labels[:n_guided],
                                **{k: v[:n_guided] for k, v in explain.model_inputs(gnet, batch).items()})
fig, axes = plt.subplots(1, len(guided), figsize=(2.4 * len(guided), 2.6))
for ax, g, t in zip(np.atleast_1d(axes), guided, labels[:n_guided]):
    plots.show_face(ax, g, f"{guided_name}: {names[t]}")
fig.tight_layout()
ctx.show(fig, "guided_gradcam")

# %% [markdown]
# ## Attention on occluders (ffra-net.txt §4.5)
# For each occluded face: the share of the CAM's mass that lies on the occluder's pixels, divided by
# the occluder's share of the image (1 = no preference, below 1 = attention avoids the occluder).

# %%
occluded = [i for i, s in enumerate(picked) if s["meta"].get("occlusion", "none") != "none" and "occluder_mask" in s]
occluded = occluded[: 2 * ctx.profile.cam_images]
occ_rows = []
for name, net_ in nets.items():
    if not occluded:
        break
    layer = net_.cam_targets()[explain.primary_target(net_)]
    ocams = explain.compute_cams(net_, images[occluded], layer,
                                 **{k: v[occluded] for k, v in explain.model_inputs(net_, batch).items()})
    stats = [explain.occluder_cam_mass(c, picked[i]["occluder_mask"]) for c, i in zip(ocams, occluded)]
    occ_rows.append({"model": name, "layer": explain.primary_target(net_), "faces": len(stats),
                     "CAM mass on occluder": round(float(np.nanmean([s["mass"] for s in stats])), 3),
                     "occluder area": round(float(np.mean([s["area"] for s in stats])), 3),
                     "ratio": round(float(np.nanmean([s["ratio"] for s in stats])), 2)})
occ_table = pd.DataFrame(occ_rows)
display(occ_table.set_index("model") if len(occ_table) else "no occluded faces in this sample")

# %% [markdown]
# ## Explore
# Choose a model, a target layer, a method and an image. (The static picture is the first frame.)

# %%
explorer = CamExplorer(nets, images, batch["image"], batch, names, methods=list(ctx.profile.cam_methods))
first = list(nets)[0]
frame, caption = explorer.overlay(first, explain.primary_target(nets[first]), 0)
fig, ax = plt.subplots(figsize=(3, 3.2))
plots.show_face(ax, frame, caption.split(":")[0])
ctx.show(fig, "explorer_frame")
explorer.widget()

# %%
ctx.record(
    headline=["occluder_ratio_mean", "best_model", "misclassified"],
    occluder_ratio_mean=float(occ_table["ratio"].mean()) if len(occ_table) else None,
    occluder=occ_table.to_dict(orient="records"),
    best_model=best, misclassified=int(sum(int(p != t) for p, t in zip(preds, labels))),
    images=len(labels), methods=list(ctx.profile.cam_methods),
)
