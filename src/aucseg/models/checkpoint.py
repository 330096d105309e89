"""Reading, validating and writing checkpoints of every format aucseg accepts.

Accepted: MMSegmentation 0.x/1.x files (``{"meta", "state_dict", "optimizer", ...}``), plain
state_dicts, aucseg checkpoints (``{"model": state_dict, ...}``), ``.safetensors`` files, and
ImageNet backbone files (SegNeXt ``mscan_*.pth``, torchvision ResNet) whose keys sit at top level
and go into ``model.backbone`` with their classifier dropped. Pickled files are read with
``torch.load(weights_only=True)``: files that need code execution are refused. Objects of the
MM* toolboxes' training state (mmengine ``message_hub`` etc.) are read as inert placeholders, so
unpublished MMSegmentation 1.x training checkpoints load too.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "LoadReport",
    "check_state_dict",
    "convert_checkpoint",
    "infer_model",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint_file",
]

_SHOW = 10  # keys listed per category in error messages


@dataclass
class LoadReport:
    """What :func:`load_checkpoint` did.

    Attributes:
        path: the file read.
        kind: detected format: "mmseg", "aucseg", "state_dict" or "safetensors".
        target: "model" (full segmentor) or "backbone" (ImageNet backbone file).
        loaded: number of entries copied into the model.
        missing_keys: model entries absent from the file.
        unexpected_keys: file entries the model does not have.
        mismatched_keys: "key: file shape vs model shape" entries (skipped when not strict).
        dropped_keys: classifier entries of backbone files, ignored on purpose.
        meta: the file's metadata (``meta`` entry or safetensors metadata), possibly empty.
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


def _strip_key(key: str) -> str:
    """Remove DDP (``module.``) and torch.compile (``_orig_mod.``) wrappers from a key."""
    while key.startswith("module."):
        key = key[len("module.") :]
    return key.replace("_orig_mod.", "")


def _clean_state_dict(raw: Mapping[str, Any], path: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"{path}: state_dict entry {key!r} is a {type(value).__name__}, not a tensor; "
                "pass a checkpoint whose state_dict holds tensors only"
            )
        new = _strip_key(str(key))
        if new in out:
            raise ValueError(f"{path}: keys collide after removing 'module.'/'_orig_mod.': {new!r}")
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
    except Exception:  # not a zip checkpoint, or unreadable: keep the first error
        return None
    if not names or not all(n.startswith(_INERT_PREFIXES) for n in names):
        return None
    try:
        with torch.serialization.safe_globals([(_placeholder_for(n), n) for n in names]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # placeholders did not fit: report the original refusal
        return None


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower() or "weights_only" in str(err).lower():
            obj = _load_with_placeholders(path)
            if obj is not None:
                return obj
            raise ValueError(
                f"{path}: refused to load, the file needs code execution to unpickle (it holds "
                f"objects other than tensors and plain containers). Details: {str(err)[:300]}. "
                "Fix: if you trust the file, load it yourself with torch.load(path, "
                "weights_only=False) and torch.save(obj['state_dict']) (or the model's "
                "state_dict) to a new file, then load or 'aucseg convert' that file."
            ) from err
        raise ValueError(f"{path}: not a readable checkpoint (corrupt pickle: {err})") from err
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as err:
        raise ValueError(
            f"{path}: not a readable torch checkpoint ({type(err).__name__}: {str(err)[:200]}); "
            "the file may be truncated or corrupt: download or save it again"
        ) from err


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
            metadata = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(
            f"{path}: not a readable safetensors file ({type(err).__name__}: {str(err)[:200]}); "
            "the file may be truncated or corrupt: write it again"
        ) from err
    meta: dict[str, Any] = dict(metadata)
    if "aucseg_meta" in metadata:
        meta = json.loads(metadata["aucseg_meta"])
    return tensors, meta


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], str, dict[str, Any]]:
    """Read the model state_dict out of any accepted checkpoint file.

    Args:
        path: file to read.

    Returns:
        ``(state_dict, kind, meta)``: keys stripped of ``module.``/``_orig_mod.``; kind is
        "safetensors", "mmseg", "aucseg" or "state_dict"; meta is the file's metadata.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable, truncated, code-executing, or of an unknown layout.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}; check the path")
    if path.suffix == ".safetensors":
        tensors, meta = _read_safetensors(path)
        return _clean_state_dict(tensors, path), "safetensors", meta
    obj = _torch_load(path)
    if not isinstance(obj, Mapping):
        raise ValueError(
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
    raise ValueError(
        f"{path}: unknown checkpoint layout with top-level keys {sorted(map(str, obj))[:_SHOW]}; "
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


def _listing(title: str, keys: list[str]) -> str:
    more = f", ... ({len(keys) - _SHOW} more)" if len(keys) > _SHOW else ""
    return f"\n  {title} ({len(keys)}): " + ", ".join(keys[:_SHOW]) + more


def _mismatch_error(path: Path, kind: str, target: str, module: nn.Module, problems: tuple) -> str:
    missing, unexpected, mismatched = problems
    msg = f"checkpoint {path} ({kind}) does not match the {type(module).__name__} {target}:"
    if missing:
        msg += _listing("missing in the checkpoint", missing)
    if unexpected:
        msg += _listing("unexpected in the checkpoint", unexpected)
    if mismatched:
        msg += _listing("shape mismatch", mismatched)
    return msg + (
        "\n  Fix: build the model the checkpoint was trained as (model name and num_classes, see "
        "'aucseg convert' which infers them), or pass strict=False to load the matching entries."
    )


def _select_target(
    model: nn.Module, state_dict: dict[str, torch.Tensor]
) -> tuple[str, nn.Module, dict[str, torch.Tensor], list[str]]:
    """Full-model file, or backbone-only file (no key under one of the model's children)?"""
    children = {name for name, _ in model.named_children()}
    backbone = getattr(model, "backbone", None)
    if backbone is None or any(k.split(".", 1)[0] in children for k in state_dict):
        return "model", model, state_dict, []
    prefixes = tuple(getattr(backbone, "classifier_prefixes", ()))
    dropped = [k for k in state_dict if prefixes and k.startswith(prefixes)]
    kept = {k: v for k, v in state_dict.items() if not (prefixes and k.startswith(prefixes))}
    return "backbone", backbone, kept, dropped


def load_checkpoint(model: nn.Module, path: str | Path, strict: bool = True) -> LoadReport:
    """Load any accepted checkpoint into ``model`` (or into ``model.backbone`` for backbone files).

    Args:
        model: the segmentor (unwrapped, or DDP/compiled: keys are matched without wrappers).
        path: checkpoint file (see the module docstring for the formats).
        strict: raise on any missing, unexpected or mis-shaped entry; when False, load the
            entries that match and report the rest.

    Returns:
        A :class:`LoadReport`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable file, or (strict) keys/shapes that do not match, all listed.
    """
    path = Path(path)
    state_dict, kind, meta = read_checkpoint(path)
    while isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
        model = model.module
    model = getattr(model, "_orig_mod", model)
    target, module, state_dict, dropped = _select_target(model, state_dict)
    missing, unexpected, mismatched = check_state_dict(module, state_dict)
    if strict and (missing or unexpected or mismatched):
        raise ValueError(
            _mismatch_error(path, kind, target, module, (missing, unexpected, mismatched))
        )
    skip = {m.split(":", 1)[0] for m in mismatched} | set(unexpected)
    usable = {k: v for k, v in state_dict.items() if k not in skip}
    module.load_state_dict(usable, strict=False)
    return LoadReport(
        str(path), kind, target, len(usable), missing, unexpected, mismatched, dropped, meta
    )


def _head_classes(state_dict: Mapping[str, torch.Tensor]) -> int | None:
    """Rows of ``decode_head.conv_seg.weight`` (the class count), None without a head."""
    seg = state_dict.get("decode_head.conv_seg.weight")
    return int(seg.shape[0]) if seg is not None else None


def infer_model(state_dict: Mapping[str, torch.Tensor]) -> tuple[str, int | None]:
    """Find the registered model whose layout a state_dict has exactly.

    Models are built on the ``meta`` device (no memory, no initialisation cost).

    Returns:
        ``(name, num_classes)``; num_classes is None for a backbone-only state_dict.

    Raises:
        ValueError: no registered model matches; the message lists the closest one.
    """
    from aucseg.models.registry import MODELS, build_model

    num_classes = _head_classes(state_dict)
    best: tuple[int, str] | None = None
    for name in MODELS:
        with torch.device("meta"):
            model = build_model(name, num_classes or 1)
        target, module, sd, _ = _select_target(model, dict(state_dict))
        problems = sum(len(p) for p in check_state_dict(module, sd))
        if problems == 0:
            return name, (num_classes if target == "model" else None)
        if best is None or problems < best[0]:
            best = (problems, name)
    assert best is not None
    raise ValueError(
        f"the state_dict ({len(state_dict)} entries) matches no registered model; closest is "
        f"{best[1]!r} with {best[0]} differing entries. Pass the model name explicitly to see them"
    )


def save_checkpoint_file(
    state_dict: Mapping[str, torch.Tensor], path: str | Path, meta: Mapping[str, Any] | None = None
) -> Path:
    """Write a clean checkpoint atomically (temporary file, then rename).

    ``.safetensors`` suffix: a safetensors file whose metadata ``aucseg_meta`` holds ``meta`` as
    JSON. Any other suffix: a torch file ``{"model": state_dict, "meta": meta}``.

    Returns:
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(tensors, tmp, metadata={"aucseg_meta": json.dumps(meta, default=str)})
        else:
            torch.save({"model": tensors, "meta": meta}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def convert_checkpoint(
    src: str | Path,
    dst: str | Path,
    model_name: str | None = None,
    num_classes: int | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Rewrite any accepted checkpoint as a clean aucseg file, validated against its model.

    Args:
        src: input checkpoint (any accepted format).
        dst: output; ``.safetensors`` suffix writes safetensors, anything else a torch file
            ``{"model": state_dict, "meta": {...}}``.
        model_name: registered model the weights belong to; inferred from the keys when None.
        num_classes: classes of the model; inferred from ``decode_head.conv_seg`` when None.

    Returns:
        ``(dst, meta)`` with meta holding model, num_classes, target, source and source_kind.

    Raises:
        FileNotFoundError: ``src`` does not exist.
        ValueError: unreadable file, or keys/shapes that do not match the model (all listed).
    """
    from aucseg.models.registry import build_model

    src = Path(src)
    state_dict, kind, source_meta = read_checkpoint(src)
    if model_name is None:
        model_name, _ = infer_model(state_dict)
    if num_classes is None:
        num_classes = _head_classes(state_dict) or 1  # no conv_seg in the file: any count
    with torch.device("meta"):
        model = build_model(model_name, num_classes)
    target, module, state_dict, _ = _select_target(model, state_dict)
    problems = check_state_dict(module, state_dict)
    if any(problems):
        raise ValueError(_mismatch_error(src, kind, target, module, problems))
    ordered = {k: state_dict[k] for k in module.state_dict()}
    meta: dict[str, Any] = {
        "model": model_name,
        "num_classes": num_classes if target == "model" else None,
        "target": target,
        "source": src.name,
        "source_kind": kind,
    }
    if isinstance(source_meta.get("CLASSES"), list | tuple):
        meta["classes"] = [str(c) for c in source_meta["CLASSES"]]
    return save_checkpoint_file(ordered, dst, meta), meta
