"""Hugging Face ``transformers`` semantic-segmentation models (SegFormer, UperNet, DPT, ...).

``transformers`` is an optional dependency (``pip install aucseg[hf]``), imported only when such
a model is built. Weights come from a local directory only (``config.json`` + weights, as written
by ``save_pretrained`` or ``hf download REPO --local-dir DIR``); nothing is downloaded here.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import torch

from aucseg.errors import InputError
from aucseg.models.adapter import SegmentorAdapter

__all__ = ["huggingface"]

EXAMPLE_REPO = "nvidia/segformer-b0-finetuned-ade-512-512"


def _import_transformers() -> ModuleType:
    try:
        import transformers  # optional and heavy: imported only for these models
    except ImportError as err:
        raise InputError(
            f"model 'huggingface' needs the transformers package ({err}); install it with "
            "pip install aucseg[hf] (or pip install transformers)"
        ) from err
    return transformers


def _check_source(source: str) -> Path:
    path = Path(source).expanduser()
    if not (path / "config.json").is_file():
        raise InputError(
            f"model 'huggingface': source={source!r} is not a directory holding a Hugging Face "
            f"model (no config.json there); download one once with "
            f"hf download {EXAMPLE_REPO} --local-dir {source} (older huggingface_hub: "
            "huggingface-cli download ...), or save_pretrained() a model there"
        )
    return path


def huggingface(num_classes: int, source: str) -> SegmentorAdapter:
    """A ``transformers`` semantic-segmentation model loaded from a local directory.

    When the saved head predicts a different number of classes, the classifier is
    re-initialised with ``num_classes`` outputs (``ignore_mismatched_sizes``); every other
    weight is loaded. ``from_pretrained`` returns the model in eval mode; the trainer switches
    it to train mode. Under ``with torch.device("meta")`` the model is built from its config
    without weights (the layout only, as the other factories there).

    Args:
        num_classes: classes to predict.
        source: directory with ``config.json`` and the weights (``model.safetensors``).

    Returns:
        The model in a :class:`SegmentorAdapter` (logits upsampled to the input size); its
        state_dict entries read ``model.<transformers key>``.

    Raises:
        InputError: transformers missing, no model at ``source``, or a model that is not a
            semantic-segmentation model.
    """
    path = _check_source(source)
    transformers = _import_transformers()
    try:
        config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
        kwargs: dict[str, object] = {}
        if config.num_labels != num_classes:
            # id2label sets num_labels; passing num_labels too makes transformers warn that
            # it disagrees with the saved id2label.
            labels = {i: f"class_{i}" for i in range(num_classes)}
            kwargs = {
                "id2label": labels,
                "label2id": {v: k for k, v in labels.items()},
                "ignore_mismatched_sizes": True,
            }
        auto = transformers.AutoModelForSemanticSegmentation
        if torch.empty(()).device.type == "meta":  # from_pretrained refuses the meta device
            kwargs.pop("ignore_mismatched_sizes", None)
            model = auto.from_config(config.__class__.from_dict({**config.to_dict(), **kwargs}))
        else:
            model = auto.from_pretrained(path, local_files_only=True, **kwargs)
    except (OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        raise InputError(
            f"model 'huggingface': could not load a semantic-segmentation model from {source!r} "
            f"({type(err).__name__}: {first}); use a directory written by save_pretrained or "
            f"hf download of a *ForSemanticSegmentation model such as {EXAMPLE_REPO}"
        ) from err
    return SegmentorAdapter(model, num_classes)
