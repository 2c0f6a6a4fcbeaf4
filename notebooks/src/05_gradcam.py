# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · What the networks look at: their own attention beside Grad-CAM
#
# Every network of this course computes attention: AMP-Net a CBAM spatial map in each pose-based
# region and landmark patch, MA-Net one in each of its four local regions, LAN a map it is taught to
# match to a guidance map, MAN eight RASnet masks weighted per face by ERSnet, FFRA-Net a shuffle
# attention in each local map. This notebook draws **that attention**, mapped back from each
# network's own canvas to the face, beside **Grad-CAM**, the post-hoc explanation the papers show
# (AMP-Net Fig. 10, MA-Net Fig. 7, LAN Fig. 3, MAN Fig. 7, FFRA-Net Fig. 6). Grad-CAM weights a
# layer's activation maps $A^k$ by the average gradient of the class score $y^c$ (Selvaraju et al.,
# Eqs. 1–2):
# $$L^c_{\text{Grad-CAM}} = \mathrm{ReLU}\Big(\sum_k \alpha_k^c A^k\Big),\qquad \alpha_k^c = \frac{1}{Z}\sum_{i,j} \frac{\partial y^c}{\partial A^k_{ij}}.$$
# Attention is what the network *multiplies its features by*; Grad-CAM is what *moved the score*.
# They need not agree, and where they disagree is the lesson. Then we measure instead of looking: the
# share of each map on the eyes, nose and mouth (from SynthFER's exact landmarks), and whether the
# CAM survives Adebayo et al.'s randomisation test.
#
# The models are the ones notebook 03 trained (checkpoint of the epoch chosen on validation). On
# SynthFER — **synthetic** cartoon faces — and a small profile they are weak; what their maps show is
# about this pipeline and these faces, not a reproduction of any paper's figure.
#
# **References**
# - R. R. Selvaraju et al., "Grad-CAM: Visual explanations from deep networks via gradient-based
#   localization", ICCV 2017, doi:10.1109/ICCV.2017.74.
# - R. L. Draelos & L. Carin, "Use HiResCAM instead of Grad-CAM for faithful explanations of
#   convolutional neural networks", 2020, arXiv:2011.08891.
# - J. Adebayo et al., "Sanity checks for saliency maps", NeurIPS 2018, arXiv:1810.03292.
# - S. Woo et al., "CBAM: Convolutional block attention module", ECCV 2018, doi:10.1007/978-3-030-01234-2_1.
# - H. Liu et al., AMP-Net, IEEE TCSVT 2022, doi:10.1109/TCSVT.2022.3165321 (amp-net.txt).
# - Z. Zhao, Q. Liu & S. Wang, MA-Net, IEEE TIP 2021, doi:10.1109/TIP.2021.3093397 (ma-net.txt).
# - S. Cho & J. Lee, LAN (local attention network with guidance map), IEEE Access 2022,
#   doi:10.1109/ACCESS.2022.3198658 (lan.txt).
# - Y. Gan et al., MAN (multiple attention network), IEEE Access 2020, doi:10.1109/ACCESS.2020.2963913 (man.txt).
# - Y. Chen et al., FFRA-Net (feature fusion residual attention network), Frontiers in Neurorobotics 2023,
#   doi:10.3389/fnbot.2023.1250706 (ffra-net.txt).
# - J. Deng et al., ArcFace (the 5-point template the face parts are defined on), CVPR 2019,
#   doi:10.1109/CVPR.2019.00482.

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
from IPython.display import display

from ferlib import explain, plots
from ferlib.data.labels import class_names
from ferlib.data.schema import collate_samples
from ferlib.data.synthfer import SynthFERDataset, resolve_config
from ferlib.data.transforms import normalize_images
from ferlib.models import create_model
from ferlib.study import prepare_notebook
from ferlib.study.exercises import check_answer
from ferlib.train import read_checkpoint
from ferlib.train.guidance import TrainingGuidance
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
# Checkpoints come from notebook 03's run folder: the epoch chosen on the **validation** split. The
# model explained alone further down is the one with the best validation accuracy — never the test
# accuracy, which would make the test set part of the choice. LAN's checkpoint also holds the
# guidance annotator it was trained with (lan.txt §III-C), so its guidance maps can be drawn.
# Images: SynthFER test identities, `cam_per_class` per class, a share of them occluded (masks,
# sunglasses, hands, patches) with the occluder's exact pixel mask.

# %%
trained = (ctx.metrics_of("03_training") or {}).get("models", {})
wanted = list(models) if models is not None else (list(trained) or list(ctx.models))
nets, status, val_acc, guidance = {}, {}, {}, {}
for name in wanted:
    if name in trained:
        ck = read_checkpoint(ctx.path(trained[name]["checkpoint"]))
        net = create_model(ck["model_name"], num_classes=ck["num_classes"], **ck["model_kwargs"])
        net.load_state_dict(ck["model"])
        score = trained[name].get("val_accuracy", (ck.get("best") or {}).get("score"))
        val_acc[name] = float(score) if score is not None else float("nan")
        status[name] = f"trained in notebook 03 (validation accuracy {val_acc[name]:.3f})"
        if val_acc[name] <= 1.5 / len(names):  # within half a chance level of guessing
            status[name] = f"AT CHANCE in notebook 03 (validation accuracy {val_acc[name]:.3f}, chance {1 / len(names):.3f})"
        if ck.get("guidance") is not None:
            tg = TrainingGuidance()
            tg.restore(net, ck["guidance"], torch.device("cpu"))
            guidance[name] = tg.maps
    else:
        net = create_model(name)
        status[name] = "UNTRAINED (notebook 03 did not train it): maps show the mechanics only"
    nets[name] = net.eval()
for name, text in status.items():
    print(f"{name}: {text}")
if any(t.startswith("AT CHANCE") for t in status.values()):
    print("Models at chance have learnt (almost) nothing: their maps show the mechanics of the network, not what it "
          "uses to recognise expressions. The `lecture` profile trains every network well above chance.")

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
faces = list(batch["image"])
print(f"{len(picked)} images ({ctx.dataset_label}), classes {sorted(set(labels))}")

# %% [markdown]
# ## Each network's own attention beside its Grad-CAM
# One figure per network, one row per face. Purple/yellow panels are the network's **own attention**
# on a fixed 0–1 scale (the gate value it multiplies its features by; transparent where the map says
# nothing, e.g. outside an AMP-Net region). Rainbow panels are **Grad-CAM** of the predicted class,
# each map scaled to its own peak; a map with no positive evidence is labelled *empty* rather than
# stretched into noise. AMP-Net's `lp` and MA-Net's `local` Grad-CAM (the CAM of the attention branch
# itself) are shown too, AMP-Net's put back from its padded region canvases onto the face like its
# attention. Region maps are shown combined (the maximum over AMP-Net's four LP regions,
# over its five AP patches, over MA-Net's four local regions): each region's map sits at the region's
# place on the face, cut out of the padded canvas the branch actually saw.
#
# What to look for: does the attention single out facial parts at all (a gate near one value
# everywhere is a network that has not learnt to attend), and does Grad-CAM light up where the
# attention is high? A region branch can only "look" inside its own box, so its Grad-CAM cannot
# leave it either.

# %%
show = min(ctx.profile.cam_images, len(picked))
sl = slice(0, show)
sub = {k: v[sl] if hasattr(v, "shape") else v for k, v in batch.items()}


MAN_SHOWN = ("mask_eyes_with_brows", "mask_mouth_with_nose", "mask_nose")  # three of MAN's eight masks


def combined_maps(maps, all_masks=False):
    """Group region maps by their prefix (lp_*, ap_*, local_*) into one map per group (maximum);
    of MAN's masks only MAN_SHOWN unless ``all_masks`` (all eight are drawn in the MAN section)."""
    groups = {}
    for key, stack in maps.items():
        if key.startswith("mask_") and key not in MAN_SHOWN and not all_masks:
            continue
        head = key.split("_", 1)[0] if key.split("_", 1)[0] in ("lp", "ap", "local") else key
        groups.setdefault(head, []).append(stack)
    return {k: np.max(np.stack(v), axis=0) for k, v in groups.items()}


own, own_weights, cams_pred, preds_all = {}, {}, {}, {}
for name, net in nets.items():
    inputs = explain.model_inputs(net, batch)
    preds_all[name] = explain.predicted_classes(net, images, **inputs)
    result = explain.own_attention(net, images, batch["landmarks5"], batch.get("landmarks8"), guidance=guidance.get(name))
    own[name], own_weights[name] = result["maps"], result["weights"]
    target = explain.primary_target(net)
    cams_pred[name] = explain.branch_cams(net, images[sl], sub, classes=preds_all[name][sl], branches=[target])[target]
    columns, kinds = {}, {}
    for key, stack in combined_maps(own[name]).items():
        columns[f"{key} (attention)"], kinds[f"{key} (attention)"] = stack[sl], "attention"
    columns[f"Grad-CAM {target}"] = cams_pred[name]
    for branch in [t for t in ("lp", "local") if t in net.cam_targets() and t != target]:  # the attention branch's own CAM
        columns[f"Grad-CAM {branch}"] = explain.branch_cams(net, images[sl], sub, classes=preds_all[name][sl],
                                                            branches=[branch])[branch]
    rows = [f"true {names[labels[i]]}, pred {names[preds_all[name][i]]}" for i in range(show)]
    fig = plots.map_grid(faces[:show], columns, kinds, row_labels=rows,
                         title=f"{name} — own attention vs Grad-CAM ({status[name].split(' (')[0]}) — {ctx.dataset_label}")
    ctx.show(fig, f"attention_vs_cam_{name}", dpi=72)

# %% [markdown]
# **Reading it.** The numbers below are computed from this run: how far each attention map departs
# from a constant gate (its spread across the face), and how much of the Grad-CAM mass falls inside
# the region where the network's own attention is above its median.

# %%
def spread(stack):
    inside = stack[stack > 0]
    return float(inside.std()) if inside.size else float("nan")


agreement_rows = []
for name in nets:
    groups = combined_maps(own[name])
    if not groups:
        print(f"{name}: no attention of its own (a plain CNN); only Grad-CAM explains it.")
        continue
    for key, stack in groups.items():
        top = stack[sl] > np.median(stack[sl][stack[sl] > 0]) if (stack[sl] > 0).any() else np.zeros_like(stack[sl], bool)
        share = explain.mass_on_mask(cams_pred[name], top)
        defined = top.any() and np.isfinite(share).any()  # a constant gate has no upper half; an empty CAM no mass
        agreement_rows.append({"model": name, "attention": key, "gate spread (sd)": round(spread(stack), 3),
                               "Grad-CAM mass where attention > median": round(float(np.nanmean(share)), 3) if defined else None,
                               "area of that region": round(float(top.mean()), 3)})
agreement = pd.DataFrame(agreement_rows)
display(agreement)
for r in agreement.to_dict(orient="records"):
    sd, cam_share, area = r["gate spread (sd)"], r["Grad-CAM mass where attention > median"], r["area of that region"]
    if cam_share is None or not np.isfinite(cam_share):
        print(f"{r['model']} / {r['attention']}: spread {sd:.3f} — a constant gate (or only empty CAMs): "
              "nothing to compare; this attention does not single anything out.")
        continue
    verdict = ("more than its area: Grad-CAM and attention point the same way"
               if cam_share > area + 0.05 else "about its area or less: the two maps do not agree")
    flat = " (nearly flat gate: this attention has not learnt to single anything out)" if sd < 0.02 else ""
    print(f"{r['model']} / {r['attention']}: spread {sd:.3f}{flat}; Grad-CAM puts {cam_share:.0%} of its mass on the "
          f"upper half of the attention, which covers {area:.0%} of the image — {verdict}.")

# %% [markdown]
# ## LAN: the attention map beside the guidance map it was taught
# LAN learns its attention map $F_m$ with a binary cross-entropy towards a guidance map (lan.txt
# Eq. 5): positions whose backbone feature falls in the *smaller* of two K-means clusters at that
# position (Eqs. 3–4), i.e. the unusual, expression-bearing positions. If the training worked, the
# attention should resemble the guidance. The guidance comes from the annotator saved with LAN's
# checkpoint; an untrained LAN has none.

# %%
lan_name = next((n for n in nets if n.startswith("lan")), None)
if lan_name is None:
    print("LAN is not among this run's models (the `default` and `lecture` profiles train it).")
else:
    lan_maps = own[lan_name]
    cols = {"attention F_m": lan_maps["attention"][sl]}
    kinds = {"attention F_m": "attention"}
    if "guidance" in lan_maps:
        cols["guidance map"], kinds["guidance map"] = lan_maps["guidance"][sl], "attention"
    cols["Grad-CAM"] = cams_pred[lan_name]
    fig = plots.map_grid(faces[:show], cols, kinds, row_labels=[names[labels[i]] for i in range(show)],
                         title=f"{lan_name}: attention map beside its guidance map — {status[lan_name].split(' (')[0]}")
    ctx.show(fig, "lan_attention_guidance", dpi=72)
    if "guidance" in lan_maps:
        a, g = lan_maps["attention"], lan_maps["guidance"]
        on = float(a[g > 0.5].mean()) if (g > 0.5).any() else float("nan")
        off = float(a[g <= 0.5].mean()) if (g <= 0.5).any() else float("nan")
        print(f"{lan_name}: mean attention {on:.3f} on guidance cells vs {off:.3f} elsewhere "
              f"({'higher where the guidance is 1, as trained' if on > off else 'not higher: the attention has not followed its guidance'}); "
              f"guidance covers {float((g > 0.5).mean()):.0%} of the face.")
    else:
        print(f"{lan_name}: no guidance annotator in its checkpoint ({status[lan_name]}).")

# %% [markdown]
# ## MAN: eight masks and the weight of each region, per face
# MAN's RASnet predicts one mask per region of Table 2 (man.txt Eq. 1) and ERSnet weighs the eight
# region features with a softmax $q$ (Eq. 6). The bars show $q$ for each face, the dashed line the
# uniform weight 1/8: a bar far above it is a region this face's decision leans on.

# %%
man_name = next((n for n in nets if n == "man"), None)
if man_name is not None:
    man_status, mask_maps, q = status[man_name], own[man_name], own_weights[man_name].get("region_weights")
else:  # not trained in this profile: the untrained network, to show what is read out
    man_status = "UNTRAINED (not among this run's models): mechanics only"
    man_res = explain.own_attention(create_model("man").eval(), images[sl])
    mask_maps, q = man_res["maps"], man_res["weights"].get("region_weights")
region_names = [k[len("mask_"):] for k in mask_maps]
fig, axes = plt.subplots(show, len(region_names) + 1, figsize=(1.35 * (len(region_names) + 1) + 1.6, 1.5 * show + 0.8),
                         squeeze=False, layout="constrained",
                         gridspec_kw={"width_ratios": [1] * len(region_names) + [1.8]})
for r in range(show):
    for c, region in enumerate(region_names):
        plots.draw_attention(axes[r, c], faces[r], mask_maps[f"mask_{region}"][r], region.replace("_", " ") if r == 0 else None)
    if q is not None:
        plots.plot_region_weights(axes[r, -1], q[r], region_names, f"q — {names[labels[r]]}")
    else:
        axes[r, -1].axis("off")
plots.add_colorbars(fig, axes[:, :-1], cam=False, attention=True)
fig.suptitle(f"MAN: RASnet masks and ERSnet region weights — {man_status.split(' (')[0]} — {ctx.dataset_label}", fontsize=9)
ctx.show(fig, "man_masks_weights", dpi=72)
if q is not None:
    q_all = q
    top = np.argmax(q_all.mean(0))
    print(f"MAN ({man_status.split(' (')[0]}): over {len(q_all)} faces the largest mean weight is "
          f"{region_names[top]} (q = {q_all.mean(0)[top]:.3f}, uniform 0.125); "
          f"the weights' spread across regions is {q_all.mean(0).std():.3f} "
          f"({'nearly uniform: ERSnet has not learnt to prefer a region' if q_all.mean(0).std() < 0.02 else 'some regions count clearly more'}).")

# %% [markdown]
# ## How much lands on the eyes, nose and mouth — per class
# SynthFER knows its landmarks exactly, so the eyes, nose and mouth are known too:
# `explain.face_part_masks` places fixed boxes of the ArcFace template on each face by the similarity
# that maps its five points onto the template (so a turned or rolled face gets turned boxes). For each
# map we take the share of its mass inside each part and divide it by the part's share of the image:
# **ratio 1 = no preference** (a uniform map), above 1 = the map prefers that part. Expressions live in
# different parts — happiness and disgust in the mouth and nose, surprise and fear in the eyes and
# mouth, anger in the brows — so a network that attends well should show different rows per class.

# %%
share_tables = []
for name, net in nets.items():
    target = explain.primary_target(net)
    cams_true = explain.branch_cams(net, images, batch, classes=labels, branches=[target])[target]
    maps = {f"{name} · Grad-CAM": cams_true}
    for key, stack in combined_maps(own[name]).items():
        if not key.startswith("mask_") or key in ("mask_eyes_with_brows", "mask_mouth_with_nose"):
            maps[f"{name} · {key}"] = stack
    share_tables.append(explain.region_attention_share(maps, batch["landmarks5"], labels=labels, class_names=names))
shares = pd.concat(share_tables, ignore_index=True)
overall = shares[shares["class"] == "all"].pivot_table(index="map", columns="region", values="ratio", sort=False)
display(overall.round(2))
fig = plots.plot_region_share(shares[shares["class"] != "all"], value="ratio",
                              title=f"share of each map on each face part ÷ the part's area, per class (1 = no preference) — {ctx.dataset_label}")
ctx.show(fig, "region_share", dpi=80)

# %%
for m, row in overall.iterrows():
    best_part = row.idxmax()
    if row.max() < 0.8:
        print(f"{m}: avoids all three parts (at most {row.max():.2f}× their area): its mass lies elsewhere "
              "(hair, outline, background or an occluder).")
    else:
        print(f"{m}: prefers the {best_part} ({row[best_part]:.2f}× its area)"
              + ("; no part above 1.2×, i.e. about as spread as a uniform map." if row.max() < 1.2 else "."))
for name in nets:
    mouth = shares[(shares["class"] != "all") & (shares["map"] == f"{name} · Grad-CAM") & (shares["region"] == "mouth")]
    mouth = mouth.dropna(subset=["ratio"])
    if len(mouth) > 1:
        hi, lo = mouth.loc[mouth["ratio"].idxmax()], mouth.loc[mouth["ratio"].idxmin()]
        print(f"{name}: its Grad-CAM prefers the mouth most for {hi['class']} faces ({hi['ratio']:.2f}×) and least for "
              f"{lo['class']} faces ({lo['ratio']:.2f}×), from {int(mouth['n'].min())}–{int(mouth['n'].max())} face(s) "
              "per class — few faces, so read it as a direction, not a measurement.")

# %% [markdown]
# ## Per class, like the papers' figures
# The model with the best **validation** accuracy, its main layer, Grad-CAM of the true class, one
# column per class. Colour bar: each map is scaled to its own peak (pytorch-grad-cam's convention).

# %%
chosen = [n for n in nets if n in val_acc and np.isfinite(val_acc[n])]
best = max(chosen, key=lambda n: val_acc[n]) if chosen else list(nets)[0]
net = nets[best]
target = explain.primary_target(net)
preds = preds_all[best]
cams = explain.branch_cams(net, images, batch, classes=labels, branches=[target])[target]
fig = plots.class_grid(batch["image"], labels, names, per_class=ctx.profile.cam_per_class,
                       overlays=[explain.overlay(batch["image"][i], cams[i]) if cams[i].max() > 0 else None
                                 for i in range(len(labels))],
                       captions=[f"pred {names[p]}" for p in preds],
                       title=f"{best} / {target}: Grad-CAM of the true class — {ctx.dataset_label}")
plots.add_colorbars(fig, fig.axes)
ctx.show(fig, f"per_class_{best}", dpi=80)
n_empty = int(sum(c.max() <= 0 for c in cams))
print(f"Explained model: {best} (validation accuracy {val_acc.get(best, float('nan')):.3f}, chosen on validation). "
      f"{n_empty} of {len(cams)} true-class maps are empty (drawn as the plain face): the model sees no positive "
      "evidence for the true class there — typically a face it gets wrong.")

# %% [markdown]
# ## CAM methods side by side
# Grad-CAM averages the gradient over positions; HiResCAM (Draelos & Carin) multiplies gradient and
# activation position by position, which provably reflects the positions that raised the score for a
# head that averages its features. The profile chooses the methods: the fast ones (GradCAM, HiResCAM)
# in `smoke`/`default`; ScoreCAM and AblationCAM, which run the network once per activation channel,
# only in `full`.

# %%
methods = list(ctx.profile.cam_methods)
fig, axes = plt.subplots(1, len(methods) + 1, figsize=(2.2 * (len(methods) + 1) + 1.0, 2.7), layout="constrained")
plots.show_face(axes[0], batch["image"][0], f"true {names[labels[0]]}")
method_maps = {}
for ax, method in zip(np.atleast_1d(axes)[1:], methods):
    method_maps[method] = explain.branch_cams(net, images[:1], {k: v[:1] if hasattr(v, "shape") else v for k, v in batch.items()},
                                              classes=labels[:1], method=method, branches=[target])[target][0]
    plots.draw_cam(ax, batch["image"][0], method_maps[method], method)
plots.add_colorbars(fig, axes[1:])
ctx.show(fig, "methods")
if len(method_maps) > 1:
    rho = explain.spearman_per_map(np.stack([method_maps[methods[0]]]), np.stack([method_maps[methods[1]]]))[0]
    print(f"{methods[0]} vs {methods[1]} on this face: Spearman ρ = {rho:.2f} "
          f"({'nearly the same map' if rho > 0.9 else 'they rank the pixels differently'}).")
else:
    print(f"Only {methods[0]} in this profile.")

# %% [markdown]
# ## Misclassified examples
# Where did the chosen model look when it was wrong? Grad-CAM of the predicted (wrong) class.

# %%
wrong = [i for i in range(len(labels)) if preds[i] != labels[i]][: ctx.profile.cam_images]
if wrong:
    wcams = explain.branch_cams(net, images[wrong], {k: v[wrong] if hasattr(v, "shape") else v for k, v in batch.items()},
                                classes=[int(preds[i]) for i in wrong], branches=[target])[target]
    fig, axes = plt.subplots(1, len(wrong), figsize=(2.3 * len(wrong) + 1.0, 2.8), squeeze=False, layout="constrained")
    for ax, i, c in zip(axes[0], wrong, wcams):
        plots.draw_cam(ax, batch["image"][i], c, f"true {names[labels[i]]}, pred {names[preds[i]]}")
    plots.add_colorbars(fig, axes)
    ctx.show(fig, "misclassified")
n_wrong = sum(int(p != t) for p, t in zip(preds, labels))
confusions = pd.Series([f"{names[t]}→{names[p]}" for p, t in zip(preds, labels) if p != t]).value_counts()
print(f"{best}: {n_wrong} of {len(labels)} faces wrong"
      + (f"; most frequent confusion {confusions.index[0]} ({confusions.iloc[0]}×)." if len(confusions) else "."))

# %% [markdown]
# ## Sanity check: does the CAM depend on the weights? (Adebayo et al., 2018)
# A saliency method that explains a *model* must change when the model's weights are destroyed.
# `explain.cascading_randomization` re-initialises the layers of a copy of the chosen model from the
# top (classifier first) down to the input, one block per step, and compares each CAM with the trained
# model's by Spearman rank correlation (scipy). A faithful CAM falls towards 0 as soon as the layers
# above its target are random; one that stays high is drawing the face's edges, not the model's
# reasoning. (The class explained stays fixed, so only the weights change.)

# %%
n_sanity = min(3, len(labels))
sanity_table, sanity_cams = explain.cascading_randomization(
    net, images[:n_sanity], target, classes=[int(p) for p in preds[:n_sanity]], steps=4,
    landmarks5=batch["landmarks5"][:n_sanity], seed=seed)
display(sanity_table.round(3))
fig = plots.plot_sanity_check(faces[:n_sanity], sanity_cams, sanity_table,
                              title=f"{best} / {target}: cascading randomisation (Adebayo et al. 2018) — {ctx.dataset_label}")
ctx.show(fig, "sanity_check", dpi=72)
first = sanity_table.iloc[1]
last = sanity_table.iloc[-1]
print(f"After re-initialising the top {first['fraction']:.0%} of the layers the CAM's rank correlation with the "
      f"trained one is {first['spearman']:.2f} (empty maps: {int(first['empty'])}); with every layer random it is "
      f"{last['spearman']:.2f}. "
      + ("The CAM depends on the weights: it passes the check." if np.nan_to_num(first["spearman"], nan=0.0) < 0.5
         else "The CAM barely changed although the top layers are random: it fails the check here, so treat its "
              "pictures as edge maps."))

# %% [markdown]
# ## Guided Grad-CAM (man.txt Fig. 7)
# Grad-CAM times guided backpropagation (pytorch-grad-cam's `GuidedBackpropReLUModel`): sharp
# detail where the coarse map is high. The Multiple Attention Network when notebook 03 trained it,
# otherwise the chosen model. Adebayo et al. found guided backpropagation nearly unchanged under
# randomisation: its sharp edges come from the image, the coarse Grad-CAM factor from the model.

# %%
guided_name = "man" if "man" in trained else best
gnet = nets.get(guided_name, net)
gtarget = explain.primary_target(gnet)
n_guided = min(3, ctx.profile.cam_images)
guided = explain.guided_gradcam(gnet, images[:n_guided], gnet.cam_targets()[gtarget], classes=labels[:n_guided],
                                **{k: v[:n_guided] for k, v in explain.model_inputs(gnet, batch).items()})
fig, axes = plt.subplots(1, len(guided), figsize=(2.4 * len(guided), 2.8), layout="constrained")
for ax, g, t in zip(np.atleast_1d(axes), guided, labels[:n_guided]):
    plots.show_face(ax, g, f"{guided_name}: {names[t]}")
ctx.show(fig, "guided_gradcam")
print(f"Guided Grad-CAM of {guided_name}, true class of {n_guided} faces.")

# %% [markdown]
# ## Attention on occluders (ffra-net.txt §4.5)
# For each occluded face: the share of a map's mass on the occluder's pixels (`explain.mass_on_mask`),
# divided by the occluder's share of the image (1 = no preference, below 1 = the map avoids the
# occluder). FFRA-Net and MA-Net argue their attention moves *away* from occluders; here it is
# measured, for Grad-CAM and for each network's own attention, on the few faces of this notebook
# (notebook 06 does it over hundreds of faces with intervals).

# %%
occluded = [i for i, s in enumerate(picked) if s["meta"].get("occlusion", "none") != "none" and "occluder_mask" in s]
occ_rows = []
if occluded:
    occ_masks = np.stack([np.asarray(picked[i]["occluder_mask"], bool) for i in occluded])
    area = float(occ_masks.mean())
    for name, net_ in nets.items():
        tgt = explain.primary_target(net_)
        ocams = explain.branch_cams(net_, images[occluded], {k: v[occluded] if hasattr(v, "shape") else v for k, v in batch.items()},
                                    classes=[int(p) for p in preds_all[name][occluded]], branches=[tgt])[tgt]
        maps = {f"Grad-CAM {tgt}": ocams} | {k: v[occluded] for k, v in combined_maps(own[name]).items()}
        for key, stack in maps.items():
            mass = explain.mass_on_mask(stack, occ_masks)
            occ_rows.append({"model": name, "map": key, "faces": int(np.isfinite(mass).sum()),
                             "mass on occluder": round(float(np.nanmean(mass)), 3) if np.isfinite(mass).any() else None,
                             "occluder area": round(area, 3),
                             "ratio": round(float(np.nanmean(mass)) / area, 2) if np.isfinite(mass).any() and area > 0 else None})
occ_table = pd.DataFrame(occ_rows)
display(occ_table.set_index(["model", "map"]) if len(occ_table) else "no occluded faces in this sample")
for r in (occ_table.dropna(subset=["ratio"]).to_dict(orient="records") if len(occ_table) else []):
    print(f"{r['model']} / {r['map']}: {r['mass on occluder']:.0%} of the mass on occluders covering "
          f"{r['occluder area']:.0%} of the image — "
          + ("drawn to the occluder" if r["ratio"] > 1.1 else "avoids it" if r["ratio"] < 0.9 else "no preference")
          + f" ({r['faces']} faces).")

# %% [markdown]
# ## Explore
# Choose a model, a target layer, a method, an image and **the class the CAM explains**: the
# prediction, the true class, or any class ("what in this face speaks for *fear*?"). The static
# picture is the first frame.

# %%
explorer = CamExplorer(nets, images, batch["image"], batch, names, methods=list(ctx.profile.cam_methods))
first_model = list(nets)[0]
frame, caption = explorer.overlay(first_model, explain.primary_target(nets[first_model]), 0)
fig, ax = plt.subplots(figsize=(3, 3.3), layout="constrained")
plots.show_face(ax, frame, plots.wrap_text(caption.split(":")[0], 30))
ctx.show(fig, "explorer_frame")
explorer.widget()

# %% [markdown]
# ## Exercises
# Each exercise has an answer variable left as `None`; put your answer there and run the checking
# cell. The checks compute the right answer from this run, so they stay true under any profile.
#
# 1. Which face part does the chosen model's Grad-CAM prefer most, over all faces (`eyes`, `nose`
#    or `mouth`)? Hint: the table of ratios above, row `<model> · Grad-CAM`.
# 2. How many of the chosen model's test faces in this notebook are misclassified?
# 3. In the sanity check, what is the Spearman correlation after the **last** step (every layer
#    random), to two decimals?
# 4. What share of an all-ones map lies on the mouth of the first face? Compute it with
#    `explain.mass_on_mask` and `explain.face_part_masks` (it equals the mouth's share of the image).

# %%
answer_1 = None  # e.g. "mouth"
answer_2 = None  # an integer
answer_3 = None  # e.g. 0.12
answer_4 = None  # e.g. 0.05

# %%
cam_row = overall.loc[f"{best} · Grad-CAM"]
check_answer(answer_1, expected=str(cam_row.idxmax()), name="Exercise 1",
             hint="take the row '<model> · Grad-CAM' of the ratio table and its largest column")
check_answer(answer_2, expected=int(n_wrong), name="Exercise 2", hint="count preds != labels")
check_answer(answer_3, expected=float(round(last["spearman"], 2)), tolerance=0.011, name="Exercise 3",
             hint="sanity_table['spearman'].iloc[-1]")
mouth0 = explain.face_part_masks(batch["landmarks5"][:1], images.shape[-1])["mouth"][0]
check_answer(answer_4, expected=float(explain.mass_on_mask(np.ones_like(mouth0, float), mouth0)), tolerance=0.002,
             name="Exercise 4", hint="mass_on_mask(np.ones((224, 224)), mouth_mask) is the mouth's area share")

# %% [markdown]
# ## What you now know
# - Each network's **own attention** is a map you can read out and put back on the face: AMP-Net's
#   per-region CBAM maps (cut out of the padded canvases its branches see), MA-Net's per-region maps,
#   LAN's map and the guidance it was trained towards, MAN's masks and per-face region weights,
#   FFRA-Net's shuffle attention. Attention and Grad-CAM answer different questions and can disagree.
# - A map on a **fixed scale** (attention gates, 0–1) can be compared across faces; a Grad-CAM scaled
#   to its own peak cannot, and an **empty** CAM must be shown as empty, not stretched noise.
# - Where attention falls can be **measured**: share of mass on the eyes, nose, mouth or an occluder,
#   divided by the area, per class.
# - A saliency map must pass the **randomisation sanity check** before it is believed.
# - The explained model is chosen on **validation** accuracy; the test set is only reported.
#
# Next: notebook 06 puts all five networks under occlusion, pose and degradation with one protocol
# and intervals, and measures attention on occluders over hundreds of faces.

# %%
ctx.record(
    headline=["occluder_ratio_mean", "best_model", "misclassified"],
    occluder_ratio_mean=float(occ_table["ratio"].dropna().mean()) if len(occ_table) else None,
    occluder=occ_table.to_dict(orient="records"),
    best_model=best, best_model_val_accuracy=val_acc.get(best), misclassified=int(n_wrong),
    images=len(labels), methods=list(ctx.profile.cam_methods),
    region_ratio=overall.round(4).to_dict(orient="index"),
    sanity=sanity_table.to_dict(orient="records"),
    own_attention={n: sorted(m) for n, m in own.items()},
)
