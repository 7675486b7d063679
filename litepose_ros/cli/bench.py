"""``litepose bench {model,decode,node,card}``: measurements that write a results page or model card."""

from __future__ import annotations

import argparse
import importlib
import importlib.util

# target -> module in litepose_ros.benchmarks (each defines add_arguments and run).
TARGETS = {
    "model": "model_speed",
    "decode": "decode_speed",
    "node": "node_speed",
    "card": "model_card",
    "tracker": "tracker_speed",
    "depth": "depth_speed",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for target, module_name in TARGETS.items():
        if importlib.util.find_spec(f"litepose_ros.benchmarks.{module_name}") is None:
            continue
        module = importlib.import_module(f"litepose_ros.benchmarks.{module_name}")
        target_parser = sub.add_parser(target, help=module.__doc__.splitlines()[0])
        module.add_arguments(target_parser)
        target_parser.set_defaults(bench_module=module)


def run(args: argparse.Namespace) -> int:
    return int(args.bench_module.run(args) or 0)
