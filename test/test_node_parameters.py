"""The node's parameter table: validation rules, ROS descriptors, and the generated documentation
(docs/node.md table and config/litepose.yaml) that must never drift from the declarations."""

from __future__ import annotations

import re

import pytest
from conftest import PROJECT_DIR

from litepose_ros.ros.parameters import (
    PARAMETERS,
    PARAMETERS_BY_NAME,
    default_values,
    descriptor,
    markdown_table,
    parse_providers,
    validate_value,
    values_from_mapping,
    yaml_config,
)

pytestmark = pytest.mark.ros

REQUIRED = {
    "model_path",
    "variant",
    "input_size",
    "engine",
    "providers",
    "threads",
    "score_threshold",
    "keypoint_threshold",
    "max_persons",
    "flip_test",
    "input_transport",
    "qos_reliability",
    "qos_depth",
    "max_image_pixels",
    "diagnostics_rate",
    "auto_activate",
}


def test_the_issue_parameters_are_all_declared_with_descriptions():
    names = {spec.name for spec in PARAMETERS}
    assert names >= REQUIRED
    assert any(n.startswith("markers.") for n in names) and any(n.startswith("annotated.") for n in names)
    assert len(names) == len(PARAMETERS)  # no duplicates
    for spec in PARAMETERS:
        assert len(spec.description) > 20, spec.name
        assert validate_value(spec.name, spec.default) is None, spec.name  # defaults are valid
    # What needs the model or the subscriptions rebuilt is read-only; thresholds are not.
    for name in ("model_path", "engine", "input_transport", "qos_reliability", "threads"):
        assert PARAMETERS_BY_NAME[name].read_only
    for name in ("score_threshold", "keypoint_threshold", "max_persons", "markers.depth"):
        assert not PARAMETERS_BY_NAME[name].read_only


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("score_threshold", 1.01, "score_threshold must be <= 1"),
        ("keypoint_threshold", -0.1, "keypoint_threshold must be >= 0"),
        ("score_threshold", float("nan"), "finite"),
        ("max_persons", 0, "max_persons must be >= 1"),
        ("max_persons", 2.5, "max_persons must be an integer"),
        ("input_transport", "theora", "input_transport must be one of raw, compressed"),
        ("qos_reliability", "sometimes", "must be one of best_effort, reliable"),
        ("engine", "tensorflow", "engine must be one of onnxruntime, torch"),
        ("variant", "XXL", "variant must be one of auto, XS, S, M, L"),
        ("providers", "cuda, quantum", "unknown execution provider(s) quantum"),
        ("providers", " , ", "at least one execution provider"),
        ("input_size", 100, "multiple of 32"),
        ("input_size", 32, "multiple of 32 of at least 64"),
        ("markers.fallback_frame_id", "  ", "must not be empty"),
        ("markers.depth", "far", "markers.depth must be a double"),
        ("flip_test", 1, "flip_test must be a bool"),
        ("no_such_parameter", 1, "unknown parameter"),
    ],
)
def test_invalid_values_are_explained(name, value, problem):
    assert problem in (validate_value(name, value) or "")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("score_threshold", 0),
        ("score_threshold", 1.0),
        ("max_persons", 100),
        ("input_size", 256),
        ("input_size", 0),
        ("providers", "tensorrt,cuda,cpu"),
        ("providers", "CPUExecutionProvider"),
        ("markers.depth", 2),  # an integer for a double: accepted by the rule, as by `ros2 param set`
    ],
)
def test_valid_values_pass(name, value):
    assert validate_value(name, value) is None


def test_providers_string_is_split_on_commas():
    assert parse_providers(" tensorrt, cuda ,cpu,") == ["tensorrt", "cuda", "cpu"]


def test_values_from_mapping_merges_and_validates():
    values = values_from_mapping({"score_threshold": 0.4})
    assert values["score_threshold"] == 0.4 and values["max_persons"] == default_values()["max_persons"]
    with pytest.raises(ValueError, match="unknown parameter"):
        values_from_mapping({"scor_threshold": 0.4})
    with pytest.raises(ValueError, match="max_persons must be >= 1"):
        values_from_mapping({"max_persons": 0})


def test_descriptors_carry_ranges_types_and_read_only():
    from rcl_interfaces.msg import ParameterType

    depth = descriptor(PARAMETERS_BY_NAME["markers.depth"])
    assert depth.type == ParameterType.PARAMETER_DOUBLE and not depth.read_only
    assert (depth.floating_point_range[0].from_value, depth.floating_point_range[0].to_value) == (0.1, 100.0)
    assert "[m]" in depth.description
    persons = descriptor(PARAMETERS_BY_NAME["max_persons"])
    assert (persons.integer_range[0].from_value, persons.integer_range[0].to_value) == (1, 100)
    transport = descriptor(PARAMETERS_BY_NAME["input_transport"])
    assert transport.read_only and "raw" in transport.additional_constraints
    assert descriptor(PARAMETERS_BY_NAME["flip_test"]).type == ParameterType.PARAMETER_BOOL


@pytest.mark.parametrize("page_path", ["docs/node.md", "README.md"])
def test_docs_table_equals_the_declarations(page_path):
    page = (PROJECT_DIR / page_path).read_text()
    found = re.search(r"<!-- parameters:begin -->\n(.*?)\n<!-- parameters:end -->", page, re.DOTALL)
    assert found, f"{page_path} lost its parameter table markers"
    assert found.group(1) == markdown_table(), (
        f"{page_path} is out of date: paste `python -m litepose_ros.ros.parameters --markdown`"
    )
    assert len(found.group(1).splitlines()) == len(PARAMETERS) + 2


def test_config_file_equals_the_declarations_and_ros_reads_it():
    from rclpy.parameter import parameter_dict_from_yaml_file, parameter_value_to_python

    path = PROJECT_DIR / "config" / "litepose.yaml"
    assert path.read_text() == yaml_config(), (
        "config/litepose.yaml is out of date: regenerate with `python -m litepose_ros.ros.parameters --yaml`"
    )
    parsed = parameter_dict_from_yaml_file(str(path), use_wildcard=True)  # rclpy's own reader
    assert set(parsed) == {spec.name for spec in PARAMETERS}
    for spec in PARAMETERS:
        value = parameter_value_to_python(parsed[spec.name].value)
        assert value == spec.default and type(value) is type(spec.default), spec.name
    for spec in PARAMETERS:  # every parameter has its comment right above it
        leaf = spec.name.rpartition(".")[2]
        assert re.search(rf"#[^\n]*\n\s+{re.escape(leaf)}: ", path.read_text()), spec.name


def test_node_benchmark_takes_node_parameters_as_ros_would_and_refuses_bad_ones(tmp_path):
    import argparse

    from litepose_ros.benchmarks.node_speed import add_arguments, parse_node_parameters, run
    from litepose_ros.errors import UserError

    assert parse_node_parameters(
        ["refine:=false", "score_threshold:=0.25", "max_persons:=5", "providers:=cuda,cpu"]
    ) == {"refine": False, "score_threshold": 0.25, "max_persons": 5, "providers": "cuda,cpu"}
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not used: the arguments are refused first")
    for extra, message in (
        (["--node-param", "scor_threshold:=0.2"], "unknown parameter"),
        (["--node-param", "max_persons:=0"], "max_persons must be >= 1"),
        (["--seconds", "3"], "--seconds >= 10"),
    ):
        args = parser.parse_args(["--model", str(model), "--output", str(tmp_path / "page.md"), *extra])
        with pytest.raises(UserError, match=message):
            run(args)
    assert not (tmp_path / "page.md").exists()


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("markers.depth", "far", "markers.depth must be a double, got the string 'far'"),
        ("max_persons", 2.5, "max_persons must be an integer, got the double 2.5"),
        ("score_threshold", True, "score_threshold must be a double, got the bool True"),
        ("markers.depth", 3, "markers.depth must be a double, got the integer 3 (write 3.0)"),
    ],
)
def test_wrong_types_at_run_time_are_explained_in_words(rclpy_context, name, value, words):
    from rclpy.parameter import Parameter

    from litepose_ros.ros.node import LitePoseNode

    node = LitePoseNode(context=rclpy_context, parameter_overrides=[Parameter("auto_activate", value=False)])
    try:
        before = node.get_parameter(name).value
        result = node.set_parameters([Parameter(name, value=value)])[0]
        assert not result.successful
        assert words in result.reason and "'3'" not in result.reason and "'4'" not in result.reason
        assert node.get_parameter(name).value == before
        assert node.set_parameters([Parameter(name, value=before)])[0].successful  # right type: fine
    finally:
        node.destroy_node()


def test_tracking_parameters_make_the_tracker_config_and_are_checked_together():
    from litepose_ros.ros.parameters import tracker_config, validate_combination
    from litepose_ros.tracking import TrackerConfig

    names = {spec.name for spec in PARAMETERS if spec.name.startswith("tracking.")}
    fields = set(TrackerConfig.__dataclass_fields__)
    assert names == {"tracking.enabled"} | {f"tracking.{name}" for name in fields}  # every setting
    assert default_values()["tracking.enabled"] is True  # tracking is on by default
    assert tracker_config(default_values()) == TrackerConfig()  # the same defaults as the library
    assert all(not PARAMETERS_BY_NAME[name].read_only for name in names)  # all changeable at run time
    values = default_values()
    values.update({"tracking.low_score": 0.5})
    assert "at most tracking.high_score" in validate_combination(values)
    with pytest.raises(ValueError, match="at most tracking.high_score"):
        values_from_mapping({"tracking.high_score": 0.05})
    assert values_from_mapping({"tracking.high_score": 0.5, "tracking.low_score": 0.5})
    assert tracker_config(values_from_mapping({"tracking.max_age": 2})).max_age == 2.0


def test_depth_parameters_make_the_depth_settings_and_are_checked_together():
    from litepose_ros.depth import DepthSettings
    from litepose_ros.ros.parameters import default_values, depth_settings, validate_combination

    assert depth_settings(default_values()) == DepthSettings()  # the node's defaults are the library's
    settings = depth_settings(values_from_mapping({"depth.max_range": 4, "depth.max_window_radius": 3}))
    assert settings.max_range == 4.0 and settings.max_window_radius == 3
    values = default_values()
    values.update({"depth.min_range": 5.0, "depth.max_range": 4.0})
    assert "depth.min_range (5.0) must be below depth.max_range" in validate_combination(values)
    values = default_values()
    values["depth.min_samples"] = 100  # more than a window of radius 3 holds (49 pixels)
    values["depth.max_window_radius"] = 3
    assert validate_combination(values).startswith("depth.* parameters: min_samples")
    with pytest.raises(ValueError, match="depth.min_range"):
        values_from_mapping({"depth.min_range": 0.0})  # below the declared range
