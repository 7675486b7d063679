"""The aspect-preserving resize, its inverse and the normalisation (litepose_ros.preprocess)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from litepose_ros.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    input_to_map,
    make_transform,
    map_to_input,
    network_input_size,
    normalize_image,
    preprocess_image,
    resize_image,
)


@pytest.mark.parametrize(
    ("width", "height", "input_size", "expected"),
    [
        (640, 480, 256, (384, 256)),  # landscape: 640 * 256/480 = 341.3 -> 384
        (480, 640, 256, (256, 384)),  # portrait
        (100, 100, 256, (256, 256)),  # square, upscaled
        (512, 256, 128, (256, 128)),  # long side already a multiple of 64
        (768, 576, 448, (640, 448)),  # vtest at S size: 597.3 -> 640
        (100, 799, 64, (64, 512)),  # near the 8:1 limit: 64 * 799 / 100 = 511.4 -> 512 (thinner: refused)
        (640, 480, 160, (256, 160)),  # short side a multiple of 16 only: 213.3 -> 256
    ],
)
def test_network_input_size(width, height, input_size, expected):
    assert network_input_size(width, height, input_size) == expected


def test_network_input_size_uses_exact_arithmetic():
    # 64 / 75 * 525 is 448 exactly, but in floating point it is 448.00000000000006 (one multiple
    # of 64 too many if rounded up naively).
    assert 64 / 75 * 525 > 448
    assert network_input_size(75, 525, 64) == (64, 448)


def test_transform_maps_corners_and_centre():
    t = make_transform(310, 200, 128)
    assert t.input_size == (256, 128)
    r = 128 / 200
    # The image area [-0.5, 309.5] x [-0.5, 199.5] lands centred in the input area.
    left, top = t.source_to_input(np.array([-0.5, -0.5]))
    right, bottom = t.source_to_input(np.array([309.5, 199.5]))
    assert right - left == pytest.approx(310 * r)
    assert (left + 0.5) == pytest.approx(255.5 - right)  # equal margins
    assert top == pytest.approx(-0.5) and bottom == pytest.approx(127.5)
    centre = t.source_to_input(np.array([154.5, 99.5]))
    np.testing.assert_allclose(centre, [127.5, 63.5])


def test_transform_round_trips():
    rng = np.random.default_rng(0)
    points = rng.uniform(-10, 700, size=(5, 17, 2))
    for width, height, size in ((640, 480, 256), (481, 999, 192), (50, 50, 448)):
        t = make_transform(width, height, size)
        np.testing.assert_allclose(t.input_to_source(t.source_to_input(points)), points, atol=1e-9)
        for stride in (1, 2, 4):
            np.testing.assert_allclose(
                t.map_to_source(t.source_to_map(points, stride), stride), points, atol=1e-9
            )
        homogeneous = np.vstack([t.matrix, [0, 0, 1]]) @ np.vstack([t.inverse_matrix, [0, 0, 1]])
        np.testing.assert_allclose(homogeneous, np.eye(3), atol=1e-12)
        p = np.array([[3.0, 4.0]])
        np.testing.assert_allclose(t.matrix @ [3.0, 4.0, 1.0], t.source_to_input(p)[0])


def test_map_pixel_centres():
    # Stride-2 map pixel 0 covers input pixels 0 and 1: its centre is input x = 0.5.
    np.testing.assert_allclose(map_to_input(np.array([0.0, 0.0]), 2), [0.5, 0.5])
    np.testing.assert_allclose(map_to_input(np.array([3.0, 1.0]), 4), [13.5, 5.5])
    np.testing.assert_allclose(input_to_map(map_to_input(np.array([2.25, 7.0]), 4), 4), [2.25, 7.0])


def test_resize_matches_cv2_resize_without_margin():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(256, 640, 3), dtype=np.uint8)
    t = make_transform(640, 256, 128)  # scale 0.5, input 320 x 128: no margin
    assert t.input_size == (320, 128)
    warped = resize_image(image, t).astype(int)
    resized = cv2.resize(image, (320, 128), interpolation=cv2.INTER_LINEAR).astype(int)
    assert np.abs(warped - resized).max() <= 1


def test_resize_keeps_content_registered_with_coordinates():
    # A small bright blob at a known source position must land where source_to_input says.
    image = np.zeros((150, 200, 3), np.uint8)
    yy, xx = np.mgrid[0:150, 0:200]
    centre = (123.0, 41.0)
    blob = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * 3.0**2))
    image[...] = (blob * 255).round().astype(np.uint8)[..., None]
    t = make_transform(200, 150, 256)
    warped = resize_image(image, t)[..., 0].astype(float)
    wy, wx = np.mgrid[0 : warped.shape[0], 0 : warped.shape[1]]
    found = np.array([(warped * wx).sum(), (warped * wy).sum()]) / warped.sum()
    np.testing.assert_allclose(found, t.source_to_input(np.array(centre)), atol=0.05)


def test_margin_is_black_and_symmetric():
    image = np.full((200, 310, 3), 255, np.uint8)
    t = make_transform(310, 200, 128)
    warped = resize_image(image, t)
    assert warped.shape == (128, 256, 3)
    column = warped[64, :, 0]
    inside = np.flatnonzero(column > 127)
    left_margin, right_margin = inside[0], 255 - inside[-1]
    assert abs(int(left_margin) - int(right_margin)) <= 1
    assert left_margin > 20
    assert (column[: left_margin - 1] == 0).all() and (column[inside[-1] + 2 :] == 0).all()


def test_normalisation_channel_order_and_values():
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[...] = (10, 20, 30)  # B, G, R
    batch = normalize_image(bgr, "bgr")
    assert batch.shape == (1, 3, 4, 5) and batch.dtype == np.float32 and batch.flags.c_contiguous
    expected_rgb = [
        (v / 255 - m) / s for v, m, s in zip((30, 20, 10), IMAGENET_MEAN, IMAGENET_STD, strict=True)
    ]
    np.testing.assert_allclose(batch[0, :, 0, 0], expected_rgb, rtol=1e-5)
    rgb_batch = normalize_image(bgr[..., ::-1].copy(), "rgb")
    np.testing.assert_allclose(rgb_batch, batch)


@pytest.mark.parametrize("shape", [(256, 320), (1, 1), (37, 51), (480, 640)])
def test_one_pass_normalisation_equals_the_float_formula(shape):
    # The table lookup must give what (x / 255 - mean) / std in float arithmetic gives (the
    # previous numpy implementation), within float32 rounding, for every level and both orders,
    # also for images that are views (not C-contiguous).
    rng = np.random.default_rng(shape[0])
    bgr = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    bgr.reshape(-1, 3)[:256] = np.arange(256, dtype=np.uint8)[: bgr.reshape(-1, 3)[:256].shape[0], None]
    mean = np.asarray(IMAGENET_MEAN, np.float32)
    std = np.asarray(IMAGENET_STD, np.float32)
    expected = bgr[..., ::-1].astype(np.float32) * (1.0 / (255.0 * std)) - mean / std
    expected = expected.transpose(2, 0, 1)[None]
    np.testing.assert_allclose(normalize_image(bgr, "bgr"), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(normalize_image(bgr[..., ::-1], "rgb"), expected, rtol=0, atol=1e-6)
    wide = np.repeat(bgr, 2, axis=1)[:, ::2]  # the same image as a strided view
    np.testing.assert_allclose(normalize_image(wide, "bgr"), expected, rtol=0, atol=1e-6)


def test_preprocess_image_shapes():
    image = np.zeros((480, 640, 3), np.uint8)
    batch, t = preprocess_image(image, 256)
    assert batch.shape == (1, 3, 256, 384)
    assert t.source_size == (640, 480) and t.input_size == (384, 256)
    # The black margin normalises to -mean/std.
    np.testing.assert_allclose(batch[0, :, 0, 0], -np.array(IMAGENET_MEAN) / IMAGENET_STD, rtol=1e-5)


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        (np.zeros((10, 10, 3), np.float32), TypeError, "uint8"),
        (np.zeros((10, 10), np.uint8), ValueError, "COLOR_GRAY2BGR"),
        (np.zeros((10, 10, 1), np.uint8), ValueError, "COLOR_GRAY2BGR"),
        (np.zeros((10, 10, 4), np.uint8), ValueError, "alpha"),
        (np.zeros((10, 10, 3, 1), np.uint8), ValueError, "(H, W, 3)"),
        (np.zeros((0, 10, 3), np.uint8), ValueError, "empty"),
        ([[0, 0, 0]], TypeError, "numpy array"),
    ],
)
def test_bad_images_are_rejected(image, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        preprocess_image(image, 256)


def test_bad_settings_are_rejected():
    image = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="multiple of 16"):
        preprocess_image(image, 200)
    with pytest.raises(ValueError, match="size_multiple"):
        preprocess_image(image, 256, size_multiple=40)
    with pytest.raises(ValueError, match="color_order"):
        preprocess_image(image, 256, color_order="BGR ")
    with pytest.raises(ValueError, match="stride"):
        map_to_input(np.zeros(2), 0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        make_transform(10, 10, 64).source_to_input(np.zeros(3))
    with pytest.raises(ValueError, match="does not match"):
        resize_image(np.zeros((11, 10, 3), np.uint8), make_transform(10, 10, 64))


@pytest.mark.parametrize("width, height", [(640, 1), (1, 640), (2, 1280), (16_000_000, 1), (2049, 256)])
def test_very_thin_images_are_refused_before_any_resize(width, height):
    from litepose_ros.preprocess import MAX_ASPECT_RATIO, ImageSizeError

    with pytest.raises(ImageSizeError, match=r"aspect ratio .* above the limit of 8:1.*crop") as caught:
        network_input_size(width, height, 256)
    assert "cv2" not in str(caught.value) and "OpenCV" not in str(caught.value)
    assert MAX_ASPECT_RATIO == 8
    with pytest.raises(ValueError):  # an ImageSizeError is a ValueError, as callers expect
        make_transform(width, height, 256)


def test_the_network_input_is_bounded_on_both_sides():
    from litepose_ros.preprocess import MAX_ASPECT_RATIO, max_network_side

    for width, height in [(2048, 256), (256, 2048), (1920, 240), (8, 1), (1, 8), (1, 1), (4096, 3000)]:
        input_w, input_h = network_input_size(width, height, 256)
        assert min(input_w, input_h) == 256
        assert max(input_w, input_h) <= max_network_side(256) <= 256 * MAX_ASPECT_RATIO + 64
