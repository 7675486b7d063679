"""Benchmark pages name the command that made them: the options that differ from the defaults."""

from __future__ import annotations

import argparse

import pytest

from litepose_ros.benchmarks import decode_speed, depth_speed, tracker_speed
from litepose_ros.benchmarks.report import options_that_differ


def test_only_options_that_differ_from_the_defaults_are_named():
    args = argparse.Namespace(people=[1, 5], runs=500, input_size=320, note="busy machine")
    defaults = {"people": (1, 5, 10), "runs": 500, "input_size": 256, "note": ""}
    assert options_that_differ(args, defaults) == [
        "--people",
        "1",
        "5",
        "--input-size",
        "320",
        "--note",
        "busy machine",
    ]
    args.people, args.input_size, args.note = [1, 5, 10], 256, ""
    assert options_that_differ(args, defaults) == []


@pytest.mark.parametrize("module", [decode_speed, depth_speed, tracker_speed])
def test_each_benchmark_names_no_option_for_its_own_defaults_and_the_ones_given(module):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    assert module._argv_tail(parser.parse_args([])) == []
    given = ["--people", "3", "--runs", "7", "--note", "n"]
    assert module._argv_tail(parser.parse_args(given)) == given
