"""Heatmap and tag-index targets on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from litepose_ros.decoding.codec import joint_index_lists, render_heatmaps


def test_gaussian_on_a_pixel_centre_peaks_at_one_with_sigma_2():
    joints = np.array([[[5.0, 4.0]]])  # one person, one joint at x=5, y=4
    heatmaps = render_heatmaps(joints, np.array([[True]]), (10, 12), sigma=2.0)
    assert heatmaps.shape == (1, 10, 12)
    assert heatmaps[0, 4, 5] == pytest.approx(1.0)
    assert heatmaps[0, 4, 6] == pytest.approx(math.exp(-1 / 8))
    assert heatmaps[0, 6, 5] == pytest.approx(math.exp(-4 / 8))
    assert heatmaps[0, 5, 6] == pytest.approx(math.exp(-2 / 8))
    assert np.unravel_index(np.argmax(heatmaps[0]), (10, 12)) == (4, 5)


def test_gaussian_is_cut_off_beyond_three_sigma_plus_one():
    heatmaps = render_heatmaps(np.array([[[10.0, 10.0]]]), np.array([[True]]), (21, 21), sigma=2.0)
    assert heatmaps[0, 10, 17] == pytest.approx(math.exp(-49 / 8))  # 7 = 3 sigma + 1: inside
    assert heatmaps[0, 10, 18] == 0.0
    assert heatmaps[0, 10, 2] == 0.0


def test_sub_pixel_centre_is_symmetric_between_pixels():
    heatmaps = render_heatmaps(np.array([[[3.5, 2.0]]]), np.array([[True]]), (6, 8), sigma=2.0)
    assert heatmaps[0, 2, 3] == pytest.approx(heatmaps[0, 2, 4])
    assert heatmaps[0, 2, 3] == pytest.approx(math.exp(-0.25 / 8))


def test_people_combine_by_maximum_and_invisible_or_outside_joints_are_skipped():
    joints = np.array(
        [
            [[2.0, 2.0], [1.0, 1.0]],
            [[4.0, 2.0], [20.0, 1.0]],  # joint 1 outside an 8-wide map
        ]
    )
    visible = np.array([[True, False], [True, True]])
    heatmaps = render_heatmaps(joints, visible, (5, 8), sigma=2.0)
    # Midway between the two joint-0 people: the maximum of two equal Gaussians, not their sum.
    assert heatmaps[0, 2, 3] == pytest.approx(math.exp(-1 / 8))
    assert heatmaps[0, 2, 2] == pytest.approx(1.0)
    assert heatmaps[0, 2, 4] == pytest.approx(1.0)
    assert not heatmaps[1].any()  # person 0's joint 1 is invisible, person 1's is outside


def test_joint_index_lists_hand_made():
    # Map 4 high, 5 wide, 2 joints; index = k * H * W + y * W + x.
    joints = np.array(
        [
            [[1.0, 2.0], [4.2, 3.4]],
            [[0.0, 0.0], [-3.0, 1.0]],  # joint 1 outside
        ]
    )
    visible = np.array([[True, True], [False, True]])
    lists = joint_index_lists(joints, visible, (4, 5), max_people=3)
    assert lists.shape == (3, 2, 2)
    assert lists.dtype == np.int64
    assert lists[0, 0].tolist() == [0 * 20 + 2 * 5 + 1, 1]
    assert lists[0, 1].tolist() == [1 * 20 + 3 * 5 + 4, 1]
    assert lists[1].tolist() == [[0, 0], [0, 0]]
    assert lists[2].tolist() == [[0, 0], [0, 0]]


def test_joint_index_lists_keep_at_most_max_people():
    joints = np.tile(np.array([[[1.0, 1.0]]]), (5, 1, 1))
    lists = joint_index_lists(joints, np.ones((5, 1), dtype=bool), (3, 3), max_people=2)
    assert lists.shape == (2, 1, 2)
    assert lists[:, 0, 1].tolist() == [1, 1]


def test_no_people_gives_empty_targets():
    joints = np.zeros((0, 17, 2))
    visible = np.zeros((0, 17), dtype=bool)
    assert not render_heatmaps(joints, visible, (8, 8)).any()
    assert not joint_index_lists(joints, visible, (8, 8)).any()


def test_the_output_codec_renders_every_target_of_a_sample_at_the_network_strides():
    from litepose_ros.decoding.codec import OUTPUT_STRIDES, TAG_STRIDE, OutputCodec
    from litepose_ros.decoding.config import DECODE_STRIDE

    assert OUTPUT_STRIDES == (4, 2) and TAG_STRIDE == 4 and DECODE_STRIDE == 2
    joints = np.array([[[8.0, 10.0], [20.0, 4.0]]])  # one person, two joints, at stride 4
    visible = np.array([[True, True]])
    points = {4: joints, 2: joints * 2 + 0.5}  # the same joints on the stride-2 grid (pixel centres)
    codec = OutputCodec(sigma=1.5, max_people=3)
    targets = codec.targets(points, visible, input_size=128)
    assert set(targets) == {"heatmaps_s4", "heatmaps_s2", "joints"}
    assert targets["heatmaps_s4"].shape == (2, 32, 32) and targets["heatmaps_s2"].shape == (2, 64, 64)
    np.testing.assert_array_equal(targets["heatmaps_s4"], render_heatmaps(joints, visible, (32, 32), 1.5))
    np.testing.assert_array_equal(targets["heatmaps_s2"], render_heatmaps(points[2], visible, (64, 64), 1.5))
    np.testing.assert_array_equal(targets["joints"], joint_index_lists(joints, visible, (32, 32), 3))
    with pytest.raises(ValueError, match="sigma"):
        OutputCodec(sigma=0.0)
    with pytest.raises(ValueError, match="max_people"):
        OutputCodec(max_people=0)
