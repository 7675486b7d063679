"""`litepose label`: the pseudo-labelling pipeline with a synthetic teacher of MoveNet's interface.

The synthetic teacher (test/synthetic_teacher.py) sees coloured rectangles as people and answers
with a template pose in their box, so every expected keypoint is known.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from synthetic_teacher import (
    MIN_PERSON_HEIGHT,
    TEMPLATE,
    THUNDER_SCORE_OFFSET,
    VISIBLE_AT_0_3,
    draw_person,
    expected_keypoints,
    write_teacher,
    write_wrong_interface_model,
)

from litepose_ros.cli import main as cli_main
from litepose_ros.labelling.pipeline import LabelConfig, Labeller
from litepose_ros.labelling.run import label_inputs
from litepose_ros.labelling.sources import Sampling, SourceError
from litepose_ros.labelling.store import PROGRESS_FILE
from litepose_ros.labelling.teacher import MoveNetTeacher, TeacherError

# Resizing blurs rectangle edges by about a pixel; the pipeline maps through two resizes.
TOLERANCE_PX = 2.0


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("teacher")
    write_teacher(folder)
    return folder


def scene(width: int, height: int, people: list[tuple[int, tuple[int, int, int, int]]]) -> np.ndarray:
    """RGB image with the given (slot, inclusive box) people on a dark grey background."""
    image = np.full((height, width, 3), 30, np.uint8)
    for slot, box in people:
        draw_person(image, slot, *box)
    return image


def write_png(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def match(found: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Do the labelled keypoints sit on the template of this box (visible ones only)?"""
    expected = expected_keypoints(*box)
    return bool(np.all(np.abs(found[VISIBLE_AT_0_3, :2] - expected[VISIBLE_AT_0_3]) <= TOLERANCE_PX))


def test_multiscale_candidates_merge_into_one_refined_person_each(teacher_dir):
    boxes = [(40, 60, 139, 259), (300, 80, 379, 239)]
    image = scene(480, 320, [(0, boxes[0]), (1, boxes[1])])
    labeller = Labeller(MoveNetTeacher(teacher_dir), LabelConfig(multipose_sizes=(256, 384, 512)))
    assert len(labeller.detect(image)) == 6  # both people at all three sizes, before duplicate removal
    labels = labeller.label(image)
    assert len(labels.people) == 2 and not labels.ignore_boxes
    for person in labels.people:
        assert person.refined
        # Thunder's scores (template + offset) show the refinement replaced the multipose pose.
        np.testing.assert_allclose(person.keypoints[:, 2], TEMPLATE[:, 2] + THUNDER_SCORE_OFFSET, atol=1e-5)
    assert sorted(match(p.keypoints, b) for p in labels.people for b in boxes).count(True) == 2


def test_tiles_find_people_too_small_for_the_whole_image(teacher_dir):
    # 48 px tall in a 1024 px image: 12 px at long side 256 and 24 * 512 / 1024 = 24 px at 512 would be
    # found, so use 256 and 384 only (18 px): below the teacher's 24 px minimum.
    box = (500, 500, 523, 547)
    image = scene(1024, 1024, [(0, box)])
    no_tiles = Labeller(MoveNetTeacher(teacher_dir), LabelConfig(multipose_sizes=(256, 384)))
    assert no_tiles.label(image).people == []
    tiled = Labeller(
        MoveNetTeacher(teacher_dir), LabelConfig(multipose_sizes=(256, 384), tiles=2, tile_size=512)
    )
    tiles = tiled.tile_boxes(1024, 1024)
    assert len(tiles) == 4 and tiles[0][:2] == (0, 0) and tiles[-1][2:] == (1024, 1024)
    people = tiled.label(image).people
    assert len(people) == 1 and match(people[0].keypoints, box)


def test_refinement_guard_keeps_multipose_when_the_crop_locks_onto_another_person(teacher_dir):
    # Two people 6 px apart: each one's thunder crop (1.3 x its box) holds both, so thunder answers
    # with the template of their union box, far from either person. (The image is multipose's input size:
    # no resize, so no blended edge pixels that the synthetic teacher would take for a third person.)
    boxes = [(100, 100, 179, 299), (186, 100, 265, 299)]
    image = scene(384, 384, [(0, boxes[0]), (1, boxes[1])])
    labeller = Labeller(MoveNetTeacher(teacher_dir), LabelConfig(multipose_sizes=(384,)))
    labels = labeller.label(image)
    assert len(labels.people) == 2
    for person in labels.people:
        assert not person.refined
        np.testing.assert_allclose(person.keypoints[:, 2], TEMPLATE[:, 2], atol=1e-5)  # multipose's scores
    assert all(any(match(p.keypoints, b) for p in labels.people) for b in boxes)
    # Without the guard the union-box poses are kept (and merge into one): the guard is what saves them.
    unguarded = Labeller(MoveNetTeacher(teacher_dir), LabelConfig(multipose_sizes=(384,), guard_oks=0.0))
    assert not any(match(p.keypoints, b) for p in unguarded.label(image).people for b in boxes)


def test_people_with_few_labelled_keypoints_and_unlabelled_boxes_become_ignore_regions(teacher_dir):
    box = (60, 40, 139, 239)
    image = scene(320, 320, [(0, box)])
    # multipose scores are 0.8, so with a 0.82 threshold and no refinement nobody has 5 labelled joints.
    strict = Labeller(MoveNetTeacher(teacher_dir), LabelConfig(refine_passes=0, keypoint_threshold=0.82))
    labels = strict.label(image)
    assert labels.people == [] and len(labels.ignore_boxes) == 1
    # Known boxes: the person is matched to its box; an empty box (nobody there) becomes an ignore
    # region; a crowd box is kept as one; a person outside every box would be dropped.
    labeller = Labeller(MoveNetTeacher(teacher_dir), LabelConfig())
    empty_box = np.array([[200.0, 200.0, 300.0, 300.0]])
    labels = labeller.label(
        image,
        known_boxes=np.vstack([[60, 40, 140, 240], empty_box[0]]),
        crowd_boxes=np.array([[0.0, 0.0, 30.0, 30.0]]),
    )
    assert len(labels.people) == 1 and match(labels.people[0].keypoints, box)
    ignored = sorted(b.tolist() for b in labels.ignore_boxes)
    assert ignored == [[0.0, 0.0, 30.0, 30.0], [200.0, 200.0, 300.0, 300.0]]
    assert labeller.label(image, known_boxes=empty_box).people == []


def test_a_known_box_the_detector_missed_is_refined_from_the_box(teacher_dir):
    box = (200, 200, 219, 259)  # 60 px tall in 1024: 15 px at long side 256, missed by multipose
    image = scene(1024, 1024, [(0, box)])
    labeller = Labeller(MoveNetTeacher(teacher_dir), LabelConfig(multipose_sizes=(256,)))
    assert labeller.label(image).people == []
    labels = labeller.label(image, known_boxes=np.array([[200.0, 200.0, 220.0, 260.0]]))
    assert len(labels.people) == 1 and labels.people[0].refined and match(labels.people[0].keypoints, box)


def labelled_folder(tmp_path: Path, count: int = 4) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(count):
        write_png(folder / f"frame_{i}.png", scene(320, 240, [(i % 6, (40 + 20 * i, 20, 119 + 20 * i, 219))]))
    return folder


def test_output_is_coco_keypoints_with_teacher_fields(teacher_dir, tmp_path):
    folder = labelled_folder(tmp_path, 2)
    summary = label_inputs([folder], tmp_path / "out", teacher_dir=teacher_dir, progress=False)
    data = json.loads(summary.labels_file.read_text())
    assert summary.frames == 2 and summary.people == 2
    assert [c["name"] for c in data["categories"]] == ["person"] and len(
        data["categories"][0]["keypoints"]
    ) == 17
    image = data["images"][0]
    assert (image["width"], image["height"]) == (320, 240)
    assert (summary.labels_file.parent / image["file_name"]).resolve() == (folder / "frame_0.png").resolve()
    ann = data["annotations"][0]
    keypoints = np.asarray(ann["keypoints"]).reshape(17, 3)
    assert list(keypoints[:, 2] == 2) == list(VISIBLE_AT_0_3) and ann["num_keypoints"] == 15
    assert np.all(keypoints[~VISIBLE_AT_0_3] == 0)
    np.testing.assert_allclose(
        keypoints[VISIBLE_AT_0_3, :2], expected_keypoints(40, 20, 119, 219)[VISIBLE_AT_0_3], atol=TOLERANCE_PX
    )
    assert len(ann["keypoint_scores"]) == 17 and len(ann["teacher_keypoints"]) == 51 and 0 < ann["score"] <= 1
    x, y, w, h = ann["bbox"]
    assert x <= keypoints[VISIBLE_AT_0_3, 0].min() and x + w >= keypoints[VISIBLE_AT_0_3, 0].max()
    assert ann["iscrowd"] == 0 and ann["area"] == pytest.approx(w * h, rel=1e-3)


def test_a_killed_run_resumes_without_duplicates_and_workers_do_not_change_the_output(teacher_dir, tmp_path):
    folder = labelled_folder(tmp_path)
    whole = label_inputs([folder], tmp_path / "whole", teacher_dir=teacher_dir, progress=False)
    expected = whole.labels_file.read_text()
    # Kill after two frames, in the middle of writing the third line.
    resumed = tmp_path / "resumed"
    label_inputs([folder], resumed, teacher_dir=teacher_dir, progress=False)
    lines = (resumed / PROGRESS_FILE).read_text().splitlines(keepends=True)
    (resumed / PROGRESS_FILE).write_text("".join(lines[:2]) + lines[2][:30])
    (resumed / "labels.json").unlink()
    label_inputs([folder], resumed, teacher_dir=teacher_dir, progress=False)
    assert (resumed / "labels.json").read_text() == expected
    assert len((resumed / PROGRESS_FILE).read_text().splitlines()) == 4
    parallel = label_inputs(
        [folder], tmp_path / "parallel", teacher_dir=teacher_dir, workers=2, progress=False
    )
    assert parallel.labels_file.read_text() == expected
    # Other settings in the same folder would mix labels: refused, naming what differs.
    with pytest.raises(ValueError, match="pipeline"):
        label_inputs([folder], resumed, teacher_dir=teacher_dir, config=LabelConfig(tiles=2), progress=False)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (frames[0].shape[1], frames[0].shape[0])
    )
    assert writer.isOpened()
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def moving_person_frames(count: int, repeat_from: int | None = None) -> list[np.ndarray]:
    frames = [scene(320, 240, [(0, (20 + 10 * i, 20, 99 + 10 * i, 219))]) for i in range(count)]
    if repeat_from is not None:
        frames[repeat_from:] = [frames[repeat_from]] * (count - repeat_from)
    return frames


def test_videos_are_sampled_and_their_frames_extracted(teacher_dir, tmp_path):
    video = write_video(tmp_path / "walk.avi", moving_person_frames(8, repeat_from=5))
    summary = label_inputs(
        [video], tmp_path / "out", teacher_dir=teacher_dir, sampling=Sampling(every=2), progress=False
    )
    data = json.loads(summary.labels_file.read_text())
    assert [img["frame_index"] for img in data["images"]] == [0, 2, 4, 6]
    assert data["images"][1]["time"] == pytest.approx(0.2, abs=1e-3)
    for img in data["images"]:
        assert (summary.labels_file.parent / img["file_name"]).is_file()
        assert img["file_name"].startswith("frames/walk_f")
    assert summary.people == 4
    # Frames 5-7 repeat frame 5: near-duplicate skipping keeps one of them.
    dedup = label_inputs(
        [video],
        tmp_path / "dedup",
        teacher_dir=teacher_dir,
        sampling=Sampling(skip_duplicates=2.0),
        progress=False,
    )
    assert [img["frame_index"] for img in json.loads(dedup.labels_file.read_text())["images"]] == [
        0,
        1,
        2,
        3,
        4,
        5,
    ]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bags_with_compressed_and_raw_images(teacher_dir, tmp_path, storage):
    from litepose_ros.bags import BagWriter, compressed_image_cdr, project_typestore, raw_image_cdr

    typestore = project_typestore()
    frames = moving_person_frames(4)
    bag = tmp_path / f"bag_{storage}"
    with BagWriter(bag, storage) as writer:
        writer.add_topic("/cam/image_raw", "sensor_msgs/msg/Image")
        writer.add_topic("/cam/image_raw/compressed", "sensor_msgs/msg/CompressedImage")
        for i, rgb in enumerate(frames):
            stamp = 1_000_000_000 + i * 500_000_000  # 2 Hz
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            writer.write("/cam/image_raw", stamp, raw_image_cdr(typestore, bgr, stamp, "cam"))
            png = cv2.imencode(".png", bgr)[1].tobytes()
            writer.write(
                "/cam/image_raw/compressed", stamp, compressed_image_cdr(typestore, png, stamp, "cam", "png")
            )
    with pytest.raises(SourceError, match="2 image topics"):
        list(label_inputs([bag], tmp_path / "none", teacher_dir=teacher_dir, progress=False).errors)
    with pytest.raises(SourceError, match="/cam/image_raw/compressed"):
        label_inputs([bag], tmp_path / "none2", teacher_dir=teacher_dir, topic="/missing", progress=False)
    for topic in ("/cam/image_raw", "/cam/image_raw/compressed"):
        out = tmp_path / ("out" + topic.replace("/", "_"))
        summary = label_inputs(
            [bag],
            out,
            teacher_dir=teacher_dir,
            topic=topic,
            sampling=Sampling(min_interval=0.9),
            progress=False,
        )
        data = json.loads(summary.labels_file.read_text())
        assert [img["frame_index"] for img in data["images"]] == [0, 2]  # 2 Hz, at least 0.9 s apart
        assert summary.people == 2
        first = np.asarray(data["annotations"][0]["keypoints"]).reshape(17, 3)
        np.testing.assert_allclose(
            first[VISIBLE_AT_0_3, :2],
            expected_keypoints(20, 20, 99, 219)[VISIBLE_AT_0_3],
            atol=TOLERANCE_PX + 1,
        )  # JPEG-extracted frames: a little more blur


def test_bad_inputs_get_named_errors_and_one_bad_image_is_skipped(teacher_dir, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    write_wrong_interface_model(wrong / "movenet-multipose.onnx")
    write_wrong_interface_model(wrong / "movenet-thunder.onnx")
    with pytest.raises(TeacherError, match="int32 input 'input'"):
        MoveNetTeacher(wrong)
    with pytest.raises(TeacherError, match="movenet-multipose.onnx"):
        MoveNetTeacher(tmp_path)  # a folder without the files
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="holds no images"):
        label_inputs([empty], tmp_path / "out_empty", teacher_dir=teacher_dir, progress=False)
    folder = labelled_folder(tmp_path, 2)
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    summary = label_inputs([folder], tmp_path / "out", teacher_dir=teacher_dir, progress=False)
    assert summary.frames == 2 and len(summary.errors) == 1 and "broken.jpg" in summary.errors[0]


def test_cli_labels_and_reports_errors_without_traceback(teacher_dir, tmp_path, capsys):
    folder = labelled_folder(tmp_path, 1)
    out = tmp_path / "out"
    assert (
        cli_main(
            [
                "label",
                str(folder),
                "-o",
                str(out),
                "--teacher",
                str(teacher_dir),
                "--no-progress",
                "--multipose-sizes",
                "256",
                "320",
                "--no-refine-flip",
            ]
        )
        == 0
    )
    assert "1 frames, 1 people" in capsys.readouterr().out
    config = json.loads((out / "label_config.json").read_text())["pipeline"]
    assert config["multipose_sizes"] == [256, 320] and config["refine_flip"] is False
    assert (
        cli_main(
            [
                "label",
                str(folder),
                "-o",
                str(tmp_path / "o2"),
                "--teacher",
                str(tmp_path / "nowhere"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "teacher folder" in capsys.readouterr().err
    assert (
        cli_main(
            [
                "label",
                str(folder),
                "-o",
                str(tmp_path / "o3"),
                "--teacher",
                str(teacher_dir),
                "--multipose-sizes",
                "250",
                "--no-progress",
            ]
        )
        == 2
    )
    assert "multiples of 32" in capsys.readouterr().err
    assert MIN_PERSON_HEIGHT == 24  # the scenes above are sized for it


# A worker that cannot open the teacher makes multiprocessing restart it for ever: bound the wait.
@pytest.mark.timeout(120)
def test_teacher_named_by_the_environment_reaches_the_worker_processes(teacher_dir, tmp_path, monkeypatch):
    folder = labelled_folder(tmp_path, 2)
    monkeypatch.setenv("LITEPOSE_TEACHER_DIR", str(teacher_dir))
    summary = label_inputs([folder], tmp_path / "out", teacher_dir=None, workers=2, progress=False)
    assert summary.frames == 2 and summary.people == 2 and not summary.errors
    assert not (tmp_path / "out" / "frames").exists()  # image files only: no extracted frames
