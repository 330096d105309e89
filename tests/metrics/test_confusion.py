import math

import numpy as np
import pytest
import torch
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassJaccardIndex,
)

from aucseg.metrics import ConfusionMatrix


def test_hand_computed_example():
    # target rows, pred columns; class 3 absent everywhere, class 2 predicted but never true.
    target = torch.tensor([[0, 0, 1, 1], [1, 255, 0, 2]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 0, 2]])
    cm = ConfusionMatrix(4)
    cm.update(pred, target)
    expected = np.array([[2, 1, 0, 0], [0, 2, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(cm.matrix.numpy(), expected)
    out = cm.compute()
    # IoU: c0 2/(3+2-2)=2/3, c1 2/(3+3-2)=1/2, c2 1/(1+2-1)=1/2, c3 NaN
    np.testing.assert_allclose(out["iou"][:3], [2 / 3, 1 / 2, 1 / 2])
    assert math.isnan(out["iou"][3]) and math.isnan(out["acc"][3])
    np.testing.assert_allclose(out["acc"][:3], [2 / 3, 2 / 3, 1.0])
    assert out["aAcc"] == pytest.approx(5 / 7)
    assert out["mIoU"] == pytest.approx((2 / 3 + 1 / 2 + 1 / 2) / 3)
    assert out["mAcc"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_predicted_but_absent_class_has_zero_iou_and_nan_acc():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([0, 2]), torch.tensor([0, 0]))
    out = cm.compute()
    assert out["iou"][2] == 0.0
    assert math.isnan(out["acc"][2])
    assert math.isnan(out["iou"][1])


def test_streaming_equals_one_shot_and_reset():
    g = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 5, (4, 8, 8), generator=g)
    target = torch.randint(0, 6, (4, 8, 8), generator=g)
    target[target == 5] = 255
    one = ConfusionMatrix(5)
    one.update(pred, target)
    many = ConfusionMatrix(5)
    for p, t in zip(pred, target, strict=True):
        many.update(p, t)
    assert torch.equal(one.matrix, many.matrix)
    many.reset()
    assert int(many.matrix.sum()) == 0


def test_agrees_with_torchmetrics():
    g = torch.Generator().manual_seed(1)
    c = 7
    preds, targets = [], []
    cm = ConfusionMatrix(c)
    for _ in range(3):
        # skewed labels so that class 6 is absent in the ground truth
        target = torch.randint(0, 6, (2, 16, 20), generator=g)
        target[torch.rand(target.shape, generator=g) < 0.1] = 255
        pred = torch.where(
            torch.rand(target.shape, generator=g) < 0.7,
            target.clamp(max=c - 1),
            torch.randint(0, c, target.shape, generator=g),
        )
        cm.update(pred, target)
        preds.append(pred)
        targets.append(target)
    p, t = torch.cat(preds), torch.cat(targets)
    tm_cm = MulticlassConfusionMatrix(c, ignore_index=255)(p, t)
    assert torch.equal(cm.matrix, tm_cm)
    tm_iou = MulticlassJaccardIndex(c, average="none", ignore_index=255)(p, t).double().numpy()
    out = cm.compute()
    present = ~np.isnan(out["iou"])
    np.testing.assert_allclose(out["iou"][present], tm_iou[present], rtol=1e-6)
    assert out["mIoU"] == pytest.approx(float(tm_iou[present].mean()), rel=1e-6)
    tm_aacc = MulticlassAccuracy(c, average="micro", ignore_index=255)(p, t)
    assert out["aAcc"] == pytest.approx(float(tm_aacc), rel=1e-6)


def test_bad_inputs_raise():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="shape"):
        cm.update(torch.zeros(2, 2, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="argmax"):
        cm.update(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 3\) at labelled pixels, got 5"):
        cm.update(torch.tensor([5]), torch.tensor([0]))
    cm.update(torch.tensor([255, 1]), torch.tensor([255, 1]))  # ignored pixels are not read
    assert int(cm.matrix.sum()) == 1
    with pytest.raises(ValueError, match="num_classes"):
        ConfusionMatrix(0)


def test_empty_matrix_gives_nan():
    out = ConfusionMatrix(2).compute()
    assert math.isnan(out["aAcc"]) and math.isnan(out["mIoU"]) and math.isnan(out["mAcc"])
