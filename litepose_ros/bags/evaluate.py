"""Evaluate the pose estimator on the images of a rosbag2, offline and deterministically.

Every image message of the chosen topic (sensor_msgs/Image or CompressedImage) is decoded and
run through the estimator in bag order; nothing is dropped, so two runs give the same output. For
every frame the output bag gets what the node would publish for it, stamped with the source
image's header and written at the source message's bag time (a replay of the output bag keeps
the camera's timing):

- ``persons`` (litepose_ros/msg/PersonArray) and ``markers`` (visualization_msgs/MarkerArray),
  built by the node's own conversion code (``litepose_ros.ros.conversion`` / ``markers``);
- optionally ``image_annotated/compressed`` (sensor_msgs/CompressedImage, JPEG).

With a depth topic (``BagEvalOptions.depth_topic``: a depth image registered to the colour
camera, 16UC1 or 32FC1) the keypoints get 3D positions as the node gives them: the depth image
closest in stamp within ``depth_max_time_difference`` (read alongside the colour images by a
second reader, ``DepthStream``), the intrinsics of the depth topic's camera_info, the node's
``litepose_ros.depth`` step; the report counts the frames with and without a usable depth image.

People are tracked as the node tracks them (on by default, ``BagEvalOptions.tracking``; the
node's tracker and settings, on the image stamps): ``Person.id`` carries the track ids and the
report has tracking figures (tracks started, track lengths; with ground truth whose annotations
carry a ``track_id``, PoseTrack style, also id switches, IDF1 and MOTA from motmetrics).

The report folder gets ``report.json`` and ``report.md`` (frames, persons per frame, latency
percentiles, throughput, and OKS AP/AR when ground truth is given), ``frames.csv`` (one row per
frame), PNG plots (latency over time, latency histogram, persons per frame) and sample annotated
frames. When the bag turns out damaged part-way, everything is still written for the frames read
before the damage, then the BagError is raised.

No ROS graph is needed, but ROS is: messages are built as rclpy message objects by the node's
own conversion code and serialised with ``rclpy.serialization``, so this module belongs to the
ROS layer (rclpy is imported only when evaluating, not with this module). The ROS-free parts
(reading, writing, the report) are ``litepose_ros.bags.storage`` and ``litepose_ros.bags.report``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from litepose_ros.bags.report import (
    MATCH_MODES,
    FrameRecord,
    keypoint_accuracy,
    match_ground_truth,
    write_report,
)
from litepose_ros.bags.storage import (
    CAMERA_INFO_TYPE,
    COMPRESSED_IMAGE_TYPE,
    IMAGE_TYPE,
    IMAGE_TYPES,
    MARKER_ARRAY_TYPE,
    PERSON_ARRAY_TYPE,
    BagError,
    BagImage,
    BagReader,
    BagWriter,
    decode_bag_image,
    sibling_camera_info_topic,
)
from litepose_ros.depth import (
    DepthFormatError,
    DepthIntrinsics,
    DepthSettings,
    depth_to_metres,
    intrinsics_for,
    keypoint_positions,
    registration_problem,
)
from litepose_ros.layouts import get_layout
from litepose_ros.people import PublishedPeople, published_people
from litepose_ros.summaries import distribution, persons_summary
from litepose_ros.tracking import FrameIds, PoseTracker, TrackerConfig, tracking_figures


@dataclass(frozen=True)
class BagEvalOptions:
    """What to evaluate and how.

    topic: the image topic; output_bag: where the result bag goes (default: <report>/bag);
    storage: "mcap" or "sqlite3"; topic_prefix: output topics are <prefix>/persons, ... (the node's
    names with no namespace by default); keypoint_threshold / score_threshold / max_persons: as
    the node's parameters (defaults equal); annotated: also write annotated JPEG frames to the bag;
    camera_info_topic: intrinsics for the markers ("auto": the image's sibling camera_info, if
    any; "": none, i.e. the node's virtual camera); ground_truth: COCO keypoint JSON; match_by:
    how ground-truth images meet frames ("stamp": image entries carry ``stamp_ns`` or ``stamp``
    {sec, nanosec}; "index": ``frame_index`` or position in id order; "auto": stamp when every
    image has one); stamp_tolerance: seconds; max_frames: stop after this many frames;
    sample_frames: how many annotated frames to save as pictures; overwrite: replace an
    existing output bag; tracking: track people as the node does (ids in the output, tracking
    figures in the report); tracker: its settings (None: the node's defaults); depth_topic: a
    depth image registered to the colour camera (None: 2D only), depth_info_topic its
    camera_info ("auto": the depth topic's sibling camera_info), depth_max_time_difference and
    depth: as the node's ``depth.*`` parameters.
    """

    topic: str
    output_bag: Path | None = None
    storage: str = "mcap"
    topic_prefix: str = ""
    keypoint_threshold: float = 0.3
    score_threshold: float = 0.1
    max_persons: int = 30
    annotated: bool = False
    camera_info_topic: str = "auto"
    marker_depth: float = 3.0
    ground_truth: Path | None = None
    match_by: str = "auto"
    stamp_tolerance: float = 0.001
    max_frames: int | None = None
    sample_frames: int = 6
    overwrite: bool = False
    jpeg_quality: int = 90
    tracking: bool = True
    tracker: TrackerConfig | None = None
    depth_topic: str | None = None
    depth_info_topic: str = "auto"
    depth_max_time_difference: float = 0.02
    depth: DepthSettings = field(default_factory=DepthSettings)

    def __post_init__(self) -> None:
        if self.match_by not in MATCH_MODES:
            raise ValueError(f"match_by must be one of {', '.join(MATCH_MODES)}, got {self.match_by!r}")
        if not 0 <= self.keypoint_threshold <= 1 or not 0 <= self.score_threshold <= 1:
            raise ValueError("keypoint_threshold and score_threshold must be in [0, 1]")
        if self.max_persons < 1:
            raise ValueError(f"max_persons must be >= 1, got {self.max_persons}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")
        if self.stamp_tolerance < 0:
            raise ValueError(f"stamp_tolerance must be >= 0 seconds, got {self.stamp_tolerance}")

    def output_topic(self, name: str) -> str:
        """Full output topic name: <prefix>/<name>."""
        return f"{self.topic_prefix.rstrip('/')}/{name}"


@dataclass
class BagEvalResult:
    """Per-frame records, the report dict and the files written."""

    frames: list[FrameRecord] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


# --- evaluation ---------------------------------------------------------------------------------


def _find_camera_info_topic(reader: BagReader, options: BagEvalOptions) -> str | None:
    if options.camera_info_topic != "auto":
        if options.camera_info_topic:
            reader.require_topic(options.camera_info_topic, [CAMERA_INFO_TYPE])
        return options.camera_info_topic or None
    sibling = sibling_camera_info_topic(options.topic)
    infos = [t.name for t in reader.topics.values() if t.msgtype == CAMERA_INFO_TYPE]
    if sibling in infos:
        return sibling
    return infos[0] if len(infos) == 1 else None


def _first_camera_info(reader: BagReader, topic: str | None):
    if topic is None:
        return None
    for message in reader.messages([topic]):
        info = reader.deserialize(message)
        return tuple(float(v) for v in info.k), int(info.width), int(info.height)
    return None


class DepthStream:
    """The depth images of a bag topic, read in bag order by a reader of their own while the colour
    images are read, and paired with each colour image as the node pairs them: the closest stamp
    among the recent ones, within the tolerance (stamps are assumed to grow, as a camera's do)."""

    def __init__(self, bag: str | Path, options: BagEvalOptions):
        self.options = options
        self.topic = str(options.depth_topic)
        self.reader = BagReader(bag)
        self.reader.open()
        try:
            self.reader.require_topic(self.topic, [IMAGE_TYPE])
        except BagError:
            self.reader.close()
            raise
        info_topic = options.depth_info_topic
        if info_topic == "auto":
            info_topic = sibling_camera_info_topic(self.topic)
            info_topic = info_topic if info_topic in self.reader.topics else ""
        self.info_topic = info_topic or None
        self.intrinsics: DepthIntrinsics | None = None
        self.problem = ""  # why there are no intrinsics, if so
        info = _first_camera_info(self.reader, self.info_topic) if self.info_topic else None
        if info is None:
            self.problem = (
                f"no camera_info for the depth topic {self.topic} in the bag: name it with --depth-info-topic"
            )
        else:
            try:
                self.intrinsics = DepthIntrinsics.from_camera_info(*info)
            except ValueError as error:
                self.problem = f"{self.info_topic}: {error}"
        self._pending = self.reader.images(self.topic)
        self._next: BagImage | None = next(self._pending, None)
        self._recent: deque[BagImage] = deque(maxlen=8)
        self.matched = self.unmatched = self.rejected = 0
        self.first_problem = ""

    def close(self) -> None:
        self.reader.close()

    def closest(self, stamp_ns: int) -> BagImage | None:
        tolerance = round(self.options.depth_max_time_difference * 1e9)
        while self._next is not None and self._next.stamp_ns <= stamp_ns + tolerance:
            self._recent.append(self._next)
            self._next = next(self._pending, None)
        best = min(self._recent, key=lambda image: abs(image.stamp_ns - stamp_ns), default=None)
        return best if best is not None and abs(best.stamp_ns - stamp_ns) <= tolerance else None

    def add_positions(
        self, image: BagImage, people: PublishedPeople, width: int, height: int
    ) -> PublishedPeople:
        """The people with 3D positions from the depth image of ``image``'s time (unchanged and
        counted without one, or when it cannot be used)."""
        depth = self.closest(image.stamp_ns)
        if depth is None:
            self.unmatched += 1
            return people
        message = depth.message
        problem = (
            registration_problem(
                (width, height), (int(message.width), int(message.height)), image.frame_id, depth.frame_id
            )
            or self.problem
            or None
        )
        intrinsics = self.intrinsics
        if problem is None:
            try:
                intrinsics = intrinsics_for(intrinsics, int(message.width), int(message.height))
                metres = depth_to_metres(
                    np.asarray(message.data),
                    str(message.encoding),
                    int(message.height),
                    int(message.width),
                    int(message.step),
                    bool(message.is_bigendian),
                )
            except DepthFormatError as error:
                problem = str(error)
        if problem is not None:
            self.rejected += 1
            self.first_problem = self.first_problem or f"{self.topic}: {problem}"
            return people
        self.matched += 1
        return people.with_positions(
            keypoint_positions(
                people.keypoints, people.valid, (width, height), metres, intrinsics, self.options.depth
            )
        )

    def summary(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "camera_info_topic": self.info_topic,
            "frames_with_depth": self.matched,
            "frames_without_matching_depth": self.unmatched,
            "depth_images_rejected": self.rejected,
            "problem": self.first_problem,
        }


def _sample_indices(total: int, count: int) -> set[int]:
    if total <= 0 or count <= 0:
        return set()
    return {int(round(i)) for i in np.linspace(0, total - 1, min(count, total))}


class _FrameWriter:
    """Builds and writes the messages of one frame (the node's conversion path, no ROS graph)."""

    def __init__(self, writer: BagWriter, options: BagEvalOptions, camera_info):
        from rclpy.serialization import serialize_message

        from litepose_ros.ros.markers import MarkerStyle

        self.writer = writer
        self.options = options
        self.camera_info = camera_info
        self.serialize = serialize_message
        self.style = MarkerStyle(depth=options.marker_depth)
        self.persons_topic = options.output_topic("persons")
        self.markers_topic = options.output_topic("markers")
        self.annotated_topic = options.output_topic("image_annotated/compressed")
        writer.add_topic(self.persons_topic, PERSON_ARRAY_TYPE)
        writer.add_topic(self.markers_topic, MARKER_ARRAY_TYPE)
        if options.annotated:
            writer.add_topic(self.annotated_topic, COMPRESSED_IMAGE_TYPE)

    def header(self, image: BagImage):
        from builtin_interfaces.msg import Time
        from std_msgs.msg import Header

        return Header(stamp=Time(sec=image.stamp_sec, nanosec=image.stamp_nanosec), frame_id=image.frame_id)

    def write(
        self, image: BagImage, pixels: np.ndarray, people: PublishedPeople, annotated: np.ndarray | None
    ) -> int:
        from litepose_ros.ros.conversion import person_array_message
        from litepose_ros.ros.markers import PinholeIntrinsics, person_array_markers

        options = self.options
        height, width = pixels.shape[:2]
        header = self.header(image)
        persons = person_array_message(people, header=header, image_width=width, image_height=height)
        self.writer.write(self.persons_topic, image.log_time_ns, self.serialize(persons))
        intrinsics = None
        if self.camera_info is not None:
            intrinsics = PinholeIntrinsics.from_camera_info(*self.camera_info, width, height)
        intrinsics = intrinsics or PinholeIntrinsics.virtual(width, height)
        markers = person_array_markers(
            persons, intrinsics, self.style, frame_id=image.frame_id or "camera_optical_frame"
        )
        self.writer.write(self.markers_topic, image.log_time_ns, self.serialize(markers))
        if annotated is not None and options.annotated:
            import cv2
            from sensor_msgs.msg import CompressedImage

            encoded = cv2.imencode(".jpg", annotated, [cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality])[1]
            message = CompressedImage(header=header, format="bgr8; jpeg compressed bgr8")
            message.data = encoded.tobytes()
            self.writer.write(self.annotated_topic, image.log_time_ns, self.serialize(message))
        return len(persons.persons)


def published(result, options: BagEvalOptions) -> PublishedPeople:
    """The people of one estimate that the node would publish with these options (selected once
    per frame, for the PersonArray, the markers and the annotated image)."""
    return published_people(
        result.keypoints,
        result.scores,
        result.layout,
        keypoint_threshold=options.keypoint_threshold,
        score_threshold=options.score_threshold,
        max_persons=options.max_persons,
    )


def draw_result(pixels: np.ndarray, people: PublishedPeople, options: BagEvalOptions) -> np.ndarray:
    """An annotated copy of a BGR frame, drawn as the node draws image_annotated."""
    from litepose_ros import drawing

    canvas = np.array(pixels, copy=True)
    drawing.draw_people(
        canvas,
        people.keypoints,
        people.scores,
        people.layout,
        keypoint_threshold=options.keypoint_threshold,
        ids=people.ids,
    )
    return canvas


class FrameTracker:
    """The node's tracking for an offline run: ids for each frame's published people, and what
    the tracking figures need, frame by frame."""

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self.tracker: PoseTracker | None = None
        self.frames: dict[int, FrameIds] = {}  # by frame index
        self.notes: list[str] = []
        self.note_count = 0

    def track(self, index: int, stamp_ns: int, people: PublishedPeople) -> PublishedPeople:
        from litepose_ros.people import keypoint_boxes

        if self.tracker is None or self.tracker.num_keypoints != people.layout.num_keypoints:
            self.tracker = PoseTracker.for_layout(people.layout, self.config)
        boxes = keypoint_boxes(people.keypoints, people.valid)
        tracked = self.tracker.update(stamp_ns * 1e-9, people.keypoints, people.scores, boxes)
        self.note_count += len(tracked.notes)
        self.notes.extend(f"frame {index}: {note}" for note in tracked.notes[: max(0, 20 - len(self.notes))])
        people = people.with_tracking(tracked.ids, tracked.keypoints if self.config.smoothing else None)
        self.frames[index] = FrameIds(
            stamp_ns * 1e-9,
            people.ids,
            keypoint_boxes(people.keypoints, people.valid),
            people.keypoints.astype(np.float64),
        )
        return people


def truth_tracks(dataset: dict, image_id: int, stamp: float) -> FrameIds | None:
    """The ground truth of one image as FrameIds (annotation ``track_id``s, boxes, keypoints), or
    None when an annotation of it has no ``track_id`` (no identities to compare with)."""
    annotations = [a for a in dataset["annotations"] if a["image_id"] == image_id and not a.get("iscrowd")]
    if any("track_id" not in a for a in annotations):
        return None
    boxes, keypoints = [], []
    for annotation in annotations:
        points = np.asarray(annotation.get("keypoints", []), np.float64).reshape(-1, 3)
        keypoints.append(points)
        if annotation.get("bbox"):
            x, y, w, h = (float(v) for v in annotation["bbox"])
            boxes.append((x, y, x + w, y + h))
        else:
            labelled = points[points[:, 2] > 0, :2]
            boxes.append((*labelled.min(0), *labelled.max(0)) if len(labelled) else (0.0, 0.0, 0.0, 0.0))
    count = len(annotations)
    shapes = {k.shape for k in keypoints}
    return FrameIds(
        stamp,
        np.array([int(a["track_id"]) for a in annotations], np.int64),
        np.asarray(boxes, np.float64).reshape(count, 4),
        np.stack(keypoints) if count and len(shapes) == 1 else None,
    )


def tracking_report(
    frame_tracker: FrameTracker,
    frames: list[FrameRecord],
    dataset: dict | None,
    options: BagEvalOptions,
    sigmas: np.ndarray | None,
) -> dict[str, Any]:
    """The report's tracking figures: over every tracked frame, and against ground truth that
    carries track ids (the matched frames only)."""
    ordered = [frame_tracker.frames[f.index] for f in frames if f.index in frame_tracker.frames]
    figures = tracking_figures(ordered).as_dict()
    report: dict[str, Any] = {
        "enabled": True,
        **figures,
        "truth": None,
        "notes": frame_tracker.note_count,
        "first_notes": frame_tracker.notes,
    }
    if dataset is None:
        return report
    processed = [(f.index, f.stamp_ns) for f in frames if f.index in frame_tracker.frames]
    mapping, _ = match_ground_truth(
        dataset, processed, options.match_by, round(options.stamp_tolerance * 1e9)
    )
    pairs = []
    for index, image_id in sorted(mapping.items()):
        result = frame_tracker.frames[index]
        truth = truth_tracks(dataset, image_id, result.stamp)
        if truth is None:
            report["truth"] = "the ground truth has no track_id per annotation: no id switches, IDF1 or MOTA"
            return report
        pairs.append((result, truth))
    if not pairs:
        return report
    if any(t.keypoints is None for _, t in pairs):
        sigmas = None  # some image without keypoints: pair people by box
    against = tracking_figures([r for r, _ in pairs], [t for _, t in pairs], sigmas=sigmas)
    report.update(
        truth=f"{len(pairs)} frames with ground-truth track ids",
        truth_tracks=against.truth_tracks,
        id_switches=against.id_switches,
        idf1=against.idf1,
        mota=against.mota,
    )
    return report


def evaluate_bag(
    bag: str | Path,
    estimator,
    report_dir: str | Path,
    options: BagEvalOptions,
    *,
    progress: bool = True,
    model_description: str = "",
) -> BagEvalResult:
    """Run the estimator over every image of ``options.topic`` and write the bag and the report.

    Raises BagError for a missing bag or topic before anything is written, and for damage found
    part-way after the output bag and report cover the frames read before it.
    """
    from tqdm import tqdm

    from litepose_ros.evaluation import load_annotations

    report_dir = Path(report_dir)
    dataset = load_annotations(options.ground_truth) if options.ground_truth is not None else None
    result = BagEvalResult()
    output_bag = Path(options.output_bag) if options.output_bag is not None else report_dir / "bag"
    samples_dir = report_dir / "samples"
    predictions: dict[int, Any] = {}
    layout_name = ""
    frame_tracker = FrameTracker(options.tracker) if options.tracking else None
    failure: BaseException | None = None
    started = time.perf_counter()
    depth: DepthStream | None = None
    with BagReader(bag) as reader:
        info = reader.require_topic(options.topic, IMAGE_TYPES)
        depth = DepthStream(bag, options) if options.depth_topic else None
        camera_info_topic = _find_camera_info_topic(reader, options)
        camera_info = _first_camera_info(reader, camera_info_topic)
        total = info.count if options.max_frames is None else min(info.count, options.max_frames)
        samples = _sample_indices(total, options.sample_frames)
        report_dir.mkdir(parents=True, exist_ok=True)
        with BagWriter(output_bag, options.storage, overwrite=options.overwrite) as writer:
            frame_writer = _FrameWriter(writer, options, camera_info)
            bar = tqdm(total=max(total, 0) or None, unit="frame", desc="bag-eval", disable=not progress)
            try:
                for image in reader.images(options.topic):
                    if options.max_frames is not None and image.index >= options.max_frames:
                        break
                    record = FrameRecord(image.index, image.stamp_ns, image.log_time_ns, 0, math.nan)
                    result.frames.append(record)
                    bar.update(1)
                    try:
                        pixels = decode_bag_image(image)
                    except ValueError as error:  # ImageFormatError: this frame cannot be used
                        record.error = str(error)
                        continue
                    tick = time.perf_counter()
                    pose = estimator.predict(pixels, color_order="bgr")
                    record.latency_ms = (time.perf_counter() - tick) * 1e3
                    layout_name = _layout_name(pose.layout)
                    people = published(pose, options)
                    if frame_tracker is not None:
                        people = frame_tracker.track(image.index, image.stamp_ns, people)
                        record.track_ids = tuple(people.ids.tolist())
                    if depth is not None:
                        people = depth.add_positions(image, people, pixels.shape[1], pixels.shape[0])
                    annotated = None
                    if options.annotated or image.index in samples:
                        annotated = draw_result(pixels, people, options)
                    record.persons = frame_writer.write(image, pixels, people, annotated)
                    if image.index in samples and annotated is not None:
                        samples_dir.mkdir(parents=True, exist_ok=True)
                        _write_jpeg(samples_dir / f"frame_{image.index:05d}.jpg", annotated)
                    if dataset is not None:
                        predictions[image.index] = pose
            except (BagError, KeyboardInterrupt) as error:
                failure = error
            finally:
                bar.close()
                if depth is not None:
                    depth.close()
        result.files["bag"] = output_bag
    wall = time.perf_counter() - started
    accuracy = (
        _accuracy(dataset, predictions, result.frames, options=options, layout_name=layout_name)
        if dataset is not None
        else None
    )
    tracking = {"enabled": False}
    if frame_tracker is not None:
        sigmas = get_layout(layout_name).sigmas_array() if layout_name else None
        tracking = tracking_report(frame_tracker, result.frames, dataset, options, sigmas)
    result.report = _report(
        bag,
        options,
        result,
        info=info,
        camera_info_topic=camera_info_topic,
        wall=wall,
        accuracy=accuracy,
        model_description=model_description,
        failure=failure,
    )
    result.report["tracking"] = tracking
    result.report["depth"] = depth.summary() if depth is not None else None
    result.files.update(write_report(report_dir, result.report, result.frames))
    if isinstance(failure, KeyboardInterrupt):
        raise failure
    if failure is not None:
        raise BagError(
            f"{failure}; the {len(result.frames)} frames read before it are evaluated in "
            f"{output_bag} and {report_dir / 'report.md'}"
        ) from failure
    return result


def _layout_name(layout) -> str:
    return layout if isinstance(layout, str) else getattr(layout, "name", str(layout))


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90]):
        raise OSError(f"cannot write {path}")


def _accuracy(
    dataset: dict,
    predictions: dict[int, Any],
    frames: list[FrameRecord],
    *,
    options: BagEvalOptions,
    layout_name: str,
) -> dict[str, Any]:
    return keypoint_accuracy(
        dataset,
        [(f.index, f.stamp_ns) for f in frames if f.index in predictions],  # frames that failed do not count
        predictions,
        ground_truth=options.ground_truth,
        match_by=options.match_by,
        stamp_tolerance=options.stamp_tolerance,
        model_layout=layout_name,
    )


def _report(
    bag,
    options: BagEvalOptions,
    result: BagEvalResult,
    *,
    info,
    camera_info_topic,
    wall: float,
    accuracy,
    model_description: str,
    failure,
) -> dict[str, Any]:
    frames = result.frames
    done = [f for f in frames if not f.error]
    latencies = [f.latency_ms for f in done]
    stamps = [f.stamp_ns for f in frames]
    duration = (max(stamps) - min(stamps)) / 1e9 if len(stamps) > 1 else 0.0
    bag_rate = (len(stamps) - 1) / duration if duration > 0 else None
    throughput = len(done) / (sum(latencies) / 1e3) if latencies and sum(latencies) > 0 else None
    options_dict = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()}
    options_dict["tracker"] = asdict(options.tracker or TrackerConfig())
    return {
        "bag": str(bag),
        "topic": options.topic,
        "message_type": info.msgtype,
        "model": model_description,
        "options": options_dict,
        "camera_info_topic": camera_info_topic,
        "frames": {
            "in_bag": info.count,
            "read": len(frames),
            "processed": len(done),
            "failed": len(frames) - len(done),
            "failures": [{"index": f.index, "error": f.error} for f in frames if f.error][:20],
        },
        "persons_per_frame": persons_summary([f.persons for f in done]),
        "latency_ms": distribution(latencies),
        "throughput_fps": round(throughput, 3) if throughput else None,
        "bag_duration_s": round(duration, 4),
        "bag_frame_rate_hz": round(bag_rate, 3) if bag_rate else None,
        "realtime_factor": round(throughput / bag_rate, 3) if throughput and bag_rate else None,
        "wall_seconds": round(wall, 3),
        "output_bag": str(result.files.get("bag", "")),
        "output_topics": [options.output_topic("persons"), options.output_topic("markers")]
        + ([options.output_topic("image_annotated/compressed")] if options.annotated else []),
        "accuracy": accuracy,
        "error": None if failure is None else (str(failure) or type(failure).__name__),
    }
