"""Builders: the only place where a :class:`~aucseg.config.Config` is turned into objects.

Each ``build_*`` maps one config section onto the plain keyword arguments of a library
function or class. The command bodies that wire them together live in
:mod:`aucseg.engine.tasks`.
"""

from __future__ import annotations

import inspect
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aucseg import dist
from aucseg.augment import BatchTMemoryBank, MemoryBankTransform, TMemoryBank
from aucseg.config import Config
from aucseg.data import (
    OFFICIAL_TAIL_CLASSES,
    build_dataset,
    make_train_loader,
    seed_worker,
)
from aucseg.data.stats import load_class_groups, load_class_stats, load_image_class_pixels
from aucseg.data.transforms import Compose, build_test_pipeline, build_train_pipeline
from aucseg.engine.evaluate import evaluate
from aucseg.engine.hooks import (
    BankStatsHook,
    CheckpointHook,
    EvalHook,
    InterruptHook,
    LoggerHook,
    LRSchedulerHook,
)
from aucseg.engine.logger import TrainLogger
from aucseg.engine.optim import build_adamw
from aucseg.engine.schedule import PolyWarmupScheduler
from aucseg.errors import InputError
from aucseg.losses import LOSSES, build_loss
from aucseg.models import build_model

MSCAN_WEIGHTS_URL = "https://github.com/Visual-Attention-Network/SegNeXt#results"
# Test-time augmentation used by ``--tta``: mmseg's multi-scale ratios plus horizontal flip.
TTA_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> this rank's CUDA device when available, else CPU.

    Raises:
        InputError: a CUDA device was requested but CUDA is unavailable.
    """
    if name == "auto":
        name = f"cuda:{dist.get_local_rank()}" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"device {name!r} requested but CUDA is not available; use --device cpu or auto"
        )
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", dist.get_local_rank())
    return device


# ----------------------------------------------------------------------------- model / loss


def _check_pretrained(path: str) -> None:
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"model.pretrained={path!r} does not exist. Download the ImageNet MSCAN backbone "
            f"weights (e.g. mscan_l.pth) linked from the SegNeXt README ({MSCAN_WEIGHTS_URL}) "
            f"into {Path(path).parent}/, or train from scratch with --set model.pretrained=null"
        )


def build_model_from_config(cfg: Config, load_pretrained: bool = True) -> nn.Module:
    """The segmentor of ``cfg.model`` with its options, plus backbone weights when configured.

    Raises:
        FileNotFoundError: ``model.pretrained`` is set but the file does not exist.
    """
    m = cfg.model
    pretrained = m.pretrained if load_pretrained else None
    if pretrained:
        _check_pretrained(pretrained)
    return build_model(m.name, m.num_classes, pretrained=pretrained, **m.options())


def class_counts(cfg: Config) -> list[float] | None:
    """Training pixel count per class from ``data.class_groups`` (an ``aucseg stats`` JSON)."""
    if cfg.data.class_groups is None:
        return None
    return [float(c) for c in load_class_stats(cfg.data.class_groups)["pixel_counts"]]


def build_losses(cfg: Config, distributed: bool | None = None) -> tuple[list[nn.Module], list]:
    """One loss module per ``loss.terms`` entry, and notes for the log.

    Under DDP a loss with an exact distributed mode (``supports_sync``) computes it over the
    global batch; any other loss runs on each process's batch, which a note says once.
    Losses whose signature takes ``class_counts`` get them from ``data.class_groups``.
    """
    sync = dist.is_distributed() if distributed is None else distributed
    counts = class_counts(cfg)
    losses, notes = [], []
    for i, term in enumerate(cfg.loss.terms):
        kwargs: dict[str, Any] = {"loss_weight": term.weight, **term.options()}
        params = inspect.signature(LOSSES[term.name]).parameters
        if "ignore_index" in params:
            kwargs["ignore_index"] = cfg.loss.ignore_index
        if "class_counts" in params and counts is not None:
            kwargs["class_counts"] = counts
        loss = build_loss(term.name, cfg.model.num_classes, **kwargs)
        if sync and getattr(loss, "supports_sync", False):
            loss.sync = True
        elif sync:
            notes.append(
                f"loss.terms.{i} ({term.name}) has no exact distributed mode: each process "
                f"computes it on its own batch"
            )
        losses.append(loss)
    return losses, notes


# ----------------------------------------------------------------------------- data


def resolve_class_groups(cfg: Config) -> dict[str, list[int]] | None:
    """Head/middle/tail class ids from ``data.class_groups`` (a JSON of ``aucseg stats``)."""
    if cfg.data.class_groups is None:
        return None
    return load_class_groups(cfg.data.class_groups)


def frequency_order(cfg: Config) -> list[int] | None:
    """Class ids by decreasing training pixel count (from ``data.class_groups``), else None."""
    counts = class_counts(cfg)
    if counts is None:
        return None
    return sorted(range(len(counts)), key=lambda c: (-counts[c], c))


def resolve_tail_classes(cfg: Config) -> list[int]:
    """``memory_bank.tail_classes``; when null, the tail of ``data.class_groups`` if set, else
    the official list of the dataset; every class for ``memory_bank.classes: all``.

    Raises:
        InputError: no list is configured and the dataset has no official one.
    """
    mb = cfg.memory_bank
    if mb.classes == "all":
        return list(range(cfg.model.num_classes))
    if mb.tail_classes is not None:
        return list(mb.tail_classes)
    groups = resolve_class_groups(cfg)
    if groups is not None:
        return list(groups["tail"])
    if cfg.data.dataset not in OFFICIAL_TAIL_CLASSES:
        raise InputError(
            f"memory_bank.tail_classes is null and dataset {cfg.data.dataset!r} has no official "
            f"tail list; set data.class_groups to an `aucseg stats` JSON or list "
            f"memory_bank.tail_classes"
        )
    return list(OFFICIAL_TAIL_CLASSES[cfg.data.dataset])


def build_memory_bank(cfg: Config, seed: int | None = None) -> tuple[Any, Any]:
    """``(batch_bank, sample_transform)`` for ``cfg.memory_bank``; both None when disabled.

    ``placement: batch`` gives a ``BatchTMemoryBank`` applied to each mini-batch on the
    device (its state goes into checkpoints); ``placement: sample`` gives a
    ``MemoryBankTransform`` at the end of the training pipeline (one bank per worker, as the
    official code).
    """
    mb = cfg.memory_bank
    if not mb.enabled:
        return None, None
    kwargs = {
        "num_classes": cfg.model.num_classes,
        "tail_classes": resolve_tail_classes(cfg),
        "memory_size": mb.memory_size,
        "p_sample": mb.p_sample,
        "p_resize": mb.p_resize,
        "update": mb.update,
        "classes": mb.classes,
        "storage": mb.storage,
        "seed": seed,
    }
    if mb.placement == "batch":
        return BatchTMemoryBank(**kwargs), None
    return None, MemoryBankTransform(TMemoryBank(**kwargs))


def build_train_dataset(cfg: Config, sample_transform: Any = None) -> Any:
    """The training split with the official training pipeline (+ per-sample memory bank)."""
    d = cfg.data
    pipeline = build_train_pipeline(
        crop_size=tuple(d.crop_size),
        img_scale=tuple(d.img_scale),
        ratio_range=tuple(d.ratio_range),
        cat_max_ratio=d.cat_max_ratio,
        flip_prob=d.flip_prob,
        photometric=d.photometric,
        ignore_index=cfg.loss.ignore_index,
    )
    if sample_transform is not None:
        pipeline = Compose([pipeline, sample_transform])
    return build_dataset(d.dataset, d.root, d.train_split, transforms=pipeline, **d.options())


def build_plain_dataset(cfg: Config, split: str | None = None) -> Any:
    """A split of the config's dataset (default the training split) without transforms: its
    files, classes and label convention, as the run reads them (e.g. for ``aucseg stats``)."""
    d = cfg.data
    return build_dataset(d.dataset, d.root, split or d.train_split, **d.options())


def build_val_dataset(cfg: Config, split: str | None = None) -> Any:
    """The validation split (or ``split``) with the one test-time preset."""
    d = cfg.data
    pipeline = build_test_pipeline(tuple(d.img_scale), size_divisor=d.test_size_divisor)
    return build_dataset(d.dataset, d.root, split or d.val_split, pipeline, **d.options())


def _worker_init(worker_id: int) -> None:
    # Ctrl-C reaches the whole process group; the main process handles it (it saves last.pth)
    # and a worker that died of it would turn a clean interrupt into a DataLoader error.
    # SIGTERM keeps its default: multiprocessing stops daemonic workers with it at exit, and a
    # worker ignoring it would keep the finished process from ever exiting.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    seed_worker(worker_id)


def build_train_loader(cfg: Config, dataset: Any, consumed_batches: int = 0) -> Any:
    """Endless, resumable training loader of this rank, in the configured sampling order."""
    s = cfg.data.sampler
    pixels = None
    if s.name != "uniform":
        pixels = load_image_class_pixels(cfg.data.class_groups, dataset)
    return make_train_loader(
        dataset,
        cfg.data.batch_size,
        consumed_batches=consumed_batches,
        seed=cfg.runtime.seed,
        num_workers=cfg.data.num_workers,
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        worker_init_fn=_worker_init,
        pin_memory=torch.cuda.is_available(),
        sampler=s.name,
        sampler_options=s.options(),
        image_class_pixels=pixels,
    )


# ----------------------------------------------------------------------------- optimisation


def build_optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    """AdamW with the official parameter groups from ``cfg.optimizer``."""
    o = cfg.optimizer
    return build_adamw(
        model,
        lr=o.lr,
        weight_decay=o.weight_decay,
        betas=o.betas,
        eps=o.eps,
        head_lr_mult=o.head_lr_mult,
        norm_decay_mult=o.norm_decay_mult,
    )


def build_scheduler(cfg: Config, optimizer: torch.optim.Optimizer) -> PolyWarmupScheduler:
    """Poly schedule with linear warm-up from ``cfg.schedule``."""
    s = cfg.schedule
    return PolyWarmupScheduler(
        optimizer,
        max_iters=s.max_iters,
        power=s.power,
        min_lr=s.min_lr,
        warmup_iters=s.warmup_iters,
        warmup_ratio=s.warmup_ratio,
    )


# ----------------------------------------------------------------------------- evaluation


def inference_window(cfg: Config, mode: str | None = None) -> dict[str, Any]:
    """``{"mode", "crop_size", "stride"}`` for inference; ``mode`` overrides ``evaluation.mode``.

    Raises:
        InputError: slide mode without ``evaluation.crop_size``/``evaluation.stride``.
    """
    e = cfg.evaluation
    mode = mode or e.mode
    if mode == "slide" and (e.crop_size is None or e.stride is None):
        raise InputError(
            f"--mode slide needs evaluation.crop_size and evaluation.stride (got "
            f"{e.crop_size} and {e.stride}); pass e.g. "
            "--set evaluation.crop_size=[1024,1024] evaluation.stride=[768,768]"
        )
    return {
        "mode": mode,
        "crop_size": tuple(e.crop_size) if e.crop_size else None,
        "stride": tuple(e.stride) if e.stride else None,
    }


def test_time_views(cfg: Config, tta: bool = False) -> dict[str, Any]:
    """``{"scales", "flip"}``: the configured views, or mmseg's multi-scale + flip for TTA."""
    e = cfg.evaluation
    return {"scales": TTA_SCALES if tta else tuple(e.scales), "flip": True if tta else e.flip}


def build_evaluate_fn(
    cfg: Config,
    dataset: Any,
    device: torch.device,
    mode: str | None = None,
    tta: bool = False,
    show_dir: str | Path | None = None,
) -> Callable[[nn.Module], dict[str, Any]]:
    """``f(model) -> metrics`` running :func:`aucseg.engine.evaluate.evaluate` on ``dataset``."""
    window, views = inference_window(cfg, mode), test_time_views(cfg, tta)
    groups = resolve_class_groups(cfg)

    def run(model: nn.Module) -> dict[str, Any]:
        return evaluate(
            model,
            dataset,
            num_classes=cfg.model.num_classes,
            class_names=list(dataset.classes),
            groups=groups,
            **window,
            **views,
            device=device,
            nmf_seed=cfg.evaluation.nmf_seed,
            progress=cfg.runtime.progress and sys.stderr.isatty(),
            show_dir=show_dir,
            palette=getattr(dataset, "palette", None),
        )

    return run


def build_hooks(
    cfg: Config,
    work_dir: Path,
    scheduler: PolyWarmupScheduler,
    group_names: list[str],
    evaluate_fn: Callable[[nn.Module], dict[str, Any]] | None,
    bank: Any,
) -> tuple[list[Any], TrainLogger]:
    """The training hooks in their order: lr, logging, bank statistics, checkpoint (before
    evaluation at the same iteration), evaluation, interrupt."""
    r = cfg.runtime
    logger = TrainLogger(
        work_dir,
        cfg.schedule.max_iters,
        enabled=dist.is_main_process(),
        tensorboard=r.tensorboard,
        progress=r.progress,
    )
    checkpointer = CheckpointHook(work_dir, r.checkpoint_interval, r.keep_iter_checkpoints)
    hooks: list[Any] = [LRSchedulerHook(scheduler), LoggerHook(logger, r.log_interval, group_names)]
    if bank is not None and hasattr(bank, "stats"):
        hooks.append(BankStatsHook(bank, logger, r.log_interval))
    hooks.append(checkpointer)
    if evaluate_fn is not None and cfg.evaluation.interval > 0:
        e = cfg.evaluation
        hooks.append(EvalHook(evaluate_fn, e.interval, e.best_metric, checkpointer, logger))
    hooks.append(InterruptHook(checkpointer))
    return hooks, logger


__all__ = [
    "build_evaluate_fn",
    "build_hooks",
    "build_losses",
    "build_memory_bank",
    "build_model_from_config",
    "build_optimizer",
    "build_plain_dataset",
    "build_scheduler",
    "build_train_dataset",
    "build_train_loader",
    "build_val_dataset",
    "class_counts",
    "frequency_order",
    "inference_window",
    "resolve_class_groups",
    "resolve_device",
    "resolve_tail_classes",
    "test_time_views",
]
