"""Dataset-level confusion matrix for semantic segmentation (mmseg 0.24.1 protocol).

Rows are ground-truth classes, columns predicted classes. The matrix lives on the device of the
predictions, is filled with one ``bincount`` per update and summed over ranks with
:func:`aucseg.dist.all_reduce_sum`, so IoU and accuracy are computed from intersections and
unions accumulated over the *whole* dataset (not averaged per image).
"""

from __future__ import annotations

import numpy as np
import torch

from aucseg.dist import all_reduce_sum


def _check_labels(name: str, tensor: torch.Tensor) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype.is_floating_point or tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(
            f"{name} must hold integer class ids, got dtype {tensor.dtype}; "
            "take argmax over the class dimension first"
        )
    return tensor.long()


class ConfusionMatrix:
    """Accumulate a ``(C, C)`` int64 confusion matrix ``matrix[target, pred]`` on a device.

    Args:
        num_classes: number of classes ``C``.
        ignore_index: ground-truth value to skip (also any target outside ``[0, C)``).
        device: where the matrix lives; moved to the inputs' device on the first update.

    Raises:
        ValueError: ``num_classes < 1``.
    """

    def __init__(
        self, num_classes: int, ignore_index: int = 255, device: str | torch.device | None = None
    ) -> None:
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.matrix = torch.zeros(
            (self.num_classes, self.num_classes), dtype=torch.int64, device=device
        )

    def reset(self) -> None:
        """Zero the counts."""
        self.matrix.zero_()

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch of predictions.

        Args:
            pred: predicted class ids in ``[0, C)``, any shape.
            target: ground-truth class ids (``ignore_index`` skipped), same shape as ``pred``.

        Raises:
            TypeError: non-integer inputs.
            ValueError: shapes differ or a prediction at a labelled pixel lies outside
                ``[0, C)`` (predictions at ignored pixels are not read).
        """
        pred = _check_labels("pred", pred)
        target = _check_labels("target", target)
        if pred.shape != target.shape:
            raise ValueError(
                f"pred shape {tuple(pred.shape)} != target shape {tuple(target.shape)}; "
                "resize the prediction to the label resolution first"
            )
        if self.matrix.device != pred.device:
            self.matrix = self.matrix.to(pred.device)
        target = target.to(pred.device)
        c = self.num_classes
        valid = (target != self.ignore_index) & (target >= 0) & (target < c)
        bad = valid & ((pred < 0) | (pred >= c))
        if bool(bad.any()):
            raise ValueError(
                f"predictions must lie in [0, {c}) at labelled pixels, got {int(pred[bad][0])}; "
                "check num_classes"
            )
        # Ignored pixels go to a dump slot c*c that is dropped: no masked copies.
        index = torch.where(valid, target * c + pred, c * c)
        self.matrix += torch.bincount(index.reshape(-1), minlength=c * c + 1)[: c * c].view(c, c)

    def all_reduce(self) -> None:
        """Sum the matrix over all ranks (no-op when not distributed)."""
        all_reduce_sum(self.matrix)

    def compute(self) -> dict:
        """Metrics from the accumulated counts (fractions, not percent).

        Returns:
            dict with float64 numpy arrays ``iou``, ``acc`` (NaN where the union / label area is
            0), ``intersect``, ``union``, ``area_label``, ``area_pred`` (shape ``(C,)``) and
            floats ``aAcc``, ``mIoU``, ``mAcc`` (NaN classes skipped; NaN if no valid pixel).
        """
        m = self.matrix.detach().to("cpu", torch.float64).numpy()
        intersect = np.diag(m).copy()
        area_label = m.sum(axis=1)
        area_pred = m.sum(axis=0)
        union = area_label + area_pred - intersect
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, intersect / union, np.nan)
            acc = np.where(area_label > 0, intersect / area_label, np.nan)
        total = area_label.sum()
        return {
            "iou": iou,
            "acc": acc,
            "intersect": intersect,
            "union": union,
            "area_label": area_label,
            "area_pred": area_pred,
            "aAcc": float(intersect.sum() / total) if total > 0 else float("nan"),
            "mIoU": _nanmean(iou),
            "mAcc": _nanmean(acc),
        }


def _nanmean(values: np.ndarray) -> float:
    """Mean over non-NaN entries; NaN (without a warning) when all are NaN."""
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")
