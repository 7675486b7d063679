"""The ``litepose`` command line: one subcommand per module in this package (and ``node_entry``,
the ``litepose_node`` executable).

Subcommand modules are imported only when chosen, so ``litepose --help`` and light commands
never pay for torch. Each module defines ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from litepose_ros.errors import UserError

__all__ = ["COMMANDS", "UserError", "build_parser", "main"]

# name -> (module in this package, one-line help). Registered here so the help lists every
# command without importing any of them.
COMMANDS: dict[str, tuple[str, str]] = {
    "infer": ("infer", "estimate poses in an image, a folder of images or a video"),
    "export": ("export", "export a checkpoint to ONNX"),
    "bench": ("bench", "measure model, decoding and node speed on this machine"),
    "train": ("train", "train a LitePose model (COCO / CrowdPose format)"),
    "label": ("label", "pseudo-label people with the MoveNet teacher (images, videos, bags) for training"),
    "finetune": ("finetune", "fine-tune the bundled model on `litepose label` output and export it"),
    "eval": ("evaluate", "evaluate a model on COCO / CrowdPose keypoint annotations"),
    "bag-eval": ("bag_eval", "run the estimator over the images of a rosbag2"),
    "bag-play": ("bag_play", "publish a rosbag2's messages with their original timing"),
    "demo": ("demo", "run the node on the bundled footage and save what it publishes"),
}


def build_parser(available: dict[str, tuple[str, str]] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="litepose", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_module, help_text) in (available or COMMANDS).items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _available_commands() -> dict[str, tuple[str, str]]:
    found = {}
    for name, (module_name, help_text) in COMMANDS.items():
        if importlib.util.find_spec(f"{__name__}.{module_name}") is not None:
            found[name] = (module_name, help_text)
    return found


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    available = _available_commands()
    if not argv or argv[0] not in available:
        build_parser(available).parse_args(argv)  # prints usage / the error and exits
        return 2
    name, rest = argv[0], argv[1:]
    module_name, help_text = available[name]
    try:  # Ctrl-C during the imports (torch, rclpy: seconds) is the same stop as during the run
        module = importlib.import_module(f"{__name__}.{module_name}")
        parser = argparse.ArgumentParser(prog=f"litepose {name}", description=help_text)
        module.add_arguments(parser)
        args = parser.parse_args(rest)
        return int(module.run(args) or 0)
    except UserError as error:
        print(f"litepose {name}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
