"""Training and evaluation engine: paper recipes, the resumable trainer, honest metrics.

>>> from ferlib.train import TrainConfig, train
>>> result = train(TrainConfig(model="ma-net", dataset="synthfer", profile="smoke"))
>>> result.metrics["test_selected"]["accuracy"], result.run_dir

See :mod:`ferlib.train.loop` for what a run does (and where each of its pieces lives),
:mod:`ferlib.train.recipes` for the papers' recipes and the ``smoke``/``default``/``full``
profiles, :mod:`ferlib.train.guidance` for LAN's guidance maps, and docs/training.md for the CLI
and multi-GPU launch lines.
"""

from ferlib.train.checkpoint import read_checkpoint
from ferlib.train.config import TrainConfig, TrainResult, load_train_config, resolve_recipe
from ferlib.train.evaluate import evaluate_checkpoint
from ferlib.train.loop import train
from ferlib.train.metrics import classification_metrics, mean_std, summarize_seeds
from ferlib.train.multiseed import MultiSeedResult, train_seeds
from ferlib.train.recipes import Recipe, apply_profile, list_recipes, load_profile, load_recipe

__all__ = [
    "MultiSeedResult",
    "Recipe",
    "TrainConfig",
    "TrainResult",
    "apply_profile",
    "classification_metrics",
    "evaluate_checkpoint",
    "list_recipes",
    "load_profile",
    "load_recipe",
    "load_train_config",
    "mean_std",
    "read_checkpoint",
    "resolve_recipe",
    "summarize_seeds",
    "train",
    "train_seeds",
]
