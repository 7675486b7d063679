"""bag-eval: every image of a bag through an estimator, output bag readable by rclpy, report, OKS AP."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from litepose_ros.bags.evaluate import BagEvalOptions, evaluate_bag, match_ground_truth
from litepose_ros.bags.storage import (
    COMPRESSED_IMAGE_TYPE,
    IMAGE_TYPE,
    BagError,
    BagReader,
    BagWriter,
    compressed_image_cdr,
    project_typestore,
    raw_image_cdr,
)
from litepose_ros.layouts import COCO_17

START_NS = 1_650_000_000_250_000_000
PERIOD_NS = 100_000_000
WIDTH, HEIGHT = 96, 80


@dataclass
class StubResult:
    keypoints: np.ndarray
    scores: np.ndarray
    layout: object = COCO_17
    timing: dict = field(default_factory=dict)


class BrightnessEstimator:
    """A deterministic stand-in for the Estimator: one person per frame, placed and scored by the
    frame's brightness, so expected outputs are known without a trained model."""

    def __init__(self):
        self.calls = 0

    def predict(self, image, color_order="bgr"):
        assert color_order == "bgr" and image.shape == (HEIGHT, WIDTH, 3) and image.dtype == np.uint8
        self.calls += 1
        level = float(image.mean())
        joints = np.arange(COCO_17.num_keypoints)
        keypoints = np.stack(
            [20 + 3.0 * joints + level / 20, 10 + 3.5 * joints, np.full(joints.shape, 0.9)], axis=1
        )[None].astype(np.float32)
        return StubResult(keypoints, np.array([0.2 + level / 500], dtype=np.float32))


def frame(index: int) -> np.ndarray:
    return np.full((HEIGHT, WIDTH, 3), 10 + 20 * index, dtype=np.uint8)


def make_image_bag(path, count: int, storage: str = "sqlite3", compressed: bool = False) -> list[int]:
    import cv2

    typestore = project_typestore()
    topic = "/cam/image_raw/compressed" if compressed else "/cam/image_raw"
    with BagWriter(path, storage) as writer:
        writer.add_topic(topic, COMPRESSED_IMAGE_TYPE if compressed else IMAGE_TYPE)
        for index in range(count):
            stamp = START_NS + index * PERIOD_NS
            if compressed:
                data = compressed_image_cdr(
                    typestore, cv2.imencode(".png", frame(index))[1].tobytes(), stamp, "cam_optical", "png"
                )
            else:
                data = raw_image_cdr(typestore, frame(index), stamp, "cam_optical")
            writer.write(topic, stamp + 7_000_000, data)
    return [START_NS + i * PERIOD_NS for i in range(count)]


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_output_bag_holds_the_nodes_messages_with_source_stamps(tmp_path, storage):
    from litepose_ros.msg import PersonArray
    from rclpy.serialization import deserialize_message
    from visualization_msgs.msg import MarkerArray

    compressed = storage == "mcap"
    stamps = make_image_bag(tmp_path / "in", 6, storage, compressed=compressed)
    topic = "/cam/image_raw/compressed" if compressed else "/cam/image_raw"
    estimator = BrightnessEstimator()
    result = evaluate_bag(
        tmp_path / "in",
        estimator,
        tmp_path / "report",
        BagEvalOptions(topic=topic, storage=storage, sample_frames=0),
        progress=False,
    )
    assert estimator.calls == 6
    with BagReader(tmp_path / "report" / "bag") as reader:
        assert {n: (t.msgtype, t.count) for n, t in reader.topics.items()} == {
            "/persons": ("litepose_ros/msg/PersonArray", 6),
            "/markers": ("visualization_msgs/msg/MarkerArray", 6),
        }
        persons = [
            (m.log_time_ns, deserialize_message(m.data, PersonArray)) for m in reader.messages(["/persons"])
        ]
        markers = [deserialize_message(m.data, MarkerArray) for m in reader.messages(["/markers"])]
    for (log_time, message), stamp, index in zip(persons, stamps, range(6), strict=True):
        assert message.header.stamp.sec * 10**9 + message.header.stamp.nanosec == stamp
        assert log_time == stamp + 7_000_000  # written at the source message's bag time
        assert message.header.frame_id == "cam_optical"
        assert (message.image_width, message.image_height) == (WIDTH, HEIGHT)
        assert message.layout == "coco17" and len(message.persons) == 1
        person = message.persons[0]
        expected = estimator.predict(frame(index))
        assert person.score == pytest.approx(float(expected.scores[0]), abs=1e-3)
        assert person.keypoints[5].x == pytest.approx(float(expected.keypoints[0, 5, 0]), abs=0.05)
        assert all(k.valid for k in person.keypoints)  # 0.9 >= default keypoint_threshold
    assert all(m.markers and m.markers[0].header.frame_id in ("", "cam_optical") for m in markers)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["frames"] == {"in_bag": 6, "read": 6, "processed": 6, "failed": 0, "failures": []}
    assert report["persons_per_frame"]["histogram"] == {"1": 6}
    assert report["bag_frame_rate_hz"] == pytest.approx(10.0)
    assert report["latency_ms"]["p50"] >= 0 and report["throughput_fps"] > 0
    for name in (
        "latency_over_time.png",
        "latency_histogram.png",
        "persons_per_frame.png",
        "report.md",
        "frames.csv",
    ):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert result.files["bag"] == tmp_path / "report" / "bag"


def test_two_runs_write_identical_messages(tmp_path):
    from litepose_ros.msg import PersonArray
    from rclpy.serialization import deserialize_message
    from visualization_msgs.msg import MarkerArray

    make_image_bag(tmp_path / "in", 4)
    types = {"/persons": PersonArray, "/markers": MarkerArray}
    contents = []
    for run in ("a", "b"):
        evaluate_bag(
            tmp_path / "in",
            BrightnessEstimator(),
            tmp_path / run,
            BagEvalOptions(topic="/cam/image_raw", sample_frames=0),
            progress=False,
        )
        with BagReader(tmp_path / run / "bag") as reader:
            # Compared as messages: rclpy's serialiser leaves CDR alignment padding uninitialised.
            contents.append(
                [
                    (m.topic, m.log_time_ns, deserialize_message(m.data, types[m.topic]))
                    for m in reader.messages()
                ]
            )
    assert contents[0] == contents[1] and len(contents[0]) == 8


def ground_truth_from(estimator, count: int, moved: set[int], with_stamps: bool) -> dict:
    """COCO ground truth equal to the estimator's own output, except persons of frames in `moved`,
    which are shifted far away (no overlap with any prediction)."""
    images, annotations = [], []
    for index in range(count):
        keypoints = estimator.predict(frame(index)).keypoints[0].astype(np.float64)
        if index in moved:
            keypoints[:, 0] += 500.0
        image = {"id": 100 + index, "file_name": f"frame_{index}.png", "width": WIDTH, "height": HEIGHT}
        if with_stamps:
            image["stamp"] = {
                "sec": (START_NS + index * PERIOD_NS) // 10**9,
                "nanosec": (START_NS + index * PERIOD_NS) % 10**9,
            }
        images.append(image)
        x0, y0 = keypoints[:, 0].min(), keypoints[:, 1].min()
        w, h = np.ptp(keypoints[:, 0]), np.ptp(keypoints[:, 1])
        flat = np.concatenate([keypoints[:, :2], np.full((len(keypoints), 1), 2.0)], axis=1).ravel()
        annotations.append(
            {
                "id": 1000 + index,
                "image_id": 100 + index,
                "category_id": 1,
                "iscrowd": 0,
                "keypoints": [float(v) for v in flat],
                "num_keypoints": len(keypoints),
                "bbox": [x0, y0, w, h],
                "area": float(w * h),
            }
        )
    categories = [
        {
            "id": 1,
            "name": "person",
            "keypoints": list(COCO_17.keypoint_names),
            "skeleton": [[a + 1, b + 1] for a, b in COCO_17.edges],
        }
    ]
    return {"images": images, "annotations": annotations, "categories": categories}


@pytest.mark.parametrize("with_stamps", [True, False])
def test_ground_truth_ap_is_one_on_own_output_and_drops_as_expected(tmp_path, with_stamps):
    count = 10
    make_image_bag(tmp_path / "in", count)
    estimator = BrightnessEstimator()
    exact = tmp_path / "exact.json"
    exact.write_text(json.dumps(ground_truth_from(estimator, count, set(), with_stamps)))
    result = evaluate_bag(
        tmp_path / "in",
        estimator,
        tmp_path / "r1",
        BagEvalOptions(topic="/cam/image_raw", ground_truth=exact, sample_frames=0),
        progress=False,
    )
    accuracy = result.report["accuracy"]
    assert accuracy["match_by"] == ("stamp" if with_stamps else "index")
    assert accuracy["matched_frames"] == count
    assert accuracy["metrics"]["AP"] == pytest.approx(1.0) and accuracy["metrics"]["AR"] == pytest.approx(1.0)

    # Move the ground truth of the 4 lowest-scored frames away: their predictions become false
    # positives ranked below every true positive. Precision is 1 up to recall 6/10 and nothing is
    # found beyond, so the 101-point interpolated AP counts the recall thresholds 0.00..0.60.
    moved = set(range(4))  # frame brightness, hence score, grows with the index
    perturbed = tmp_path / "moved.json"
    perturbed.write_text(json.dumps(ground_truth_from(estimator, count, moved, with_stamps)))
    result = evaluate_bag(
        tmp_path / "in",
        estimator,
        tmp_path / "r2",
        BagEvalOptions(topic="/cam/image_raw", ground_truth=perturbed, sample_frames=0),
        progress=False,
    )
    metrics = result.report["accuracy"]["metrics"]
    assert metrics["AP"] == pytest.approx(61 / 101, abs=1e-6)
    assert metrics["AR"] == pytest.approx(0.6, abs=1e-6)
    assert "Accuracy (OKS)" in (tmp_path / "r2" / "report.md").read_text()


def test_match_ground_truth_by_stamp_tolerance_and_index():
    frames = [(0, 1_000_000_000), (1, 1_100_000_000), (2, 1_200_000_000)]
    dataset = {"images": [{"id": 7, "stamp_ns": 1_100_000_400}, {"id": 8, "stamp_ns": 1_250_000_000}]}
    mapping, mode = match_ground_truth(dataset, frames, "auto", tolerance_ns=1000)
    assert (mapping, mode) == ({1: 7}, "stamp")
    by_position = {"images": [{"id": 30}, {"id": 10}, {"id": 20}, {"id": 40}]}
    mapping, mode = match_ground_truth(by_position, frames, "auto")
    assert mode == "index" and mapping == {0: 10, 1: 20, 2: 30}  # id order; id 40 has no frame
    explicit = {"images": [{"id": 1, "frame_index": 2}, {"id": 2, "frame_index": 0}]}
    assert match_ground_truth(explicit, frames, "index")[0] == {2: 1, 0: 2}
    with pytest.raises(ValueError, match="for every image"):
        match_ground_truth({"images": [{"id": 1, "frame_index": 2}, {"id": 2}]}, frames, "index")
    with pytest.raises(ValueError, match="no stamp"):
        match_ground_truth(by_position, frames, "stamp")


def test_missing_topic_and_existing_output_are_refused_before_writing(tmp_path):
    make_image_bag(tmp_path / "in", 2)
    with pytest.raises(BagError) as missing:
        evaluate_bag(
            tmp_path / "in",
            BrightnessEstimator(),
            tmp_path / "r",
            BagEvalOptions(topic="/camera/image_raw"),
            progress=False,
        )
    assert "/cam/image_raw (sensor_msgs/msg/Image, 2 messages)" in str(missing.value)
    assert not (tmp_path / "r" / "bag").exists()
    (tmp_path / "taken").mkdir()
    with pytest.raises(BagError, match="already exists"):
        evaluate_bag(
            tmp_path / "in",
            BrightnessEstimator(),
            tmp_path / "r",
            BagEvalOptions(topic="/cam/image_raw", output_bag=tmp_path / "taken"),
            progress=False,
        )


def test_truncated_bag_keeps_the_frames_before_the_cut(tmp_path):
    from litepose_ros.msg import PersonArray
    from rclpy.serialization import deserialize_message

    # Frames big enough to spread over several MCAP chunks (rosbags closes a chunk at 1 MiB).
    stamps = make_image_bag(tmp_path / "in", 6, "mcap")
    data = next((tmp_path / "in").glob("*.mcap")).read_bytes()
    (tmp_path / "cut.mcap").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(BagError, match="truncated") as error:
        evaluate_bag(
            tmp_path / "cut.mcap",
            BrightnessEstimator(),
            tmp_path / "r",
            BagEvalOptions(topic="/cam/image_raw", sample_frames=0),
            progress=False,
        )
    assert "report.md" in str(error.value)
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    read = report["frames"]["processed"]
    assert 0 < read < 6 and "truncated" in report["error"]
    with BagReader(tmp_path / "r" / "bag") as reader:  # closed properly: a complete, readable bag
        persons = [deserialize_message(m.data, PersonArray) for m in reader.messages(["/persons"])]
    assert [p.header.stamp.sec * 10**9 + p.header.stamp.nanosec for p in persons] == stamps[:read]


def test_undecodable_frames_are_counted_not_fatal(tmp_path):
    import cv2

    typestore = project_typestore()
    with BagWriter(tmp_path / "in", "mcap") as writer:
        writer.add_topic("/cam/image_raw/compressed", COMPRESSED_IMAGE_TYPE)
        for index in range(3):
            payload = b"not a jpeg" if index == 1 else cv2.imencode(".png", frame(index))[1].tobytes()
            writer.write(
                "/cam/image_raw/compressed",
                START_NS + index,
                compressed_image_cdr(typestore, payload, START_NS + index, "cam"),
            )
    result = evaluate_bag(
        tmp_path / "in",
        BrightnessEstimator(),
        tmp_path / "r",
        BagEvalOptions(topic="/cam/image_raw/compressed", sample_frames=0),
        progress=False,
    )
    frames = result.report["frames"]
    assert (frames["processed"], frames["failed"]) == (2, 1)
    assert frames["failures"][0]["index"] == 1 and frames["failures"][0]["error"]


def test_tracking_ids_and_figures_and_against_track_id_ground_truth(tmp_path):
    from litepose_ros.msg import PersonArray
    from rclpy.serialization import deserialize_message

    count = 10
    make_image_bag(tmp_path / "in", count)
    estimator = BrightnessEstimator()
    # Ground truth with one identity (track_id 5) over the whole clip: the estimator's own people.
    truth = ground_truth_from(estimator, count, set(), with_stamps=True)
    for annotation in truth["annotations"]:
        annotation["track_id"] = 5
    path = tmp_path / "tracks.json"
    path.write_text(json.dumps(truth))
    result = evaluate_bag(
        tmp_path / "in",
        estimator,
        tmp_path / "r",
        BagEvalOptions(topic="/cam/image_raw", ground_truth=path, sample_frames=0),
        progress=False,
    )
    with BagReader(tmp_path / "r" / "bag") as reader:
        ids = [
            [p.id for p in deserialize_message(m.data, PersonArray).persons]
            for m in reader.messages(["/persons"])
        ]
    # The one person scores 0.2 + brightness / 500: from 0.3 (tracking.high_score) at frame 2 a
    # track starts, confirmed at its 3rd frame (tracking.min_hits), then one id to the end.
    assert ids[:4] == [[-1]] * 4 and ids[4:] == [[1]] * (count - 4), ids
    tracking = result.report["tracking"]
    assert tracking["tracks_started"] == 1 and tracking["median_track_frames"] == count - 4
    assert tracking["id_switches"] == 0 and tracking["truth_tracks"] == 1
    # The 4 frames before confirmation are misses: MOTA = IDF1 recall-limited.
    assert tracking["mota"] == pytest.approx(0.6) and tracking["idf1"] == pytest.approx(2 * 6 / (6 + 10))
    page = (tmp_path / "r" / "report.md").read_text()
    assert "## Tracking" in page and "id switches" in page
    assert (tmp_path / "r" / "frames.csv").read_text().splitlines()[-1].endswith(",1")

    # Without track ids in the ground truth: figures without switches; tracking off: NO_ID everywhere.
    for annotation in truth["annotations"]:
        del annotation["track_id"]
    path.write_text(json.dumps(truth))
    plain = evaluate_bag(
        tmp_path / "in",
        estimator,
        tmp_path / "r2",
        BagEvalOptions(topic="/cam/image_raw", ground_truth=path, sample_frames=0),
        progress=False,
    ).report["tracking"]
    assert plain["tracks_started"] == 1 and plain["id_switches"] is None and "track_id" in plain["truth"]
    off = evaluate_bag(
        tmp_path / "in",
        estimator,
        tmp_path / "r3",
        BagEvalOptions(topic="/cam/image_raw", sample_frames=0, tracking=False),
        progress=False,
    )
    assert off.report["tracking"] == {"enabled": False}
    with BagReader(tmp_path / "r3" / "bag") as reader:
        assert all(
            p.id == -1
            for m in reader.messages(["/persons"])
            for p in deserialize_message(m.data, PersonArray).persons
        )
    assert "## Tracking" not in (tmp_path / "r3" / "report.md").read_text()


# --- 3D keypoints from a depth topic -------------------------------------------------------------

DEPTH_FOCAL = 80.0
DEPTH_TOPIC, DEPTH_INFO_TOPIC = "/cam/depth/image_raw", "/cam/depth/camera_info"


def make_rgbd_bag(
    path,
    count: int,
    *,
    skip_depth: tuple[int, ...] = (),
    depth_encoding: str = "16UC1",
    distance_mm: int = 2000,
    info_divisor: int = 1,
    focal: float = DEPTH_FOCAL,
) -> None:
    """Colour frames plus a depth image of a wall ``distance_mm`` away per frame (written a little
    after its colour frame, as aligned depth arrives), and the depth camera_info (for the depth
    image's size divided by ``info_divisor``, focal length ``focal``)."""
    from litepose_ros.bags.storage import CAMERA_INFO_TYPE, camera_info_cdr

    typestore = project_typestore()
    with BagWriter(path, "mcap") as writer:
        writer.add_topic("/cam/image_raw", IMAGE_TYPE)
        writer.add_topic(DEPTH_TOPIC, IMAGE_TYPE)
        writer.add_topic(DEPTH_INFO_TOPIC, CAMERA_INFO_TYPE)
        for index in range(count):
            stamp = START_NS + index * PERIOD_NS
            writer.write(
                "/cam/image_raw",
                stamp + 7_000_000,
                raw_image_cdr(typestore, frame(index), stamp, "cam_optical"),
            )
            writer.write(
                DEPTH_INFO_TOPIC,
                stamp + 8_000_000,
                camera_info_cdr(
                    typestore,
                    WIDTH // info_divisor,
                    HEIGHT // info_divisor,
                    fx=focal,
                    fy=focal,
                    cx=(WIDTH // info_divisor - 1) / 2,
                    cy=(HEIGHT // info_divisor - 1) / 2,
                    stamp=stamp,
                    frame_id="cam_optical",
                ),
            )
            if index in skip_depth:
                continue
            if depth_encoding == "16UC1":
                pixels = np.full((HEIGHT, WIDTH), distance_mm, "<u2").view(np.uint8).reshape(HEIGHT, WIDTH, 2)
            else:
                pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
            writer.write(
                DEPTH_TOPIC,
                stamp + 9_000_000,
                raw_image_cdr(typestore, pixels, stamp, "cam_optical", encoding=depth_encoding),
            )


def test_a_depth_topic_gives_the_keypoints_their_3d_positions(tmp_path):
    from litepose_ros.msg import PersonArray
    from rclpy.serialization import deserialize_message
    from visualization_msgs.msg import MarkerArray

    make_rgbd_bag(tmp_path / "in", 5, skip_depth=(3,))
    result = evaluate_bag(
        tmp_path / "in",
        BrightnessEstimator(),
        tmp_path / "r",
        BagEvalOptions(topic="/cam/image_raw", depth_topic=DEPTH_TOPIC, sample_frames=0),
        progress=False,
    )
    with BagReader(tmp_path / "r" / "bag") as reader:
        persons = [deserialize_message(m.data, PersonArray) for m in reader.messages(["/persons"])]
        markers = [deserialize_message(m.data, MarkerArray) for m in reader.messages(["/markers"])]
    cx, cy = (WIDTH - 1) / 2, (HEIGHT - 1) / 2
    for index, (message, marker_array) in enumerate(zip(persons, markers, strict=True)):
        person = message.persons[0]
        if index == 3:  # no depth image at this frame's time: 2D, markers on the plane
            assert not person.position_valid and not any(k.position_valid for k in person.keypoints)
            continue
        assert person.position_valid and person.position.z == pytest.approx(2.0, abs=1e-3)
        for keypoint in person.keypoints:
            assert keypoint.position_valid
            expected = ((keypoint.x - cx) * 2.0 / DEPTH_FOCAL, (keypoint.y - cy) * 2.0 / DEPTH_FOCAL, 2.0)
            assert (keypoint.position.x, keypoint.position.y, keypoint.position.z) == pytest.approx(
                expected, abs=1e-3
            )
        joints = next(m for m in marker_array.markers if m.ns == "joints")
        assert [p.z for p in joints.points] == pytest.approx([2.0] * 17, abs=1e-3)
    depth = result.report["depth"]
    assert (
        depth["frames_with_depth"],
        depth["frames_without_matching_depth"],
        depth["depth_images_rejected"],
    ) == (4, 1, 0)
    assert depth["camera_info_topic"] == DEPTH_INFO_TOPIC  # the depth topic's sibling, found by itself
    assert "3D keypoints (depth)" in (tmp_path / "r" / "report.md").read_text()


@pytest.mark.parametrize(
    ("bag_options", "problem_words"),
    [
        ({"depth_encoding": "rgb8"}, ("rgb8", "16UC1")),
        # camera_info for half the depth image's size, fx 1e308: infinite once rescaled
        ({"info_divisor": 2, "focal": 1e308}, ("does not fit", "fx=inf")),
    ],
    ids=["rgb8", "unscalable_calibration"],
)
def test_an_unusable_depth_topic_is_reported_and_the_frames_stay_2d(tmp_path, bag_options, problem_words):
    from litepose_ros.msg import PersonArray
    from rclpy.serialization import deserialize_message

    make_rgbd_bag(tmp_path / "in", 3, **bag_options)
    result = evaluate_bag(
        tmp_path / "in",
        BrightnessEstimator(),
        tmp_path / "r",
        BagEvalOptions(topic="/cam/image_raw", depth_topic=DEPTH_TOPIC, sample_frames=0),
        progress=False,
    )
    depth = result.report["depth"]
    assert depth["depth_images_rejected"] == 3 and depth["frames_with_depth"] == 0
    assert all(word in depth["problem"] for word in problem_words) and DEPTH_TOPIC in depth["problem"]
    with BagReader(tmp_path / "r" / "bag") as reader:
        persons = [deserialize_message(m.data, PersonArray) for m in reader.messages(["/persons"])]
    assert len(persons) == 3 and not any(p.position_valid for m in persons for p in m.persons)
    with pytest.raises(BagError, match="/cam/nothing"):
        evaluate_bag(
            tmp_path / "in",
            BrightnessEstimator(),
            tmp_path / "r2",
            BagEvalOptions(topic="/cam/image_raw", depth_topic="/cam/nothing"),
            progress=False,
        )
