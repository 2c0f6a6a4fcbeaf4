"""The five papers' networks train under the smoke profile on SynthFER, and MAN's two stages freeze
what they should. SynthFER is synthetic: these runs prove the pipeline, their accuracies mean nothing."""

from __future__ import annotations

import json

import pytest
import torch

from ferlib.models import create_model, list_models
from ferlib.train import TrainConfig, read_checkpoint, train

PAPER_MODELS = ("amp-net", "ma-net", "lan", "ffra-net", "man")


def _tiny_smoke(model: str, tmp_path, **kw) -> TrainConfig:
    # The smoke profile, shrunk further for the test: 12 SynthFER faces (stratified: ~7 train +
    # ~5 validation), 4 test faces, one step of batch 4 (MAN: one per stage), at the models' 224 px.
    base = dict(
        model=model,
        dataset="synthfer",
        profile="smoke",
        n_train=12,
        n_test=4,
        val_fraction=0.25,
        epochs=1,
        iterations=1,
        batch_size=4,
        run_dir=str(tmp_path / model),
        progress=False,
        tensorboard=False,
        device="cpu",
        eval_batch_size=8,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow
@pytest.mark.parametrize("model", [m for m in PAPER_MODELS if m != "man"])  # MAN: the test below
def test_each_paper_model_trains_with_its_recipe_under_smoke(model, tmp_path):
    assert model in list_models(), f"model {model!r} is not registered (ferlib/models/__init__.py)"
    torch.set_num_threads(2)
    result = train(_tiny_smoke(model, tmp_path))
    recipe = json.loads((result.run_dir / "recipe.json").read_text())
    assert recipe["name"] == model  # the model's own recipe, shrunk
    m = result.metrics
    assert m["synthetic"] is True
    assert m["test_selected"]["n"] == 4 and sum(map(sum, m["test_selected"]["confusion_matrix"])) == 4
    assert [h["stage"] for h in result.history] == [""] and m["iterations"] == 1
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in result.history)
    if model == "lan":  # guidance centres fitted (smoke: no warm-up left) and saved with the weights
        state = read_checkpoint(result.run_dir / "checkpoints" / "last.pt")
        assert state["guidance"] is not None and state["guidance"]["attentive"].shape == (7, 7, 512)


@pytest.mark.slow
def test_man_trains_in_two_stages_that_freeze_the_other_subnet(tmp_path):
    assert "man" in list_models(), "model 'man' is not registered (ferlib/models/__init__.py)"
    torch.set_num_threads(2)
    cfg = _tiny_smoke("man", tmp_path, save_every_epoch=True, lr=0.01)
    torch.manual_seed(cfg.seed)  # the engine builds the model right after seeding with cfg.seed
    fresh = create_model("man")
    initial = fresh.state_dict()
    result = train(cfg)
    after_rasnet = read_checkpoint(result.run_dir / "checkpoints" / "epoch-001.pt")["model"]
    after_ersnet = read_checkpoint(result.run_dir / "checkpoints" / "epoch-002.pt")["model"]

    def changed(a, b, prefix):
        keys = [k for k in a if k.startswith(prefix)]
        assert keys, prefix
        return [k for k in keys if not torch.equal(a[k], b[k])]

    ersnet = ("blocks1_4.", "ma_block.", "block5.", "classifier.")
    # stage 1 (man.txt §III-C): RASnet trains, ERSnet does not move. Before any step the trainer's
    # data-dependent init (MAN.data_init) rescaled each MA-block buffer by one gain: those tensors must be
    # the fresh ones times exactly the recorded gain ratio, untouched by training.
    gains = json.loads((result.run_dir / "data_init.json").read_text())["buffer_gains"]
    for r, (old, new) in enumerate(zip(fresh.ma_block.buffer_gains, gains, strict=True)):
        key = f"ma_block.branches.{r}.buffer.weight"
        ratio = after_rasnet[key] / initial[key]
        torch.testing.assert_close(ratio, torch.full_like(ratio, float(ratio.mean())), rtol=1e-5, atol=0)
        assert float(ratio.mean()) == pytest.approx(new / old, rel=1e-3), key
        initial[key] = after_rasnet[key]
    assert changed(initial, after_rasnet, "rasnet.")
    for prefix in ersnet:
        assert changed(initial, after_rasnet, prefix) == [], prefix
    # stage 2: ERSnet trains, RASnet serves as a fixed mask generator
    assert changed(after_rasnet, after_ersnet, "rasnet.") == []
    assert changed(after_rasnet, after_ersnet, "classifier.")
    assert [h["stage"] for h in result.history] == ["rasnet", "ersnet"]
    assert result.metrics["iterations"] == 2
    assert result.metrics["best_epoch"] == 2  # selection only among epochs that trained the classifier
    assert json.loads((result.run_dir / "recipe.json").read_text())["name"] == "man"
