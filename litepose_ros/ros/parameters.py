"""The pose node's parameters: one table that declares them, validates them and documents them.

Each parameter is declared with a description, a range (numbers) or a list of accepted values
(strings), and ``read_only`` when a change needs the model or the subscriptions rebuilt: those
are set at start-up (``--ros-args -p`` / ``--params-file``). The others can be changed while the
node runs (``ros2 param set``) and take effect on the next image.

``python -m litepose_ros.ros.parameters --markdown`` prints the reference table used in
docs/node.md (a test keeps that page equal to this table).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from litepose_ros import summaries
from litepose_ros.engine import DEFAULT_ALLOW_SPINNING, ENGINE_NAMES, PROVIDER_ALIASES
from litepose_ros.image_encodings import DEFAULT_MAX_PIXELS
from litepose_ros.tracking import TrackerConfig

ENGINES = ENGINE_NAMES
VARIANTS = ("auto", "XS", "S", "M", "L")
INPUT_TRANSPORTS = ("raw", "compressed")
RELIABILITIES = ("best_effort", "reliable")
# Provider names accepted in the comma-separated `providers` parameter (ONNX Runtime's own names,
# "...ExecutionProvider", are accepted too).
PROVIDER_SHORT_NAMES = tuple(PROVIDER_ALIASES)


@dataclass(frozen=True)
class ParameterSpec:
    """One node parameter: name, default (its type is the parameter's type) and constraints."""

    name: str
    default: bool | int | float | str
    description: str
    read_only: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    unit: str = ""

    @property
    def type_name(self) -> str:
        return {bool: "bool", int: "int", float: "double", str: "string"}[type(self.default)]

    def constraint_text(self) -> str:
        """Human-readable range or accepted values ('' when unconstrained)."""
        if self.choices:
            return "one of " + ", ".join(f"`{c}`" for c in self.choices)
        if self.minimum is not None and self.maximum is not None:
            unit = f" {self.unit}" if self.unit else ""
            return f"{_number(self.minimum)} to {_number(self.maximum)}{unit}"
        if self.name == "providers":
            return "comma-separated: " + ", ".join(PROVIDER_SHORT_NAMES) + " or ONNX Runtime provider names"
        return ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


PARAMETERS: tuple[ParameterSpec, ...] = (
    # --- model (read at configure) ---
    ParameterSpec(
        "model_path",
        "",
        "Model file: an .onnx export (or a PyTorch checkpoint with the torch "
        "engine). Empty: the model bundled with the package.",
        read_only=True,
    ),
    ParameterSpec(
        "variant",
        "auto",
        "Network variant the model file must be; the node refuses to "
        "configure when the file is another one (told by its metadata, else by its graph's "
        "convolution weights; a file that cannot be checked is refused). auto: accept any.",
        read_only=True,
        choices=VARIANTS,
    ),
    ParameterSpec(
        "input_size",
        0,
        "Network input short side in pixels (long side follows the image "
        "aspect, rounded up to a multiple of 64). 0: the model's own size.",
        read_only=True,
        minimum=0,
        maximum=2048,
        unit="px",
    ),
    ParameterSpec(
        "engine",
        "onnxruntime",
        "Inference engine: onnxruntime (.onnx files, any execution "
        "provider) or torch (PyTorch checkpoints; needs torch installed).",
        read_only=True,
        choices=ENGINES,
    ),
    ParameterSpec(
        "providers",
        "cpu",
        "ONNX Runtime execution providers in order of preference, "
        "comma-separated (e.g. tensorrt,cuda,cpu): tensorrt, cuda, cpu, openvino, ... or ONNX "
        "Runtime's own provider names.",
        read_only=True,
    ),
    ParameterSpec(
        "threads",
        0,
        "Inference threads. 0: the engine's default (all cores).",
        read_only=True,
        minimum=0,
        maximum=256,
    ),
    ParameterSpec(
        "engine_spinning",
        DEFAULT_ALLOW_SPINNING,
        "Let ONNX Runtime's worker threads spin-wait "
        "between images: a little less inference latency, but they keep cores busy that the node's "
        "own thread, the camera driver and the rest of the robot need.",
        read_only=True,
    ),
    ParameterSpec(
        "flip_test",
        False,
        "Also run the mirrored image and average (slightly more accurate, twice the inference time).",
        read_only=True,
    ),
    ParameterSpec(
        "refine",
        True,
        "Fill joints the grouping missed from the whole heatmap (the reference "
        "pipeline's refine step): more complete skeletons for a little decoding time.",
        read_only=True,
    ),
    # --- what gets published (changeable at run time) ---
    ParameterSpec(
        "score_threshold",
        0.1,
        "People with a lower score (mean keypoint score) are not published.",
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterSpec(
        "keypoint_threshold",
        0.3,
        "Keypoints with at least this score are valid (Keypoint.valid; only valid keypoints are drawn).",
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterSpec(
        "max_persons", 30, "At most this many people (the best scoring) per image.", minimum=1, maximum=100
    ),
    # --- input ---
    ParameterSpec(
        "input_transport",
        "raw",
        "raw: subscribe to `image` (sensor_msgs/Image); compressed: "
        "to `image/compressed` (sensor_msgs/CompressedImage, JPEG or PNG).",
        read_only=True,
        choices=INPUT_TRANSPORTS,
    ),
    ParameterSpec(
        "use_camera_info",
        True,
        "Subscribe to `camera_info` and place markers with its "
        "intrinsics (metric); without it markers use the fallback scaling.",
        read_only=True,
    ),
    ParameterSpec(
        "qos_reliability",
        "best_effort",
        "Reliability of the image (and camera_info) "
        "subscription. best_effort (sensor data QoS) accepts both kinds of camera driver.",
        read_only=True,
        choices=RELIABILITIES,
    ),
    ParameterSpec(
        "qos_depth",
        5,
        "History depth (keep last) of the image subscription.",
        read_only=True,
        minimum=1,
        maximum=100,
    ),
    ParameterSpec(
        "max_image_pixels",
        DEFAULT_MAX_PIXELS,
        "Images with more pixels (width x height) are refused with an error (protects memory and latency).",
        minimum=1,
        maximum=2**31 - 1,
        unit="px",
    ),
    ParameterSpec(
        "max_frame_age",
        0.0,
        "Results for images whose header stamp is older than this (node "
        "clock now minus stamp; the /clock time with use_sim_time) are dropped and counted, not "
        "published: after a stall nothing stale reaches the robot. Images with a zero stamp, or "
        "before sim time has started, are not judged. 0: off (e.g. for bags played without "
        "--clock).",
        minimum=0.0,
        maximum=3600.0,
        unit="s",
    ),
    # --- markers ---
    ParameterSpec("markers.enabled", True, "Publish `markers` (built only while someone subscribes)."),
    ParameterSpec(
        "markers.depth",
        3.0,
        "Distance of the plane the skeletons are drawn on, in front of the camera.",
        minimum=0.1,
        maximum=100.0,
        unit="m",
    ),
    ParameterSpec(
        "markers.joint_diameter", 0.05, "Diameter of the joint spheres.", minimum=0.001, maximum=1.0, unit="m"
    ),
    ParameterSpec(
        "markers.line_width", 0.02, "Width of the limb lines.", minimum=0.001, maximum=1.0, unit="m"
    ),
    ParameterSpec("markers.labels", True, "Show each person's score as a text label above the head."),
    ParameterSpec(
        "markers.label_height", 0.1, "Height of the score labels.", minimum=0.01, maximum=2.0, unit="m"
    ),
    ParameterSpec(
        "markers.lifetime",
        1.0,
        "Lifetime of every marker, so skeletons vanish when the node "
        "stops (each image also starts with DELETEALL). 0: forever.",
        minimum=0.0,
        maximum=60.0,
        unit="s",
    ),
    ParameterSpec(
        "markers.fallback_frame_id",
        "camera_optical_frame",
        "Frame for markers when the image header has an empty frame_id.",
    ),
    # --- annotated image ---
    ParameterSpec(
        "annotated.enabled", True, "Publish `image_annotated` (drawn only while someone subscribes)."
    ),
    ParameterSpec("annotated.draw_scores", True, "Write each person's score next to the skeleton."),
    ParameterSpec(
        "annotated.line_thickness",
        2,
        "Line thickness of the drawn skeletons.",
        minimum=1,
        maximum=20,
        unit="px",
    ),
    # --- tracking (changeable at run time: tracks are kept, new settings apply from the next image) ---
    ParameterSpec(
        "tracking.enabled",
        True,
        "Track people across images: Person.id is the track id of "
        "confirmed tracks, NO_ID (-1) for people not (yet) confirmed. false: NO_ID for everyone "
        "(turning it off forgets every track; ids are never reused).",
    ),
    ParameterSpec(
        "tracking.high_score",
        0.3,
        "People scoring at least this are matched to tracks first and start new tracks.",
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterSpec(
        "tracking.low_score",
        0.1,
        "People from this score up to tracking.high_score only continue "
        "existing tracks (second matching round); lower ones are not tracked. At most "
        "tracking.high_score.",
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterSpec(
        "tracking.keypoint_score",
        0.1,
        "Joints with at least this score take part in the pose similarity (OKS) of a person and a track.",
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterSpec(
        "tracking.min_shared_keypoints",
        3,
        "Pose similarity (OKS) needs this many joints "
        "confident in both person and track; with fewer the boxes are compared (IoU).",
        minimum=1,
        maximum=100,
    ),
    ParameterSpec(
        "tracking.min_oks",
        0.1,
        "A person and a track whose pose similarity (OKS) is lower are never matched.",
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterSpec(
        "tracking.min_iou",
        0.1,
        "A person and a track compared by box whose IoU is lower are never matched.",
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterSpec(
        "tracking.min_hits",
        3,
        "Matches (images) before a track is confirmed and its person gets an id.",
        minimum=1,
        maximum=100,
    ),
    ParameterSpec(
        "tracking.max_age",
        1.0,
        "A track not matched for longer than this (image stamps) is "
        "removed; until then it is predicted forward and can take its person back.",
        minimum=0.01,
        maximum=3600.0,
        unit="s",
    ),
    ParameterSpec(
        "tracking.acceleration_noise",
        2.0,
        "Motion model (Kalman) process noise, in box heights "
        "per second squared: higher follows sudden moves faster.",
        minimum=0.0,
        maximum=1000.0,
    ),
    ParameterSpec(
        "tracking.measurement_noise",
        0.05,
        "Motion model (Kalman) measurement noise, in box heights.",
        minimum=0.001,
        maximum=10.0,
    ),
    ParameterSpec(
        "tracking.smoothing",
        False,
        "Smooth the published keypoint positions of tracked people "
        "(One-Euro filter per joint): less jitter, some lag on fast motion. Changes the published "
        "x, y; scores are never changed.",
    ),
    ParameterSpec(
        "tracking.smoothing_min_cutoff",
        1.0,
        "Smoothing cutoff of a still joint: lower is smoother with more lag.",
        minimum=0.001,
        maximum=1000.0,
        unit="Hz",
    ),
    ParameterSpec(
        "tracking.smoothing_beta",
        0.05,
        "How fast the smoothing cutoff rises with joint speed "
        "(Hz per pixel/s): higher lags less on fast motion.",
        minimum=0.0,
        maximum=100.0,
    ),
    ParameterSpec(
        "tracking.smoothing_d_cutoff",
        1.0,
        "Cutoff of the joint speed estimate used by the smoothing.",
        minimum=0.001,
        maximum=1000.0,
        unit="Hz",
    ),
    # --- 3D keypoints from a registered depth image ---
    ParameterSpec(
        "depth.enabled",
        False,
        "Subscribe to `depth/image` (sensor_msgs/Image, 16UC1 "
        "millimetres or 32FC1 metres, registered to the colour camera, e.g. "
        "aligned_depth_to_color/image_raw) and `depth/camera_info`, and fill Keypoint.position "
        "and Person.position in metres.",
        read_only=True,
    ),
    ParameterSpec(
        "depth.max_time_difference",
        0.02,
        "A depth image is used for a colour image when their "
        "stamps differ by at most this; colour images without one are published in 2D and counted.",
        minimum=0.0,
        maximum=1.0,
        unit="s",
    ),
    ParameterSpec(
        "depth.min_range",
        0.1,
        "Depth values nearer than this are no measurement.",
        minimum=0.001,
        maximum=100.0,
        unit="m",
    ),
    ParameterSpec(
        "depth.max_range",
        10.0,
        "Depth values farther than this are no measurement.",
        minimum=0.01,
        maximum=1000.0,
        unit="m",
    ),
    ParameterSpec(
        "depth.window_fraction",
        0.02,
        "Half-size of the depth window around each keypoint, as a "
        "fraction of the person's height in depth pixels (at least 1 pixel, at most "
        "depth.max_window_radius).",
        minimum=0.001,
        maximum=0.5,
    ),
    ParameterSpec(
        "depth.max_window_radius",
        7,
        "Largest half-size of the depth window.",
        minimum=1,
        maximum=50,
        unit="px",
    ),
    ParameterSpec(
        "depth.min_samples", 3, "Valid depth pixels a window needs for a position.", minimum=1, maximum=1000
    ),
    ParameterSpec(
        "depth.max_joint_offset",
        0.8,
        "A keypoint whose depth is farther than this from its "
        "person's median depth hit the background (or something in front): no position.",
        minimum=0.01,
        maximum=100.0,
        unit="m",
    ),
    # --- node ---
    ParameterSpec(
        "diagnostics_rate",
        1.0,
        "Rate of the /diagnostics status.",
        read_only=True,
        minimum=0.1,
        maximum=10.0,
        unit="Hz",
    ),
    ParameterSpec(
        "auto_activate",
        True,
        "Configure and activate at start-up. false: wait for lifecycle "
        "transitions (configure loads the model, activate starts processing).",
        read_only=True,
    ),
)

PARAMETERS_BY_NAME: dict[str, ParameterSpec] = {spec.name: spec for spec in PARAMETERS}


def default_values() -> dict[str, Any]:
    """Every parameter's default value."""
    return {spec.name: spec.default for spec in PARAMETERS}


def parse_providers(text: str) -> list[str]:
    """The `providers` string as a list (empty entries and spaces ignored)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def estimator_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """The estimator settings (``EstimatorConfig.create``'s keywords) the parameter values ask for;
    the model file is ``model_path`` (``litepose_ros.estimator.resolve_model_path``)."""
    settings: dict[str, Any] = {
        "engine": values["engine"],
        "providers": parse_providers(values["providers"]),
        "threads": values["threads"] or None,
        "flip_test": values["flip_test"],
        "refine": values["refine"],
        "allow_spinning": values["engine_spinning"],
    }
    if values["variant"] != "auto":
        settings["variant"] = values["variant"]
    if values["input_size"]:
        settings["input_size"] = values["input_size"]
    return settings


TRACKING_PREFIX = "tracking."
DEPTH_PREFIX = "depth."
# depth.* parameters that are not DepthSettings fields.
_DEPTH_NODE_ONLY = ("depth.enabled", "depth.max_time_difference")


def depth_settings(values: Mapping[str, Any]):
    """The ``litepose_ros.depth.DepthSettings`` the ``depth.*`` parameter values ask for."""
    from litepose_ros.depth import DepthSettings

    return DepthSettings(
        **{
            spec.name[len(DEPTH_PREFIX) :]: values[spec.name]
            for spec in PARAMETERS
            if spec.name.startswith(DEPTH_PREFIX) and spec.name not in _DEPTH_NODE_ONLY
        }
    )


def tracker_config(values: Mapping[str, Any]) -> TrackerConfig:
    """The TrackerConfig the ``tracking.*`` parameter values ask for (every setting but ``enabled``);
    raises ValueError when they do not fit together (low_score above high_score)."""
    settings = {
        spec.name[len(TRACKING_PREFIX) :]: values[spec.name]
        for spec in PARAMETERS
        if spec.name.startswith(TRACKING_PREFIX) and spec.name != "tracking.enabled"
    }
    for name, value in settings.items():
        if isinstance(PARAMETERS_BY_NAME[TRACKING_PREFIX + name].default, float):
            settings[name] = float(value)  # an integer given for a double
    return TrackerConfig(**settings)


def validate_combination(values: Mapping[str, Any]) -> str | None:
    """Why a complete set of values does not fit together, or None (each value already valid)."""
    if values["tracking.low_score"] > values["tracking.high_score"]:
        return (
            f"tracking.low_score ({values['tracking.low_score']}) must be at most tracking.high_score "
            f"({values['tracking.high_score']})"
        )
    if values["depth.min_range"] >= values["depth.max_range"]:
        return (
            f"depth.min_range ({values['depth.min_range']}) must be below depth.max_range "
            f"({values['depth.max_range']})"
        )
    try:
        tracker_config(values)
    except ValueError as error:
        return str(error)
    try:
        depth_settings(values)
    except ValueError as error:  # DepthSettings names its fields without the "depth." prefix
        return f"depth.* parameters: {error}"
    return None


# ROS's words for the value types (rclpy's own messages show its numeric type codes).
_TYPE_WORDS = {
    bool: "bool",
    int: "integer",
    float: "double",
    str: "string",
    bytes: "byte array",
    list: "array",
    tuple: "array",
    type(None): "unset value",
}


def validate_value(name: str, value: Any, *, exact_type: bool = False) -> str | None:
    """Why ``value`` is not acceptable for parameter ``name``, or None when it is.

    Covers what ROS descriptors cannot express (accepted strings, finiteness); types, ranges and
    read-only are also checked here so the same rules hold without ROS. An integer is accepted for
    a double unless ``exact_type`` (ROS stores a parameter with the type it is given).
    """
    spec = PARAMETERS_BY_NAME.get(name)
    if spec is None:
        return f"unknown parameter {name!r}"
    expected = type(spec.default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        if exact_type:
            return f"{name} must be a double, got the integer {value} (write {value}.0)"
        value = float(value)
    if type(value) is not expected:
        wanted, got = _TYPE_WORDS[expected], _TYPE_WORDS.get(type(value), type(value).__name__)
        article = "an" if wanted[0] in "aeiou" else "a"
        return f"{name} must be {article} {wanted}, got the {got} {value!r}"
    if expected is float and not math.isfinite(value):
        return f"{name} must be a finite number, got {value}"
    if spec.minimum is not None and value < spec.minimum:
        return f"{name} must be >= {_number(spec.minimum)}, got {value}"
    if spec.maximum is not None and value > spec.maximum:
        return f"{name} must be <= {_number(spec.maximum)}, got {value}"
    if spec.choices is not None and value not in spec.choices:
        return f"{name} must be one of {', '.join(spec.choices)}; got {value!r}"
    if name == "providers":
        names = parse_providers(value)
        if not names:
            return "providers must name at least one execution provider, e.g. cpu"
        unknown = [
            p for p in names if p.lower() not in PROVIDER_SHORT_NAMES and not p.endswith("ExecutionProvider")
        ]
        if unknown:
            return (
                f"unknown execution provider(s) {', '.join(unknown)} in providers; use "
                f"{', '.join(PROVIDER_SHORT_NAMES)} or an ONNX Runtime provider name"
            )
    if name == "input_size" and value != 0 and (value < 64 or value % 32):
        return f"input_size must be 0 (the model's size) or a multiple of 32 of at least 64, got {value}"
    if name == "markers.fallback_frame_id" and not value.strip():
        return "markers.fallback_frame_id must not be empty (RViz needs a frame)"
    return None


def validate_values(values: Iterable[tuple[str, Any]], *, exact_type: bool = False) -> str | None:
    """The first problem among (name, value) pairs, or None when all are acceptable."""
    for name, value in values:
        problem = validate_value(name, value, exact_type=exact_type)
        if problem:
            return problem
    return None


# --- ROS side ------------------------------------------------------------------------------------


def descriptor(spec: ParameterSpec):
    """The rcl_interfaces ParameterDescriptor of a parameter."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

    types = {
        bool: ParameterType.PARAMETER_BOOL,
        int: ParameterType.PARAMETER_INTEGER,
        float: ParameterType.PARAMETER_DOUBLE,
        str: ParameterType.PARAMETER_STRING,
    }
    description = spec.description + (f" [{spec.unit}]" if spec.unit else "")
    if spec.read_only:
        description += " Read-only: set it at start-up."
    # dynamic_typing: rclpy's own type check would refuse a wrong type before the validation
    # callback, with numeric type codes ("expected '3' got '4'"); the callback checks types in words.
    result = ParameterDescriptor(
        name=spec.name,
        type=types[type(spec.default)],
        description=description,
        additional_constraints=spec.constraint_text(),
        read_only=spec.read_only,
        dynamic_typing=True,
    )
    if spec.minimum is not None and spec.maximum is not None:
        if isinstance(spec.default, float):
            result.floating_point_range = [
                FloatingPointRange(from_value=float(spec.minimum), to_value=float(spec.maximum), step=0.0)
            ]
        else:
            result.integer_range = [
                IntegerRange(from_value=int(spec.minimum), to_value=int(spec.maximum), step=1)
            ]
    return result


def declare_parameters(node) -> dict[str, Any]:
    """Declare every parameter on ``node`` (values from --ros-args overrides win) and return the values.

    Register the validation callback (``make_validation_callback``) before calling this, so that
    start-up values are validated as well; rclpy raises InvalidParameterValueException otherwise.
    """
    node.declare_parameters("", [(spec.name, spec.default, descriptor(spec)) for spec in PARAMETERS])
    return {spec.name: node.get_parameter(spec.name).value for spec in PARAMETERS}


def make_validation_callback(on_accepted=None, current_values=None):
    """An on-set-parameters callback that accepts only valid values.

    ``on_accepted(changes: dict)`` runs with the accepted new values (rclpy stores them right
    after the callback returns; read-only and range checks have already passed by then).
    ``current_values()`` (optional) gives the values in force, so that changes are also checked
    together with them (``validate_combination``); the defaults stand in while it returns None.
    """
    from rcl_interfaces.msg import SetParametersResult

    def callback(parameters) -> SetParametersResult:
        changes = {p.name: p.value for p in parameters}
        problem = validate_values(
            ((name, value) for name, value in changes.items() if name in PARAMETERS_BY_NAME), exact_type=True
        )
        if not problem:
            merged = default_values()
            merged.update((current_values() if current_values is not None else None) or {})
            merged.update((name, value) for name, value in changes.items() if name in PARAMETERS_BY_NAME)
            problem = validate_combination(merged)
        if problem:
            return SetParametersResult(successful=False, reason=problem)
        if on_accepted is not None:
            on_accepted(changes)
        return SetParametersResult(successful=True)

    return callback


# --- documentation -------------------------------------------------------------------------------


def markdown_table(specs: Iterable[ParameterSpec] = PARAMETERS) -> str:
    """The parameter reference as a Markdown table."""

    def default_text(value: Any) -> str:
        if isinstance(value, bool):
            return f"`{str(value).lower()}`"
        if isinstance(value, str):
            return f'`"{value}"`'
        return f"`{value}`"

    header = ["name", "type", "default", "range / values", "changeable at run time", "description"]
    rows = [
        (
            f"`{spec.name}`",
            spec.type_name,
            default_text(spec.default),
            spec.constraint_text(),
            "no" if spec.read_only else "yes",
            spec.description.replace("|", "/"),
        )
        for spec in specs
    ]
    return summaries.markdown_table(header, rows)


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value)  # keeps the ".0": ROS rejects an integer for a double parameter
    return str(value)


def _wrap_comment(text: str, indent: str, width: int = 100) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(indent) + 2 + len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return [f"{indent}# {item}" for item in lines]


def yaml_config(specs: Iterable[ParameterSpec] = PARAMETERS) -> str:
    """A ROS 2 parameter file with every parameter at its default, each documented by a comment."""
    lines = [
        "# Parameters of the LitePose pose node (litepose_node), all at their defaults.",
        "# Generated by `python -m litepose_ros.ros.parameters --yaml`; the table in docs/node.md has",
        "# the same content. Parameters marked read-only are read at start-up (restart the node, or",
        "# cleanup + configure, after changing them); the others can be changed at run time with",
        "# `ros2 param set`. Doubles must keep their decimal point (3.0, not 3).",
        '# "/**" applies the file to the node whatever its name and namespace.',
        "/**:",
        "  ros__parameters:",
    ]
    group = ""
    for spec in specs:
        prefix, _, leaf = spec.name.rpartition(".")
        if prefix != group or not prefix:  # a blank line before each group and top-level parameter
            lines.append("")
        if prefix and prefix != group:
            lines.append(f"    {prefix}:")
        group = prefix
        indent = "      " if prefix else "    "
        details = [spec.description]
        if spec.choices:
            details.append(f"Values: {', '.join(spec.choices)}.")
        elif spec.minimum is not None:
            details.append(f"Range: {spec.constraint_text()}.")
        if spec.read_only:
            details.append("Read-only.")
        lines += _wrap_comment(" ".join(details), indent)
        lines.append(f"{indent}{leaf}: {_yaml_value(spec.default)}")
    return "\n".join(lines) + "\n"


def values_from_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with ``values`` (unknown names are an error), validated."""
    unknown = sorted(set(values) - set(PARAMETERS_BY_NAME))
    if unknown:
        raise ValueError(f"unknown parameter(s): {', '.join(unknown)}")
    merged = default_values()
    merged.update(values)
    problem = validate_values(merged.items()) or validate_combination(merged)
    if problem:
        raise ValueError(problem)
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the pose node's parameter reference.")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--markdown", action="store_true", help="print the Markdown table (default)")
    output.add_argument("--yaml", action="store_true", help="print a parameter file with every default")
    args = parser.parse_args(argv)
    print(yaml_config() if args.yaml else markdown_table(), end="" if args.yaml else "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
