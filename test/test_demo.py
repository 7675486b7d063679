"""The demo and the command-line bag tools end to end: the real node process, a real (random) model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from litepose_ros.bags.storage import BagReader, write_single_mcap
from litepose_ros.ros.parameters import default_values
from litepose_ros.samples import SAMPLES_DIR

pytestmark = [pytest.mark.ros, pytest.mark.torch]

SAMPLE_BAG = SAMPLES_DIR / "vtest_sample.mcap"
IMAGE_TOPIC = "/camera/image_raw/compressed"
LITEPOSE = [sys.executable, "-c", "import sys; from litepose_ros.cli import main; sys.exit(main())"]
FRAMES = 8


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A randomly initialised XS (COCO) network exported to ONNX at a small input size."""
    import torch

    from litepose_ros.model.network import build_model
    from litepose_ros.model.onnx_export import export_onnx

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "xs_random.onnx"
    export_onnx(build_model("XS", 17).eval(), path, input_size=128)
    return path


@pytest.fixture(scope="module")
def short_bag(tmp_path_factory):
    """The first frames of the bundled sample bag (with their camera info), as a smaller bag."""
    path = tmp_path_factory.mktemp("bag") / "short.mcap"
    with BagReader(SAMPLE_BAG) as reader:
        topics = {name: info.msgtype for name, info in reader.topics.items()}
        messages = [(m.topic, m.log_time_ns, m.data) for m in reader.messages()][: 2 * FRAMES]
    write_single_mcap(path, topics, messages)
    return path


def litepose(*arguments: str) -> subprocess.CompletedProcess:
    """Run the ``litepose`` command line in a child process with this environment."""
    return subprocess.run(
        [*LITEPOSE, *arguments], env=dict(os.environ), capture_output=True, text=True, timeout=240
    )


def source_stamps(bag) -> list[int]:
    with BagReader(bag) as reader:
        return [image.stamp_ns for image in reader.images(IMAGE_TOPIC)]


def test_demo_leaves_frames_video_contact_sheet_summary_and_bag(tmp_path, model_path, short_bag):
    import cv2
    from litepose_ros.msg import PersonArray
    from rclpy.serialization import deserialize_message

    output = tmp_path / "demo_output"
    result = subprocess.run(
        [*LITEPOSE, "demo", "--output", str(output), "--model", str(model_path), "--bag", str(short_bag)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "contact sheet" in result.stdout and str(output) in result.stdout

    summary = json.loads((output / "summary.json").read_text())
    frames = summary["frames"]
    assert frames["sent"] == FRAMES and frames["processed"] + frames["dropped"] == FRAMES
    assert frames["processed"] >= 1
    assert summary["end_to_end_latency_ms"]["p50"] > 0
    assert "frames in / processed / dropped" in (output / "summary.md").read_text()
    # The node tracked (its default): figures in the summary; not the bundled clip, so no eye count.
    tracking = summary["tracking"]
    assert tracking["enabled"] and tracking["frames"] == frames["processed"]
    assert tracking["pedestrians_counted_by_eye"] is None
    assert "tracks started (distinct ids)" in (output / "summary.md").read_text()

    jpegs = sorted((output / "frames").glob("frame_*.jpg"))
    assert len(jpegs) == frames["processed"]
    assert cv2.imread(str(jpegs[0])).shape == (576, 768, 3)
    video = cv2.VideoCapture(str(output / "annotated.mp4"))
    count = 0
    while video.read()[0]:
        count += 1
    assert count == len(jpegs)
    sheet = cv2.imread(str(output / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] == 4 * 320

    stamps = source_stamps(short_bag)
    with BagReader(output / "bag") as reader:
        assert reader.topics["/litepose/persons"].count == frames["processed"]
        persons = [deserialize_message(m.data, PersonArray) for m in reader.messages(["/litepose/persons"])]
    for message in persons:
        assert message.header.stamp.sec * 10**9 + message.header.stamp.nanosec in stamps
        assert message.header.frame_id == "vtest_camera_optical_frame"
        assert (message.image_width, message.image_height) == (768, 576)

    # A second run into the same folder replaces the first one's results; without tracking,
    # every person has NO_ID and the summary no tracking figures.
    again = subprocess.run(
        [
            *LITEPOSE,
            "demo",
            "--output",
            str(output),
            "--model",
            str(model_path),
            "--bag",
            str(short_bag),
            "--no-tracking",
        ],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert again.returncode == 0, again.stderr
    assert not json.loads((output / "summary.json").read_text())["tracking"]["enabled"]
    with BagReader(output / "bag") as reader:
        assert all(
            p.id == -1
            for m in reader.messages(["/litepose/persons"])
            for p in deserialize_message(m.data, PersonArray).persons
        )


def test_demo_says_distinct_ids_against_the_eye_count_on_the_bundled_clip():
    from litepose_ros.cli.demo import clip_tracking, tracking_sentence
    from litepose_ros.samples import VTEST_PEDESTRIANS

    figures = {
        "enabled": True,
        "tracks_started": 9,
        "median_track_frames": 12.0,
        "median_track_seconds": 0.8,
        "mean_track_frames": 10.5,
    }
    tracking = clip_tracking(figures, bundled=True)
    assert tracking["pedestrians_counted_by_eye"] == VTEST_PEDESTRIANS == 7
    assert tracking_sentence(tracking) == (
        "tracking: 9 distinct ids over the clip (7 pedestrians in it, "
        "counted by eye); track length median 12 frames (0.80 s), "
        "mean 10.5 frames"
    )
    assert "counted by eye" not in tracking_sentence(clip_tracking(figures, bundled=False))
    assert clip_tracking({"enabled": False}, bundled=True) is None


def test_demo_refuses_a_folder_with_other_files_and_a_missing_model(tmp_path, model_path):
    (tmp_path / "mine.txt").write_text("keep me")
    result = subprocess.run(
        [*LITEPOSE, "demo", "--output", str(tmp_path), "--model", str(model_path)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "did not write" in result.stderr
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    result = subprocess.run(
        [*LITEPOSE, "demo", "--output", str(tmp_path / "new"), "--model", str(tmp_path / "absent.onnx")],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "absent.onnx does not exist" in result.stderr


def test_bag_eval_command_with_a_real_model(tmp_path, model_path, short_bag):
    from litepose_ros.msg import PersonArray
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CompressedImage

    output = tmp_path / "eval"
    result = subprocess.run(
        [
            *LITEPOSE,
            "bag-eval",
            str(short_bag),
            "--model",
            str(model_path),
            "-o",
            str(output),
            "--annotated",
            "--samples",
            "2",
            "--no-progress",
        ],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((output / "report.json").read_text())
    assert report["topic"] == IMAGE_TOPIC and report["camera_info_topic"] == "/camera/camera_info"
    assert report["frames"]["processed"] == FRAMES
    # decodes as the node does by default, so its figures are the node's
    node_flip = "on" if default_values()["flip_test"] else "off"
    assert f"flip_test={node_flip}" in report["model"], report["model"]
    assert len(report["samples"]) == 2 and all((output / s).is_file() for s in report["samples"])
    stamps = source_stamps(short_bag)
    with BagReader(output / "bag") as reader:
        persons = [deserialize_message(m.data, PersonArray) for m in reader.messages(["/persons"])]
        annotated = [
            deserialize_message(m.data, CompressedImage)
            for m in reader.messages(["/image_annotated/compressed"])
        ]
    assert [p.header.stamp.sec * 10**9 + p.header.stamp.nanosec for p in persons] == stamps
    assert len(annotated) == FRAMES and annotated[0].format.endswith("jpeg compressed bgr8")
    assert report["persons_per_frame"]["total"] == sum(len(p.persons) for p in persons)
    assert report["tracking"]["enabled"] and report["tracking"]["frames"] == FRAMES
    assert "tracking:" in result.stdout and "## Tracking" in (output / "report.md").read_text()


@pytest.mark.parametrize("flip", [None, True], ids=["node-defaults", "flip-test"])
def test_offline_bag_eval_gives_the_people_the_live_node_publishes(tmp_path, short_bag, flip):
    """What bag-eval writes offline is what the node publishes for the same images (same people,
    keypoints and scores), with the node's defaults and with an option passed to both."""
    from litepose_ros.msg import PersonArray
    from rclpy.serialization import deserialize_message

    options = [] if flip is None else ["--flip-test"]
    outputs = {}
    for mode in ("offline", "live"):
        live = ["--live", "--rate", "0.5", "--no-annotated"] if mode == "live" else []
        result = litepose(
            "bag-eval", str(short_bag), "-o", str(tmp_path / mode), "--no-progress", *options, *live
        )
        assert result.returncode == 0, result.stdout + result.stderr
        with BagReader(tmp_path / mode / "bag") as reader:
            topic = next(name for name in reader.topics if name.endswith("/persons"))
            arrays = [deserialize_message(m.data, PersonArray) for m in reader.messages([topic])]
        outputs[mode] = {
            (a.header.stamp.sec, a.header.stamp.nanosec): [
                (round(p.score, 4), [(round(k.x, 2), round(k.y, 2), round(k.score, 4)) for k in p.keypoints])
                for p in a.persons
            ]
            for a in arrays
        }
    shared = outputs["offline"].keys() & outputs["live"].keys()
    assert len(outputs["offline"]) == FRAMES and len(shared) >= FRAMES // 2  # the node may drop some
    assert sum(len(outputs["offline"][stamp]) for stamp in shared) >= len(shared)  # people were found
    for stamp in sorted(shared):
        assert outputs["offline"][stamp] == outputs["live"][stamp], stamp


def test_live_bag_eval_scores_the_published_people_against_ground_truth(tmp_path, short_bag):
    """--live --ground-truth: OKS AP/AR of what the node published. The ground truth here is the
    offline output of the same model (equal to the node's, see above), so every person on a frame
    the node answered is found exactly and only the people of dropped frames are missed."""
    from litepose_ros.msg import PersonArray
    from rclpy.serialization import deserialize_message

    offline = tmp_path / "offline"
    assert litepose("bag-eval", str(short_bag), "-o", str(offline), "--no-progress").returncode == 0
    with BagReader(offline / "bag") as reader:
        arrays = [deserialize_message(m.data, PersonArray) for m in reader.messages(["/persons"])]
    images, annotations = [], []
    for number, array in enumerate(arrays, start=1):
        stamp = {"sec": array.header.stamp.sec, "nanosec": array.header.stamp.nanosec}
        images.append(
            {"id": number, "file_name": f"{number}.jpg", "width": 768, "height": 576, "stamp": stamp}
        )
        for person in array.persons:
            xy = np.array([(k.x, k.y) for k in person.keypoints], dtype=np.float64)
            (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": number,
                    "category_id": 1,
                    "iscrowd": 0,
                    "keypoints": [float(v) for x, y in xy for v in (x, y, 2.0)],
                    "num_keypoints": len(xy),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": float((x1 - x0) * (y1 - y0)),
                }
            )
    names = [f"joint_{j}" for j in range(len(arrays[0].persons[0].keypoints))]
    truth = tmp_path / "truth.json"
    truth.write_text(
        json.dumps(
            {
                "images": images,
                "annotations": annotations,
                "categories": [{"id": 1, "name": "person", "keypoints": names, "skeleton": []}],
            }
        )
    )
    live = tmp_path / "live"
    result = litepose(
        "bag-eval",
        str(short_bag),
        "-o",
        str(live),
        "--no-progress",
        "--live",
        "--rate",
        "0.5",
        "--no-annotated",
        "--ground-truth",
        str(truth),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((live / "summary.json").read_text())
    accuracy = report["accuracy"]
    assert accuracy["match_by"] == "stamp" and accuracy["matched_frames"] == FRAMES
    with BagReader(live / "bag") as reader:
        answered = {
            (a.header.stamp.sec, a.header.stamp.nanosec)
            for a in (
                deserialize_message(m.data, PersonArray) for m in reader.messages(["/litepose/persons"])
            )
        }
    dropped = [a for a in arrays if (a.header.stamp.sec, a.header.stamp.nanosec) not in answered]
    assert accuracy["matched_frames_without_output"] == len(dropped)
    people = sum(len(a.persons) for a in arrays)
    missed = sum(len(a.persons) for a in dropped)
    assert people > 0
    assert accuracy["metrics"]["AR"] == pytest.approx((people - missed) / people, abs=1e-6)
    if not dropped:
        assert accuracy["metrics"]["AP"] == pytest.approx(1.0)
    assert "OKS AP" in result.stdout and "## Accuracy (OKS)" in (live / "summary.md").read_text()
