"""Model registry: one small factory per model name, and the builders that use it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from aucseg.models.deeplab import DeepLabV3PlusHead
from aucseg.models.ham_head import NMF2D, LightHamHead
from aucseg.models.mscan import MSCAN, mscan_b, mscan_l, mscan_s, mscan_t
from aucseg.models.resnet import resnet50, resnet101
from aucseg.models.segmentor import EncoderDecoder

__all__ = ["MODELS", "build_model", "build_segnext", "set_nmf_generator"]

SEGNEXT_VARIANTS = ("tiny", "small", "base", "large")


def _segnext(
    backbone_fn: Callable[..., MSCAN], channels: int, rank: int
) -> Callable[..., EncoderDecoder]:
    def factory(
        num_classes: int, drop_path_rate: float | None = None, dropout: float = 0.1
    ) -> EncoderDecoder:
        """SegNeXt: MSCAN + LightHamHead. ``drop_path_rate=None`` keeps the official default."""
        kwargs = {} if drop_path_rate is None else {"drop_path_rate": drop_path_rate}
        backbone = backbone_fn(**kwargs)
        head = LightHamHead(
            backbone.out_channels, num_classes, channels, channels, rank, dropout=dropout
        )
        return EncoderDecoder(backbone, head)

    return factory


def _deeplabv3plus(backbone_fn: Callable[..., nn.Module]) -> Callable[..., EncoderDecoder]:
    def factory(
        num_classes: int,
        output_stride: int = 16,
        dropout: float = 0.1,
        drop_path_rate: float | None = None,
    ) -> EncoderDecoder:
        """DeepLabV3+ on a dilated ResNet; ``output_stride`` 16 (rates 6/12/18) or 8 (12/24/36).

        ``drop_path_rate`` is accepted for a uniform builder call but must stay None.
        """
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
        if drop_path_rate is not None:
            raise ValueError(
                f"drop_path_rate={drop_path_rate} given, but ResNet backbones have no stochastic "
                "depth; leave it None for deeplabv3plus models"
            )
        dilate = (False, True, True) if output_stride == 8 else (False, False, True)
        dilations = (12, 24, 36) if output_stride == 8 else (6, 12, 18)
        backbone = backbone_fn(dilate)
        head = DeepLabV3PlusHead(
            backbone.out_channels, num_classes, dilations=dilations, dropout=dropout
        )
        return EncoderDecoder(backbone, head)

    return factory


MODELS: dict[str, Callable[..., nn.Module]] = {
    "segnext_tiny": _segnext(mscan_t, 256, 16),
    "segnext_small": _segnext(mscan_s, 256, 16),
    "segnext_base": _segnext(mscan_b, 512, 64),
    "segnext_large": _segnext(mscan_l, 1024, 64),
    "deeplabv3plus_r50": _deeplabv3plus(resnet50),
    "deeplabv3plus_r101": _deeplabv3plus(resnet101),
}


def build_model(
    name: str, num_classes: int, pretrained: str | Path | None = None, **kwargs: object
) -> nn.Module:
    """Build a registered segmentor.

    Args:
        name: a key of :data:`MODELS`.
        num_classes: number of output classes (> 0).
        pretrained: optional checkpoint loaded non-strictly after building (an ImageNet backbone
            file such as ``mscan_l.pth`` or a torchvision ResNet file, or a full model); missing
            parameters keep their initialisation, as MMSegmentation's ``Pretrained`` init.
        **kwargs: family options: SegNeXt ``drop_path_rate`` (None = official default),
            ``dropout``; DeepLabV3+ ``output_stride``, ``dropout``.

    Returns:
        An :class:`EncoderDecoder` with BatchNorm in the backbone.

    Raises:
        ValueError: unknown name or bad num_classes.
        TypeError: an option the family does not take.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(MODELS)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    accepted = list(inspect.signature(MODELS[name]).parameters)[1:]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"model {name!r} does not accept {unknown}; its options are {accepted}")
    model = MODELS[name](num_classes, **kwargs)
    if pretrained is not None:
        from aucseg.models.checkpoint import load_checkpoint

        load_checkpoint(model, pretrained, strict=False)
    return model


def build_segnext(variant: str, num_classes: int, **kwargs: object) -> nn.Module:
    """Build SegNeXt ``"tiny" | "small" | "base" | "large"``; see :func:`build_model`."""
    if variant not in SEGNEXT_VARIANTS:
        raise ValueError(f"unknown SegNeXt variant {variant!r}; use one of {SEGNEXT_VARIANTS}")
    return build_model(f"segnext_{variant}", num_classes, **kwargs)


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
