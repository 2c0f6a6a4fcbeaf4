# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · The papers' ablations as parameter grids
#
# Each paper justifies its design with ablation tables: AMP-Net's modules (Tables I–II), LP schemes
# (Table III), region size L and λ (Fig. 8); MA-Net's multi-scale and local modules (Tables I–II),
# region strategies (Table III), fusion (Table IV) and λ (Fig. 6); LAN's fusion (Table 6) and α;
# FFRA-Net's fusion (Table 1), modules (Table 2) and λ; the Multiple Attention Network against its
# VGG16 baselines (Table 3). In ferlib every row of those tables is a set of keyword arguments of
# `create_model` (on each model's paper card: `ferlib.models.ablation_grids()`), so a table is a loop over training runs.
#
# **Read the two columns separately.** The paper's numbers were measured on the paper's dataset with
# the full recipe; this notebook's numbers come from the dataset, profile and seeds printed beside
# them. A SynthFER run with the `smoke` or `default` profile trains for minutes on synthetic faces: it
# shows the machinery, not a reproduction.

# %% tags=["parameters"]
profile = None  # None → $FERLIB_PROFILE, else "default"; or "smoke" / "default" / "full"
dataset = "synthfer"
data_root = None
models = None
device = "auto"
seed = 0
run_dir = None
ablations = None  # None → the profile's grids, e.g. ["ma-net-regions", "ffra-net-fusion"]
points = None  # rows per grid; None → the profile's

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from ferlib.models import ablation_grids
from ferlib.study import prepare_notebook
from ferlib.train import train

ctx = prepare_notebook("04_ablations.ipynb", profile=profile, dataset=dataset, data_root=data_root,
                       models=models, device=device, seed=seed, run_dir=run_dir,
                       ablations=ablations, ablation_points=points)
print(ctx.describe())
print("grids:", ", ".join(ctx.profile.ablations))

# %%
# NBVAL_CHECK_OUTPUT
for name in ("ma-net-regions", "amp-net-lp-scheme", "lan-fusion"):
    grid = ablation_grids()[name]
    print(f"{name} — {grid.source}, paper numbers on {grid.paper_dataset}:")
    for row in grid.rows:
        print(f"    {row.label:<32} {dict(row.variant)}  paper {row.paper}")

# %% [markdown]
# ## Run the grids

# %%
trained = ctx.metrics_of("03_training")
if trained:
    print("notebook 03 trained:", ", ".join(f"{m} ({v['accuracy']:.3f})" for m, v in trained["models"].items()))
rows = []
for name in ctx.profile.ablations:
    grid = ablation_grids()[name]
    for i, row in enumerate(grid.select(ctx.profile.ablation_points)):
        model = row.model or grid.model
        cfg = ctx.train_config(model, ctx.seed, profile=ctx.profile.ablation_profile, model_kwargs=dict(row.variant),
                               run_dir=str(ctx.path(f"ablations/{name}/{i:02d}")))
        res = train(cfg)
        acc = res.metrics["test_selected"]["accuracy"]
        rows.append({"grid": name, "setting": row.label, "paper %": row.paper,
                     "paper data": grid.paper_dataset, "this run %": round(100 * acc, 1),
                     "this run data": ctx.dataset_label})
        print(f"{name:<22} {row.label:<32} this run {100 * acc:5.1f}%   paper {row.paper}")
results = pd.DataFrame(rows)
display(results.set_index(["grid", "setting"]))

# %% [markdown]
# ## Side by side
# Left: what the paper reports. Right: this run. Different datasets, budgets and scales — compare the
# *ordering* of settings at most, and only for runs with a real dataset and the `full` profile.

# %%
for name, part in results.groupby("grid", sort=False):
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 1.6 + 0.45 * len(part)), sharey=True)
    y = np.arange(len(part))
    a.barh(y, part["paper %"].fillna(0), color="#0072B2")
    a.set_yticks(y, part["setting"])
    a.set_title(f"paper ({ablation_grids()[name].paper_dataset})", fontsize=9)
    a.set_xlabel("accuracy % (missing = not printed)")
    b.barh(y, part["this run %"], color="#E69F00")
    b.set_title(f"this run ({ctx.dataset_label})", fontsize=9)
    b.set_xlabel("accuracy %")
    b.axvline(100 / 7, color="grey", ls=":", lw=1)
    fig.suptitle(f"{name}: {ablation_grids()[name].source}", fontsize=10)
    fig.tight_layout()
    ctx.show(fig, f"ablation_{name}")

# %%
ctx.record(
    headline=["runs", "best_setting"],
    runs=len(results),
    best_setting=str(results.loc[results["this run %"].idxmax(), "setting"]) if len(results) else "",
    table=results.drop(columns=["this run data"]).to_dict(orient="records"),
    dataset=ctx.dataset, profile=ctx.profile.name,
)
