"""How many objects the T-Memory Bank pastes per sample: per-sample placement against batch.

``placement: sample`` is the official one: a :class:`aucseg.augment.TMemoryBank` fed sample by
sample (one DataLoader worker's bank); a class is missing when the *sample* lacks it.
``placement: batch`` is a :class:`aucseg.augment.BatchTMemoryBank` on mini-batches of 4; a
class is missing only when the whole *batch* lacks it, and each drawn class goes to one sample.

Scenes are generated label maps (:func:`aucseg.data.synthetic.sample_label`, 150 classes,
Zipf a = 2, 512x512) with noise images; bank settings are the official ADE20K ones (tail
26..149, memory 5, p_sample 0.05, p_resize 0.4). Both placements see the same scenes in the same
order, per seed (scenes and bank). A pasted object counts when its class is visible in the
output sample and was absent from the input sample (so a paste covered by a later one, or
dropped by the shrink, does not count). Reported: objects per sample and the fraction of
samples that get none, mean ± std over the seeds, over all samples and over the second half
(the memory is then mostly full).

Run: ``PYTHONPATH=src python benchmarks/bank_placement.py [--samples 300] [--seeds 0 1 2]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from aucseg.augment import BatchTMemoryBank, TMemoryBank
from aucseg.data.synthetic import sample_label

NUM_CLASSES = 150
ADE20K = {
    "num_classes": NUM_CLASSES,
    "tail_classes": list(range(26, NUM_CLASSES)),
    "memory_size": 5,
    "p_sample": 0.05,
    "p_resize": 0.4,
}


def make_scenes(num: int, size: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``num`` (image (3, S, S) float32 noise, label (S, S) int64) generated scenes."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    scenes = []
    for _ in range(num):
        label = torch.from_numpy(sample_label(size, size, NUM_CLASSES, 2.0, rng)).long()
        scenes.append((torch.randn(3, size, size, generator=gen), label))
    return scenes


def present(label: torch.Tensor) -> np.ndarray:
    """(C,) bool: which classes the label map holds."""
    counts = np.bincount(label.numpy().ravel(), minlength=256)
    return counts[:NUM_CLASSES] > 0


def new_objects(before: list[np.ndarray], labels: torch.Tensor) -> list[int]:
    """Classes visible after the bank that were absent before, per sample."""
    return [int((present(lab) & ~was).sum()) for lab, was in zip(labels, before, strict=True)]


def run_sample(scenes: list, seed: int) -> list[int]:
    """Objects pasted into each sample by one per-sample bank fed sample by sample."""
    bank = TMemoryBank(**ADE20K, seed=seed)
    counts = []
    for image, label in scenes:
        was = present(label)
        _, out = bank(image.clone(), label.clone())
        counts += new_objects([was], out[None])
    return counts


def run_batch(scenes: list, seed: int, batch: int) -> list[int]:
    """Objects pasted into each sample by one batch bank on consecutive mini-batches."""
    bank = BatchTMemoryBank(**ADE20K, seed=seed)
    counts = []
    for i in range(0, len(scenes) - batch + 1, batch):
        part = scenes[i : i + batch]
        images = torch.stack([s[0] for s in part])
        labels = torch.stack([s[1] for s in part])
        before = [present(lab) for lab in labels]
        _, out = bank(images, labels.clone())
        counts += new_objects(before, out)
    return counts


def summary(per_seed: list[list[int]]) -> dict[str, tuple[float, float]]:
    """Mean ± std over seeds of objects/sample and of the share of samples with none."""

    def mean_std(values: list[float]) -> tuple[float, float]:
        return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    out = {}
    for part in ("all", "second half"):
        objects, none = [], []
        for counts in per_seed:
            c = np.array(counts if part == "all" else counts[len(counts) // 2 :])
            objects.append(float(c.mean()))
            none.append(float((c == 0).mean()))
        out[f"objects {part}"] = mean_std(objects)
        out[f"none {part}"] = mean_std(none)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run both placements for every seed and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300, help="scenes per seed")
    parser.add_argument("--size", type=int, default=512, help="crop side")
    parser.add_argument("--batch", type=int, default=4, help="mini-batch of the batch bank")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    results: dict[str, list[list[int]]] = {"sample": [], "batch": []}
    tail_per_scene = []
    for seed in args.seeds:
        scenes = make_scenes(args.samples, args.size, seed)
        tail_per_scene += [int(present(lab)[26:].sum()) for _, lab in scenes]
        results["sample"].append(run_sample(scenes, seed))
        results["batch"].append(run_batch(scenes, seed, args.batch))
    print(
        f"{args.samples} scenes x {len(args.seeds)} seeds ({args.size}x{args.size}), "
        f"{np.mean(tail_per_scene):.2f} tail classes per scene, "
        f"{time.perf_counter() - start:.0f} s"
    )
    print(
        "| placement | objects pasted / sample (all) | samples with none (all) "
        "| objects / sample (second half) | samples with none (second half) |"
    )
    print("|---|---|---|---|---|")
    for name, per_seed in results.items():
        s = summary(per_seed)
        cells = [
            f"{s['objects all'][0]:.2f} ± {s['objects all'][1]:.2f}",
            f"{100 * s['none all'][0]:.1f} ± {100 * s['none all'][1]:.1f} %",
            f"{s['objects second half'][0]:.2f} ± {s['objects second half'][1]:.2f}",
            f"{100 * s['none second half'][0]:.1f} ± {100 * s['none second half'][1]:.1f} %",
        ]
        label = name if name == "sample" else f"batch (B={args.batch})"
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
