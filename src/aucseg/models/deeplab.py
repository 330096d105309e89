"""DeepLabV3+ decode head: ASPP on the deepest feature plus a low-level decoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from aucseg.models.layers import ConvModule, resize_bilinear

__all__ = ["ASPP", "DeepLabV3PlusHead"]


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: image pooling, 1x1 and dilated 3x3 branches, projection.

    Args:
        in_channels: input channels.
        channels: channels of every branch and of the output.
        dilations: dilation rates of the 3x3 branches.
        dropout: dropout after the projection.

    Shape: (B, in, H, W) -> (B, channels, H, W).
    """

    def __init__(
        self,
        in_channels: int,
        channels: int = 256,
        dilations: Sequence[int] = (6, 12, 18),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        # BatchNorm on the pooled 1x1 map would need batch > 1 in training, so the pooled
        # branch has no norm (conv with bias + ReLU) and batch 1 still trains.
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), ConvModule(in_channels, channels, 1, norm=None)
        )
        self.branches = nn.ModuleList(
            [ConvModule(in_channels, channels, 1)]
            + [ConvModule(in_channels, channels, 3, padding=d, dilation=d) for d in dilations]
        )
        self.project = ConvModule(channels * (len(dilations) + 2), channels, 1)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.image_pool(x).expand(-1, -1, x.shape[2], x.shape[3])
        outs = [pooled] + [branch(x) for branch in self.branches]
        return self.dropout(self.project(torch.cat(outs, dim=1)))


class DeepLabV3PlusHead(nn.Module):
    """DeepLabV3+ head: ASPP on ``features[-1]``, fused with ``features[low_index]``.

    Args:
        in_channels: channels of all backbone outputs (``backbone.out_channels``).
        num_classes: output classes.
        channels: ASPP and decoder channels.
        low_channels: channels the low-level feature is reduced to.
        low_index: backbone output used as low-level feature (stride 4 by default).
        dilations: ASPP dilation rates (for output stride 16).
        dropout: Dropout2d probability after the ASPP projection and before ``conv_seg``.

    Shape:
        forward: list of backbone features -> (B, num_classes, h, w) at the low-level size.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        channels: int = 256,
        low_channels: int = 48,
        low_index: int = 0,
        dilations: Sequence[int] = (6, 12, 18),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.low_index = low_index
        self.aspp = ASPP(in_channels[-1], channels, dilations, dropout)
        self.low_proj = ConvModule(in_channels[low_index], low_channels, 1)
        self.fuse = nn.Sequential(
            ConvModule(channels + low_channels, channels, 3, padding=1),
            ConvModule(channels, channels, 3, padding=1),
        )
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)
        self.init_weights()

    def init_weights(self) -> None:
        """Kaiming ConvModules with norm (1, 0); ``conv_seg`` Normal(0, 0.01), bias 0."""
        for m in self.modules():
            if isinstance(m, ConvModule):
                m.init_weights()
        nn.init.normal_(self.conv_seg.weight, 0.0, 0.01)
        nn.init.zeros_(self.conv_seg.bias)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        low = self.low_proj(features[self.low_index])
        x = self.aspp(features[-1])
        x = resize_bilinear(x, low.shape[2:])
        x = self.fuse(torch.cat([x, low], dim=1))
        return self.conv_seg(self.dropout(x))
