"""The papers' recipes load with their numbers, and profiles shrink them without changing structure."""

from __future__ import annotations

import dataclasses

import pytest

from ferlib.train.recipes import (
    Recipe,
    apply_profile,
    list_recipes,
    load_profile,
    load_recipe,
    rebudget,
)


def test_every_paper_has_a_recipe_and_each_loads():
    names = list_recipes()
    for name in ("amp-net", "ma-net", "lan", "ffra-net", "man"):
        assert name in names
        r = load_recipe(name)
        assert r.model == name and r.source, name


def test_recipes_carry_the_papers_numbers():
    amp = load_recipe("amp-net")  # amp-net.txt §IV-A
    assert (amp.optimizer, amp.momentum, amp.weight_decay, amp.lr, amp.batch_size, amp.epochs) == (
        "sgd",
        0.9,
        1e-4,
        0.1,
        350,
        100,
    )
    assert (amp.schedule.step_size, amp.schedule.gamma, amp.schedule.unit) == (20, 0.1, "epochs")
    assert amp.augment.hflip and amp.augment.translate > 0 and amp.augment.saturation > 0
    assert amp.model_kwargs == {"lam": 0.5}
    ma = load_recipe("ma-net")  # ma-net.txt §IV-B
    assert (ma.optimizer, ma.momentum, ma.lr, ma.batch_size, ma.epochs, ma.schedule.step_size) == (
        "sgd",
        0.9,
        0.01,
        128,
        100,
        15,
    )
    assert ma.model_kwargs == {"lam": 0.6}
    lan = load_recipe("lan")  # lan.txt §IV-B
    assert (lan.optimizer, lan.lr, lan.batch_size) == ("sgd", 0.1, 64)
    assert lan.guidance_warmup_epochs is not None and lan.model_kwargs == {"alpha": 0.5}
    ffra = load_recipe("ffra-net")  # ffra-net.txt §4.1
    assert (ffra.optimizer, ffra.lr, ffra.batch_size, ffra.epochs) == ("adam", 1e-4, 128, 200)
    assert ffra.model_kwargs == {"lam": 0.6}
    man = load_recipe("man")  # man.txt §IV-B
    assert (man.optimizer, man.momentum, man.weight_decay, man.batch_size, man.lr) == ("sgd", 0.9, 5e-4, 42, 1e-3)
    assert (man.schedule.step_size, man.schedule.unit) == (5000, "iterations")
    assert [(s.name, s.iterations) for s in man.stages] == [("rasnet", 20000), ("ersnet", 20000)]


def test_dataset_overrides():
    caer = load_recipe(
        "ma-net", dataset="CAER-S"
    )  # "from scratch ... lr 0.1 ... by two every 50 epochs ... 400th epoch"
    assert (caer.lr, caer.epochs, caer.schedule.step_size, caer.schedule.gamma) == (0.1, 400, 50, 0.5)
    assert load_recipe("ma-net", dataset="affectnet").sampler == "class_balanced"
    assert load_recipe("ma-net", dataset="rafdb").sampler == "random"
    fer = load_recipe("amp-net", dataset="fer2013")
    assert (fer.augment.brightness, fer.augment.contrast, fer.augment.saturation) == (0, 0, 0)
    assert fer.augment.hflip and fer.augment.translate > 0  # only the colour jitter goes
    assert [s.iterations for s in load_recipe("man", dataset="ck+").stages] == [1000, 1000]


def _decays(recipe: Recipe, budget: int) -> int:
    """How many times the learning rate drops over ``budget`` units of the schedule."""
    return (budget - 1) // recipe.schedule.step_size if recipe.schedule.kind == "step" else 0


@pytest.mark.parametrize("profile", ["smoke", "default", "full"])
@pytest.mark.parametrize("name", ["amp-net", "ma-net", "lan", "ffra-net", "man", "baseline"])
def test_profiles_keep_the_structure(name, profile):
    r = load_recipe(name)
    p = load_profile(profile)
    s = apply_profile(r, p)
    # What a profile may not change:
    same = ("optimizer", "momentum", "weight_decay", "model", "model_kwargs", "augment", "sampler")
    assert all(getattr(s, f) == getattr(r, f) for f in same)
    assert s.lr == (r.lr if p.max_lr is None else min(r.lr, p.max_lr))
    assert [st.name for st in s.stage_plan()] == [st.name for st in r.stage_plan()]
    assert (s.schedule.kind, s.schedule.unit, s.schedule.gamma) == (r.schedule.kind, r.schedule.unit, r.schedule.gamma)
    for old, new in zip(r.stage_plan(), s.stage_plan()):
        if old.epochs is not None:
            assert new.epochs == (old.epochs if p.epochs is None else min(old.epochs, p.epochs))
        else:
            assert new.iterations == (old.iterations if p.iterations is None else min(old.iterations, p.iterations))
    if p.batch_size is not None:
        assert s.batch_size == min(r.batch_size, p.batch_size)
    if profile == "full":
        assert s == r
    if profile == "default" and r.schedule.kind == "step":
        # the recipe's number of learning-rate decays within the (shrunk) budget, up to rounding,
        # but no more than the profile's max_decays
        old = r.stage_plan()[0].epochs or r.stage_plan()[0].iterations
        new = s.stage_plan()[0].epochs or s.stage_plan()[0].iterations
        want = _decays(r, old) if p.max_decays is None else min(_decays(r, old), p.max_decays)
        assert abs(_decays(s, new) - want) <= 1 and (p.max_decays is None or _decays(s, new) <= p.max_decays)


def test_rebudget_can_lengthen_and_rescales_milestones():
    r = rebudget(load_recipe("ma-net"), epochs=200)
    assert (r.epochs, r.schedule.step_size) == (200, 30)
    m = rebudget(load_recipe("man"), iterations=40)
    assert [s.iterations for s in m.stages] == [40, 40] and m.schedule.step_size == 10


def test_bad_recipes_are_refused_with_the_file_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: ma-net\noptimizer: rmsprop\nepochs: 3\n")
    with pytest.raises(ValueError, match="bad.yaml.*optimizer must be"):
        load_recipe(str(bad))
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: x\nmodel: ma-net\nepochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(ValueError, match="typo.yaml.*learning_rate"):
        load_recipe(str(typo))
    with pytest.raises(FileNotFoundError, match="available: .*ma-net"):
        load_recipe("no-such-recipe")
    with pytest.raises(ValueError, match="exactly one of epochs or iterations"):
        dataclasses.replace(load_recipe("ma-net"), iterations=5)


def test_recipe_model_keywords_are_accepted_by_the_models():
    import inspect

    from ferlib.models import list_models
    from ferlib.models.registry import model_entry

    for name in ("amp-net", "ma-net", "lan", "ffra-net", "man"):
        if name not in list_models():
            continue
        r = load_recipe(name)
        factory = model_entry(name).factory
        params = inspect.signature(factory).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            continue  # keywords forwarded to the class; checked by the smoke training test
        assert set(r.model_kwargs) <= set(params), (name, r.model_kwargs)


def test_cpu_profiles_cap_the_learning_rate_and_an_explicit_lr_wins():
    from ferlib.train.config import TrainConfig, resolve_recipe

    default = load_profile("default")
    assert default.max_lr == 0.01
    assert apply_profile(load_recipe("amp-net"), default).lr == 0.01  # paper: 0.1 at batch 350
    assert apply_profile(load_recipe("lan"), default).lr == 0.01
    assert apply_profile(load_recipe("ffra-net"), default).lr == 1e-4  # Adam's rate is below the cap
    assert apply_profile(load_recipe("man"), default).lr == 1e-3
    recipe, _ = resolve_recipe(TrainConfig(model="amp-net", profile="default", lr=0.05))
    assert recipe.lr == 0.05
    recipe, _ = resolve_recipe(TrainConfig(model="amp-net", profile="full"))
    assert recipe.lr == 0.1


def test_default_profile_trains_on_the_frontal_synthfer_preset_unless_told_otherwise():
    from ferlib.data.synthfer import SYNTHFER_PRESETS
    from ferlib.train.config import TrainConfig
    from ferlib.train.data import build_datasets

    profile = load_profile("default")
    train_ds, test_ds = build_datasets(TrainConfig(model="resnet18", n_train=14, n_test=7), profile)
    assert train_ds.config.yaw_range == SYNTHFER_PRESETS["frontal"].yaw_range
    assert test_ds.config.occlusion_probs == SYNTHFER_PRESETS["frontal"].occlusion_probs
    train_ds, _ = build_datasets(
        TrainConfig(model="resnet18", n_train=14, n_test=7, dataset_kwargs={"config": "standard"}), profile
    )
    assert train_ds.config.yaw_range == SYNTHFER_PRESETS["standard"].yaw_range
    train_ds, _ = build_datasets(TrainConfig(model="resnet18", n_train=14, n_test=7), load_profile("smoke"))
    assert train_ds.config.yaw_range == SYNTHFER_PRESETS["standard"].yaw_range
    assert SYNTHFER_PRESETS["frontal"].yaw_range != SYNTHFER_PRESETS["standard"].yaw_range


def test_max_decays_spreads_the_decays_of_a_shrunk_schedule():
    p = dataclasses.replace(load_profile("default"), epochs=4, iterations=60, max_decays=1)
    ma = apply_profile(load_recipe("ma-net"), p)  # paper: 100 epochs, ×0.1 every 15 (six decays)
    assert (ma.epochs, ma.schedule.step_size, _decays(ma, ma.epochs)) == (4, 2, 1)
    man = apply_profile(load_recipe("man"), p)  # paper: 20k iterations, ×0.1 every 5k (three decays)
    assert ([st.iterations for st in man.stages], man.schedule.step_size) == ([60, 60], 30)
    lan = apply_profile(load_recipe("lan"), p)  # 40 epochs, ×0.1 every 15: scaled step 2 keeps one decay
    assert (lan.schedule.step_size, _decays(lan, 4)) == (2, 1)
    no_cap = apply_profile(load_recipe("ma-net"), dataclasses.replace(p, max_decays=None))
    assert (no_cap.schedule.step_size, _decays(no_cap, 4)) == (1, 3)


def test_shrunk_lan_recipe_still_warms_up_before_clustering():
    lan = load_recipe("lan")  # 40 epochs, centres fitted after a 5-epoch warm-up
    for name, epochs, warmup in (("default", 4, 1), ("smoke", 2, 1)):
        shrunk = apply_profile(lan, load_profile(name))
        assert (shrunk.epochs, shrunk.guidance_warmup_epochs) == (epochs, warmup)
    long = apply_profile(lan, dataclasses.replace(load_profile("default"), epochs=20))
    assert long.guidance_warmup_epochs == 2  # floor(5 * 20 / 40)
    one = apply_profile(lan, dataclasses.replace(load_profile("default"), epochs=1))
    assert one.guidance_warmup_epochs == 0  # no room for both phases: cluster first
    assert apply_profile(lan, load_profile("full")).guidance_warmup_epochs == 5


def test_an_explicit_budget_rescales_the_papers_schedule_and_warm_up():
    from ferlib.train.config import TrainConfig, resolve_recipe

    def lan(profile, epochs):
        return resolve_recipe(TrainConfig(model="lan", profile=profile, epochs=epochs))[0]

    assert lan("smoke", 1).guidance_warmup_epochs == 0  # one epoch: cluster first, then train guided
    assert lan("default", 2).guidance_warmup_epochs == 1
    long = lan("default", 40)  # the paper's budget under the default profile's caps
    assert (long.epochs, long.guidance_warmup_epochs, long.lr) == (40, 5, 0.01)
    assert long.schedule.step_size == 20  # 15 of 40 has two decays; max_decays 1 spreads one
    ma = resolve_recipe(TrainConfig(model="ma-net", profile="full", epochs=200))[0]
    assert (ma.epochs, ma.schedule.step_size, ma.lr) == (200, 30, 0.01)


def test_per_dataset_overrides_from_the_public_logs_name_their_source():
    """Issue 11, finding 3: AMP-Net's RAF-DB number came from lr 0.01 / batch 128, not the text's 0.1 / 350."""
    raf = load_recipe("amp-net", dataset="rafdb")
    assert (raf.lr, raf.batch_size, raf.epochs, raf.schedule.step_size) == (0.01, 128, 100, 20)
    assert "Current learning rate: 0.01" in raf.public_source and "96 iterations per epoch" in raf.public_source
    assert -(-12271 // raf.batch_size) == 96  # RAF-DB's 12,271 training images in the log's 96 iterations
    aff7 = load_recipe("amp-net", dataset="affectnet7")
    assert (aff7.lr, aff7.batch_size) == (0.01, 350) and "AffectNet-7" in aff7.public_source
    aff8 = load_recipe("amp-net", dataset="affectnet8")
    assert (aff8.lr, aff8.batch_size) == (0.1, 350) and "AffectNet-8" in aff8.public_source
    text = load_recipe("amp-net")  # no dataset: the paper's text, no public source claimed
    assert (text.lr, text.batch_size, text.public_source) == (0.1, 350, "")
    assert load_recipe("amp-net", dataset="fer2013").public_source == ""
    # MA-Net: its recipe already holds the public script's numbers; the RAF-DB override names them
    ma = load_recipe("ma-net", dataset="rafdb")
    assert (ma.lr, ma.batch_size, ma.epochs, ma.schedule.step_size) == (0.01, 128, 100, 15)
    assert "88.40" in ma.public_source and "88.01" in ma.public_source


def test_ma_net_from_scratch_is_a_recipe_of_its_own():
    """MA-Net* (Tables I-III, 86.34 on RAF-DB): 300 epochs, ×0.1 every 70, batch 128, no pre-training."""
    assert "ma-net-scratch" in list_recipes()
    r = load_recipe("ma-net-scratch")
    assert r.model == "ma-net" and r.name == "ma-net-scratch"
    assert (r.epochs, r.schedule.step_size, r.schedule.gamma, r.batch_size, r.lr) == (300, 70, 0.1, 128, 0.01)
    assert r.model_kwargs == load_recipe("ma-net").model_kwargs == {"lam": 0.6}
    assert "issue #10" in r.public_source and "86.34" in r.source
    assert "--init" in r.notes  # says: no pre-training
    assert load_recipe("ma-net-scratch", augment_preset="public").augment.crop_area == (0.08, 1.0)
