"""One profile system: a study profile holds notebook knobs and names the engine profiles
(``ferlib/recipes/profiles.yaml``) that own every training size and budget.

The notebooks used to build their ``TrainConfig`` by hand from study-profile sizes; the expected
values below are what those hand-built cells produced (``notebooks/03_training.ipynb`` and
``04_ablations.ipynb`` before ``NotebookContext.train_config``), so the committed notebook outputs
and ``notebooks/baselines/smoke_metrics.json`` stay valid only if these tests pass.
"""

from __future__ import annotations

import dataclasses

import pytest

from ferlib.config import to_dict
from ferlib.models import ablation_grids
from ferlib.profiles import PROFILES, StudyProfile
from ferlib.study import prepare_notebook
from ferlib.train import TrainConfig, load_profile, resolve_recipe

#: What notebook 03's hand-built ``TrainConfig`` held for each study profile (sizes and budgets).
OLD_03 = {
    "smoke": dict(
        profile="smoke",
        epochs=1,
        batch_size=8,
        n_train=32,
        n_test=14,
        max_train=32,
        max_test=14,
        dataset_kwargs={"config": "standard"},
    ),
    # issue 14 gave `default` a new budget (3 epochs, three points per curve, within 15 minutes with
    # five models): these are the sizes its engine profile must resolve to
    "default": dict(
        profile="default",
        epochs=3,
        batch_size=32,
        n_train=384,
        n_test=210,
        max_train=2000,
        max_test=700,
        dataset_kwargs={"config": "frontal"},
    ),
}
#: The same for notebook 04's ablation runs.
OLD_04 = {
    "smoke": dict(OLD_03["smoke"], n_train=24, n_test=14),
    "default": dict(OLD_03["default"], n_train=320, n_test=140),
}
#: Grids whose runs bring their own faces (issue 14: FFRA-Net's fusion rows on sunglasses, like SG_RAF-DB).
SUNGLASSES_04 = {
    ("smoke", "ffra-net-fusion"): {
        "dataset_kwargs": {"config": {"preset": "standard", "occlusion_probs": {"sunglasses": 1.0}}}
    },
}
#: ``NotebookContext.learning_rate`` capped a recipe's rate above 0.01 (LAN's 0.1), else passed None.
OLD_LR = {"ma-net": None, "lan": 0.01, "resnet18": None, "ffra-net": None}


def _effective(cfg: TrainConfig) -> dict:
    """What a run trains with: the resolved recipe, the data sizes and split, the dataset keywords."""
    recipe, profile = resolve_recipe(cfg)
    kw = dict(cfg.dataset_kwargs)
    if cfg.dataset == "synthfer" and cfg.root is None:
        kw.setdefault("config", profile.synthfer_preset or "standard")
    return {
        "recipe": to_dict(recipe),
        "n_train": cfg.n_train or profile.n_train,
        "n_test": cfg.n_test or profile.n_test,
        "max_train": profile.max_train if cfg.max_train is None else cfg.max_train,
        "max_test": profile.max_test if cfg.max_test is None else cfg.max_test,
        "val_fraction": profile.val_fraction if cfg.val_fraction is None else cfg.val_fraction,
        "dataset_kwargs": kw,
        "model_kwargs": cfg.model_kwargs,
        "seed": cfg.seed,
        "device": cfg.device,
        "run_dir": cfg.run_dir,
    }


@pytest.mark.parametrize("study", ["smoke", "default"])
@pytest.mark.parametrize("model", ["ma-net", "lan"])
def test_train_config_trains_exactly_what_the_hand_built_cell_did(study, model, tmp_path):
    ctx = prepare_notebook("03_training.ipynb", profile=study, run_dir=tmp_path, device="cpu")
    new = ctx.train_config(model, 0)
    assert new.profile == f"study-{study}"
    assert (new.epochs, new.batch_size, new.lr, new.n_train, new.n_test, new.max_train, new.max_test) == (None,) * 7
    assert new.dataset_kwargs == {} and not new.tensorboard and not new.progress
    old = TrainConfig(
        model=model,
        dataset="synthfer",
        root=None,
        seed=0,
        lr=OLD_LR[model],
        device="cpu",
        num_workers=0,
        progress=False,
        tensorboard=False,
        run_dir=str(tmp_path / "train" / model / "seed-0"),
        **OLD_03[study],
    )
    assert _effective(new) == _effective(old)
    # the same run_dir, device, seed, model: every other field is the TrainConfig default in both
    assert dataclasses.replace(new, **{k: getattr(old, k) for k in OLD_03[study]}, lr=old.lr) == old


@pytest.mark.parametrize("study", ["smoke", "default"])
def test_ablation_runs_train_exactly_what_the_hand_built_cell_did(study, tmp_path):
    ctx = prepare_notebook("04_ablations.ipynb", profile=study, run_dir=tmp_path, device="cpu")
    for name in ctx.profile.ablations:
        grid = ablation_grids()[name]
        for i, row in enumerate(grid.select(ctx.profile.ablation_points)):
            model = row.model or grid.model
            run_dir = str(tmp_path / "ablations" / name / f"{i:02d}")
            new = ctx.train_config(
                model,
                ctx.seed,
                profile=ctx.profile.ablation_profile,
                model_kwargs=dict(row.variant),
                run_dir=run_dir,
                dataset_kwargs=ctx.profile.ablation_dataset_kwargs(name),
            )
            old = TrainConfig(
                model=model,
                seed=0,
                lr=OLD_LR.get(model),
                model_kwargs=dict(row.variant),
                device="cpu",
                progress=False,
                tensorboard=False,
                run_dir=run_dir,
                **{**OLD_04[study], **SUNGLASSES_04.get((study, name), {})},
            )
            assert _effective(new) == _effective(old), (name, row.label)


def test_study_profiles_hold_no_training_sizes_and_name_real_engine_profiles():
    fields = {f.name for f in dataclasses.fields(StudyProfile)}
    engine = {f.name for f in dataclasses.fields(load_profile("smoke"))} - {"name", "description"}
    assert not fields & (engine | {"max_lr", "image_size", "synthfer_config", "ablation_epochs"})
    for prof in PROFILES.values():
        for name in (prof.train_profile, prof.ablation_profile):
            assert load_profile(name).name == name
    # the study's budgets (engine profiles of their own) and `ferlib train`'s are separate entries
    assert (load_profile("study-smoke").n_train, load_profile("smoke").n_train) == (32, 24)
    assert (load_profile("study-default").epochs, load_profile("default").epochs) == (3, 4)
    assert load_profile("ablation-default").max_decays == load_profile("study-default").max_decays == 1
    assert load_profile("study-full").max_lr is None and load_profile("study-full").epochs is None


def test_lecture_profile_trains_every_network_over_three_seeds_and_three_row_grids(tmp_path):
    lecture = PROFILES["lecture"]
    assert set(lecture.models) == {"resnet18", "ma-net", "amp-net-r18", "lan", "ffra-net", "man"}
    assert lecture.seeds_for("ma-net") == (0, 1, 2) and lecture.seeds_for("man") == (0,)
    assert all(len(ablation_grids()[g].select(lecture.ablation_points)) >= 3 for g in lecture.ablations)
    default = PROFILES["default"]
    assert "resnet18" in default.models and len(set(default.models) - {"resnet18"}) >= 4
    assert all(len(ablation_grids()[g].select(default.ablation_points)) >= 3 for g in default.ablations)
    # FFRA-Net's fusion rows run on sunglasses-occluded faces, like the paper's SG_RAF-DB
    ctx = prepare_notebook("04_ablations.ipynb", profile="lecture", run_dir=tmp_path, device="cpu")
    cfg = ctx.train_config(
        "ffra-net",
        0,
        profile=lecture.ablation_profile,
        dataset_kwargs=lecture.ablation_dataset_kwargs("ffra-net-fusion"),
    )
    kw = _effective(cfg)["dataset_kwargs"]
    assert kw == {"config": {"preset": "frontal", "occlusion_probs": {"sunglasses": 1.0}}}
    assert lecture.ablation_dataset_kwargs("lan-alpha") == {}
    # every study profile's engine profiles: 3 epochs or more in the CPU study profiles (curves of 3+ points)
    for name in ("default", "lecture"):
        assert load_profile(PROFILES[name].train_profile).epochs >= 3
        assert load_profile(PROFILES[name].ablation_profile).epochs >= 3
