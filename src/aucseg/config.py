"""Typed run configuration: YAML files validated by pydantic, dotted overrides, registries.

A config is one :class:`Config` made of sections (model, loss, data, memory_bank, optimizer,
schedule, evaluation, runtime). The fixed keys of each section are pydantic fields with their
constraints. Three kinds of entries are *a registered name plus that name's own options*: the
model (``model.name``), each loss term (``loss.terms.N.name``) and the dataset
(``data.dataset``, with ``data.sampler`` as a nested one). Their options are not restated here:
they are validated against the signature of the registered factory or class, whose defaults
are the only defaults, and are written back into the resolved config so that
``config.yaml`` shows every option in effect. Registering a new model or loss needs no edit
to this module.

Why pydantic: it coerces YAML scalars (``6e-5`` read as a string by YAML 1.1), checks ranges
and literals, and validates keyword arguments against an annotated signature; what remains
here is turning its errors into one line that names the key and the accepted values.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from aucseg.data import DATASETS, SAMPLERS
from aucseg.errors import InputError
from aucseg.fileio import write_text_atomic
from aucseg.losses import LOSSES
from aucseg.models import resolve_model

BEST_METRICS = ("mIoU", "mIoU_tail", "mIoU_middle", "mIoU_head", "mAcc", "aAcc")

# Constructor parameters that the engine supplies; a config cannot set them.
ENGINE_MODEL_PARAMS = frozenset({"num_classes"})
ENGINE_LOSS_PARAMS = frozenset(
    {"num_classes", "ignore_index", "sync", "loss_weight", "class_counts"}
)
ENGINE_DATASET_PARAMS = frozenset({"root", "split", "transforms"})
ENGINE_SAMPLER_PARAMS = frozenset(
    {"size", "seed", "rank", "world_size", "start", "image_class_pixels"}
)


class Section(BaseModel):
    """A config section: unknown keys are refused, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class Registered(BaseModel):
    """A registered name whose own options sit next to it (validated against its signature)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    def options(self) -> dict[str, Any]:
        """The name's own options (everything but the section's fixed keys)."""
        return dict(self.model_extra or {})


class ModelConfig(Registered):
    """Segmentor: a registered name or ``package.module:factory``, its options, the classes."""

    name: str = "segnext_large"
    num_classes: int = Field(150, ge=2)
    pretrained: str | None = None  # ImageNet backbone file, e.g. pretrained/mscan_l.pth
    sync_bn: bool = True  # convert BatchNorm to SyncBatchNorm under DDP (CUDA)


class LossTermConfig(Registered):
    """One term of the summed loss: a registered loss name, its weight and its options."""

    name: str = "cross_entropy"
    weight: float = Field(1.0, ge=0)


class LossConfig(Section):
    """The loss terms added together, and the ignored label value."""

    terms: list[LossTermConfig] = Field(default_factory=lambda: [LossTermConfig()], min_length=1)
    ignore_index: int = 255


class SamplerConfig(Registered):
    """Training data order: ``uniform``, ``rare_class`` or ``repeat_factor`` and options."""

    name: str = "uniform"


class DataConfig(Registered):
    """Dataset (a registered name plus its options), pipeline and loader settings."""

    dataset: str = "ade20k"
    root: str = "data/ade/ADEChallengeData2016"
    train_split: str = "training"
    val_split: str = "validation"
    img_scale: tuple[int, int] = (2048, 512)  # (long, short) side as in mmseg
    crop_size: tuple[int, int] = (512, 512)  # (h, w)
    ratio_range: tuple[float, float] = (0.5, 2.0)
    cat_max_ratio: float = Field(0.75, gt=0, le=1)
    flip_prob: float = Field(0.5, ge=0, le=1)
    photometric: bool = True
    test_size_divisor: int | None = 32
    batch_size: int = Field(4, ge=1)  # per process
    num_workers: int = Field(4, ge=0)
    class_groups: str | None = None  # JSON of `aucseg stats`: groups, counts, per-image classes
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)

    def options(self) -> dict[str, Any]:
        """The dataset's own options (e.g. ``classes``, ``img_dir`` of ``folder``)."""
        return dict(self.model_extra or {})


class MemoryBankConfig(Section):
    """T-Memory Bank: off, per mini-batch on the device, or per sample in the workers."""

    enabled: bool = False
    placement: Literal["batch", "sample"] = "batch"
    classes: Literal["tail", "all"] = "tail"  # all = the paper's pixel-level bank ablation
    update: Literal["random", "fifo", "lifo"] = "random"  # random = official replacement
    storage: Literal["float16", "uint8", "float32"] = "float16"  # float32 = official (exact)
    tail_classes: list[int] | None = None  # None = data.class_groups tail, else official list
    memory_size: int = Field(5, ge=1)
    p_sample: float = Field(1.0, ge=0, le=1)
    p_resize: float = Field(1.0, gt=0, le=1)


class OptimizerConfig(Section):
    """AdamW with the official parameter groups (head lr x10, no decay on norm parameters)."""

    name: Literal["adamw"] = "adamw"
    lr: float = Field(6e-5, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    head_lr_mult: float = Field(10.0, gt=0)
    norm_decay_mult: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(None, gt=0)  # max gradient L2 norm; null = off (official)


class ScheduleConfig(Section):
    """Iteration budget and the poly learning-rate schedule with linear warm-up."""

    max_iters: int = Field(160000, ge=1)
    warmup_iters: int = Field(1500, ge=0)
    warmup_ratio: float = Field(1e-6, gt=0, le=1)
    power: float = Field(1.0, ge=0)
    min_lr: float = Field(0.0, ge=0)
    accumulation_steps: int = Field(1, ge=1)


class EvaluationConfig(Section):
    """Periodic validation and the test-time inference mode."""

    interval: int = Field(8000, ge=0)  # iterations; 0 = never during training
    mode: Literal["whole", "slide"] = "whole"
    crop_size: tuple[int, int] | None = None  # slide window (h, w)
    stride: tuple[int, int] | None = None  # slide stride (h, w)
    scales: list[float] = Field(default_factory=lambda: [1.0], min_length=1)
    flip: bool = False
    best_metric: Literal[BEST_METRICS] = "mIoU"  # type: ignore[valid-type]
    nmf_seed: int | None = 0


class RuntimeConfig(Section):
    """Seed, precision, device, guards, logging and checkpointing."""

    seed: int = 0
    amp: Literal["none", "bf16", "fp16"] = "none"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    nonfinite: Literal["stop", "skip"] = "stop"  # a NaN/Inf loss or gradient: stop or skip
    debug: bool = False  # check inputs (label range, NaN logits) at every step
    compile: bool = False  # torch.compile the model for training
    channels_last: bool = False  # channels-last memory format for model and images
    log_interval: int = Field(50, ge=1)
    checkpoint_interval: int = Field(8000, ge=1)
    keep_iter_checkpoints: bool = False  # also write iter_XXXXXXX.pth at every interval
    tensorboard: bool = True
    progress: bool = True
    find_unused_parameters: bool = False


class Config(Section):
    """A complete run configuration."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    memory_bank: MemoryBankConfig = Field(default_factory=MemoryBankConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)


FIXED_KEYS: dict[type[BaseModel], list[str]] = {
    cls: list(cls.model_fields) for cls in (ModelConfig, LossTermConfig, DataConfig, SamplerConfig)
}


# ----------------------------------------------------------------------------- errors


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The field names of the config section that the pydantic error location points into."""
    cls: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = cls.model_fields.get(part) if hasattr(cls, "model_fields") else None
        if field is None:
            return []
        ann = field.annotation
        cls = typing.get_args(ann)[0] if typing.get_origin(ann) is list else ann
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            return []
    return list(cls.model_fields)


def _unknown_key(key: str, allowed: list[str], note: str = "") -> InputError:
    name = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return InputError(
        f"unknown config key '{key}'{hint}{note}; allowed keys: {', '.join(allowed) or 'none'}"
    )


def _input_error(exc: ValidationError, prefix: str = "", allowed: list[str] | None = None):
    """One line for the first problem of a pydantic ValidationError, naming the dotted key."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    key = ".".join(str(p) for p in (prefix, *loc) if p != "")
    if err["type"] == "extra_forbidden":
        return _unknown_key(key, allowed if allowed is not None else _fields_at(loc))
    if err["type"] == "missing":
        return InputError(f"config key '{key}' is required (no default); set it in the config")
    return InputError(f"config key '{key}': got {err.get('input')!r}; {err['msg']}")


# ----------------------------------------------------------------------------- options


def _hints(target: Callable[..., Any]) -> dict[str, Any]:
    fn = target.__init__ if inspect.isclass(target) else target
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations of a user's factory: validate nothing
        return {}


@functools.cache
def _options_model(target: Callable[..., Any], exclude: frozenset[str]) -> type[BaseModel]:
    """A pydantic model of ``target``'s keyword parameters (minus ``exclude``), defaults kept."""
    hints = _hints(target)
    fields: dict[str, Any] = {}
    for p in inspect.signature(target).parameters.values():
        if p.name in exclude or p.name == "self":
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (hints.get(p.name, Any), default)
    cfg = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False)
    name = getattr(target, "__name__", "target")
    return create_model(f"{name}_options", __config__=cfg, **fields)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def validate_options(
    target: Callable[..., Any],
    options: Mapping[str, Any],
    prefix: str,
    what: str,
    fixed: list[str],
    exclude: frozenset[str],
) -> dict[str, Any]:
    """``options`` checked against ``target``'s signature, with every default filled in.

    Args:
        target: registered factory or class.
        options: the keys written next to the registered name.
        prefix: dotted config path of the section (for messages).
        what: e.g. ``"loss 'cross_entropy'"``.
        fixed: the section's own keys (listed as accepted too).
        exclude: parameters the engine supplies.

    Raises:
        InputError: an unknown or inapplicable key, or a value of the wrong type.
    """
    model = _options_model(target, exclude)
    accepted = fixed + list(model.model_fields)
    for key in options:
        if key in exclude:
            raise InputError(
                f"config key '{prefix}.{key}': {what} gets '{key}' from aucseg, not from the "
                f"config; accepted keys: {', '.join(accepted)}"
            )
        if key not in model.model_fields:
            raise _unknown_key(f"{prefix}.{key}", accepted, f" for {what}")
    try:
        validated = model(**options)
    except ValidationError as exc:
        raise _input_error(exc, prefix, accepted) from None
    return {k: getattr(validated, k) for k in model.model_fields}


# ----------------------------------------------------------------------------- registries


def _registry_entry(registry: Mapping[str, Any], name: str, key: str, kind: str) -> Any:
    if name not in registry:
        close = difflib.get_close_matches(name, list(registry), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise InputError(
            f"config key '{key}': unknown {kind} {name!r}{hint}; registered: "
            f"{', '.join(sorted(registry))}"
        )
    return registry[name]


def _resolve_model(m: ModelConfig) -> ModelConfig:
    try:
        factory = resolve_model(m.name)
    except InputError as exc:
        raise InputError(f"config key 'model.name': {exc}") from None
    fixed = FIXED_KEYS[ModelConfig]
    opts = validate_options(
        factory, m.options(), "model", f"model {m.name!r}", fixed, ENGINE_MODEL_PARAMS
    )
    return ModelConfig(**{k: getattr(m, k) for k in fixed}, **opts)


def _resolve_loss_term(term: LossTermConfig, index: int) -> LossTermConfig:
    prefix = f"loss.terms.{index}"
    cls = _registry_entry(LOSSES, term.name, f"{prefix}.name", "loss")
    fixed = FIXED_KEYS[LossTermConfig]
    what = f"loss {term.name!r}"
    opts = validate_options(cls, term.options(), prefix, what, fixed, ENGINE_LOSS_PARAMS)
    return LossTermConfig(name=term.name, weight=term.weight, **opts)


def _resolve_data(d: DataConfig) -> DataConfig:
    cls = _registry_entry(DATASETS, d.dataset, "data.dataset", "dataset")
    fixed = FIXED_KEYS[DataConfig]
    what = f"dataset {d.dataset!r}"
    opts = validate_options(cls, d.options(), "data", what, fixed, ENGINE_DATASET_PARAMS)
    s = d.sampler
    sampler_cls = _registry_entry(SAMPLERS, s.name, "data.sampler.name", "sampler")
    s_opts = validate_options(
        sampler_cls, s.options(), "data.sampler", f"sampler {s.name!r}", ["name"],
        ENGINE_SAMPLER_PARAMS,
    )  # fmt: skip
    values = {k: getattr(d, k) for k in fixed if k != "sampler"}
    return DataConfig(**values, sampler=SamplerConfig(name=s.name, **s_opts), **opts)


def dataset_num_classes(d: DataConfig) -> int | None:
    """The class count the data section defines (``classes`` of ``folder``, or the built-in
    dataset's), or None when the dataset class does not state one."""
    classes = d.options().get("classes")
    if classes is not None:
        return classes if isinstance(classes, int) else len(classes)
    fixed = getattr(DATASETS.get(d.dataset), "CLASSES", ())
    return len(fixed) or None


# ----------------------------------------------------------------------------- checks


def _need(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise InputError(f"config key '{key}': got {value!r}, allowed: {allowed}")


def _check_classes(cfg: Config) -> None:
    n, want = cfg.model.num_classes, dataset_num_classes(cfg.data)
    if want is None or want == n:
        return
    if "classes" in cfg.data.options():
        raise InputError(
            f"model.num_classes={n} but data.classes defines {want} classes; "
            f"set --set model.num_classes={want} or fix data.classes"
        )
    raise InputError(
        f"model.num_classes={n} but dataset {cfg.data.dataset!r} has {want} classes; set "
        f"model.num_classes={want}, or for your own label set use data.dataset: folder with "
        f"data.classes (names or a count)"
    )


def validate_config(cfg: Config) -> None:
    """Cross-field checks that single fields cannot express.

    Raises:
        InputError: naming the key, the received value and what is allowed.
    """
    _check_classes(cfg)
    n = cfg.model.num_classes
    tail = cfg.memory_bank.tail_classes
    if tail is not None:
        bad = [c for c in tail if not 0 <= c < n]
        _need(not bad, "memory_bank.tail_classes", bad, f"class ids 0..{n - 1}")
    b1, b2 = cfg.optimizer.betas
    _need(0 <= b1 < 1 and 0 <= b2 < 1, "optimizer.betas", [b1, b2], "two numbers in [0, 1)")
    _need(min(cfg.data.crop_size) >= 1, "data.crop_size", cfg.data.crop_size, "two ints >= 1")
    e = cfg.evaluation
    _need(min(e.scales) > 0, "evaluation.scales", e.scales, "positive floats")
    if e.best_metric in ("mIoU_head", "mIoU_middle", "mIoU_tail"):
        _need(
            cfg.data.class_groups is not None, "data.class_groups", None,
            f"a class-groups JSON (from `aucseg stats`) when evaluation.best_metric is "
            f"{e.best_metric!r}",
        )  # fmt: skip
    if cfg.data.sampler.name != "uniform":
        _need(
            cfg.data.class_groups is not None, "data.class_groups", None,
            f"an `aucseg stats` JSON for data.sampler.name={cfg.data.sampler.name!r}",
        )  # fmt: skip
    if e.mode == "slide":
        _need(e.crop_size is not None, "evaluation.crop_size", e.crop_size, "(h, w) for slide")
        _need(e.stride is not None, "evaluation.stride", e.stride, "(h, w) for slide mode")
    dev = cfg.runtime.device
    _need(
        dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit()),
        "runtime.device", dev, "'auto', 'cpu', 'cuda' or 'cuda:N'",
    )  # fmt: skip


def resolve(cfg: Config) -> Config:
    """Check the registered names and their options, fill in every default, cross-check.

    Returns:
        A new :class:`Config` whose model, loss terms, dataset and sampler carry every option
        of their factory/class (the resolved config).
    """
    resolved = cfg.model_copy(
        update={
            "model": _resolve_model(cfg.model),
            "loss": LossConfig(
                terms=[_resolve_loss_term(t, i) for i, t in enumerate(cfg.loss.terms)],
                ignore_index=cfg.loss.ignore_index,
            ),
            "data": _resolve_data(cfg.data),
        }
    )
    validate_config(resolved)
    return resolved


# ----------------------------------------------------------------------------- dicts


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """Build, validate and resolve a :class:`Config` from nested dicts (missing keys default).

    Raises:
        InputError: unknown key, wrong type, a value outside the allowed set, an unknown
            registered name or an option its factory does not take.
    """
    if not isinstance(data, Mapping):
        raise InputError(f"a config must be a mapping of sections, got {type(data).__name__}")
    try:
        cfg = Config.model_validate(dict(data))
    except ValidationError as exc:
        raise _input_error(exc) from None
    return resolve(cfg)


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The config as plain nested dicts/lists (tuples become lists), ready for YAML or torch."""
    return _plain(cfg.model_dump(mode="python"))


# ----------------------------------------------------------------------------- overrides


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def _set_path(data: dict[str, Any], parts: list[str], value: Any) -> None:
    node: Any = data
    for depth, part in enumerate(parts):
        path = ".".join(parts[: depth + 1])
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise InputError(
                    f"config key '{path}': list index must be 0..{len(node) - 1}, got {part!r}"
                )
            part = int(part)  # type: ignore[assignment]
        elif not isinstance(node, dict):
            raise InputError(f"config key '{path}': '{parts[depth - 1]}' holds a value, not keys")
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and node.get(part) is None:
                if parts[depth + 1].isdigit():  # an item of a list the file leaves default
                    example = "[{name: cross_entropy}]" if path == "loss.terms" else "[...]"
                    raise InputError(
                        f"config key '{path}.{parts[depth + 1]}': the config has no '{path}' "
                        f"list to index; set the whole list instead, e.g. {path}={example}"
                    )
                node[part] = {}
            node = node[part]


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` strings to a nested config dict (in place) and return it.

    Values are parsed as YAML (``[512,512]``, ``null``, ``true``, ``1e-4``). List items are
    addressed by index: ``loss.terms.1.weight=4``. Unknown keys are reported when the result
    is validated.

    Raises:
        InputError: an item without ``=``, or a path through a value or past a list's end.
    """
    for item in overrides:
        if "=" not in item:
            raise InputError(f"override {item!r} must look like key=value, e.g. data.root=/data")
        key, text = item.split("=", 1)
        _set_path(data, key.strip().split("."), _parse_scalar(text))
    return data


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


def read_config_dict(path: str | Path) -> dict[str, Any]:
    """The raw mapping of a YAML config file (a shipped name works too)."""
    path = resolve_config_path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"config file {path} is not valid YAML: {first}") from None
    if not isinstance(data, dict):
        raise InputError(f"config file {path} must hold a mapping of sections, got {data!r}")
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config, apply ``key=value`` overrides, validate and resolve.

    Args:
        path: YAML file (sections as in :class:`Config`; missing keys take defaults), or the
            name of a shipped config.
        overrides: dotted ``key=value`` strings, applied after the file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        InputError: bad YAML, unknown key or invalid value (the message names the key).
    """
    return config_from_dict(apply_overrides(read_config_dict(path), list(overrides or [])))


def save_config(cfg: Config, path: str | Path) -> Path:
    """Write the resolved config as YAML (every key, defaults included), atomically."""
    return write_text_atomic(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
