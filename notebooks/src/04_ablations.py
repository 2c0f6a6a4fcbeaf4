# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · The papers' ablations as parameter grids — and when a difference is real
#
# Each paper justifies its design with ablation tables: AMP-Net's modules (Tables I–II), LP schemes
# (Table III), region size L and λ (Fig. 8); MA-Net's multi-scale and local modules (Tables I–II),
# region strategies (Table III), fusion (Table IV) and λ (Fig. 6); LAN's fusion (Table 6) and the
# guidance weight α; FFRA-Net's fusion (Table 1), modules (Table 2) and λ; the Multiple Attention
# Network against its VGG16 baselines (Table 3). In ferlib every row of those tables is a set of keyword
# arguments of `create_model` (on each model's paper card: `ferlib.models.ablation_grids()`), so a
# table is a loop over training runs.
#
# **Learning goals.** Turn an ablation table into a grid of runs; give each row its 95 % interval;
# decide whether the rows of a grid differ beyond those intervals or lie *within noise* — and name a
# best setting only in the first case; compare with a paper only where the data allow it (FFRA-Net's
# fusion rows are measured on sunglasses-occluded faces, so this notebook trains them on SynthFER
# faces that all wear sunglasses).
#
# **Which run made these outputs.** The setup cell below prints the profile that made them (docs/study.md
# says which one the committed outputs come from): `lecture` (`ferlib study --profile lecture`) runs three
# grids; `make study` (`default`) runs **a quick version** (one grid). Every number of this notebook is measured on SynthFER, ferlib's **synthetic**
# faces, after minutes of CPU training: the paper columns are the papers' own numbers on real faces
# with full recipes, shown beside ours on the same 0–100 % scale for orientation, not as a
# reproduction.
#
# **References**
# - AMP-Net: H. Liu et al., IEEE TCSVT 32(9), 2022. doi:10.1109/TCSVT.2022.3165321
# - MA-Net: Z. Zhao, Q. Liu, S. Wang, IEEE TIP 30, 2021. doi:10.1109/TIP.2021.3093397
# - LAN (local attention network with guidance map): S. Cho, J. Lee, IEEE Access 10, 2022. doi:10.1109/ACCESS.2022.3198658
# - FFRA-Net (feature fusion residual attention network): Y. Chen, S. Liu, D. Zhao, W. Ji, Front. Neurorobot. 17,
#   2023. doi:10.3389/fnbot.2023.1250706
# - MAN (multiple attention network): Y. Gan, J. Chen, Z. Yang, L. Xu, IEEE Access 8, 2020. doi:10.1109/ACCESS.2020.2963913
# - RAF-DB: S. Li, W. Deng, J. Du, CVPR 2017. doi:10.1109/CVPR.2017.277
# - Wilson interval: E. B. Wilson, JASA 22(158), 1927. doi:10.1080/01621459.1927.10502953

# %% tags=["parameters"]
profile = None  # None → $FERLIB_PROFILE, else "default"; or "smoke" / "default" / "lecture" / "full"
dataset = "synthfer"
data_root = None
models = None
device = "auto"
seed = 0
run_dir = None
ablations = None  # None → the profile's grids, e.g. ["lan-alpha", "ffra-net-fusion"]
points = None  # rows per grid; None → the profile's

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from ferlib.models import ablation_grids
from ferlib.study import prepare_notebook
from ferlib.study.exercises import check_answer
from ferlib.study.figures import plot_ablation_grid
from ferlib.study.stats import best_separated, chance_interval, separated, summarize_model
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
# Each row is trained with the ablation engine profile (`ctx.profile.ablation_profile`) and the
# profile's ablation seeds; a grid may bring its own faces (`ctx.profile.ablation_dataset_kwargs`):
# FFRA-Net's fusion grid puts sunglasses on every SynthFER face, train and test, like the paper's
# SG_RAF-DB.

# %%
trained = ctx.metrics_of("03_training")
if trained:
    print("notebook 03 trained:", ", ".join(f"{m} ({v['accuracy']:.3f})" for m, v in trained["models"].items()))
seeds = ctx.profile.ablation_seeds or (ctx.seed,)
runs = {}
for name in ctx.profile.ablations:
    grid = ablation_grids()[name]
    data_kw = ctx.profile.ablation_dataset_kwargs(name)
    for i, row in enumerate(grid.select(ctx.profile.ablation_points)):
        model = row.model or grid.model
        for s in seeds:
            cfg = ctx.train_config(model, s, profile=ctx.profile.ablation_profile, model_kwargs=dict(row.variant),
                                   dataset_kwargs=data_kw, run_dir=str(ctx.path(f"ablations/{name}/{i:02d}/seed-{s}")))
            res = train(cfg)
            runs.setdefault((name, row.label), []).append(res.metrics["test_selected"])
            print(f"{name:<22} {row.label:<32} seed {s}: {100 * res.metrics['test_selected']['accuracy']:5.1f}%")

# %% [markdown]
# ## Rows with their intervals, and whether a grid says anything
# Each row gets the 95 % interval of its accuracy: Student's t over seeds, or with one seed the Wilson
# interval over the test faces. A grid **differs beyond noise** when the interval of its highest row
# lies wholly above that of its lowest; only then is a **best setting** named, and only when the top
# row's interval lies above *every* other row's and the row is not flagged. Otherwise the grid is
# **within noise**: at this budget the data cannot tell its settings apart, whatever the paper found.

# %%
rows, grids = [], {}
for name in ctx.profile.ablations:
    grid = ablation_grids()[name]
    selected = grid.select(ctx.profile.ablation_points)
    sums = [summarize_model(runs[(name, r.label)]) for r in selected]
    intervals = [(s["accuracy"]["low"], s["accuracy"]["high"]) for s in sums]
    labels = [r.label for r in selected]
    best = best_separated(labels, intervals)
    if best is not None and not sums[labels.index(best)]["rankable"]:
        best = None
    n_test = runs[(name, selected[0].label)][0]["n"]
    occluded = "occlusion_probs" in str(ctx.profile.ablation_dataset_kwargs(name))
    paper_on_occluded = "sunglasses" in grid.paper_dataset.lower() or "sg_" in grid.paper_dataset.lower()
    data_desc = (f"SynthFER (synthetic, {ctx.synthfer_preset} preset, sunglasses on every face)" if occluded
                 else ctx.dataset_label.split(", profile")[0])
    grids[name] = {
        "data": data_desc,
        "status": "differ beyond noise" if separated(intervals) else "within noise",
        "best_setting": best or "",
        "chance": chance_interval(n_test, 7),
        "n_test": n_test,
        "paper_comparable": not paper_on_occluded or occluded,
        "summaries": sums,
        "labels": labels,
        "paper": [r.paper for r in selected],
    }
    for r, s in zip(selected, sums):
        acc = s["accuracy"]
        rows.append({"grid": name, "setting": r.label, "seeds": acc["n"],
                     "SynthFER (synthetic) %": f"{100 * acc['mean']:.1f}",
                     "95 % interval %": f"{100 * acc['low']:.1f}–{100 * acc['high']:.1f}",
                     "flag": s["flag"] or "—"})
display(Markdown(f"**SynthFER (synthetic)** — profile {ctx.profile.name} (engine profile "
                 f"`{ctx.profile.ablation_profile}`), seed(s) {', '.join(map(str, seeds))}; faces: "
                 + "; ".join(f"{n}: {g['data']}" for n, g in grids.items())))
display(pd.DataFrame(rows).set_index(["grid", "setting"]))
display(pd.DataFrame({n: {"verdict": g["status"], "best setting": g["best_setting"] or "— (none named)"}
                      for n, g in grids.items()}).T)

# %% [markdown]
# ## Side by side, on one scale
# Left: what the paper reports (its dataset in the title; "not printed" where the paper gives no
# number). Right: this run, with 95 % intervals, the labelled chance line and its band. Both columns
# run from 0 to 100 %, so the distance between the papers' numbers on real faces and ours on synthetic
# ones is visible rather than hidden by two different axes. Read the *ordering* of the rows at most —
# and only where this run's rows differ beyond noise.

# %%
for name, g in grids.items():
    grid = ablation_grids()[name]
    paper_title = f"paper ({grid.paper_dataset}; {grid.source})" if g["paper_comparable"] else None
    fig = plot_ablation_grid(
        g["labels"], g["paper"], [s["accuracy"]["mean"] for s in g["summaries"]],
        [(s["accuracy"]["low"], s["accuracy"]["high"]) for s in g["summaries"]], g["chance"],
        paper_title, f"this run, seed(s) {', '.join(map(str, seeds))}: {g['status']}",
        f"{name} — {g['data']}, profile {ctx.profile.name}",
        flags=[s["flag"] for s in g["summaries"]],
    )
    ctx.show(fig, f"ablation_{name}", dpi=80)
    if not g["paper_comparable"]:
        print(f"{name}: the paper's numbers ({grid.paper_dataset}) are on occluded faces and this run's are not; "
              "the paper column is left out rather than compared.")

# %%
lines = []
for name, g in grids.items():
    means = [s["accuracy"]["mean"] for s in g["summaries"]]
    hi, lo = max(range(len(means)), key=means.__getitem__), min(range(len(means)), key=means.__getitem__)
    papers = [p for p in g["paper"] if p is not None]
    paper_best = g["labels"][g["paper"].index(max(papers))] if papers else None
    text = (f"- **{name}**: rows span {100 * means[lo]:.1f} % ({g['labels'][lo]}) to {100 * means[hi]:.1f} % "
            f"({g['labels'][hi]}); {g['status']}")
    text += f", best setting {g['best_setting']}." if g["best_setting"] else ", so no best setting is named."
    if paper_best is not None and g["paper_comparable"]:
        same = paper_best == g["labels"][hi]
        text += (f" The paper's best row ({paper_best}) is {'also' if same else 'not'} this run's highest mean"
                 + ("" if g["status"] == "differ beyond noise" else " — which, within noise, means nothing") + ".")
    flagged = [lab for lab, s in zip(g["labels"], g["summaries"]) if s["flag"]]
    if flagged:
        text += f" Flagged rows (at chance or collapsed): {', '.join(flagged)}."
    lines.append(text)
display(Markdown("**What this run shows.**\n" + "\n".join(lines)))

# %% [markdown]
# ## Exercises
# 1. How many grids of this run are *within noise*?
# 2. For the first grid, what is the width in percentage points of its first row's 95 % interval
#    (one decimal)?
# 3. A grid's rows have single-seed Wilson intervals of ±6 points. Roughly how many times more test faces
#    would halve them? (A whole number.)
# 4. Why is FFRA-Net's fusion grid trained on faces with sunglasses? Answer with the name of the
#    paper's dataset as printed in the grid (`ablation_grids()["ffra-net-fusion"].paper_dataset`).

# %%
answer_1 = None
check_answer(answer_1, expected=sum(g["status"] == "within noise" for g in grids.values()), name="Exercise 1",
             hint="count the 'within noise' verdicts in the table above the figures")

# %%
first = next(iter(grids.values()))["summaries"][0]["accuracy"]
answer_2 = None
check_answer(answer_2, expected=round(100 * (first["high"] - first["low"]), 1), tolerance=0.15, name="Exercise 2",
             hint="high minus low of the first row's '95 % interval %' column")

# %%
answer_3 = None
check_answer(answer_3, expected=4, name="Exercise 3",
             hint="an interval's width shrinks with the square root of the number of faces",
             explanation="The width scales as 1/√n: four times the faces halve it.")

# %%
answer_4 = None
check_answer(answer_4, expected=ablation_grids()["ffra-net-fusion"].paper_dataset, name="Exercise 4",
             hint="the paper measured its fusion rows on a sunglasses-occluded version of RAF-DB")

# %% [markdown]
# ## What you now know
# - An ablation table is a grid of `create_model` keywords trained with the same recipe and budget.
# - A row is a mean with an interval; a grid differs beyond noise only when its intervals separate, and
#   a best setting is named only then.
# - A paper's number is compared only with a run on comparable data (occluded with occluded), and
#   always on the same scale.
#
# **Next:** notebook 05 opens the trained networks of notebook 03 and asks where they look: Grad-CAM
# and each method's own attention, on the same faces.

# %%
ctx.record(
    headline=["runs", "grids_within_noise"],
    runs=sum(len(v) for v in runs.values()),
    grids_within_noise=sum(g["status"] == "within noise" for g in grids.values()),
    grids={n: {"status": g["status"], "best_setting": g["best_setting"], "n_test": g["n_test"],
               "paper_compared": g["paper_comparable"]} for n, g in grids.items()},
    table=[{"grid": name, "setting": lab, "paper %": p, "accuracy": s["accuracy"]["mean"],
            "low": s["accuracy"]["low"], "high": s["accuracy"]["high"], "seeds": s["accuracy"]["n"], "flag": s["flag"]}
           for name, g in grids.items() for lab, p, s in zip(g["labels"], g["paper"], g["summaries"])],
    dataset=ctx.dataset, profile=ctx.profile.name,
)
plt.close("all")
