"""Depth images paired with colour images by stamp: the closest within the tolerance, bounded."""

from __future__ import annotations

import threading

import pytest

from litepose_ros.ros.depth_pairing import StampedBuffer

MS = 1_000_000  # nanoseconds


def test_the_closest_stamp_within_the_tolerance_is_chosen():
    buffer: StampedBuffer[str] = StampedBuffer(4)
    for stamp in (100, 133, 166):
        buffer.add(stamp * MS, f"depth@{stamp}")
    assert buffer.closest(140 * MS, 0.02) == ("depth@133", pytest.approx(0.007))
    assert buffer.closest(166 * MS, 0.0) == ("depth@166", 0.0)  # registered streams: equal stamps
    # Nothing close enough: no item, and how far the closest one was.
    item, difference = buffer.closest(300 * MS, 0.02)
    assert item is None and difference == pytest.approx(0.134)


def test_an_empty_buffer_has_nothing_and_no_difference():
    buffer: StampedBuffer[str] = StampedBuffer()
    assert buffer.closest(0, 1.0) == (None, None)
    buffer.add(5, "x")
    buffer.clear()
    assert len(buffer) == 0 and buffer.closest(5, 1.0) == (None, None)


def test_only_the_newest_items_are_kept():
    buffer: StampedBuffer[int] = StampedBuffer(3)
    for index in range(10):
        buffer.add(index * 33 * MS, index)
    assert len(buffer) == 3
    assert buffer.closest(0, 0.5) == (7, pytest.approx(7 * 0.033))  # 0..6 are gone


def test_filling_from_another_thread_while_reading_is_safe():
    buffer: StampedBuffer[int] = StampedBuffer(8)
    stop = threading.Event()

    def fill() -> None:
        stamp = 0
        while not stop.is_set():
            buffer.add(stamp, stamp)
            stamp += 1

    thread = threading.Thread(target=fill)
    thread.start()
    try:
        for _ in range(2000):
            item, difference = buffer.closest(10**12, 10.0**6)
            assert item is None or difference >= 0
    finally:
        stop.set()
        thread.join()
    assert len(buffer) == 8


def test_a_buffer_without_room_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        StampedBuffer(0)
