"""Datasets, label conversion, training/test transforms, training data order and statistics.

Public entry points: :func:`build_dataset` / :data:`DATASETS`, the dataset classes, the
pipelines :func:`~aucseg.data.transforms.build_train_pipeline` and
:func:`~aucseg.data.transforms.build_test_pipeline`, the one test-time preprocessing
:class:`EvalPreset`, the training samplers :data:`SAMPLERS` / :func:`build_sampler` and loader
:func:`make_train_loader`, :func:`load_image_class_pixels` (per-image class pixels of an
``aucseg stats`` file), :func:`seed_worker` for DataLoaders and :data:`OFFICIAL_TAIL_CLASSES`.
"""

from aucseg.data.classes import OFFICIAL_TAIL_CLASSES
from aucseg.data.datasets import (
    DATASETS,
    IGNORE_INDEX,
    ADE20KDataset,
    CityscapesDataset,
    COCOStuffDataset,
    FolderDataset,
    SegDataset,
    build_dataset,
)
from aucseg.data.io import read_image, read_label, write_label
from aucseg.data.loader import SeededSamples, make_train_loader
from aucseg.data.samplers import (
    SAMPLERS,
    RareClassSampler,
    RepeatFactorSampler,
    ResumableSampler,
    StreamSampler,
    build_sampler,
    sample_seed,
)
from aucseg.data.stats import load_image_class_pixels
from aucseg.data.transforms import (
    EvalPreset,
    build_test_pipeline,
    build_train_pipeline,
    seed_worker,
)

__all__ = [
    "DATASETS",
    "IGNORE_INDEX",
    "OFFICIAL_TAIL_CLASSES",
    "SAMPLERS",
    "ADE20KDataset",
    "COCOStuffDataset",
    "CityscapesDataset",
    "EvalPreset",
    "FolderDataset",
    "RareClassSampler",
    "RepeatFactorSampler",
    "ResumableSampler",
    "SeededSamples",
    "SegDataset",
    "StreamSampler",
    "build_dataset",
    "build_sampler",
    "build_test_pipeline",
    "build_train_pipeline",
    "load_image_class_pixels",
    "make_train_loader",
    "read_image",
    "read_label",
    "sample_seed",
    "seed_worker",
    "write_label",
]
