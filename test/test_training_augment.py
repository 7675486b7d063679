"""Augmentation geometry and the training data set on the real fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from litepose_ros.layouts import COCO_17, CROWDPOSE_14
from litepose_ros.preprocess import input_to_map
from litepose_ros.training.augment import (
    AffineParams,
    apply_to_points,
    crop_matrix,
    downscale_matrix,
    sample_affine_params,
    warp_image,
)
from litepose_ros.training.config import AugmentConfig
from litepose_ros.training.dataset import KeypointDataset

FIXTURES = Path(__file__).parent / "fixtures" / "real_fixtures"
COCO_DIR = FIXTURES / "coco"
CROWDPOSE_DIR = FIXTURES / "crowdpose"
RECIPE = dict(
    max_rotation=30.0,
    min_scale=0.75,
    max_scale=1.5,
    scale_type="short",
    max_translate=40.0,
    flip_probability=0.5,
)


def test_centred_crop_of_the_short_side_is_a_pure_scale_and_shift():
    # 200 x 100 image, 50-pixel crop of the short side: zoom 0.5, centred horizontally.
    matrix = crop_matrix((200, 100), 50, AffineParams())
    centre = apply_to_points(matrix, np.array([99.5, 49.5]))  # image centre (pixel-centre coords)
    assert centre == pytest.approx([24.5, 24.5])
    # The crop's left edge (x = 50 - 0.5 in pixel centres) lands on the crop's left edge (-0.5).
    assert apply_to_points(matrix, np.array([49.5, -0.5])) == pytest.approx([-0.5, -0.5])
    assert matrix[:, :2] == pytest.approx(np.eye(2) * 0.5)


def test_flip_mirrors_about_the_crop_centre():
    plain = crop_matrix((100, 100), 100, AffineParams())
    flipped = crop_matrix((100, 100), 100, AffineParams(flip=True))
    assert plain == pytest.approx(np.array([[1.0, 0, 0], [0, 1.0, 0]]))
    assert apply_to_points(flipped, np.array([10.0, 20.0])) == pytest.approx([89.0, 20.0])


def test_rotation_turns_content_counter_clockwise_as_displayed():
    matrix = crop_matrix((101, 101), 101, AffineParams(rotation_deg=90.0))
    # A point right of the centre goes above it (y points down).
    assert apply_to_points(matrix, np.array([60.0, 50.0])) == pytest.approx([50.0, 40.0])


def test_output_matrices_agree_with_the_inference_map_convention():
    params = AffineParams(rotation_deg=12.0, scale=1.2, translate=(5.0, -3.0))
    matrix = crop_matrix((640, 480), 256, params)
    points = np.array([[100.0, 200.0], [320.5, 17.25]])
    for stride in (2, 4):
        expected = input_to_map(apply_to_points(matrix, points), stride)
        assert apply_to_points(downscale_matrix(matrix, stride), points) == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_warped_image_and_transformed_point_coincide(seed):
    rng = np.random.default_rng(seed)
    image = np.zeros((120, 160, 3), dtype=np.uint8)
    point = np.array([rng.integers(60, 100), rng.integers(45, 75)], dtype=np.float64)
    image[int(point[1]), int(point[0])] = 255
    params = sample_affine_params(
        rng, (160, 120), **{**RECIPE, "min_scale": 0.75, "max_scale": 0.9, "max_translate": 10.0}
    )
    matrix = crop_matrix((160, 120), 96, params)
    warped = warp_image(image, matrix, 96)[..., 0].astype(np.float64)
    ys, xs = np.mgrid[0:96, 0:96]
    centroid = np.array([(warped * xs).sum(), (warped * ys).sum()]) / warped.sum()
    assert np.linalg.norm(centroid - apply_to_points(matrix, point)) < 0.6


def test_sampled_parameters_are_seeded_and_within_the_recipe_ranges():
    draws = [sample_affine_params(np.random.default_rng([7, i]), (640, 480), **RECIPE) for i in range(200)]
    again = [sample_affine_params(np.random.default_rng([7, i]), (640, 480), **RECIPE) for i in range(200)]
    assert draws == again
    assert all(-30 <= d.rotation_deg <= 30 and 0.75 <= d.scale <= 1.5 for d in draws)
    # Translation: up to 40 pixels per 200 pixels of crop side.
    assert all(max(map(abs, d.translate)) <= 40 * 480 * d.scale / 200 for d in draws)
    flips = sum(d.flip for d in draws)
    assert 70 < flips < 130


@pytest.fixture(scope="module")
def coco_dataset():
    return KeypointDataset(COCO_DIR / "test_coco.json", COCO_DIR, COCO_17, 128, AugmentConfig(), seed=3)


def test_samples_are_deterministic_per_epoch_and_index(coco_dataset):
    coco_dataset.set_epoch(0)
    first = coco_dataset[1]
    again = coco_dataset[1]
    coco_dataset.set_epoch(1)
    other = coco_dataset[1]
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["image"], other["image"])
    assert first["image"].shape == (3, 128, 128)
    assert first["heatmaps_s4"].shape == (17, 32, 32)
    assert first["heatmaps_s2"].shape == (17, 64, 64)
    assert first["joints"].shape == (30, 17, 2)


def test_heatmap_peaks_sit_at_the_annotated_joints_without_augmentation():
    dataset = KeypointDataset(COCO_DIR / "test_coco.json", COCO_DIR, COCO_17, 256, None)
    index = [r.image_id for r in dataset.records].index(785)  # one person, all 17 joints
    sample = dataset[index]
    annotation = json.loads((COCO_DIR / "test_coco.json").read_text())
    person = next(
        np.array(a["keypoints"], dtype=float).reshape(17, 3)
        for a in annotation["annotations"]
        if a["image_id"] == 785
    )
    # Centred crop of the 425-pixel short side to 256: scale 256/425, x offset (640 - 425)/2.
    scale = 256 / 425
    crop_xy = (person[:, :2] + 0.5 - [(640 - 425) / 2, 0]) * scale - 0.5
    inside = (crop_xy >= 0).all(1) & (crop_xy < 256).all(1)
    for k in np.nonzero(inside)[0]:
        expected = input_to_map(crop_xy[k], 2)
        peak = np.unravel_index(np.argmax(sample["heatmaps_s2"][k]), (128, 128))
        assert abs(peak[1] - expected[0]) <= 0.5 and abs(peak[0] - expected[1]) <= 0.5


def test_annotated_people_without_keypoints_are_masked_out():
    dataset = KeypointDataset(COCO_DIR / "test_coco.json", COCO_DIR, COCO_17, 256, None)
    index = [r.image_id for r in dataset.records].index(40083)  # has a person with 0 keypoints
    assert len(dataset.records[index].ignore_annotations) == 1
    assert len(dataset.records[index].joints) == 2
    sample = dataset[index]
    assert 0 < (sample["mask_s2"] == 0).sum() < 0.05 * sample["mask_s2"].size
    assert set(np.unique(sample["mask_s4"])) <= {0.0, 1.0}
    other = dataset[[r.image_id for r in dataset.records].index(785)]
    assert (other["mask_s2"] == 1).all()


def test_crowdpose_file_loads_with_its_layout_and_rejects_the_wrong_one():
    dataset = KeypointDataset(CROWDPOSE_DIR / "test_crowdpose.json", CROWDPOSE_DIR, CROWDPOSE_14, 128, None)
    assert dataset[0]["heatmaps_s2"].shape == (14, 64, 64)
    with pytest.raises(ValueError, match="14 keypoints but the layout coco17 has 17"):
        KeypointDataset(CROWDPOSE_DIR / "test_crowdpose.json", CROWDPOSE_DIR, COCO_17, 128, None)


def test_flipped_sample_swaps_left_and_right_heatmaps():
    plain = KeypointDataset(COCO_DIR / "test_coco.json", COCO_DIR, COCO_17, 128, None)
    flip_only = AugmentConfig(max_rotation=0, min_scale=1, max_scale=1, max_translate=0, flip_probability=1)
    flipped = KeypointDataset(COCO_DIR / "test_coco.json", COCO_DIR, COCO_17, 128, flip_only)
    a, b = plain[0], flipped[0]
    np.testing.assert_allclose(b["image"], a["image"][:, :, ::-1], atol=1e-5)
    mirrored = a["heatmaps_s2"][list(COCO_17.flip_index), :, ::-1]
    np.testing.assert_allclose(b["heatmaps_s2"], mirrored, atol=1e-5)


def test_people_copied_verbatim_into_other_images_become_ignore_regions(tmp_path):
    from litepose_ros.evaluation import duplicated_annotation_ids, duplicated_people_as_crowd

    data = json.loads((COCO_DIR / "test_coco.json").read_text())
    original = next(a for a in data["annotations"] if a["image_id"] == 785)
    copy = dict(original, id=999_999, image_id=197388)  # the same keypoints in another image
    data["annotations"].append(copy)
    assert duplicated_annotation_ids(data["annotations"]) == {original["id"], 999_999}
    as_crowd = duplicated_people_as_crowd(data)
    assert [a["iscrowd"] for a in as_crowd["annotations"] if a["id"] in (original["id"], 999_999)] == [1, 1]
    assert sum(a["iscrowd"] for a in as_crowd["annotations"]) == 2
    path = tmp_path / "with_copy.json"
    path.write_text(json.dumps(data))
    kept = KeypointDataset(path, COCO_DIR, COCO_17, 128, None)
    ignored = KeypointDataset(path, COCO_DIR, COCO_17, 128, None, ignore_duplicated_people=True)
    index = [r.image_id for r in kept.records].index(785)
    assert len(kept.records[index].joints) == 1
    assert len(ignored.records[index].joints) == 0
    assert len(ignored.records[index].ignore_annotations) == 1
    assert (ignored[index]["mask_s2"] == 0).any() and (kept[index]["mask_s2"] == 1).all()
