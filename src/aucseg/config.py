"""Typed run configuration: YAML files mapped onto dataclasses, dotted overrides, validation.

A config is one :class:`Config` made of sections (model, loss, data, memory_bank, optimizer,
schedule, evaluation, runtime). :func:`load_config` reads a YAML file, applies ``key=value``
overrides (``data.root=/data/ade``, ``loss.terms.0.weight=2``) and validates every value
against the dataclass field types, so a misspelt key or a bad value fails before any work
starts, naming the key and what is allowed. :func:`save_config` writes the resolved config.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

ModelName = Literal[
    "segnext_tiny",
    "segnext_small",
    "segnext_base",
    "segnext_large",
    "deeplabv3plus_r50",
    "deeplabv3plus_r101",
]
LossName = Literal["square_auc", "hinge_auc", "exp_auc", "cross_entropy"]
DatasetName = Literal["ade20k", "cityscapes", "coco_stuff164k", "folder"]
BEST_METRICS = ("mIoU", "mIoU_tail", "mIoU_middle", "mIoU_head", "mAcc", "aAcc")


@dataclass
class ModelConfig:
    """Segmentor: a registered model name, the class count and backbone ImageNet weights."""

    name: ModelName = "segnext_large"
    num_classes: int = 150
    pretrained: str | None = None  # ImageNet backbone file, e.g. pretrained/mscan_l.pth
    drop_path_rate: float = 0.3
    sync_bn: bool = True  # convert BatchNorm to SyncBatchNorm under DDP


@dataclass
class LossTermConfig:
    """One term of the summed training loss (``weight`` is the term's ``loss_weight``)."""

    name: LossName = "cross_entropy"
    weight: float = 1.0
    gamma: float = 1.0  # AUC margin (AUC losses only)
    transform: Literal["ovo", "ova"] = "ovo"  # AUC losses only
    avg_non_ignore: bool = False  # CE only: False = mean over all pixels (mmseg default)


@dataclass
class LossConfig:
    """The loss terms added together, and the ignored label value."""

    terms: list[LossTermConfig] = field(default_factory=lambda: [LossTermConfig()])
    ignore_index: int = 255


@dataclass
class DataConfig:
    """Dataset, training pipeline and loader settings."""

    dataset: DatasetName = "ade20k"
    root: str = "data/ade/ADEChallengeData2016"
    train_split: str = "training"
    val_split: str = "validation"
    img_scale: tuple[int, int] = (2048, 512)  # (long, short) side as in mmseg
    crop_size: tuple[int, int] = (512, 512)  # (h, w)
    ratio_range: tuple[float, float] = (0.5, 2.0)
    cat_max_ratio: float = 0.75
    flip_prob: float = 0.5
    photometric: bool = True
    test_size_divisor: int | None = 32
    batch_size: int = 4  # per process
    num_workers: int = 4
    class_groups: str | None = None  # JSON of `aucseg stats`: eval groups, bank tail list


@dataclass
class MemoryBankConfig:
    """T-Memory Bank: off, per mini-batch in the main process, or per sample in the workers."""

    enabled: bool = False
    placement: Literal["batch", "sample"] = "batch"
    tail_classes: list[int] | None = None  # None = aucseg.data.OFFICIAL_TAIL_CLASSES[dataset]
    memory_size: int = 5
    p_sample: float = 1.0
    p_resize: float = 1.0


@dataclass
class OptimizerConfig:
    """AdamW with the official parameter groups (head lr x10, no decay on norm parameters)."""

    name: Literal["adamw"] = "adamw"
    lr: float = 6e-5
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.01
    head_lr_mult: float = 10.0
    norm_decay_mult: float = 0.0
    grad_clip: float | None = None  # max gradient L2 norm; None = no clipping (official)


@dataclass
class ScheduleConfig:
    """Iteration budget and the poly learning-rate schedule with linear warm-up."""

    max_iters: int = 160000
    warmup_iters: int = 1500
    warmup_ratio: float = 1e-6
    power: float = 1.0
    min_lr: float = 0.0
    accumulation_steps: int = 1


@dataclass
class EvaluationConfig:
    """Periodic validation and the test-time inference mode."""

    interval: int = 8000  # iterations; 0 = never during training
    mode: Literal["whole", "slide"] = "whole"
    crop_size: tuple[int, int] | None = None  # slide window (h, w)
    stride: tuple[int, int] | None = None  # slide stride (h, w)
    scales: list[float] = field(default_factory=lambda: [1.0])
    flip: bool = False
    best_metric: str = "mIoU"
    nmf_seed: int | None = 0


@dataclass
class RuntimeConfig:
    """Seed, precision, device, logging and checkpointing."""

    seed: int = 0
    amp: Literal["none", "bf16", "fp16"] = "none"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    log_interval: int = 50
    checkpoint_interval: int = 8000
    keep_iter_checkpoints: bool = False  # also write iter_XXXXXXX.pth at every interval
    tensorboard: bool = True
    progress: bool = True
    find_unused_parameters: bool = False


@dataclass
class Config:
    """A complete run configuration."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    memory_bank: MemoryBankConfig = field(default_factory=MemoryBankConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


# ----------------------------------------------------------------------------- conversion


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in typing.get_args(tp))}]"
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check/convert ``value`` to type ``tp``; raise ValueError naming ``key`` on failure."""
    origin = typing.get_origin(tp)
    bad = ValueError(
        f"config key '{key}': got {value!r} ({type(value).__name__}), expected {_type_name(tp)}"
    )
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise bad
        return _from_dict(tp, value, key)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ValueError(
                f"config key '{key}': got {value!r}, allowed values: "
                f"{', '.join(repr(a) for a in allowed)}"
            )
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, key)
            except ValueError:
                continue
        raise bad
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad
        args = typing.get_args(tp)
        if origin is tuple:
            if len(value) != len(args):
                raise ValueError(f"config key '{key}': got {value!r}, expected {len(args)} values")
            return tuple(
                _convert(v, a, f"{key}.{i}")
                for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
        return [_convert(v, args[0], f"{key}.{i}") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise bad from None
        raise bad
    if tp is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "6e-5" as a string
            try:
                return float(value)
            except ValueError:
                raise bad from None
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    raise TypeError(f"config key '{key}': unsupported field type {tp!r}")


def _unknown_key(section: str, name: str, allowed: list[str]) -> ValueError:
    where = f"'{section}.{name}'" if section else f"'{name}'"
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ValueError(f"unknown config key {where}{hint}; allowed keys: {', '.join(allowed)}")


def _from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, validating every key and value."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for name, value in data.items():
        if name not in hints:
            raise _unknown_key(prefix, str(name), names)
        kwargs[name] = _convert(value, hints[name], f"{prefix}.{name}" if prefix else name)
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from a nested dict (missing keys take defaults).

    Raises:
        ValueError: unknown key, wrong type, or a value outside the allowed set.
    """
    if not isinstance(data, dict):
        raise TypeError(f"a config must be a mapping, got {type(data).__name__}")
    cfg = _from_dict(Config, data)
    validate_config(cfg)
    return cfg


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The config as plain nested dicts/lists (tuples become lists), ready for YAML or torch."""

    def plain(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x

    return plain(dataclasses.asdict(cfg))


# ----------------------------------------------------------------------------- overrides


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` strings to a nested config dict (in place) and return it.

    Values are parsed as YAML (``[512,512]``, ``null``, ``true``, ``1e-4``). List items are
    addressed by index: ``loss.terms.1.weight=4``.

    Raises:
        ValueError: an item without ``=``, or a key path that does not exist.
    """
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value, e.g. data.root=/data")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node: Any = data
        cls: Any = Config
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            path = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ValueError(
                        f"config key '{path}': list index must be 0..{len(node) - 1}, got {part!r}"
                    )
                idx = int(part)
                if last:
                    node[idx] = _parse_scalar(text)
                else:
                    node = node[idx]
                continue
            if cls is not None and dataclasses.is_dataclass(cls):
                hints = typing.get_type_hints(cls)
                if part not in hints:
                    raise _unknown_key(".".join(parts[:depth]), part, list(hints))
                cls = _element_class(hints[part])
            if last:
                node[part] = _parse_scalar(text)
            else:
                node = node.setdefault(part, {} if cls is not None else [])
    return data


def _element_class(tp: Any) -> Any:
    """The dataclass reached through field type ``tp`` (directly or as list element)."""
    if dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) is list:
        inner = typing.get_args(tp)[0]
        return inner if dataclasses.is_dataclass(inner) else None
    return None


# ----------------------------------------------------------------------------- validation


def validate_config(cfg: Config) -> None:
    """Cross-field checks that types alone cannot express.

    Raises:
        ValueError: naming the key, the received value and what is allowed.
    """

    def need(ok: bool, key: str, value: Any, allowed: str) -> None:
        if not ok:
            raise ValueError(f"config key '{key}': got {value!r}, allowed: {allowed}")

    need(cfg.model.num_classes >= 2, "model.num_classes", cfg.model.num_classes, "an int >= 2")
    need(len(cfg.loss.terms) >= 1, "loss.terms", cfg.loss.terms, "at least one loss term")
    for i, term in enumerate(cfg.loss.terms):
        need(term.weight >= 0, f"loss.terms.{i}.weight", term.weight, "a number >= 0")
    d = cfg.data
    need(d.batch_size >= 1, "data.batch_size", d.batch_size, "an int >= 1")
    need(d.num_workers >= 0, "data.num_workers", d.num_workers, "an int >= 0")
    need(min(d.crop_size) >= 1, "data.crop_size", d.crop_size, "two positive ints (h, w)")
    need(0 <= d.flip_prob <= 1, "data.flip_prob", d.flip_prob, "a probability in [0, 1]")
    mb = cfg.memory_bank
    need(mb.memory_size >= 1, "memory_bank.memory_size", mb.memory_size, "an int >= 1")
    need(0 <= mb.p_sample <= 1, "memory_bank.p_sample", mb.p_sample, "a number in [0, 1]")
    need(0 < mb.p_resize <= 1, "memory_bank.p_resize", mb.p_resize, "a number in (0, 1]")
    if mb.tail_classes is not None:
        bad = [c for c in mb.tail_classes if not 0 <= c < cfg.model.num_classes]
        need(not bad, "memory_bank.tail_classes", bad, f"class ids 0..{cfg.model.num_classes - 1}")
    need(cfg.optimizer.lr > 0, "optimizer.lr", cfg.optimizer.lr, "a number > 0")
    s = cfg.schedule
    need(s.max_iters >= 1, "schedule.max_iters", s.max_iters, "an int >= 1")
    need(s.warmup_iters >= 0, "schedule.warmup_iters", s.warmup_iters, "an int >= 0")
    need(0 < s.warmup_ratio <= 1, "schedule.warmup_ratio", s.warmup_ratio, "a number in (0, 1]")
    need(s.accumulation_steps >= 1, "schedule.accumulation_steps", s.accumulation_steps, ">= 1")
    e = cfg.evaluation
    need(e.interval >= 0, "evaluation.interval", e.interval, "an int >= 0 (0 = never)")
    need(e.best_metric in BEST_METRICS, "evaluation.best_metric", e.best_metric, str(BEST_METRICS))
    if e.best_metric in ("mIoU_head", "mIoU_middle", "mIoU_tail"):
        need(
            d.class_groups is not None,
            "data.class_groups",
            d.class_groups,
            f"a class-groups JSON (from `aucseg stats`) when evaluation.best_metric is "
            f"{e.best_metric!r}",
        )
    need(bool(e.scales) and min(e.scales) > 0, "evaluation.scales", e.scales, "positive floats")
    if e.mode == "slide":
        need(e.crop_size is not None, "evaluation.crop_size", e.crop_size, "(h, w) for slide mode")
        need(e.stride is not None, "evaluation.stride", e.stride, "(h, w) for slide mode")
    r = cfg.runtime
    need(r.log_interval >= 1, "runtime.log_interval", r.log_interval, "an int >= 1")
    need(r.checkpoint_interval >= 1, "runtime.checkpoint_interval", r.checkpoint_interval, ">= 1")
    dev = r.device
    need(
        dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit()),
        "runtime.device",
        dev,
        "'auto', 'cpu', 'cuda' or 'cuda:N'",
    )


# ----------------------------------------------------------------------------- files


SHIPPED_CONFIGS = Path(__file__).resolve().parent / "configs"


def shipped_configs() -> list[str]:
    """Names of the configs installed with the package (``aucseg/configs/*.yaml``)."""
    return sorted(p.name for p in SHIPPED_CONFIGS.glob("*.yaml"))


def resolve_config_path(path: str | Path) -> Path:
    """``path`` if it is a file, else the shipped config of that name (``.yaml`` optional).

    Raises:
        FileNotFoundError: neither exists; the message lists the shipped configs.
    """
    path = Path(path)
    if path.is_file():
        return path
    name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    shipped = SHIPPED_CONFIGS / name
    if shipped.is_file():
        return shipped
    raise FileNotFoundError(
        f"config file not found: {path}; give a YAML path or one of the shipped configs: "
        f"{', '.join(shipped_configs())}"
    )


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config, apply ``key=value`` overrides and validate.

    Args:
        path: YAML file (sections as in :class:`Config`; missing keys take defaults).
        overrides: dotted ``key=value`` strings, applied after the file.

    Returns:
        The validated :class:`Config`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: bad YAML, unknown key or invalid value (the message names the key).
    """
    path = resolve_config_path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of sections, got {data!r}")
    return config_from_dict(apply_overrides(data, list(overrides or [])))


def save_config(cfg: Config, path: str | Path) -> Path:
    """Write the resolved config as YAML (every key, defaults included) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    return path
