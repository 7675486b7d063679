"""ROS image payloads to numpy colour images (no ROS needed): every supported encoding and every refusal."""

from __future__ import annotations

import array
import struct

import cv2
import numpy as np
import pytest

from litepose_ros.image_encodings import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_ENCODINGS,
    ImageFormatError,
    compressed_image_size,
    compressed_image_to_array,
    raw_image_to_array,
)
from litepose_ros.samples import vtest_frame_paths

RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def frame_bgr() -> np.ndarray:
    """A real 768 x 576 frame of the bundled footage, cropped to an odd-sized region."""
    image = cv2.imread(str(vtest_frame_paths()[0]))
    assert image is not None and image.shape == (576, 768, 3)
    return np.ascontiguousarray(image[100:161, 200:297])  # 61 x 97: odd sizes catch stride bugs


def pad_rows(rows: np.ndarray, padding: int) -> tuple[bytes, int]:
    """Row-major bytes of a (H, row_bytes) uint8 array with `padding` junk bytes after each row."""
    height = rows.shape[0]
    junk = RNG.integers(0, 256, (height, padding), dtype=np.uint8)
    padded = np.concatenate([rows, junk], axis=1)
    return padded.tobytes(), padded.shape[1]


@pytest.mark.parametrize("padding", [0, 5])
@pytest.mark.parametrize("encoding", ["bgr8", "rgb8", "bgra8", "rgba8", "8UC3"])
def test_colour_encodings_give_the_same_pixels(frame_bgr, encoding, padding):
    height, width = frame_bgr.shape[:2]
    source = {
        "bgr8": frame_bgr,
        "8UC3": frame_bgr,
        "rgb8": frame_bgr[:, :, ::-1],
        "bgra8": np.dstack([frame_bgr, np.full((height, width), 77, np.uint8)]),
        "rgba8": np.dstack([frame_bgr[:, :, ::-1], np.full((height, width), 77, np.uint8)]),
    }[encoding]
    data, step = pad_rows(np.ascontiguousarray(source).reshape(height, -1), padding)
    for wanted in ("bgr", "rgb", None):
        pixels, order = raw_image_to_array(
            array.array("B", data), encoding, height, width, step, color_order=wanted
        )
        assert pixels.shape == (height, width, 3) and pixels.dtype == np.uint8
        assert pixels.flags.c_contiguous
        expected_order = wanted or ("rgb" if encoding.startswith("rgb") else "bgr")
        assert order == expected_order
        expected = frame_bgr if order == "bgr" else frame_bgr[:, :, ::-1]
        np.testing.assert_array_equal(pixels, expected)


def test_native_order_of_unpadded_rgb8_is_a_view_without_copy(frame_bgr):
    rgb = np.ascontiguousarray(frame_bgr[:, :, ::-1])
    data = rgb.tobytes()
    pixels, order = raw_image_to_array(
        data, "rgb8", rgb.shape[0], rgb.shape[1], rgb.shape[1] * 3, color_order=None
    )
    assert order == "rgb"
    assert np.shares_memory(pixels, np.frombuffer(data, np.uint8))


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_becomes_grey_colour(frame_bgr, encoding):
    grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
    height, width = grey.shape
    data, step = pad_rows(grey, 3)
    pixels, order = raw_image_to_array(data, encoding, height, width, step)
    assert order == "bgr" and pixels.shape == (height, width, 3)
    for channel in range(3):
        np.testing.assert_array_equal(pixels[:, :, channel], grey)


@pytest.mark.parametrize("big_endian", [False, True])
def test_mono16_is_stretched_from_its_own_range(big_endian):
    height, width = 4, 6
    # A 12-bit sensor: values 1000..3000 only.
    values = np.linspace(1000, 3000, height * width).reshape(height, width).astype(np.uint16)
    dtype = ">u2" if big_endian else "<u2"
    data, step = pad_rows(values.astype(dtype).view(np.uint8).reshape(height, -1), 2)
    pixels, _ = raw_image_to_array(data, "mono16", height, width, step, is_bigendian=big_endian)
    grey = pixels[:, :, 0]
    assert grey[0, 0] == 0 and grey[-1, -1] == 255
    # Linear in between: (v - 1000) / 2000 * 255.
    expected = np.rint((values.astype(np.float64) - 1000) / 2000 * 255)
    np.testing.assert_allclose(grey, expected, atol=1)
    assert np.all(np.diff(grey.ravel().astype(int)) >= 0)


def test_constant_mono16_is_black_not_a_division_by_zero():
    data = np.full((3, 4), 4242, "<u2").tobytes()
    pixels, _ = raw_image_to_array(data, "mono16", 3, 4, 8)
    assert pixels.shape == (3, 4, 3) and not pixels.any()


def bt601_to_bgr(y: float, u: float, v: float) -> np.ndarray:
    """ITU-R BT.601 limited-range YUV to 8-bit BGR (the textbook formula, written out)."""
    c, d, e = y - 16, u - 128, v - 128
    r = 1.164 * c + 1.596 * e
    g = 1.164 * c - 0.392 * d - 0.813 * e
    b = 1.164 * c + 2.017 * d
    return np.clip(np.round([b, g, r]), 0, 255)


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy", "yuv422_yuy2", "yuyv"])
def test_yuv422_packings_decode_with_bt601(encoding):
    # Two macro-pixels per row (4 pixels): a grey pair and a reddish pair, rows repeated.
    samples = [(60, 128, 128, 200), (81, 90, 240, 81)]  # (Y0, U, V, Y1)
    packed = []
    for y0, u, v, y1 in samples:
        packed += [u, y0, v, y1] if encoding in ("yuv422", "uyvy") else [y0, u, y1, v]
    rows = np.tile(np.array(packed, np.uint8), (3, 1))
    data, step = pad_rows(rows, 4)
    pixels, order = raw_image_to_array(data, encoding, 3, 4, step)
    assert order == "bgr" and pixels.shape == (3, 4, 3)
    expected = [
        bt601_to_bgr(60, 128, 128),
        bt601_to_bgr(200, 128, 128),
        bt601_to_bgr(81, 90, 240),
        bt601_to_bgr(81, 90, 240),
    ]
    for column, bgr in enumerate(expected):
        np.testing.assert_allclose(pixels[1, column], bgr, atol=2)
    assert pixels[0, 2, 2] > 150 > pixels[0, 2, 0]  # the V-heavy pixel is red, not blue
    rgb, _ = raw_image_to_array(data, encoding, 3, 4, step, color_order="rgb")
    np.testing.assert_array_equal(rgb, pixels[:, :, ::-1])


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1", "bayer_rggb8", "rgb16", "nonsense"])
def test_unsupported_encodings_are_named_in_the_error(encoding):
    with pytest.raises(ImageFormatError, match=f"unsupported image encoding '{encoding}'") as error:
        raw_image_to_array(b"\0" * 64, encoding, 4, 4, 16)
    assert "supported: rgb8" in str(error.value)
    if encoding in ("32FC1", "16UC1"):
        assert "depth image" in str(error.value)


@pytest.mark.parametrize(("height", "width"), [(0, 10), (10, 0), (0, 0)])
def test_zero_size_images_are_refused(height, width):
    with pytest.raises(ImageFormatError, match="empty"):
        raw_image_to_array(b"", "rgb8", height, width, width * 3)


def test_step_shorter_than_a_row_is_refused():
    with pytest.raises(ImageFormatError, match=r"step >= 30 .* step is 29"):
        raw_image_to_array(b"\0" * 29 * 4, "rgb8", 4, 10, 29)


@pytest.mark.parametrize("delta", [-1, 1, -30])
def test_data_length_must_equal_step_times_height(delta):
    with pytest.raises(ImageFormatError, match="step x height = 30 x 4 = 120"):
        raw_image_to_array(b"\0" * (120 + delta), "rgb8", 4, 10, 30)


def test_odd_width_yuv422_is_refused():
    with pytest.raises(ImageFormatError, match="odd width 3"):
        raw_image_to_array(b"\0" * 12, "yuyv", 2, 3, 6)


def test_images_above_the_pixel_limit_are_refused_before_any_work():
    # The data is deliberately far too short: the size check must come first.
    with pytest.raises(ImageFormatError, match="above the limit of 16777216 pixels"):
        raw_image_to_array(b"", "rgb8", 4097, 4096, 4096 * 3)
    assert DEFAULT_MAX_PIXELS == 4096 * 4096
    with pytest.raises(ImageFormatError, match="above the limit of 100 pixels"):
        raw_image_to_array(b"\0" * 363, "rgb8", 11, 11, 33, max_pixels=100)


def test_bad_color_order_argument_is_a_value_error():
    with pytest.raises(ValueError, match="color_order"):
        raw_image_to_array(b"\0" * 3, "rgb8", 1, 1, 3, color_order="hsv")


def test_supported_list_covers_the_documented_encodings():
    for name in (
        "rgb8",
        "bgr8",
        "rgba8",
        "bgra8",
        "mono8",
        "mono16",
        "yuv422",
        "uyvy",
        "yuv422_yuy2",
        "yuyv",
        "8UC3",
        "8UC1",
    ):
        assert name in SUPPORTED_ENCODINGS


# --- compressed ----------------------------------------------------------------------------------


def test_jpeg_of_the_bundled_footage_decodes():
    data = vtest_frame_paths()[3].read_bytes()
    assert compressed_image_size(data) == ("jpeg", 768, 576)
    pixels, order = compressed_image_to_array(data, "bgr8; jpeg compressed bgr8")
    assert order == "bgr" and pixels.shape == (576, 768, 3)
    np.testing.assert_array_equal(pixels, cv2.imread(str(vtest_frame_paths()[3])))
    rgb, order = compressed_image_to_array(array.array("B", data), "jpeg", color_order="rgb")
    assert order == "rgb"
    np.testing.assert_array_equal(rgb, pixels[:, :, ::-1])


def test_png_decodes_losslessly(frame_bgr):
    ok, encoded = cv2.imencode(".png", frame_bgr)
    assert ok
    assert compressed_image_size(encoded.tobytes()) == ("png", 97, 61)
    pixels, _ = compressed_image_to_array(encoded.tobytes(), "png")
    np.testing.assert_array_equal(pixels, frame_bgr)


@pytest.mark.parametrize("cut", [0.5, 0.1])
def test_truncated_jpeg_is_refused(cut):
    data = vtest_frame_paths()[0].read_bytes()
    with pytest.raises(ImageFormatError, match="corrupt JPEG data"):
        compressed_image_to_array(data[: int(len(data) * cut)], "jpeg")


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"", "empty"),
        (b"this is not an image", "neither JPEG nor PNG"),
        (b"\xff\xd8\xff\xe0\x00", "no valid frame header"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "IHDR header is missing"),
    ],
)
def test_garbage_compressed_data_is_refused(data, pattern):
    with pytest.raises(ImageFormatError, match=pattern):
        compressed_image_to_array(data, "jpeg")


def test_compressed_depth_is_refused():
    data = vtest_frame_paths()[0].read_bytes()
    with pytest.raises(ImageFormatError, match="compressed depth"):
        compressed_image_to_array(data, "16UC1; compressedDepth png")


def test_png_bomb_is_refused_from_its_header_alone():
    # A PNG header claiming 50000 x 50000 pixels followed by nothing decodable: refused by size,
    # not by a decoding attempt that would allocate 7.5 GB.
    ihdr = struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0)
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
    with pytest.raises(ImageFormatError, match="50000 x 50000 = 2500000000 pixels, above the limit"):
        compressed_image_to_array(header + b"\0" * 16, "png")


def test_jpeg_size_limit_uses_the_parameter():
    data = vtest_frame_paths()[0].read_bytes()
    with pytest.raises(ImageFormatError, match="768 x 576 = 442368 pixels, above the limit of 100000"):
        compressed_image_to_array(data, "jpeg", max_pixels=100_000)


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """The JPEG with an APP1 Exif segment holding one Orientation tag (as phone cameras write it)."""
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">HHHIHHI", 1, 0x0112, 3, 1, orientation, 0, 0)
    body = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_jpeg_exif_orientation_is_ignored_pixels_stay_as_stored(orientation):
    from types import SimpleNamespace

    from litepose_ros.bags.storage import decode_bag_image

    plain = vtest_frame_paths()[3].read_bytes()
    tagged = with_exif_orientation(plain, orientation)
    stored, _ = compressed_image_to_array(plain, "jpeg")
    pixels, _ = compressed_image_to_array(tagged, "jpeg")  # not "corrupt", not rotated
    np.testing.assert_array_equal(pixels, stored)
    message = SimpleNamespace(data=tagged, format="jpeg")
    image = SimpleNamespace(message=message, compressed=True)
    np.testing.assert_array_equal(decode_bag_image(image), stored)  # the bag tools decode the same way


def corrupt_but_decodable_jpeg() -> bytes:
    data = vtest_frame_paths()[3].read_bytes()
    return data[:-2] + b"\xff\x00" * 40 + b"\x00" * 20 + data[-2:]  # junk before the end marker


def test_libjpeg_warnings_are_collected_not_printed(capfd):
    collected: list[str] = []
    pixels, _ = compressed_image_to_array(corrupt_but_decodable_jpeg(), "jpeg", warnings=collected)
    assert pixels.shape == (576, 768, 3)
    assert len(collected) == 1 and "Corrupt JPEG data" in collected[0]
    assert "Corrupt JPEG" not in capfd.readouterr().err
    clean: list[str] = []
    compressed_image_to_array(vtest_frame_paths()[3].read_bytes(), "jpeg", warnings=clean)
    assert clean == []
