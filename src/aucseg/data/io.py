"""Reading and writing images and label maps, with errors that name the file.

Images are decoded with OpenCV (as the official pipeline does) and returned in RGB order;
label maps are decoded with Pillow without any colour conversion (palette PNGs give indices).
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from aucseg.errors import InputError
from aucseg.fileio import atomic_write

__all__ = ["MissingFileError", "read_image", "read_label", "write_label"]

_JPEG_START, _JPEG_END = b"\xff\xd8\xff", b"\xff\xd9"
_PNG_START, _PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"


class MissingFileError(InputError, FileNotFoundError):
    """An input file that does not exist (both an InputError and a FileNotFoundError)."""


def _existing_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"{what} file not found: {path}; check the path and the dataset layout"
        )
    return path


def _ends_cleanly(data: np.ndarray) -> bool:
    """False for a JPEG or PNG whose end marker is not at the end (truncated, or trailing
    bytes); True otherwise (other formats are left to the decoder). ``data``: (N,) uint8."""
    head = data[:8].tobytes()
    if head.startswith(_JPEG_START):
        end = data.size - int(np.argmax(data[::-1] != 0))  # zero padding after EOI is common
        return data[max(end - 2, 0) : end].tobytes() == _JPEG_END
    if head.startswith(_PNG_START):
        return data[-len(_PNG_END) :].tobytes() == _PNG_END
    return True


def _check_complete(data: bytes, path: Path) -> None:
    """Raise InputError when Pillow finds the image data truncated or corrupt.

    Used only when the end marker is missing: some OpenCV versions decode a truncated JPEG
    into a partly grey image instead of failing.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except UnidentifiedImageError:
        return  # a format Pillow does not know: the OpenCV decode stands
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(
            f"image file {path} is truncated or corrupt ({err}); re-download or remove it"
        ) from err


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB.

    Args:
        path: image file (any format OpenCV decodes: JPEG, PNG, ...). Grey images are expanded
            to three channels and an alpha channel is dropped.

    Returns:
        (H, W, 3) uint8 array in RGB order.

    Raises:
        MissingFileError: the file does not exist (an InputError and a FileNotFoundError).
        InputError: the file is empty, truncated, corrupt or not an image.
    """
    path = _existing_file(path, "image")
    # np.fromfile + imdecode instead of imread: works with non-ASCII paths on every platform.
    data = np.fromfile(path, dtype=np.uint8)
    # check a truncated file before decoding it: the decoders print their own stderr lines
    if data.size and not _ends_cleanly(data):
        _check_complete(data.tobytes(), path)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(
            f"cannot decode image file {path}: it is empty, truncated, corrupt or not an "
            "image; re-download or remove it"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_label(path: str | Path) -> np.ndarray:
    """Read a single-channel label map (ids stored as pixel values, e.g. an 8-bit PNG).

    Args:
        path: label file; 8-bit, 16-bit or palette ("P" mode) single-channel image.

    Returns:
        (H, W) int64 array of the stored ids (no label convention applied).

    Raises:
        MissingFileError: the file does not exist (an InputError and a FileNotFoundError).
        InputError: the file is truncated, corrupt, not an image, or has several channels.
    """
    path = _existing_file(path, "label")
    try:
        with Image.open(path) as img:
            img.load()
            label = np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputError(
            f"cannot decode label file {path} ({err}): it is truncated, corrupt or not an "
            "image; re-download or regenerate it"
        ) from err
    if label.ndim != 2:
        raise InputError(
            f"label file {path} has shape {label.shape}; a label map must be single-channel "
            "(H, W) with class ids as values (colour-coded masks must be converted to ids first)"
        )
    return label.astype(np.int64)


def write_label(path: str | Path, label: np.ndarray) -> None:
    """Write a label map as an 8-bit single-channel PNG (parent folders are created).

    Args:
        path: output file; should end in ``.png`` (lossless).
        label: (H, W) integer array with values in [0, 255].

    Raises:
        InputError: wrong shape, non-integer dtype, or values outside [0, 255].
    """
    path = Path(path)
    label = np.asarray(label)
    if label.ndim != 2:
        raise InputError(f"label must have shape (H, W), got {label.shape} for {path}")
    if not (np.issubdtype(label.dtype, np.integer) or label.dtype == np.bool_):
        raise InputError(f"label must have an integer dtype, got {label.dtype} for {path}")
    if label.size and (label.min() < 0 or label.max() > 255):
        raise InputError(
            f"label values must lie in [0, 255] to be stored as 8-bit PNG, got range "
            f"[{label.min()}, {label.max()}] for {path}"
        )
    if path.suffix.lower() != ".png":
        raise InputError(f"label files are written as PNG; got suffix {path.suffix!r} in {path}")
    image = Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8))
    atomic_write(path, lambda f: image.save(f, format="PNG"))
