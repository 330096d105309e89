"""MSCAN, the multi-scale convolutional attention backbone of SegNeXt.

Module and parameter names follow the official implementation so that its checkpoints (and the
ImageNet ``mscan_{t,s,b,l}.pth`` files) load without renaming: ``patch_embed{k}``,
``block{k}.{j}.{norm1,attn,norm2,mlp,layer_scale_1,layer_scale_2}`` and ``norm{k}``.
Everything stays in (B, C, H, W) layout; the per-stage LayerNorm is applied over channels,
which equals the official token-layout LayerNorm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from aucseg.models.layers import DropPath

__all__ = ["MSCAN", "mscan_b", "mscan_l", "mscan_s", "mscan_t"]


class StemConv(nn.Module):
    """Stage-1 stem: two stride-2 3x3 convs (3 -> C/2 -> C) with BN, GELU between.

    Shape: (B, 3, H, W) -> (B, C, H/4, W/4).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(in_channels, out_channels // 2, 3, stride=2, padding=1),
            nn.BatchNorm2d(out_channels // 2),
            nn.GELU(),
            nn.Conv2d(out_channels // 2, out_channels, 3, stride=2, padding=1),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class OverlapPatchEmbed(nn.Module):
    """Stages 2-4 downsampling: 3x3 stride-2 conv, BN. Shape: (B,Ci,H,W) -> (B,Co,H/2,W/2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))


class AttentionModule(nn.Module):
    """Multi-scale convolutional attention (MSCA): depth-wise strip convs, 1x1 mix, gating.

    ``a = dw5x5(v); a = a + sum_k dw(k x 1)(dw(1 x k)(a)) for k in 7, 11, 21; return conv3(a) * v``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.conv0_1 = nn.Conv2d(dim, dim, (1, 7), padding=(0, 3), groups=dim)
        self.conv0_2 = nn.Conv2d(dim, dim, (7, 1), padding=(3, 0), groups=dim)
        self.conv1_1 = nn.Conv2d(dim, dim, (1, 11), padding=(0, 5), groups=dim)
        self.conv1_2 = nn.Conv2d(dim, dim, (11, 1), padding=(5, 0), groups=dim)
        self.conv2_1 = nn.Conv2d(dim, dim, (1, 21), padding=(0, 10), groups=dim)
        self.conv2_2 = nn.Conv2d(dim, dim, (21, 1), padding=(10, 0), groups=dim)
        self.conv3 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: (B, C, H, W) -> (B, C, H, W)."""
        attn = self.conv0(x)
        attn_0 = self.conv0_2(self.conv0_1(attn))
        attn_1 = self.conv1_2(self.conv1_1(attn))
        attn_2 = self.conv2_2(self.conv2_1(attn))
        attn = attn + attn_0 + attn_1 + attn_2
        return self.conv3(attn) * x


class SpatialAttention(nn.Module):
    """``proj_1 -> GELU -> MSCA -> proj_2`` plus the input (inner residual)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.activation = nn.GELU()
        self.spatial_gating_unit = AttentionModule(dim)
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.proj_2(self.spatial_gating_unit(self.activation(self.proj_1(x))))
        return out + x


class DWConv(nn.Module):
    """Depth-wise 3x3 conv, stored as ``dwconv`` (checkpoint key ``mlp.dwconv.dwconv``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dwconv(x)


class Mlp(nn.Module):
    """Convolutional feed-forward: ``fc1 (1x1) -> dw3x3 -> GELU -> drop -> fc2 (1x1) -> drop``."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dwconv = DWConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.dwconv(self.fc1(x))))
        return self.drop(self.fc2(x))


class Block(nn.Module):
    """MSCAN block: ``x + DropPath(ls1 * Attn(BN1(x)))`` then ``x + DropPath(ls2 * MLP(BN2(x)))``.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(
        self, dim: int, mlp_ratio: float, drop: float = 0.0, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = SpatialAttention(dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), 1e-2))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), 1e-2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * self.attn(self.norm1(x)))
        return x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))


class MSCAN(nn.Module):
    """MSCAN backbone: four stages at strides 4, 8, 16, 32.

    Args:
        embed_dims: channels of the four stages.
        depths: blocks per stage.
        mlp_ratios: MLP expansion per stage.
        drop_rate: dropout inside the MLPs.
        drop_path_rate: stochastic depth, increased linearly from 0 over all blocks.
        in_channels: image channels.

    Shape:
        forward: (B, 3, H, W) -> list of 4 tensors (B, embed_dims[i], ceil(H/2^(i+2)), ...).
    """

    # ImageNet classification checkpoints carry a classifier under these prefixes.
    classifier_prefixes: tuple[str, ...] = ("head.",)

    def __init__(
        self,
        embed_dims: Sequence[int] = (64, 128, 320, 512),
        depths: Sequence[int] = (3, 4, 6, 3),
        mlp_ratios: Sequence[float] = (8, 8, 4, 4),
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if not len(embed_dims) == len(depths) == len(mlp_ratios) == 4:
            raise ValueError(
                f"MSCAN needs 4 stages; got embed_dims={list(embed_dims)}, depths={list(depths)}, "
                f"mlp_ratios={list(mlp_ratios)}"
            )
        self.out_channels = list(embed_dims)
        self.depths = list(depths)
        # On the CPU even under a `with torch.device("meta")` build, so .tolist() works.
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        cur = 0
        for i in range(4):
            if i == 0:
                embed: nn.Module = StemConv(in_channels, embed_dims[0])
            else:
                embed = OverlapPatchEmbed(embed_dims[i - 1], embed_dims[i])
            blocks = nn.ModuleList(
                Block(embed_dims[i], mlp_ratios[i], drop_rate, dpr[cur + j])
                for j in range(depths[i])
            )
            cur += depths[i]
            setattr(self, f"patch_embed{i + 1}", embed)
            setattr(self, f"block{i + 1}", blocks)
            setattr(self, f"norm{i + 1}", nn.LayerNorm(embed_dims[i]))
        self.init_weights()

    def init_weights(self) -> None:
        """Official from-scratch init: conv normal(0, sqrt(2/fan_out)), LayerNorm (1, 0)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i in range(1, 5):
            x = getattr(self, f"patch_embed{i}")(x)
            for blk in getattr(self, f"block{i}"):
                x = blk(x)
            # LayerNorm over channels: (B, C, H, W) -> (B, H, W, C) -> back, keeping the
            # memory format the stage ran in.
            fmt = _memory_format(x)
            x = getattr(self, f"norm{i}")(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            x = x.contiguous(memory_format=fmt)
            outs.append(x)
        return outs


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    """channels_last for tensors stored that way (and not also NCHW-contiguous), else NCHW."""
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def mscan_t(drop_path_rate: float = 0.1, drop_rate: float = 0.0) -> MSCAN:
    """MSCAN-T: dims (32, 64, 160, 256), depths (3, 3, 5, 2); 3,903,584 parameters."""
    return MSCAN((32, 64, 160, 256), (3, 3, 5, 2), (8, 8, 4, 4), drop_rate, drop_path_rate)


def mscan_s(drop_path_rate: float = 0.1, drop_rate: float = 0.0) -> MSCAN:
    """MSCAN-S: dims (64, 128, 320, 512), depths (2, 2, 4, 2); 13,450,176 parameters."""
    return MSCAN((64, 128, 320, 512), (2, 2, 4, 2), (8, 8, 4, 4), drop_rate, drop_path_rate)


def mscan_b(drop_path_rate: float = 0.1, drop_rate: float = 0.0) -> MSCAN:
    """MSCAN-B: dims (64, 128, 320, 512), depths (3, 3, 12, 3); 26,277,824 parameters."""
    return MSCAN((64, 128, 320, 512), (3, 3, 12, 3), (8, 8, 4, 4), drop_rate, drop_path_rate)


def mscan_l(drop_path_rate: float = 0.3, drop_rate: float = 0.0) -> MSCAN:
    """MSCAN-L: dims (64, 128, 320, 512), depths (3, 5, 27, 3); 44,636,864 parameters."""
    return MSCAN((64, 128, 320, 512), (3, 5, 27, 3), (8, 8, 4, 4), drop_rate, drop_path_rate)
