"""The LitePose ROS 2 node: camera images in, skeletons (PersonArray), RViz markers and an
annotated image out.

A lifecycle node (``configure`` loads the model, ``activate`` subscribes and starts the worker,
``deactivate`` stops them, ``cleanup`` frees the model); with ``auto_activate`` (default) it
configures and activates itself at start-up.

Never lags the camera: the image callback only puts the message into a one-frame slot; a single
worker thread takes the newest frame, converts it, runs the estimator and publishes; a frame
still waiting when a newer one arrives is dropped and counted (``litepose_ros.ros.worker``).
Per frame (``_process``): decode the message, estimate, select the people once, track them
(``litepose_ros.tracking.PoseTracker``, one per node, on the image stamps; ``tracking.*``
parameters), publish the outputs, record the timings (``litepose_ros.ros.statistics``);
``/diagnostics`` is built by ``litepose_ros.ros.diagnostics``.

Topics (relative names: namespaces and remapping apply):

- in: ``image`` (sensor_msgs/Image) or, with ``input_transport:=compressed``, ``<image>/compressed``
  (sensor_msgs/CompressedImage, where ``<image>`` is the resolved ``image`` topic, as
  image_transport names it); ``camera_info`` (sensor_msgs/CameraInfo, optional); with
  ``depth.enabled``, ``depth/image`` (sensor_msgs/Image 16UC1 or 32FC1, registered to the colour
  camera) and ``depth/camera_info``: the depth image closest in stamp (``depth.max_time_difference``)
  gives the published keypoints 3D positions (``litepose_ros.depth``);
- out: ``persons`` (litepose_ros/PersonArray, one per processed image, header of the image),
  ``markers`` (visualization_msgs/MarkerArray), ``image_annotated`` (sensor_msgs/Image, bgr8; drawn
  only while someone subscribes), ``/diagnostics`` (diagnostic_msgs/DiagnosticArray).

Run: ``litepose_node --ros-args -p model_path:=model.onnx -r image:=/camera/image_raw``.
"""

from __future__ import annotations

import gc
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from litepose_ros.depth import (
    DepthFormatError,
    DepthIntrinsics,
    DepthSettings,
    depth_to_metres,
    intrinsics_for,
    keypoint_positions,
    registration_problem,
)
from litepose_ros.image_encodings import ImageFormatError, compressed_image_to_array, raw_image_to_array
from litepose_ros.msg import PersonArray
from litepose_ros.people import PublishedPeople, keypoint_boxes, published_people
from litepose_ros.preprocess import ImageSizeError
from litepose_ros.ros.conversion import cdr_matches_rclpy, person_array_cdr_bytes, person_array_message
from litepose_ros.ros.depth_pairing import StampedBuffer, StampWatch
from litepose_ros.ros.diagnostics import NodeState, RateWindow, diagnostic_status
from litepose_ros.ros.image_messages import RawImage, header_stamp_ns, parse_compressed_image, parse_image
from litepose_ros.ros.markers import MarkerArrayBuilder, MarkerStyle, PinholeIntrinsics, camera_info_problem
from litepose_ros.ros.parameters import (
    declare_parameters,
    depth_settings,
    estimator_settings,
    make_validation_callback,
    tracker_config,
)
from litepose_ros.ros.statistics import FrameTimes, NodeStatistics, SourceWindow, frame_age
from litepose_ros.ros.worker import Frame, LatestFrameWorker
from litepose_ros.tracking import PoseTracker, TrackerConfig

try:  # rclpy >= Galactic; the fallback keeps older installs importable.
    from rclpy.executors import ExternalShutdownException
except ImportError:  # pragma: no cover

    class ExternalShutdownException(Exception):  # noqa: N818 - mirrors rclpy's name
        """Placeholder: this rclpy has no ExternalShutdownException."""


NODE_NAME = "litepose"
# Repeated input errors and tracker notes are logged at most once per this many seconds (per
# distinct message).
ERROR_LOG_PERIOD = 5.0
# With the bundled demonstration model, after this many processed images in a row without anyone
# since the node started, it says once what the model is and how to get one for this camera: the
# first run on a user's own camera would otherwise show nothing, without a word why.
BUNDLED_MODEL_HINT_AFTER = 100


@dataclass(frozen=True)
class RuntimeSettings:
    """The parameters that can change while the node runs (replaced as a whole, never mutated)."""

    score_threshold: float
    keypoint_threshold: float
    max_persons: int
    max_image_pixels: int
    max_frame_age: float
    markers_enabled: bool
    marker_style: MarkerStyle
    fallback_frame_id: str
    annotated_enabled: bool
    draw_scores: bool
    line_thickness: int
    tracking_enabled: bool
    tracker_config: TrackerConfig
    depth_max_time_difference: float
    depth_settings: DepthSettings

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> RuntimeSettings:
        style = MarkerStyle(
            depth=values["markers.depth"],
            joint_diameter=values["markers.joint_diameter"],
            line_width=values["markers.line_width"],
            show_labels=values["markers.labels"],
            label_height=values["markers.label_height"],
            lifetime=values["markers.lifetime"],
        )
        return cls(
            score_threshold=values["score_threshold"],
            keypoint_threshold=values["keypoint_threshold"],
            max_persons=values["max_persons"],
            max_image_pixels=values["max_image_pixels"],
            max_frame_age=values["max_frame_age"],
            markers_enabled=values["markers.enabled"],
            marker_style=style,
            fallback_frame_id=values["markers.fallback_frame_id"],
            annotated_enabled=values["annotated.enabled"],
            draw_scores=values["annotated.draw_scores"],
            line_thickness=values["annotated.line_thickness"],
            tracking_enabled=values["tracking.enabled"],
            tracker_config=tracker_config(values),
            depth_max_time_difference=values["depth.max_time_difference"],
            depth_settings=depth_settings(values),
        )


class LitePoseNode(LifecycleNode):
    """Lifecycle node running the LitePose estimator on the newest camera image."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        self._stats = NodeStatistics()
        self._sources = SourceWindow()  # frame_ids seen on the image topic (several cameras: reported)
        self._error_log_times: dict[str, float] = {}
        self._estimator = None
        self._estimator_description = ""
        self._model_path: Path | None = None
        self._model_error = ""
        # Images in a row without anyone, counted while the bundled model runs and nobody was found yet.
        self._images_without_people: int | None = None
        self._camera_intrinsics: tuple | None = None  # (k, width, height) of the last camera_info
        # Depth (depth.enabled): the last few depth images (filled by their callback, read by the
        # worker) and the intrinsics of the last valid depth camera_info.
        self._depth_images: StampedBuffer[RawImage] = StampedBuffer()
        self._depth_intrinsics: DepthIntrinsics | None = None
        self._depth_intrinsics_problem = ""  # why the last depth camera_info could not be used
        self._marker_builder = MarkerArrayBuilder()  # used by the worker thread only
        self._serialize_directly = False
        # One tracker for the node's life (replaced only for another keypoint layout, ids going
        # on); used by the worker thread only, reset while the worker is stopped.
        self._tracker: PoseTracker | None = None
        self._tracker_reset_pending = False

        # Latest-frame slot, filled by the subscription callbacks, emptied by the worker thread.
        self._worker = LatestFrameWorker(self._process, self._on_processing_error)

        self._persons_publisher = None
        self._markers_publisher = None
        self._annotated_publisher = None
        self._image_subscription = None
        self._camera_info_subscription = None
        self._depth_subscription = None
        self._depth_info_subscription = None
        self._image_topic = ""
        # Topic names kept as text: the worker may still be on a frame while deactivate destroys
        # the subscriptions.
        self._depth_topic = ""
        self._depth_info_topic = ""

        # Validate before declaring, so bad start-up values fail with a clear reason too.
        self.add_on_set_parameters_callback(
            make_validation_callback(self._on_parameters_accepted, lambda: getattr(self, "_values", None))
        )
        self._values = declare_parameters(self)
        self._settings = RuntimeSettings.from_values(self._values)

        self._diagnostics_publisher = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._rate_window = RateWindow()
        self._diagnostics_timer = self.create_timer(
            1.0 / self._values["diagnostics_rate"], self._publish_diagnostics
        )
        self._startup_timer = None
        if self._values["auto_activate"]:
            self._startup_timer = self.create_timer(0.0, self._auto_activate)

    # --- parameters -------------------------------------------------------------------------------

    def _on_parameters_accepted(self, changes: dict[str, Any]) -> None:
        if not hasattr(self, "_settings"):
            return  # still declaring: the values are read once declaration is complete
        values = dict(self._values)
        values.update(changes)
        self._values = values
        if changes.get("tracking.enabled") is False and self._settings.tracking_enabled:
            self._tracker_reset_pending = True  # the worker forgets the tracks (ids go on)
        self._settings = RuntimeSettings.from_values(values)

    @property
    def settings(self) -> RuntimeSettings:
        """The current run-time settings."""
        return self._settings

    # --- lifecycle --------------------------------------------------------------------------------

    def _auto_activate(self) -> None:
        self._startup_timer.cancel()
        self.destroy_timer(self._startup_timer)
        self._startup_timer = None
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._estimator = self._load_estimator()
        except Exception as error:  # any load problem: report it, stay unconfigured, keep running
            self._model_error = str(error)
            self.get_logger().error(f"cannot configure: {error}")
            return TransitionCallbackReturn.FAILURE
        self._model_error = ""
        layout = self._estimator.layout
        if self._tracker is None or self._tracker.num_keypoints != layout.num_keypoints:
            first_id = 1 if self._tracker is None else self._tracker.next_id
            self._tracker = PoseTracker.for_layout(layout, self._settings.tracker_config, first_id=first_id)
        self._tracker.reset()
        # PersonArray bytes written directly (20x cheaper than message objects), if they are exactly
        # what rclpy would serialize; otherwise message objects.
        self._serialize_directly = cdr_matches_rclpy(self._estimator.layout)
        if not self._serialize_directly:
            self.get_logger().warning(
                "direct PersonArray serialisation does not match this ROS "
                "installation; publishing message objects (slower)"
            )
        self._persons_publisher = self.create_lifecycle_publisher(PersonArray, "persons", 10)
        self._markers_publisher = self.create_lifecycle_publisher(MarkerArray, "markers", 10)
        self._annotated_publisher = self.create_lifecycle_publisher(Image, "image_annotated", 1)
        # Startup objects (rclpy, numpy, the model) never become garbage: keep the cyclic garbage
        # collector from rescanning them in full collections, which would stall the worker.
        gc.freeze()
        self.get_logger().info(f"configured: {self._estimator_description}")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # activates the lifecycle publishers
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        self._subscribe()
        self._worker.start()
        self.get_logger().info(f"active: listening on {self._image_topic}")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        if self._tracker is not None:  # the worker has stopped: tracks would be stale on activate
            self._tracker.reset()
        self.get_logger().info("inactive: stopped processing")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info("unconfigured: model released")
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self._release()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        for publisher in (self._persons_publisher, self._markers_publisher, self._annotated_publisher):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self._persons_publisher = self._markers_publisher = self._annotated_publisher = None
        self._estimator = None
        self._estimator_description = ""
        self._model_path = None

    def _load_estimator(self):
        """Load the model the parameters name; raises with a message naming the file and the problem."""
        estimator, path = load_estimator(self._values)
        describe = getattr(estimator, "describe", None)
        self._estimator_description = describe() if callable(describe) else f"model {path}"
        self._model_path = path
        self._images_without_people = 0 if is_bundled_model(path) else None
        return estimator

    # --- input --------------------------------------------------------------------------------------

    def _input_qos(self) -> QoSProfile:
        reliability = (
            ReliabilityPolicy.RELIABLE
            if self._values["qos_reliability"] == "reliable"
            else ReliabilityPolicy.BEST_EFFORT
        )
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=self._values["qos_depth"],
            reliability=reliability,
            durability=DurabilityPolicy.VOLATILE,
        )

    def _subscribe(self) -> None:
        qos = self._input_qos()
        if self._values["input_transport"] == "compressed":
            # image_transport's naming: the compressed stream of <image> is <image>/compressed.
            base = self.resolve_topic_name("image") if hasattr(self, "resolve_topic_name") else "image"
            self._image_subscription = self.create_subscription(
                CompressedImage, f"{base}/compressed", self._on_compressed_image, qos, raw=True
            )
        else:
            # raw=True: the serialized bytes, read by the worker without building a Python message
            # (a 1.3 MB image would otherwise be copied once more in the executor thread).
            self._image_subscription = self.create_subscription(Image, "image", self._on_image, qos, raw=True)
        self._image_topic = self._image_subscription.topic_name
        if self._values["use_camera_info"]:
            self._camera_info_subscription = self.create_subscription(
                CameraInfo, "camera_info", self._on_camera_info, qos
            )
        if self._values["depth.enabled"]:
            self._depth_subscription = self.create_subscription(
                Image, "depth/image", self._on_depth_image, qos, raw=True
            )
            self._depth_topic = self._depth_subscription.topic_name
            self._depth_info_subscription = self.create_subscription(
                CameraInfo, "depth/camera_info", self._on_depth_camera_info, qos
            )
            self._depth_info_topic = self._depth_info_subscription.topic_name

    def _unsubscribe(self) -> None:
        for subscription in (
            self._image_subscription,
            self._camera_info_subscription,
            self._depth_subscription,
            self._depth_info_subscription,
        ):
            if subscription is not None:
                self.destroy_subscription(subscription)
        self._image_subscription = self._camera_info_subscription = None
        self._depth_subscription = self._depth_info_subscription = None
        self._depth_images.clear()

    def _on_image(self, message: bytes) -> None:
        self._worker.offer(Frame(message, False, time.monotonic(), self._watch_depth(message)))

    def _on_compressed_image(self, message: bytes) -> None:
        self._worker.offer(Frame(message, True, time.monotonic(), self._watch_depth(message)))

    def _watch_depth(self, message: bytes):
        """With depth on, a watch of the image's stamp in the depth buffer (see depth_pairing)."""
        if self._depth_subscription is None:
            return None
        stamp_ns = header_stamp_ns(message)
        return None if stamp_ns is None else self._depth_images.watch(stamp_ns)

    def _on_camera_info(self, message: CameraInfo) -> None:
        problem = camera_info_problem(message.k, message.width, message.height)
        if problem is None:
            self._camera_intrinsics = (tuple(message.k), message.width, message.height)
            return
        self._camera_intrinsics = None  # markers use the documented fallback scaling
        self._stats.record_camera_info_problem(problem)
        self._log_throttled(
            f"camera_info on {self._camera_info_subscription.topic_name} has a broken K "
            f"({problem}); markers use the fallback scaling until a valid one comes",
            level="warning",
        )

    def _on_depth_image(self, message: bytes) -> None:
        try:
            image = parse_image(message)
        except ImageFormatError as error:
            self._stats.record_depth_rejected(f"{self._depth_topic}: {error}")
            self._log_throttled(f"cannot use depth image from {self._depth_topic}: {error}")
            return
        stamp = image.header.stamp
        self._depth_images.add(stamp.sec * 1_000_000_000 + stamp.nanosec, image)

    def _on_depth_camera_info(self, message: CameraInfo) -> None:
        try:
            self._depth_intrinsics = DepthIntrinsics.from_camera_info(
                message.k, message.width, message.height
            )
            self._depth_intrinsics_problem = ""
        except ValueError as error:
            # Counted per image that then goes out in 2D (``_add_positions``), not per camera_info.
            self._depth_intrinsics = None
            self._depth_intrinsics_problem = f"{self._depth_info_topic}: {error}"
            self._log_throttled(
                f"cannot use {self._depth_info_topic}: {error}; keypoints are published without 3D "
                "positions until a calibrated one comes"
            )

    # --- worker -------------------------------------------------------------------------------------

    def _stop_processing(self) -> None:
        self._unsubscribe()
        self._worker.stop()

    def _on_processing_error(self, error: Exception) -> None:
        if not self.context.ok():
            # The context was shut down while this frame was being published: the shutdown is
            # under way (the worker stops next), not a processing failure.
            return
        self._stats.record_failure(f"processing failed: {error!r}")
        self._log_input_error(f"processing an image from {self._image_topic} failed: {error!r}")

    def _decode(self, frame: Frame, settings: RuntimeSettings) -> tuple[np.ndarray, str, Header]:
        """(pixels, their colour order, the image header) from the serialized message."""
        if frame.compressed:
            message = parse_compressed_image(frame.message)
            warnings: list[str] = []
            pixels, order = compressed_image_to_array(
                message.data,
                message.format,
                color_order=None,
                max_pixels=settings.max_image_pixels,
                warnings=warnings,
            )
            if warnings:  # decoded, but libjpeg found damage: say so once in a while and count it
                self._stats.record_jpeg_warning()
                self._log_throttled(
                    f"JPEG from {self._image_topic} decoded despite corrupt data "
                    f"({'; '.join(warnings)[:200]}); check the camera link",
                    level="warning",
                )
            return pixels, order, message.header
        message = parse_image(frame.message)
        pixels, order = raw_image_to_array(
            message.data,
            message.encoding,
            message.height,
            message.width,
            message.step,
            is_bigendian=message.is_bigendian,
            color_order=None,
            max_pixels=settings.max_image_pixels,
        )
        return pixels, order, message.header

    def _process(self, frame: Frame) -> None:
        """One frame: decode, estimate, select the people once, publish the outputs, record timings."""
        times = FrameTimes(arrival=frame.arrival, started=time.monotonic())
        settings, estimator = self._settings, self._estimator
        try:
            pixels, color_order, header = self._decode(frame, settings)
        except ImageFormatError as error:
            self._stats.record_bad_image(f"{self._image_topic}: {error}")
            self._log_input_error(f"cannot use image from {self._image_topic}: {error}")
            return
        times.converted = time.monotonic()
        self._sources.observe(header.frame_id, times.converted)
        if self._too_old(header, settings):  # already stale: not worth estimating
            return
        try:
            result = estimator.predict(pixels, color_order=color_order)
        except ImageSizeError as error:  # refused before any resize: too thin for the network
            self._stats.record_bad_image(f"{self._image_topic}: {error}")
            self._log_input_error(f"cannot use image from {self._image_topic}: {error}")
            return
        times.estimated = time.monotonic()
        people = published_people(
            result.keypoints,
            result.scores,
            result.layout,
            keypoint_threshold=settings.keypoint_threshold,
            score_threshold=settings.score_threshold,
            max_persons=settings.max_persons,
        )
        if self._images_without_people is not None:
            self._note_people_found(len(people))
        times.stamp_ns = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
        tracks = None
        if settings.tracking_enabled:
            people = self._track(people, times.stamp_ns * 1e-9, settings)
            tracks = self._tracker.counts()
        elif self._tracker_reset_pending:
            self._tracker_reset_pending = False
            self._tracker.reset()
        height, width = pixels.shape[:2]
        if self._depth_subscription is not None:
            people = self._add_positions(
                people, header, width, height, settings, depth_watch=frame.depth_watch
            )
        if self._too_old(header, settings):
            return
        self._publish_persons(people, header, width, height)
        times.published_ns = self.get_clock().now().nanoseconds
        times.persons_published = time.monotonic()
        if settings.markers_enabled and self._markers_publisher.get_subscription_count() > 0:
            self._publish_markers(people, header, width, height, settings)
        if settings.annotated_enabled and self._annotated_publisher.get_subscription_count() > 0:
            self._publish_annotated(pixels, color_order, people, header, settings)
        times.finished = time.monotonic()
        self._stats.record_frame(times, len(people), tracks)

    def _note_people_found(self, count: int) -> None:
        """Count images without anyone while the bundled model has found nobody yet; say once, at
        BUNDLED_MODEL_HINT_AFTER, what the model is and what to do."""
        if count:  # it finds people here: nothing to say
            self._images_without_people = None
            return
        self._images_without_people += 1
        if self._images_without_people < BUNDLED_MODEL_HINT_AFTER:
            return
        self._images_without_people = None
        self.get_logger().warning(
            f"the bundled model has found no one in the first {BUNDLED_MODEL_HINT_AFTER} images from "
            f"{self._image_topic}. If people are in view: it is a demonstration model, trained on one "
            "street camera, and finds no one in most other scenes (litepose_ros/weights/README.md). "
            "Label a recording of your camera and fine-tune it (README, 'Your own camera: label, "
            "fine-tune, run'), then set model_path to your model."
        )

    def _track(self, people: PublishedPeople, stamp: float, settings: RuntimeSettings) -> PublishedPeople:
        """The people with their track ids (and smoothed keypoints when smoothing is on); the
        tracker's notes about bad input become (rate-limited) warnings."""
        tracker = self._tracker
        if self._tracker_reset_pending:
            self._tracker_reset_pending = False
            tracker.reset()
        if tracker.config != settings.tracker_config:
            tracker.configure(settings.tracker_config)
        tracked = tracker.update(
            stamp, people.keypoints, people.scores, keypoint_boxes(people.keypoints, people.valid)
        )
        for note in tracked.notes:
            self._log_throttled(f"tracking {self._image_topic}: {note}", level="warning")
        smoothed = tracked.keypoints if settings.tracker_config.smoothing else None
        return people.with_tracking(tracked.ids, smoothed)

    def _add_positions(
        self,
        people: PublishedPeople,
        header: Header,
        width: int,
        height: int,
        settings: RuntimeSettings,
        *,
        depth_watch: StampWatch | None,
    ) -> PublishedPeople:
        """The people with 3D keypoint positions from the depth image matching the image's stamp;
        unchanged (2D, counted, and said why when the depth input is wrong) without a usable one."""
        started = time.monotonic()
        tolerance = settings.depth_max_time_difference
        if depth_watch is not None:  # the nearest depth image since the frame arrived, kept for it
            depth, difference = self._depth_images.matched(depth_watch, tolerance)
        else:  # a frame that came before depth was switched on
            stamp_ns = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
            depth, difference = self._depth_images.closest(stamp_ns, tolerance)
        if depth is None:
            self._stats.record_depth_unmatched()
            if difference is not None:  # depth images come, but not at this image's time
                self._log_throttled(
                    f"no depth image on {self._depth_topic} within depth.max_time_difference "
                    f"{settings.depth_max_time_difference:g} s of the image from {self._image_topic} "
                    f"(closest {difference:.3f} s): published without 3D positions. Are the two streams "
                    "from one camera, with synchronised stamps?",
                    level="warning",
                )
            else:
                self._log_throttled(
                    f"depth.enabled, but no depth image has come on {self._depth_topic}: published without "
                    "3D positions. Remap depth/image to the camera's registered depth topic (launch "
                    "argument depth_topic) and check that the driver publishes it.",
                    level="warning",
                )
            return people
        problem = registration_problem(
            (width, height), (depth.width, depth.height), header.frame_id, depth.header.frame_id
        )
        intrinsics = self._depth_intrinsics
        if problem is None and intrinsics is None:
            problem = self._depth_intrinsics_problem or (
                f"no camera_info on {self._depth_info_topic} yet (needed to place keypoints in metres)"
            )
        if problem is None:
            try:
                intrinsics = intrinsics_for(intrinsics, depth.width, depth.height)
                metres = depth_to_metres(
                    depth.data, depth.encoding, depth.height, depth.width, depth.step, depth.is_bigendian
                )
            except DepthFormatError as error:
                problem = str(error)
        if problem is not None:
            self._stats.record_depth_rejected(f"{self._depth_topic}: {problem}")
            self._log_throttled(
                f"cannot use depth image from {self._depth_topic}: {problem}; "
                "keypoints are published without 3D positions"
            )
            return people
        positions = keypoint_positions(
            people.keypoints, people.valid, (width, height), metres, intrinsics, settings.depth_settings
        )
        self._stats.record_depth(time.monotonic() - started)
        return people.with_positions(positions)

    def _too_old(self, header: Header, settings: RuntimeSettings) -> bool:
        """True (counted, warned about) when the image is older than max_frame_age (0: off)."""
        if settings.max_frame_age <= 0:
            return False
        stamp_ns = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
        age = frame_age(self.get_clock().now().nanoseconds, stamp_ns)
        if age is None or age <= settings.max_frame_age:
            return False
        self._stats.record_stale()
        self._log_throttled(
            f"dropped the result for an image from {self._image_topic} older than "
            f"max_frame_age {settings.max_frame_age:g} s (the node or its input stalled, "
            "or the stamps use another clock: use_sim_time for bags played with --clock)",
            level="warning",
        )
        return True

    def _publish_persons(self, people: PublishedPeople, header, width: int, height: int) -> None:
        if self._serialize_directly:
            message, _ = person_array_cdr_bytes(people, header=header, image_width=width, image_height=height)
        else:
            message = person_array_message(people, header=header, image_width=width, image_height=height)
        self._persons_publisher.publish(message)

    def _intrinsics(self, width: int, height: int) -> PinholeIntrinsics:
        info = self._camera_intrinsics
        if info is not None:
            intrinsics = PinholeIntrinsics.from_camera_info(info[0], info[1], info[2], width, height)
            if intrinsics is not None:
                return intrinsics
        return PinholeIntrinsics.virtual(width, height)

    def _publish_markers(
        self, people: PublishedPeople, header, width: int, height: int, settings: RuntimeSettings
    ) -> None:
        if not header.frame_id:
            header = type(header)(stamp=header.stamp, frame_id=settings.fallback_frame_id)
        markers = self._marker_builder.build(
            people.keypoints,
            people.scores,
            people.valid,
            edges=people.layout.edges,
            header=header,
            intrinsics=self._intrinsics(width, height),
            style=settings.marker_style,
            ids=people.ids,
            positions=people.positions,
        )
        self._markers_publisher.publish(markers)

    def _publish_annotated(
        self, pixels: np.ndarray, color_order: str, people: PublishedPeople, header, settings: RuntimeSettings
    ) -> None:
        from litepose_ros import drawing

        canvas = np.array(pixels[:, :, ::-1] if color_order == "rgb" else pixels, copy=True)
        drawing.draw_people(
            canvas,
            people.keypoints,
            people.scores,
            people.layout,
            keypoint_threshold=settings.keypoint_threshold,
            draw_scores=settings.draw_scores,
            thickness=settings.line_thickness,
            ids=people.ids,
        )
        image = Image(
            header=header,
            height=canvas.shape[0],
            width=canvas.shape[1],
            encoding="bgr8",
            is_bigendian=0,
            step=canvas.shape[1] * 3,
        )
        image.data = canvas.tobytes()
        self._annotated_publisher.publish(image)

    # --- reporting ---------------------------------------------------------------------------------

    def _log_input_error(self, text: str) -> None:
        """Log an error, at most once per ERROR_LOG_PERIOD for the same text (camera streams repeat)."""
        self._log_throttled(text)

    def _log_throttled(self, text: str, level: str = "error") -> None:
        """Log at ``level``, at most once per ERROR_LOG_PERIOD for the same text."""
        now = time.monotonic()
        last = self._error_log_times.get(text)
        if last is None or now - last >= ERROR_LOG_PERIOD:
            self._error_log_times[text] = now
            if len(self._error_log_times) > 256:  # bounded: keep only recent texts
                self._error_log_times = {
                    k: v for k, v in self._error_log_times.items() if now - v < ERROR_LOG_PERIOD
                }
            if level == "warning":  # one call site per severity (rclpy insists)
                self.get_logger().warning(text)
            else:
                self.get_logger().error(text)

    def statistics(self) -> dict[str, Any]:
        """A snapshot of the counters and latency medians (what /diagnostics reports)."""
        with self._worker.lock:  # the slot's counters and the rest: one consistent set
            return self._stats.snapshot(self._worker.received, self._worker.dropped)

    def _lifecycle_label(self) -> str:
        try:
            return self._state_machine.current_state[1]
        except AttributeError:  # pragma: no cover - older rclpy
            return "unknown"

    def _publish_diagnostics(self) -> None:
        snapshot = self.statistics()
        rates = self._rate_window.rates(snapshot)
        state = NodeState(
            name=f"{self.get_name()}: pose estimation",
            hardware_id=self.get_fully_qualified_name(),
            lifecycle=self._lifecycle_label(),
            model_error=self._model_error,
            model=str(self._model_path) if self._estimator is not None else "",
            engine=self._estimator_description,
            input_topic=self._image_topic,
            image_publishers=(
                self.count_publishers(self._image_topic) if self._image_subscription is not None else 0
            ),
            image_sources=tuple(self._sources.recent(time.monotonic())),
        )
        if state.several_sources():
            self._log_throttled(state.several_sources(), level="warning")
        array = DiagnosticArray(status=[diagnostic_status(state, snapshot, rates)])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_publisher.publish(array)

    def destroy_node(self) -> None:
        self._stop_processing()
        super().destroy_node()


def is_bundled_model(path: Path) -> bool:
    """Whether ``path`` is the bundled default model (the demonstration model)."""
    from litepose_ros.weights import default_model_path

    try:
        return Path(path).resolve() == default_model_path().resolve()
    except FileNotFoundError:  # no bundled model in this install
        return False


def load_estimator(values: dict[str, Any]):
    """(Estimator, model path) as the node configures it from its parameter values.

    Raises FileNotFoundError / RuntimeError with a message that names the model file and the problem.
    """
    from litepose_ros.estimator import Estimator, resolve_model_path

    path = resolve_model_path(values["model_path"], source="parameter model_path")
    try:
        estimator = Estimator.from_model(path, **estimator_settings(values))
    except Exception as error:
        text = str(error)
        raise RuntimeError(text if str(path) in text else f"model file {path}: {text}") from error
    return estimator, path


# How often the spin looks for a noted Ctrl-C / SIGTERM: the longest a stop waits (idle wake-ups
# at this rate cost nothing measurable).
STOP_CHECK_PERIOD_S = 0.1


def spin_until_stopped(executor: SingleThreadedExecutor, received: list[int]) -> None:
    """Spin until a stop signal is noted in ``received`` or the context is shut down, then return.

    The callback running when the signal comes (loading the model, a lifecycle transition) ends
    normally first: the context stays valid until ``main`` shuts it down after the node is gone.
    """
    from rclpy.impl.implementation_singleton import rclpy_implementation

    try:
        while not received and executor.context.ok():
            executor.spin_once(timeout_sec=STOP_CHECK_PERIOD_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except rclpy_implementation.RCLError:  # another owner shut the context down mid-wait
        if executor.context.ok():
            raise


def main(args: list[str] | None = None, *, stop_signals: list[int] | None = None) -> int:
    """Console entry point ``litepose_node`` (accepts ``--ros-args``); 0 after Ctrl-C / SIGTERM,
    whenever they come, 2 for an invalid parameter.

    ``stop_signals``: where the caller's handlers have noted signals so far
    (``litepose_ros.cli.node_entry`` installs them before this module's imports).
    """
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
    from rclpy.signals import SignalHandlerOptions

    from litepose_ros.stop_signals import note_stop_signals

    received = [] if stop_signals is None else stop_signals
    note_stop_signals(received.append)  # and rclpy's handlers off (litepose_ros.stop_signals)

    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        if received:  # stopped during the imports: nothing to start
            return 0
        try:
            node = LitePoseNode()
        except (InvalidParameterValueException, InvalidParameterTypeException, ValueError) as error:
            if received:
                return 0
            print(f"litepose_node: invalid parameter: {error}", file=sys.stderr)
            return 2
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            spin_until_stopped(executor, received)
        finally:
            executor.shutdown()
            node.destroy_node()
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
