"""Ctrl-C and SIGTERM as a request to stop, for the programs that run ROS (the node, bag play).

rclpy's own handlers shut the ROS context down the moment a signal comes, wherever the program is:
what it was doing with ROS then fails (a publish raises "publisher's context is invalid", a
lifecycle transition logs an ERROR) and a clean stop ends with a traceback or an error; Python's
default KeyboardInterrupt can strike the main thread inside a lock a worker needs. These
programs note the signal instead, stop at their next check, and start rclpy with its handlers off
(``rclpy.init(signal_handler_options=SignalHandlerOptions.NO)``). Standard library only: the node's
entry point installs this before its heavy imports.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def note_stop_signals(on_signal: Callable[[int], None]) -> Callable[[], None]:
    """From now on, each Ctrl-C / SIGTERM calls ``on_signal(signal number)`` and does nothing else.

    Python runs it in the main thread between two bytecodes, so it must be short (note, set an
    event). Main thread only. Returns a function that puts the previous handlers back.
    """
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda number, _frame: on_signal(number))

    def restore() -> None:
        for signum, handler in previous.items():
            # None: installed outside Python, which cannot put it back: Python's default instead
            python_default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
            signal.signal(signum, python_default if handler is None else handler)

    return restore
