"""Entry point of the ``litepose_node`` executable (not a ``litepose`` subcommand).

The node's module imports NumPy, SciPy, ONNX Runtime and rclpy: a second or more on a small board.
A Ctrl-C or SIGTERM in that time (``ros2 launch`` stopping a launch whose other node failed at
start, or an impatient user) would end the process with an import traceback or signal death.
This module imports nothing heavy: it notes the two signals first, then imports and runs the
node, which ends with exit code 0 when one came (``litepose_ros.ros.node.main``).
"""

from __future__ import annotations

import sys

from litepose_ros.stop_signals import note_stop_signals


def main(args: list[str] | None = None) -> int:
    received: list[int] = []
    note_stop_signals(received.append)
    from litepose_ros.ros.node import main as run_node

    return run_node(args, stop_signals=received)


if __name__ == "__main__":
    sys.exit(main())
