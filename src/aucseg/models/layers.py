"""Small building blocks shared by the model families: conv+norm+act, stochastic depth,
bilinear resizing."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("bn", "gn", None)


def resize_bilinear(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of ``(B, C, h, w)`` to ``size`` (align_corners False, as mmseg);
    returns ``x`` itself when the size already matches (no copy)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class ConvModule(nn.Module):
    """Conv2d followed by an optional norm and ReLU, with MMSegmentation's key names.

    The convolution is stored as ``conv``; the norm as ``gn`` (GroupNorm, 32 groups) or ``bn``
    (BatchNorm2d), so checkpoints saved by MMSegmentation load without renaming. The conv has a
    bias only when there is no norm, as in mmcv.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        padding: zero padding.
        dilation: dilation of the kernel.
        norm: "bn", "gn" or None.
        act: apply ReLU after the norm.
        num_groups: groups of the GroupNorm.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        padding: int = 0,
        dilation: int = 1,
        norm: str | None = "bn",
        act: bool = True,
        num_groups: int = 32,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm={norm!r} is not supported; use one of {NORMS}")
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=padding,
            dilation=dilation,
            bias=norm is None,
        )
        if norm == "gn":
            self.gn = nn.GroupNorm(num_groups, out_channels)
        elif norm == "bn":
            self.bn = nn.BatchNorm2d(out_channels)
        self.norm_name = norm
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: (B, in, H, W) -> (B, out, H', W')."""
        x = self.conv(x)
        if self.norm_name is not None:
            x = getattr(self, self.norm_name)(x)
        return self.act(x)

    def init_weights(self) -> None:
        """mmcv's ConvModule default: Kaiming-normal (fan_out, ReLU), zero bias, norm (1, 0)."""
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        if self.conv.bias is not None:
            nn.init.zeros_(self.conv.bias)
        if self.norm_name is not None:
            norm = getattr(self, self.norm_name)
            nn.init.ones_(norm.weight)
            nn.init.zeros_(norm.bias)


class DropPath(nn.Module):
    """Stochastic depth per sample: zero a residual branch with probability ``p`` in training.

    Kept samples are scaled by ``1 / (1 - p)`` so the expectation is unchanged.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop path probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: (B, ...) -> (B, ...)."""
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
