"""bag-eval's options that are node parameters: the offline run decodes as the node does, --live
passes them to the node it starts, and --use-running-node refuses them instead of ignoring them."""

from __future__ import annotations

import argparse

import pytest

from litepose_ros.cli.bag_eval import _live_node_parameters, add_arguments, run
from litepose_ros.errors import UserError


def parse(*options: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["some.mcap", *options])


def test_no_options_leave_the_node_its_defaults():
    assert _live_node_parameters(parse("--live")) == {}


def test_given_options_become_typed_node_parameters():
    args = parse(
        "--live",
        "--no-flip-test",
        "--score-threshold",
        "0",
        "--keypoint-threshold",
        "0.00001",
        "--max-persons",
        "3",
        "--threads",
        "2",
        "--depth-max-time-difference",
        "0.05",
    )
    assert _live_node_parameters(args) == {
        "flip_test": "false",  # False is a value given, not "not given"
        "score_threshold": "0.0",  # 0 too
        "keypoint_threshold": "0.00001",  # not 1e-05, which -p would read as a string
        "max_persons": "3",
        "threads": "2",
        "depth.max_time_difference": "0.05",
    }
    assert _live_node_parameters(parse("--live", "--flip-test", "--engine", "torch")) == {
        "flip_test": "true",
        "engine": "torch",
    }


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--score-threshold", "0.5"], "score_threshold"),
        (["--flip-test"], "flip_test"),
        (["--model", "mine.onnx"], "model_path"),
    ],
)
def test_a_running_node_refuses_options_it_would_ignore(options, named):
    with pytest.raises(UserError, match=rf"--use-running-node .*{named}.* given"):
        _live_node_parameters(parse("--live", "--use-running-node", *options))
    assert _live_node_parameters(parse("--live", "--use-running-node")) == {}


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--live", "--output-bag", "out"], "--output-bag"),
        (["--live", "--samples", "3", "--max-frames", "5"], "--max-frames, --samples"),
        (["--live", "--annotated"], "--annotated"),
        (["--rate", "2"], "--rate"),
        (["--use-running-node"], "--use-running-node"),
    ],
)
def test_options_of_the_other_mode_are_refused_before_anything_runs(tmp_path, options, named):
    args = parse(*options)
    args.bag = tmp_path / "absent.mcap"  # refused before the bag is even looked for
    with pytest.raises(UserError, match=rf"^{named}: only for the (offline evaluation|node in the loop)"):
        run(args)
