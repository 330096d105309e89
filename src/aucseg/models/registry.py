"""Model registry: one small factory per model name, and the builders that use it.

A factory's signature is its variant: ``segnext_tiny(num_classes, drop_path_rate=0.1, ...)``
states the defaults, and :func:`model_options` exposes them to the config layer. Any importable
callable ``package.module:factory`` can be built too; its network is wrapped in a
:class:`~aucseg.models.adapter.SegmentorAdapter` so every model returns input-size logits.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from aucseg.errors import InputError
from aucseg.models.adapter import SegmentorAdapter
from aucseg.models.checkpoint import load_pretrained
from aucseg.models.deeplab import DeepLabV3PlusHead
from aucseg.models.ham_head import NMF2D, LightHamHead
from aucseg.models.huggingface import huggingface
from aucseg.models.mscan import MSCAN, mscan_b, mscan_l, mscan_s, mscan_t
from aucseg.models.resnet import ResNet, resnet50, resnet101
from aucseg.models.segmentor import EncoderDecoder

__all__ = [
    "MODELS",
    "build_model",
    "build_segnext",
    "count_parameters",
    "deeplabv3plus_r50",
    "deeplabv3plus_r101",
    "list_models",
    "model_options",
    "resolve_model",
    "segnext_base",
    "segnext_large",
    "segnext_small",
    "segnext_tiny",
    "set_nmf_generator",
]

SEGNEXT_VARIANTS = ("tiny", "small", "base", "large")
_NOT_OPTIONS = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _check_rate(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise InputError(f"{name}={value!r} is not allowed; use a number in [0, 1)")
    return float(value)


def _segnext(
    backbone_fn: Callable[[float], MSCAN],
    num_classes: int,
    drop_path_rate: float,
    channels: int,
    rank: int,
    dropout: float,
) -> EncoderDecoder:
    """MSCAN + LightHamHead(channels, NMF rank) as the official SegNeXt configs."""
    backbone = backbone_fn(_check_rate("drop_path_rate", drop_path_rate))
    head = LightHamHead(
        backbone.out_channels,
        num_classes,
        channels,
        channels,
        rank,
        dropout=_check_rate("dropout", dropout),
    )
    return EncoderDecoder(backbone, head)


def segnext_tiny(
    num_classes: int, drop_path_rate: float = 0.1, dropout: float = 0.1
) -> EncoderDecoder:
    """SegNeXt-T (Guo et al., NeurIPS 2022): MSCAN-T + LightHamHead(256, rank 16)."""
    return _segnext(mscan_t, num_classes, drop_path_rate, 256, 16, dropout)


def segnext_small(
    num_classes: int, drop_path_rate: float = 0.1, dropout: float = 0.1
) -> EncoderDecoder:
    """SegNeXt-S: MSCAN-S + LightHamHead(256, rank 16)."""
    return _segnext(mscan_s, num_classes, drop_path_rate, 256, 16, dropout)


def segnext_base(
    num_classes: int, drop_path_rate: float = 0.1, dropout: float = 0.1
) -> EncoderDecoder:
    """SegNeXt-B: MSCAN-B + LightHamHead(512, rank 64)."""
    return _segnext(mscan_b, num_classes, drop_path_rate, 512, 64, dropout)


def segnext_large(
    num_classes: int, drop_path_rate: float = 0.3, dropout: float = 0.1
) -> EncoderDecoder:
    """SegNeXt-L, the AUCSeg model: MSCAN-L + LightHamHead(1024, rank 64)."""
    return _segnext(mscan_l, num_classes, drop_path_rate, 1024, 64, dropout)


def _deeplabv3plus(
    backbone_fn: Callable[..., ResNet], num_classes: int, output_stride: int, dropout: float
) -> EncoderDecoder:
    """DeepLabV3+ (Chen et al., ECCV 2018) on a dilated ResNet."""
    if output_stride not in (8, 16):
        raise InputError(f"output_stride={output_stride!r} is not allowed; use 8 or 16")
    dilate = (False, True, True) if output_stride == 8 else (False, False, True)
    dilations = (12, 24, 36) if output_stride == 8 else (6, 12, 18)
    backbone = backbone_fn(dilate)
    head = DeepLabV3PlusHead(
        backbone.out_channels,
        num_classes,
        dilations=dilations,
        dropout=_check_rate("dropout", dropout),
    )
    return EncoderDecoder(backbone, head)


def deeplabv3plus_r50(
    num_classes: int, output_stride: Literal[8, 16] = 16, dropout: float = 0.1
) -> EncoderDecoder:
    """DeepLabV3+ on ResNet-50; ``output_stride`` 16 (ASPP rates 6/12/18) or 8 (12/24/36)."""
    return _deeplabv3plus(resnet50, num_classes, output_stride, dropout)


def deeplabv3plus_r101(
    num_classes: int, output_stride: Literal[8, 16] = 16, dropout: float = 0.1
) -> EncoderDecoder:
    """DeepLabV3+ on ResNet-101; ``output_stride`` 16 (ASPP rates 6/12/18) or 8 (12/24/36)."""
    return _deeplabv3plus(resnet101, num_classes, output_stride, dropout)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "segnext_tiny": segnext_tiny,
    "segnext_small": segnext_small,
    "segnext_base": segnext_base,
    "segnext_large": segnext_large,
    "deeplabv3plus_r50": deeplabv3plus_r50,
    "deeplabv3plus_r101": deeplabv3plus_r101,
    "huggingface": huggingface,
}


def list_models() -> list[str]:
    """Names of the registered models, in registration order."""
    return list(MODELS)


def _import_factory(name: str) -> Callable[..., nn.Module]:
    module_name, _, attr = name.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as err:
        raise InputError(
            f"model {name!r}: cannot import module {module_name!r} ({err}); install it or add "
            "its folder to PYTHONPATH"
        ) from err
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(
                f"model {name!r}: {module_name!r} has no attribute {attr!r}; write the factory "
                "as 'package.module:function'"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise InputError(f"model {name!r}: {attr!r} is a {type(obj).__name__}, not callable")
    return obj


def resolve_model(name: str) -> Callable[..., nn.Module]:
    """The factory behind a model name.

    Args:
        name: a registered name (:func:`list_models`) or an import path
            ``"package.module:factory"`` of any callable taking ``num_classes``.

    Returns:
        The factory.

    Raises:
        InputError: unknown name, or an import path that cannot be imported.
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a str, got {type(name).__name__}")
    if name in MODELS:
        return MODELS[name]
    if ":" not in name or not all(name.partition(":")[::2]):
        raise InputError(
            f"unknown model {name!r}; registered models: {', '.join(MODELS)}; or give any "
            "factory as 'package.module:function'"
        )
    return _import_factory(name)


def _signature(factory: Callable[..., nn.Module]) -> inspect.Signature:
    try:
        return inspect.signature(factory, eval_str=True)
    except (NameError, TypeError, SyntaxError):  # unresolvable annotations: keep them as text
        return inspect.signature(factory)


def model_options(name: str) -> dict[str, inspect.Parameter]:
    """The options a config may set for a model: its factory's parameters but ``num_classes``.

    Annotations are resolved (``Literal[8, 16]``, not the string); a parameter without a
    default is a required option. ``*args``/``**kwargs`` are not listed.

    Raises:
        InputError: unknown name (see :func:`resolve_model`).
    """
    params = _signature(resolve_model(name)).parameters
    return {
        key: p
        for key, p in params.items()
        if key != "num_classes" and p.kind not in _NOT_OPTIONS and p.kind != p.POSITIONAL_ONLY
    }


def _format_options(options: Mapping[str, inspect.Parameter]) -> str:
    shown = [k if p.default is p.empty else f"{k}={p.default!r}" for k, p in options.items()]
    return ", ".join(shown) or "none"


def _check_call(name: str, factory: Callable[..., nn.Module], kwargs: Mapping[str, object]) -> None:
    params = _signature(factory).parameters
    open_kwargs = any(p.kind == p.VAR_KEYWORD for p in params.values())
    if "num_classes" not in params and not open_kwargs:
        raise InputError(
            f"model {name!r}: the factory takes no num_classes argument (it takes "
            f"{', '.join(params) or 'nothing'}); wrap it in a function f(num_classes, ...)"
        )
    options = model_options(name)
    unknown = sorted(set(kwargs) - set(options))
    if unknown and not open_kwargs:
        raise InputError(
            f"model {name!r} does not take option {unknown[0]!r}; its options are: "
            f"{_format_options(options)}"
        )
    required = [k for k, p in options.items() if p.default is p.empty and k not in kwargs]
    if required:
        raise InputError(
            f"model {name!r} needs option {required[0]!r}; its options are: "
            f"{_format_options(options)}"
        )


def build_model(
    name: str, num_classes: int, pretrained: str | Path | None = None, **kwargs: object
) -> nn.Module:
    """Build a segmentor by name, timm style: ``kwargs`` go to the factory.

    Args:
        name: a registered name or ``"package.module:factory"`` (see :func:`resolve_model`).
        num_classes: number of output classes (> 0), passed as ``num_classes=``.
        pretrained: optional checkpoint loaded non-strictly after building (an ImageNet backbone
            file such as ``mscan_l.pth`` or a torchvision ResNet file, or a full model); missing
            parameters keep their initialisation, as MMSegmentation's ``Pretrained`` init.
        **kwargs: the model's options (:func:`model_options`), e.g. SegNeXt
            ``drop_path_rate``/``dropout``, DeepLabV3+ ``output_stride``/``dropout``,
            ``huggingface`` ``source``.

    Returns:
        An :class:`EncoderDecoder`, or any other network wrapped in a
        :class:`SegmentorAdapter`: either returns ``(B, num_classes, H, W)`` at the input size.

    Raises:
        InputError: unknown name or option, missing required option, bad num_classes, or a
            factory that does not return an ``nn.Module``.
    """
    factory = resolve_model(name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise InputError(f"num_classes={num_classes!r} is not allowed; use a positive int")
    _check_call(name, factory, kwargs)
    model = factory(num_classes=num_classes, **kwargs)
    if not isinstance(model, nn.Module):
        raise InputError(
            f"model {name!r}: the factory returned a {type(model).__name__}, not an nn.Module"
        )
    if not isinstance(model, EncoderDecoder | SegmentorAdapter):
        model = SegmentorAdapter(model, num_classes)
    if pretrained is not None:
        load_pretrained(model, pretrained)
    return model


def build_segnext(variant: str, num_classes: int, **kwargs: object) -> nn.Module:
    """Build SegNeXt ``"tiny" | "small" | "base" | "large"``; see :func:`build_model`."""
    if variant not in SEGNEXT_VARIANTS:
        raise InputError(f"unknown SegNeXt variant {variant!r}; use one of {SEGNEXT_VARIANTS}")
    return build_model(f"segnext_{variant}", num_classes, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of parameter elements of ``model`` (shared parameters counted once; works on the
    meta device)."""
    return sum(p.numel() for p in model.parameters())


def set_nmf_generator(model: nn.Module, generator: torch.Generator | None) -> None:
    """Use ``generator`` to draw the random NMF bases in every NMF module of ``model``.

    The generator must live on the device the model runs on. ``None`` restores the global RNG
    (official behaviour). A no-op for models without NMF.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> set_nmf_generator(model, g)  # repeatable eval logits once g is re-seeded per call
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator)}")
    for module in model.modules():
        if isinstance(module, NMF2D):
            module.generator = generator
