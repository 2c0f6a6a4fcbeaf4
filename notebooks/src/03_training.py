# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Training the five networks, and how sure we can be of the result
#
# Each paper trains its network with a recipe — optimiser, learning rate and schedule, batch size,
# epochs, augmentation and a combined loss, e.g. AMP-Net's
# $\mathcal{L} = \lambda\,\mathcal{L}_{GP} + (1-\lambda)\,\mathcal{L}_{LAP}$ (Liu et al., 2022, Eq. 7) or MA-Net's
# $\mathcal{L} = \lambda\,\mathcal{L}_{local} + (1-\lambda)\,\mathcal{L}_{global}$ (Zhao, Liu and Wang, 2021, Eq. 6).
# `ferlib.train` holds those recipes; a *profile* shrinks them (fewer epochs, smaller batches and
# data) without changing their structure, so the same notebook is a CI check, a lecture or a GPU
# reproduction.
#
# **Learning goals.** Read a recipe and what a CPU budget makes of it; train every network over
# several seeds; report an accuracy with its 95 % interval rather than as a bare number; recognise a
# run that learnt nothing (at chance, or collapsed onto a few classes) and keep it out of any ranking;
# choose a model on validation data, never on the test set.
#
# **Which run made these outputs.** The setup cell below prints the profile that made them (docs/study.md
# says which one the committed outputs come from). The `lecture` study profile (`ferlib study --profile
# lecture`, about 90 minutes on 2 CPU cores) trains every network and ResNet-18 over three seeds; `make study`
# runs the `default` profile: **a quick version** (one seed, fewer steps, no MAN), whose figures look the
# same but whose intervals are wider and whose runs are often flagged at chance. All numbers here are measured
# on SynthFER, ferlib's **synthetic** faces: they are not reproductions of the papers.
#
# Evaluation is honest: a seeded, stratified validation split is carved from the training data,
# the epoch is chosen on it, and the test set is touched once at the end.
#
# **References**
# - AMP-Net: H. Liu, H. Cai, Q. Lin, X. Li, H. Xiao, "Adaptive multilayer perceptual attention network for facial
#   expression recognition", IEEE TCSVT 32(9), 2022. doi:10.1109/TCSVT.2022.3165321
# - MA-Net: Z. Zhao, Q. Liu, S. Wang, "Learning deep global multi-scale and local attention features for facial
#   expression recognition in the wild", IEEE TIP 30, 2021. doi:10.1109/TIP.2021.3093397
# - LAN (local attention network): S. Cho, J. Lee, "Learning local attention with guidance map for pose robust
#   facial expression recognition", IEEE Access 10, 2022. doi:10.1109/ACCESS.2022.3198658
# - FFRA-Net (feature fusion residual attention network): Y. Chen, S. Liu, D. Zhao, W. Ji, "Occlusion facial
#   expression recognition based on feature fusion residual attention network", Front. Neurorobot. 17, 2023.
#   doi:10.3389/fnbot.2023.1250706
# - MAN: Y. Gan, J. Chen, Z. Yang, L. Xu, "Multiple attention network for facial expression recognition",
#   IEEE Access 8, 2020. doi:10.1109/ACCESS.2020.2963913
# - ResNet: K. He, X. Zhang, S. Ren, J. Sun, "Deep residual learning for image recognition", CVPR 2016.
#   doi:10.1109/CVPR.2016.90
# - RAF-DB: S. Li, W. Deng, J. Du, "Reliable crowdsourcing and deep locality-preserving learning for expression
#   recognition in the wild", CVPR 2017. doi:10.1109/CVPR.2017.277
# - Wilson interval: E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
#   JASA 22(158), 1927. doi:10.1080/01621459.1927.10502953

# %% tags=["parameters"]
profile = None  # None → $FERLIB_PROFILE, else "default"; or "smoke" / "default" / "lecture" / "full"
dataset = "synthfer"
data_root = None
models = None  # None → the profile's models, e.g. ["resnet18", "ma-net", "amp-net-r18", "lan", "ffra-net"]
device = "auto"
seed = 0
run_dir = None
epochs = None  # None → the engine profile's (ctx.profile.train_profile)

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from ferlib.data.labels import class_names
from ferlib.models import create_model, paper_results, recipe_name
from ferlib.study import prepare_notebook
from ferlib.study.exercises import check_answer
from ferlib.study.figures import plot_accuracy_intervals, plot_curves
from ferlib.study.stats import chance_interval, summarize_model, top_confusions
from ferlib.train import apply_profile, load_recipe, train
from ferlib.train.plots import plot_confusion

ctx = prepare_notebook("03_training.ipynb", profile=profile, dataset=dataset, data_root=data_root,
                       models=models, device=device, seed=seed, run_dir=run_dir)
print(ctx.describe())
print("models:", ", ".join(ctx.models))

# %%
# NBVAL_CHECK_OUTPUT
print("classes (7-class runs, canonical order):", ", ".join(class_names(7)))
for name in ("resnet18", "ma-net"):
    n = sum(p.numel() for p in create_model(name, num_classes=7).parameters())
    print(f"{name}: {n:,} parameters with a 7-class head")

# %% [markdown]
# ## The recipes, and what this profile makes of them
# Epoch budgets shrink and the learning-rate milestones scale with them; batches shrink to fit a
# CPU. Learning rates above the profile's `max_lr` are capped: the papers' rates of 0.1 assume
# batches of 64–350 (and often pre-trained weights), and diverge with small batches from scratch.
# Every size and budget is the engine profile's (`ferlib/recipes/profiles.yaml`) that this study
# profile names. AMP-Net is trained as `amp-net-r18`, the paper's own ResNet-18 variant (its
# Tables IV–V), which costs half of the ResNet-34 version's step. The comparison in
# docs/training.md uses `ferlib train --profile default` (4 epochs of 960 faces), a different engine
# profile from this notebook's, which is why its numbers differ from these.

# %%
rows = []
for name in ctx.models:
    paper = load_recipe(recipe_name(name), ctx.dataset)
    shrunk = apply_profile(paper, ctx.train_profile)
    rows.append({
        "model": name, "recipe": paper.name, "optimiser": paper.optimizer, "lr": paper.lr,
        "paper batch": paper.batch_size, "paper budget": paper.epochs or f"{paper.iterations} it",
        "this run: batch": shrunk.batch_size, "this run: lr": shrunk.lr,
        "this run: epochs": epochs or shrunk.epochs or f"{shrunk.iterations} it per stage",
        "seeds": len(ctx.profile.seeds_for(name)),
    })
display(pd.DataFrame(rows).set_index("model"))
single = [m for m in ctx.models if len(ctx.profile.seeds_for(m)) < len(ctx.profile.seeds)]
if single:
    print(f"trained with one seed only (their cost on 2 CPU cores): {', '.join(single)}")

# %% [markdown]
# ## Train
# One run folder per model and seed inside this study's folder (config, metrics, curves, confusion
# matrices and checkpoints). On a GPU, and on a CPU with native bf16, the engine uses bf16 autocast
# and channels-last by itself (`TrainConfig(amp="off")` turns it off).

# %%
results = {}
for name in ctx.models:
    for s in ctx.profile.seeds_for(name):
        res = train(ctx.train_config(name, s, epochs=epochs))  # into <run>/train/<name>/seed-<s>
        results[(name, s)] = res
        sel = res.metrics["test_selected"]
        print(f"{name:<12} seed {s}: validation {res.metrics['best_val_accuracy']:.3f} (epoch {res.best_epoch}), "
              f"test {sel['accuracy']:.3f}, macro-F1 {sel['macro_f1']:.3f}")

# %% [markdown]
# ## How good is each network — and how sure are we?
# A test accuracy measured on a few hundred faces with one seed is one draw from a wide
# distribution: the random initialisation, the order of the batches and the test faces themselves all
# move it. We therefore train each network with several seeds and report the **mean ± standard
# deviation** and the **95 % interval of the mean** (Student's t over seeds; with one seed, the Wilson
# interval over the test faces). Two networks whose intervals overlap have not been shown to differ.
#
# The grey band is chance: 95 % of the accuracies a guesser that picks one of the seven classes at
# random would score on this test set. A run whose accuracy lies in it is flagged **at chance**; a run
# whose predictions fall on three classes or fewer (90 % of them) is flagged **collapsed** — it may
# score above chance on a few classes while it has learnt nothing about the others. Flagged runs are
# shown, never ranked (definitions: `ferlib.study.stats`).

# %%
names = class_names(7)
tests = {name: [results[(name, s)].metrics["test_selected"] for s in ctx.profile.seeds_for(name)] for name in ctx.models}
summaries = {name: summarize_model(tests[name]) for name in ctx.models}
n_test = tests[ctx.models[0]][0]["n"]
chance = chance_interval(n_test, 7)
seed_values = {name: [t["accuracy"] for t in tests[name]] for name in ctx.models}
fig = plot_accuracy_intervals(summaries, seed_values, chance,
                              f"test accuracy, {ctx.dataset_label}, {n_test} test faces")
ctx.show(fig, "accuracy_intervals")

# %%
synth_rows = []
for name in ctx.models:
    acc, f1 = summaries[name]["accuracy"], summaries[name]["macro_f1"]
    synth_rows.append({
        "model": name,
        "seeds": acc["n"],
        "test accuracy % (mean ± std)": f"{100 * acc['mean']:.1f} ± {100 * acc['std']:.1f}",
        "95 % interval %": f"{100 * acc['low']:.1f}–{100 * acc['high']:.1f}",
        "interval": acc["interval"],
        "macro-F1": round(f1["mean"], 3),
        "flag": summaries[name]["flag"] or "—",
    })
display(Markdown(f"**SynthFER (synthetic)** — {ctx.dataset_label}"))
display(pd.DataFrame(synth_rows).set_index("model"))

# %%
clear = [m for m in ctx.models if summaries[m]["rankable"] and summaries[m]["accuracy"]["low"] > chance[1]]
twice = [m for m in ctx.models if summaries[m]["accuracy"]["mean"] >= 2 / 7]
flagged = [m for m in ctx.models if not summaries[m]["rankable"]]
flag_text = ", ".join(f"{m} ({summaries[m]['flag']})" for m in flagged)
widest = max(ctx.models, key=lambda m: summaries[m]["accuracy"]["high"] - summaries[m]["accuracy"]["low"])
w = summaries[widest]["accuracy"]
display(Markdown(
    f"**What this run shows.** Chance on these {n_test} test faces spans {100 * chance[0]:.0f}–{100 * chance[1]:.0f} %. "
    f"{len(clear)} of {len(ctx.models)} models have their whole 95 % interval above that band"
    + (f" ({', '.join(clear)})" if clear else "")
    + f"; {len(twice)} reach twice chance ({200 / 7:.1f} %) on average"
    + (f" ({', '.join(twice)})" if twice else "") + ". "
    + (f"Flagged, and left out of any ranking: {flag_text}. " if flagged else "No run is at chance or collapsed. ")
    + f"The widest interval is {widest}'s, {100 * (w['high'] - w['low']):.1f} points ({w['interval']}): "
    "differences smaller than that between two models are noise at this budget."
))

# %% [markdown]
# ## The papers' numbers, in a table of their own
# Each paper reports its accuracy on RAF-DB — 15,339 real faces from the internet, with a full
# training recipe and often pre-training. They are printed here for orientation only, in a separate
# table: a SynthFER accuracy after a few minutes of CPU training and a RAF-DB accuracy after a full
# recipe measure different things, and placing them in one column family would invite a comparison
# that means nothing.

# %%
paper_rows = []
for name in ctx.models:
    paper = paper_results().get(name, {})
    paper_rows.append({
        "model": name,
        "parameters (M)": round(sum(p.numel() for p in create_model(name).parameters()) / 1e6, 2),
        "RAF-DB accuracy % (paper)": paper.get("rafdb"),
        "source": paper.get("source", ""),
    })
display(Markdown("**Papers (RAF-DB, real faces, full recipes)** — not comparable with the SynthFER table above"))
display(pd.DataFrame(paper_rows).set_index("model"))

# %% [markdown]
# ## Learning curves, one column per network
# The training loss of each network is its own composite loss (AMP-Net's Eq. 7, MA-Net's Eq. 6,
# LAN's and FFRA-Net's weighted branch losses, a plain cross-entropy for ResNet-18), so the losses of
# two networks are not on a common scale: each column has its own loss axis. What to look for: the
# loss should fall from epoch to epoch; validation accuracy should rise above the dotted chance line;
# seeds that diverge from each other show how much of a single run is luck.

# %%
histories = {name: [results[(name, s)].history for s in ctx.profile.seeds_for(name)] for name in ctx.models}
fig = plot_curves(histories, f"learning curves, {ctx.dataset_label}")
ctx.show(fig, "curves")

# %%
falling = [m for m in ctx.models if all(h[-1]["train_loss"] < h[0]["train_loss"] for h in histories[m])]
rising = [m for m in ctx.models if all((h[-1].get("val_accuracy") or 0) > (h[0].get("val_accuracy") or 0)
                                        for h in histories[m])]
n_epochs = max(len(h) for hs in histories.values() for h in hs)
display(Markdown(
    f"**What this run shows.** Over {n_epochs} epoch(s), the training loss fell in every seed of "
    f"{len(falling)} of {len(ctx.models)} networks" + (f" ({', '.join(falling)})" if falling else "")
    + f"; validation accuracy rose from the first to the last epoch in every seed of {len(rising)}"
    + (f" ({', '.join(rising)})" if rising else "") + ". "
    + ("A network whose validation accuracy has not stopped rising would gain from more epochs: the "
       "budget, not the architecture, limits these numbers." if rising else "")
))

# %% [markdown]
# ## Which expressions are confused? (test set, validation-selected epoch, first seed)
# A confusion matrix shows, row by row, where the faces of one true class went. On SynthFER the
# expressions are built from facial action units (FACS); classes that share units — fear and
# surprise both raise the brows and open the eyes (AU1, AU2, AU5) — are the ones to watch.

# %%
for name in ctx.models:
    fig = plot_confusion(results[(name, ctx.profile.seeds_for(name)[0])].metrics["test_selected"],
                         f"{name} — {ctx.dataset_label}")
    ctx.show(fig, f"confusion_{name}", dpi=70)

# %%
top = {name: top_confusions(tests[name][0]["confusion_matrix"], names, k=1) for name in ctx.models}
lines = []
for name in ctx.models:
    if top[name]:
        t = top[name][0]
        lines.append(f"- {name}: {t['true']} is predicted as {t['predicted']} in {t['share']:.0%} of {t['true']} faces")
pairs = pd.Series([(t[0]["true"], t[0]["predicted"]) for t in top.values() if t]).value_counts()
common = pairs.index[0] if len(pairs) else None
display(Markdown(
    "**What this run shows.** The largest confusion of each network (share of the true class):\n"
    + "\n".join(lines)
    + (f"\n\n{pairs.iloc[0]} of {len(ctx.models)} networks share the same largest confusion, "
       f"{common[0]} → {common[1]}." if common is not None else "")
))

# %% [markdown]
# ## Choosing a model: on validation data only
# Picking the model with the best *test* accuracy and then quoting that accuracy reports the luckiest
# draw, not the model: the test set has then been used for a decision. We choose instead on the
# validation split (the mean over seeds of each run's best validation accuracy), among the runs that
# are not flagged. Notebook 05 explains this choice.

# %%
val = {m: sum(results[(m, s)].metrics["best_val_accuracy"] for s in ctx.profile.seeds_for(m))
          / len(ctx.profile.seeds_for(m)) for m in ctx.models}
candidates = [m for m in ctx.models if summaries[m]["rankable"]]
validation_choice = max(candidates, key=lambda m: val[m]) if candidates else None
display(pd.DataFrame({"mean best validation accuracy": val,
                      "rankable": {m: summaries[m]["rankable"] for m in ctx.models}}).round(3))
print("chosen on validation:", validation_choice or "none (every run is flagged)")

# %% [markdown]
# ## Exercises
# Replace each `None` by your answer and run the cell; the check prints *right*, *wrong* (with a
# hint) or *not answered yet*.
#
# 1. What is the upper end, in per cent, of the chance band on this test set (one decimal)?
# 2. How many of the trained models are flagged (at chance or collapsed)?
# 3. Which class is most often confused with another by the first model in the table
#    (`ctx.models[0]`)? Give the true class's name.
# 4. Two models' 95 % intervals overlap. May you say that the one with the higher mean is the better
#    network on this data? Answer "yes" or "no".

# %%
answer_1 = None
check_answer(answer_1, expected=round(100 * chance[1], 1), tolerance=0.15, name="Exercise 1",
             hint="chance_interval(n_test, 7) returns fractions; the band is drawn grey in the accuracy figure")

# %%
answer_2 = None
check_answer(answer_2, expected=len(flagged), name="Exercise 2",
             hint="look at the 'flag' column of the SynthFER table")

# %%
answer_3 = None
check_answer(answer_3, expected=top[ctx.models[0]][0]["true"] if top[ctx.models[0]] else "", name="Exercise 3",
             hint="read the first line of the list under the confusion matrices")

# %%
answer_4 = None
check_answer(answer_4, expected="no", name="Exercise 4",
             hint="an overlap means the data do not separate them at the 95 % level",
             explanation="Overlapping intervals do not show a difference; more seeds or test faces might.")

# %% [markdown]
# ## What you now know
# - A paper's recipe is a structure (optimiser, schedule, composite loss) that a profile can shrink
#   without changing; the shrunk numbers say what the budget allows, not what the architecture can do.
# - An accuracy is a mean with an interval; differences inside the intervals are noise.
# - A run at chance or collapsed onto a few classes is reported and flagged, never ranked.
# - Models are chosen on validation data; the test set is touched once, at the end.
# - Which expressions each network confuses, computed from its own confusion matrix.
#
# **Next:** notebook 04 runs the papers' ablation tables as grids of `create_model` keywords and
# asks, with the same intervals, which design choices make a difference beyond noise.

# %%
per_model = {}
for name in ctx.models:
    first = results[(name, ctx.profile.seeds_for(name)[0])]
    acc = summaries[name]["accuracy"]
    per_model[name] = {
        "accuracy": acc["mean"],
        "accuracy_std": acc["std"],
        "accuracy_low": acc["low"],
        "accuracy_high": acc["high"],
        "seeds": acc["n"],
        "macro_f1": summaries[name]["macro_f1"]["mean"],
        "val_accuracy": val[name],
        "final_train_loss": float(first.history[-1]["train_loss"]),
        "rankable": summaries[name]["rankable"],
        "flag": summaries[name]["flag"],
        "checkpoint": str((first.run_dir / "checkpoints" / "best.pt").relative_to(ctx.run_dir)),
    }
ctx.record(
    headline=["mean_accuracy", "flagged_models", "validation_choice"],
    models=per_model,
    mean_accuracy=float(pd.Series([v["accuracy"] for v in per_model.values()]).mean()),
    flagged_models=len(flagged),
    validation_choice=validation_choice or "",
    chance_high=chance[1],
    n_test=n_test,
    dataset=ctx.dataset, profile=ctx.profile.name, seeds=list(ctx.profile.seeds),
)
plt.close("all")
