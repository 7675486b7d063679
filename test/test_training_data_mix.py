"""Mixed training sources, background negatives, copy-paste compositing and photometric jitter,
on hand-made images: flat-coloured rectangle "people" whose joints sit at known places."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from litepose_ros.layouts import COCO_17
from litepose_ros.preprocess import IMAGENET_MEAN, IMAGENET_STD
from litepose_ros.training.composite import PasteDraw, cut_out, occlude, paste
from litepose_ros.training.config import AugmentConfig, SourceConfig, TrainConfig
from litepose_ros.training.dataset import KeypointDataset

COCO_DIR = Path(__file__).parent / "fixtures" / "real_fixtures" / "coco"
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)
LEFT = [k for k in range(1, 17, 2)]  # COCO-17: odd indices are left joints
RIGHT = [k for k in range(2, 17, 2)]
CATEGORY = {"id": 1, "name": "person", "keypoints": [f"k{k}" for k in range(17)], "skeleton": []}
STILL = dict(max_rotation=0.0, min_scale=1.0, max_scale=1.0, max_translate=0.0, flip_probability=0.0)


def rectangle_person(x: int, y: int, w: int, h: int, labelled: int = 17) -> list[float]:
    """17 joints inside a w x h box at (x, y): right joints (and the nose) in the image-left half,
    left joints in the image-right half, at the halves' centre lines; the first ``labelled``
    joints have v = 2, the rest v = 0."""
    keypoints = []
    for k in range(17):
        side = 0.75 if k in LEFT else 0.25
        level = 0.08 if k == 0 else 0.15 + 0.1 * ((k - 1) // 2)
        v = 2 if k < labelled else 0
        keypoints += [x + side * w, y + level * h, v] if v else [0.0, 0.0, 0]
    return keypoints


def write_source(
    folder: Path,
    name: str,
    people: list[tuple[int, int, int, int]],
    *,
    left_colour=BLUE,
    right_colour=RED,
    background=128,
    labelled: int = 17,
    crowd_box: tuple[int, int, int, int] | None = None,
    size=(160, 120),
) -> Path:
    """One image per person box (PNG: lossless colours) and its COCO keypoint file."""
    images_dir = folder / name
    images_dir.mkdir(parents=True)
    images, annotations = [], []
    for index, (x, y, w, h) in enumerate(people):
        image = np.full((size[1], size[0], 3), background, dtype=np.uint8)
        image[y : y + h, x : x + w // 2] = right_colour
        image[y : y + h, x + w // 2 : x + w] = left_colour
        file_name = f"{name}_{index}.png"
        cv2.imwrite(str(images_dir / file_name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        images.append({"id": index + 1, "file_name": file_name, "width": size[0], "height": size[1]})
        annotations.append(
            {
                "id": 100 * (index + 1),
                "image_id": index + 1,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [x, y, w, h],
                "area": w * h,
                "num_keypoints": labelled,
                "keypoints": rectangle_person(x, y, w, h, labelled),
            }
        )
        if crowd_box is not None:
            annotations.append(
                {
                    "id": 100 * (index + 1) + 1,
                    "image_id": index + 1,
                    "category_id": 1,
                    "iscrowd": 1,
                    "bbox": list(crowd_box),
                    "area": 1,
                    "num_keypoints": 0,
                    "keypoints": [0] * 51,
                }
            )
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [CATEGORY]}))
    return path


def write_backgrounds(folder: Path, sizes=((100, 80), (90, 120), (128, 96))) -> Path:
    backgrounds = folder / "backgrounds"
    backgrounds.mkdir()
    rng = np.random.default_rng(0)
    for index, (w, h) in enumerate(sizes):
        image = rng.integers(90, 170, size=(h, w, 3), dtype=np.uint8)  # grey noise, no colours
        image[..., :] = image[..., :1]
        cv2.imwrite(str(backgrounds / f"bg_{index}.png"), image)
    return backgrounds


@pytest.fixture()
def data(tmp_path):
    people = write_source(
        tmp_path,
        "people",
        [(20, 10, 40, 90), (100, 20, 40, 80), (60, 30, 30, 60), (10, 5, 44, 100)],
        crowd_box=(64, 100, 24, 16),
    )
    others = write_source(
        tmp_path,
        "others",
        [(50, 20, 60, 90), (30, 10, 50, 100)],
        left_colour=GREEN,
        right_colour=GREEN,
        background=60,
        labelled=6,
    )
    return {
        "people": people,
        "others": others,
        "images": tmp_path,
        "backgrounds": write_backgrounds(tmp_path),
    }


def dataset(
    data,
    sources: dict[str, float],
    augment: AugmentConfig | None = None,
    *,
    background_weight=0.0,
    samples=None,
    seed=0,
    input_size=128,
) -> KeypointDataset:
    specs = [
        SourceConfig(name=name, annotations=str(data[name]), images=str(data["images"] / name), weight=weight)
        for name, weight in sources.items()
    ]
    return KeypointDataset(
        None,
        None,
        COCO_17,
        input_size,
        augment,
        seed=seed,
        sources=specs,
        background_images=data["backgrounds"],
        background_weight=background_weight,
        samples_per_epoch=samples,
    )


def crop_rgb(sample) -> np.ndarray:
    """The sample's normalised image back to uint8-range RGB (H, W, 3)."""
    image = sample["image"].transpose(1, 2, 0) * np.asarray(IMAGENET_STD) + np.asarray(IMAGENET_MEAN)
    return np.round(image * 255.0)


def colour_at_peaks(sample, channels) -> list[tuple[int, ...]]:
    """Crop colours under the stride-2 heatmap peaks of these channels (joints inside the crop)."""
    rgb = crop_rgb(sample)
    colours = []
    for k in channels:
        heatmap = sample["heatmaps_s2"][k]
        if heatmap.max() < 0.5:
            continue
        v, u = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        for dy in (0, 1):  # a stride-2 pixel covers 2 x 2 crop pixels
            for dx in (0, 1):
                colours.append(pure_colour(rgb[2 * v + dy, 2 * u + dx]))
    return colours


def pure_colour(pixel) -> tuple[int, ...] | None:
    """RED, GREEN or BLUE when one channel clearly dominates (also where the warp blends the colour
    with the black border at the image edge), else None."""
    strongest = int(np.argmax(pixel))
    others = np.delete(pixel, strongest)
    if pixel[strongest] < 100 or others.max() > 40:
        return None
    return tuple(255 if c == strongest else 0 for c in range(3))


# --- mixing by weight ------------------------------------------------------------------------------
def test_epoch_follows_the_weights_and_is_fixed_by_seed_and_epoch(data):
    mixed = dataset(data, {"people": 3.0, "others": 1.0}, AugmentConfig(), background_weight=1.0, samples=500)
    assert len(mixed) == 500
    plan = mixed.epoch_plan()
    assert np.bincount(plan[:, 0]).tolist() == [300, 100, 100]  # people, others, backgrounds
    # Each source cycles through its images: 300 samples of 4 images = 75 each.
    assert np.bincount(plan[plan[:, 0] == 0, 1]).tolist() == [75] * 4
    again = dataset(data, {"people": 3.0, "others": 1.0}, AugmentConfig(), background_weight=1.0, samples=500)
    np.testing.assert_array_equal(again.epoch_plan(), plan)
    mixed.set_epoch(1)
    assert not np.array_equal(mixed.epoch_plan(), plan)
    assert np.bincount(mixed.epoch_plan()[:, 0]).tolist() == [300, 100, 100]
    # Over many epochs of short ones, the shares still follow the weights (no sampling drift).
    short = dataset(data, {"people": 3.0, "others": 1.0}, background_weight=1.0, samples=7)
    totals = np.zeros(3, dtype=int)
    for epoch in range(200):
        short.set_epoch(epoch)
        totals += np.bincount(short.epoch_plan()[:, 0], minlength=3)
    assert np.allclose(totals / totals.sum(), [0.6, 0.2, 0.2], atol=0.03)


def test_background_samples_have_no_people_and_nothing_masked(data):
    mixed = dataset(data, {"people": 1.0}, AugmentConfig(), background_weight=1.0, samples=12)
    backgrounds = [i for i, (source, _) in enumerate(mixed.epoch_plan()) if source == mixed.background_source]
    assert len(backgrounds) == 6
    for index in backgrounds:
        sample = mixed[index]
        assert sample["image_id"] < 0
        assert not sample["heatmaps_s4"].any() and not sample["heatmaps_s2"].any()
        assert (sample["mask_s4"] == 1).all() and (sample["mask_s2"] == 1).all()
        assert not sample["joints"].any()
        assert sample["image"].std() > 0  # a real picture, not padding


def test_source_stats_count_images_people_and_ignore_regions(data):
    mixed = dataset(
        data,
        {"people": 2.0, "others": 1.0},
        AugmentConfig(copy_paste_probability=0.5),
        background_weight=1.0,
        samples=40,
    )
    stats = {row["name"]: row for row in mixed.source_stats()}
    assert stats["people"] == {
        "name": "people",
        "images": 4,
        "people": 4,
        "ignore_regions": 4,
        "pasteable_people": 4,
        "weight": 2.0,
        "samples_per_epoch": 20,
    }
    assert stats["others"]["pasteable_people"] == 0  # 6 labelled joints < copy_paste_min_keypoints 8
    assert stats["backgrounds"]["images"] == 3 and stats["backgrounds"]["samples_per_epoch"] == 10
    table = mixed.describe_sources().splitlines()
    assert table[0].split() == [
        "name",
        "images",
        "people",
        "ignore_regions",
        "pasteable_people",
        "weight",
        "samples_per_epoch",
    ]
    assert table[1].split() == ["people", "4", "4", "4", "4", "2", "20"]


# --- the single-source form is unchanged --------------------------------------------------------------
def test_single_source_config_gives_the_samples_of_the_classic_constructor(tmp_path):
    classic = KeypointDataset(
        COCO_DIR / "test_coco.json",
        COCO_DIR,
        COCO_17,
        128,
        AugmentConfig(),
        seed=4,
        repeat=2,
        skip_images_without_annotations=False,
    )
    config = TrainConfig.from_dict(
        {
            "data": {
                "train_annotations": str(COCO_DIR / "test_coco.json"),
                "train_images": str(COCO_DIR),
                "repeat": 2,
                "skip_images_without_annotations": False,
            },
            "model": {"input_size": 128},
            "run": {"seed": 4},
        }
    )
    built = KeypointDataset.from_config(config)
    assert not built.weighted and len(built) == len(classic) == 2 * len(classic.records)
    sequential = [(0, i % len(classic.records)) for i in range(len(built))]
    assert [tuple(e) for e in built.epoch_plan()] == sequential
    for epoch in (0, 2):
        classic.set_epoch(epoch)
        built.set_epoch(epoch)
        for index in range(len(built)):
            a, b = classic[index], built[index]
            assert a.keys() == b.keys()
            for key in a:
                assert a[key].dtype == b[key].dtype
                np.testing.assert_array_equal(a[key], b[key])


# --- copy-paste --------------------------------------------------------------------------------------
def paste_only(flip: float, **extra) -> AugmentConfig:
    """Pastes of exactly the source person's box (hard edge, no colour change), mild affine."""
    values = dict(
        max_rotation=15.0,
        min_scale=0.9,
        max_scale=1.1,
        max_translate=10.0,
        flip_probability=0.0,
        copy_paste_probability=1.0,
        copy_paste_people=[1, 1],
        copy_paste_height=[70, 110],
        copy_paste_mask="box",
        copy_paste_margin=0.0,
        copy_paste_feather=0.0,
        copy_paste_colour_jitter=0.0,
        copy_paste_flip_probability=flip,
    )
    return AugmentConfig(**{**values, **extra})


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_pasted_joints_land_on_the_pasted_person_and_flips_swap_sides(data, flip):
    # Only backgrounds are samples; the pasted people come from "people" (red right half, blue left).
    onto_backgrounds = dataset(data, {"people": 0.0}, paste_only(flip), background_weight=1.0, samples=12)
    left_colour, right_colour = (BLUE, RED) if flip == 0.0 else (RED, BLUE)
    both_sides = 0
    for index in range(len(onto_backgrounds)):
        sample = onto_backgrounds[index]
        assert sample["heatmaps_s2"].max() > 0.5  # the pasted person, at least partly in the crop
        # (Its centre lands anywhere in the image: a half may lie outside.)
        left, right = colour_at_peaks(sample, LEFT), colour_at_peaks(sample, RIGHT)
        assert set(left) <= {left_colour} and set(right) <= {right_colour}, index
        both_sides += bool(left and right)
    assert both_sides >= 6


def test_pasted_people_hide_the_joints_they_cover(data):
    # Samples: "others" (green people, 6 joints: never pasted); pasted: the red/blue "people".
    onto_others = dataset(
        data,
        {"others": 1.0, "people": 0.0},
        paste_only(0.5, copy_paste_people=[2, 4], copy_paste_height=[40, 120]),
        samples=40,
    )
    hidden = shown = 0
    for index in range(len(onto_others)):
        source, item = onto_others.entry(index)
        record = onto_others.sources[source].records[item]
        image = onto_others.load_image(record)
        composite, joints, _ = onto_others.composite(index, image, record.joints, None)
        assert len(joints) > len(record.joints)
        assert (image == onto_others.load_image(record)).all()  # the input is not modified
        original = joints[: len(record.joints)]
        for x, y, v in original[record.joints[..., 2] > 0]:
            green = composite[int(np.floor(y + 0.5)), int(np.floor(x + 0.5)), 1]
            # Covered by a paste with alpha > 0.5 exactly when the green fell below half.
            assert (v == 0) == (green <= 127)
            hidden += v == 0
            shown += v > 0
    assert hidden > 5 and shown > 5


def test_a_paste_unmasks_the_ignore_region_it_covers(data):
    onto_others = dataset(
        data, {"others": 1.0, "people": 0.0}, paste_only(0.0, copy_paste_people=[3, 3]), samples=4
    )
    for index in range(4):
        source, item = onto_others.entry(index)
        record = onto_others.sources[source].records[item]
        image = onto_others.load_image(record)
        ignored_everywhere = np.zeros(image.shape[:2], dtype=np.float32)
        composite, _, mask = onto_others.composite(index, image, record.joints, ignored_everywhere)
        assert not ignored_everywhere.any()  # the input is not modified
        changed = np.abs(composite.astype(int) - image).max(axis=2) > 0
        pasted_colour = (composite[..., 0] >= 200) | (composite[..., 2] >= 200)  # red or blue halves
        assert mask.any() and set(np.unique(mask)) == {0.0, 1.0}
        assert not (mask.astype(bool) & ~changed).any()  # opened only where something was pasted
        assert mask[pasted_colour].all()  # and wherever a pasted person is opaque


def test_paste_moves_scales_flips_and_occludes_on_a_hand_made_case():
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    person = np.array(rectangle_person(10, 20, 20, 40), dtype=np.float64).reshape(17, 3)
    image[20:60, 10:20] = RED
    image[20:60, 20:30] = BLUE
    cut = cut_out(
        image,
        person,
        np.array([10.0, 20.0, 20.0, 40.0]),
        shape="box",
        margin=0.0,
        feather=0.0,
        max_height=400,
    )
    assert cut.height == 40
    target = np.full((100, 100, 3), 50, dtype=np.uint8)
    existing = np.array([[[50.0, 50.0, 2.0], [5.0, 5.0, 2.0]] + [[0.0, 0.0, 0.0]] * 15])
    # Doubled (80 px tall), mirrored, centred on the image centre.
    draw = PasteDraw(height=80.0, flip=True, colour=(1.0, 1.0, 1.0), centre=(0.5, 0.5))
    joints, window, alpha = paste(target, cut, draw, COCO_17.flip_index)
    for k in range(1, 17):
        x, y = joints[k, :2]
        colour = tuple(target[int(round(y)), int(round(x))])
        # After the mirror, the joint on the red pixels is a left one.
        assert colour == (RED if k in LEFT else BLUE), k
    assert joints[2, 0] < 50 < joints[1, 0]  # the left eye is the mirrored right eye
    assert joints[3, 1] - joints[1, 1] == pytest.approx(0.1 * 80, abs=0.01)  # scaled x2
    hidden = occlude(existing, window, alpha)
    assert hidden[0, 0, 2] == 0 and hidden[0, 1, 2] == 2  # the joint under the paste, the one outside
    assert existing[0, 0, 2] == 2  # a copy


def test_hull_cut_out_is_soft_and_covers_the_joints():
    image = np.full((120, 120, 3), 200, dtype=np.uint8)
    person = np.array(rectangle_person(40, 10, 40, 100), dtype=np.float64).reshape(17, 3)
    cut = cut_out(
        image,
        person,
        np.array([40.0, 10.0, 40.0, 100.0]),
        shape="hull",
        margin=0.1,
        feather=0.1,
        max_height=50,
    )
    assert cut.height == pytest.approx(50, abs=1)  # downscaled once, for the cache
    pixel = np.floor(cut.joints[:, :2] + 0.5).astype(int)
    assert (cut.alpha[pixel[:, 1], pixel[:, 0]] == 255).all()
    assert ((cut.alpha > 0) & (cut.alpha < 255)).any()  # feathered edge
    assert cut.alpha[0, 0] == 0


def test_ignore_regions_stay_masked_and_pasted_people_are_labelled(data):
    # Samples from "people" (each with a crowd box in the top-right corner), people pasted on top.
    onto_people = dataset(data, {"people": 1.0}, paste_only(0.0, copy_paste_people=[1, 2]), samples=8)
    masked = 0
    for index in range(len(onto_people)):
        sample = onto_people[index]
        assert (sample["joints"][:, :, 1].sum(1) > 0).sum() >= 2  # own person + pasted ones
        masked += sample["mask_s2"].min() == 0  # the crowd box is still ignored (unless pasted over)
    assert masked >= 6


# --- photometric -------------------------------------------------------------------------------------
def test_colour_jitter_and_blur_change_pixels_only(data):
    plain = dataset(
        data, {"people": 1.0}, AugmentConfig(**{**STILL, "min_scale": 1.4, "max_scale": 1.4}), samples=6
    )
    jittered = dataset(
        data,
        {"people": 1.0},
        AugmentConfig(
            **{**STILL, "min_scale": 1.4, "max_scale": 1.4},
            brightness=0.4,
            contrast=0.4,
            saturation=0.4,
            blur_probability=0.5,
        ),
        samples=6,
    )
    black = crop_rgb(plain[0])[0, 0]
    assert tuple(black) == (0, 0, 0)  # the crop is larger than the image: a black border
    for index in range(6):
        a, b = plain[index], jittered[index]
        for key in ("heatmaps_s4", "heatmaps_s2", "mask_s4", "mask_s2", "joints"):
            np.testing.assert_array_equal(a[key], b[key])
        assert not np.array_equal(a["image"], b["image"])
        assert tuple(crop_rgb(b)[0, 0]) == (0, 0, 0)  # the border stays black (the padding)


# --- determinism -------------------------------------------------------------------------------------
def everything(data, seed=0) -> KeypointDataset:
    augment = AugmentConfig(
        copy_paste_probability=0.7, brightness=0.3, contrast=0.3, saturation=0.3, blur_probability=0.3
    )
    return dataset(
        data,
        {"people": 2.0, "others": 1.0},
        augment,
        background_weight=1.0,
        samples=10,
        seed=seed,
        input_size=64,
    )


def test_every_feature_is_deterministic_per_seed_epoch_and_index(data):
    first, second = everything(data), everything(data)
    second.set_epoch(0)
    forward = [first[i] for i in range(10)]
    backward = [second[i] for i in reversed(range(10))][::-1]  # another order, another cache history
    for a, b in zip(forward, backward, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    first.set_epoch(1)
    assert not all(np.array_equal(a["image"], first[i]["image"]) for i, a in enumerate(forward))
    other_seed = everything(data, seed=1)
    assert not all(np.array_equal(a["image"], other_seed[i]["image"]) for i, a in enumerate(forward))


# --- configuration -----------------------------------------------------------------------------------
def test_mixed_sources_round_trip_through_a_recipe_file(tmp_path):
    config = TrainConfig.from_dict(
        {
            "data": {
                "sources": [
                    {"name": "pool", "annotations": "a.json", "images": "img", "weight": 3},
                    {
                        "name": "vtest",
                        "annotations": "b.json",
                        "images": "img",
                        "weight": 1,
                        "ignore_duplicated_people": True,
                    },
                ],
                "background_images": "bg",
                "background_weight": 0.5,
                "samples_per_epoch": 100,
            },
            "augment": {"copy_paste_probability": 0.5, "brightness": 0.2},
        }
    )
    assert config.data.sources[1] == SourceConfig("vtest", "b.json", "img", 1, True)
    for name in ("saved.yaml", "saved.json"):
        config.save(tmp_path / name)
        assert TrainConfig.from_file(tmp_path / name) == config


@pytest.mark.parametrize(
    ("data_keys", "augment", "message"),
    [
        (
            {"sources": [{"name": "a", "annotations": "a.json", "images": "i", "wieght": 2}]},
            {},
            r"unknown key\(s\) \['wieght'\] in data.sources\[0\]",
        ),
        (
            {"sources": [{"name": "a", "annotations": "a.json", "images": "i", "weight": -1}]},
            {},
            r"data.sources\[0\].weight must be >= 0",
        ),
        (
            {
                "sources": [
                    {"name": "a", "annotations": "a.json", "images": "i"},
                    {"name": "a", "annotations": "b.json", "images": "i"},
                ]
            },
            {},
            r"data.sources\[1\].name 'a' is used twice",
        ),
        ({"sources": [{"name": "a", "images": "i"}]}, {}, r"data.sources\[0\] \(a\) needs annotations"),
        (
            {
                "train_annotations": "t.json",
                "sources": [{"name": "a", "annotations": "a.json", "images": "i"}],
            },
            {},
            "data.train_annotations / data.train_images and data.sources are alternatives",
        ),
        ({"background_weight": 0.2}, {}, "data.background_weight is set but data.background_images is not"),
        ({"samples_per_epoch": 0}, {}, "data.samples_per_epoch must be positive"),
        ({}, {"copy_paste_probability": 1.5}, r"augment.copy_paste_probability must be in \[0, 1\]"),
        ({}, {"copy_paste_people": [3, 1]}, "augment.copy_paste_people must be"),
        ({}, {"copy_paste_height": [0, 100]}, "augment.copy_paste_height must be"),
        ({}, {"copy_paste_mask": "polygon"}, "augment.copy_paste_mask must be 'hull' or 'box'"),
        ({}, {"copy_paste_min_keypoints": 18}, "augment.copy_paste_min_keypoints must be between"),
        ({}, {"brightness": 1.0}, r"augment.brightness must be in \[0, 1\)"),
        ({}, {"max_blur_sigma": 0.1}, "augment.max_blur_sigma must be >= 0.3"),
    ],
)
def test_bad_data_settings_are_named(data_keys, augment, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict({"data": data_keys, "augment": augment})


def test_data_problems_are_named(data, tmp_path):
    with pytest.raises(FileNotFoundError, match="background image folder .* does not exist"):
        KeypointDataset(
            data["people"],
            data["images"] / "people",
            COCO_17,
            64,
            None,
            background_images=tmp_path / "missing",
            background_weight=1.0,
        )
    with pytest.raises(ValueError, match="no training person has augment.copy_paste_min_keypoints = 8"):
        dataset(data, {"others": 1.0}, AugmentConfig(copy_paste_probability=0.5))


@pytest.mark.torch
def test_trainer_runs_on_mixed_sources_and_writes_their_table(data, tmp_path):
    from litepose_ros.training.trainer import DATA_SOURCES, Trainer

    config = TrainConfig.from_dict(
        {
            "model": {"architecture": "XS", "input_size": 64},
            "data": {
                "sources": [
                    {
                        "name": "people",
                        "annotations": str(data["people"]),
                        "images": str(data["images"] / "people"),
                        "weight": 2,
                    },
                    {
                        "name": "others",
                        "annotations": str(data["others"]),
                        "images": str(data["images"] / "others"),
                    },
                ],
                "background_images": str(data["backgrounds"]),
                "background_weight": 1,
                "samples_per_epoch": 4,
            },
            "augment": {"copy_paste_probability": 0.5, "brightness": 0.2},
            "optim": {"batch_size": 2, "epochs": 1},
            "run": {
                "workers": 0,
                "threads": 1,
                "val_every": 0,
                "device": "cpu",
                "output_dir": str(tmp_path / "run"),
            },
        }
    )
    trainer = Trainer(config, progress=False)
    assert len(trainer.train_set) == 4
    trainer.fit()
    table = (tmp_path / "run" / DATA_SOURCES).read_text().splitlines()
    assert [line.split()[0] for line in table] == ["name", "people", "others", "backgrounds"]


def test_general_recipe_mixes_sources_backgrounds_and_copy_paste():
    root = Path(__file__).resolve().parents[1]
    config = TrainConfig.from_file(root / "config" / "train" / "xs_general.yaml")
    assert (config.model.architecture, config.model.layout, config.model.input_size) == ("XS", "coco17", 256)
    assert (root / config.model.init_checkpoint).is_file()
    assert [s.name for s in config.data.sources] == ["pool", "vtest"]
    assert config.data.sources[0].weight > config.data.sources[1].weight > config.data.background_weight > 0
    assert config.data.background_images and config.data.samples_per_epoch == 1000
    assert 0 < config.augment.copy_paste_probability < 1 and config.augment.copy_paste_people == [1, 4]
    assert (config.augment.min_scale, config.augment.max_scale) == (0.5, 1.5)
    run = config.run
    assert (config.optim.batch_size, run.workers, run.threads, run.val_every) == (8, 0, 2, 2)
    assert config.run.output_dir == "../litepose_training_state/general_xs"
