"""Checkpoints meet the registry: which model a file belongs to (:func:`infer_model`), strict
loading that names the model a file fits when it does not fit the one given
(:func:`load_checkpoint`), and conversion to a clean aucseg file (:func:`convert_checkpoint`).

Layering: :mod:`~aucseg.models.checkpoint` (files) <- :mod:`~aucseg.models.registry` (models,
non-strict ``pretrained`` init) <- this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aucseg.errors import CheckpointError
from aucseg.models.adapter import SegmentorAdapter
from aucseg.models.checkpoint import (
    CheckpointMatch,
    LoadReport,
    apply_match,
    check_state_dict,
    match_checkpoint,
    match_state_dict,
    mismatch_summary,
    read_checkpoint,
    save_checkpoint_file,
    split_target,
    unwrap_model,
)
from aucseg.models.registry import build_model, list_models, model_options
from aucseg.models.segmentor import EncoderDecoder

__all__ = ["closest_model", "convert_checkpoint", "infer_model", "load_checkpoint"]

HEAD_KEY = "decode_head.conv_seg.weight"  # rows = classes, in every EncoderDecoder head


def _head_classes(state_dict: Mapping[str, torch.Tensor]) -> int | None:
    """Rows of ``decode_head.conv_seg.weight`` (the class count), None without a head."""
    seg = state_dict.get(HEAD_KEY)
    return int(seg.shape[0]) if seg is not None else None


def _needs_no_options(name: str) -> bool:
    return all(p.default is not p.empty for p in model_options(name).values())


def closest_model(state_dict: Mapping[str, torch.Tensor]) -> tuple[str, int | None, int]:
    """The registered model (default options) whose layout is nearest to ``state_dict``.

    Models are built on the ``meta`` device (no memory, no initialisation cost); models that
    need options (``huggingface``) are skipped.

    Returns:
        ``(name, num_classes, differing entries)``; num_classes is None for a backbone-only
        state_dict; 0 differing entries is an exact match.
    """
    num_classes = _head_classes(state_dict)
    best: tuple[str, int | None, int] | None = None
    for name in filter(_needs_no_options, list_models()):
        with torch.device("meta"):
            model = build_model(name, num_classes or 1)
        target, module, sd, _ = split_target(model, dict(state_dict))
        problems = sum(len(p) for p in check_state_dict(module, sd))
        if best is None or problems < best[2]:
            best = (name, num_classes if target == "model" else None, problems)
        if problems == 0:
            break
    assert best is not None, "the registry holds option-free models"
    return best


def infer_model(state_dict: Mapping[str, torch.Tensor]) -> tuple[str, int | None]:
    """Find the registered model whose layout a state_dict has exactly.

    Returns:
        ``(name, num_classes)``; num_classes is None for a backbone-only state_dict.

    Raises:
        CheckpointError: no registered model matches; the message names the closest one.
    """
    name, num_classes, problems = closest_model(state_dict)
    if problems:
        raise CheckpointError(
            f"the state_dict ({len(state_dict)} entries) matches no registered model; closest "
            f"is {name!r} with {problems} differing entries; pass the model name explicitly "
            "to see them"
        )
    return name, num_classes


def _describe(name: str, num_classes: int | None) -> str:
    return f"{name} ({num_classes} classes)" if num_classes is not None else name


def _looks_like(name: str, num_classes: int | None) -> str:
    return f"{name} with {num_classes} classes" if num_classes is not None else f"a {name} backbone"


def describe_model(model: nn.Module) -> str:
    """``"segnext_tiny (19 classes)"`` for a registered model, else its class name."""
    model = unwrap_model(model)
    classes = getattr(model, "num_classes", None)
    if isinstance(model, EncoderDecoder):
        name, found_classes, problems = closest_model(model.state_dict())
        if problems == 0:
            return _describe(name, found_classes)
    kind = type(model).__name__
    if isinstance(model, SegmentorAdapter):
        kind = f"{kind}({type(model.model).__name__})"
    return f"{kind} ({classes} classes)" if classes is not None else kind


def _hint(match: CheckpointMatch) -> str:
    name, num_classes, problems = closest_model(match.state_dict)
    if problems == 0:
        what = _looks_like(name, num_classes)
        return f"it looks like {what}: build that model or pass the matching config"
    closest = ""
    if problems <= max(2, len(match.state_dict) // 10):  # a near miss, worth naming
        closest = f" (closest: {_looks_like(name, num_classes)}, {problems} entries differ)"
    return (
        f"it matches no registered model exactly{closest}: build the model it was trained as, "
        "or load with strict=False to copy only the matching entries"
    )


def load_checkpoint(model: nn.Module, path: str | Path, strict: bool = True) -> LoadReport:
    """Load any accepted checkpoint into ``model`` (or into ``model.backbone`` for backbone files).

    Args:
        model: the segmentor (unwrapped, or DDP/compiled: keys are matched without wrappers).
        path: checkpoint file (see :mod:`aucseg.models.checkpoint` for the formats).
        strict: raise when any entry is missing, unexpected or mis-shaped; when False, load the
            entries that match and report the rest.

    Returns:
        A :class:`~aucseg.models.checkpoint.LoadReport`.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable file, or (strict) a file that does not fit ``model``: one
            line with the counts, an example of each, and the model the file looks like.
    """
    match = match_checkpoint(model, path)
    if strict and not match.fits:
        raise CheckpointError(mismatch_summary(match, describe_model(model), _hint(match)))
    return apply_match(match)


def convert_checkpoint(
    src: str | Path,
    dst: str | Path,
    model_name: str | None = None,
    num_classes: int | None = None,
    config: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Rewrite any accepted checkpoint as a clean aucseg file, validated against its model.

    Args:
        src: input checkpoint (any accepted format).
        dst: output; ``.safetensors`` suffix writes safetensors, anything else a torch file
            ``{"model": state_dict, "meta": {...}, "config": {...}}``.
        model_name: model the weights belong to (a registered name or an import path);
            inferred from the keys when None.
        num_classes: classes of the model; inferred from ``decode_head.conv_seg`` when None.
        config: aucseg config (plain dict) to store; None keeps the source file's ``config``
            dict if it has one, so ``aucseg predict`` runs on the converted file.
        options: model options for :func:`~aucseg.models.registry.build_model`.

    Returns:
        ``(dst, meta)`` with meta holding model, num_classes, target, source and source_kind.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        CheckpointError: unreadable file, or keys/shapes that do not fit the model.
    """
    src = Path(src)
    state_dict, kind, source_meta = read_checkpoint(src)
    if model_name is None:
        model_name, _ = infer_model(state_dict)
    if num_classes is None:
        num_classes = _head_classes(state_dict) or 1  # no conv_seg in the file: any count
    with torch.device("meta"):
        model = build_model(model_name, num_classes, **dict(options or {}))
    match = match_state_dict(model, state_dict, src, kind, source_meta)
    if not match.fits:
        raise CheckpointError(
            mismatch_summary(
                match,
                _describe(model_name, num_classes if match.target == "model" else None),
                _hint(match),
            )
        )
    ordered = {k: match.state_dict[k] for k in match.module.state_dict()}
    meta: dict[str, Any] = {
        "model": model_name,
        "num_classes": num_classes if match.target == "model" else None,
        "target": match.target,
        "source": src.name,
        "source_kind": kind,
    }
    if options:
        meta["options"] = dict(options)
    if isinstance(source_meta.get("CLASSES"), list | tuple):
        meta["classes"] = [str(c) for c in source_meta["CLASSES"]]
    if config is None and isinstance(source_meta.get("config"), Mapping):
        config = source_meta["config"]
    return save_checkpoint_file(ordered, dst, meta, config), meta
