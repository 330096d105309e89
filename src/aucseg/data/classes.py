"""Class names, colour palettes and official tail-class lists of the supported datasets.

Class order and palettes follow MMSegmentation (the label ids stored on disk after conversion);
the tail lists are the ``small_index`` lists of the official AUCSeg configs, in their order.
"""

from __future__ import annotations

import numpy as np

ADE20K_CLASSES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane",
    "grass", "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant",
    "curtain", "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror",
    "rug", "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub",
    "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter",
    "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs",
    "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
    "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track",
    "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer",
    "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag",
    "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave",
    "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
    "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate",
    "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)  # fmt: skip

ADE20K_PALETTE = np.array(
    [
        [120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50], [4, 200, 3],
        [120, 120, 80], [140, 140, 140], [204, 5, 255], [230, 230, 230], [4, 250, 7],
        [224, 5, 255], [235, 255, 7], [150, 5, 61], [120, 120, 70], [8, 255, 51],
        [255, 6, 82], [143, 255, 140], [204, 255, 4], [255, 51, 7], [204, 70, 3],
        [0, 102, 200], [61, 230, 250], [255, 6, 51], [11, 102, 255], [255, 7, 71],
        [255, 9, 224], [9, 7, 230], [220, 220, 220], [255, 9, 92], [112, 9, 255],
        [8, 255, 214], [7, 255, 224], [255, 184, 6], [10, 255, 71], [255, 41, 10],
        [7, 255, 255], [224, 255, 8], [102, 8, 255], [255, 61, 6], [255, 194, 7],
        [255, 122, 8], [0, 255, 20], [255, 8, 41], [255, 5, 153], [6, 51, 255],
        [235, 12, 255], [160, 150, 20], [0, 163, 255], [140, 140, 140], [250, 10, 15],
        [20, 255, 0], [31, 255, 0], [255, 31, 0], [255, 224, 0], [153, 255, 0],
        [0, 0, 255], [255, 71, 0], [0, 235, 255], [0, 173, 255], [31, 0, 255],
        [11, 200, 200], [255, 82, 0], [0, 255, 245], [0, 61, 255], [0, 255, 112],
        [0, 255, 133], [255, 0, 0], [255, 163, 0], [255, 102, 0], [194, 255, 0],
        [0, 143, 255], [51, 255, 0], [0, 82, 255], [0, 255, 41], [0, 255, 173],
        [10, 0, 255], [173, 255, 0], [0, 255, 153], [255, 92, 0], [255, 0, 255],
        [255, 0, 245], [255, 0, 102], [255, 173, 0], [255, 0, 20], [255, 184, 184],
        [0, 31, 255], [0, 255, 61], [0, 71, 255], [255, 0, 204], [0, 255, 194],
        [0, 255, 82], [0, 10, 255], [0, 112, 255], [51, 0, 255], [0, 194, 255],
        [0, 122, 255], [0, 255, 163], [255, 153, 0], [0, 255, 10], [255, 112, 0],
        [143, 255, 0], [82, 0, 255], [163, 255, 0], [255, 235, 0], [8, 184, 170],
        [133, 0, 255], [0, 255, 92], [184, 0, 255], [255, 0, 31], [0, 184, 255],
        [0, 214, 255], [255, 0, 112], [92, 255, 0], [0, 224, 255], [112, 224, 255],
        [70, 184, 160], [163, 0, 255], [153, 0, 255], [71, 255, 0], [255, 0, 163],
        [255, 204, 0], [255, 0, 143], [0, 255, 235], [133, 255, 0], [255, 0, 235],
        [245, 0, 255], [255, 0, 122], [255, 245, 0], [10, 190, 212], [214, 255, 0],
        [0, 204, 255], [20, 0, 255], [255, 255, 0], [0, 153, 255], [0, 41, 255],
        [0, 255, 204], [41, 0, 255], [41, 255, 0], [173, 0, 255], [0, 245, 255],
        [71, 0, 255], [122, 0, 255], [0, 255, 184], [0, 92, 255], [184, 255, 0],
        [0, 133, 255], [255, 214, 0], [25, 194, 194], [102, 255, 0], [92, 0, 255],
    ],
    dtype=np.uint8,
)  # fmt: skip

CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)  # fmt: skip

CITYSCAPES_PALETTE = np.array(
    [
        [128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156], [190, 153, 153],
        [153, 153, 153], [250, 170, 30], [220, 220, 0], [107, 142, 35], [152, 251, 152],
        [70, 130, 180], [220, 20, 60], [255, 0, 0], [0, 0, 142], [0, 0, 70], [0, 60, 100],
        [0, 80, 100], [0, 0, 230], [119, 11, 32],
    ],
    dtype=np.uint8,
)  # fmt: skip

COCO_STUFF_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush", "banner", "blanket", "branch", "bridge", "building-other", "bush",
    "cabinet", "cage", "cardboard", "carpet", "ceiling-other", "ceiling-tile", "cloth",
    "clothes", "clouds", "counter", "cupboard", "curtain", "desk-stuff", "dirt", "door-stuff",
    "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood",
    "flower", "fog", "food-other", "fruit", "furniture-other", "grass", "gravel",
    "ground-other", "hill", "house", "leaves", "light", "mat", "metal", "mirror-stuff", "moss",
    "mountain", "mud", "napkin", "net", "paper", "pavement", "pillow", "plant-other",
    "plastic", "platform", "playingfield", "railing", "railroad", "river", "road", "rock",
    "roof", "rug", "salad", "sand", "sea", "shelf", "sky-other", "skyscraper", "snow",
    "solid-other", "stairs", "stone", "straw", "structural-other", "table", "tent",
    "textile-other", "towel", "tree", "vegetable", "wall-brick", "wall-concrete",
    "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood", "water-other",
    "waterdrops", "window-blind", "window-other", "wood",
)  # fmt: skip

COCO_STUFF_PALETTE = np.array(
    [
        [0, 192, 64], [0, 192, 64], [0, 64, 96], [128, 192, 192], [0, 64, 64], [0, 192, 224],
        [0, 192, 192], [128, 192, 64], [0, 192, 96], [128, 192, 64], [128, 32, 192],
        [0, 0, 224], [0, 0, 64], [0, 160, 192], [128, 0, 96], [128, 0, 192], [0, 32, 192],
        [128, 128, 224], [0, 0, 192], [128, 160, 192], [128, 128, 0], [128, 0, 32],
        [128, 32, 0], [128, 0, 128], [64, 128, 32], [0, 160, 0], [0, 0, 0], [192, 128, 160],
        [0, 32, 0], [0, 128, 128], [64, 128, 160], [128, 160, 0], [0, 128, 0], [192, 128, 32],
        [128, 96, 128], [0, 0, 128], [64, 0, 32], [0, 224, 128], [128, 0, 0], [192, 0, 160],
        [0, 96, 128], [128, 128, 128], [64, 0, 160], [128, 224, 128], [128, 128, 64],
        [192, 0, 32], [128, 96, 0], [128, 0, 192], [0, 128, 32], [64, 224, 0], [0, 0, 64],
        [128, 128, 160], [64, 96, 0], [0, 128, 192], [0, 128, 160], [192, 224, 0],
        [0, 128, 64], [128, 128, 32], [192, 32, 128], [0, 64, 192], [0, 0, 32],
        [64, 160, 128], [128, 64, 64], [128, 0, 160], [64, 32, 128], [128, 192, 192],
        [0, 0, 160], [192, 160, 128], [128, 192, 0], [128, 0, 96], [192, 32, 0],
        [128, 64, 128], [64, 128, 96], [64, 160, 0], [0, 64, 0], [192, 128, 224],
        [64, 32, 0], [0, 192, 128], [64, 128, 224], [192, 160, 0], [0, 192, 0],
        [192, 128, 96], [192, 96, 128], [0, 64, 128], [64, 0, 96], [64, 224, 128],
        [128, 64, 0], [192, 0, 224], [64, 96, 128], [128, 192, 128], [64, 0, 224],
        [192, 224, 128], [128, 192, 64], [192, 0, 96], [192, 96, 0], [128, 64, 192],
        [0, 128, 96], [0, 224, 0], [64, 64, 64], [128, 128, 224], [0, 96, 0], [64, 192, 192],
        [0, 128, 224], [128, 224, 0], [64, 192, 64], [128, 128, 96], [128, 32, 128],
        [64, 0, 192], [0, 64, 96], [0, 160, 128], [192, 0, 64], [128, 64, 224], [0, 32, 128],
        [192, 128, 192], [0, 64, 224], [128, 160, 128], [192, 128, 0], [128, 64, 32],
        [128, 32, 64], [192, 0, 128], [64, 192, 32], [0, 160, 64], [64, 0, 0],
        [192, 192, 160], [0, 32, 64], [64, 128, 128], [64, 192, 160], [128, 160, 64],
        [64, 128, 0], [192, 192, 32], [128, 96, 192], [64, 0, 128], [64, 64, 32],
        [0, 224, 192], [192, 0, 0], [192, 64, 160], [0, 96, 192], [192, 128, 128],
        [64, 64, 160], [128, 224, 192], [192, 128, 64], [192, 64, 32], [128, 96, 64],
        [192, 0, 192], [0, 192, 32], [64, 224, 64], [64, 0, 64], [128, 192, 160],
        [64, 96, 64], [64, 128, 192], [0, 192, 160], [192, 224, 64], [64, 128, 64],
        [128, 192, 32], [192, 32, 192], [64, 64, 192], [0, 64, 32], [64, 160, 192],
        [192, 64, 64], [128, 64, 160], [64, 32, 192], [192, 192, 192], [0, 64, 160],
        [192, 160, 192], [192, 192, 0], [128, 64, 96], [192, 32, 64], [192, 64, 128],
        [64, 192, 96], [64, 160, 64], [64, 64, 0],
    ],
    dtype=np.uint8,
)  # fmt: skip

# ``small_index`` of the official AUCSeg configs (ids after the dataset's label conventions).
OFFICIAL_TAIL_CLASSES: dict[str, list[int]] = {
    "ade20k": [
        26, 27, 31, 28, 29, 30, 32, 33, 35, 34, 36, 37, 38, 40, 39, 41, 42, 43, 44, 45, 51, 47,
        46, 49, 50, 48, 52, 55, 56, 53, 57, 54, 59, 60, 58, 61, 62, 66, 64, 65, 68, 67, 63, 69,
        72, 70, 73, 71, 75, 74, 76, 78, 79, 80, 77, 81, 83, 82, 84, 86, 85, 88, 87, 90, 91, 89,
        92, 94, 95, 93, 98, 101, 97, 96, 102, 100, 99, 103, 108, 111, 105, 104, 109, 110, 106,
        119, 113, 107, 118, 116, 112, 114, 117, 115, 121, 127, 120, 123, 129, 122, 125, 132,
        133, 135, 128, 130, 124, 134, 126, 137, 131, 136, 140, 145, 141, 139, 138, 144, 142,
        143, 146, 148, 147, 149,
    ],
    "cityscapes": [6, 12, 14, 15, 16, 17, 18],
    "coco_stuff164k": [
        3, 20, 97, 89, 87, 166, 16, 116, 127, 72, 131, 93, 55, 69, 63, 17, 13, 121, 62, 4, 23,
        22, 77, 61, 95, 138, 28, 98, 48, 25, 135, 144, 117, 113, 162, 19, 8, 146, 170, 41, 58,
        80, 115, 88, 132, 46, 163, 82, 158, 107, 18, 151, 21, 126, 50, 54, 71, 73, 168, 152, 75,
        140, 104, 14, 39, 1, 139, 150, 66, 118, 49, 74, 110, 52, 83, 37, 81, 10, 11, 149, 47,
        26, 92, 102, 67, 96, 68, 24, 40, 154, 124, 134, 156, 51, 12, 9, 33, 125, 36, 38, 129,
        148, 65, 141, 43, 31, 76, 29, 30, 91, 27, 42, 119, 44, 64, 35, 122, 79, 34, 32, 167,
        70, 78,
    ],
}  # fmt: skip


def default_palette(num_classes: int, seed: int = 0) -> np.ndarray:
    """A reproducible random palette for datasets without one.

    Args:
        num_classes: number of colours to make (>= 1).
        seed: seed of the private generator (the global RNG is not touched).

    Returns:
        (num_classes, 3) uint8 RGB array.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(num_classes, 3), dtype=np.uint8)
