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


def test_a_watch_keeps_its_depth_image_after_the_buffer_has_moved_on():
    # A frame at 100 ms waits and is processed while a 90 Hz depth stream overflows the buffer: the
    # watch made when the frame arrived still has the depth image of its stamp.
    buffer: StampedBuffer[str] = StampedBuffer(3)
    buffer.add(89 * MS, "depth@89")  # held before the frame came: seen by the watch too
    watch = buffer.watch(100 * MS)
    for stamp in range(100, 400, 11):
        buffer.add(stamp * MS, f"depth@{stamp}")
    assert buffer.closest(100 * MS, 0.02) == (None, pytest.approx(0.275))  # gone from the buffer
    assert buffer.matched(watch, 0.02) == ("depth@100", 0.0)


def test_a_watch_sees_the_items_held_when_it_was_made_and_answers_like_closest():
    buffer: StampedBuffer[str] = StampedBuffer(4)
    assert buffer.matched(buffer.watch(0), 1.0) == (None, None)  # nothing seen yet
    for stamp in (100, 133, 166):
        buffer.add(stamp * MS, f"depth@{stamp}")
    watch = buffer.watch(140 * MS)
    expected = ("depth@133", pytest.approx(0.007))
    assert buffer.matched(watch, 0.02) == buffer.closest(140 * MS, 0.02) == expected
    far = buffer.watch(300 * MS)
    assert buffer.matched(far, 0.02) == (None, pytest.approx(0.134))  # too far: no item, the distance
    buffer.add(299 * MS, "depth@299")
    assert buffer.matched(far, 0.02) == ("depth@299", pytest.approx(0.001))
    # Equal distances: the earlier item, as closest does.
    tie = buffer.watch(149_500_000)  # 16.5 ms from 133 and from 166
    assert buffer.matched(tie, 1.0)[0] == buffer.closest(149_500_000, 1.0)[0] == "depth@133"


def test_watches_live_only_as_long_as_their_frames():
    import gc
    import weakref

    buffer: StampedBuffer[bytes] = StampedBuffer(2)
    frames = [{"watch": buffer.watch(stamp * MS)} for stamp in range(50)]
    assert buffer.watching() == 50
    released = weakref.ref(frames[0]["watch"])
    del frames[:49]  # dropped frames: their watches (and the depth images they hold) go with them
    gc.collect()
    assert released() is None and buffer.watching() == 1
    buffer.add(49 * MS, b"depth")
    assert buffer.matched(frames[0]["watch"], 0.0) == (b"depth", 0.0)


def test_watching_and_releasing_from_other_threads_while_filling_is_safe():
    buffer: StampedBuffer[int] = StampedBuffer(8)
    stop = threading.Event()
    errors: list[BaseException] = []

    def fill() -> None:
        stamp = 0
        while not stop.is_set():
            buffer.add(stamp, stamp)
            stamp += 1

    def watch_and_release() -> None:
        try:
            for index in range(3000):
                watch = buffer.watch(index)
                item, difference = buffer.matched(watch, 10.0**6)
                assert item is None or difference >= 0
                del watch  # released in this thread while the filler iterates the watches
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=fill), threading.Thread(target=watch_and_release)]
    for thread in threads:
        thread.start()
    threads[1].join()
    stop.set()
    threads[0].join()
    assert errors == []
    assert buffer.watching() == 0
