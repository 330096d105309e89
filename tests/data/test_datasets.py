import inspect
import types
import typing
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from aucseg.data import (
    DATASETS,
    OFFICIAL_TAIL_CLASSES,
    ADE20KDataset,
    CityscapesDataset,
    COCOStuffDataset,
    FolderDataset,
    build_dataset,
    build_train_pipeline,
    write_label,
)
from aucseg.data.datasets import DATASET_INPUTS, dataset_options
from aucseg.errors import InputError

H, W = 32, 48


def _write_pair(img_path: Path, label_path: Path, label: np.ndarray, seed: int = 0) -> None:
    img_path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(*label.shape, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(img_path.suffix, image)
    assert ok
    img_path.write_bytes(buf.tobytes())
    write_label(label_path, label)


def _label(values, shape=(H, W)) -> np.ndarray:
    flat = np.resize(np.asarray(values, dtype=np.int64), shape[0] * shape[1])
    return flat.reshape(shape)


def make_ade(root: Path, split: str = "training", n: int = 3, values=(0, 1, 2, 150)) -> Path:
    for i in range(n):
        name = f"ADE_{split}_{i:08d}"
        _write_pair(
            root / "images" / split / f"{name}.jpg",
            root / "annotations" / split / f"{name}.png",
            _label(values),
            seed=i,
        )
    return root


def make_cityscapes(root: Path, split: str = "train", values=(0, 5, 18, 255)) -> Path:
    for city, n in (("aachen", 2), ("bremen", 1)):
        for i in range(n):
            stem = f"{city}_{i:06d}_000019"
            _write_pair(
                root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
                root / "gtFine" / split / city / f"{stem}_gtFine_labelTrainIds.png",
                _label(values),
            )
    return root


def make_coco(root: Path, split: str = "train2017", n: int = 2, values=(0, 170, 255)) -> Path:
    for i in range(n):
        stem = f"{i:012d}"
        _write_pair(
            root / "images" / split / f"{stem}.jpg",
            root / "annotations" / split / f"{stem}_labelTrainIds.png",
            _label(values),
        )
    return root


def test_ade20k_layout_and_reduce_zero_label(tmp_path):
    root = make_ade(tmp_path / "ADEChallengeData2016", values=(0, 1, 2, 150, 255))
    ds = ADE20KDataset(root, split="training")
    assert len(ds) == 3 and ds.num_classes == 150 and ds.reduce_zero_label
    assert ds.classes[0] == "wall" and ds.palette.shape == (150, 3)
    assert ds.palette.dtype == np.uint8
    item = ds[0]
    assert set(item) >= {"image", "label", "image_path", "label_path"}
    assert item["image"].shape == (H, W, 3) and item["image"].dtype == np.uint8
    assert item["label"].shape == (H, W) and item["label"].dtype == np.int64
    # stored 0 -> 255, 1 -> 0, 2 -> 1, 150 -> 149, 255 stays ignore
    np.testing.assert_array_equal(item["label"], _label((255, 0, 1, 149, 255)))
    assert item["image_path"].endswith("ADE_training_00000000.jpg")
    assert isinstance(item["label_path"], str)
    assert ds.samples[1][0].name == "ADE_training_00000001.jpg"


def test_cityscapes_nested_cities(tmp_path):
    root = make_cityscapes(tmp_path / "cityscapes")
    ds = CityscapesDataset(root, "train")
    assert len(ds) == 3 and ds.num_classes == 19 and not ds.reduce_zero_label
    assert [p.parent.name for p, _ in ds.samples] == ["aachen", "aachen", "bremen"]
    np.testing.assert_array_equal(ds[2]["label"], _label((0, 5, 18, 255)))
    assert ds.classes[-1] == "bicycle"


def test_coco_stuff_ignores_raw_pngs(tmp_path):
    root = make_coco(tmp_path / "coco")
    # A raw (unconverted) annotation beside the converted one must not be taken as a label.
    write_label(root / "annotations" / "train2017" / "000000000000.png", _label((181,)))
    ds = COCOStuffDataset(root, "train2017")
    assert len(ds) == 2 and ds.num_classes == 171
    assert ds.samples[0][1].name == "000000000000_labelTrainIds.png"
    np.testing.assert_array_equal(ds[0]["label"], _label((0, 170, 255)))


def _folder(root: Path, split: str = "train", values=(0, 1, 2), n: int = 2) -> Path:
    for i in range(n):
        _write_pair(root / "img" / split / f"s{i}_rgb.png", root / "ann" / split / f"s{i}_mask.png",
                    _label(values))  # fmt: skip
    return root


LAYOUT = {"img_dir": "img/{split}", "ann_dir": "ann/{split}", "img_suffix": "_rgb.png",
          "seg_map_suffix": "_mask.png"}  # fmt: skip


def test_folder_dataset_custom_layout(tmp_path):
    root = _folder(tmp_path / "mine")
    ds = FolderDataset(root, "train", classes=["a", "b", "c"], **LAYOUT)
    assert len(ds) == 2 and ds.classes == ("a", "b", "c") and ds.num_classes == 3
    assert ds.palette.shape == (3, 3) and ds.palette.dtype == np.uint8
    assert ds.samples[1][1] == root / "ann" / "train" / "s1_mask.png"
    np.testing.assert_array_equal(ds[0]["label"], _label((0, 1, 2)))
    ds2 = FolderDataset(root, "train", classes=2, reduce_zero_label=True,
                        palette=[[1, 2, 3], [4, 5, 6]], **LAYOUT)  # fmt: skip
    assert ds2.classes == ("class_0", "class_1")
    np.testing.assert_array_equal(ds2[0]["label"], _label((255, 0, 1)))
    np.testing.assert_array_equal(ds2.palette, [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(InputError, match=r"palette must be 2 RGB triples.*shape \(1, 3\)"):
        FolderDataset(root, "train", classes=2, palette=[[1, 2, 3]], **LAYOUT)
    with pytest.raises(TypeError, match="string"):
        FolderDataset(root, "train", classes="abc", **LAYOUT)
    with pytest.raises(InputError, match="positive count"):
        FolderDataset(root, "train", classes=0, **LAYOUT)
    with pytest.raises(InputError, match=r"distinct; repeated: \['a'\]"):
        FolderDataset(root, "train", classes=["a", "b", "a"], **LAYOUT)
    with pytest.raises(FileNotFoundError, match=r"val.*holds: train"):
        FolderDataset(root, "val", classes=3, **LAYOUT)
    with pytest.raises(InputError, match="non-empty"):
        FolderDataset(root, "", classes=3, **LAYOUT)


def test_folder_dataset_default_layout_is_mmseg_custom(tmp_path):
    root = tmp_path / "ds"
    for split in ("train", "val"):
        _write_pair(root / "images" / split / "a.jpg", root / "annotations" / split / "a.png",
                    _label((0, 3)))  # fmt: skip
    assert len(FolderDataset(root, "val", classes=4)) == 1
    assert FolderDataset(root, "train", classes=4)[0]["label"].max() == 3


def test_folder_label_beyond_classes_names_file_value_and_fix(tmp_path):
    root = _folder(tmp_path / "mine", values=(0, 1, 7, 255))
    ds = FolderDataset(root, "train", classes=3, **LAYOUT)
    with pytest.raises(InputError, match=r"s0_mask\.png holds values 7 outside the 3 classes.*"
                       r"set classes to 8 names.*reduce_zero_label=true"):  # fmt: skip
        ds[0]
    shifted = FolderDataset(root, "train", classes=3, reduce_zero_label=True, **LAYOUT)
    with pytest.raises(InputError, match=r"values 6 after reduce_zero_label.*set classes to 7"):
        shifted[0]
    assert FolderDataset(root, "train", classes=8, **LAYOUT)[0]["label"].max() == 255


def _plain(annotation) -> bool:
    """True for the annotations the config layer can validate (int, str, list[...], ...)."""
    origin = typing.get_origin(annotation)
    if origin is None:
        return annotation in (int, float, bool, str, type(None))
    if origin is typing.Literal:
        return True
    if origin in (typing.Union, types.UnionType, list, tuple):
        return all(_plain(a) for a in typing.get_args(annotation) if a is not Ellipsis)
    return False


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_dataset_options_are_plain_and_engine_inputs_lead(name):
    cls = DATASETS[name]
    assert list(inspect.signature(cls).parameters)[:3] == list(DATASET_INPUTS)
    hints = typing.get_type_hints(cls.__init__)
    for option in dataset_options(name):
        assert _plain(hints[option]), (option, hints[option])


def test_build_dataset_registry(tmp_path):
    assert set(DATASETS) == {"ade20k", "cityscapes", "coco_stuff164k", "folder"}
    ade = make_ade(tmp_path / "ade")
    assert isinstance(build_dataset("ade20k", ade, "training"), ADE20KDataset)
    assert len(build_dataset("cityscapes", make_cityscapes(tmp_path / "cs"), "train")) == 3
    assert len(build_dataset("coco_stuff164k", make_coco(tmp_path / "co"), "train2017")) == 2
    # "folder": img_dir/ann_dir relative to root, {split} filled in.
    folder = build_dataset("folder", ade, "training", classes=150, reduce_zero_label=True)
    assert len(folder) == 3 and folder.num_classes == 150
    folder2 = build_dataset(
        "folder", ade, "x", classes=151, img_dir="images/training", ann_dir="annotations/training"
    )
    assert folder2[0]["label"].max() == 150
    with pytest.raises(InputError, match=r"unknown dataset 'ade'.*ade20k.*cityscapes"):
        build_dataset("ade", ade, "training")
    with pytest.raises(InputError, match=r"training.*validation.*got 'train'"):
        build_dataset("ade20k", ade, "train")
    with pytest.raises(InputError, match=r"'train', 'val'.*got 'val2017'"):
        CityscapesDataset(tmp_path / "cs", "val2017")
    with pytest.raises(InputError, match=r"needs the option 'classes'"):
        build_dataset("folder", ade, "training")
    with pytest.raises(InputError, match=r"no option 'img_dir'; accepted: \['check_labels'\]"):
        build_dataset("ade20k", ade, "training", img_dir="x")
    with pytest.raises(InputError, match=r"no option 'seg_suffix'.*'seg_map_suffix'"):
        build_dataset("folder", ade, "training", classes=3, seg_suffix=".png")
    assert len(build_dataset("ade20k", ade, "training", check_labels=False)) == 3
    assert dataset_options("ade20k") == {"check_labels": True}
    assert dataset_options("folder")["img_dir"] == "images/{split}"


def test_missing_root_and_split(tmp_path):
    with pytest.raises(FileNotFoundError, match="root not found"):
        ADE20KDataset(tmp_path / "nowhere", "training")
    root = make_ade(tmp_path / "ade", split="training")
    with pytest.raises(FileNotFoundError, match=r"validation.*holds: training"):
        ADE20KDataset(root, "validation")


def test_images_without_labels_are_named(tmp_path):
    root = make_ade(tmp_path / "ade", n=3)
    (root / "annotations" / "training" / "ADE_training_00000001.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 3 images.*ADE_training_00000001\.jpg"):
        ADE20KDataset(root, "training")


def test_empty_image_folder(tmp_path):
    (tmp_path / "ade" / "images" / "training").mkdir(parents=True)
    (tmp_path / "ade" / "annotations" / "training").mkdir(parents=True)
    with pytest.raises(InputError, match=r"no images ending in '\.jpg'"):
        ADE20KDataset(tmp_path / "ade", "training")


def test_corrupt_image_is_named(tmp_path):
    root = make_ade(tmp_path / "ade", n=2)
    (root / "images" / "training" / "ADE_training_00000001.jpg").write_bytes(b"garbage")
    ds = ADE20KDataset(root, "training")
    ds[0]
    with pytest.raises(InputError, match=r"ADE_training_00000001\.jpg"):
        ds[1]


def test_out_of_range_labels_are_reported(tmp_path):
    # raw Cityscapes label ids (up to 33) where train ids are expected
    root = make_cityscapes(tmp_path / "cs", values=(7, 26, 33, 255))
    ds = CityscapesDataset(root, "train")
    with pytest.raises(
        InputError, match=r"aachen_000000_000019_gtFine_labelTrainIds.*26, 33.*convert"
    ):
        ds[0]
    assert CityscapesDataset(root, "train", check_labels=False)[0]["label"].max() == 255
    ade = make_ade(tmp_path / "ade", values=(0, 151))
    with pytest.raises(InputError, match="150 after reduce_zero_label"):
        ADE20KDataset(ade, "training")[0]


def test_size_mismatch_is_reported(tmp_path):
    root = make_coco(tmp_path / "co", n=1)
    write_label(root / "annotations" / "train2017" / "000000000000_labelTrainIds.png",
                np.zeros((H + 1, W), np.uint8))  # fmt: skip
    with pytest.raises(InputError, match=r"32x48 but its label .* is 33x48"):
        COCOStuffDataset(root, "train2017")[0]


def test_transforms_are_applied(tmp_path):
    root = make_ade(tmp_path / "ade", values=(0, 1, 2, 3))
    pipe = build_train_pipeline(crop_size=(16, 16), img_scale=(64, 32))
    ds = ADE20KDataset(root, "training", transforms=pipe)
    np.random.seed(0)
    item = ds[0]
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 16, 16)
    assert item["label"].dtype == torch.int64 and item["label"].shape == (16, 16)
    assert set(item["label"].unique().tolist()) <= {0, 1, 2, 255}
    with pytest.raises(TypeError, match="callable"):
        ADE20KDataset(root, "training", transforms="resize")


def test_official_tail_classes():
    assert sorted(OFFICIAL_TAIL_CLASSES["ade20k"]) == list(range(26, 150))
    assert OFFICIAL_TAIL_CLASSES["cityscapes"] == [6, 12, 14, 15, 16, 17, 18]
    coco = OFFICIAL_TAIL_CLASSES["coco_stuff164k"]
    assert len(coco) == len(set(coco)) == 123 and coco[:2] == [3, 20] and coco[-3:] == [167, 70, 78]
    head = sorted(set(range(171)) - set(coco))
    assert head[:6] == [0, 2, 5, 6, 7, 15] and head[-3:] == [164, 165, 169] and len(head) == 48
    for name, ids in OFFICIAL_TAIL_CLASSES.items():
        assert max(ids) < len(DATASETS[name].CLASSES)


@pytest.mark.parametrize("name", ["ade20k", "cityscapes", "coco_stuff164k"])
def test_class_tables(name):
    cls = DATASETS[name]
    palette = np.asarray(cls.PALETTE)
    assert palette.shape == (len(cls.CLASSES), 3) and len(set(cls.CLASSES)) == len(cls.CLASSES)
