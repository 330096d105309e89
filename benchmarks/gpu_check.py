"""One-command GPU check: losses, AUCSeg step overhead, memory bank, inference throughput, the
official checkpoint, host synchronisations per step and a CLI run, as one markdown table.

    PYTHONPATH=src python benchmarks/gpu_check.py --device cuda --out gpu_check.json
    PYTHONPATH=src python benchmarks/gpu_check.py --device cpu --quick --out /tmp/check.json

The full check (``--device cuda``) is sized to finish within 8 minutes on one GPU;
``--device cpu --quick`` runs every section on small shapes (the CI test does) in about a minute
on 2 cores. Each section is guarded: an exception is recorded as that section's status
(``error: ...``) and the next section runs; a section that would start after ``--budget``
seconds is ``skipped: time budget``. Row status: ``ok`` (met its target or tolerance), ``FAIL``,
or ``info`` (no target; every speed or memory target is ``info`` under ``--quick``).

Sections:

* ``reference``: the official-format SegNeXt-T checkpoint (``--reference DIR``, default
  ``../shared/reference`` then ``.gpu_ref`` beside the repository root) on the device, TF32
  off: the four backbone outputs and the stride-8 decode-head logits against the recorded
  official outputs, max abs difference <= 1e-4. The NMF bases are drawn as the reference README
  says: ``torch.manual_seed(1234)`` then ``torch.rand`` on the CPU generator, moved to the
  device (a CUDA generator draws other numbers, and the NMF output depends on its start).
* ``loss``: forward+backward of ``SquareAUCLoss`` and ``F.cross_entropy`` at (4,150,512,512) and
  (8,171,512,512), fp32 and bf16 logits: median ms, peak extra memory against the logits, and
  the value on the first image against the same values in float64 on the CPU (rtol 1e-4; 1e-2
  for cross-entropy on bf16 logits, whose output is bf16).
* ``memory_bank``: :class:`~aucseg.augment.BatchTMemoryBank` on the device, filled, ms per
  batch of generated scenes (ADE20K settings and Cityscapes settings).
* ``train_step``: SegNeXt-L, 512x512, batch 4, bf16, through :class:`~aucseg.engine.trainer.
  Trainer`: CE only against AUCSeg (Square AUC weight 4 + CE + BatchTMemoryBank, official
  ADE20K settings), alternating rounds; ms/iter, peak ``max_memory_allocated``, overheads
  (targets <= 5 % time and memory; the paper reports 13.29 GB -> 15.45 GB for its code).
* ``inference``: images/s of :func:`aucseg.engine.inference.inference`, whole (512x672) and
  slide (1024x2048, crop 1024, stride 768), float32 as ``aucseg test`` runs.
* ``runtime_options``: ``runtime.channels_last`` against the default memory format, train step
  (``amp`` as above) and inference, paired rounds of ``benchmarks/runtime_options.py`` (the
  ``runtime.compile`` rows of that script are not run here: compilation takes minutes).
* ``host_syncs``: a trainer built by :func:`aucseg.engine.tasks.build_trainer` from the shipped
  synthetic configs (AUCSeg and CE) on generated data, a few steps; host synchronisations per
  step, outside the first step and log steps (target: 0 for CE, at most 1 for AUCSeg: the
  bank's documented read of the classes present per batch). CUDA: the warnings of
  ``torch.cuda.set_sync_debug_mode("warn")``. CPU: :class:`HostSyncCounter`, a
  ``torch.overrides.TorchFunctionMode`` that counts the calls which synchronise when their
  tensor lives on a GPU (``Tensor.item/tolist/__bool__/__int__/__float__/cpu/numpy``,
  ``nonzero``, ``unique``, ``masked_select``, ``bincount``, boolean-mask indexing, ...); tensors
  made on the host (factories without ``device=``, ``.cpu()`` results and what is computed
  from them only) are tracked and not counted; the data pipeline is not observed.
* ``cli``: ``aucseg make-synthetic``, ``aucseg train`` (bf16, half the iterations, with a
  checkpoint), ``aucseg train --resume`` to the full count (30 on CUDA), ``aucseg test``, as
  subprocesses.

The table goes to stdout and, with every number, to ``--out`` as JSON
(``{"meta": ..., "sections": {name: {"status", "seconds", "rows"}}}``). Exit code 0 when every
section is ``ok``, 1 otherwise. Timing and memory: ``benchmarks/_timing.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

import runtime_options
from _timing import measure_peak, time_call
from aucseg.augment import BatchTMemoryBank
from aucseg.data import OFFICIAL_TAIL_CLASSES
from aucseg.data.synthetic import SyntheticStyle, make_synthetic, render_scene, sample_label
from aucseg.data.transforms import Normalize, ToTensor
from aucseg.engine.hooks import HookBase
from aucseg.engine.inference import inference
from aucseg.engine.tasks import build_trainer, train_config
from aucseg.losses import SquareAUCLoss
from aucseg.models import NMF2D, build_segnext, load_checkpoint
from train_step import (
    InMemory,
    alternate_rounds,
    aucseg_parts,
    fill_bank,
    make_model,
)

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SHARED = Path(os.environ.get("AUCSEG_SHARED", REPO.parent / "shared"))
REFERENCE_DEFAULTS = (SHARED / "reference", REPO / ".gpu_ref")
REFERENCE_TOL = 1e-4
SYNC_NAMES = frozenset(
    {
        "item", "tolist", "__bool__", "__int__", "__float__", "__index__", "cpu", "numpy",
        "nonzero", "argwhere", "unique", "unique_consecutive", "masked_select", "bincount",
        "equal", "allclose", "histc",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """Sizes of every section: :data:`FULL` on a GPU, :data:`QUICK` for the CPU smoke run."""

    loss_shapes: tuple[tuple[int, int, int, int], ...]
    loss_repeats: int
    model: str  # train_step and inference
    classes: int
    size: int
    batch: int
    images: int
    warmup: int
    iters: int
    rounds: int
    whole_hw: tuple[int, int]
    slide_hw: tuple[int, int]
    slide_crop: int
    slide_stride: int
    infer_repeats: int
    bank_size: int
    bank_batch: int
    bank_repeats: int
    sync_steps: int
    cli_iters: int
    cli_hw: tuple[int, int]
    cli_images: int


FULL = Plan(
    loss_shapes=((4, 150, 512, 512), (8, 171, 512, 512)), loss_repeats=5,
    model="segnext_large", classes=150, size=512, batch=4, images=16, warmup=5, iters=20,
    rounds=3, whole_hw=(512, 672), slide_hw=(1024, 2048), slide_crop=1024, slide_stride=768,
    infer_repeats=5, bank_size=512, bank_batch=4, bank_repeats=20, sync_steps=6, cli_iters=30,
    cli_hw=(256, 512), cli_images=16,
)  # fmt: skip
QUICK = Plan(
    loss_shapes=((2, 19, 64, 64),), loss_repeats=2, model="segnext_tiny", classes=19, size=64,
    batch=2, images=4, warmup=1, iters=2, rounds=1, whole_hw=(64, 96), slide_hw=(64, 128),
    slide_crop=64, slide_stride=48, infer_repeats=2, bank_size=64, bank_batch=2, bank_repeats=3,
    sync_steps=4, cli_iters=4, cli_hw=(64, 128), cli_images=4,
)  # fmt: skip


class SkipSection(Exception):
    """The section cannot run here (no reference data, no time left)."""


@dataclass
class Context:
    """What every section gets: the device, the plan, the clock and a scratch folder."""

    device: torch.device
    plan: Plan
    quick: bool
    deadline: float
    reference: Path | None
    tmp: Path
    amp: str = "bf16"

    def remaining(self) -> float:
        """Seconds left of the budget."""
        return self.deadline - time.monotonic()

    def require(self) -> None:
        """Raise :class:`SkipSection` when the budget is spent."""
        if self.remaining() <= 0:
            raise SkipSection("time budget")

    def target(self, met: bool) -> bool | None:
        """A speed/memory target's verdict: None (info) under ``--quick``."""
        return None if self.quick else bool(met)


def row(measurement: str, value: str, target: str = "", ok: bool | None = None, **data) -> dict:
    """One table row; ``ok`` None = info, True = ok, False = FAIL; ``data`` holds the numbers."""
    status = "info" if ok is None else ("ok" if ok else "FAIL")
    return {"measurement": measurement, "value": value, "target": target, "status": status, **data}


def generated_items(
    num: int, height: int, width: int, num_classes: int, seed: int = 0
) -> list[dict[str, torch.Tensor]]:
    """``num`` generated long-tail scenes, normalised: (3, H, W) float32 and (H, W) int64."""
    style = SyntheticStyle.create(num_classes, seed)
    rng = np.random.default_rng(seed)
    to_tensors, normalize = ToTensor(), Normalize()
    items = []
    for _ in range(num):
        label = sample_label(height, width, num_classes, 2.0, rng)
        sample = normalize({"image": render_scene(label, style, rng), "label": label})
        items.append(to_tensors(sample))
    return [{"image": s["image"], "label": s["label"]} for s in items]


def tail_for(num_classes: int) -> list[int]:
    """The official tail list of the dataset with ``num_classes`` classes (150: ADE20K)."""
    name = "ade20k" if num_classes == 150 else "cityscapes"
    return [c for c in OFFICIAL_TAIL_CLASSES[name] if c < num_classes]


def free_device_memory(device: torch.device) -> None:
    """Release cached blocks so the next section starts from a clean allocator."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- reference


def resolve_reference(given: str | None) -> Path | None:
    """``--reference`` if given, else the first default folder holding the SegNeXt-T files."""
    candidates = [Path(given)] if given else list(REFERENCE_DEFAULTS)
    for folder in candidates:
        if (folder / "segnext_tiny_c19_io.npz").is_file():
            return folder
    return None


@contextlib.contextmanager
def cpu_drawn_nmf_bases(model: torch.nn.Module) -> Iterator[None]:
    """Every NMF2D of ``model`` draws its bases from the global CPU RNG, then moves them to the
    input's device (the reference README's draw, whatever the device)."""
    modules = [m for m in model.modules() if isinstance(m, NMF2D)]

    def draw(module: NMF2D) -> Callable[..., torch.Tensor]:
        def cpu_draw(n: int, d: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
            bases = torch.rand((n, d, module.rank), dtype=dtype)  # (n, D, R) on the CPU
            return F.normalize(bases, dim=1).to(device)

        return cpu_draw

    for module in modules:
        module._draw_bases = draw(module)  # instance attribute shadows the method
    try:
        yield
    finally:
        for module in modules:
            del module._draw_bases


@contextlib.contextmanager
def no_tf32() -> Iterator[None]:
    """TF32 off for matmuls and convolutions (a reference comparison needs true float32)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def section_reference(ctx: Context, rows: list[dict]) -> None:
    """Official SegNeXt-T checkpoint: features and logits against the recorded outputs."""
    if ctx.reference is None:
        raise SkipSection("no reference folder (give --reference DIR)")
    io = np.load(ctx.reference / "segnext_tiny_c19_io.npz")
    model = build_segnext("tiny", num_classes=19).eval()
    load_checkpoint(model, ctx.reference / "segnext_tiny_c19_official_format.pth")
    model.to(ctx.device)
    tol = f"max abs diff <= {REFERENCE_TOL:g} (TF32 off)"
    with no_tf32(), torch.no_grad():
        feats = model.backbone(torch.from_numpy(io["input"]).to(ctx.device))
        for i, feat in enumerate(feats):
            diff = float((feat.cpu() - torch.from_numpy(io[f"feat{i}"])).abs().max())
            name = f"backbone feat{i} {tuple(feat.shape)}"
            rows.append(row(name, f"{diff:.1e}", tol, diff <= REFERENCE_TOL, max_abs_diff=diff))
        with cpu_drawn_nmf_bases(model):
            torch.manual_seed(1234)
            logits = model.decode_head(feats)
    diff = float((logits.cpu() - torch.from_numpy(io["logits"])).abs().max())
    name = f"decode-head logits {tuple(logits.shape)}, bases: seed 1234, CPU draw"
    rows.append(row(name, f"{diff:.1e}", tol, diff <= REFERENCE_TOL, max_abs_diff=diff))


# ----------------------------------------------------------------------------- loss


def loss_inputs(
    shape: tuple[int, int, int, int], device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (leaf, ``dtype``) and long-tailed labels (Zipf-like, ~5 % ignored) on ``device``."""
    batch, num_classes, height, width = shape
    gen = torch.Generator(device).manual_seed(0)
    logits = torch.randn(shape, generator=gen, device=device).to(dtype)
    freq = 1.0 / torch.arange(1, num_classes + 1, dtype=torch.float32, device=device)
    target = torch.multinomial(freq, batch * height * width, True, generator=gen)
    target = target.reshape(batch, height, width)
    target[torch.rand(batch, height, width, generator=gen, device=device) < 0.05] = 255
    return logits.requires_grad_(), target


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``F.cross_entropy`` with ignore_index 255."""
    return F.cross_entropy(logits, target, ignore_index=255)


def fwd_bwd(fn: Callable, logits: torch.Tensor, target: torch.Tensor) -> None:
    """One forward+backward; frees the gradient."""
    fn(logits, target).backward()
    logits.grad = None


def cpu_agreement(fn: Callable, logits: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """(device value, float64 CPU value) of ``fn`` on the first image of the batch."""
    with torch.no_grad():
        on_device = float(fn(logits[:1], target[:1]))
        on_cpu = float(fn(logits[:1].detach().cpu().double(), target[:1].cpu()))
    return on_device, on_cpu


def one_loss_rows(
    ctx: Context, name: str, fn: Callable, logits: torch.Tensor, target: torch.Tensor, tag: str
) -> tuple[list[dict], float, int]:
    """Rows of one loss (time and memory, CPU agreement); also its median ms and extra bytes."""
    ms = time_call(lambda: fwd_bwd(fn, logits, target), ctx.device, 1, ctx.plan.loss_repeats)
    mem = measure_peak(lambda: fwd_bwd(fn, logits, target), ctx.device).extra_bytes
    dev, cpu = cpu_agreement(fn, logits, target)
    rtol = 1e-2 if (logits.dtype == torch.bfloat16 and fn is cross_entropy) else 1e-4
    rel = abs(dev - cpu) / max(abs(cpu), 1e-12)
    ratio = mem / (logits.numel() * logits.element_size())
    kind = "allocated" if ctx.device.type == "cuda" else "RSS"
    value = f"{ms.median_ms:.1f} ms, +{mem / 2**20:.0f} MiB {kind} ({ratio:.2f}x logits)"
    rows = [
        row(f"{name} {tag} fwd+bwd", value, ms=ms.median_ms, peak_extra_bytes=mem),
        row(
            f"{name} {tag} value vs CPU float64 (first image)",
            f"rel diff {rel:.1e}",
            f"rtol {rtol:g}",
            rel <= rtol,
            device_value=dev,
            cpu_value=cpu,
            rel_diff=rel,
        ),
    ]
    return rows, ms.median_ms, mem


def loss_rows(ctx: Context, shape: tuple[int, int, int, int], dtype: torch.dtype) -> list[dict]:
    """Time, memory and CPU agreement of CE and Square AUC at one shape and logits dtype."""
    logits, target = loss_inputs(shape, ctx.device, dtype)
    tag = f"{tuple(shape)} {'bf16' if dtype == torch.bfloat16 else 'fp32'}"
    rows, ce_ms, _ = one_loss_rows(ctx, "F.cross_entropy", cross_entropy, logits, target, tag)
    auc = SquareAUCLoss(shape[1])
    auc_rows, auc_ms, auc_mem = one_loss_rows(ctx, "SquareAUCLoss ovo", auc, logits, target, tag)
    ratio, mem_ratio = auc_ms / ce_ms, auc_mem / (logits.numel() * logits.element_size())
    return [
        *rows,
        *auc_rows,
        row(
            f"SquareAUCLoss / CE time {tag}",
            f"{ratio:.2f}x",
            "<= 1.5x",
            ctx.target(ratio <= 1.5),
            ratio=ratio,
        ),
        row(
            f"SquareAUCLoss peak extra memory {tag}",
            f"{mem_ratio:.2f}x logits",
            "<= 1.5x logits",
            ctx.target(mem_ratio <= 1.5),
            ratio=mem_ratio,
        ),
    ]


def section_loss(ctx: Context, rows: list[dict]) -> None:
    """Every loss shape in fp32 and bf16."""
    for shape in ctx.plan.loss_shapes:
        for dtype in (torch.float32, torch.bfloat16):
            ctx.require()
            rows.extend(loss_rows(ctx, shape, dtype))
            free_device_memory(ctx.device)


# ----------------------------------------------------------------------------- memory bank

BANK_SETTINGS = {  # official settings of the two datasets (spec): classes, p_sample, p_resize
    "ADE20K settings": (150, 0.05, 0.4),
    "Cityscapes settings": (19, 1.0, 1.0),
}


def bank_row(ctx: Context, name: str, classes: int, p_sample: float, p_resize: float) -> dict:
    """ms per batch of a filled BatchTMemoryBank on the device, and pastes per batch."""
    p = ctx.plan
    items = generated_items(4 * p.bank_batch, p.bank_size, p.bank_size, classes)
    batches = [
        (
            torch.stack([d["image"] for d in items[i : i + p.bank_batch]]).to(ctx.device),
            torch.stack([d["label"] for d in items[i : i + p.bank_batch]]).to(ctx.device),
        )
        for i in range(0, len(items), p.bank_batch)
    ]
    bank = BatchTMemoryBank(
        classes, tail_for(classes), memory_size=5, p_sample=p_sample, p_resize=p_resize, seed=0
    )
    for images, labels in batches:  # fill: the bank is timed in its steady state
        bank(images.clone(), labels.clone())
    bank.reset_stats()
    calls = iter(range(10**9))

    def one_call() -> None:
        images, labels = batches[next(calls) % len(batches)]
        bank(images.clone(), labels.clone())

    def clone_only() -> None:
        images, labels = batches[next(calls) % len(batches)]
        images.clone(), labels.clone()

    t_bank = time_call(one_call, ctx.device, 0, p.bank_repeats).median_ms
    t_clone = time_call(clone_only, ctx.device, 0, p.bank_repeats).median_ms
    stats = bank.stats()
    ms, pastes = max(t_bank - t_clone, 0.0), stats["pastes"] / p.bank_repeats
    shape = f"B={p.bank_batch}, {p.bank_size}x{p.bank_size}"
    return row(
        f"BatchTMemoryBank, {name} ({shape})",
        f"{ms:.2f} ms/batch, {pastes:.2f} pastes",
        "",
        None,
        ms_per_batch=ms,
        pastes_per_batch=pastes,
        entries=stats["entries"],
        memory_bytes=stats["memory_bytes"],
    )


def section_memory_bank(ctx: Context, rows: list[dict]) -> None:
    """The bank with the ADE20K and the Cityscapes settings."""
    for name, (classes, p_sample, p_resize) in BANK_SETTINGS.items():
        ctx.require()
        rows.append(bank_row(ctx, name, classes, p_sample, p_resize))


# ----------------------------------------------------------------------------- training step


def section_train_step(ctx: Context, rows: list[dict]) -> None:
    """CE against AUCSeg through the Trainer: ms/iter, peak memory, overheads."""
    p = ctx.plan
    ade = p.classes == 150  # official ADE20K: Square AUC weight 4, p_sample 0.05, p_resize 0.4
    bank_kw = {"p_sample": 0.05, "p_resize": 0.4} if ade else {}
    ce, auc, bank = aucseg_parts(
        p.classes, tail_for(p.classes), ctx.device, auc_weight=4.0 if ade else 1.0, **bank_kw
    )
    data = InMemory(generated_items(p.images, p.size, p.size, p.classes))
    torch.manual_seed(0)
    model = make_model(p.model, p.classes).to(ctx.device)
    fill_bank(bank, data, p.batch, ctx.device)
    run_kw = {"batch": p.batch, "warmup": p.warmup, "iters": p.iters, "device": ctx.device}
    configs = {"CE": (ce, None), "AUCSeg": (auc, bank)}
    with contextlib.redirect_stdout(sys.stderr):  # per-round progress lines
        res = alternate_rounds(model, configs, data, p.rounds, amp=ctx.amp, **run_kw)
    del model
    free_device_memory(ctx.device)
    tag = f"{p.model}, {p.size}x{p.size}, batch {p.batch}, {ctx.amp}"
    for name in configs:
        ms = 1e3 * float(np.median(res[name]["s"]))
        peaks = [m for m in res[name]["peak"] if m is not None]
        peak = f", peak {max(peaks):.0f} MiB" if peaks else ""
        rows.append(
            row(
                f"{name} step ({tag})",
                f"{ms:.1f} ms/iter{peak}",
                "",
                None,
                ms=ms,
                peak_mib=max(peaks) if peaks else None,
            )
        )
    ratios = [a / c for a, c in zip(res["AUCSeg"]["s"], res["CE"]["s"], strict=True)]
    time_over = 100 * (float(np.median(ratios)) - 1)
    rows.append(
        row(
            "AUCSeg time overhead (median of per-round ratios)",
            f"{time_over:+.1f} %",
            "<= 5 %",
            ctx.target(time_over <= 5),
            percent=time_over,
        )
    )
    if ctx.device.type == "cuda":
        mem_over = 100 * (max(res["AUCSeg"]["peak"]) / max(res["CE"]["peak"]) - 1)
        rows.append(
            row(
                "AUCSeg peak-memory overhead",
                f"{mem_over:+.1f} % (paper: +16.3 %)",
                "<= 5 %",
                ctx.target(mem_over <= 5),
                percent=mem_over,
            )
        )


# ----------------------------------------------------------------------------- inference


def section_inference(ctx: Context, rows: list[dict]) -> None:
    """Images/s of whole and slide inference (float32, as ``aucseg test``)."""
    p = ctx.plan
    torch.manual_seed(0)
    model = make_model(p.model, p.classes).to(ctx.device).eval()
    cases = {
        f"whole {p.whole_hw[0]}x{p.whole_hw[1]}": (p.whole_hw, {"mode": "whole"}),
        f"slide {p.slide_hw[0]}x{p.slide_hw[1]}, crop {p.slide_crop}, stride {p.slide_stride}": (
            p.slide_hw,
            {"mode": "slide", "crop_size": p.slide_crop, "stride": p.slide_stride},
        ),
    }
    for name, (hw, kw) in cases.items():
        ctx.require()
        image = torch.randn(1, 3, *hw, device=ctx.device)

        def run(image=image, hw=hw, kw=kw) -> None:
            with torch.inference_mode():
                inference(model, image, hw, num_classes=p.classes, **kw)

        seconds = time_call(run, ctx.device, 1, p.infer_repeats).median
        rows.append(
            row(
                f"inference {p.model}, {name}, fp32",
                f"{1 / seconds:.2f} images/s",
                "",
                None,
                images_per_s=1 / seconds,
            )
        )


# ----------------------------------------------------------------------------- runtime options


def section_runtime_options(ctx: Context, rows: list[dict]) -> None:
    """``runtime.channels_last`` against the default layout: train step and inference, paired
    rounds (``benchmarks/runtime_options.py``; compilation is left to that script)."""
    p = ctx.plan
    values = {"model": p.model, "size": p.size, "batch": p.batch, "classes": p.classes,
              "amp": ctx.amp, "device": ctx.device, "warmup": p.warmup, "iters": p.iters,
              "rounds": p.rounds}  # fmt: skip
    args = runtime_options.parse_args([f"--{k}={v}" for k, v in values.items()])
    torch.manual_seed(0)
    init = make_model(p.model, p.classes)
    cands = [runtime_options.setup(init, name, args) for name in ("baseline", "channels_last")]
    for r in range(p.rounds):
        for cand in cands if r % 2 == 0 else cands[::-1]:
            runtime_options.measure_round(cand, args)
    base, cl = cands
    tag = f"{p.model}, {p.size}x{p.size}"
    for what, key in (("train step", "train_ms"), ("inference", "infer_ms")):
        ratio = runtime_options.paired_ratio(getattr(cl, key), getattr(base, key))
        ms = [float(np.median(getattr(c, key))) for c in cands]
        value = f"{ratio:.3f}x ({ms[1]:.1f} against {ms[0]:.1f} ms)"
        rows.append(row(f"channels_last / default, {what} ({tag}, {ctx.amp})", value, ratio=ratio))


# ----------------------------------------------------------------------------- host syncs


def _tensors(values: Any) -> list[torch.Tensor]:
    """The tensors in ``values`` and in the lists, tuples and dicts it holds (one level)."""
    found = []
    for value in values if isinstance(values, (list, tuple)) else [values]:
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, torch.Tensor))
        elif isinstance(value, dict):
            found.extend(v for v in value.values() if isinstance(v, torch.Tensor))
    return found


def _caller() -> str:
    """``folder/file.py:line`` of the innermost frame outside torch and this script."""
    frame = sys._getframe(2)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if "torch" not in path.parts and path.name != Path(__file__).name:
            return f"{path.parent.name}/{path.name}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


class HostSyncCounter(TorchFunctionMode):
    """Counts the torch calls that would synchronise the host with a GPU (CPU runs).

    A call counts when it is one of :data:`SYNC_NAMES` (``item``, ``tolist``, ``__bool__``,
    ``cpu``, ``nonzero``, ...), a boolean-mask ``__getitem__`` (or ``__setitem__`` with a tensor
    value), one-argument ``torch.where`` or ``repeat_interleave`` without ``output_size``, on a
    device tensor. Host tensors are tracked: results of ``cpu()``, factories called without
    ``device=``, and results computed only from host tensors; calls on them do not count. An
    explicit ``.to(device)`` or ``device=`` is taken as the training device. ``paused`` stops the
    observation (the data pipeline runs on the host by design). ``events`` holds one
    ``"name at file:line"`` per counted call.
    """

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.paused = False
        self._host: dict[int, weakref.ref] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not self.paused:
            name = getattr(func, "__name__", "")
            inputs = _tensors(list(args)) + _tensors(list(kwargs.values()))
            if self._synchronises(name, args, kwargs):
                self.events.append(f"{name} at {_caller()}")
            if self._host_result(name, args, kwargs, inputs):
                for t in _tensors(out if isinstance(out, (list, tuple)) else [out]):
                    self._host[id(t)] = weakref.ref(t)
        return out

    def _is_host(self, t: torch.Tensor) -> bool:
        ref = self._host.get(id(t))
        return ref is not None and ref() is t

    def _on_device(self, value: Any) -> bool:
        return isinstance(value, torch.Tensor) and not self._is_host(value)

    def _synchronises(self, name: str, args: tuple, kwargs: dict) -> bool:
        first = args[0] if args else None
        if name in SYNC_NAMES:
            return self._on_device(first)
        if name in ("__getitem__", "__setitem__") and len(args) > 1:
            index = [i for i in _tensors([args[1]]) if i.dtype == torch.bool]
            value_is_tensor = name == "__getitem__" or isinstance(args[2], torch.Tensor)
            return value_is_tensor and any(self._on_device(i) for i in index)
        if name == "where" and len(args) == 1 and not kwargs:
            return self._on_device(first)
        if name == "repeat_interleave" and "output_size" not in kwargs and len(args) > 1:
            return self._on_device(args[1])
        return False

    def _host_result(self, name: str, args: tuple, kwargs: dict, inputs: list) -> bool:
        if name == "cpu":
            return True
        moved = name == "cuda" or kwargs.get("device") is not None
        if name == "to" and len(args) > 1 and isinstance(args[1], (torch.device, str)):
            moved = True
        if moved:
            return False
        return all(self._is_host(t) for t in inputs)  # True for factories without device=


class StepMarks(HookBase):
    """First hook of the trainer: marks where each step's events start in ``events``."""

    def __init__(self) -> None:
        self.events: list = []
        self.marks: list[tuple[int, int]] = []  # (iteration the step completes, first event)

    def before_step(self) -> None:
        """Mark the start of the step."""
        self.marks.append((self.trainer.iteration + 1, len(self.events)))

    def per_step(self, describe: Callable[[Any], str | None]) -> dict[int, list[str]]:
        """``{iteration: [description of each sync event of that step]}``."""
        ends = [start for _, start in self.marks[1:]] + [len(self.events)]
        out = {}
        for (iteration, start), end in zip(self.marks, ends, strict=True):
            found = (describe(e) for e in self.events[start:end])
            out[iteration] = [d for d in found if d is not None]
        return out


def _describe_warning(w: warnings.WarningMessage) -> str | None:
    if "synchroniz" not in str(w.message):
        return None
    return f"{Path(w.filename).parent.name}/{Path(w.filename).name}:{w.lineno}"


def _paused_data(data: Callable, counter: HostSyncCounter) -> Callable:
    """``trainer.data`` whose batch fetching the counter does not observe."""

    def stream(consumed: int) -> Iterator[dict]:
        batches = iter(data(consumed))
        while True:
            counter.paused = True
            try:
                batch = next(batches, None)
            finally:
                counter.paused = False
            if batch is None:
                return
            yield batch

    return stream


def sync_events(ctx: Context, trainer: Any) -> dict[int, list[str]]:
    """Train ``trainer`` to its end and return the synchronisations of every step."""
    marks = StepMarks()
    marks.trainer = trainer
    trainer.hooks.insert(0, marks)  # first: its before_step opens each step
    if ctx.device.type == "cuda":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            marks.events = caught
            torch.cuda.set_sync_debug_mode("warn")
            try:
                trainer.train()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return marks.per_step(_describe_warning)
    counter = HostSyncCounter()
    marks.events = counter.events
    trainer.data = _paused_data(trainer.data, counter)
    with counter:
        trainer.train()
    return marks.per_step(lambda e: e)


def data_overrides(ctx: Context, root: Path) -> list[str]:
    """``--set`` values for the generated data at the plan's CLI size."""
    h, w = ctx.plan.cli_hw
    return [
        f"data.root={root}",
        "data.num_workers=0",
        f"data.batch_size={ctx.plan.batch}",
        f"data.crop_size=[{h},{h}]",
        f"data.img_scale=[{w},{h}]",
        f"runtime.device={ctx.device.type}",
        "runtime.tensorboard=false",
        "runtime.progress=false",
    ]


def generated_root(ctx: Context) -> Path:
    """A generated Cityscapes-layout set at the plan's CLI size (made once per run)."""
    root = ctx.tmp / "synthetic"
    if not root.is_dir():
        h, w = ctx.plan.cli_hw
        make_synthetic(root, num_train=ctx.plan.cli_images, num_val=2, height=h, width=w)
    return root


def sync_rows(ctx: Context, config: str, limit: int) -> list[dict]:
    """Host syncs per step of the trainer of ``config`` (first and log steps reported apart)."""
    steps = ctx.plan.sync_steps
    work = ctx.tmp / f"syncs_{config}"
    overrides = [
        *data_overrides(ctx, generated_root(ctx)),
        f"schedule.max_iters={steps}",
        "schedule.warmup_iters=1",
        "evaluation.interval=0",
        f"runtime.log_interval={steps}",
        f"runtime.checkpoint_interval={steps}",
        f"runtime.amp={ctx.amp}",
    ]
    cfg, _ = train_config(CONFIGS / f"{config}.yaml", work, overrides)
    per_step = sync_events(ctx, build_trainer(cfg, work, ctx.device, resume=False)[0])
    plain = {it: ev for it, ev in per_step.items() if 1 < it < steps}
    counts = [len(ev) for ev in plain.values()]
    where = sorted({e for ev in plain.values() for e in ev})
    value = (
        f"max {max(counts)}, mean {np.mean(counts):.1f} over steps 2-{steps - 1} "
        f"(first step {len(per_step[1])}, log step {len(per_step[steps])})"
    )
    method = "sync_debug_mode" if ctx.device.type == "cuda" else "TorchFunctionMode"
    return [
        row(
            f"host syncs per step, {config} ({method})",
            value,
            f"<= {limit}",
            max(counts) <= limit,
            per_step={str(k): v for k, v in per_step.items()},
            sync_sites=where,
        )
    ]


def section_host_syncs(ctx: Context, rows: list[dict]) -> None:
    """Syncs per step of the AUCSeg and the CE synthetic configs."""
    if ctx.plan.sync_steps < 3:
        raise SkipSection("needs >= 3 steps (first, plain, log)")
    for config, limit in (("synthetic_aucseg_segnext_t", 1), ("synthetic_ce_segnext_t", 0)):
        ctx.require()
        rows.extend(sync_rows(ctx, config, limit))


# ----------------------------------------------------------------------------- command line


def aucseg_cli(ctx: Context, argv: list[str]) -> subprocess.CompletedProcess:
    """``python -m aucseg ARGV`` with this checkout's ``src`` first on the path."""
    path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-m", "aucseg", *argv],
        cwd=ctx.tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=max(ctx.remaining(), 1.0),
    )


def checkpoint_iteration(path: Path) -> int | None:
    """The ``iteration`` stored in a training checkpoint, or None when there is no file."""
    if not path.is_file():
        return None
    return int(torch.load(path, map_location="cpu", weights_only=True)["iteration"])


def test_miou(path: Path) -> float | None:
    """``mIoU`` of an ``aucseg test --out`` file, or None."""
    if not path.is_file():
        return None
    value = json.loads(path.read_text()).get("mIoU")
    return float(value) if isinstance(value, (int, float)) else None


def cli_step(
    ctx: Context, rows: list[dict], name: str, argv: list[str], check: Callable[[], str | None]
) -> None:
    """Run one command; record it; raise RuntimeError (ending the section) when it failed.

    ``check()`` returns None when the command's result is right, else what is wrong.
    """
    ctx.require()
    start = time.monotonic()
    proc = aucseg_cli(ctx, argv)
    seconds = time.monotonic() - start
    problem = check() if proc.returncode == 0 else None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
        problem = f"exit {proc.returncode}: {last}"
    value = f"{seconds:.1f} s" + (f"; {problem}" if problem else "")
    rows.append(
        row(
            name,
            value,
            "exit 0, expected result",
            problem is None,
            seconds=seconds,
            argv=argv,
            stderr_tail=proc.stderr[-2000:],
        )
    )
    if problem is not None:
        raise RuntimeError(f"{name}: {problem}")


def section_cli(ctx: Context, rows: list[dict]) -> None:
    """make-synthetic, train (half), train --resume (to the end), test; bf16, as subprocesses."""
    p, root, work = ctx.plan, ctx.tmp / "cli_data", ctx.tmp / "cli_run"
    half, h, w = p.cli_iters // 2, *p.cli_hw
    config = str(CONFIGS / "synthetic_aucseg_segnext_t.yaml")
    last = work / "checkpoints" / "last.pth"
    make = [
        "make-synthetic",
        "--root",
        str(root),
        "--num-train",
        str(p.cli_images),
        "--num-val",
        "2",
        "--height",
        str(h),
        "--width",
        str(w),
    ]
    cli_step(
        ctx,
        rows,
        "aucseg make-synthetic",
        make,
        lambda: None if (root / "synthetic.json").is_file() else "no synthetic.json",
    )
    common = [*data_overrides(ctx, root), f"runtime.amp={ctx.amp}", "runtime.log_interval=1"]
    first = [
        f"schedule.max_iters={half}",
        "schedule.warmup_iters=1",
        "evaluation.interval=0",
        f"runtime.checkpoint_interval={half}",
    ]
    train = ["train", config, "--work-dir", str(work), "--set", *common, *first]

    def at(iteration: int) -> Callable[[], str | None]:
        found = checkpoint_iteration
        return lambda: None if found(last) == iteration else f"last.pth at {found(last)}"

    cli_step(ctx, rows, f"aucseg train, {half} iterations, {ctx.amp}", train, at(half))
    resume = [
        "train",
        config,
        "--work-dir",
        str(work),
        "--resume",
        "--set",
        f"schedule.max_iters={p.cli_iters}",
        f"runtime.device={ctx.device.type}",
    ]
    cli_step(ctx, rows, f"aucseg train --resume, to {p.cli_iters}", resume, at(p.cli_iters))
    out = work / "test.json"
    test = ["test", config, str(last), "--out", str(out), "--set", *data_overrides(ctx, root)]
    cli_step(
        ctx,
        rows,
        "aucseg test",
        test,
        lambda: None if test_miou(out) is not None else "no mIoU in --out",
    )


# ----------------------------------------------------------------------------- main

SECTIONS: dict[str, Callable[[Context, list[dict]], None]] = {
    "reference": section_reference,
    "loss": section_loss,
    "memory_bank": section_memory_bank,
    "train_step": section_train_step,
    "inference": section_inference,
    "runtime_options": section_runtime_options,
    "host_syncs": section_host_syncs,
    "cli": section_cli,
}


def run_section(ctx: Context, fn: Callable[[Context, list[dict]], None]) -> dict[str, Any]:
    """Run one section, guarded: ``{"status", "seconds", "rows"}``."""
    rows: list[dict] = []
    start = time.monotonic()
    try:
        ctx.require()
        fn(ctx, rows)
        status = "fail" if any(r["status"] == "FAIL" for r in rows) else "ok"
    except SkipSection as exc:
        status = f"{'partial' if rows else 'skipped'}: {exc}"
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        status = f"error: {type(exc).__name__}: {first}"
    free_device_memory(ctx.device)
    return {"status": status, "seconds": round(time.monotonic() - start, 2), "rows": rows}


def markdown(sections: dict[str, dict[str, Any]]) -> str:
    """The result table: one line per row, plus one per section that is not ``ok``."""
    lines = ["| section | measurement | value | target | status |", "|---|---|---|---|---|"]
    for name, sec in sections.items():
        for r in sec["rows"]:
            cells = [name, r["measurement"], r["value"], r["target"], r["status"]]
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
        if sec["status"] != "ok" or not sec["rows"]:
            word = sec["status"].split(":")[0]
            lines.append(
                f"| {name} | (section, {sec['seconds']:.0f} s) | {sec['status']} | | {word} |"
            )
    return "\n".join(lines)


def metadata(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Machine, versions and settings of the run."""
    meta = {
        "argv": sys.argv[1:],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "torch": torch.__version__,
        "device": str(device),
        "quick": args.quick,
        "budget_s": args.budget,
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()),
    }
    if device.type == "cuda":
        meta["gpu"] = torch.cuda.get_device_name(device)
        meta["cuda"] = torch.version.cuda
        meta["tf32"] = {
            "matmul": torch.backends.cuda.matmul.allow_tf32,
            "cudnn": torch.backends.cudnn.allow_tf32,
        }
    return meta


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--quick", action="store_true", help="small shapes (CPU smoke run)")
    parser.add_argument("--out", default="gpu_check.json", help="JSON result file")
    parser.add_argument("--reference", default=None, help="official reference outputs folder")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds; no section starts after it (default 450, or 300 with --quick)",
    )
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    args.budget = args.budget or (300.0 if args.quick else 450.0)
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {list(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the selected sections, print the table, write the JSON; 0 when all are ok."""
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "--device cuda: no CUDA device is available (use --device cpu --quick)", file=sys.stderr
        )
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device, 0) if args.device == "cuda" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    start, chosen = time.monotonic(), args.sections.split(",")
    sections: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        ctx = Context(
            device,
            QUICK if args.quick else FULL,
            args.quick,
            start + args.budget,
            resolve_reference(args.reference),
            Path(tmp),
        )
        for name, fn in SECTIONS.items():
            if name not in chosen:
                sections[name] = {"status": "skipped: not selected", "seconds": 0, "rows": []}
                continue
            print(f"[gpu_check] {name} ...", file=sys.stderr, flush=True)
            sections[name] = run_section(ctx, fn)
            print(f"[gpu_check] {name}: {sections[name]['status']}", file=sys.stderr, flush=True)
    meta = metadata(args, device) | {"elapsed_s": round(time.monotonic() - start, 1)}
    print(
        f"aucseg gpu_check: {meta.get('gpu', 'cpu')}, torch {meta['torch']}, "
        f"{meta['elapsed_s']:.0f} s\n"
    )
    print(markdown(sections))
    result = {"meta": meta, "sections": sections}
    Path(args.out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0 if all(s["status"] == "ok" for s in sections.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
