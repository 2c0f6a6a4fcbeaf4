"""Optimiser, learning-rate schedule and epoch plan of a recipe.

The learning rate is computed from the iteration counter inside the current stage (not held in a
scheduler object), so a resumed run gets exactly the rates of an uninterrupted one.
"""

from __future__ import annotations

import torch

from ferlib.train.recipes import Recipe


def make_optimizer(recipe: Recipe, params) -> torch.optim.Optimizer:
    """The recipe's optimiser (Adam or SGD with momentum) over the trainable ``params``."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise RuntimeError("no trainable parameters in this stage; check model.set_stage")
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)


def lr_at(recipe: Recipe, stage_step: int, steps_per_epoch: int) -> float:
    """Learning rate at iteration ``stage_step`` of the current stage (step schedule or constant)."""
    s = recipe.schedule
    if s.kind == "constant" or not s.step_size:
        return recipe.lr
    step_iters = s.step_size * (steps_per_epoch if s.unit == "epochs" else 1)
    return recipe.lr * s.gamma ** (stage_step // max(1, int(round(step_iters))))


def epoch_plan(recipe: Recipe, steps_per_epoch: int) -> list[tuple[int, str, int]]:
    """``[(stage_index, stage_name, steps_this_epoch), ...]`` for every epoch of the run."""
    plan = []
    for si, st in enumerate(recipe.stage_plan()):
        if st.epochs is not None:
            plan += [(si, st.name, steps_per_epoch)] * st.epochs
        else:
            left = st.iterations
            while left > 0:
                plan.append((si, st.name, min(steps_per_epoch, left)))
                left -= steps_per_epoch
    return plan


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler=None) -> None:
    """Backward and optimiser step (through the gradient scaler for fp16 autocast)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
