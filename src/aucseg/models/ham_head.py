"""LightHamHead: SegNeXt's decode head with the NMF "hamburger" (matrix decomposition).

Names follow the official head (``squeeze``, ``hamburger.ham_in``, ``hamburger.ham_out``,
``align``, ``conv_seg``) so that official checkpoints load without renaming.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from aucseg.models.layers import ConvModule, resize_bilinear

__all__ = ["NMF2D", "Hamburger", "LightHamHead"]

_EPS = 1e-6


class NMF2D(nn.Module):
    """Non-negative matrix factorisation of a feature map by multiplicative updates.

    Every forward draws fresh random bases, exactly as the official code:
    ``torch.rand((B * S, D, R))`` then L2-normalisation along D, on the input's device. The
    coefficients start as ``softmax(x^T bases)`` and ``train_steps`` (training) or
    ``eval_steps`` (eval) multiplicative updates follow, then a final coefficient update;
    gradients flow through all of them. The random start moves the logits by up to ~0.3 between
    calls; pass a :class:`torch.Generator` (see :func:`aucseg.models.set_nmf_generator`) for
    repeatable evaluation. The bases are drawn in the input dtype when it is float32/float64
    and in float32 otherwise (the whole decomposition then runs in float32: reduced-precision
    multiplicative updates are unstable).

    Args:
        rank: R, the number of bases (MD_R).
        num_splits: S, channel groups factorised separately (MD_S).
        train_steps: update steps in training mode.
        eval_steps: update steps in eval mode.

    Shape:
        (B, C, H, W) -> (B, C, H, W), C divisible by ``num_splits``.
    """

    def __init__(
        self, rank: int = 64, num_splits: int = 1, train_steps: int = 6, eval_steps: int = 7
    ) -> None:
        super().__init__()
        self.rank = rank
        self.num_splits = num_splits
        self.train_steps = train_steps
        self.eval_steps = eval_steps
        self.generator: torch.Generator | None = None

    def extra_repr(self) -> str:
        return (
            f"rank={self.rank}, num_splits={self.num_splits}, "
            f"train_steps={self.train_steps}, eval_steps={self.eval_steps}"
        )

    def _draw_bases(self, n: int, d: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Random non-negative bases, unit L2 norm along D. Shape: (n, d, R)."""
        if self.generator is not None and self.generator.device.type != device.type:
            raise ValueError(
                f"the NMF generator lives on {self.generator.device} but the input is on "
                f"{device}; call set_nmf_generator(model, torch.Generator(device={device.type!r}))"
            )
        bases = torch.rand((n, d, self.rank), generator=self.generator, device=device, dtype=dtype)
        return F.normalize(bases, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        s = self.num_splits
        if c % s:
            raise ValueError(f"NMF2D: channels {c} are not divisible by num_splits={s}")
        in_dtype = x.dtype
        dtype = in_dtype if in_dtype in (torch.float32, torch.float64) else torch.float32
        with _no_autocast(x.device.type):
            x = x.reshape(b * s, c // s, h * w).to(dtype)  # (B*S, D, N)
            bases = self._draw_bases(b * s, c // s, x.device, dtype)  # (B*S, D, R)
            xt = x.transpose(1, 2)  # (B*S, N, D)
            coef = torch.softmax(torch.bmm(xt, bases), dim=-1)  # (B*S, N, R), inv_t = 1
            for _ in range(self.train_steps if self.training else self.eval_steps):
                bases, coef = _nmf_step(x, xt, bases, coef)
            coef = _update_coef(xt, bases, coef)
            out = torch.bmm(bases, coef.transpose(1, 2))  # (B*S, D, N)
        return out.reshape(b, c, h, w).to(in_dtype)


def _no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """Disable autocast for the decomposition when it is on; a no-op otherwise."""
    try:
        enabled = torch.is_autocast_enabled(device_type)
    except RuntimeError:  # device types without autocast support (e.g. meta)
        enabled = False
    return torch.autocast(device_type, enabled=False) if enabled else contextlib.nullcontext()


def _update_coef(xt: torch.Tensor, bases: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """Multiplicative update of C in X ~ B C^T: ``C * (X^T B) / (C B^T B + eps)``."""
    numerator = torch.bmm(xt, bases)  # (B*S, N, R)
    denominator = coef.bmm(bases.transpose(1, 2).bmm(bases))  # (B*S, N, R)
    return coef * numerator / (denominator + _EPS)


def _nmf_step(
    x: torch.Tensor, xt: torch.Tensor, bases: torch.Tensor, coef: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step: update the coefficients, then the bases ``B * (X C) / (B C^T C + eps)``."""
    coef = _update_coef(xt, bases, coef)
    numerator = torch.bmm(x, coef)  # (B*S, D, R)
    denominator = bases.bmm(coef.transpose(1, 2).bmm(coef))  # (B*S, D, R)
    return bases * numerator / (denominator + _EPS), coef


class Hamburger(nn.Module):
    """``relu(x + ham_out(NMF(relu(ham_in(x)))))`` with ``ham_in`` a biased 1x1 conv and
    ``ham_out`` a 1x1 conv + GroupNorm. Shape: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int, rank: int, train_steps: int = 6, eval_steps: int = 7) -> None:
        super().__init__()
        self.ham_in = ConvModule(channels, channels, 1, norm=None, act=False)
        self.ham = NMF2D(rank, 1, train_steps, eval_steps)
        self.ham_out = ConvModule(channels, channels, 1, norm="gn", act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enjoy = self.ham_out(self.ham(F.relu(self.ham_in(x))))
        return F.relu(x + enjoy)


class LightHamHead(nn.Module):
    """SegNeXt decode head on backbone stages ``in_index`` (default strides 8/16/32).

    The selected features are resized to the first one's size (bilinear, align_corners False),
    concatenated, squeezed to ``ham_channels`` (1x1 conv + GN + ReLU), passed through the
    hamburger, aligned to ``channels`` (1x1 conv + GN + ReLU), then Dropout2d and ``conv_seg``.

    Args:
        in_channels: channels of all backbone outputs (``backbone.out_channels``).
        num_classes: output classes.
        channels: channels before ``conv_seg``.
        ham_channels: channels of the hamburger.
        rank: NMF rank (MD_R): 16 for T/S, 64 for B/L.
        in_index: which backbone outputs to use.
        dropout: Dropout2d probability before ``conv_seg``.
        train_steps: NMF steps in training mode.
        eval_steps: NMF steps in eval mode.

    Shape:
        forward: list of backbone features -> (B, num_classes, H/8, W/8) for the default index.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        channels: int = 256,
        ham_channels: int = 256,
        rank: int = 16,
        in_index: Sequence[int] = (1, 2, 3),
        dropout: float = 0.1,
        train_steps: int = 6,
        eval_steps: int = 7,
    ) -> None:
        super().__init__()
        self.in_index = list(in_index)
        self.num_classes = num_classes
        # Registration order = official state_dict order (conv_seg comes first there).
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        concat = sum(in_channels[i] for i in self.in_index)
        self.squeeze = ConvModule(concat, ham_channels, 1, norm="gn")
        self.hamburger = Hamburger(ham_channels, rank, train_steps, eval_steps)
        self.align = ConvModule(ham_channels, channels, 1, norm="gn")
        self.init_weights()

    def init_weights(self) -> None:
        """mmcv defaults: Kaiming ConvModules, GN (1, 0); ``conv_seg`` Normal(0, 0.01), bias 0."""
        for m in (self.squeeze, self.hamburger.ham_in, self.hamburger.ham_out, self.align):
            m.init_weights()
        nn.init.normal_(self.conv_seg.weight, 0.0, 0.01)
        nn.init.zeros_(self.conv_seg.bias)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        inputs = [features[i] for i in self.in_index]
        size = inputs[0].shape[2:]
        inputs = [resize_bilinear(t, size) for t in inputs]
        x = self.squeeze(torch.cat(inputs, dim=1))
        x = self.align(self.hamburger(x))
        return self.conv_seg(self.dropout(x))
