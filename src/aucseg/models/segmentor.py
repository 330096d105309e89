"""The encoder-decoder segmentor shared by every model family."""

from __future__ import annotations

import torch
from torch import nn

from aucseg.models.layers import resize_bilinear

__all__ = ["EncoderDecoder"]


class EncoderDecoder(nn.Module):
    """``backbone`` -> multi-scale features -> ``decode_head`` -> logits, resized to the input.

    Args:
        backbone: module mapping images to a list of feature maps; exposes ``out_channels``.
        decode_head: module mapping that list to logits at some stride; exposes ``num_classes``.

    Shape:
        forward: (B, 3, H, W) -> (B, num_classes, H, W), bilinear upsampling with
        ``align_corners=False`` (as MMSegmentation's ``EncoderDecoder``).
    """

    def __init__(self, backbone: nn.Module, decode_head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.decode_head = decode_head
        self.num_classes: int = int(decode_head.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(
                f"expected images of shape (B, C, H, W), got {tuple(images.shape)}; "
                "add a batch dimension with images.unsqueeze(0)"
            )
        logits = self.decode_head(self.backbone(images))
        return resize_bilinear(logits, images.shape[2:])
