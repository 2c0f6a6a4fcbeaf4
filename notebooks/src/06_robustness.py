# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Robustness under one protocol: occlusion, pose, degradation
#
# Every one of the five papers claims robustness — AMP-Net and MA-Net on the RAN occlusion and ≥ 30°/≥ 45° pose
# lists (Wang et al., IEEE TIP 2020), FFRA-Net on its own face-mask and sunglasses versions of RAF-DB and on
# randomly occluded test faces (ffra-net.txt §4.1, §4.5), LAN on KDEF's multi-view poses, MAN qualitatively — each
# on its own data and split, with single numbers. Here all models of notebook 03 meet **the same test faces under
# the same conditions**:
#
# * **occlusion**: a face mask, sunglasses, a hand or a random patch placed from the five landmarks and scaled until
#   it covers a stated share of the face region (10–50 %);
# * **pose**: on SynthFER the same faces re-rendered at yaw 0–60° (same identity, same action units); on real data,
#   bins of the yaw estimated from the five points;
# * **degradations**: blur, noise, JPEG, low resolution, brightness, contrast at graded strengths;
# * **expression intensity** (SynthFER): the same faces with weaker or stronger action units.
#
# Statistics a reviewer accepts: accuracy and macro-F1 with **bootstrap 95 % intervals over faces** (Efron 1979)
# and mean ± std over seeds; for every pair of models **McNemar's test** on the same faces,
# $\chi^2 = (|b-c|-1)^2/(b+c)$ or, with fewer than 25 disagreements, the exact binomial
# $p = \min\big(1,\ 2\sum_{k\le \min(b,c)} \binom{b+c}{k} 2^{-(b+c)}\big)$, where $b$ and $c$ count the faces only
# one of the two models got right; and the paired drop from clean to each condition with its interval.
#
# With SynthFER (synthetic faces) and a small profile the models are weak: the numbers test the protocol, not the
# papers.

# %% tags=["parameters"]
profile = None  # None → $FERLIB_PROFILE, else "default"; or "smoke" / "default" / "full"
dataset = "synthfer"
data_root = None
models = None  # None → the models notebook 03 trained
device = "auto"
seed = 0
run_dir = None
robustness_profile = None  # None → the study profile's name; "smoke" / "default" / "lecture" / "full" (ferlib.robustness)
other_training = False  # also train every model on the other training condition (clean ↔ occluded faces)

# %%
import math

import numpy as np
import pandas as pd
from IPython.display import display

from ferlib.robustness import figures, stats
from ferlib.robustness.conditions import DEGRADATION_LEVELS
from ferlib.robustness.runner import get_profile, run_robustness, training_condition
from ferlib.study import prepare_notebook
from ferlib.study.exercises import check_answer
from ferlib.train import train

ctx = prepare_notebook("06_robustness.ipynb", profile=profile, dataset=dataset, data_root=data_root,
                       models=models, device=device, seed=seed, run_dir=run_dir)
print(ctx.describe())
rprof = get_profile(robustness_profile or ctx.profile.name)
print(f"robustness profile {rprof.name}: {rprof.n_faces or 'all'} test faces, {rprof.n_resamples} bootstrap resamples")

# %% [markdown]
# ## The statistics on cases you can check by hand
# McNemar on 7 disagreeing faces (1 only A right, 6 only B right): the exact test gives
# $2\,(\binom70+\binom71)/2^7 = 16/128$. A bootstrap interval of 9 right out of 10: a resample's accuracy is
# Binomial(10, 0.9)/10, whose 2.5 % and 97.5 % quantiles are 0.7 and 1.0.

# %%
# NBVAL_CHECK_OUTPUT
a = np.array([1] * 10 + [1] + [0] * 6 + [0] * 3, dtype=bool)
b = np.array([1] * 10 + [0] + [1] * 6 + [0] * 3, dtype=bool)
print("McNemar p (1 vs 6 discordant):", round(stats.mcnemar_test(a, b)["p_value"], 4))
right = np.array([1] * 9 + [0], dtype=float)
low, high = stats.bootstrap_interval(lambda idx: right[idx].mean(-1), 10, n_resamples=20000, seed=1)
print(f"bootstrap 95 % interval of 9/10: [{low:.1f}, {high:.1f}]")
for kind, levels in DEGRADATION_LEVELS.items():
    print(f"{kind:>10}: " + ", ".join(f"{v:g}" for v in levels))

# %% [markdown]
# ## The trained models, and their training condition
# The run folders of notebook 03 (every seed). The **training condition** comes from each run's config: SynthFER's
# `standard` preset puts an occluder on 30 % of the training faces, `frontal` and `clean` none — so the tables can
# separate "robust by design" from "robust because it saw occluders". With `other_training=True` every model is
# also trained on the other condition (the same recipe and budget).

# %%
trained = (ctx.metrics_of("03_training") or {}).get("models", {})
wanted = list(models) if models is not None else list(trained)
run_dirs = [ctx.path(f"train/{m}/seed-{s}") for m in wanted for s in ctx.profile.seeds
            if (ctx.path(f"train/{m}/seed-{s}") / "checkpoints").is_dir()]
if not run_dirs:
    raise RuntimeError("notebook 03 trained no model in this run folder: run 03 first (`ferlib study` runs them in order)")
if other_training and ctx.synthetic:
    own = training_condition({"dataset": "synthfer", "profile": ctx.profile.train_profile})[0]
    other = "clean" if own == "occluded" else "standard"
    for m in wanted:
        for s in ctx.profile.seeds:
            folder = ctx.path(f"train-{other}/{m}/seed-{s}")
            if not (folder / "checkpoints" / "best.pt").is_file():
                train(ctx.train_config(m, seed=s, dataset_kwargs={"config": other}, run_dir=str(folder)))
            run_dirs.append(folder)
res = run_robustness(run_dirs, ctx.dataset, ctx.data_root, profile=rprof, out_dir=ctx.path("robustness"),
                     device=str(ctx.device), seed=seed, progress=not ctx.tqdm_disable)
runs = pd.DataFrame(res.runs)[["key", "model", "seed", "training", "training_detail"]]
display(runs)
acc, drops, pairs, att = (res.table(t) for t in ("accuracy", "drops", "pairs", "attention"))
clean = acc[acc.family == "clean"].set_index("key")
print(f"{res.settings['label']}; {len(res.conditions)} conditions; notes: {'; '.join(res.notes) or 'none'}")

# %% [markdown]
# ## Accuracy vs occluded area, per occluder
# One panel per occluder; the x axis is the share of the face region the occluder really covers (measured on its
# pixel mask), 0 is clean. The band is the bootstrap 95 % interval over faces around the mean over seeds.

# %%
ctx.show(figures.accuracy_vs_area(acc, f"Accuracy vs occluded area — {ctx.dataset_label}"), "accuracy_vs_area")
occ = drops[drops.family == "occlusion"]
largest = occ[occ.level == occ.level.max()]
worst = largest.loc[largest.groupby("key")["drop"].idxmax()]
for r in worst.itertuples():
    sig = "excludes" if r.drop_low > 0 or r.drop_high < 0 else "includes"
    print(f"{r.key}: at {r.level:.0%} of the face the {r.factor} costs most, {r.drop:+.3f} accuracy "
          f"[{r.drop_low:+.3f}, {r.drop_high:+.3f}] ({sig} zero); clean {r.clean_accuracy:.3f}")

# %% [markdown]
# ## Accuracy vs yaw
# SynthFER: the same faces turned to each yaw (only the pose changes). Real data: faces binned by estimated yaw
# (different faces per bin, so the curve mixes pose with whatever else differs between the bins).

# %%
xlabel = "|yaw| (degrees)" if ctx.synthetic else "estimated |yaw| bin start (degrees)"
ctx.show(figures.accuracy_vs_level(acc, "pose", xlabel, f"Accuracy vs yaw — {ctx.dataset_label}"), "accuracy_vs_yaw")
pose = acc[acc.family == "pose"]
for key, g in pose.groupby("key", sort=False):
    g = g.sort_values("level")
    first, last = g.iloc[0], g.iloc[-1]
    print(f"{key}: {first.accuracy:.3f} at {first.level:g}° → {last.accuracy:.3f} at {last.level:g}° "
          f"[{last.accuracy_low:.3f}, {last.accuracy_high:.3f}]")

# %% [markdown]
# ## Degradations
# Each panel goes from clean through the strengths mild → strong.

# %%
ctx.show(figures.degradation_panel(acc, f"Degradations — {ctx.dataset_label}"), "degradations")
deg = drops[drops.family == "degradation"]
strongest = deg.groupby(["key", "factor"]).tail(1)  # levels run mild → strong
hardest = strongest.loc[strongest.groupby("key")["drop"].idxmax()]
for r in hardest.itertuples():
    print(f"{r.key}: the strongest {r.factor} ({r.level:g}) hurts most: drop {r.drop:+.3f} [{r.drop_low:+.3f}, {r.drop_high:+.3f}]")

# %% [markdown]
# ## Expression intensity (SynthFER)
# The same non-neutral faces with their action units drawn at each intensity: how much expression does a model need?

# %%
if (acc.family == "intensity").any():
    ctx.show(figures.accuracy_vs_level(acc, "intensity", "expression intensity",
                                       f"Accuracy vs expression intensity — {ctx.dataset_label}"), "accuracy_vs_intensity")
    inten = acc[acc.family == "intensity"]
    for key, g in inten.groupby("key", sort=False):
        g = g.sort_values("level")
        print(f"{key}: {g.accuracy.iloc[0]:.3f} at intensity {g.level.iloc[0]:g}, {g.accuracy.iloc[-1]:.3f} at {g.level.iloc[-1]:g}")
else:
    print("no intensity conditions (real data has no known action units)")

# %% [markdown]
# ## Paired comparisons
# Row minus column accuracy on the same faces (seed-paired), with the largest McNemar p-value over the seed pairs
# (the most conservative). Left: clean faces; the table below lists every pair under every condition.

# %%
hard = occ.groupby("condition")["drop"].mean().idxmax() if len(occ) else "clean"
for cond in dict.fromkeys(["clean", hard]):
    ctx.show(figures.pairs_matrix(pairs, cond, f"Paired comparison on {cond} — {ctx.dataset_label}"),
             "pairs_" + cond.replace("/", "_").replace("@", "_"))
significant = pairs[pairs.p_value < 0.05]
print(f"{len(pairs)} paired tests ({pairs.condition.nunique()} conditions × {len(pairs) // max(pairs.condition.nunique(), 1)} "
      f"model pairs); {len(significant)} with p < 0.05 in every seed pair")
display(pairs[pairs.condition.isin(["clean", hard])][["condition", "model_a", "model_b", "difference", "difference_low",
                                                      "difference_high", "p_value"]].round(4))

# %% [markdown]
# ## Attention on the occluder, measured
# For each model and each CAM target (branch), and each own attention map (LAN's $F_m$, MAN's masks), the share of
# the map's mass on the occluder's pixels and on the visible face, over the first faces of each occluder at the
# profile's attention area; *ratio* = share on the occluder / the occluder's share of the image (1 = no preference,
# below 1 = the map avoids it). Split by correct and wrong predictions.

# %%
att_all = att[att.predictions == "all"]
table = att_all.assign(
    on_occluder=att_all.on_occluder.round(3).astype(str) + " [" + att_all.on_occluder_low.round(3).astype(str) + ", "
    + att_all.on_occluder_high.round(3).astype(str) + "]",
    ratio=att_all.ratio.round(2),
)[["key", "factor", "source", "n", "on_occluder", "on_visible_face", "ratio"]]
display(table)
split = att[att.predictions != "all"].pivot_table(index=["key", "factor", "source"], columns="predictions",
                                                  values="ratio")
display(split.round(2))
avoid = att_all.loc[att_all.groupby("key")["ratio"].idxmin()] if len(att_all) else att_all
for r in avoid.itertuples():
    verdict = "avoids" if r.ratio_high < 1 else ("is drawn to" if r.ratio_low > 1 else "shows no clear preference for")
    print(f"{r.key}: {r.source} {verdict} the {r.factor} (ratio {r.ratio:.2f} [{r.ratio_low:.2f}, {r.ratio_high:.2f}], "
          f"{r.n} faces)")

# %% [markdown]
# ## Robust by design, or because it saw occluders?
# Clean accuracy and the mean paired drop over all occlusion conditions, per model and training condition.

# %%
summary = occ.groupby(["key", "training"]).agg(mean_drop=("drop", "mean"), worst_drop=("drop", "max")).reset_index()
summary["clean_accuracy"] = [clean.loc[k, "accuracy"] for k in summary.key]
summary["clean_interval"] = [f"[{clean.loc[k, 'accuracy_low']:.3f}, {clean.loc[k, 'accuracy_high']:.3f}]" for k in summary.key]
display(summary.round(3))
if summary.training.nunique() > 1:
    by = summary.groupby("training").mean_drop.mean()
    print("mean drop under occlusion by training condition: " + ", ".join(f"{k} {v:+.3f}" for k, v in by.items()))
else:
    print(f"every run here was trained on {summary.training.iloc[0]} faces; run with other_training=True "
          "to separate the two")
timing = res.timing
print(f"forward passes: {timing['forward_share_of_predict']:.0%} of prediction time")

# %% [markdown]
# ## Exercises
# Answer in the cell, run it; the check prints *right*, *wrong* (with a hint) or *not answered yet*.
#
# **1.** Which occluder costs the first model the most accuracy at the largest area? (a name: mask, sunglasses,
# hand or random)

# %%
answer_1 = None
check_answer(answer_1, expected=worst.factor.iloc[0] if len(worst) else "", name="Exercise 1",
             hint="read the printed lines under the accuracy-vs-area figure")

# %% [markdown]
# **2.** Two models disagree on 11 faces: model A alone is right on 2, model B alone on 9. What is the exact McNemar
# p-value? (Sum the binomial probabilities of 0, 1 and 2 successes in 11 at ½ and double.)

# %%
answer_2 = None
check_answer(answer_2, expected=2 * sum(math.comb(11, k) for k in range(3)) / 2**11, tolerance=1e-3,
             name="Exercise 2", hint="2 * (C(11,0) + C(11,1) + C(11,2)) / 2**11")

# %% [markdown]
# **3.** For the first model, does the 95 % interval of its drop under its worst occluder (exercise 1) exclude
# zero? (True or False)

# %%
answer_3 = None
check_answer(answer_3, expected=bool(len(worst) and (worst.drop_low.iloc[0] > 0 or worst.drop_high.iloc[0] < 0)),
             name="Exercise 3", hint="look at the bracketed interval printed for that model")

# %% [markdown]
# **4.** A CAM's ratio on the occluder is 0.5. Does the map favour or avoid the occluder? (favour / avoid)

# %%
answer_4 = None
check_answer(answer_4, expected="avoid", name="Exercise 4", hint="ratio = share of mass on it / its share of the image")

# %% [markdown]
# ## What you now know
# * A robustness claim needs the same faces under a controlled change: here every drop is paired face by face, and
#   its interval says whether the sample of faces supports it.
# * McNemar's test compares two models on the same faces using only the faces they disagree on; mean ± std over
#   seeds says how much training noise moves a number.
# * Occluded area, not occluder type alone, sets the difficulty; sunglasses cannot cover as much of the face as a
#   mask or a hand (the notes list conditions left out).
# * "The attention avoids the occluder" is a number with an interval (the ratio), not a picture.
# * To run it on your own data: `ferlib robustness RUN_DIRS --dataset rafdb --root PATH` (docs/robustness.md).
#
# ## References
# * Wang, Peng, Yang, Meng, Qiao. *Region Attention Networks for Pose and Occlusion Robust Facial Expression
#   Recognition.* IEEE TIP 29, 2020. doi:10.1109/TIP.2019.2956143 (the RAN occlusion and pose lists).
# * McNemar. *Note on the sampling error of the difference between correlated proportions or percentages.*
#   Psychometrika 12, 1947. doi:10.1007/BF02295996
# * Efron. *Bootstrap methods: another look at the jackknife.* Annals of Statistics 7, 1979.
#   doi:10.1214/aos/1176344552
# * The five papers' robustness claims: amp-net.txt, ma-net.txt, lan.txt, ffra-net.txt §4.1/§4.5, man.txt.

# %%
ctx.record(
    headline=["runs", "conditions", "forward_share"],
    runs=len(res.runs), faces=res.settings["n_faces"], conditions=len(res.conditions),
    forward_share=round(float(timing["forward_share_of_predict"]), 3),
    clean_accuracy={k: float(v) for k, v in clean.accuracy.items()},
    mean_occlusion_drop={r.key: float(r.mean_drop) for r in summary.itertuples()},
    significant_pairs=int(len(significant)), notes=res.notes,
    tables=[f"robustness/{t}.csv" for t in ("accuracy", "per_run", "drops", "pairs", "attention")],
)
