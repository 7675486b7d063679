"""``litepose bag-eval BAG --topic TOPIC``: run the estimator over every image of a rosbag2.

Writes an output bag (PersonArray + MarkerArray per frame, with the source stamps; optionally
annotated frames) and a report folder (report.md / report.json, frames.csv, plots, sample
frames). With ``--ground-truth`` (COCO keypoint JSON), OKS AP/AR too. People are tracked as the
node tracks them (``--no-tracking`` turns it off): ids in the output bag and tracking figures in
the report (id switches, IDF1 and MOTA too when the ground truth has a ``track_id`` per
annotation). No ROS graph needed.
"""

from __future__ import annotations

import argparse
from decimal import Decimal
from pathlib import Path

from litepose_ros.engine import ENGINE_NAMES
from litepose_ros.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from litepose_ros.bags.report import MATCH_MODES

    parser.add_argument("bag", type=Path, help="rosbag2 directory, or a .mcap / .db3 file")
    parser.add_argument(
        "--topic",
        help="image topic (sensor_msgs/Image or CompressedImage); default: the bag's only image topic",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("bag_eval_output"),
        help="report folder (default: bag_eval_output)",
    )
    parser.add_argument("--output-bag", type=Path, help="result bag directory (default: <output>/bag)")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="result bag storage")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing result bag")
    parser.add_argument(
        "--model",
        type=Path,
        help="model file (.onnx, or a checkpoint with --engine torch); default: the bundled model",
    )
    parser.add_argument("--engine", choices=ENGINE_NAMES, default="onnxruntime")
    parser.add_argument("--threads", type=int, default=0, help="inference threads (0: engine default)")
    parser.add_argument(
        "--flip-test",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run the mirrored image (default: the node's flip_test, so the figures are the node's)",
    )
    parser.add_argument("--keypoint-threshold", type=float, default=None, help="default: the node's")
    parser.add_argument("--score-threshold", type=float, default=None, help="default: the node's")
    parser.add_argument("--max-persons", type=int, default=None, help="default: the node's")
    parser.add_argument("--topic-prefix", default="", help="output topics are PREFIX/persons, PREFIX/markers")
    parser.add_argument(
        "--annotated",
        action="store_true",
        help="also write annotated frames (JPEG) on PREFIX/image_annotated/compressed",
    )
    parser.add_argument(
        "--camera-info-topic",
        default="auto",
        help="CameraInfo for metric markers ('auto': the image's sibling camera_info; '': none)",
    )
    parser.add_argument(
        "--depth-topic",
        help="depth image registered to the colour camera (16UC1 mm or "
        "32FC1 m): keypoints get 3D positions as the node gives them (default: none)",
    )
    parser.add_argument(
        "--depth-info-topic",
        default="auto",
        help="CameraInfo of the depth image (default: the depth topic's sibling camera_info)",
    )
    parser.add_argument(
        "--depth-max-time-difference",
        type=float,
        default=None,
        metavar="SECONDS",
        help="pair depth and colour images whose stamps differ by at most this (default: "
        "the node's depth.max_time_difference)",
    )
    parser.add_argument(
        "--ground-truth",
        type=Path,
        help="COCO keypoint JSON for OKS AP/AR (with --live: of what the node published, dropped "
        "frames included)",
    )
    parser.add_argument(
        "--match-by",
        choices=MATCH_MODES,
        default="auto",
        help="ground-truth images to frames: by stamp (stamp_ns or stamp {sec, nanosec}) or "
        "index (frame_index or id order)",
    )
    parser.add_argument("--stamp-tolerance", type=float, default=0.001, metavar="SECONDS")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--samples", type=int, default=6, help="annotated sample frames saved as JPEG")
    parser.add_argument(
        "--no-tracking",
        action="store_true",
        help="do not track people (Person.id stays NO_ID, no tracking figures); tracking "
        "uses the node's default tracking.* settings",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    live = parser.add_argument_group("node in the loop (--live): replay in real time into the running node")
    live.add_argument(
        "--live",
        action="store_true",
        help="start litepose_node, replay the bag into it in real time, record and report its "
        "outputs (dropped frames, end-to-end latency); uses this shell's ROS environment",
    )
    live.add_argument(
        "--use-running-node",
        action="store_true",
        help="with --live: do not start a node, use the one running in --node-namespace",
    )
    live.add_argument("--node-namespace", default="/litepose", help="namespace of the node's outputs")
    live.add_argument("--rate", type=float, default=1.0, help="with --live: replay speed factor")
    live.add_argument(
        "--no-annotated",
        action="store_true",
        help="with --live: do not subscribe to image_annotated (the node then skips drawing)",
    )


def load_estimator(
    model: Path | None, engine: str = "onnxruntime", threads: int = 0, flip_test: bool | None = None
):
    """The Estimator for a model file (the bundled default model when None), decoding as the node
    does with its default parameters (flip test, refine), with clear errors."""
    from litepose_ros.estimator import Estimator, resolve_model_path
    from litepose_ros.ros.parameters import default_values

    node_defaults = default_values()

    try:
        model = resolve_model_path(model, source="--model")
    except FileNotFoundError as error:
        raise UserError(str(error)) from error
    try:
        estimator = Estimator.from_model(
            Path(model),
            engine=engine,
            threads=threads or None,
            flip_test=node_defaults["flip_test"] if flip_test is None else flip_test,
            refine=node_defaults["refine"],
        )
    except (ValueError, OSError, RuntimeError) as error:
        raise UserError(f"cannot load model {model}: {error}") from error
    describe = getattr(estimator, "describe", None)
    return estimator, (describe() if callable(describe) else str(model))


def _choose_topic(bag: Path, topic: str | None) -> str:
    from litepose_ros.bags.storage import BagReader

    if topic:
        return topic
    with BagReader(bag) as reader:
        topics = reader.image_topics()
        if len(topics) != 1:
            raise UserError(
                f"name the image topic with --topic: bag {bag} has "
                f"{len(topics) or 'no'} image topics ({reader.describe_topics()})"
            )
        return topics[0]


# Options of this command that are node parameters: (option attribute, parameter name). With
# --live they go to the node it starts; a running node keeps its own, so they are refused there.
_NODE_PARAMETER_OPTIONS = (
    ("threads", "threads"),
    ("flip_test", "flip_test"),
    ("keypoint_threshold", "keypoint_threshold"),
    ("score_threshold", "score_threshold"),
    ("max_persons", "max_persons"),
    ("depth_max_time_difference", "depth.max_time_difference"),
)


def _live_node_parameters(args: argparse.Namespace) -> dict[str, str]:
    """``-p`` values for the node --live starts, from the options given (the node's defaults for
    the rest); with --use-running-node, a UserError for any of them (it cannot change them)."""
    given = {
        parameter: getattr(args, option)
        for option, parameter in _NODE_PARAMETER_OPTIONS
        if getattr(args, option) is not None
    }
    if not args.threads:  # 0: the engine's default, as the node's own default
        given.pop("threads", None)
    if args.engine != "onnxruntime":
        given["engine"] = args.engine
    if args.use_running_node:
        if given or args.model is not None:
            named = sorted(given) + (["model_path"] if args.model is not None else [])
            raise UserError(
                f"--use-running-node uses the running node's own settings ({', '.join(named)} given): "
                "set them on that node, or drop --use-running-node to start one with them"
            )
        return {}
    return {name: _parameter_text(value) for name, value in given.items()}


def _parameter_text(value: bool | int | float) -> str:
    """A value as ``-p name:=text`` reads it back with its type (YAML: 1e-05 would be a string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = format(Decimal(repr(value)), "f")
        return text if "." in text else text + ".0"
    return str(value)


def run_live(args: argparse.Namespace) -> int:
    """Node-in-the-loop evaluation; the ROS environment is the caller's (no loopback forced)."""
    from litepose_ros.bags.node_in_the_loop import LoopOptions, NodeInTheLoopError, run_node_in_the_loop
    from litepose_ros.bags.storage import BagError
    from litepose_ros.estimator import resolve_model_path

    model = None
    if not args.use_running_node:
        try:
            model = resolve_model_path(args.model, source="--model")
        except FileNotFoundError as error:
            raise UserError(str(error)) from error
    options = LoopOptions(
        image_topic=args.topic,
        camera_info_topic=args.camera_info_topic,
        node_namespace=args.node_namespace,
        start_node=not args.use_running_node,
        model=model,
        rate=args.rate,
        record_annotated=not args.no_annotated,
        storage=args.storage,
        tracking=not args.no_tracking,
        depth_topic=args.depth_topic or None,
        depth_info_topic=args.depth_info_topic,
        node_parameters=_live_node_parameters(args),
        ground_truth=args.ground_truth,
        match_by=args.match_by,
        stamp_tolerance=args.stamp_tolerance,
    )
    try:
        result = run_node_in_the_loop(args.bag, args.output, options)
    except (BagError, NodeInTheLoopError, ValueError) as error:
        raise UserError(str(error)) from error
    frames = result.report["frames"]
    latency = result.report["end_to_end_latency_ms"] or {"p50": float("nan"), "p95": float("nan")}
    print(
        f"frames in {frames['sent']}, processed {frames['processed']}, dropped {frames['dropped']}; "
        f"end-to-end latency p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms"
    )
    print_accuracy(result.report.get("accuracy"))
    print_tracking(result.report.get("tracking"))
    print(f"report: {result.files['markdown']}\nrecorded bag: {result.files['bag']}")
    return 0


# Options only one of the two modes uses (argparse destinations): given to the other, they are
# refused rather than silently ignored.
_OFFLINE_ONLY = ("output_bag", "overwrite", "topic_prefix", "annotated", "max_frames", "samples")
_LIVE_ONLY = ("use_running_node", "node_namespace", "rate", "no_annotated")


def _refuse_options_of_the_other_mode(args: argparse.Namespace) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = vars(parser.parse_args([str(args.bag)]))
    unused = _OFFLINE_ONLY if args.live else _LIVE_ONLY
    given = ["--" + name.replace("_", "-") for name in unused if getattr(args, name) != defaults[name]]
    if given:
        them = "it" if len(given) == 1 else "them"
        if args.live:
            reason = f"only for the offline evaluation; drop --live to use {them}"
        else:
            reason = f"only for the node in the loop; add --live to use {them}"
        raise UserError(f"{', '.join(given)}: {reason}")


def run(args: argparse.Namespace) -> int:
    _refuse_options_of_the_other_mode(args)
    if args.live:
        return run_live(args)
    from litepose_ros.bags.evaluate import BagEvalOptions, evaluate_bag
    from litepose_ros.bags.storage import BagError
    from litepose_ros.ros.parameters import default_values, depth_settings

    node_defaults = default_values()
    try:
        topic = _choose_topic(args.bag, args.topic)
        options = BagEvalOptions(
            topic=topic,
            output_bag=args.output_bag,
            storage=args.storage,
            topic_prefix=args.topic_prefix,
            keypoint_threshold=(
                node_defaults["keypoint_threshold"]
                if args.keypoint_threshold is None
                else args.keypoint_threshold
            ),
            score_threshold=(
                node_defaults["score_threshold"] if args.score_threshold is None else args.score_threshold
            ),
            max_persons=node_defaults["max_persons"] if args.max_persons is None else args.max_persons,
            annotated=args.annotated,
            camera_info_topic=args.camera_info_topic,
            marker_depth=node_defaults["markers.depth"],
            ground_truth=args.ground_truth,
            match_by=args.match_by,
            stamp_tolerance=args.stamp_tolerance,
            max_frames=args.max_frames,
            sample_frames=args.samples,
            overwrite=args.overwrite,
            tracking=not args.no_tracking,
            depth_topic=args.depth_topic or None,
            depth_info_topic=args.depth_info_topic,
            depth_max_time_difference=_depth_tolerance(args, node_defaults),
            depth=depth_settings(node_defaults),
        )
    except (ValueError, BagError) as error:
        raise UserError(str(error)) from error
    estimator, description = load_estimator(args.model, args.engine, args.threads, args.flip_test)
    try:
        result = evaluate_bag(
            args.bag,
            estimator,
            args.output,
            options,
            progress=not args.no_progress,
            model_description=description,
        )
    except (BagError, ValueError, FileNotFoundError) as error:
        raise UserError(str(error)) from error
    report = result.report
    frames = report["frames"]
    latency = report["latency_ms"] or {"p50": float("nan"), "p95": float("nan")}
    print(
        f"{frames['processed']} of {frames['read']} frames evaluated ({frames['failed']} unusable); "
        f"latency p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms; "
        f"{report['throughput_fps'] or 0:.1f} frames/s"
    )
    print_accuracy(report.get("accuracy"))
    print_tracking(report.get("tracking"))
    depth = report.get("depth")
    if depth:
        print(
            f"depth: 3D positions in {depth['frames_with_depth']} frames, "
            f"{depth['frames_without_matching_depth']} without a depth image at their time, "
            f"{depth['depth_images_rejected']} depth images unusable"
            + (f" ({depth['problem']})" if depth["problem"] else "")
        )
    print(f"report: {result.files['markdown']}\noutput bag: {result.files['bag']}")
    return 0


def _depth_tolerance(args: argparse.Namespace, node_defaults: dict) -> float:
    value = args.depth_max_time_difference
    if value is None:
        return float(node_defaults["depth.max_time_difference"])
    if value < 0:
        raise ValueError(f"--depth-max-time-difference must be >= 0 seconds, got {value}")
    return value


def print_accuracy(accuracy: dict | None) -> None:
    """One line of OKS AP/AR when ground truth was given."""
    if accuracy and accuracy.get("metrics"):
        dropped = accuracy.get("matched_frames_without_output")
        print(
            f"OKS AP {accuracy['metrics']['AP']:.3f}, AR {accuracy['metrics']['AR']:.3f} on "
            f"{accuracy['matched_frames']} frames with ground truth"
            + (f" ({dropped} dropped by the node, counted as missed)" if dropped else "")
        )


def print_tracking(tracking: dict | None) -> None:
    """One line of tracking figures (nothing when tracking was off)."""
    if not tracking or not tracking.get("enabled"):
        return
    line = (
        f"tracking: {tracking['tracks_started']} tracks started, track length mean "
        f"{tracking['mean_track_frames']:.1f} / median {tracking['median_track_frames']:.1f} frames"
    )
    if tracking.get("id_switches") is not None:
        line += (
            f"; against ground truth: {tracking['id_switches']} id switches, "
            f"IDF1 {tracking['idf1']:.3f}, MOTA {tracking['mota']:.3f}"
        )
    print(line)
