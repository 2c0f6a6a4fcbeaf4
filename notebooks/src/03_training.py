# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Training the five networks
#
# Each paper trains its network with a recipe — optimiser, learning rate and schedule, batch size,
# epochs, augmentation and a combined loss, e.g. AMP-Net's
# $\mathcal{L} = \lambda\,\mathcal{L}_{GP} + (1-\lambda)\,\mathcal{L}_{LAP}$ (amp-net.txt Eq. 7) or MA-Net's
# $\mathcal{L} = \lambda\,\mathcal{L}_{local} + (1-\lambda)\,\mathcal{L}_{global}$ (ma-net.txt Eq. 6).
# `ferlib.train` holds those recipes; a *profile* shrinks them (fewer epochs, smaller batches and
# data) without changing their structure, so the same notebook is a CI check, a laptop study or a GPU
# reproduction.
#
# Evaluation is honest: a seeded, stratified validation split is carved from the training data,
# the epoch is chosen on it, and the test set is touched once at the end.

# %% tags=["parameters"]
profile = None  # None → $FERLIB_PROFILE, else "default"; or "smoke" / "default" / "full"
dataset = "synthfer"
data_root = None
models = None  # None → the profile's models, e.g. ["resnet18", "ma-net", "amp-net-r18", "lan", "ffra-net"]
device = "auto"
seed = 0
run_dir = None
epochs = None  # None → the engine profile's (ctx.profile.train_profile)

# %%
import dataclasses
import json

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from ferlib.data.labels import class_names
from ferlib.models import create_model, paper_results, recipe_name
from ferlib.study import prepare_notebook
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
# profile names.

# %%
rows = []
for name in ctx.models:
    paper = load_recipe(recipe_name(name), ctx.dataset)
    shrunk = apply_profile(paper, ctx.train_profile)
    rows.append({
        "model": name, "recipe": paper.name, "optimiser": paper.optimizer, "lr": paper.lr,
        "paper batch": paper.batch_size, "paper budget": paper.epochs or f"{paper.iterations} it",
        "this run: batch": shrunk.batch_size, "this run: lr": shrunk.lr,
        "this run: epochs": epochs or shrunk.epochs or f"{shrunk.iterations} it",
    })
display(pd.DataFrame(rows).set_index("model"))

# %% [markdown]
# ## Train
# One run folder per model and seed inside this study's folder (config, metrics, curves, confusion
# matrices and checkpoints). On a GPU the engine uses mixed precision and channels-last by itself.

# %%
results = {}
for name in ctx.models:
    for s in ctx.profile.seeds:
        res = train(ctx.train_config(name, s, epochs=epochs))  # into <run>/train/<name>/seed-<s>
        results[(name, s)] = res
        sel = res.metrics["test_selected"]
        print(f"{name:<12} seed {s}: test accuracy {sel['accuracy']:.3f}, macro-F1 {sel['macro_f1']:.3f} "
              f"(epoch {res.best_epoch} chosen on validation)")

# %% [markdown]
# ## Learning curves

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for (name, s), res in results.items():
    hist = res.history
    ep = [h["epoch"] for h in hist]
    axes[0].plot(ep, [h["train_loss"] for h in hist], "o-", label=f"{name} (seed {s})")
    axes[1].plot(ep, [h["val_accuracy"] for h in hist], "o-", label=f"{name} (seed {s})")
axes[0].set(title="training loss", xlabel="epoch")
axes[1].set(title="validation accuracy", xlabel="epoch", ylim=(0, 1))
axes[1].axhline(1 / 7, color="grey", ls=":", label="chance (1/7)")
axes[1].legend(fontsize=7)
fig.suptitle(ctx.dataset_label, fontsize=9)
fig.tight_layout()
ctx.show(fig, "curves")

# %% [markdown]
# ## Confusion matrices (test set, validation-selected epoch)

# %%
for (name, s), res in results.items():
    if s != ctx.profile.seeds[0]:
        continue
    fig = plot_confusion(res.metrics["test_selected"], f"{name} — {ctx.dataset_label}")
    ctx.show(fig, f"confusion_{name}")

# %% [markdown]
# ## Results
# The paper column is each paper's reported RAF-DB accuracy. It is a reference for real-dataset
# runs only: **a SynthFER run is synthetic data with a tiny budget and is not comparable.**

# %%
table = []
for name in ctx.models:
    runs = [results[(name, s)] for s in ctx.profile.seeds]
    acc = pd.Series([r.metrics["test_selected"]["accuracy"] for r in runs])
    f1 = pd.Series([r.metrics["test_selected"]["macro_f1"] for r in runs])
    paper = paper_results().get(name, {})
    table.append({
        "model": name,
        "parameters (M)": round(sum(p.numel() for p in create_model(name).parameters()) / 1e6, 2),
        "test accuracy %": f"{100 * acc.mean():.1f}" + (f" ± {100 * acc.std():.1f}" if len(acc) > 1 else ""),
        "macro-F1": round(float(f1.mean()), 3),
        "data": ctx.dataset_label,
        "paper, RAF-DB %": paper.get("rafdb"),
        "paper source": paper.get("source", ""),
    })
results_table = pd.DataFrame(table).set_index("model")
display(results_table)

# %%
per_model = {
    name: {
        "accuracy": float(pd.Series([results[(name, s)].metrics["test_selected"]["accuracy"] for s in ctx.profile.seeds]).mean()),
        "macro_f1": float(pd.Series([results[(name, s)].metrics["test_selected"]["macro_f1"] for s in ctx.profile.seeds]).mean()),
        "final_train_loss": float(results[(name, ctx.profile.seeds[0])].history[-1]["train_loss"]),
        "checkpoint": str((results[(name, ctx.profile.seeds[0])].run_dir / "checkpoints" / "best.pt").relative_to(ctx.run_dir)),
    }
    for name in ctx.models
}
best = max(per_model, key=lambda m: per_model[m]["accuracy"])
ctx.record(
    headline=["best_model", "best_accuracy", "mean_accuracy"],
    models=per_model, best_model=best, best_accuracy=per_model[best]["accuracy"],
    mean_accuracy=float(pd.Series([v["accuracy"] for v in per_model.values()]).mean()),
    dataset=ctx.dataset, profile=ctx.profile.name, seeds=list(ctx.profile.seeds),
)
