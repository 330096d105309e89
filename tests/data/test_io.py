import cv2
import numpy as np
import pytest
from PIL import Image

from aucseg.data.io import MissingFileError, _check_complete, read_image, read_label, write_label
from aucseg.errors import InputError


def _noisy(h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 2)


def test_read_image_returns_rgb_uint8(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200  # pure red
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    img = read_image(path)
    assert img.dtype == np.uint8 and img.shape == (4, 6, 3)
    np.testing.assert_array_equal(img, rgb)


def test_read_image_expands_grey_and_drops_alpha(tmp_path):
    Image.fromarray(np.full((3, 5), 77, np.uint8)).save(tmp_path / "g.png")
    Image.fromarray(np.full((3, 5, 4), 9, np.uint8)).save(tmp_path / "a.png")
    assert read_image(tmp_path / "g.png").shape == (3, 5, 3)
    assert (read_image(tmp_path / "g.png") == 77).all()
    assert read_image(tmp_path / "a.png").shape == (3, 5, 3)


def test_missing_files_name_the_path(tmp_path):
    for read, name in ((read_image, "nope.jpg"), (read_label, "nope.png")):
        with pytest.raises(InputError, match=rf"not found: .*{name}") as info:
            read(tmp_path / name)
        assert isinstance(info.value, MissingFileError | FileNotFoundError)


@pytest.mark.parametrize("content", [b"", b"not an image at all"])
def test_corrupt_files_name_the_path(tmp_path, content):
    (tmp_path / "bad.jpg").write_bytes(content)
    (tmp_path / "bad.png").write_bytes(content)
    with pytest.raises(InputError, match=r"bad\.jpg"):
        read_image(tmp_path / "bad.jpg")
    with pytest.raises(InputError, match=r"bad\.png"):
        read_label(tmp_path / "bad.png")


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_images_are_reported(tmp_path, suffix, keep):
    ok, buf = cv2.imencode(suffix, _noisy())
    assert ok
    data = buf.tobytes()
    (tmp_path / f"cut{suffix}").write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputError, match=rf"cut\{suffix}.*truncated"):
        read_image(tmp_path / f"cut{suffix}")
    with pytest.raises(InputError, match=rf"label file .*cut\{suffix}.*truncated"):
        read_label(tmp_path / f"cut{suffix}")
    # the check that catches truncation where OpenCV (4.x) decodes a partial JPEG anyway
    with pytest.raises(InputError, match="truncated or corrupt"):
        _check_complete(data[: int(len(data) * keep)], tmp_path / f"cut{suffix}")


def test_jpeg_with_trailing_bytes_still_reads(tmp_path):
    # bytes after the end marker (camera padding) send the file through the completeness check
    _, buf = cv2.imencode(".jpg", _noisy())
    (tmp_path / "pad.jpg").write_bytes(buf.tobytes() + b"\x00" * 16 + b"trailer")
    expected = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(read_image(tmp_path / "pad.jpg"), expected)


def test_truncated_label_png_is_reported(tmp_path):
    write_label(tmp_path / "ok.png", np.arange(64 * 64).reshape(64, 64) % 200)
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.png"):
        read_label(tmp_path / "cut.png")


def test_label_roundtrip_and_palette_mode(tmp_path):
    label = np.array([[0, 1, 255], [149, 3, 7]], dtype=np.int64)
    write_label(tmp_path / "sub" / "l.png", label)
    out = read_label(tmp_path / "sub" / "l.png")
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, label)
    # Palette ("P") PNGs hold indices; those are the ids, not the colours.
    pimg = Image.fromarray(label.astype(np.uint8)).convert("P")
    pimg.putpalette([10, 20, 30] * 256)
    pimg.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_label(tmp_path / "p.png"), label)


def test_colour_label_is_rejected(tmp_path):
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(InputError, match=r"rgb\.png.*single-channel"):
        read_label(tmp_path / "rgb.png")


def test_write_label_validates(tmp_path):
    with pytest.raises(ValueError, match="256"):
        write_label(tmp_path / "x.png", np.array([[0, 256]]))
    with pytest.raises(ValueError, match="-1"):
        write_label(tmp_path / "x.png", np.array([[-1, 2]]))
    with pytest.raises(ValueError, match="shape"):
        write_label(tmp_path / "x.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        write_label(tmp_path / "x.png", np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="PNG"):
        write_label(tmp_path / "x.jpg", np.zeros((2, 2), np.uint8))
