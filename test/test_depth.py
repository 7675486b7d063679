"""3D keypoints from a registered depth image (litepose_ros.depth) on synthetic scenes of known geometry.

Depth images are rendered from planes through a pinhole camera, so every keypoint has an exact
answer: the intersection of its colour pixel's ray with the plane. The inverse-depth fit is exact
for planes, so answers must agree within 1 mm (float32 depth and float32 window sums cost far less).
"""

from __future__ import annotations

import array
import math
import warnings

import numpy as np
import pytest

from litepose_ros.benchmarks.decode_speed import POSE_TEMPLATE
from litepose_ros.depth import (
    DEPTH_ENCODINGS,
    DepthFormatError,
    DepthIntrinsics,
    DepthSettings,
    KeypointPositions,
    depth_to_metres,
    keypoint_positions,
    registration_problem,
)
from litepose_ros.layouts import COCO_17

WIDTH, HEIGHT = 640, 480
CAMERA = DepthIntrinsics(fx=600.0, fy=600.0, cx=319.5, cy=239.5, width=WIDTH, height=HEIGHT)
HALF_CAMERA = DepthIntrinsics(fx=300.0, fy=300.0, cx=159.5, cy=119.5, width=320, height=240)
TEMPLATE = np.array([POSE_TEMPLATE[name] for name in COCO_17.keypoint_names])
K = COCO_17.num_keypoints
MM = 1e-3  # the accuracy asked of positions on planes


def tilted_normal(about_y_deg: float, about_x_deg: float = 0.0) -> np.ndarray:
    """The camera's viewing direction (0, 0, 1) turned about y, then about x."""
    a, b = math.radians(about_y_deg), math.radians(about_x_deg)
    return np.array([math.sin(a), -math.cos(a) * math.sin(b), math.cos(a) * math.cos(b)])


FRONTAL = np.array([0.0, 0.0, 1.0])


def rays(u: np.ndarray, v: np.ndarray, camera: DepthIntrinsics) -> np.ndarray:
    """(..., 3) directions through pixel-centre coordinates u, v, with z = 1."""
    u, v = np.broadcast_arrays(np.asarray(u, np.float64), np.asarray(v, np.float64))
    return np.stack([(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, np.ones(u.shape)], axis=-1)


def plane_points(xy: np.ndarray, normal: np.ndarray, point, camera: DepthIntrinsics = CAMERA) -> np.ndarray:
    """Where the rays of pixels xy (..., 2) meet the plane through point with this normal."""
    direction = rays(xy[..., 0], xy[..., 1], camera)
    return direction * ((normal @ np.asarray(point, np.float64)) / (direction @ normal))[..., None]


def plane_depth(normal: np.ndarray, point, camera: DepthIntrinsics = CAMERA) -> np.ndarray:
    """(height, width) float64 depth of a plane at every pixel centre of the camera."""
    v, u = np.mgrid[0 : camera.height, 0 : camera.width].astype(np.float64)
    return plane_points(np.stack([u, v], axis=-1), normal, point, camera)[..., 2]


def standing_person(x: float, top: float, height: float, rng: np.random.Generator) -> np.ndarray:
    """(K, 2) COCO keypoints of a person height pixels tall, head top at (x, top), at random
    sub-pixel positions (a jitter of up to 2 px)."""
    return TEMPLATE * height + [x, top] + rng.uniform(-2.0, 2.0, (K, 2))


def people(*persons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, K, 3) with a score column and all-True valid (N, K)."""
    xy = np.stack(persons)
    keypoints = np.concatenate([xy, np.full(xy.shape[:2] + (1,), 0.9)], axis=2)
    return keypoints, np.ones(xy.shape[:2], bool)


def encode(depth_m: np.ndarray, encoding: str, *, bigendian: bool = False) -> tuple[bytes, int]:
    """Message data and step of a depth image in metres (NaN: no measurement)."""
    order = ">" if bigendian else "<"
    if encoding == "16UC1":
        values = np.where(np.isnan(depth_m), 0, np.rint(depth_m * 1000)).astype(f"{order}u2")
    else:
        values = depth_m.astype(f"{order}f4")
    return values.tobytes(), values.shape[1] * values.itemsize


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


# --- keypoint positions on planes ------------------------------------------------------------------


@pytest.mark.parametrize("encoding", DEPTH_ENCODINGS)
def test_fronto_parallel_plane_gives_the_ray_intersections(encoding: str, rng: np.random.Generator):
    depth = plane_depth(FRONTAL, (0, 0, 2.0))
    data, step = encode(depth, encoding)
    depth_m = depth_to_metres(data, encoding, HEIGHT, WIDTH, step)
    keypoints, valid = people(
        standing_person(320, 40, 400, rng),
        standing_person(120, 200, 150, rng),
        standing_person(520, 100, 250, rng),
    )
    result = keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA)
    truth = plane_points(keypoints[..., :2], FRONTAL, (0, 0, 2.0))
    assert result.valid.all() and result.person_valid.all()
    np.testing.assert_allclose(result.positions, truth, rtol=0, atol=MM)
    np.testing.assert_allclose(result.spread, 0.0, atol=1e-5)
    np.testing.assert_allclose(result.person_positions, np.median(truth, axis=1), rtol=0, atol=MM)


@pytest.mark.parametrize("tilt", [(40.0, 0.0), (-35.0, 25.0)], ids=["40deg-about-y", "about-y-and-x"])
def test_sloped_plane_gives_the_ray_intersections(tilt: tuple[float, float], rng: np.random.Generator):
    normal = tilted_normal(*tilt)
    depth_m = plane_depth(normal, (0, 0, 2.5)).astype(np.float32)
    data, step = encode(depth_m, "32FC1")
    depth_m = depth_to_metres(data, "32FC1", HEIGHT, WIDTH, step)
    keypoints, valid = people(
        standing_person(300, 30, 420, rng),
        standing_person(450, 150, 200, rng),
        standing_person(150, 250, 120, rng),
    )
    result = keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA)
    truth = plane_points(keypoints[..., :2], normal, (0, 0, 2.5))
    assert result.valid.all()
    np.testing.assert_allclose(result.positions, truth, rtol=0, atol=MM)
    # Exact inverse-depth planes: the spread is float32 rounding only.
    np.testing.assert_allclose(result.spread, 0.0, atol=1e-5)


def test_keypoints_at_the_image_border_use_windows_shifted_inside(rng: np.random.Generator):
    normal = tilted_normal(40.0, 20.0)
    depth_m = plane_depth(normal, (0, 0, 2.5)).astype(np.float32)
    corners = np.array([[-0.4, -0.4], [639.4, -0.3], [0.2, 479.45], [639.3, 479.2], [2.7, 240.6]])
    keypoints = np.zeros((len(corners), K, 2))
    keypoints[:, 0] = corners
    valid = np.zeros((len(corners), K), bool)
    valid[:, 0] = True  # one keypoint per person: the others never get a position
    result = keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA)
    assert np.array_equal(result.valid, valid)
    np.testing.assert_allclose(
        result.positions[:, 0], plane_points(corners, normal, (0, 0, 2.5)), rtol=0, atol=MM
    )
    assert not result.positions[:, 1:].any()


@pytest.mark.parametrize(
    ("depth_camera", "given"),
    [
        (HALF_CAMERA, HALF_CAMERA),  # depth at half resolution with its own camera_info
        (HALF_CAMERA, CAMERA),  # camera_info of the full-size camera: scaled to the depth image
        (CAMERA, HALF_CAMERA),  # camera_info of a half-size image for full-size depth
    ],
    ids=["half-own-info", "half-full-info", "full-half-info"],
)
def test_depth_at_another_resolution(
    depth_camera: DepthIntrinsics, given: DepthIntrinsics, rng: np.random.Generator
):
    normal = tilted_normal(40.0)
    depth_m = plane_depth(normal, (0, 0, 2.5), depth_camera).astype(np.float32)
    keypoints, valid = people(standing_person(300, 30, 420, rng), standing_person(480, 150, 200, rng))
    result = keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, given)
    assert result.valid.all()
    # The same answers as full-resolution depth: the colour camera's rays.
    np.testing.assert_allclose(
        result.positions, plane_points(keypoints[..., :2], normal, (0, 0, 2.5)), rtol=0, atol=MM
    )


def test_intrinsics_scale_with_the_pixel_centre_rule():
    assert CAMERA.scaled_to(320, 240) == HALF_CAMERA
    assert HALF_CAMERA.scaled_to(640, 480) == CAMERA
    assert CAMERA.scaled_to(640, 480) is CAMERA


def test_colour_at_lower_resolution_than_depth(rng: np.random.Generator):
    normal = tilted_normal(-30.0, 10.0)
    depth_m = plane_depth(normal, (0.2, 0, 3.0)).astype(np.float32)
    xy = standing_person(160, 20, 200, rng)  # in 320 x 240 colour pixels
    result = keypoint_positions(*people(xy), (320, 240), depth_m, CAMERA)
    assert result.valid.all()
    np.testing.assert_allclose(
        result.positions[0], plane_points(xy, normal, (0.2, 0, 3.0), HALF_CAMERA), rtol=0, atol=MM
    )


# --- holes, invalid values, other surfaces --------------------------------------------------------------


def test_holes_in_16uc1(rng: np.random.Generator):
    depth = plane_depth(FRONTAL, (0, 0, 2.0))
    keypoints, valid = people(standing_person(320, 40, 400, rng))  # window radius 7 (0.02 * 380 px)
    nose, left_hip = np.rint(keypoints[0, 0, :2]).astype(int), np.rint(keypoints[0, 11, :2]).astype(int)
    depth[nose[1] - 8 : nose[1] + 9, nose[0] - 8 : nose[0] + 9] = np.nan  # the nose's whole window
    depth[left_hip[1] - 8 : left_hip[1] + 2, left_hip[0] - 8 : left_hip[0] + 9] = np.nan  # most of the hip's
    data, step = encode(depth, "16UC1")
    depth_m = depth_to_metres(data, "16UC1", HEIGHT, WIDTH, step)
    result = keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA)
    expected_valid = np.ones((1, K), bool)
    expected_valid[0, 0] = False
    assert np.array_equal(result.valid, expected_valid)
    assert not result.positions[0, 0].any() and result.spread[0, 0] == 0
    truth = plane_points(keypoints[..., :2], FRONTAL, (0, 0, 2.0))
    np.testing.assert_allclose(result.positions[expected_valid], truth[expected_valid], rtol=0, atol=MM)


def test_nan_patches_on_a_sloped_plane(rng: np.random.Generator):
    normal = tilted_normal(40.0)
    depth_m = plane_depth(normal, (0, 0, 2.5)).astype(np.float32)
    keypoints, valid = people(standing_person(320, 40, 400, rng))
    # A NaN patch over a corner of every keypoint's window: the fit extrapolates from the rest.
    for x, y in np.rint(keypoints[0, :, :2]).astype(int):
        depth_m[y - 7 : y + 1, x - 3 : x + 8] = np.nan
    result = keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA)
    assert result.valid.all()
    np.testing.assert_allclose(
        result.positions, plane_points(keypoints[..., :2], normal, (0, 0, 2.5)), rtol=0, atol=MM
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, -1.0, 0.0, 0.05, 12.0])
def test_values_out_of_range_are_no_measurement(bad: float, rng: np.random.Generator):
    """Two thirds of every window hold the bad value: taken as depth, it would win the median."""
    normal = tilted_normal(40.0)
    depth_m = plane_depth(normal, (0, 0, 2.5)).astype(np.float32)
    keypoints, valid = people(standing_person(320, 40, 400, rng))
    rows = np.arange(HEIGHT)
    depth_m[rows % 3 != 0] = bad
    settings = DepthSettings(min_range=0.1, max_range=10.0)
    result = keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA, settings)
    assert result.valid.all()
    np.testing.assert_allclose(
        result.positions, plane_points(keypoints[..., :2], normal, (0, 0, 2.5)), rtol=0, atol=MM
    )


def test_range_limits_are_settings(rng: np.random.Generator):
    depth_m = plane_depth(FRONTAL, (0, 0, 2.0)).astype(np.float32)
    keypoints, valid = people(standing_person(320, 40, 400, rng))
    assert keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA).valid.all()
    for settings in (DepthSettings(max_range=1.9), DepthSettings(min_range=2.1)):
        result = keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA, settings)
        assert not result.valid.any()


def person_in_front_of_wall(rng: np.random.Generator):
    """A sloped body (a 36 x 50 cm plane at about 2 m) in front of a wall 3 m behind it, and the
    keypoints of a person standing there (rendered depth, keypoints (1, K, 3), valid, the body's plane)."""
    wall = plane_depth(FRONTAL, (0, 0, 5.0))
    body_normal, body_point = tilted_normal(20.0, 10.0), (0.0, 0.0, 2.0)
    body = plane_depth(body_normal, body_point)
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    on_body = (np.abs(u - 320) <= 80) & (v >= 20) & (v <= 470)
    depth_m = np.where(on_body, body, wall).astype(np.float32)
    xy = standing_person(320, 40, 400, rng)  # window radius 7, joints within 72 px of x = 320
    return depth_m, xy, body_normal, body_point


def test_a_joint_on_the_background_wall_is_rejected(rng: np.random.Generator):
    depth_m, xy, body_normal, body_point = person_in_front_of_wall(rng)
    xy[9] = [430.3, 240.6]  # the left wrist held out beside the body: its whole window is wall
    keypoints, valid = people(xy)
    result = keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA)
    expected = np.ones(K, bool)
    expected[9] = False
    assert np.array_equal(result.valid[0], expected)
    assert not result.positions[0, 9].any()
    np.testing.assert_allclose(
        result.positions[0, expected], plane_points(xy[expected], body_normal, body_point), rtol=0, atol=MM
    )
    # Without the check the wall's depth comes through (the window itself was fine).
    loose = keypoint_positions(
        keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA, DepthSettings(max_joint_offset=5.0)
    )
    assert loose.valid.all()
    np.testing.assert_allclose(
        loose.positions[0, 9], plane_points(xy[9], FRONTAL, (0, 0, 5.0)), rtol=0, atol=MM
    )


def test_a_window_with_a_minority_of_background_gives_the_body(rng: np.random.Generator):
    depth_m, xy, body_normal, body_point = person_in_front_of_wall(rng)
    # Joints 4 px inside the body's edges (x = 240 and 400): 3 of their 15 window columns are wall.
    xy[9], xy[10] = [396.2, 250.4], [243.7, 252.1]
    keypoints, valid = people(xy)
    result = keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA)
    assert result.valid.all()
    np.testing.assert_allclose(
        result.positions[0], plane_points(xy, body_normal, body_point), rtol=0, atol=MM
    )
    np.testing.assert_allclose(result.spread, 0.0, atol=1e-5)  # the wall pixels were no inliers


def test_each_person_masks_its_window_to_its_own_radius(rng: np.random.Generator):
    """A small person's keypoints (radius 2) sit on 5 x 5 patches at 2 m in front of a wall at 5 m,
    beside a tall person (radius 7) whose window size every keypoint shares: the small person's
    windows must not reach the wall, which would be most of a 15 x 15 window."""
    depth_m = np.full((HEIGHT, WIDTH), 5.0, np.float32)
    depth_m[:, 380:] = 2.0  # the tall person's side
    tall = standing_person(500, 40, 400, rng)
    small = np.full((K, 2), np.nan)
    small[0], small[15] = [100.2, 150.3], [99.8, 250.1]  # 100 px apart: radius round(0.02 * 100) = 2
    for x, y in np.rint(small[[0, 15]]).astype(int):
        depth_m[y - 2 : y + 3, x - 2 : x + 3] = 2.0
    keypoints, valid = people(small, tall)
    valid[0] = np.isfinite(small[:, 0])
    result = keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA)
    assert np.array_equal(result.valid, valid)
    np.testing.assert_allclose(result.positions[0, [0, 15], 2], 2.0, rtol=0, atol=MM)


def test_too_few_samples_give_no_position():
    depth_m = np.full((HEIGHT, WIDTH), np.nan, np.float32)
    depth_m[100, 100:103] = 2.0  # 3 valid pixels in the keypoint's 3 x 3 window
    keypoints = np.zeros((1, K, 2))
    keypoints[0, 0] = [101.0, 100.0]
    valid = np.zeros((1, K), bool)
    valid[0, 0] = True
    assert keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA).valid[0, 0]
    fewer = keypoint_positions(
        keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA, DepthSettings(min_samples=4)
    )
    assert not fewer.valid.any() and not fewer.person_valid.any()


def test_inliers_on_one_line_fall_back_to_the_median():
    """A window whose depths lie on one image row cannot fix a plane: the median of them is used."""
    normal = tilted_normal(40.0, 30.0)
    plane = plane_depth(normal, (0, 0, 2.5)).astype(np.float32)
    depth_m = np.full((HEIGHT, WIDTH), np.nan, np.float32)
    depth_m[200, 90:111] = plane[200, 90:111]
    keypoints = np.zeros((1, K, 2))
    keypoints[0, 0] = [100.3, 200.4]
    valid = np.zeros((1, K), bool)
    valid[0, 0] = True
    result = keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA)  # radius 1: 3 pixels
    assert result.valid[0, 0]
    assert result.positions[0, 0, 2] == pytest.approx(float(plane[200, 100]), abs=1e-6)
    # The spread is measured around that median: the two neighbours differ from it by the slope.
    slope = abs(float(plane[200, 101]) - float(plane[200, 100]))
    assert result.spread[0, 0] == pytest.approx(1.4826 * slope, rel=1e-3)


def test_spread_of_a_rough_surface():
    """A 2 m plane with a +-1 cm checkerboard: the fit goes through the middle, the spread is
    1.4826 x 1 cm."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    depth_m = np.where((u + v) % 2 == 0, 2.01, 1.99).astype(np.float32)
    keypoints = np.zeros((1, K, 2))
    keypoints[0, :, 0] = 320.0
    keypoints[0, :, 1] = np.linspace(40, 440, K)  # 400 px tall: radius 7
    result = keypoint_positions(keypoints, np.ones((1, K), bool), (WIDTH, HEIGHT), depth_m, CAMERA)
    assert result.valid.all()
    np.testing.assert_allclose(result.positions[..., 2], 2.0, rtol=0, atol=MM)
    np.testing.assert_allclose(result.spread, 1.4826 * 0.01, rtol=0.02)


# --- people, valid flags, odd input --------------------------------------------------------------------


def test_person_positions_are_the_median_of_their_valid_joints(rng: np.random.Generator):
    depth_m, xy, _, _ = person_in_front_of_wall(rng)
    xy[9] = [430.3, 240.6]  # on the wall: rejected, so left out of the median
    hole = np.full((K, 2), 0.0)
    hole[:, 0] = np.linspace(600, 630, K)
    hole[:, 1] = np.linspace(10, 40, K)
    depth_m[:60, 560:] = np.nan  # the second person stands in a hole
    keypoints, valid = people(xy, hole)
    valid[0, [3, 4]] = False  # invalid keypoints on good depth: never a position
    result = keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA)
    assert not result.valid[0, [3, 4]].any() and not result.positions[0, [3, 4]].any()
    assert not result.valid[0, 9]
    assert result.valid[0].sum() == K - 3  # an even count: the median is the mean of the middle two
    np.testing.assert_array_equal(
        result.person_positions[0], np.median(result.positions[0, result.valid[0]], axis=0)
    )
    assert result.person_valid.tolist() == [True, False]
    assert not result.valid[1].any() and not result.person_positions[1].any()


def test_keypoints_with_and_without_scores_agree(rng: np.random.Generator):
    depth_m = plane_depth(tilted_normal(30.0), (0, 0, 3.0)).astype(np.float32)
    keypoints, valid = people(standing_person(320, 60, 300, rng))
    with_scores = keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA)
    without = keypoint_positions(keypoints[..., :2], valid, (WIDTH, HEIGHT), depth_m, CAMERA)
    np.testing.assert_array_equal(with_scores.positions, without.positions)


def test_no_people():
    depth_m = np.full((HEIGHT, WIDTH), 2.0, np.float32)
    result = keypoint_positions(np.zeros((0, K, 3)), np.zeros((0, K), bool), (WIDTH, HEIGHT), depth_m, CAMERA)
    assert result.positions.shape == (0, K, 3) and result.valid.shape == (0, K)
    assert result.spread.shape == (0, K) and result.person_positions.shape == (0, 3)
    assert result.person_valid.shape == (0,)


def test_empty_result_shapes_and_types():
    empty = KeypointPositions.empty(2, 5)
    assert empty.positions.shape == (2, 5, 3) and empty.positions.dtype == np.float64
    assert empty.valid.shape == (2, 5) and empty.valid.dtype == bool and not empty.valid.any()
    assert empty.spread.dtype == np.float32 and not empty.spread.any()
    assert empty.person_positions.shape == (2, 3) and not empty.person_valid.any()


def test_non_finite_and_outside_coordinates_get_no_position(rng: np.random.Generator):
    depth_m = plane_depth(FRONTAL, (0, 0, 2.0)).astype(np.float32)
    keypoints, valid = people(standing_person(320, 40, 400, rng))
    bad = {
        0: (np.nan, 100.0),
        1: (np.inf, 100.0),
        2: (300.0, -np.inf),
        3: (1e300, 1e300),
        4: (-1e300, 50.0),
        5: (640.2, 200.0),
        6: (200.0, -0.7),
    }
    for joint, xy in bad.items():
        keypoints[0, joint, :2] = xy
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning either
        result = keypoint_positions(keypoints, valid, (WIDTH, HEIGHT), depth_m, CAMERA)
    expected = np.ones(K, bool)
    expected[list(bad)] = False
    assert np.array_equal(result.valid[0], expected)
    truth = plane_points(keypoints[0, expected, :2], FRONTAL, (0, 0, 2.0))
    np.testing.assert_allclose(result.positions[0, expected], truth, rtol=0, atol=MM)


@pytest.mark.parametrize(
    ("keypoints", "valid", "depth_shape", "words"),
    [
        ((2, K, 3), (2, K - 1), (HEIGHT, WIDTH), ["(2, 17)", "(2, 16)"]),
        ((2, K, 4), (2, K), (HEIGHT, WIDTH), ["(2, 17, 4)"]),
        ((2, K), (2, K), (HEIGHT, WIDTH), ["(2, 17)"]),
        ((2, K, 3), (2, K), (HEIGHT, WIDTH, 1), ["(480, 640, 1)"]),
        ((2, K, 3), (2, K), (0, WIDTH), ["(0, 640)"]),
    ],
)
def test_input_shapes_are_checked(keypoints, valid, depth_shape, words):
    with pytest.raises(ValueError) as error:
        keypoint_positions(
            np.zeros(keypoints),
            np.ones(valid, bool),
            (WIDTH, HEIGHT),
            np.ones(depth_shape, np.float32),
            CAMERA,
        )
    for word in words:
        assert word in str(error.value)


def test_depth_in_millimetres_is_refused():
    with pytest.raises(ValueError, match="depth_to_metres"):
        keypoint_positions(
            np.zeros((1, K, 3)),
            np.ones((1, K), bool),
            (WIDTH, HEIGHT),
            np.full((HEIGHT, WIDTH), 2000, np.uint16),
            CAMERA,
        )


@pytest.mark.parametrize("colour_size", [(0, 480), (640, -1)])
def test_colour_size_is_checked(colour_size):
    with pytest.raises(ValueError, match="colour_size"):
        keypoint_positions(
            np.zeros((1, K, 3)),
            np.ones((1, K), bool),
            colour_size,
            np.ones((HEIGHT, WIDTH), np.float32),
            CAMERA,
        )


# --- depth_to_metres --------------------------------------------------------------------------------


MILLIMETRES = np.array([[0, 1, 2000, 65535], [1234, 0, 500, 999], [7, 8, 9, 0]], np.uint16)
MILLIMETRES_IN_METRES = np.where(MILLIMETRES == 0, np.nan, MILLIMETRES / 1000.0).astype(np.float32)


@pytest.mark.parametrize("bigendian", [False, True])
def test_16uc1_is_millimetres(bigendian: bool):
    values = MILLIMETRES.astype(">u2" if bigendian else "<u2")
    depth = depth_to_metres(values.tobytes(), "16UC1", 3, 4, 8, bigendian)
    assert depth.dtype == np.float32 and depth.shape == (3, 4)
    np.testing.assert_array_equal(depth, MILLIMETRES_IN_METRES)
    assert depth[0, 2] == 2.0


@pytest.mark.parametrize(
    "make",
    [
        bytes,
        bytearray,
        memoryview,
        lambda b: array.array("B", b),
        lambda b: np.frombuffer(b, np.uint8),
        lambda b: np.frombuffer(b, "<u2"),
    ],
    ids=["bytes", "bytearray", "memoryview", "array", "ndarray-u8", "ndarray-u16"],
)
def test_buffer_types(make):
    data = MILLIMETRES.astype("<u2").tobytes()
    np.testing.assert_array_equal(depth_to_metres(make(data), "16UC1", 3, 4, 8), MILLIMETRES_IN_METRES)


@pytest.mark.parametrize("encoding", DEPTH_ENCODINGS)
@pytest.mark.parametrize("bigendian", [False, True])
def test_padded_rows(encoding: str, bigendian: bool):
    rng = np.random.default_rng(3)
    order = ">" if bigendian else "<"
    values = (
        MILLIMETRES.astype(f"{order}u2")
        if encoding == "16UC1"
        else (MILLIMETRES / 1000.0).astype(f"{order}f4")
    )
    rows = values.view(np.uint8).reshape(3, -1)
    padded = np.concatenate([rows, rng.integers(1, 256, (3, 6), dtype=np.uint8)], axis=1)
    depth = depth_to_metres(padded.tobytes(), encoding, 3, 4, padded.shape[1], bigendian)
    expected = MILLIMETRES / 1000.0
    expected[MILLIMETRES == 0] = np.nan
    np.testing.assert_allclose(depth, expected, rtol=1e-6)


@pytest.mark.parametrize("bigendian", [False, True])
def test_32fc1_no_measurement_values(bigendian: bool):
    values = np.array([[2.5, 0.0, np.nan, np.inf], [-np.inf, -1.0, 1e-3, 7.25]], np.float32)
    depth = depth_to_metres(
        values.astype(">f4" if bigendian else "<f4").tobytes(), "32FC1", 2, 4, 16, bigendian
    )
    expected = np.array([[2.5, np.nan, np.nan, np.nan], [np.nan, np.nan, 1e-3, 7.25]], np.float32)
    np.testing.assert_array_equal(depth, expected)


def test_result_is_a_writable_copy():
    data = bytearray((np.full((2, 3), 1.5, np.float32)).tobytes())
    depth = depth_to_metres(data, "32FC1", 2, 3, 12)
    depth[0, 0] = 9.0
    assert np.frombuffer(data, np.float32)[0] == 1.5


@pytest.mark.parametrize("encoding", ["rgb8", "mono16", "", "16uc1", "8UC1"])
def test_other_encodings_are_refused(encoding: str):
    with pytest.raises(DepthFormatError) as error:
        depth_to_metres(bytes(24), encoding, 3, 4, 8)
    message = str(error.value)
    assert repr(encoding) in message and "16UC1" in message and "32FC1" in message
    assert "aligned_depth_to_color" in message
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize("size", [23, 25, 0])
def test_buffer_length_must_be_step_times_height(size: int):
    with pytest.raises(DepthFormatError) as error:
        depth_to_metres(bytes(size), "16UC1", 3, 4, 8)
    assert f"holds {size} bytes" in str(error.value) and "= 24" in str(error.value)


def test_step_and_size_are_checked():
    with pytest.raises(DepthFormatError, match="step >= 16"):
        depth_to_metres(bytes(36), "32FC1", 3, 4, 12)
    with pytest.raises(DepthFormatError, match="empty"):
        depth_to_metres(b"", "16UC1", 0, 4, 8)


# --- registration ---------------------------------------------------------------------------------


COLOUR_FRAME, DEPTH_FRAME = "cam_color_optical_frame", "cam_depth_optical_frame"


def test_registration_accepts_the_same_frame_at_any_scale():
    assert registration_problem((640, 480), (640, 480), COLOUR_FRAME, COLOUR_FRAME) is None
    assert registration_problem((640, 480), (320, 240), COLOUR_FRAME, COLOUR_FRAME) is None
    assert registration_problem((1280, 720), (848, 480), "f", "f") is None  # 1.7778 against 1.7667: < 1 %


def test_registration_refuses_another_aspect_ratio():
    problem = registration_problem((640, 480), (848, 480), "f", "f")
    assert problem is not None
    assert "640 x 480" in problem and "848 x 480" in problem and "aligned_depth_to_color" in problem


def test_registration_refuses_another_frame():
    problem = registration_problem((640, 480), (640, 480), COLOUR_FRAME, DEPTH_FRAME)
    assert problem is not None
    assert COLOUR_FRAME in problem and DEPTH_FRAME in problem
    assert "align_depth.enable:=true" in problem


def test_an_empty_colour_frame_accepts_any_depth_frame():
    assert registration_problem((640, 480), (320, 240), "", DEPTH_FRAME) is None
    # ... but not any size.
    assert registration_problem((640, 480), (1280, 720), "", DEPTH_FRAME) is not None


# --- intrinsics and settings --------------------------------------------------------------------------


def test_intrinsics_from_camera_info():
    k = [615.0, 0.0, 321.5, 0.0, 614.0, 238.25, 0.0, 0.0, 1.0]
    expected = DepthIntrinsics(615.0, 614.0, 321.5, 238.25, 640, 480)
    assert DepthIntrinsics.from_camera_info(k, 640, 480) == expected
    assert DepthIntrinsics.from_camera_info(np.array(k).reshape(3, 3), 640, 480).fy == 614.0


@pytest.mark.parametrize(
    "k",
    [[0.0] * 9, [-600.0, 0, 320, 0, 600, 240, 0, 0, 1], [600.0, 0, 320, 0, math.nan, 240, 0, 0, 1]],
    ids=["zero", "negative", "nan"],
)
def test_uncalibrated_camera_info_is_refused(k):
    with pytest.raises(ValueError, match="calibration"):
        DepthIntrinsics.from_camera_info(k, 640, 480)


@pytest.mark.parametrize(("width", "height"), [(0, 480), (640, 0)])
def test_camera_info_without_size_is_refused(width: int, height: int):
    with pytest.raises(ValueError, match="width and height"):
        DepthIntrinsics.from_camera_info([600.0, 0, 320, 0, 600, 240, 0, 0, 1], width, height)


def test_camera_info_k_needs_nine_numbers():
    with pytest.raises(ValueError, match="9 numbers"):
        DepthIntrinsics.from_camera_info([600.0, 0, 320, 0, 600, 240], 640, 480)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_range", 0.0),
        ("min_range", -1.0),
        ("max_range", 0.1),
        ("max_range", math.nan),
        ("window_fraction", 0.0),
        ("window_fraction", math.inf),
        ("max_window_radius", 0),
        ("max_window_radius", 2.5),
        ("min_samples", 0),
        ("min_samples", 226),
        ("max_joint_offset", 0.0),
        ("max_joint_offset", -0.5),
    ],
)
def test_settings_are_validated(field: str, value: float):
    with pytest.raises(ValueError, match=field):
        DepthSettings(**{field: value})


def test_default_settings():
    settings = DepthSettings()
    assert (
        settings.min_range,
        settings.max_range,
        settings.window_fraction,
        settings.max_window_radius,
        settings.min_samples,
        settings.max_joint_offset,
    ) == (0.1, 10.0, 0.02, 7, 3, 0.8)


def test_intrinsics_for_a_depth_image_of_another_size_or_a_clear_error():
    from litepose_ros.depth import intrinsics_for

    camera = DepthIntrinsics.from_camera_info([400.0, 0, 319.5, 0, 400.0, 239.5, 0, 0, 1], 640, 480)
    assert intrinsics_for(camera, 640, 480) is camera
    half = intrinsics_for(camera, 320, 240)
    assert (half.fx, half.fy, half.cx, half.cy) == (200.0, 200.0, 159.5, 119.5)
    # A calibration that is finite for its own size but not once rescaled: the caller's depth error.
    huge = DepthIntrinsics.from_camera_info([1e308, 0, 7.5, 0, 1e308, 5.5, 0, 0, 1], 16, 12)
    with pytest.raises(
        DepthFormatError, match=r"calibration for 16 x 12 does not fit the 32 x 24 depth image.*fx=inf"
    ):
        intrinsics_for(huge, 32, 24)
    tiny = DepthIntrinsics.from_camera_info([5e-324, 0, 7.5, 0, 5e-324, 5.5, 0, 0, 1], 16, 12)
    with pytest.raises(DepthFormatError, match="does not fit the 8 x 6 depth image"):
        intrinsics_for(tiny, 8, 6)
