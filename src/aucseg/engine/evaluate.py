"""Dataset evaluation: confusion matrix + pixel-level AUC, sharded over ranks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from aucseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from aucseg.dist import all_reduce_sum, get_rank, get_world_size, is_main_process
from aucseg.engine.inference import inference_views, nmf_generator
from aucseg.engine.predict import colorize, default_palette, overlay, read_rgb, write_rgb
from aucseg.metrics import ConfusionMatrix, PairwiseAUC, summarize
from aucseg.models import set_nmf_generator


def _image_for_display(item: dict, size: tuple[int, int]) -> np.ndarray:
    """The original RGB image from ``image_path``, else the de-normalised input resized."""
    path = item.get("image_path")
    if path is not None and Path(path).is_file():
        rgb = read_rgb(path)
        if rgb.shape[:2] == tuple(size):
            return rgb
    x = item["image"].detach().float().cpu()[None]
    x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)[0]
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x * std + mean).clamp(0, 255).round().byte().permute(1, 2, 0).numpy()


def _show(item: dict, index: int, pred: torch.Tensor, show_dir: Path, palette) -> None:
    """Write ``<stem>_overlay.png`` (prediction over the image) for one evaluated item."""
    pred_np = pred.cpu().numpy()
    rgb = _image_for_display(item, pred_np.shape)
    stem = Path(item["image_path"]).stem if item.get("image_path") else f"{index:06d}"
    write_rgb(show_dir / f"{stem}_overlay.png", overlay(rgb, colorize(pred_np, palette)))


def _check_item(item: object, index: int) -> None:
    if (
        not isinstance(item, dict)
        or not isinstance(item.get("image"), torch.Tensor)
        or not isinstance(item.get("label"), torch.Tensor)
    ):
        raise TypeError(
            f"dataset[{index}] must be a dict with tensors 'image' (3, h, w) and 'label' (H, W), "
            f"got {type(item).__name__}; apply the test pipeline to the dataset first"
        )
    if item["image"].dim() != 3 or item["label"].dim() != 2:
        raise ValueError(
            f"dataset[{index}]: image must be (3, h, w) and label (H, W), got "
            f"{tuple(item['image'].shape)} and {tuple(item['label'].shape)}"
        )


def evaluate(
    model: nn.Module,
    dataset: Sequence[dict],
    num_classes: int,
    class_names: Sequence[str],
    groups: dict[str, list[int]] | None = None,
    mode: str = "whole",
    crop_size: tuple[int, int] | None = None,
    stride: tuple[int, int] | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    device: str | torch.device = "cpu",
    nmf_seed: int | None = 0,
    progress: bool = True,
    show_dir: str | Path | None = None,
    palette: Sequence[Sequence[int]] | None = None,
) -> dict:
    """Evaluate ``model`` on ``dataset`` (mmseg 0.24.1 protocol) and summarise.

    Each rank takes the indices ``rank::world``; the confusion matrix, AUC histogram and image
    count are all-reduced, so every rank returns the full result. Predictions are the argmax of
    the softmax averaged over TTA views (see :mod:`aucseg.engine.inference`); the AUC scores are
    the view-averaged **sigmoid** of the logits (AUCSeg's per-class scores). With
    ``nmf_seed`` the model's NMF generator (:func:`aucseg.models.set_nmf_generator`) is
    reseeded with ``nmf_seed`` before every image (as prediction does), so results
    do not depend on the number of ranks; afterwards NMF goes back to the global RNG.

    Args:
        model: ``forward(images) -> logits (B, C, h, w)``; moved to ``device``, put in eval mode
            and restored to its previous mode afterwards.
        dataset: items ``{"image": (3, h', w') float normalised, "label": (H, W) int64 at the
            original resolution, "image_path": str}``.
        num_classes, class_names, groups: see :func:`aucseg.metrics.summarize`.
        mode, crop_size, stride, scales, flip: see :func:`aucseg.engine.inference.inference`.
        device: where inference and the metric counts run.
        progress: show a tqdm bar on rank 0.
        show_dir: if given, write ``<stem>_overlay.png`` per image there.
        palette: ``(C, 3)`` RGB colours for ``show_dir`` (default: a fixed random palette).

    Returns:
        :func:`aucseg.metrics.summarize` output plus ``"num_images"``.

    Raises:
        TypeError / ValueError: malformed dataset items or arguments.
    """
    if len(class_names) != num_classes:
        raise ValueError(
            f"got {len(class_names)} class names for num_classes={num_classes}; pass the "
            "dataset's class list"
        )
    device = torch.device(device)
    confusion = ConfusionMatrix(num_classes, device=device)
    auc = PairwiseAUC(num_classes, device=device)
    show = Path(show_dir) if show_dir is not None else None
    pal = palette if palette is not None else default_palette(num_classes)
    indices = range(get_rank(), len(dataset), get_world_size())
    views = {"mode": mode, "crop_size": crop_size, "stride": stride, "scales": scales,
             "flip": flip, "num_classes": num_classes}  # fmt: skip
    was_training = model.training
    model.to(device).eval()
    generator = nmf_generator(model, nmf_seed, device)
    try:
        with torch.inference_mode():
            bar = tqdm(indices, desc="evaluate", disable=not (progress and is_main_process()))
            for index in bar:
                item = dataset[index]
                _check_item(item, index)
                if generator is not None:
                    generator.manual_seed(int(nmf_seed))
                pred = _evaluate_one(model, item, confusion, auc, device, views)
                if show is not None:
                    _show(item, index, pred, show, pal)
    finally:
        if generator is not None:
            set_nmf_generator(model, None)  # back to the global RNG (the official behaviour)
        model.train(was_training)
    confusion.all_reduce()
    auc.all_reduce()
    count = all_reduce_sum(torch.tensor([len(indices)], dtype=torch.int64, device=device))
    results = summarize(confusion, class_names, groups, auc.compute())
    results["num_images"] = int(count.item())
    return results


def _evaluate_one(
    model: nn.Module,
    item: dict,
    confusion: ConfusionMatrix,
    auc: PairwiseAUC,
    device: torch.device,
    views: dict,
) -> torch.Tensor:
    """Run one image, update both metrics, return the ``(H, W)`` prediction."""
    image = item["image"].to(device, torch.float32)[None]
    label = item["label"].to(device, torch.int64)
    probs, scores, n = None, None, 0
    for logits in inference_views(model, image, tuple(label.shape), **views):
        p, s = logits.softmax(dim=1), logits.sigmoid()
        probs, scores = (p, s) if probs is None else (probs + p, scores + s)
        n += 1
    pred = probs.argmax(dim=1)[0]
    confusion.update(pred, label)
    auc.update(scores / n, label[None])
    return pred
