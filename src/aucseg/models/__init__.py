"""Segmentation models: SegNeXt (MSCAN + LightHamHead), DeepLabV3+ (ResNet), Hugging Face
``transformers`` models and any ``package.module:factory``, with loading of official
MMSegmentation, torchvision, safetensors and aucseg checkpoints."""

from aucseg.models.adapter import SegmentorAdapter, extract_logits
from aucseg.models.checkpoint import (
    LoadReport,
    check_state_dict,
    load_pretrained,
    read_checkpoint,
    save_checkpoint_file,
)
from aucseg.models.deeplab import ASPP, DeepLabV3PlusHead
from aucseg.models.ham_head import NMF2D, Hamburger, LightHamHead
from aucseg.models.huggingface import huggingface
from aucseg.models.loading import closest_model, convert_checkpoint, infer_model, load_checkpoint
from aucseg.models.mscan import MSCAN, mscan_b, mscan_l, mscan_s, mscan_t
from aucseg.models.registry import (
    MODELS,
    build_model,
    build_segnext,
    count_parameters,
    deeplabv3plus_r50,
    deeplabv3plus_r101,
    list_models,
    model_options,
    resolve_model,
    segnext_base,
    segnext_large,
    segnext_small,
    segnext_tiny,
    set_nmf_generator,
)
from aucseg.models.resnet import ResNet, resnet50, resnet101
from aucseg.models.segmentor import EncoderDecoder

__all__ = [
    "ASPP",
    "MODELS",
    "MSCAN",
    "NMF2D",
    "DeepLabV3PlusHead",
    "EncoderDecoder",
    "Hamburger",
    "LightHamHead",
    "LoadReport",
    "ResNet",
    "SegmentorAdapter",
    "build_model",
    "build_segnext",
    "check_state_dict",
    "closest_model",
    "convert_checkpoint",
    "count_parameters",
    "deeplabv3plus_r50",
    "deeplabv3plus_r101",
    "extract_logits",
    "huggingface",
    "infer_model",
    "list_models",
    "load_checkpoint",
    "load_pretrained",
    "model_options",
    "mscan_b",
    "mscan_l",
    "mscan_s",
    "mscan_t",
    "read_checkpoint",
    "resnet50",
    "resnet101",
    "resolve_model",
    "save_checkpoint_file",
    "segnext_base",
    "segnext_large",
    "segnext_small",
    "segnext_tiny",
    "set_nmf_generator",
]
