"""Builders: the only place where a :class:`~aucseg.config.Config` is read.

Each ``build_*`` maps one config section onto the plain keyword arguments of a library
function; ``train_from_config``, ``test_from_config`` and ``predict_from_config`` wire them
together for the ``train``/``test``/``predict`` commands. Models, losses, datasets and the
memory bank are imported lazily so that config errors surface before heavy imports.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aucseg import dist
from aucseg.config import Config, config_from_dict, config_to_dict, save_config
from aucseg.engine.checkpoint import load_checkpoint_file, resolve_resume_path
from aucseg.engine.optim import build_adamw
from aucseg.engine.schedule import PolyWarmupScheduler
from aucseg.engine.trainer import Trainer, make_train_loader

MSCAN_WEIGHTS_URL = "https://github.com/Visual-Attention-Network/SegNeXt#results"
# Test-time augmentation used by ``--tta``: mmseg's multi-scale ratios plus horizontal flip.
TTA_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
AUC_LOSSES = ("square_auc", "hinge_auc", "exp_auc")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> this rank's CUDA device when available, else CPU.

    Raises:
        ValueError: a CUDA device was requested but CUDA is unavailable.
    """
    if name == "auto":
        name = f"cuda:{dist.get_local_rank()}" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"runtime.device={name!r} but CUDA is not available; use runtime.device=cpu or auto"
        )
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", dist.get_local_rank())
    return device


# ----------------------------------------------------------------------------- model / loss


def build_model_from_config(cfg: Config, load_pretrained: bool = True) -> nn.Module:
    """The segmentor of ``cfg.model``, with backbone ImageNet weights when configured.

    Raises:
        FileNotFoundError: ``model.pretrained`` is set but the file does not exist.
    """
    from aucseg.models import build_model, load_checkpoint

    m = cfg.model
    kwargs: dict[str, Any] = {}
    if m.name.startswith("segnext"):
        kwargs["drop_path_rate"] = m.drop_path_rate
    if load_pretrained and m.pretrained:
        path = Path(m.pretrained)
        if not path.is_file():
            raise FileNotFoundError(
                f"model.pretrained={m.pretrained!r} does not exist. Download the ImageNet MSCAN "
                f"backbone weights (e.g. mscan_l.pth) linked from the SegNeXt README "
                f"({MSCAN_WEIGHTS_URL}, repository Visual-Attention-Network/SegNeXt) into "
                f"{path.parent}/, or train from scratch with --set model.pretrained=null"
            )
    model = build_model(m.name, m.num_classes, **kwargs)
    if load_pretrained and m.pretrained:
        load_checkpoint(model, m.pretrained, strict=False)
    return model


def build_losses_from_config(cfg: Config, distributed: bool | None = None) -> list[nn.Module]:
    """One loss module per ``loss.terms`` entry (weights applied inside each module).

    AUC terms use the distributed-exact mode (``sync=True``) when a process group with more
    than one process is running.
    """
    from aucseg.losses import build_loss

    sync = dist.is_distributed() if distributed is None else distributed
    losses = []
    for term in cfg.loss.terms:
        kwargs: dict[str, Any] = {
            "loss_weight": term.weight,
            "ignore_index": cfg.loss.ignore_index,
        }
        if term.name in AUC_LOSSES:
            kwargs.update(gamma=term.gamma, transform=term.transform, sync=sync)
        else:
            kwargs["avg_non_ignore"] = term.avg_non_ignore
        losses.append(build_loss(term.name, cfg.model.num_classes, **kwargs))
    return losses


# ----------------------------------------------------------------------------- data


def resolve_tail_classes(cfg: Config) -> list[int]:
    """``memory_bank.tail_classes``; when null, the tail of ``data.class_groups`` (a JSON of
    ``aucseg stats``) if set, else the official list of the dataset.

    Raises:
        ValueError: no list is configured and the dataset has no official one.
    """
    if cfg.memory_bank.tail_classes is not None:
        return list(cfg.memory_bank.tail_classes)
    groups = resolve_class_groups(cfg)
    if groups is not None:
        return list(groups["tail"])
    from aucseg.data import OFFICIAL_TAIL_CLASSES

    if cfg.data.dataset not in OFFICIAL_TAIL_CLASSES:
        raise ValueError(
            f"memory_bank.tail_classes is null and dataset {cfg.data.dataset!r} has no official "
            f"tail list (known: {sorted(OFFICIAL_TAIL_CLASSES)}); set memory_bank.tail_classes"
        )
    return list(OFFICIAL_TAIL_CLASSES[cfg.data.dataset])


def build_memory_bank(cfg: Config, seed: int | None = None) -> tuple[Any, Any]:
    """``(batch_bank, sample_transform)`` for ``cfg.memory_bank``; both None when disabled.

    ``placement: batch`` gives a ``BatchTMemoryBank`` applied to each mini-batch in the main
    process (its state goes into checkpoints); ``placement: sample`` gives a
    ``MemoryBankTransform`` appended to the training pipeline (one bank per worker, as in the
    official code).
    """
    mb = cfg.memory_bank
    if not mb.enabled:
        return None, None
    from aucseg.augment import BatchTMemoryBank, MemoryBankTransform, TMemoryBank

    kwargs = {
        "num_classes": cfg.model.num_classes,
        "tail_classes": resolve_tail_classes(cfg),
        "memory_size": mb.memory_size,
        "p_sample": mb.p_sample,
        "p_resize": mb.p_resize,
        "seed": seed,
    }
    if mb.placement == "batch":
        return BatchTMemoryBank(**kwargs), None
    return None, MemoryBankTransform(TMemoryBank(**kwargs))


def build_train_dataset(cfg: Config, sample_transform: Any = None) -> Any:
    """The training split with the official training pipeline (+ per-sample memory bank)."""
    from aucseg.data import build_dataset
    from aucseg.data.transforms import build_train_pipeline

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
        from aucseg.data.transforms import Compose

        pipeline = Compose([pipeline, sample_transform])
    return build_dataset(d.dataset, d.root, d.train_split, transforms=pipeline)


def build_val_dataset(cfg: Config) -> Any:
    """The validation split with the test pipeline (labels at original resolution)."""
    from aucseg.data import build_dataset
    from aucseg.data.transforms import build_test_pipeline

    d = cfg.data
    pipeline = build_test_pipeline(tuple(d.img_scale), size_divisor=d.test_size_divisor)
    return build_dataset(d.dataset, d.root, d.val_split, transforms=pipeline)


def build_train_loader(
    cfg: Config, dataset: Any, consumed_batches: int = 0, seed: int | None = None
) -> torch.utils.data.DataLoader:
    """Endless, resumable training loader for this rank (see :func:`make_train_loader`)."""
    from aucseg.data import seed_worker

    return make_train_loader(
        dataset,
        cfg.data.batch_size,
        consumed_batches=consumed_batches,
        seed=cfg.runtime.seed if seed is None else seed,
        num_workers=cfg.data.num_workers,
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        worker_init_fn=seed_worker,
        pin_memory=torch.cuda.is_available(),
    )


def check_num_classes(cfg: Config, dataset: Any) -> None:
    """Raise ValueError when ``model.num_classes`` differs from the dataset's class count."""
    n = getattr(dataset, "num_classes", None)
    if n is not None and n != cfg.model.num_classes:
        raise ValueError(
            f"model.num_classes={cfg.model.num_classes} but dataset {cfg.data.dataset!r} has "
            f"{n} classes; set --set model.num_classes={n}"
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


def frequency_order(cfg: Config) -> list[int] | None:
    """Class ids by decreasing training pixel count (from ``data.class_groups``), else None."""
    if cfg.data.class_groups is None:
        return None
    from aucseg.data.stats import load_class_stats

    counts = load_class_stats(cfg.data.class_groups)["pixel_counts"]
    return sorted(range(len(counts)), key=lambda c: (-counts[c], c))


def resolve_class_groups(cfg: Config) -> dict[str, list[int]] | None:
    """Head/middle/tail class ids from ``data.class_groups`` (a JSON of ``aucseg stats``)."""
    if cfg.data.class_groups is None:
        return None
    from aucseg.data.stats import load_class_groups

    return load_class_groups(cfg.data.class_groups)


def inference_window(cfg: Config, mode: str | None = None) -> dict[str, Any]:
    """``{"mode", "crop_size", "stride"}`` for inference; ``mode`` overrides ``evaluation.mode``.

    Raises:
        ValueError: slide mode without ``evaluation.crop_size``/``evaluation.stride``.
    """
    e = cfg.evaluation
    mode = mode or e.mode
    if mode == "slide" and (e.crop_size is None or e.stride is None):
        raise ValueError(
            f"--mode slide needs evaluation.crop_size and evaluation.stride (got "
            f"{e.crop_size} and {e.stride}); pass e.g. "
            "--set evaluation.crop_size=[1024,1024] evaluation.stride=[768,768]"
        )
    return {
        "mode": mode,
        "crop_size": tuple(e.crop_size) if e.crop_size else None,
        "stride": tuple(e.stride) if e.stride else None,
    }


def build_evaluate_fn(
    cfg: Config,
    dataset: Any,
    device: torch.device,
    mode: str | None = None,
    tta: bool = False,
    show_dir: str | Path | None = None,
    progress: bool | None = None,
) -> Callable[[nn.Module], dict[str, Any]]:
    """``f(model) -> metrics`` running :func:`aucseg.engine.evaluate.evaluate` on ``dataset``.

    Args:
        mode: overrides ``evaluation.mode`` (``whole``/``slide``).
        tta: multi-scale (0.5-1.75) + flip test-time augmentation.
        show_dir: also write colour predictions there.
    """
    from aucseg.engine.evaluate import evaluate

    e = cfg.evaluation
    window = inference_window(cfg, mode)
    groups = resolve_class_groups(cfg)

    def run(model: nn.Module) -> dict[str, Any]:
        # evaluate() itself hands NMF back to the global RNG (saved in checkpoints) afterwards
        return evaluate(
            model,
            dataset,
            num_classes=cfg.model.num_classes,
            class_names=list(dataset.classes),
            groups=groups,
            **window,
            scales=TTA_SCALES if tta else tuple(e.scales),
            flip=True if tta else e.flip,
            device=device,
            nmf_seed=e.nmf_seed,
            progress=cfg.runtime.progress if progress is None else progress,
            show_dir=show_dir,
            palette=getattr(dataset, "palette", None),
        )

    return run


# ----------------------------------------------------------------------------- commands


def train_from_config(
    cfg: Config, work_dir: str | Path, resume: str | Path | bool | None = None
) -> dict[str, Any]:
    """Train as ``aucseg train``: set up (DDP), build everything, resume, run, clean up.

    Returns:
        The trainer's summary (``iteration``, ``best_metric``, ``last_checkpoint``).
    """
    work_dir = Path(work_dir)
    dist.init_distributed()
    try:
        device = resolve_device(cfg.runtime.device)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.seed_everything(cfg.runtime.seed)
        resume_path = resolve_resume_path(resume, work_dir) if resume else None
        if dist.is_main_process():
            save_config(cfg, work_dir / "config.yaml")
        model = build_model_from_config(cfg, load_pretrained=resume_path is None)
        # SyncBatchNorm has no CPU kernel: CPU (gloo) runs keep per-process BatchNorm
        if dist.is_distributed() and cfg.model.sync_bn and device.type != "cpu":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(device)
        bank, sample_transform = build_memory_bank(cfg, seed=cfg.runtime.seed + dist.get_rank())
        train_set = build_train_dataset(cfg, sample_transform)
        check_num_classes(cfg, train_set)
        evaluate_fn = None
        if cfg.evaluation.interval > 0:
            evaluate_fn = build_evaluate_fn(cfg, build_val_dataset(cfg), device)
        optimizer = build_optimizer(cfg, model)
        trainer = Trainer(
            model,
            [loss.to(device) for loss in build_losses_from_config(cfg)],
            optimizer,
            build_scheduler(cfg, optimizer),
            lambda consumed: build_train_loader(cfg, train_set, consumed),
            cfg.schedule.max_iters,
            work_dir,
            device=device,
            amp=cfg.runtime.amp,
            accumulation_steps=cfg.schedule.accumulation_steps,
            grad_clip=cfg.optimizer.grad_clip,
            memory_bank=bank,
            evaluate_fn=evaluate_fn,
            eval_interval=cfg.evaluation.interval,
            best_metric=cfg.evaluation.best_metric,
            log_interval=cfg.runtime.log_interval,
            checkpoint_interval=cfg.runtime.checkpoint_interval,
            keep_iter_checkpoints=cfg.runtime.keep_iter_checkpoints,
            config=config_to_dict(cfg),
            tensorboard=cfg.runtime.tensorboard,
            progress=cfg.runtime.progress,
            find_unused_parameters=cfg.runtime.find_unused_parameters,
            seed=cfg.runtime.seed,
        )
        if resume_path is not None:
            trainer.resume(resume_path)
        return trainer.train()
    finally:
        dist.cleanup()


def config_from_checkpoint(path: str | Path) -> Config:
    """The resolved config stored in an aucseg checkpoint.

    Raises:
        ValueError: the checkpoint holds no config (e.g. an official MMSegmentation file).
    """
    state = load_checkpoint_file(path)
    if not isinstance(state.get("config"), dict):
        raise ValueError(
            f"{path} holds no aucseg config (official MMSegmentation checkpoints do not); "
            f"pass --config CONFIG"
        )
    return config_from_dict(state["config"])


def load_model_for_inference(
    cfg: Config, checkpoint: str | Path, device: torch.device
) -> nn.Module:
    """Build ``cfg``'s model, load ``checkpoint`` (aucseg or official mmseg), eval mode."""
    from aucseg.models import load_checkpoint

    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    model = build_model_from_config(cfg, load_pretrained=False)
    load_checkpoint(model, checkpoint, strict=True)
    return model.to(device).eval()


def evaluate_from_config(
    cfg: Config,
    checkpoint: str | Path,
    mode: str | None = None,
    tta: bool = False,
    out: str | Path | None = None,
    show_dir: str | Path | None = None,
    plot: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate ``checkpoint`` on the validation split as ``aucseg test``.

    Writes ``out`` (metrics JSON) and ``plot`` (per-class IoU bars, classes by decreasing
    training frequency when ``data.class_groups`` holds the counts) on rank 0 and prints the
    metric table.

    Returns:
        The metrics dict of :func:`aucseg.engine.evaluate.evaluate`.
    """
    from aucseg.metrics import format_table, plot_per_class, write_metrics_json

    dist.init_distributed()
    try:
        device = resolve_device(cfg.runtime.device)
        model = load_model_for_inference(cfg, checkpoint, device)
        dataset = build_val_dataset(cfg)
        check_num_classes(cfg, dataset)
        evaluate_fn = build_evaluate_fn(cfg, dataset, device, mode, tta, show_dir)
        results = evaluate_fn(model)
        if dist.is_main_process():
            print(format_table(results), file=sys.stdout)
            if out is not None:
                write_metrics_json(out, results)
            if plot is not None:
                plot_per_class(results, plot, order=frequency_order(cfg))
        return results
    finally:
        dist.cleanup()


def resolve_palette(cfg: Config) -> Any:
    """The dataset's palette, or :func:`default_palette` when the data folder is unavailable."""
    try:
        return build_val_dataset(cfg).palette
    except (FileNotFoundError, ValueError, OSError, RuntimeError):
        print(
            f"note: dataset at {cfg.data.root!r} not available; using a generated palette",
            file=sys.stderr,
        )
        from aucseg.data.classes import default_palette

        return default_palette(cfg.model.num_classes)


def predict_from_config(
    cfg: Config,
    checkpoint: str | Path,
    images: Sequence[str | Path],
    out_dir: str | Path,
    mode: str | None = None,
) -> list[Path]:
    """Write ``<stem>_mask.png`` and ``<stem>_overlay.png`` for each image as ``aucseg predict``.

    Raises:
        FileNotFoundError: an input image does not exist.
    """
    from aucseg.engine.predict import predict_images

    missing = [str(p) for p in images if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"input images not found: {', '.join(missing)}")
    window = inference_window(cfg, mode)
    device = resolve_device(cfg.runtime.device)
    model = load_model_for_inference(cfg, checkpoint, device)
    return predict_images(
        model,
        [Path(p) for p in images],
        out_dir,
        resolve_palette(cfg),
        img_scale=tuple(cfg.data.img_scale),
        size_divisor=cfg.data.test_size_divisor,
        **window,
        device=device,
        nmf_seed=cfg.evaluation.nmf_seed,
        progress=cfg.runtime.progress,
    )
