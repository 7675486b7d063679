"""The node process tracks people: ids in the PersonArray, stable for a moving person, NO_ID while
tentative or with tracking off; the tracking parameters validated and changed at run time; the
markers and the annotated image coloured and labelled by id.

One node process (namespace /lp_track) runs the skeleton model of ``test/synthetic_onnx.py``: a
red blob is one person with a body-sized skeleton, so the tracker sees people as it would on a
camera. The publisher sends ``walk`` frames (one person walking right 6 px per frame), lock step.
"""

from __future__ import annotations

import numpy as np
import pytest
from ros_scripts.node_probe import NodeProbe, active_skeleton_node, run_publisher

from litepose_ros.drawing import person_color
from litepose_ros.people import NO_ID, person_rgb

pytestmark = pytest.mark.ros

NAMESPACE = "/lp_track"
MIN_HITS = 3  # the default tracking.min_hits


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    yield from active_skeleton_node(tmp_path_factory.mktemp("node_tracking"), NAMESPACE, annotated=True)


def stamp_of(message) -> tuple[int, int]:
    return message.header.stamp.sec, message.header.stamp.nanosec


def walk(probe: NodeProbe, frames: int, step: int = 6, *extra: str) -> list:
    """Send ``frames`` walk frames (``step`` pixels apart; 0: the person stands); the
    PersonArray of each, in order (all of them arrive)."""
    # The node subscribes when it activates: wait for that here (the publisher waits only 20 s).
    assert probe.wait_for(lambda: probe.node.count_subscribers(f"{NAMESPACE}/image") > 0, 30.0), (
        f"the node does not subscribe to the images:\n{probe.log_text()}"
    )
    sent = run_publisher(NAMESPACE, ",".join(["walk"] * frames), "--walk-step", str(step), *extra, rate=10.0)
    stamps = [(s["sec"], s["nanosec"]) for s in sent]

    def received() -> dict:
        return {stamp_of(m): m for m in probe.persons}

    assert probe.wait_for(lambda: set(stamps) <= set(received()), 15.0), probe.log_text()
    by_stamp = received()
    return [by_stamp[stamp] for stamp in stamps]


def ids_of(messages) -> list[list[int]]:
    return [[p.id for p in m.persons] for m in messages]


def test_a_walking_person_keeps_one_id_after_the_tentative_frames(probe):
    messages = walk(probe, 8)
    ids = ids_of(messages)
    assert all(len(frame) == 1 for frame in ids), ids  # the model sees the one person in every frame
    # Tentative for the first min_hits - 1 frames (NO_ID), then confirmed: one id, kept.
    assert [frame[0] for frame in ids[: MIN_HITS - 1]] == [NO_ID] * (MIN_HITS - 1), ids
    confirmed = {frame[0] for frame in ids[MIN_HITS - 1 :]}
    assert len(confirmed) == 1 and min(confirmed) >= 1, ids
    # The person really moved: boxes from the first to the last frame 7 x 6 px to the right.
    first, last = messages[0].persons[0], messages[-1].persons[0]
    assert last.x_min - first.x_min == pytest.approx(42.0, abs=2.0)
    assert probe.wait_for_diagnostic(lambda v: v["tracking"] == "on" and int(v["active tracks"]) >= 1, 10.0)


def test_markers_and_annotated_image_show_the_same_colour_and_the_id(probe):
    messages = walk(probe, MIN_HITS + 1)
    last = messages[-1]
    person = last.persons[0]
    assert person.id >= 1, ids_of(messages)
    stamp = stamp_of(last)
    assert probe.wait_for(
        lambda: (
            any(stamp_of(a.markers[0]) == stamp for a in probe.markers)
            and any(stamp_of(i) == stamp for i in probe.annotated)
        ),
        10.0,
    )
    markers = next(a for a in probe.markers if stamp_of(a.markers[0]) == stamp)
    joints = next(m for m in markers.markers if m.ns == "joints")
    label = next(m for m in markers.markers if m.ns == "labels")
    r, g, b = person_rgb(person.id)
    assert (joints.color.r, joints.color.g, joints.color.b) == pytest.approx((r, g, b))
    assert label.text == f"#{person.id} {person.score:.2f}"
    image = next(i for i in probe.annotated if stamp_of(i) == stamp)
    pixels = np.frombuffer(bytes(image.data), np.uint8).reshape(image.height, image.width, 3)
    # The last joint drawn (right ankle) is a filled dot of the person's colour, in BGR.
    ankle = person.keypoints[-1]
    drawn = pixels[int(round(ankle.y)), int(round(ankle.x))]
    assert tuple(int(c) for c in drawn) == person_color(person.id)
    assert person_color(person.id) != person_color(0)  # not the colour of rank 0: the id decided


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"tracking.low_score": 0.5}, "at most tracking.high_score"),  # above high_score (0.3)
        ({"tracking.min_hits": 0}, ""),  # outside the declared range
        ({"tracking.max_age": 0.0}, ""),
        ({"tracking.enabled": "yes"}, ""),  # wrong type
    ],
)
def test_invalid_tracking_parameters_are_rejected(probe, values, reason):
    name = next(iter(values))
    before = probe.get_parameters([name])[0]
    results = probe.set_parameters(values)
    assert not results[0].successful
    assert reason in results[0].reason
    assert probe.get_parameters([name])[0] == before


def test_tracking_off_gives_no_id_and_on_again_gives_new_ids_under_new_settings(probe):
    before = max(p.id for m in probe.persons for p in m.persons)
    assert before >= 1
    assert probe.set_parameters({"tracking.enabled": False})[0].successful
    try:
        messages = walk(probe, MIN_HITS + 2)
        assert all(p.id == NO_ID for m in messages for p in m.persons), ids_of(messages)
        stamp = stamp_of(messages[-1])
        assert probe.wait_for(lambda: any(stamp_of(a.markers[0]) == stamp for a in probe.markers), 10.0)
        markers = next(a for a in probe.markers if stamp_of(a.markers[0]) == stamp)
        assert all(not m.text.startswith("#") for m in markers.markers if m.ns == "labels")
        assert probe.wait_for_diagnostic(lambda v: v["tracking"] == "off", 10.0)
        # Both changes in one call: the new settings apply from the next image.
        results = probe.set_parameters({"tracking.enabled": True, "tracking.min_hits": 1})
        assert all(r.successful for r in results), [r.reason for r in results]
        messages = walk(probe, 3)
        ids = ids_of(messages)
        # min_hits 1: confirmed at once; a new id (the old tracks were forgotten, ids never reused).
        assert all(len(frame) == 1 for frame in ids), ids
        assert len({frame[0] for frame in ids}) == 1 and ids[0][0] > before, (ids, before)
    finally:
        probe.set_parameters({"tracking.enabled": True, "tracking.min_hits": MIN_HITS})


def test_deactivate_forgets_the_tracks_and_ids_are_never_reused(probe):
    from ros_scripts.node_probe import TRANSITIONS

    # Long max_age: the person's track survives the pauses between publisher runs.
    assert probe.set_parameters({"tracking.max_age": 60.0})[0].successful
    try:
        first = ids_of(walk(probe, MIN_HITS + 1, step=0))[-1][0]
        assert first >= 1
        # The same person still standing there a few seconds later: the same id.
        assert ids_of(walk(probe, 2, step=0)) == [[first], [first]]
        assert probe.change_state(TRANSITIONS["deactivate"]) and probe.change_state(TRANSITIONS["activate"])
        # Still standing there after the node was deactivated: a new track (tentative first), a new id.
        ids = ids_of(walk(probe, MIN_HITS, step=0))
        assert ids[: MIN_HITS - 1] == [[NO_ID]] * (MIN_HITS - 1) and ids[-1][0] > first, (ids, first)
    finally:
        probe.set_parameters({"tracking.max_age": 1.0})


def test_smoothing_moves_the_published_positions_but_never_the_scores(probe):
    raw = walk(probe, 6)[-1].persons[0]
    # Long max_age: a publisher stalled over 1 s on a loaded machine would otherwise end the track,
    # and the person of the last frame would be a new, tentative (unsmoothed) one (seen in CI).
    results = probe.set_parameters({"tracking.smoothing": True, "tracking.max_age": 60.0})
    assert all(r.successful for r in results), [r.reason for r in results]
    try:
        smoothed = walk(probe, 6)[-1].persons[0]
    finally:
        results = probe.set_parameters({"tracking.smoothing": False, "tracking.max_age": 1.0})
        assert all(r.successful for r in results), [r.reason for r in results]
    assert smoothed.id != NO_ID, "the walking person's track was not confirmed: nothing to smooth"
    # The same images: the smoothed person lags behind the one walking right.
    assert smoothed.x_min < raw.x_min - 0.5 and smoothed.keypoints[0].x < raw.keypoints[0].x - 0.5
    assert smoothed.keypoints[0].y == pytest.approx(raw.keypoints[0].y, abs=0.01)  # no vertical motion
    assert smoothed.score == raw.score
    assert [k.score for k in smoothed.keypoints] == [k.score for k in raw.keypoints]


def test_stamps_going_back_restart_the_tracks_with_a_warning(probe):
    before = ids_of(walk(probe, MIN_HITS, 0))
    assert before[-1][0] >= 1
    # The same standing person, stamped 100 s in the past (a bag played again): the tracker
    # forgets its tracks, says why (a WARN line on /rosout), and the person starts a new track.
    after = ids_of(walk(probe, MIN_HITS, 0, "--stamp-offset", "-100"))
    assert after[0] == [NO_ID] and after[-1][0] > before[-1][0], (before, after)
    entry = probe.wait_for_log("before the previous", 10.0)
    assert entry is not None and entry.level == 30, probe.log_text()  # WARN
    assert f"{NAMESPACE}/image" in entry.msg
