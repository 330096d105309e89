"""Wrap any segmentation network so that it honours the aucseg model contract.

The engine expects ``model(images)`` to return logits ``(B, C, H, W)`` at the input size, as
:class:`~aucseg.models.segmentor.EncoderDecoder` does. Networks from elsewhere return logits at
their own stride (SegFormer: 1/4), inside a dict (torchvision: ``{"out": ...}``), or inside an
output object (Hugging Face: ``.logits``); :class:`SegmentorAdapter` unifies them.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from aucseg.errors import InputError
from aucseg.models.layers import resize_bilinear

__all__ = ["SegmentorAdapter", "extract_logits"]

LOGIT_KEYS = ("out", "logits")


def extract_logits(output: object) -> torch.Tensor:
    """The logits tensor inside a network's output.

    Args:
        output: a tensor, a mapping holding the logits under ``"out"`` or ``"logits"`` (first
            found), or an object with a ``logits`` attribute (Hugging Face model outputs).

    Returns:
        The logits tensor, unchanged.

    Raises:
        InputError: no logits tensor in ``output``.
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        for key in LOGIT_KEYS:
            if isinstance(output.get(key), torch.Tensor):
                return output[key]
        raise InputError(
            f"the model returned a mapping with keys {sorted(map(str, output))}, none of "
            f"{LOGIT_KEYS} holding a tensor; return the logits or put them under 'out'/'logits'"
        )
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    raise InputError(
        f"the model returned a {type(output).__name__}; expected logits (B, C, h, w), a dict "
        "with 'out' or 'logits', or an object with a .logits tensor"
    )


class SegmentorAdapter(nn.Module):
    """A segmentation network whose logits are returned at the input size.

    Args:
        model: the network; ``model(images)`` returns logits ``(B, num_classes, h, w)`` at any
            stride, or a dict/object holding them (see :func:`extract_logits`). It is stored as
            ``self.model``, so its state_dict entries read ``model.<key>``.
        num_classes: classes the network predicts; checked on every forward.

    Shape:
        forward: (B, 3, H, W) -> (B, num_classes, H, W), floating point, bilinear upsampling
        with ``align_corners=False`` (as :class:`~aucseg.models.segmentor.EncoderDecoder`).
    """

    def __init__(self, model: nn.Module, num_classes: int) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.model = model
        self.num_classes: int = int(num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(
                f"expected images of shape (B, C, H, W), got {tuple(images.shape)}; "
                "add a batch dimension with images.unsqueeze(0)"
            )
        logits = extract_logits(self.model(images))
        expected = (images.shape[0], self.num_classes)
        if logits.ndim != 4 or tuple(logits.shape[:2]) != expected:
            raise InputError(
                f"{type(self.model).__name__} returned logits of shape {tuple(logits.shape)}; "
                f"expected (B, num_classes, h, w) with B, num_classes = {expected}: build it "
                "with the num_classes it is given"
            )
        if not logits.is_floating_point():
            raise InputError(
                f"{type(self.model).__name__} returned {logits.dtype} logits; return floating "
                "point scores, not labels"
            )
        return resize_bilinear(logits, images.shape[2:])

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}"
