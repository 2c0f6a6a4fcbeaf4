# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Five points on every face: detection, alignment, pose
#
# All five papers start the same way: detect the face and five landmarks with RetinaFace, align the
# face with a similarity transform so the points land on a canonical template, and resize it to
# 224×224 (ma-net.txt §IV-B, lan.txt §IV-B, amp-net.txt §IV-B). AMP-Net and the Multiple Attention
# Network also feed the landmarks to the network (notebook 02).
#
# RetinaFace weights cannot ship with ferlib, so the default detector is MTCNN (its weights come
# with facenet-pytorch and work offline); `ferlib landmarks --backend retinaface --weights FILE`
# uses RetinaFace when you have the checkpoint. The alignment solves, in the least-squares sense,
# $$\min_{s, R, t}\ \sum_{k=1}^{5} \lVert s R\, p_k + t - q_k \rVert^2,$$
# for the detected points $p_k$ and the template points $q_k$.

# %% tags=["parameters"]
profile = None  # None → $FERLIB_PROFILE, else "default"; or "smoke" / "default" / "full"
dataset = "synthfer"
data_root = None
models = None
device = "auto"
seed = 0
run_dir = None

# %%
import numpy as np
import matplotlib.pyplot as plt
from skimage import data as skdata
from skimage.transform import resize

from ferlib import plots
from ferlib.data.synthfer import SynthFERDataset
from ferlib.landmarks import (CANONICAL_TEMPLATE_224, align_face, detect, estimate_pose,
                              extract_landmarks, select_primary_face)
from ferlib.study import prepare_notebook

ctx = prepare_notebook("01_landmarks.ipynb", profile=profile, dataset=dataset, data_root=data_root,
                       models=models, device=device, seed=seed, run_dir=run_dir)
print(ctx.describe())

# %% [markdown]
# ## Real faces that ship with scikit-image
# The astronaut portrait and two faces of the LFW subset (enlarged from 25×25 px: MTCNN needs
# faces of a few dozen pixels).

# %%
lfw = skdata.lfw_subset()
real = {
    "astronaut": skdata.astronaut(),
    "LFW face 0": (resize(lfw[0], (160, 160), order=3) * 255).astype(np.uint8),
    "LFW face 5": (resize(lfw[5], (160, 160), order=3) * 255).astype(np.uint8),
}
real = {k: np.repeat(v[..., None], 3, axis=2) if v.ndim == 2 else v for k, v in real.items()}
found = detect(list(real.values()))
fig, axes = plt.subplots(1, len(real), figsize=(3.4 * len(real), 3.6))
for ax, (name, img), faces in zip(axes, real.items(), found):
    plots.show_face(ax, img, f"{name}: {len(faces)} face(s)")
    for f in faces:
        plots.draw_boxes(ax, f.box[None], linewidth=1.2)
        plots.draw_landmarks(ax, f.landmarks5)
ctx.show(fig, "real_faces")

# %%
# NBVAL_CHECK_OUTPUT
for (name, img), faces in zip(real.items(), found):
    lm = faces[0].landmarks5 if faces else None
    ordered = lm is not None and lm[0, 0] < lm[1, 0] and max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1])
    print(f"{name}: {len(faces)} face(s), 5 points, eyes above nose above mouth and left/right in order: {ordered}")

# %% [markdown]
# ## Detector error on SynthFER, where the truth is known
# Normalised mean error: the mean distance between detected and true points divided by the
# inter-ocular distance (NME, %). SynthFER is *synthetic*: cartoon-like faces with varied pose,
# occlusion and degradations, so this measures MTCNN on a harder-than-clean but unreal domain.

# %%
synth = SynthFERDataset(ctx.profile.n_landmark_eval, seed=seed, split="test")
samples = [synth[i] for i in range(len(synth))]
images = [s["image"].permute(1, 2, 0).numpy() for s in samples]
detections = detect(images)
errors, misses = [], 0
for s, faces in zip(samples, detections):
    face = select_primary_face(faces, (224, 224))
    if face is None:
        misses += 1
        continue
    truth = s["landmarks5"].numpy()
    iod = np.linalg.norm(truth[0] - truth[1])
    errors.append(np.linalg.norm(face.landmarks5 - truth, axis=1).mean() / iod)
nme = 100 * float(np.mean(errors)) if errors else float("nan")
detect_rate = 1 - misses / len(samples)
print(f"SynthFER (synthetic), {len(samples)} faces: detected {detect_rate:.0%}, NME {nme:.1f}% of the inter-ocular distance")
fig, axes = plt.subplots(1, 6, figsize=(15, 2.8))
for ax, s, faces in zip(axes, samples, detections):
    plots.show_face(ax, s["image"], f"{s['meta']['occlusion']}, yaw {s['meta']['yaw']:.0f}°")
    plots.draw_landmarks(ax, s["landmarks5"], names=None, color="#00C853")
    face = select_primary_face(faces, (224, 224))
    if face is not None:
        plots.draw_landmarks(ax, face.landmarks5, names=None)
fig.suptitle("green: SynthFER's exact points, red: MTCNN", fontsize=9)
ctx.show(fig, "synthfer_detections")

# %% [markdown]
# ## Alignment to 224×224
# The similarity transform above maps the five points onto the canonical template (ArcFace's
# 112-px template scaled to 224). A turned face cannot be made frontal by a similarity, but its
# eyes land on the template's eyes.

# %%
# NBVAL_CHECK_OUTPUT
print("canonical template (224 px):", np.round(CANONICAL_TEMPLATE_224.astype(float), 1).tolist())

# %%
astro_face = select_primary_face(found[0], real["astronaut"].shape[:2])
aligned = [align_face(real["astronaut"], astro_face.landmarks5)]
for s, faces in list(zip(samples, detections))[:3]:
    aligned.append(align_face(s["image"].permute(1, 2, 0).numpy(), s["landmarks5"].numpy()))
fig, axes = plt.subplots(1, len(aligned), figsize=(3 * len(aligned), 3.2))
for ax, a in zip(axes, aligned):
    plots.show_face(ax, a.image, "aligned")
    plots.draw_landmarks(ax, CANONICAL_TEMPLATE_224, names=None, color="#00C853", size=30)
    plots.draw_landmarks(ax, a.landmarks5, names=None)
fig.suptitle("red: transformed points, green: template", fontsize=9)
ctx.show(fig, "alignment")
residual = float(np.mean([np.linalg.norm(a.landmarks5 - CANONICAL_TEMPLATE_224, axis=1).mean() for a in aligned]))
print(f"mean distance of the aligned points from the template: {residual:.1f} px")

# %% [markdown]
# ## Pose from five points
# The nose's offset from the eye–mouth midline, relative to the inter-ocular distance, gives a yaw
# estimate (calibrated on SynthFER, whose true pose is known). It lets you build the ≥30° / ≥45°
# pose subsets of the RAN protocol on any dataset.

# %%
truth_yaw = np.array([s["meta"]["yaw"] for s in samples])
est_yaw = np.array([estimate_pose(s["landmarks5"].numpy())[0] for s in samples])
yaw_mae = float(np.mean(np.abs(est_yaw - truth_yaw)))
fig, ax = plt.subplots(figsize=(3.6, 3.4))
ax.scatter(truth_yaw, est_yaw, s=14)
ax.plot([-45, 45], [-45, 45], "k:", lw=1)
ax.set(xlabel="true yaw (°)", ylabel="estimated yaw (°)", title=f"SynthFER: mean error {yaw_mae:.1f}°")
ctx.show(fig, "pose")

# %% [markdown]
# ## Failure cases: no face, several faces
# A FER pipeline must say what it did: no face → the canonical template is used for an already
# aligned crop and the sample is flagged; several faces → the largest, most central one is kept.

# %%
# NBVAL_CHECK_OUTPUT
no_face = skdata.coffee()
two = np.concatenate([real["LFW face 0"], real["LFW face 5"]], axis=1)
no_face_found, two_found = detect([no_face, two])
primary = select_primary_face(two_found, two.shape[:2])
print("coffee cup:", len(no_face_found), "face(s)")
print("two LFW faces side by side:", len(two_found), "face(s); kept the one at x ≈",
      "left" if primary.box[0] < two.shape[1] / 2 else "right")

# %% [markdown]
# ## The extraction cache
# `extract_landmarks` (and `ferlib landmarks DIR --out FILE`) writes one record per image keyed
# by path and content hash, atomically; a second call — or a call after Ctrl-C or a crash —
# reuses everything already done.

# %%
from PIL import Image

folder = ctx.path("landmarks_demo")
folder.mkdir(exist_ok=True)
for i, img in enumerate(images[:6]):
    Image.fromarray(img).save(folder / f"face_{i}.png")
first = extract_landmarks(folder, folder / "landmarks.jsonl", progress=False)
second = extract_landmarks(folder, folder / "landmarks.jsonl", progress=False)
print(f"first call: {first.computed} computed, {first.reused} reused; "
      f"second call: {second.computed} computed, {second.reused} reused; counts {second.counts}")

# %%
ctx.record(
    headline=["synthfer_nme_percent", "synthfer_detect_rate", "yaw_mae_deg"],
    synthfer_nme_percent=nme, synthfer_detect_rate=detect_rate, yaw_mae_deg=yaw_mae,
    real_faces_found={k: len(v) for k, v in zip(real, found)},
    alignment_residual_px=residual, cache_reused_on_rerun=second.reused,
)
