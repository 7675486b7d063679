"""litepose_ros.stop_signals: Ctrl-C / SIGTERM only call the given function, and the previous
handlers come back on restore (bag play is also a library call that must not leave its handlers)."""

from __future__ import annotations

import os
import signal

from litepose_ros.stop_signals import note_stop_signals


def test_signals_are_noted_and_the_previous_handlers_restored():
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    received: list[int] = []
    restore = note_stop_signals(received.append)
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # would end the test process with the default action
        os.kill(os.getpid(), signal.SIGINT)  # would raise KeyboardInterrupt with Python's default
    finally:
        restore()
    assert received == [signal.SIGTERM, signal.SIGINT]
    assert {signum: signal.getsignal(signum) for signum in before} == before
