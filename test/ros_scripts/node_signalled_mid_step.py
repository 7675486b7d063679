"""Run ``litepose_node``'s main with a Ctrl-C / SIGTERM sent to this process at one exact step of
its start-up or its run, and print main's return value (``main returned N``).

Usage: node_signalled_mid_step.py SIGNAL STEP --ros-args ...
STEP: ``loading`` (while the model loads in the configure transition, the CI failure: rclpy's
handlers shut the context down and the activate transition failed with an ERROR) or
``processing`` (while the worker runs the network on an image).
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> int:
    signum = getattr(signal, sys.argv[1])
    step = sys.argv[2]
    import litepose_ros.ros.node as node_module

    def signal_once(function):
        sent = []

        def wrapper(*args, **kwargs):
            if not sent:
                sent.append(True)
                os.kill(os.getpid(), signum)  # delivered at once; its handler runs in the main thread
            return function(*args, **kwargs)

        return wrapper

    if step == "loading":
        node_module.load_estimator = signal_once(node_module.load_estimator)
    elif step == "processing":
        node_module.LitePoseNode._process = signal_once(node_module.LitePoseNode._process)
    else:
        raise SystemExit(f"unknown step {step!r}: loading or processing")
    code = node_module.main(sys.argv[3:])
    print(f"main returned {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
