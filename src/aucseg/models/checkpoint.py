"""Checkpoint files: reading every accepted format, comparing with a model, writing clean files.

Accepted: MMSegmentation 0.x/1.x files (``{"meta", "state_dict", "optimizer", ...}``), plain
state_dicts, aucseg checkpoints (``{"model": state_dict, "config": ..., ...}``), ``.safetensors``
files, and ImageNet backbone files (SegNeXt ``mscan_*.pth``, torchvision ResNet) whose keys sit
at top level and go into ``model.backbone`` with their classifier dropped. Pickled files are read
with ``torch.load(weights_only=True)``: files that need code execution are refused. Objects of
the MM* toolboxes' training state (mmengine ``message_hub`` etc.) are read as inert placeholders,
so unpublished MMSegmentation 1.x training checkpoints load too.

This module knows no model names; :mod:`aucseg.models.loading` matches files against the
registry. Every unusable file raises :class:`~aucseg.errors.CheckpointError` with one line.
"""

from __future__ import annotations

import json
import pickle
import re
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_safetensors
from torch import nn

from aucseg.errors import CheckpointError
from aucseg.fileio import atomic_write, write_bytes_atomic
from aucseg.models.adapter import SegmentorAdapter

__all__ = [
    "CheckpointMatch",
    "LoadReport",
    "apply_match",
    "check_state_dict",
    "load_pretrained",
    "match_checkpoint",
    "match_state_dict",
    "mismatch_summary",
    "read_checkpoint",
    "save_checkpoint_file",
    "split_target",
    "unwrap_model",
]


@dataclass
class LoadReport:
    """What a load did.

    Attributes:
        path: the file read.
        kind: detected format: "mmseg", "aucseg", "state_dict" or "safetensors".
        target: "model" (full segmentor) or "backbone" (ImageNet backbone file).
        loaded: number of entries copied into the model.
        missing_keys: model entries absent from the file.
        unexpected_keys: file entries the model does not have.
        mismatched_keys: "key: file shape vs model shape" entries (skipped when not strict).
        dropped_keys: classifier entries of backbone files, ignored on purpose.
        meta: the file's metadata (``meta`` entry or safetensors metadata, with the aucseg
            ``config`` and ``iteration`` when present), possibly empty.
    """

    path: str
    kind: str
    target: str
    loaded: int
    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    mismatched_keys: list[str] = field(default_factory=list)
    dropped_keys: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def _one_line(text: object, limit: int = 200) -> str:
    return " ".join(str(text).split())[:limit]


def _strip_key(key: str) -> str:
    """Remove DDP (``module.``) and torch.compile (``_orig_mod.``) wrappers from a key."""
    while key.startswith("module."):
        key = key[len("module.") :]
    return key.replace("_orig_mod.", "")


def _clean_state_dict(raw: Mapping[str, Any], path: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path}: state_dict entry {key!r} is a {type(value).__name__}, not a tensor; "
                "pass a checkpoint whose state_dict holds tensors only"
            )
        new = _strip_key(str(key))
        if new in out:
            raise CheckpointError(
                f"{path}: keys collide after removing 'module.'/'_orig_mod.': {new!r}; "
                "save the unwrapped model's state_dict"
            )
        out[new] = value
    return out


# Training-state objects of the MM* toolboxes (e.g. mmengine's HistoryBuffer in "message_hub",
# numpy arrays inside it) are replaced by inert placeholders: the state_dict is all we read.
_INERT_PREFIXES = ("mmengine.", "mmcv.", "mmseg.", "numpy.")


class _Placeholder:
    """Stands in for an object of a foreign class; runs none of that class's code."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Placeholder:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _placeholder_for(name: str) -> type:
    return type(name.rsplit(".", 1)[-1], (_Placeholder,), {"__module__": "aucseg.placeholder"})


def _load_with_placeholders(path: Path) -> Any | None:
    """Retry a weights-only load when every foreign global is an MM*/numpy training object."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (RuntimeError, ValueError, OSError, pickle.UnpicklingError, EOFError):
        return None  # not a zip checkpoint, or unreadable: keep the first error
    if not names or not all(n.startswith(_INERT_PREFIXES) for n in names):
        return None
    try:
        with torch.serialization.safe_globals([(_placeholder_for(n), n) for n in names]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, TypeError, AttributeError):
        return None  # placeholders did not fit: report the original refusal


def _refused(path: Path, err: Exception) -> CheckpointError:
    names = sorted(set(re.findall(r"GLOBAL (\S+) was not", str(err))))
    what = ", ".join(names) or "objects other than tensors and plain containers"
    return CheckpointError(
        f"{path}: refused to load, unpickling it would run code ({what}); if you trust the file, "
        "re-save its weights: torch.save(torch.load(path, weights_only=False)['state_dict'], "
        "'clean.pth'), then load or 'aucseg convert' clean.pth"
    )


# What torch's weights-only unpickler raises on a pickle cut short.
_ENDS_EARLY = (EOFError, IndexError, struct.error)
# What torch.load raises on bytes that are no checkpoint (besides UnpicklingError).
_LOAD_ERRORS = (RuntimeError, OSError, ValueError, KeyError, zipfile.BadZipFile, *_ENDS_EARLY)


def _unreadable(path: Path, err: Exception) -> CheckpointError:
    """Name what the file is, from its first bytes, and how to get a usable one."""
    with path.open("rb") as f:
        head = f.read(8)
    cause = f"{type(err).__name__}: {_one_line(err, 120)}"
    if not head:
        what = "is empty"
    elif head.startswith(b"PK\x03\x04"):
        what = f"is a damaged torch (zip) checkpoint, truncated or corrupt ({cause})"
    elif head[:1] == b"\x80" and isinstance(err, _ENDS_EARLY):
        what = "is a truncated or corrupt pickled checkpoint (it ends early)"
    elif head[:1] == b"\x80":
        what = f"is a pickle but not a torch checkpoint of tensors ({cause})"
    else:
        what = f"is not a checkpoint (it starts with {head!r})"
    return CheckpointError(
        f"{path} {what}; pass a file written by torch.save or safetensors (download or save it "
        "again if it was cut short)"
    )


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" not in str(err):
            raise _unreadable(path, err) from err
        obj = _load_with_placeholders(path)
        if obj is None:
            raise _refused(path, err) from err
        return obj
    except _LOAD_ERRORS as err:
        raise _unreadable(path, err) from err


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
            metadata = f.metadata() or {}
        meta: dict[str, Any] = dict(metadata)
        if "aucseg_meta" in metadata:
            meta = json.loads(metadata["aucseg_meta"])
        if "aucseg_config" in metadata:
            meta["config"] = json.loads(metadata["aucseg_config"])
    except (SafetensorError, OSError, ValueError) as err:  # JSONDecodeError is a ValueError
        raise CheckpointError(
            f"{path}: not a readable safetensors file, truncated or corrupt "
            f"({type(err).__name__}: {_one_line(err, 120)}); write or download it again"
        ) from err
    return tensors, meta


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], str, dict[str, Any]]:
    """Read the model state_dict out of any accepted checkpoint file.

    Args:
        path: file to read.

    Returns:
        ``(state_dict, kind, meta)``: keys stripped of ``module.``/``_orig_mod.``; kind is
        "safetensors", "mmseg", "aucseg" or "state_dict"; meta is the file's metadata, with
        the aucseg ``config`` (a dict) and ``iteration`` when the file has them.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable, truncated, code-executing, not a checkpoint, or of an
            unknown layout.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}; check the path")
    if path.suffix == ".safetensors":
        tensors, meta = _read_safetensors(path)
        return _clean_state_dict(tensors, path), "safetensors", meta
    obj = _torch_load(path)
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path}: holds a {type(obj).__name__}, expected a dict (a state_dict or a "
            "checkpoint dict with 'state_dict' or 'model'); save model.state_dict() instead"
        )
    if isinstance(obj.get("state_dict"), Mapping):
        meta = obj.get("meta") if isinstance(obj.get("meta"), Mapping) else {}
        return _clean_state_dict(obj["state_dict"], path), "mmseg", dict(meta)
    if isinstance(obj.get("model"), Mapping):
        meta = dict(obj["meta"]) if isinstance(obj.get("meta"), Mapping) else {}
        for key in ("iteration", "config"):
            if key in obj:
                meta.setdefault(key, obj[key])
        return _clean_state_dict(obj["model"], path), "aucseg", meta
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return _clean_state_dict(obj, path), "state_dict", {}
    raise CheckpointError(
        f"{path}: unknown checkpoint layout with top-level keys {sorted(map(str, obj))[:10]}; "
        "expected a state_dict, {'state_dict': ...} (MMSegmentation) or {'model': ...} (aucseg)"
    )


def check_state_dict(
    module: nn.Module, state_dict: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str], list[str]]:
    """Compare a state_dict with a module's, without copying anything.

    Returns:
        ``(missing, unexpected, mismatched)``; mismatched entries read
        ``"key: checkpoint (a, b) vs model (c, d)"``.
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in state_dict.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    return missing, unexpected, mismatched


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module under DDP/DataParallel and ``torch.compile`` wrappers."""
    while isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
        model = model.module
    return getattr(model, "_orig_mod", model)


def split_target(
    model: nn.Module, state_dict: dict[str, torch.Tensor]
) -> tuple[str, nn.Module, dict[str, torch.Tensor], list[str]]:
    """Which part of ``model`` a state_dict is for: the whole model, the bare network inside a
    :class:`SegmentorAdapter` (keys given the ``model.`` prefix), or the backbone (an ImageNet
    file: no key under one of the model's children; its classifier entries are dropped).

    Returns:
        ``(target, module, state_dict keyed as module's, dropped classifier keys)``; target is
        "model" or "backbone".
    """
    children = {name for name, _ in model.named_children()}
    if not state_dict or any(k.split(".", 1)[0] in children for k in state_dict):
        return "model", model, state_dict, []
    if isinstance(model, SegmentorAdapter):  # e.g. a save_pretrained file of the bare network
        return "model", model, {f"model.{k}": v for k, v in state_dict.items()}, []
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        return "model", model, state_dict, []
    prefixes = tuple(getattr(backbone, "classifier_prefixes", ()))
    dropped = [k for k in state_dict if prefixes and k.startswith(prefixes)]
    kept = {k: v for k, v in state_dict.items() if not (prefixes and k.startswith(prefixes))}
    return "backbone", backbone, kept, dropped


@dataclass
class CheckpointMatch:
    """A checkpoint file read and compared with a model; nothing copied yet.

    Attributes:
        path, kind, meta: as :func:`read_checkpoint`.
        target: "model" or "backbone" (the part of the model the file is for).
        module: that part of the (unwrapped) model.
        state_dict: the file's entries, keyed as ``module``'s.
        dropped: classifier entries of backbone files, ignored on purpose.
        missing, unexpected, mismatched: as :func:`check_state_dict`.
    """

    path: Path
    kind: str
    meta: dict[str, Any]
    target: str
    module: nn.Module
    state_dict: dict[str, torch.Tensor]
    dropped: list[str]
    missing: list[str]
    unexpected: list[str]
    mismatched: list[str]

    @property
    def fits(self) -> bool:
        """Every key present on both sides with equal shapes."""
        return not (self.missing or self.unexpected or self.mismatched)


def match_state_dict(
    model: nn.Module,
    state_dict: dict[str, torch.Tensor],
    path: Path,
    kind: str = "state_dict",
    meta: dict[str, Any] | None = None,
) -> CheckpointMatch:
    """Compare a state_dict read from ``path`` with ``model`` (unwrapped; backbone files with
    its backbone)."""
    target, module, state_dict, dropped = split_target(unwrap_model(model), state_dict)
    missing, unexpected, mismatched = check_state_dict(module, state_dict)
    return CheckpointMatch(
        path, kind, meta or {}, target, module, state_dict, dropped, missing, unexpected, mismatched
    )


def match_checkpoint(model: nn.Module, path: str | Path) -> CheckpointMatch:
    """Read ``path`` and compare it with ``model``; see :func:`match_state_dict`.

    Raises:
        FileNotFoundError, CheckpointError: as :func:`read_checkpoint`.
    """
    path = Path(path)
    state_dict, kind, meta = read_checkpoint(path)
    return match_state_dict(model, state_dict, path, kind, meta)


def apply_match(match: CheckpointMatch) -> LoadReport:
    """Copy the entries of ``match`` that fit into its module; the rest keep their values."""
    skip = {m.split(":", 1)[0] for m in match.mismatched} | set(match.unexpected)
    usable = {k: v for k, v in match.state_dict.items() if k not in skip}
    match.module.load_state_dict(usable, strict=False)
    return LoadReport(
        str(match.path),
        match.kind,
        match.target,
        len(usable),
        match.missing,
        match.unexpected,
        match.mismatched,
        match.dropped,
        match.meta,
    )


def load_pretrained(model: nn.Module, path: str | Path) -> LoadReport:
    """Initialise ``model`` from a checkpoint non-strictly, as MMSegmentation's ``Pretrained``
    init: matching entries are copied, the others keep their initialisation (and are reported).

    Raises:
        FileNotFoundError, CheckpointError: as :func:`read_checkpoint`.
    """
    return apply_match(match_checkpoint(model, path))


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def mismatch_summary(match: CheckpointMatch, model_desc: str, hint: str) -> str:
    """One line: how ``match``'s file differs from the model, then ``hint`` (the fix)."""
    parts = []
    if match.missing:
        count = _count(len(match.missing), "missing key", "missing keys")
        parts.append(f"{count} (e.g. {match.missing[0]})")
    if match.unexpected:
        parts.append(f"{len(match.unexpected)} unexpected (e.g. {match.unexpected[0]})")
    if match.mismatched:
        count = _count(len(match.mismatched), "shape mismatch", "shape mismatches")
        more = ", ..." if len(match.mismatched) > 1 else ""
        parts.append(f"{count} ({match.mismatched[0]}{more})")
    where = model_desc if match.target == "model" else f"the backbone of {model_desc}"
    return f"{match.path} does not fit {where}: {', '.join(parts)}; {hint}"


def save_checkpoint_file(
    state_dict: Mapping[str, torch.Tensor],
    path: str | Path,
    meta: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Write a clean checkpoint atomically (temporary file, then rename).

    ``.safetensors`` suffix: a safetensors file whose metadata ``aucseg_meta`` holds ``meta``
    and ``aucseg_config`` holds ``config``, as JSON. Any other suffix: a torch file
    ``{"model": state_dict, "meta": meta}`` plus ``"config": config`` when given, the layout
    of aucseg training checkpoints (so ``aucseg predict`` finds the config).

    Returns:
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    if path.suffix == ".safetensors":
        metadata = {"aucseg_meta": json.dumps(meta, default=str)}
        if config is not None:
            metadata["aucseg_config"] = json.dumps(dict(config), default=str)
        return write_bytes_atomic(path, save_safetensors(tensors, metadata=metadata))
    obj: dict[str, Any] = {"model": tensors, "meta": meta}
    if config is not None:
        obj["config"] = dict(config)
    return atomic_write(path, lambda f: torch.save(obj, f))
