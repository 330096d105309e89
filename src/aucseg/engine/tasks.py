"""The bodies of ``aucseg train``, ``aucseg test`` and ``aucseg predict``.

Each task takes a resolved :class:`~aucseg.config.Config` and plain values, builds what it
needs through :mod:`aucseg.engine.build` and runs it. Bad input raises
:class:`~aucseg.errors.InputError` before any long work starts; the command line prints it.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aucseg import __version__, dist
from aucseg.config import Config, apply_overrides, config_from_dict, config_to_dict, load_config
from aucseg.config import save_config as write_config
from aucseg.data.classes import default_palette
from aucseg.data.transforms import build_test_pipeline
from aucseg.engine import build
from aucseg.engine.checkpoint import (
    check_training_checkpoint,
    checkpoint_dir,
    load_checkpoint_file,
    resolve_resume_path,
)
from aucseg.engine.predict import find_images, predict_images
from aucseg.engine.trainer import StepOptions, Trainer
from aucseg.errors import CheckpointError, InputError
from aucseg.fileio import check_writable_dir, remove_stale_temps
from aucseg.metrics import format_table, plot_per_class, write_metrics_json
from aucseg.models import check_state_dict, count_parameters, load_checkpoint, read_checkpoint

# Keys a resumed run cannot change, and why.
FROZEN_ON_RESUME = {
    "model": "the checkpoint holds this architecture's weights",
    "data.dataset": "the run's classes come from it",
    "data.batch_size": "the resumed data stream is counted in batches",
    "data.sampler": "it defines the run's data order",
    "schedule.accumulation_steps": "the resumed data stream is counted in micro-batches",
    "runtime.seed": "it defines the run's data order and augmentation",
    "memory_bank.enabled": "the bank's stored state belongs to the run",
    "memory_bank.placement": "the bank's stored state belongs to the run",
    "memory_bank.classes": "the bank's stored state belongs to the run",
    "memory_bank.tail_classes": "the bank's stored state belongs to the run",
    "memory_bank.memory_size": "the bank's stored state belongs to the run",
}
PATH_KEYS = (("data", "root"), ("data", "class_groups"), ("model", "pretrained"))


def _lookup(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def absolute_paths(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its file and folder paths made absolute (stored runs move with them)."""
    for section, key in PATH_KEYS:
        value = data.get(section, {}).get(key)
        if isinstance(value, str) and value:
            data[section][key] = str(Path(value).expanduser().resolve())
    source = data.get("model", {}).get("source")
    if isinstance(source, str) and Path(source).expanduser().exists():
        data["model"]["source"] = str(Path(source).expanduser().resolve())
    return data


def _existing_checkpoints(work_dir: Path) -> list[Path]:
    folder = checkpoint_dir(work_dir)
    return sorted(folder.glob("*.pth")) if folder.is_dir() else []


def train_config(
    config: str | Path | None,
    work_dir: str | Path,
    overrides: list[str],
    resume: str | Path | bool | None = None,
) -> tuple[Config, Path | None]:
    """The config a training run uses, and the checkpoint it resumes from (or None).

    Without ``resume``: ``config`` plus ``overrides``; a work dir that already holds
    checkpoints is refused. With ``resume``: the run's stored config plus ``overrides``
    (``config`` is not re-read); keys in :data:`FROZEN_ON_RESUME` cannot change.

    Raises:
        InputError: see above; FileNotFoundError: no config or checkpoint.
    """
    work_dir = Path(work_dir)
    if not resume:
        found = _existing_checkpoints(work_dir)
        if found:
            raise InputError(
                f"work dir {work_dir} already holds checkpoints ({found[0].name}); continue that "
                f"run with --resume, or choose a new --work-dir"
            )
        if config is None:
            raise InputError("give a CONFIG (a YAML file or a shipped config name)")
        return _resolved_absolute(load_config(config, overrides)), None
    path = resolve_resume_path(resume, work_dir)
    state = load_checkpoint_file(path, mmap=True)  # the weights are read by the trainer
    check_training_checkpoint(state, path)
    stored = state.get("config")
    if not isinstance(stored, dict):
        raise CheckpointError(f"{path} holds no aucseg config; it cannot be resumed")
    updated = apply_overrides(copy.deepcopy(stored), overrides)
    _check_frozen(stored, updated)  # before resolving: another model fails on these options
    cfg = config_from_dict(updated)
    _check_frozen(stored, config_to_dict(cfg))
    if config is not None:
        _say(f"note: resuming from the config stored in {path}; {config} is not re-read "
             f"(change values with --set)")  # fmt: skip
    return _resolved_absolute(cfg), path


def _resolved_absolute(cfg: Config) -> Config:
    return config_from_dict(absolute_paths(config_to_dict(cfg)))


def _check_frozen(stored: dict[str, Any], new: dict[str, Any]) -> None:
    for key, reason in FROZEN_ON_RESUME.items():
        before = _lookup(stored, key)
        after = _lookup(new, key)
        if before is not None and before != after:
            raise InputError(
                f"--set {key} cannot change when resuming ({reason}): the run has "
                f"{before!r}; start a new run in another --work-dir to change it"
            )


def _say(message: str) -> None:
    # RANK: torchrun's rank of this process, also before the process group exists
    if dist.is_main_process() and os.environ.get("RANK", "0") == "0":
        print(message, file=sys.stderr, flush=True)


def _summary_line(cfg: Config, device: torch.device, model: nn.Module, sizes: dict) -> str:
    data = ", ".join(f"{k} {v} images" for k, v in sizes.items())
    return (
        f"aucseg {__version__}: {cfg.model.name} ({count_parameters(model) / 1e6:.2f} M "
        f"parameters, {cfg.model.num_classes} classes) on {device}, "
        f"{dist.get_world_size()} process(es); dataset {cfg.data.dataset} at {cfg.data.root}: "
        f"{data}"
    )


def _prepare_model(cfg: Config, device: torch.device, pretrained: bool) -> nn.Module:
    model = build.build_model_from_config(cfg, load_pretrained=pretrained)
    # SyncBatchNorm has no CPU kernel: CPU (gloo) runs keep per-process BatchNorm
    if dist.is_distributed() and cfg.model.sync_bn and device.type != "cpu":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    if cfg.runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def _step_options(cfg: Config, device: torch.device) -> StepOptions:
    r = cfg.runtime
    return StepOptions(
        device=device,
        amp=r.amp,
        accumulation_steps=cfg.schedule.accumulation_steps,
        grad_clip=cfg.optimizer.grad_clip,
        nonfinite=r.nonfinite,
        debug=r.debug,
        channels_last=r.channels_last,
        find_unused_parameters=r.find_unused_parameters,
        seed=r.seed,
    )


def build_trainer(
    cfg: Config, work_dir: Path, device: torch.device, resume: bool
) -> tuple[Trainer, list[str]]:
    """Everything a training run needs, wired: model, losses, data, optimizer, hooks.

    Returns:
        The trainer, and the lines the run prints when it starts (summary, notes).
    """
    model = _prepare_model(cfg, device, pretrained=not resume)
    bank, sample_transform = build.build_memory_bank(cfg, seed=cfg.runtime.seed + dist.get_rank())
    train_set = build.build_train_dataset(cfg, sample_transform)
    sizes = {"train": len(train_set)}
    evaluate_fn = None
    if cfg.evaluation.interval > 0:
        val_set = build.build_val_dataset(cfg)
        sizes["val"] = len(val_set)
        evaluate_fn = build.build_evaluate_fn(cfg, val_set, device)
    losses, notes = build.build_losses(cfg)
    optimizer = build.build_optimizer(cfg, model)
    scheduler = build.build_scheduler(cfg, optimizer)
    groups = [g.get("group", f"group{i}") for i, g in enumerate(optimizer.param_groups)]
    hooks, _ = build.build_hooks(cfg, work_dir, scheduler, groups, evaluate_fn, bank)
    step_model = torch.compile(model) if cfg.runtime.compile else model
    trainer = Trainer(
        step_model,
        [loss.to(device) for loss in losses],
        optimizer,
        lambda consumed: build.build_train_loader(cfg, train_set, consumed),
        cfg.schedule.max_iters,
        _step_options(cfg, device),
        memory_bank=bank,
        hooks=hooks,
    )
    trainer.model = model  # checkpoints hold the plain module's weights
    trainer.config = config_to_dict(cfg)
    lines = [_summary_line(cfg, device, model, sizes) + f"; work dir {work_dir}"]
    return trainer, lines + (["note: " + "; ".join(notes)] if notes else [])  # one note line


def train(cfg: Config, work_dir: str | Path, resume_from: Path | None = None) -> dict[str, Any]:
    """Train as ``aucseg train`` (DDP under torchrun), from ``resume_from`` when given.

    Returns:
        The trainer's summary (``iteration``, ``best_metric``, ``last_checkpoint``, ...).
    """
    work_dir = check_writable_dir(Path(work_dir).resolve(), "--work-dir")
    dist.init_distributed()
    try:
        device = build.resolve_device(cfg.runtime.device)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.seed_everything(cfg.runtime.seed)
        trainer, start_lines = build_trainer(cfg, work_dir, device, resume_from is not None)
        if resume_from is not None:
            load_training_state(trainer, resume_from)
        # the work dir changes only once the run is known to start
        if dist.is_main_process():
            for folder in (work_dir, checkpoint_dir(work_dir)):  # left by killed writes
                remove_stale_temps(folder)
            write_config(cfg, work_dir / "config.yaml")
        for line in start_lines:
            _say(line)
        return trainer.train()
    finally:
        dist.cleanup()


def _fit_problems(model: nn.Module, weights: dict[str, torch.Tensor]) -> str | None:
    """How ``weights`` differ from ``model``'s state_dict, in a few words; None when they fit."""
    missing, unexpected, mismatched = check_state_dict(model, weights)
    parts = [
        f"{len(found)} {what} (e.g. {found[0]})"
        for found, what in (
            (missing, "missing"),
            (unexpected, "unexpected"),
            (mismatched, "mis-shaped"),
        )
        if found
    ]
    return ", ".join(parts) or None


def load_training_state(trainer: Trainer, path: Path) -> None:
    """Resume ``trainer`` from ``path``; a checkpoint of another model is one clear error."""
    state = load_checkpoint_file(path, map_location="cpu")
    check_training_checkpoint(state, path)
    problems = _fit_problems(trainer.model, state["model"])
    if problems is not None:
        raise CheckpointError(
            f"cannot resume from {path}: its weights do not fit this run's model ({problems}); "
            f"resume with the run's own last.pth"
        )
    try:
        trainer.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise CheckpointError(
            f"cannot resume from {path}: it does not fit this run's model or optimizer "
            f"({first}); resume with the run's own last.pth"
        ) from None
    trainer.last_checkpoint = path


# ----------------------------------------------------------------------------- inference


def config_from_checkpoint(path: str | Path, overrides: list[str] | None = None) -> Config:
    """The resolved config stored in an aucseg checkpoint, with ``overrides`` applied.

    Raises:
        CheckpointError: unreadable, or holds no config (e.g. an official MMSegmentation file).
    """
    if Path(path).is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory; give the .pth file in it")
    _, kind, meta = read_checkpoint(path)  # torch or safetensors files
    stored = meta.get("config")
    if not isinstance(stored, dict):
        raise CheckpointError(
            f"{path} holds no aucseg config (a {kind} checkpoint; official MMSegmentation "
            f"files have none); pass --config CONFIG"
        )
    return config_from_dict(apply_overrides(copy.deepcopy(stored), overrides or []))


def inference_config(
    config: str | Path | None, checkpoint: str | Path, overrides: list[str]
) -> Config:
    """``config`` plus ``overrides``, or the checkpoint's own config when ``config`` is None."""
    if config is not None:
        return load_config(config, overrides)
    return config_from_checkpoint(checkpoint, overrides)


def load_model_for_inference(
    cfg: Config, checkpoint: str | Path, device: torch.device
) -> tuple[nn.Module, int | None]:
    """``cfg``'s model with ``checkpoint`` loaded strictly, in eval mode, and its iteration."""
    if Path(checkpoint).is_dir():
        raise CheckpointError(f"checkpoint {checkpoint} is a directory; give the file in it")
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    model = build.build_model_from_config(cfg, load_pretrained=False)
    iteration = load_checkpoint(model, checkpoint, strict=True).meta.get("iteration")
    model = model.to(device).eval()
    if cfg.runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    return model, int(iteration) if isinstance(iteration, (int, float)) else None


def _output_paths(out: str | Path | None, plot: str | Path | None, show_dir: str | Path | None):
    for path, what in ((out, "--out"), (plot, "--plot")):
        if path is not None:
            if Path(path).is_dir():
                raise InputError(f"{what} {path} is a directory; give a file name")
            check_writable_dir(Path(path).resolve().parent, what)
    if show_dir is not None:
        check_writable_dir(show_dir, "--show-dir")


def provenance(
    cfg: Config, checkpoint: str | Path, iteration: int | None, split: str, **extra: Any
) -> dict[str, Any]:
    """Where a result comes from: checkpoint, iteration, config, split, mode, versions."""
    return {
        "checkpoint": str(Path(checkpoint).resolve()),
        "iteration": iteration,
        "split": split,
        "aucseg_version": __version__,
        "class_ids": list(range(cfg.model.num_classes)),
        "seed": cfg.runtime.seed,
        "model": cfg.model.name,
        **extra,
    }


def test(
    cfg: Config,
    checkpoint: str | Path,
    mode: str | None = None,
    tta: bool = False,
    out: str | Path | None = None,
    show_dir: str | Path | None = None,
    plot: str | Path | None = None,
    split: str | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """Evaluate ``checkpoint`` as ``aucseg test``: print the table, write JSON and plot.

    Output locations are checked writable before the evaluation starts.

    Returns:
        The metrics dict (with ``provenance``).
    """
    _output_paths(out, plot, show_dir)
    dist.init_distributed()
    try:
        device = build.resolve_device(cfg.runtime.device)
        model, iteration = load_model_for_inference(cfg, checkpoint, device)
        split = split or cfg.data.val_split
        dataset = build.build_val_dataset(cfg, split)
        results = build.build_evaluate_fn(cfg, dataset, device, mode, tta, show_dir)(model)
        window = build.inference_window(cfg, mode)
        results["provenance"] = provenance(
            cfg, checkpoint, iteration, split, mode=window["mode"], tta=tta, label=label,
            config=config_to_dict(cfg),
        )  # fmt: skip
        if dist.is_main_process():
            print(format_table(results))
            if out is not None:
                print(f"wrote {write_metrics_json(out, results)}")
            if plot is not None:
                print(f"wrote {plot_per_class(results, plot, order=build.frequency_order(cfg))}")
        return results
    finally:
        dist.cleanup()


def resolve_palette_and_names(cfg: Config) -> tuple[Any, list[str]]:
    """Palette and class names of the config's dataset, without reading its files when the
    dataset is not on this machine (generated palette, numbered names)."""
    try:
        dataset = build.build_val_dataset(cfg)
        return dataset.palette, list(dataset.classes)
    except (InputError, FileNotFoundError, OSError):
        n = cfg.model.num_classes
        classes = cfg.data.options().get("classes")
        names = list(classes) if isinstance(classes, list) else [str(i) for i in range(n)]
        palette = cfg.data.options().get("palette") or default_palette(n)
        _say(f"note: dataset at {cfg.data.root!r} not available; using its config for the legend")
        return palette, names


def predict(
    cfg: Config,
    checkpoint: str | Path,
    inputs: list[str | Path],
    out_dir: str | Path,
    mode: str | None = None,
) -> list[Path]:
    """Write label-id PNGs, colour masks, overlays and a legend for images or folders, as
    ``aucseg predict``; the model input is the test pipeline's (as ``aucseg test``)."""
    images = find_images(inputs)
    out_dir = check_writable_dir(out_dir, "--out")
    window = build.inference_window(cfg, mode)
    device = build.resolve_device(cfg.runtime.device)
    model, _ = load_model_for_inference(cfg, checkpoint, device)
    palette, names = resolve_palette_and_names(cfg)
    preprocess = build_test_pipeline(tuple(cfg.data.img_scale), cfg.data.test_size_divisor)
    return predict_images(
        model, images, out_dir, palette, preprocess, names, window, device,
        cfg.evaluation.nmf_seed, cfg.runtime.progress and sys.stderr.isatty(),
    )  # fmt: skip
