"""Segmentation models: SegNeXt (MSCAN + LightHamHead) and DeepLabV3+ (ResNet), with loading of
official MMSegmentation, torchvision, safetensors and aucseg checkpoints."""

from aucseg.models.checkpoint import (
    LoadReport,
    check_state_dict,
    convert_checkpoint,
    infer_model,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint_file,
)
from aucseg.models.deeplab import ASPP, DeepLabV3PlusHead
from aucseg.models.ham_head import NMF2D, Hamburger, LightHamHead
from aucseg.models.mscan import MSCAN, mscan_b, mscan_l, mscan_s, mscan_t
from aucseg.models.registry import MODELS, build_model, build_segnext, set_nmf_generator
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
    "build_model",
    "build_segnext",
    "check_state_dict",
    "convert_checkpoint",
    "infer_model",
    "load_checkpoint",
    "mscan_b",
    "mscan_l",
    "mscan_s",
    "mscan_t",
    "read_checkpoint",
    "resnet50",
    "resnet101",
    "save_checkpoint_file",
    "set_nmf_generator",
]
