"""The trainer: one loop for all five networks, resumable, honest about what it evaluates.

``train(TrainConfig(...)) -> TrainResult`` does, in order:

1. resolve the recipe (``ferlib/recipes/<name>.yaml``), shrink it with the profile and apply the
   config's overrides; save ``config.json``, ``recipe.json`` and ``versions.json`` in the run folder;
2. build the training and test sets, carve a **seeded, stratified validation split** from the
   training set (the test set is never used for any choice);
3. train stage by stage (MAN: RASnet, then ERSnet — ``model.set_stage``), with the recipe's
   optimiser and a step learning-rate schedule computed from the iteration counter (so a resumed
   run gets exactly the same rates); LAN's guidance-map centres are fitted after the recipe's
   warm-up (before any training when ``--init`` loaded a backbone) and ``batch["guidance"]`` is
   filled from them; a model's ``data_init`` (MAN's mean-mask prior) runs once on a fresh run;
4. after every epoch: validation metrics, ``history.csv``/``history.json``, curves, ``last.pt``,
   and ``best.pt`` when validation accuracy improved — all written atomically;
5. at the end, touch the test set once for the final-epoch weights and once for the
   validation-selected weights, and write ``metrics.json`` and the confusion-matrix figures.

``protocol="paper"`` (``ferlib train --protocol paper``) runs the papers' protocol instead: no
validation split (the full training split trains), the test set evaluated after every epoch, and
``metrics.json`` reports the best epoch's test accuracy (``test_best_epoch``, marked
``optimistic``: the test set chose the epoch, as the papers' headlines do — the public MA-Net and
AMP-Net RAF-DB logs put the final epoch 0.4-0.6 points lower) beside the final epoch's
(``test_final``). Every test number says which protocol produced it (``protocol``, ``selection``).

Before training, a model that needs landmarks checks that the splits have them
(:mod:`ferlib.train.landmark_coverage`: at most 1 % of a split may lack them; the count is kept in
``landmark_coverage.json`` and ``metrics.json``).

Determinism and resume: every source of randomness in an epoch (sample order, augmentation,
dropout, loader workers) is drawn from generators seeded by ``(seed, epoch, purpose)``, and the
checkpoint written at the end of each epoch holds the model, optimiser, scaler, history and RNG
states. A run killed at any point (even with SIGKILL mid-epoch) and restarted with
``resume=True`` repeats the interrupted epoch bit for bit and ends with the metrics of an
uninterrupted run (on CPU; CUDA kernels are deterministic only with ``deterministic=True``).

Data parallel: launched by ``torchrun``, each process trains on its shard of every global batch
(the global batch is the recipe's; each rank gets ``batch_size / world_size``), gradients are
averaged by DDP, training loss/accuracy are all-reduced, evaluation predictions are gathered,
and only rank 0 writes the run folder (see :mod:`ferlib.train.distributed`).

Where the pieces live: :mod:`~ferlib.train.config` (``TrainConfig``, the recipe a config resolves
to), :mod:`ferlib.data.protocols` (seeds, the epoch sampler, splits), :mod:`~ferlib.train.data`
(datasets and loaders), :mod:`~ferlib.train.batches` (a batch on the device, the loss),
:mod:`~ferlib.train.optim` (optimiser, schedule, epoch plan), :mod:`~ferlib.train.checkpoint`,
:mod:`~ferlib.train.evaluate`, :mod:`~ferlib.train.guidance` (LAN) and
:mod:`~ferlib.train.multiseed`. This module is the run itself: ``train()`` = ``_setup``, then per
epoch ``_enter_stage`` / ``_train_one_epoch`` / ``_validate_epoch`` / ``_save_epoch``, then ``_final_test``.

Length: the run's steps (setup, one epoch, validation, checkpoint, final test) share one ``_Run``
state and one order of random draws, which the golden and resume tests pin; they are kept in one
file so that order reads top to bottom. Everything that is not the run itself lives beside it
(config, data, batches, optim, checkpoint, evaluate, guidance, landmark_coverage, device_data).
"""

from __future__ import annotations

import errno
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

import ferlib.train.distributed as dist_utils
from ferlib.config import to_dict
from ferlib.data.protocols import EpochSampler, IndexedDataset, dataset_labels, derive_seed, stratified_split
from ferlib.fileio import atomic_torch_save, atomic_write_json, remove_stale_temp_files
from ferlib.models import FERModel, create_model, model_inputs
from ferlib.runs import RunFolder, resolve_device, seed_everything
from ferlib.train.batches import (
    autocast_factory,
    build_augment,
    compute_loss,
    precision_record,
    prepare_images,
    to_device,
    use_channels_last,
)
from ferlib.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    check_resume_config,
    folder_entries,
    load_init,
    load_model_state,
    open_tensorboard,
    prepare_run_dir,
    read_checkpoint,
    read_init_report,
    remove_created,
    rng_state,
    save_init_report,
    set_rng_state,
    write_history,
)
from ferlib.train.config import (
    SELECTION,
    TrainConfig,
    TrainResult,
    check_train_config,
    model_kwargs,
    protocol_val_fraction,
    resolve_recipe,
)
from ferlib.train.data import build_datasets, check_split_sizes, make_loader
from ferlib.train.device_data import DeviceTrainSet, build_device_data
from ferlib.train.evaluate import evaluate_split
from ferlib.train.guidance import TrainingGuidance
from ferlib.train.landmark_coverage import run_coverage
from ferlib.train.optim import epoch_plan, lr_at, make_optimizer, optimizer_step
from ferlib.train.plots import save_run_figures
from ferlib.train.recipes import Recipe


@dataclass
class _Run:
    """The state of one training run shared by the steps of :func:`train`."""

    cfg: TrainConfig
    ctx: dist_utils.DistContext
    device: torch.device
    recipe: Recipe
    run_dir: Path
    folder: RunFolder
    resume_state: dict[str, Any] | None
    train_part: IndexedDataset | None = None
    val_part: IndexedDataset | None = None
    test_dataset: Dataset | None = None
    class_names: list[str] = field(default_factory=list)
    sampler: EpochSampler | None = None
    train_loader: DataLoader | None = None
    device_data: DeviceTrainSet | None = None  # the training part on the device (then no loader)
    batch_per_rank: int = 0
    steps_per_epoch: int = 0
    eval_bs: int = 0
    core: nn.Module | None = None
    channels_last: bool = False
    autocast: Callable | None = None
    scaler: Any = None
    augmenter: Callable | None = None
    guidance: TrainingGuidance = field(default_factory=TrainingGuidance)
    data_init: dict[str, Any] | None = None  # what the model's data_init reported (fresh runs)
    plan: list[tuple[int, str, int]] = field(default_factory=list)
    start_epoch: int = 0
    global_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"score": -1.0, "epoch": None})
    writer: Any = None
    landmark_coverage: dict[str, Any] = field(default_factory=dict)
    stage_index: int | None = None  # the stage the model and optimiser below were made for
    model: nn.Module | None = None  # ``core``, wrapped by DDP / torch.compile when asked
    optimizer: torch.optim.Optimizer | None = None

    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def progress(self) -> bool:
        return self.cfg.progress and self.ctx.is_main

    @property
    def paper_protocol(self) -> bool:
        """The papers' protocol: no validation split, the epoch chosen on the test set (optimistic)."""
        return self.cfg.protocol == "paper"


def train(
    cfg: TrainConfig, *, train_dataset: Dataset | None = None, test_dataset: Dataset | None = None
) -> TrainResult:
    """Train ``cfg.model`` on ``cfg.dataset`` with its recipe; see the module docstring.

    ``train_dataset``/``test_dataset`` replace the datasets built from ``cfg`` (notebooks and tests
    pass in-memory sets this way; their sizes are then theirs, not the profile's).
    """
    run = _setup(cfg, train_dataset, test_dataset)
    epoch_bar = tqdm(
        range(run.start_epoch, len(run.plan)),
        desc=f"{cfg.model} epochs",
        initial=run.start_epoch,
        total=len(run.plan),
        disable=not run.progress,
    )
    for epoch in epoch_bar:
        si = run.plan[epoch][0]
        if si != run.stage_index:  # entering a stage (or resuming inside one)
            _enter_stage(run, epoch)
        warmup = _guidance_warmup(run)
        if warmup is not None and run.guidance.annotator is None and epoch >= warmup:
            run.guidance.fit(run.core, run.train_part, run.eval_bs, run.device, cfg.seed, progress=run.progress)
            if run.ctx.is_main:
                atomic_write_json(
                    run.run_dir / "guidance.json", {"fitted_before_epoch": epoch + 1, **run.guidance.summary()}
                )
        totals, lr, train_time = _train_one_epoch(run, epoch)
        row, improved = _validate_epoch(run, epoch, totals, lr, train_time)
        if run.ctx.is_main:
            _save_epoch(run, epoch, row, improved)
        if run.paper_protocol:
            epoch_bar.set_postfix(loss=f"{row['train_loss']:.3f}", test=f"{row['test_accuracy']:.3f}")
        else:
            epoch_bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{row['val_accuracy']:.3f}")
        dist_utils.barrier(run.ctx)
    epoch_bar.close()
    metrics = _final_test(run)
    dist_utils.barrier(run.ctx)
    return TrainResult(run_dir=run.run_dir, config=cfg, recipe=run.recipe, history=run.history, metrics=metrics)


def _guidance_warmup(run: _Run) -> int | None:
    """Epochs before LAN's guidance centres are fitted (None: no guidance). With ``--init`` the
    loaded backbone is clustered before any training, as lan.txt §III-C/§IV-B does with its
    pre-trained ResNet-18; the recipe's warm-up is for backbones trained from scratch."""
    warmup = run.recipe.guidance_warmup_epochs
    return None if warmup is None else (0 if run.cfg.init else warmup)


# --------------------------------------------------------------------------------------------
# Setting up a run: folder, data, model, resumed state
# --------------------------------------------------------------------------------------------


def _setup(cfg: TrainConfig, train_dataset: Dataset | None, test_dataset: Dataset | None) -> _Run:
    check_train_config(cfg)  # options first: a refused run leaves no folder behind
    ctx = dist_utils.init_from_env(cfg.device)
    device = ctx.device if ctx.world_size > 1 else resolve_device(cfg.device)
    dist_utils.configure_cpu_threads(device, cfg.cpu_threads, ctx)
    recipe, profile = resolve_recipe(cfg)
    val_fraction = cfg.val_fraction if cfg.val_fraction is not None else profile.val_fraction
    val_fraction = protocol_val_fraction(cfg, val_fraction)
    before = folder_entries(cfg.run_dir)
    run = _open_run_folder(cfg, ctx, device, recipe)
    try:
        _setup_data_and_model(run, profile, val_fraction, train_dataset, test_dataset)
    except BaseException:
        if ctx.is_main and run.resume_state is None:
            remove_created(run.run_dir, before)
        raise
    return run


def _setup_data_and_model(
    run: _Run, profile: Any, val_fraction: float, train_dataset: Dataset | None, test_dataset: Dataset | None
) -> None:
    cfg = run.cfg
    seed_everything(cfg.seed, deterministic=cfg.deterministic)
    if train_dataset is None or test_dataset is None:
        built_train, built_test = build_datasets(cfg, profile)
        train_dataset = train_dataset if train_dataset is not None else built_train
        test_dataset = test_dataset if test_dataset is not None else built_test
    _split_data(run, train_dataset, test_dataset, val_fraction)
    _make_train_loader(run)
    _build_model(run)
    _check_landmarks(run)
    if run.resume_state is not None:
        _restore(run)
    run.writer = open_tensorboard(run.run_dir) if (cfg.tensorboard and run.ctx.is_main) else None


def _open_run_folder(cfg: TrainConfig, ctx: dist_utils.DistContext, device: torch.device, recipe: Recipe) -> _Run:
    """The run folder (rank 0 decides, everyone agrees), the state to resume from, the config files."""
    run_dir = prepare_run_dir(cfg, ctx)
    folder = RunFolder(run_dir)
    if ctx.is_main:  # a writer killed mid-write (SIGKILL during a checkpoint) leaves its temporary file
        remove_stale_temp_files(run_dir / "checkpoints")
        remove_stale_temp_files(run_dir)
    resume_state = None
    if cfg.resume and (run_dir / "checkpoints" / "last.pt").exists():
        resume_state = read_checkpoint(run_dir / "checkpoints" / "last.pt")
        check_resume_config(run_dir, cfg, resume_state)
    if ctx.is_main:
        folder.write_config(cfg)
        atomic_write_json(run_dir / "recipe.json", to_dict(recipe))
        folder.write_versions()
        atomic_write_json(
            run_dir / "seed.json", {"seed": cfg.seed, "split_seed": cfg.split_seed, "deterministic": cfg.deterministic}
        )
    return _Run(
        cfg=cfg, ctx=ctx, device=device, recipe=recipe, run_dir=run_dir, folder=folder, resume_state=resume_state
    )


def _split_data(run: _Run, train_dataset: Dataset, test_dataset: Dataset, val_fraction: float) -> None:
    """Carve the seeded, stratified validation split from the training set; record it in ``split.json``."""
    cfg = run.cfg
    labels = dataset_labels(train_dataset)
    run.class_names = list(getattr(train_dataset, "class_names", None) or [str(i) for i in range(cfg.num_classes)])
    if run.paper_protocol:  # the papers' protocol: every training image trains
        tr_idx, va_idx = np.arange(len(labels), dtype=np.int64), np.zeros(0, dtype=np.int64)
    else:
        tr_idx, va_idx = stratified_split(labels, val_fraction, cfg.split_seed)
    check_split_sizes(
        cfg, run.class_names, labels, tr_idx, va_idx, len(test_dataset), val_fraction, validation=not run.paper_protocol
    )
    run.train_part, run.val_part = IndexedDataset(train_dataset, tr_idx), IndexedDataset(train_dataset, va_idx)
    run.test_dataset = test_dataset
    if run.ctx.is_main:
        atomic_write_json(
            run.run_dir / "split.json",
            {
                "protocol": cfg.protocol,
                "val_fraction": val_fraction,
                "split_seed": cfg.split_seed,
                "n_train": len(tr_idx),
                "n_val": len(va_idx),
                "n_test": len(test_dataset),
                "val_indices": va_idx.tolist(),
            },
        )


def _make_train_loader(run: _Run) -> None:
    """The seeded (per-epoch, per-rank) training loader over the recipe's global batch."""
    cfg, ctx = run.cfg, run.ctx
    batch_size = min(run.recipe.batch_size, len(run.train_part))
    if batch_size % ctx.world_size:
        raise ValueError(
            f"batch size {batch_size} is not divisible by the {ctx.world_size} processes; "
            "pass --batch-size a multiple of the world size"
        )
    per_rank = batch_size // ctx.world_size
    run.sampler = EpochSampler(
        run.train_part.labels,
        cfg.seed,
        balanced=run.recipe.sampler == "class_balanced",
        rank=ctx.rank,
        world_size=ctx.world_size,
    )
    run.batch_per_rank = per_rank
    run.device_data = build_device_data(run.train_part, run.device, cfg.data_on_device, cfg.data_device_budget_gb)
    if run.device_data is not None:  # same order and batches as the loader below, gathered on the device
        run.steps_per_epoch = len(run.sampler) // per_rank
        run.eval_bs = cfg.eval_batch_size or max(per_rank, 8)
        return
    run.train_loader = make_loader(
        run.train_part,
        per_rank,
        sampler=run.sampler,
        num_workers=cfg.num_workers,
        pin_memory=run.device.type == "cuda",
        drop_last=True,
    )
    run.steps_per_epoch = len(run.train_loader)
    run.eval_bs = cfg.eval_batch_size or max(per_rank, 8)


def _build_model(run: _Run) -> None:
    """The model (same initial weights on every rank and every resume), precision and augmentation."""
    cfg, device = run.cfg, run.device
    torch.manual_seed(cfg.seed)
    core = create_model(cfg.model, num_classes=cfg.num_classes, **model_kwargs(cfg, run.recipe))
    if cfg.init and run.resume_state is None:
        report = load_init(core, cfg.init, cfg.init_format, partial=cfg.init_partial, num_classes=cfg.num_classes)
        if run.ctx.is_main:
            save_init_report(run.run_dir, report)
    if run.resume_state is None and isinstance(core, FERModel):
        # Data-dependent initialisation (MAN's mean-mask prior); a model without one reads nothing.
        train_batches = (b for b in make_loader(run.train_part, run.eval_bs))
        run.data_init = core.data_init(train_batches)
        if run.data_init is not None and run.ctx.is_main:
            atomic_write_json(run.run_dir / "data_init.json", run.data_init)
    run.channels_last = use_channels_last(device, cfg.amp, cfg.channels_last)
    core.to(device)
    if run.channels_last:
        core.to(memory_format=torch.channels_last)
    run.core = core
    run.autocast, amp_dtype = autocast_factory(device, cfg.amp)
    run.scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    run.augmenter = build_augment(run.recipe, cfg.augment)
    run.plan = epoch_plan(run.recipe, run.steps_per_epoch)


def _check_landmarks(run: _Run) -> None:
    """Refuse a run whose model lacks landmarks for over 1 % of a split; record the coverage."""
    stages = [st.name for st in run.recipe.stage_plan()]
    splits = {"train": run.train_part, "validation": run.val_part or None, "test": run.test_dataset}
    run.landmark_coverage = run_coverage(
        run.core, splits, stages, model_name=run.cfg.model, dataset_name=run.cfg.dataset
    )
    if run.ctx.is_main:
        atomic_write_json(run.run_dir / "landmark_coverage.json", run.landmark_coverage)


def _restore(run: _Run) -> None:
    """Continue from ``last.pt``: weights, counters, history, best epoch, LAN guidance, RNG states."""
    state = run.resume_state
    load_model_state(run.core, state["model"], str(run.ckpt_dir / "last.pt"))
    run.start_epoch = int(state["epoch"])
    run.global_step = int(state["global_step"])
    run.history = list(state["history"])
    run.best = dict(state["best"])
    if state.get("guidance") is not None:
        run.guidance.restore(run.core, state["guidance"], run.device)
    if state.get("rng"):
        set_rng_state(state["rng"])


# --------------------------------------------------------------------------------------------
# One epoch
# --------------------------------------------------------------------------------------------


def _enter_stage(run: _Run, epoch: int) -> None:
    """Switch the model to the stage of ``epoch`` (MAN: RASnet, then ERSnet) with a fresh optimiser."""
    si, stage_name, _ = run.plan[epoch]
    core, cfg = run.core, run.cfg
    run.stage_index = si
    if stage_name:
        if stage_name not in core.stages():
            raise ValueError(
                f"recipe {run.recipe.name!r} has stage {stage_name!r} but model {cfg.model!r} "
                f"trains in stages {core.stages()}; use this recipe with its own model"
            )
        core.set_stage(stage_name)
    run.optimizer = make_optimizer(run.recipe, core.parameters())
    run.model = dist_utils.wrap_ddp(core, run.ctx)
    if cfg.compile:
        run.model = torch.compile(run.model)
    state = run.resume_state
    if state is not None and state.get("stage_index") == si and epoch == run.start_epoch:
        run.optimizer.load_state_dict(state["optimizer"])
        if run.scaler is not None and state.get("scaler"):
            run.scaler.load_state_dict(state["scaler"])


def _seed_epoch(run: _Run, epoch: int) -> None:
    """Every random draw of this epoch comes from ``(seed, epoch)``: resumable bit for bit."""
    seed, rank = run.cfg.seed, run.ctx.rank
    torch.manual_seed(derive_seed(seed, epoch, "torch", rank))
    np.random.seed(derive_seed(seed, epoch, "torch", rank) % (2**32))
    random.seed(derive_seed(seed, epoch, "torch", rank))
    run.sampler.set_epoch(epoch)
    if run.train_loader is not None:
        run.train_loader.generator.manual_seed(derive_seed(seed, epoch, "workers", rank))
    if run.augmenter is not None:
        run.augmenter.generator = torch.Generator().manual_seed(derive_seed(seed, epoch, "augment", rank))


def _train_one_epoch(run: _Run, epoch: int) -> tuple[torch.Tensor, float, float]:
    """One pass of ``plan[epoch]``'s steps; returns the all-reduced (loss sum, correct, seen), the last
    learning rate and the seconds it took."""
    si, _, n_steps = run.plan[epoch]
    stage_start_epoch = next(e for e, p in enumerate(run.plan) if p[0] == si)
    stage_step = sum(p[2] for p in run.plan[stage_start_epoch:epoch])
    _seed_epoch(run, epoch)
    model, core, optimizer, device = run.model, run.core, run.optimizer, run.device
    model.train()
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.float64, device=device)
    seen = torch.zeros((), dtype=torch.float64, device=device)
    lr = run.recipe.lr
    if run.device_data is not None:
        batches = run.device_data.epoch_batches(run.sampler.indices(), run.batch_per_rank)
    else:
        batches = iter(run.train_loader)
    for step in tqdm(range(n_steps), desc=f"epoch {epoch + 1}", leave=False, disable=not run.progress):
        batch = to_device(next(batches), device)
        if run.augmenter is not None:
            batch = run.augmenter(batch)
        images = prepare_images(batch, run.channels_last)
        lr = lr_at(run.recipe, stage_step + step, run.steps_per_epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with run.autocast():
            if run.guidance.fn is not None:
                batch["guidance"] = run.guidance.maps(images)
            out = model(images, **model_inputs(run.core, batch))
            loss = compute_loss(core, out, batch)
        optimizer_step(loss, optimizer, run.scaler)
        bsz = len(batch["label"])
        loss_sum += loss.detach().double() * bsz
        correct += (out.logits.detach().argmax(1) == batch["label"]).sum().double()
        seen += bsz
        run.global_step += 1
    del batches
    totals = dist_utils.all_reduce_sum(torch.stack([loss_sum, correct, seen]), run.ctx)
    # Checked once per epoch, not per step: a per-step check would synchronise the GPU.
    if not torch.isfinite(totals[0]):
        raise FloatingPointError(
            f"training loss became {float(totals[0])} in epoch {epoch + 1}; "
            "lower the learning rate (--lr or a recipe copy) or check the data"
        )
    return totals, lr, time.perf_counter() - t0


def _validate_epoch(
    run: _Run, epoch: int, totals: torch.Tensor, lr: float, train_time: float
) -> tuple[dict[str, Any], bool]:
    """Validation metrics, the history row of ``epoch`` and whether it is the best epoch so far."""
    si, stage_name, n_steps = run.plan[epoch]
    # The papers' protocol watches the test set itself (the best epoch's number is then optimistic).
    watched = run.test_dataset if run.paper_protocol else run.val_part
    val = evaluate_split(
        run.core,
        watched,
        run.eval_bs,
        run.device,
        run.ctx,
        run.class_names,
        guidance_fn=run.guidance.fn,
        autocast=run.autocast,
        channels_last=run.channels_last,
        progress=run.progress,
        desc="test (paper protocol)" if run.paper_protocol else "validation",
    )
    row = {
        "epoch": epoch + 1,
        "stage": stage_name,
        "lr": lr,
        "steps": n_steps,
        "train_loss": float(totals[0] / totals[2]),
        "train_accuracy": float(totals[1] / totals[2]),
        "val_loss": val["loss"],
        "val_accuracy": val["accuracy"],
        "val_macro_f1": val["macro_f1"],
        "epoch_seconds": round(train_time, 3),
        "train_images_per_second": round(float(totals[2]) / max(train_time, 1e-9), 2),
    }
    if run.paper_protocol:
        row.update(val_loss=None, val_accuracy=None, val_macro_f1=None)
        row.update(test_loss=val["loss"], test_accuracy=val["accuracy"], test_macro_f1=val["macro_f1"])
    run.history.append(row)
    # Selection only among epochs of the last stage: earlier stages (MAN's RASnet stage) do not
    # train the classifier, so their accuracy says nothing about the final network.
    improved = si == run.plan[-1][0] and val["accuracy"] > run.best["score"]
    if improved:
        run.best = {"score": val["accuracy"], "epoch": epoch + 1}
        if run.paper_protocol:
            run.best["test"] = val  # the best epoch's full test metrics, reported as optimistic
    return row, improved


def _save_epoch(run: _Run, epoch: int, row: dict[str, Any], improved: bool) -> None:
    """``best.pt`` (when improved), ``epoch-NNN.pt`` (when asked), ``last.pt``, the history and
    TensorBoard scalars — all written atomically, by rank 0 only."""
    cfg = run.cfg
    si, stage_name, _ = run.plan[epoch]
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_name": cfg.model,
        "model_kwargs": model_kwargs(cfg, run.recipe),
        "num_classes": cfg.num_classes,
        "class_names": run.class_names,
        "image_size": cfg.image_size,
        "config": to_dict(cfg),
        "epoch": epoch + 1,
        "global_step": run.global_step,
        "stage_index": si,
        "stage": stage_name,
        "model": run.core.state_dict(),
        "history": run.history,
        "best": run.best,
        "guidance": run.guidance.state(),
    }
    try:
        if improved:
            atomic_torch_save(state, run.ckpt_dir / "best.pt")
        if cfg.save_every_epoch:
            atomic_torch_save(state, run.ckpt_dir / f"epoch-{epoch + 1:03d}.pt")
        state.update(
            optimizer=run.optimizer.state_dict(),
            scaler=run.scaler.state_dict() if run.scaler else None,
            rng=rng_state(),
        )
        atomic_torch_save(state, run.ckpt_dir / "last.pt")
        write_history(run.run_dir, run.history)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        kept = (
            f"checkpoints/last.pt (epoch {epoch}) and the earlier checkpoints are intact; free some space and "
            "rerun with --resume to continue from it"
            if epoch > 0 and (run.ckpt_dir / "last.pt").exists()
            else "no earlier checkpoint existed; free some space and rerun"
        )
        raise OSError(
            errno.ENOSPC, f"no space left on device while writing {exc.filename}; {kept}", exc.filename
        ) from None
    if run.writer is not None:
        for k, v in row.items():
            if isinstance(v, (int, float)) and k != "epoch":
                run.writer.add_scalar(k, v, epoch + 1)


# --------------------------------------------------------------------------------------------
# The test set, touched once per weight choice
# --------------------------------------------------------------------------------------------


def _final_test(run: _Run) -> dict[str, Any]:
    """Test metrics of the final and the selected weights (validation-selected, or under the papers'
    protocol the best test epoch, marked optimistic); ``metrics.json`` and figures."""
    cfg, ctx, best = run.cfg, run.ctx, run.best
    ev = dict(
        guidance_fn=run.guidance.fn, autocast=run.autocast, channels_last=run.channels_last, progress=run.progress
    )
    args = (run.test_dataset, run.eval_bs, run.device, ctx, run.class_names)
    test_final = evaluate_split(run.core, *args, desc="test", **ev)
    best_path = run.ckpt_dir / "best.pt"
    if run.paper_protocol:  # measured after that epoch already: no second look at the test set
        test_selected = {**best.get("test", test_final), "epoch": best["epoch"], "optimistic": True}
    elif best["epoch"] == len(run.plan):
        test_selected = test_final  # the validation-selected epoch is the final one: same weights
    elif best["epoch"] is not None and best_path.exists():
        load_model_state(run.core, read_checkpoint(best_path)["model"], str(best_path))
        test_selected = evaluate_split(run.core, *args, desc="test (selected)", **ev)
    else:
        test_selected = test_final
    history = run.history
    metrics = {
        "model": cfg.model,
        "dataset": cfg.dataset,
        "recipe": run.recipe.name,
        "profile": cfg.profile,
        "seed": cfg.seed,
        "synthetic": cfg.dataset.lower() == "synthfer",
        "epochs": len(run.plan),
        "iterations": run.global_step,
        "best_epoch": best["epoch"],
        "best_val_accuracy": None if run.paper_protocol else best["score"],
        "final_val_accuracy": history[-1]["val_accuracy"] if history else None,
        "test_final": test_final,
        "test_selected": test_selected,
        "skipped": {
            "train": getattr(run.train_part.base, "skipped", 0),
            "test": getattr(run.test_dataset, "skipped", 0),
        },
        "precision": precision_record(run.device, cfg.amp, run.channels_last),
        "selection": SELECTION[cfg.protocol],
        "protocol": cfg.protocol,
        "landmark_coverage": run.landmark_coverage,
        "model_kwargs": model_kwargs(cfg, run.recipe),
        "init": read_init_report(run.run_dir),
    }
    if run.data_init is not None:
        metrics["data_init"] = run.data_init
    if run.guidance.annotator is not None:
        metrics["guidance"] = run.guidance.summary()
    if run.paper_protocol:
        metrics["test_best_epoch"] = test_selected
        metrics["optimistic"] = ["test_best_epoch", "test_selected"]
    _write_final(run, metrics, test_selected, test_final)
    return metrics


def _write_final(run: _Run, metrics: dict[str, Any], test_selected: dict[str, Any], test_final: dict[str, Any]) -> None:
    """``metrics.json``, the end of TensorBoard and the figures (rank 0)."""
    ctx, history = run.ctx, run.history
    if ctx.is_main:
        run.folder.write_metrics(metrics)
        if run.writer is not None:
            run.writer.close()
        selected = "test, best TEST epoch (paper protocol, optimistic)" if run.paper_protocol else None
        save_run_figures(run.folder, history, test_selected, test_final, selected_title=selected)
