"""Stand-in modules for the model, loss, data, memory-bank, evaluation and metrics layers.

``install(monkeypatch)`` puts them in ``sys.modules`` under the real names, so the engine's
builders and commands can be exercised end to end with tiny tensors.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from .standins import CELoss, TinySegmentor

NUM_CLASSES = 19
BUILT: dict[str, list] = {"models": [], "losses": [], "datasets": []}


class SigmoidSquareLoss(nn.Module):
    """Differentiable stand-in for the square AUC loss (records its keyword arguments)."""

    def __init__(self, loss_weight: float = 1.0, **kwargs) -> None:
        super().__init__()
        self.loss_weight, self.kwargs = loss_weight, kwargs
        self.loss_name = "loss_square_auc"

    def forward(self, logits, target):
        valid = target != 255
        onehot = nn.functional.one_hot(target.clamp(max=logits.shape[1] - 1), logits.shape[1])
        diff = torch.sigmoid(logits).permute(0, 2, 3, 1) - onehot.float()
        return self.loss_weight * (diff.pow(2).sum(-1) * valid).mean()


def build_model(name, num_classes, **kwargs):
    BUILT["models"].append((name, num_classes, kwargs))
    return TinySegmentor(num_classes)


def load_checkpoint(model, path, strict=True):
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model", state.get("state_dict", state))
    return model.load_state_dict(state, strict=strict)


def build_loss(name, num_classes, **kwargs):
    BUILT["losses"].append((name, num_classes, kwargs))
    if name == "cross_entropy":
        return CELoss(kwargs.get("loss_weight", 1.0), kwargs.get("ignore_index", 255))
    return SigmoidSquareLoss(**kwargs)


class FakeDataset(torch.utils.data.Dataset):
    def __init__(self, root, split, transforms=None, n=6, size=16):
        if not Path(root).is_dir():
            raise FileNotFoundError(f"dataset root not found: {root}")
        gen = torch.Generator().manual_seed(0 if split == "train" else 1)
        self.images = torch.randn(n, 3, size, size, generator=gen)
        self.labels = torch.randint(0, NUM_CLASSES, (n, size, size), generator=gen)
        self.transforms = transforms
        self.classes = [f"class{i}" for i in range(NUM_CLASSES)]
        self.num_classes = NUM_CLASSES
        self.palette = np.arange(NUM_CLASSES * 3, dtype=np.uint8).reshape(NUM_CLASSES, 3)
        self.reduce_zero_label = False
        self.samples = list(range(n))

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        sample = {"image": self.images[i].clone(), "label": self.labels[i].clone()}
        return self.transforms(sample) if self.transforms else sample


def build_dataset(name, root, split, transforms=None, **kwargs):
    BUILT["datasets"].append((name, str(root), split))
    return FakeDataset(root, split, transforms)


class RandomFlip:
    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def __call__(self, sample):
        if torch.rand(()) < 0.5:
            sample = {k: v.flip(-1) for k, v in sample.items()}
        return sample


class BatchTMemoryBank:
    def __init__(self, num_classes, tail_classes, memory_size=5, p_sample=1.0, p_resize=1.0,
                 seed=None):  # fmt: skip
        self.tail_classes, self.calls = list(tail_classes), 0

    def __call__(self, images, labels):
        self.calls += 1
        return images, labels

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = state["calls"]

    def stats(self):
        return {"calls": self.calls}

    def reset_stats(self):
        pass


def evaluate(model, dataset, num_classes, class_names, groups=None, mode="whole", crop_size=None,
             stride=None, scales=(1.0,), flip=False, device="cpu", nmf_seed=0, progress=True,
             show_dir=None, palette=None):  # fmt: skip
    hist = torch.zeros(num_classes, num_classes)
    with torch.no_grad():
        for i in range(len(dataset)):
            item = dataset[i]
            pred = model(item["image"][None].to(device)).argmax(1)[0].cpu()
            idx = item["label"].flatten() * num_classes + pred.flatten()
            hist += torch.bincount(idx, minlength=num_classes**2).reshape(num_classes, -1)
    iou = hist.diag() / (hist.sum(0) + hist.sum(1) - hist.diag())
    miou = float(iou.nanmean() * 100)
    return {
        "aAcc": float(hist.diag().sum() / hist.sum() * 100),
        "mIoU": miou,
        "mAcc": float((hist.diag() / hist.sum(1)).nanmean() * 100),
        "mIoU_head": miou,
        "mIoU_middle": miou,
        "mIoU_tail": miou,
        "per_class": [
            {"name": n, "iou": float(v * 100), "acc": 0.0}
            for n, v in zip(class_names, iou, strict=True)
        ],
        "num_images": len(dataset),
        "mode": mode,
        "scales": list(scales),
        "flip": flip,
    }


def write_metrics_json(path, results):
    Path(path).write_text(json.dumps(results))


def predict_images(model, image_paths, out_dir, palette, **kwargs):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for p in image_paths:
        for kind in ("mask", "overlay"):
            target = out / f"{Path(p).stem}_{kind}.png"
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(target)
            paths.append(target)
    return paths


def install(monkeypatch) -> dict:
    """Register the stand-ins under the real module names; returns the record of builds."""
    for key in BUILT:
        BUILT[key].clear()

    def module(name, **attrs):
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, mod)

    module("aucseg.models", build_model=build_model, load_checkpoint=load_checkpoint,
           set_nmf_generator=lambda model, gen: None)  # fmt: skip
    module("aucseg.losses", build_loss=build_loss)
    module("aucseg.data", build_dataset=build_dataset, seed_worker=lambda wid: None,
           OFFICIAL_TAIL_CLASSES={"cityscapes": [6, 12, 14, 15, 16, 17, 18]})  # fmt: skip
    module("aucseg.data.transforms", build_train_pipeline=lambda **kw: RandomFlip(**kw),
           build_test_pipeline=lambda img_scale, size_divisor=None: None)  # fmt: skip
    module("aucseg.augment", BatchTMemoryBank=BatchTMemoryBank, TMemoryBank=BatchTMemoryBank,
           MemoryBankTransform=lambda bank: (lambda sample: sample))  # fmt: skip
    module("aucseg.engine.evaluate", evaluate=evaluate)
    module("aucseg.engine.predict", predict_images=predict_images)
    module("aucseg.metrics", write_metrics_json=write_metrics_json,
           format_table=lambda r: f"mIoU {r['mIoU']:.2f}",
           plot_per_class=lambda r, path, order=None: Path(path).write_bytes(b"png"))  # fmt: skip
    return BUILT
