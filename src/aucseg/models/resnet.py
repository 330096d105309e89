"""ResNet-50/101 backbone with torchvision's state_dict layout.

Keys (``conv1``, ``bn1``, ``layer1.0.conv1``, ..., ``layer4.2.downsample.1``) equal those of
torchvision's ImageNet ResNet checkpoints, so such a file loads into the backbone directly; its
``fc.*`` classifier is dropped by :func:`aucseg.models.load_checkpoint`. Bottlenecks put the
stride on the 3x3 conv (ResNet v1.5, as torchvision). Optionally the last stages trade stride for
dilation to keep a finer output stride for dense prediction.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ResNet", "resnet50", "resnet101"]


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride, dilation) -> 1x1 x4 expansion, with identity or projected shortcut."""

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        out = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(
            width, width, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """Bottleneck ResNet returning the outputs of ``layer1``..``layer4``.

    Args:
        depths: bottlenecks per stage, (3, 4, 6, 3) for ResNet-50, (3, 4, 23, 3) for ResNet-101.
        dilate: per stage 2-4, replace the stride by dilation (e.g. (False, False, True) gives
            output stride 16).
        in_channels: image channels.

    Shape:
        forward: (B, 3, H, W) -> list of 4 tensors with ``out_channels`` (256, 512, 1024, 2048)
        at strides 4, 8, 16, 32 (or finer where dilated).
    """

    classifier_prefixes: tuple[str, ...] = ("fc.",)

    def __init__(
        self,
        depths: Sequence[int],
        dilate: Sequence[bool] = (False, False, True),
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(depths) != 4 or len(dilate) != 3:
            raise ValueError(
                f"ResNet needs 4 depths and 3 dilate flags; got {list(depths)}, {list(dilate)}"
            )
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self._in = 64
        self._dilation = 1
        flags = (False, *dilate)
        self.layer1 = self._make_layer(64, depths[0], 1, flags[0])
        self.layer2 = self._make_layer(128, depths[1], 2, flags[1])
        self.layer3 = self._make_layer(256, depths[2], 2, flags[2])
        self.layer4 = self._make_layer(512, depths[3], 2, flags[3])
        self.out_channels = [256, 512, 1024, 2048]
        self.init_weights()

    def _make_layer(self, width: int, blocks: int, stride: int, dilate: bool) -> nn.Sequential:
        previous = self._dilation
        if dilate:
            self._dilation *= stride
            stride = 1
        out = width * Bottleneck.expansion
        downsample = None
        if stride != 1 or self._in != out:
            downsample = nn.Sequential(
                nn.Conv2d(self._in, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )
        layers = [Bottleneck(self._in, width, stride, previous, downsample)]
        self._in = out
        layers += [Bottleneck(out, width, 1, self._dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def init_weights(self) -> None:
        """He-normal (fan_out, ReLU) convs, BN (1, 0), as torchvision."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            outs.append(x)
        return outs


def resnet50(dilate: Sequence[bool] = (False, False, True)) -> ResNet:
    """ResNet-50; 23,508,032 parameters without the ImageNet classifier."""
    return ResNet((3, 4, 6, 3), dilate)


def resnet101(dilate: Sequence[bool] = (False, False, True)) -> ResNet:
    """ResNet-101; 42,500,160 parameters without the ImageNet classifier."""
    return ResNet((3, 4, 23, 3), dilate)
