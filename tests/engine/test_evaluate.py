import numpy as np
import pytest
import torch
from torch import nn

from aucseg.engine.evaluate import evaluate
from aucseg.metrics import ConfusionMatrix, PairwiseAUC
from aucseg.models import NMF2D, build_model, set_nmf_generator

C = 4
NAMES = ["a", "b", "c", "d"]


class Oracle(nn.Module):
    """Reads the class id stored in image channel 0 and returns one-hot logits (x4) for it."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(4.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = torch.arange(C, dtype=x.dtype).view(1, C, 1, 1)
        return self.scale * (x[:, :1] == ids).to(x.dtype)


def make_dataset(n: int = 3, corrupt: bool = False) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    items = []
    for k in range(n):
        label = torch.randint(0, C - 1, (6 + k, 8), generator=g)  # class 3 never appears
        label[0, :3] = 255
        channel0 = label.clamp(max=C - 1).float()
        if corrupt:
            channel0 = torch.where(label == 2, torch.ones_like(channel0), channel0)
        image = torch.stack([channel0, torch.zeros_like(channel0), torch.zeros_like(channel0)])
        items.append({"image": image, "label": label, "image_path": f"/nonexistent/im{k}.png"})
    return items


def test_perfect_model_scores_100():
    res = evaluate(Oracle(), make_dataset(), C, NAMES, progress=False)
    assert res["num_images"] == 3
    assert res["aAcc"] == pytest.approx(100.0) and res["mIoU"] == pytest.approx(100.0)
    assert res["per_class"][3]["iou"] is None  # absent class is skipped, not 0
    assert res["AUC"] == pytest.approx(100.0)
    assert res["mIoU_head"] is None and res["mIoU_tail"] is None


def test_matches_direct_metric_computation_and_groups():
    data = make_dataset(corrupt=True)
    groups = {"head": [0], "middle": [1], "tail": [2, 3]}
    res = evaluate(Oracle(), data, C, NAMES, groups=groups, progress=False)
    cm, auc = ConfusionMatrix(C), PairwiseAUC(C)
    model = Oracle()
    for item in data:
        logits = model(item["image"][None])
        cm.update(logits.argmax(1)[0], item["label"])
        auc.update(logits.sigmoid(), item["label"][None])
    iou = cm.compute()["iou"]
    assert iou[2] == 0.0  # every class-2 pixel was predicted as class 1
    assert res["mIoU"] == pytest.approx(100 * np.nanmean(iou))
    assert res["mIoU_tail"] == pytest.approx(0.0)
    assert res["mIoU_head"] == pytest.approx(100 * iou[0])
    assert res["AUC"] == pytest.approx(100 * auc.compute())
    assert res["AUC"] < 100.0


def test_label_resolution_differs_from_input():
    # The test pipeline may resize the image; logits are upsampled (bilinear) to the label
    # size. With 2x nearest-upsampled labels the nearest input pixel has bilinear weight 9/16,
    # so the one-hot oracle stays exact; a missing upsample would raise a shape error.
    data = make_dataset(1)
    item = data[0]
    item["label"] = item["label"].repeat_interleave(2, 0).repeat_interleave(2, 1)
    res = evaluate(Oracle(), data, C, NAMES, progress=False)
    assert res["aAcc"] == pytest.approx(100.0)


def test_slide_and_flip_modes_run_and_restore_training_mode():
    model = Oracle().train()
    res = evaluate(
        model,
        make_dataset(),
        C,
        NAMES,
        mode="slide",
        crop_size=(4, 4),
        stride=(3, 3),
        flip=True,
        scales=(1.0,),
        progress=False,
    )
    assert res["mIoU"] == pytest.approx(100.0)
    assert model.training


def test_show_dir_writes_overlays(tmp_path):
    evaluate(Oracle(), make_dataset(2), C, NAMES, progress=False, show_dir=tmp_path / "show")
    files = sorted(p.name for p in (tmp_path / "show").iterdir())
    assert files == ["im0_overlay.png", "im1_overlay.png"]


def test_nmf_bases_are_seeded_per_image_and_released():
    torch.manual_seed(0)
    model = build_model("segnext_tiny", C).eval()
    g = torch.Generator().manual_seed(1)
    data = [
        {
            "image": torch.randn(3, 32, 32, generator=g),
            "label": torch.randint(0, C, (32, 32), generator=g),
        }
        for _ in range(2)
    ]
    first = evaluate(model, data, C, NAMES, progress=False, nmf_seed=5)
    torch.rand(10)  # moves the global RNG
    assert evaluate(model, data, C, NAMES, progress=False, nmf_seed=5) == first
    nmf = [m for m in model.modules() if isinstance(m, NMF2D)]
    assert nmf and all(m.generator is None for m in nmf)  # training keeps the global RNG

    # every image is evaluated with bases drawn from nmf_seed (as predict; the AUC sees every
    # logit)
    def auc_with(seeds):
        auc = PairwiseAUC(C)
        for seed, item in zip(seeds, data, strict=True):
            set_nmf_generator(model, torch.Generator().manual_seed(seed))
            with torch.inference_mode():
                auc.update(model(item["image"][None]).sigmoid(), item["label"][None])
        set_nmf_generator(model, None)
        return 100 * auc.compute()

    assert first["AUC"] == pytest.approx(auc_with([5, 5]), abs=1e-9)
    assert auc_with([5, 6]) != auc_with([5, 5])  # the seed matters here


def test_malformed_items_raise():
    with pytest.raises(TypeError, match="dict"):
        evaluate(Oracle(), [torch.zeros(3, 4, 4)], C, NAMES, progress=False)
    bad = [{"image": torch.zeros(3, 4, 4), "label": torch.zeros(1, 4, 4, dtype=torch.long)}]
    with pytest.raises(ValueError, match=r"label \(H, W\)"):
        evaluate(Oracle(), bad, C, NAMES, progress=False)
    with pytest.raises(ValueError, match="3 class names for num_classes=4"):
        evaluate(Oracle(), make_dataset(1), C, NAMES[:3], progress=False)
