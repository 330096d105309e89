"""Speed and memory of the T-Memory Bank and the data pipeline.

Measures, on generated long-tail scenes (``aucseg.data.synthetic``):

* per-sample time of :class:`aucseg.augment.TMemoryBank` at 512x512 with the official ADE20K
  (150 classes, 124 tail, memory 5, p_sample 0.05, p_resize 0.4) and Cityscapes (19 classes,
  7 tail, memory 5, p_sample 1, p_resize 1) settings, after the bank is full;
* the bank's memory after filling (bytes held by its entries and the process RSS growth), next to
  the official bank's size for the same number of entries (one whole crop per entry);
* full-crop scenes (ADE20K settings): a tail class whose box is the whole 512x512 crop, either
  filling the crop or as the background of a generated scene; per ``storage`` the median time per
  sample (best of 3 passes) and the memory after the scenes, against one tenth of the official
  layout's whole-crop storage for the same entries;
* the batch-mode bank per mini-batch (4 x 512x512 ADE-like, 2 x 512x512 Cityscapes-like);
* the official Cityscapes training pipeline per sample (generated 1024x2048 scenes read from
  PNG files; with and without the per-sample bank) and DataLoader throughput with 2 workers.

Run: ``PYTHONPATH=src python benchmarks/data.py [--samples 200] [--threads 1]
[--only bank full-crop pipeline]``
"""

from __future__ import annotations

import argparse
import gc
import inspect
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import cv2
import numpy as np
import torch

from aucseg.augment import BatchTMemoryBank, TMemoryBank
from aucseg.data.synthetic import SyntheticStyle, make_synthetic, render_scene, sample_label
from aucseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD

MEAN = np.array(IMAGENET_MEAN, dtype=np.float32)
STD = np.array(IMAGENET_STD, dtype=np.float32)
SETTINGS = {
    "ade20k": {"num_classes": 150, "tail": list(range(26, 150)), "p_sample": 0.05, "p_resize": 0.4},
    "cityscapes": {"num_classes": 19, "tail": [6, 12, 14, 15, 16, 17, 18], "p_sample": 1.0,
                   "p_resize": 1.0},
}  # fmt: skip


def rss_bytes() -> int:
    """Resident set size of this process (Linux ``/proc``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make_samples(
    num: int, num_classes: int, size: int, seed: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Normalised (3, S, S) images and (S, S) int64 labels of generated scenes (ignore 255)."""
    rng = np.random.default_rng(seed)
    style = SyntheticStyle.create(num_classes, seed)
    samples = []
    for _ in range(num):
        label = sample_label(size, size, num_classes, 2.0, rng)
        image = (render_scene(label, style, rng).astype(np.float32) - MEAN) / STD
        samples.append(
            (torch.from_numpy(image).permute(2, 0, 1).contiguous(), torch.from_numpy(label).long())
        )
    return samples


def bench_bank(name: str, samples: list, fill: int) -> dict[str, float]:
    """Per-sample time of a full bank and its memory, with the official size for comparison."""
    cfg = SETTINGS[name]
    bank = TMemoryBank(cfg["num_classes"], cfg["tail"], 5, cfg["p_sample"], cfg["p_resize"], seed=0)
    gc.collect()
    rss0 = rss_bytes()
    for image, label in samples[:fill]:
        bank(image.clone(), label.clone())
    gc.collect()
    rss1 = rss_bytes()
    bank.reset_stats()
    timed = [(i.clone(), lab.clone()) for i, lab in samples[fill:]]
    start, cpu = time.perf_counter(), time.process_time()
    for image, label in timed:
        bank(image, label)
    elapsed = (time.perf_counter() - start) / len(timed)
    cpu_elapsed = (time.process_time() - cpu) / len(timed)
    stats = bank.stats()
    crop = samples[0][0].numel() * 4
    return {
        "ms_per_sample": 1e3 * elapsed,
        "cpu_ms_per_sample": 1e3 * cpu_elapsed,
        "pastes_per_sample": stats["pastes_per_sample"],
        "entries": stats["entries"],
        "entries_max": 5 * len(cfg["tail"]),
        "memory_mib": stats["memory_bytes"] / 2**20,
        "rss_growth_mib": (rss1 - rss0) / 2**20,
        "official_mib": stats["entries"] * crop / 2**20,
        "official_full_mib": 5 * len(cfg["tail"]) * crop / 2**20,
    }


def _bank(name: str, storage: str | None, p_sample: float | None = None) -> TMemoryBank:
    """Per-sample bank with the official settings of ``name`` (``storage`` None: the bank's
    default, which also runs against an older bank without the option)."""
    cfg = SETTINGS[name]
    p = cfg["p_sample"] if p_sample is None else p_sample
    extra = {} if storage is None else {"storage": storage}
    return TMemoryBank(cfg["num_classes"], cfg["tail"], 5, p, cfg["p_resize"], seed=0, **extra)


def storages() -> list[str | None]:
    """The storage options of the installed bank (``[None]`` when it has none)."""
    if "storage" not in inspect.signature(TMemoryBank).parameters:
        return [None]
    return ["float32", "float16", "uint8"]


def bench_worst_case(name: str, size: int, storage: str | None) -> float:
    """MiB of a full bank in which every entry is an object covering the whole crop, with one
    pixel of another class (so that the mask is stored)."""
    bank = _bank(name, storage, p_sample=0.0)
    image = torch.randn(3, size, size)
    for cls in SETTINGS[name]["tail"]:
        label = torch.full((size, size), cls, dtype=torch.int64)
        label[size // 2, size // 2] = 0
        for _ in range(5):
            bank(image, label)
    return bank.memory_bytes() / 2**20


def full_crop_scenes(
    num: int, size: int, seed: int, fill: bool
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """ADE20K-like samples in which one random tail class (26..149) has the whole crop as box.

    ``fill``: the class fills the crop (one class per sample); else it is the background
    (class 0) of a generated scene, whose other classes stay on top.
    """
    rng = np.random.default_rng(seed)
    style = SyntheticStyle.create(150, seed)
    scenes = []
    for _ in range(num):
        cls = int(rng.integers(26, 150))
        if fill:
            label = np.full((size, size), cls, dtype=np.uint8)
        else:
            label = sample_label(size, size, 150, 2.0, rng)
            label[label == 0] = cls
        image = (render_scene(label, style, rng).astype(np.float32) - MEAN) / STD
        scenes.append(
            (torch.from_numpy(image).permute(2, 0, 1).contiguous(), torch.from_numpy(label).long())
        )
    return scenes


def bench_full_crop(scenes: list, storage: str | None, passes: int = 3) -> dict[str, Any]:
    """Median wall and CPU ms per sample (best of ``passes`` fresh banks over the scenes) and
    the bank's memory after the scenes."""
    wall, cpu = [], []
    for _ in range(passes):
        bank = _bank("ade20k", storage)
        times = []
        for image, label in scenes:
            image, label = image.clone(), label.clone()
            start, start_cpu = time.perf_counter(), time.process_time()
            bank(image, label)
            times.append((time.perf_counter() - start, time.process_time() - start_cpu))
        wall.append(statistics.median(t[0] for t in times))
        cpu.append(statistics.median(t[1] for t in times))
        stats = bank.stats()
    crop = scenes[0][0].numel() * 4
    return {
        "ms": 1e3 * min(wall),
        "cpu_ms": 1e3 * min(cpu),
        "ms_passes": [1e3 * m for m in wall],
        "memory_mib": stats["memory_bytes"] / 2**20,
        "entries": stats["entries"],
        "allowed_mib": 0.1 * stats["entries"] * crop / 2**20,
        "pastes": stats["pastes_per_sample"],
    }


def report_full_crop(num: int, size: int) -> None:
    """Print the full-crop table (ADE20K settings) for every storage option of the bank."""
    print(
        f"| scenes ({num} x {size}x{size}, ADE20K settings) | storage | median ms/sample, wall "
        "(best pass; all passes) | median CPU ms | pastes/sample | entries | bank MiB "
        "| allowed MiB (1/10 official) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for fill, title in ((True, "tail class fills the crop"), (False, "tail-class background")):
        scenes = full_crop_scenes(num, size, seed=2, fill=fill)
        for storage in storages():
            r = bench_full_crop(scenes, storage)
            passes = ", ".join(f"{m:.2f}" for m in r["ms_passes"])
            print(
                f"| {title} | {storage or 'default'} | {r['ms']:.2f} ({passes}) | "
                f"{r['cpu_ms']:.2f} | {r['pastes']:.2f} | {r['entries']} | {r['memory_mib']:.1f} | "
                f"{r['allowed_mib']:.1f} |"
            )


def bench_batch(name: str, samples: list, batch: int, device: str) -> tuple[float, float]:
    """Wall and CPU milliseconds per mini-batch of the batch-mode bank (after filling)."""
    cfg = SETTINGS[name]
    bank = BatchTMemoryBank(
        cfg["num_classes"], cfg["tail"], 5, cfg["p_sample"], cfg["p_resize"], seed=0
    )
    batches = [
        (
            torch.stack([s[0] for s in samples[i : i + batch]]).to(device),
            torch.stack([s[1] for s in samples[i : i + batch]]).to(device),
        )
        for i in range(0, len(samples) - batch + 1, batch)
    ]
    half = len(batches) // 2
    for images, labels in batches[:half]:
        bank(images.clone(), labels.clone())
    timed = batches[half:]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start, cpu = time.perf_counter(), time.process_time()
    for images, labels in timed:
        bank(images, labels)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return 1e3 * wall / len(timed), 1e3 * cpu / len(timed)


def bench_pipeline(num_images: int, height: int, width: int, workers: int, epochs: int = 2) -> None:
    """Official Cityscapes training pipeline per sample, and DataLoader throughput.

    ``num_images`` generated scenes of ``height`` x ``width`` (Cityscapes layout, PNG) are read
    by :class:`aucseg.data.CityscapesDataset` through
    :func:`aucseg.data.build_train_pipeline` with the official Cityscapes settings (img_scale
    (2048, 1024), ratio 0.5-2, crop 1024x1024, cat_max_ratio 0.75, flip, photometric
    distortion, normalise, pad). Timed: one pass in the main process over the decoding alone,
    decoding + pipeline, and the same with the per-sample memory bank appended (Cityscapes
    settings); then ``epochs`` epochs of a DataLoader with ``workers`` workers, batch 2, after
    an untimed epoch that starts the workers.
    """
    from aucseg.augment import MemoryBankTransform
    from aucseg.data import CityscapesDataset, build_dataset, build_train_pipeline, seed_worker
    from aucseg.data.transforms import Compose

    cfg = SETTINGS["cityscapes"]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        root = make_synthetic(tmp, num_train=num_images, num_val=0, height=height, width=width)
        print(
            f"generated {num_images} scenes of {height}x{width} in "
            f"{time.perf_counter() - start:.1f} s"
        )
        pipeline = build_train_pipeline(
            crop_size=CityscapesDataset.CROP_SIZE, img_scale=CityscapesDataset.TRAIN_IMG_SCALE
        )
        raw = build_dataset("cityscapes", root, "train")
        bank = TMemoryBank(
            cfg["num_classes"], cfg["tail"], 5, cfg["p_sample"], cfg["p_resize"], seed=0
        )
        variants = [
            ("load only (PNG decode + label check)", raw),
            (
                "load + official train pipeline",
                build_dataset("cityscapes", root, "train", pipeline),
            ),
            (
                "load + pipeline + per-sample bank",
                build_dataset(
                    "cityscapes", root, "train", Compose([pipeline, MemoryBankTransform(bank)])
                ),
            ),
        ]
        print("| per sample, main process | ms (wall / CPU) |")
        print("|---|---|")
        for name, dataset in variants:
            np.random.seed(0)
            dataset[0]
            start, cpu = time.perf_counter(), time.process_time()
            for i in range(len(dataset)):
                dataset[i]
            wall = (time.perf_counter() - start) / len(dataset)
            cpu = (time.process_time() - cpu) / len(dataset)
            print(f"| {name} | {1e3 * wall:.1f} / {1e3 * cpu:.1f} |")
        dataset = variants[1][1]
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=2,
            num_workers=workers,
            shuffle=True,
            worker_init_fn=seed_worker,
            persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(0),
        )
        for _ in loader:  # first epoch starts the workers
            pass
        start, count = time.perf_counter(), 0
        for _ in range(epochs):
            for batch in loader:
                count += len(batch["image"])
        rate = count / (time.perf_counter() - start)
        print(
            f"DataLoader, {workers} workers, batch 2, official pipeline "
            f"({epochs} epochs after a warm-up epoch, {count} samples): {rate:.2f} samples/s"
        )


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="generated samples per setting")
    parser.add_argument("--size", type=int, default=512, help="crop side")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu", help="device of the batch-mode bank")
    parser.add_argument("--pipeline-images", type=int, default=32, help="0 skips the pipeline")
    parser.add_argument("--pipeline-size", type=int, nargs=2, default=[1024, 2048])
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--full-crop-samples", type=int, default=120)
    parser.add_argument(
        "--only", nargs="+", choices=["bank", "full-crop", "pipeline"], default=None,
        help="run only these parts (default: all)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    print(f"torch {torch.__version__}, threads {args.threads}, crop {args.size}x{args.size}")
    parts = set(args.only or ["bank", "full-crop", "pipeline"])
    if "bank" in parts:
        report_bank(args)
    if "full-crop" in parts:
        report_full_crop(args.full_crop_samples, args.size)
    if "pipeline" in parts and args.pipeline_images > 0:
        bench_pipeline(args.pipeline_images, *args.pipeline_size, args.workers)
    return 0


def report_bank(args: argparse.Namespace) -> None:
    """Print the bank tables: filled banks of both settings and the worst case."""
    rows = []
    for name in SETTINGS:
        samples = make_samples(args.samples, SETTINGS[name]["num_classes"], args.size, seed=1)
        res = bench_bank(name, samples, fill=args.samples // 2)
        batch = 4 if name == "ade20k" else 2
        res["batch_ms"] = bench_batch(name, samples, batch, args.device)
        res["batch"] = batch
        rows.append((name, res))
    print(
        "| setting | bank ms/sample (wall / CPU) | pastes/sample | entries | bank memory MiB "
        "| RSS growth MiB | official MiB (same entries) | official MiB (full) "
        "| batch mode ms/batch (wall / CPU) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name} | {r['ms_per_sample']:.2f} / {r['cpu_ms_per_sample']:.2f} | "
            f"{r['pastes_per_sample']:.2f} | "
            f"{r['entries']}/{r['entries_max']} | {r['memory_mib']:.1f} | "
            f"{r['rss_growth_mib']:.1f} | {r['official_mib']:.0f} | {r['official_full_mib']:.0f} | "
            f"{r['batch_ms'][0]:.2f} / {r['batch_ms'][1]:.2f} (B={r['batch']}) |"
        )
    print()
    print(
        "| setting | worst case (every entry a whole-crop object with a stored mask) MiB: "
        + " / ".join(str(s or "default") for s in storages())
        + " | official MiB, same worst case (crops + 24 B/pixel coordinates) |"
    )
    print("|---|---|---|")
    for name, r in rows:
        worst = " / ".join(f"{bench_worst_case(name, args.size, s):.0f}" for s in storages())
        official = r["entries_max"] * (12 + 24) * args.size**2 / 2**20
        print(f"| {name} | {worst} | {official:.0f} |")


if __name__ == "__main__":
    sys.exit(main())
