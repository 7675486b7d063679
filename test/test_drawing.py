"""Skeleton drawing (litepose_ros.drawing)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from litepose_ros.benchmarks.decode_speed import POSE_TEMPLATE
from litepose_ros.drawing import default_thickness, draw_people, person_color
from litepose_ros.layouts import COCO_17, CROWDPOSE_14, KeypointLayout

IMAGES = Path(__file__).resolve().parent / "fixtures" / "images"


def person(layout: KeypointLayout, left: float, top: float, height: float, score: float = 0.9) -> np.ndarray:
    xy = np.array([POSE_TEMPLATE[name] for name in layout.keypoint_names]) * height + [left, top]
    return np.concatenate([xy, np.full((layout.num_keypoints, 1), score)], axis=1)


def test_distinct_colours():
    colours = [person_color(i) for i in range(12)]
    assert len(set(colours)) == 12
    for a, b in zip(colours, colours[1:], strict=False):  # neighbours differ strongly
        assert np.abs(np.subtract(a, b)).max() >= 60


@pytest.mark.parametrize("layout", [COCO_17, CROWDPOSE_14], ids=lambda layout: layout.name)
def test_people_drawn_in_their_colours(layout):
    canvas = np.zeros((240, 320, 3), np.uint8)
    people = np.stack([person(layout, 80, 20, 200), person(layout, 230, 20, 200)])
    result = draw_people(canvas, people, np.array([0.9, 0.5]), layout, draw_scores=False, thickness=3)
    assert result is canvas
    for index in range(2):
        for a, b in layout.edges:  # the middle of every long limb has the person's colour
            if np.linalg.norm(people[index, a, :2] - people[index, b, :2]) < 20:
                continue  # short limbs (the face) are covered by the joint dots
            middle = np.round((people[index, a, :2] + people[index, b, :2]) / 2).astype(int)
            patch = canvas[middle[1] - 1 : middle[1] + 2, middle[0] - 1 : middle[0] + 2].reshape(-1, 3)
            distance = np.abs(patch.astype(int) - person_color(index)).sum(axis=1).min()
            assert distance <= 30, (index, a, b)
    # Away from the skeletons the image is untouched.
    assert (canvas[:, :30] == 0).all() and (canvas[:, 290:] == 0).all()


def test_low_score_keypoints_and_their_limbs_are_not_drawn():
    canvas = np.zeros((240, 240, 3), np.uint8)
    people = person(COCO_17, 120, 20, 200)[None]
    people[0, 9, 2] = 0.1  # left wrist below the threshold
    draw_people(canvas, people, None, COCO_17, keypoint_threshold=0.3)
    wrist, elbow = people[0, 9, :2], people[0, 7, :2]
    x, y = np.round(wrist).astype(int)
    assert (canvas[y - 1 : y + 2, x - 1 : x + 2] == 0).all()
    # The forearm's far half (towards the hidden wrist) is empty too.
    far = np.round(elbow + 0.8 * (wrist - elbow)).astype(int)
    assert (canvas[far[1], far[0]] == 0).all()
    x, y = np.round(elbow).astype(int)
    assert canvas[y, x].any()  # the elbow itself is drawn


def test_scores_are_labelled_and_thickness_scales():
    base = np.zeros((240, 320, 3), np.uint8)
    people = person(COCO_17, 160, 40, 180)[None]
    plain = draw_people(base.copy(), people, np.array([0.87]), COCO_17, draw_scores=False)
    labelled = draw_people(base.copy(), people, np.array([0.87]), COCO_17, draw_scores=True)
    assert (labelled != plain).any(axis=2).sum() > 100  # the label adds a box with text
    # Above the head (the label's place) only the labelled image has ink.
    head_top = int(people[0, :, 1].min())
    assert labelled[: head_top - 2].any() and not plain[: head_top - 4].any()
    assert default_thickness((480, 640, 3)) == 2 and default_thickness((1080, 1920, 3)) > 3
    thin = draw_people(base.copy(), people, None, COCO_17, thickness=1)
    thick = draw_people(base.copy(), people, None, COCO_17, thickness=4)
    assert thick.any(axis=2).sum() > 1.4 * thin.any(axis=2).sum()


def test_draws_on_a_real_image():
    image = cv2.imread(str(IMAGES / "vtest_0000.jpg"), cv2.IMREAD_COLOR)
    original = image.copy()
    people = np.stack([person(COCO_17, 200, 100, 300), person(COCO_17, 500, 150, 250)])
    draw_people(image, people, np.array([0.8, 0.6]), "coco")
    changed = (image != original).any(axis=2)
    assert 0.01 < changed.mean() < 0.2


def test_no_people_and_non_finite_points_are_harmless():
    canvas = np.zeros((50, 50, 3), np.uint8)
    draw_people(canvas, np.zeros((0, 17, 3)), np.zeros(0), COCO_17)
    assert not canvas.any()
    people = person(COCO_17, 25, 5, 40)[None]
    people[0, 3, :2] = np.nan
    draw_people(canvas, people, np.array([0.5]), COCO_17)
    assert canvas.any()


def test_bad_arguments_are_rejected():
    canvas = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError, match=r"\(N, 17, 3\)"):
        draw_people(canvas, np.zeros((1, 14, 3)), None, COCO_17)
    with pytest.raises(ValueError, match="uint8 BGR"):
        draw_people(canvas.astype(np.float32), np.zeros((0, 17, 3)), None, COCO_17)
    with pytest.raises(ValueError, match="C-contiguous"):
        draw_people(canvas[:, ::-1], np.zeros((0, 17, 3)), None, COCO_17)
    with pytest.raises(ValueError, match="2 people but 1 scores"):
        draw_people(canvas, np.zeros((2, 17, 3)), np.zeros(1), COCO_17)
    with pytest.raises(ValueError, match="thickness"):
        draw_people(canvas, np.zeros((0, 17, 3)), None, COCO_17, thickness=0)
    with pytest.raises(ValueError, match="unknown keypoint layout"):
        draw_people(canvas, np.zeros((0, 17, 3)), None, "body25")


def test_tracked_people_take_the_colour_of_their_id_and_untracked_ones_are_drawn_as_before():
    people = np.stack([person(COCO_17, 40, 30, 100), person(COCO_17, 200, 30, 100)])
    scores = np.array([0.9, 0.8])

    def canvas() -> np.ndarray:
        return np.zeros((200, 320, 3), np.uint8)

    plain = draw_people(canvas(), people, scores, COCO_17)
    # All NO_ID (tracking on, nobody confirmed yet): exactly the picture without ids.
    untracked = draw_people(canvas(), people, scores, COCO_17, ids=np.array([-1, -1]))
    np.testing.assert_array_equal(untracked, plain)
    tracked = draw_people(canvas(), people, scores, COCO_17, ids=np.array([17, -1]))
    for index, colour_index in ((0, 17), (1, 1)):  # the id, or the rank without one
        x, y = np.round(people[index, 16, :2]).astype(int)  # last joint drawn: a dot of that colour
        assert tuple(int(c) for c in tracked[y, x]) == person_color(colour_index)
    assert not np.array_equal(tracked, plain)
    with pytest.raises(ValueError, match="track ids"):
        draw_people(canvas(), people, scores, COCO_17, ids=np.array([1]))
