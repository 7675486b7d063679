"""Person tracking (litepose_ros.tracking) on synthetic sequences with known identities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from litepose_ros.benchmarks.decode_speed import POSE_TEMPLATE
from litepose_ros.layouts import COCO_17, CROWDPOSE_14
from litepose_ros.tracking import NO_ID, FrameIds, PoseTracker, TrackerConfig, tracking_figures
from litepose_ros.tracking.kalman import BoxKalman
from litepose_ros.tracking.one_euro import one_euro_step

LAYOUT = COCO_17
TEMPLATE = np.array([POSE_TEMPLATE[name] for name in LAYOUT.keypoint_names])


def person(
    x: float,
    y: float,
    height: float,
    *,
    score: float = 0.9,
    joint_score: float = 0.8,
    rng: np.random.Generator | None = None,
    noise: float = 0.0,
):
    """(keypoints (K, 3), score, box (4,)) of a standing person whose head top is at (x, y)."""
    xy = TEMPLATE * height + [x, y]
    if rng is not None and noise:
        xy = xy + rng.normal(0.0, noise, xy.shape)
    keypoints = np.concatenate([xy, np.full((len(xy), 1), joint_score)], axis=1)
    margin = 0.05 * height
    box = np.array([xy[:, 0].min() - margin, y, xy[:, 0].max() + margin, y + height])
    return keypoints, score, box


def frame(people):
    """Tracker inputs for a list of people made by ``person``."""
    if not people:
        return np.zeros((0, LAYOUT.num_keypoints, 3)), np.zeros(0), np.zeros((0, 4))
    keypoints, scores, boxes = zip(*people, strict=True)
    return np.stack(keypoints), np.array(scores, np.float64), np.stack(boxes)


def run(tracker: PoseTracker, sequence, *, shuffle_seed: int | None = None):
    """Track ``sequence``: (stamp, {truth id: person}) items. Returns, per frame, {truth id: id}.
    With ``shuffle_seed`` the people come in a random order each frame."""
    rng = np.random.default_rng(shuffle_seed)
    history = []
    for stamp, people in sequence:
        truth_ids = list(people)
        if shuffle_seed is not None:
            rng.shuffle(truth_ids)
        result = tracker.update(stamp, *frame([people[i] for i in truth_ids]))
        assert result.notes == ()
        history.append(dict(zip(truth_ids, result.ids.tolist(), strict=True)))
    return history


def id_switches(history) -> int:
    """Times a truth identity's published id changes (NO_ID frames skipped), plus ids shared by
    two identities."""
    switches = 0
    last: dict[int, int] = {}
    owner: dict[int, int] = {}
    for assignment in history:
        for truth, track_id in assignment.items():
            if track_id == NO_ID:
                continue
            if truth in last and last[truth] != track_id:
                switches += 1
            if owner.setdefault(track_id, truth) != truth:
                switches += 1
            last[truth] = track_id
    return switches


def ids_of(history, truth: int) -> list[int]:
    return [assignment[truth] for assignment in history if truth in assignment]


def new_tracker(**settings) -> PoseTracker:
    return PoseTracker.for_layout(LAYOUT, TrackerConfig(**settings))


# --- identities on clean sequences ---------------------------------------------------------------


@pytest.mark.parametrize("shuffle_seed", [None, 3])
def test_two_people_crossing_keep_their_ids(shuffle_seed):
    # Same size, same height in the image, 10 px per frame each way: where they overlap only the
    # motion tells them apart (without prediction the last positions pull the ids across).
    rng = np.random.default_rng(0)
    sequence = []
    for i in range(60):  # 2 s at 30 Hz; they pass each other at 1 s, both visible throughout
        t = i / 30
        sequence.append(
            (
                t,
                {
                    1: person(100 + 300 * t, 100, 200, rng=rng, noise=1.5),
                    2: person(700 - 300 * t, 100, 200, rng=rng, noise=1.5),
                },
            )
        )
    history = run(new_tracker(), sequence, shuffle_seed=shuffle_seed)
    assert id_switches(history) == 0
    assert ids_of(history, 1)[-1] != ids_of(history, 2)[-1]
    assert NO_ID not in ids_of(history, 1)[2:]  # confirmed from the third frame on, never lost


def test_people_with_the_same_box_are_told_apart_by_their_poses():
    # One person right behind another, same box: one has the arms raised. The box cannot tell
    # them apart (equal IoU); the keypoints can.
    arms_up = person(200, 100, 200)
    raised = arms_up[0].copy()
    for name in ("left_elbow", "right_elbow", "left_wrist", "right_wrist"):
        j = LAYOUT.keypoint_names.index(name)
        raised[j, 1] = 100 + 200 * (0.2 - (POSE_TEMPLATE[name][1] - 0.2))  # mirrored above the shoulders
    sequence = [
        (i / 30, {1: person(200 + i, 100, 200), 2: (raised + [i, 0, 0], 0.9, arms_up[2] + [i, 0, i, 0])})
        for i in range(30)
    ]
    history = run(new_tracker(), sequence, shuffle_seed=7)
    assert id_switches(history) == 0


def test_person_walking_behind_another_keeps_id_through_the_gap():
    rng = np.random.default_rng(1)
    sequence, hidden_frames = [], 0
    for i in range(75):
        t = i / 30
        walker_x = 60 + 180 * t
        people = {1: person(300, 80, 240, rng=rng, noise=1.0)}  # stands in front
        if abs(walker_x - 300) > 50:  # behind the front person: not detected
            people[2] = person(walker_x, 100, 200, rng=rng, noise=1.0)
        else:
            hidden_frames += 1
        sequence.append((t, people))
    assert hidden_frames >= 8
    history = run(new_tracker(), sequence)
    walker_ids = [i for i in ids_of(history, 2) if i != NO_ID]
    assert len(set(walker_ids)) == 1
    assert id_switches(history) == 0


def test_people_entering_and_leaving_get_new_ids_never_reused():
    tracker = new_tracker(max_age=0.5)
    sequence = []
    for i in range(120):
        t = i / 30
        people = {}
        if i < 30:
            people[1] = person(100, 100, 200)
        if 60 <= i < 90:
            people[2] = person(100, 100, 200)  # the same place after person 1 left and was removed
        if i >= 75:
            people[3] = person(400, 90, 210)
        if i >= 110:  # person 2's place again, 0.67 s after they left: longer than max_age
            people[4] = person(100, 100, 200)
        sequence.append((t, people))
    history = run(tracker, sequence)
    first_ids = [next(i for i in ids_of(history, truth) if i != NO_ID) for truth in (1, 2, 3, 4)]
    assert first_ids == [1, 2, 3, 4]  # in order of confirmation, none reused
    assert id_switches(history) == 0


def test_dropped_frames_and_irregular_stamps_keep_ids():
    # Two people side by side walking the same way 120 px apart at 400 px/s: over the 0.3 s gap
    # each moves onto the other's old place, so only the stamps tell who is who.
    rng = np.random.default_rng(2)
    stamps = np.cumsum(rng.uniform(0.02, 0.07, 60))
    stamps = np.concatenate([stamps[:30], stamps[29] + 0.3 + stamps[30:] - stamps[30]])
    sequence = [
        (
            t,
            {
                1: person(100 + 400 * t, 100, 200, rng=rng, noise=1.0),
                2: person(220 + 400 * t, 100, 200, rng=rng, noise=1.0),
            },
        )
        for t in stamps
    ]
    history = run(new_tracker(), sequence)
    assert id_switches(history) == 0
    assert NO_ID not in ids_of(history, 1)[3:] and NO_ID not in ids_of(history, 2)[3:]


def test_frame_with_nobody_keeps_tracks():
    tracker = new_tracker()
    sequence = [(i / 30, {1: person(100 + 3 * i, 100, 200)}) for i in range(5)]
    history = run(tracker, sequence)
    before = history[-1][1]
    empty = tracker.update(5 / 30, np.zeros((0, LAYOUT.num_keypoints, 3)), np.zeros(0), np.zeros((0, 4)))
    assert empty.ids.shape == (0,) and empty.notes == ()
    assert tracker.update(6 / 30, [], [], []).ids.shape == (0,)  # any empty shape is nobody
    assert tracker.counts().lost == 1
    after = tracker.update(7 / 30, *frame([person(100 + 3 * 7, 100, 200)]))
    assert after.ids.tolist() == [before]


def test_low_score_person_continues_its_track_in_the_second_round():
    config = dict(high_score=0.5, low_score=0.1)
    tracker = new_tracker(**config)
    history = run(tracker, [(i / 30, {1: person(100 + 3 * i, 100, 200)}) for i in range(5)])
    track_id = history[-1][1]
    for i in range(5, 10):  # a bad stretch: the person scores 0.2
        result = tracker.update(i / 30, *frame([person(100 + 3 * i, 100, 200, score=0.2)]))
        assert result.ids.tolist() == [track_id]
    # A low-score person alone never starts a track.
    fresh = new_tracker(**config)
    for i in range(10):
        result = fresh.update(i / 30, *frame([person(100, 100, 200, score=0.2)]))
        assert result.ids.tolist() == [NO_ID]
    assert fresh.counts() == (0, 0, 0)


def test_high_score_people_are_matched_before_low_score_ones():
    # A low-score duplicate sits closer to the track's prediction than the real person: the
    # first round gives the track to the high-score person all the same.
    tracker = new_tracker(high_score=0.5, min_hits=1)
    track_id = tracker.update(0.0, *frame([person(100, 100, 200)])).ids[0]
    result = tracker.update(1 / 30, *frame([person(100, 100, 200, score=0.2), person(112, 100, 200)]))
    assert result.ids.tolist() == [NO_ID, track_id]


def test_tentative_until_min_hits_then_confirmed():
    tracker = new_tracker(min_hits=3)
    ids = [tracker.update(i / 30, *frame([person(100, 100, 200)])).ids[0] for i in range(4)]
    assert ids[:2] == [NO_ID, NO_ID]
    assert ids[2] == ids[3] == 1  # the first id handed out
    assert tracker.counts() == (0, 1, 0)
    # A tentative track dies at its first miss: the count starts again.
    other = new_tracker(min_hits=3)
    for stamp, people in [
        (0.0, [person(100, 100, 200)]),
        (0.1, []),
        (0.2, [person(100, 100, 200)]),
        (0.3, [person(100, 100, 200)]),
    ]:
        result = other.update(stamp, *frame(people))
    assert result.ids.tolist() == [NO_ID]
    assert other.counts() == (1, 0, 0)


@pytest.mark.parametrize(("gap", "same_id"), [(0.9, True), (1.2, False)])
def test_lost_track_kept_for_max_age_seconds_then_removed(gap, same_id):
    tracker = new_tracker(max_age=1.0)
    first = run(tracker, [(i / 30, {1: person(100, 100, 200)}) for i in range(5)])[-1][1]
    tracker.update(4 / 30 + 0.5, *frame([]))
    assert tracker.counts() == (0, 0, 1)  # lost, still kept
    later = tracker.update(4 / 30 + gap, *frame([person(100, 100, 200)])).ids[0]
    if same_id:
        assert later == first
    else:
        assert later == NO_ID  # a new, tentative track
        assert tracker.counts() == (1, 0, 0)
        ids = [tracker.update(4 / 30 + gap + i / 30, *frame([person(100, 100, 200)])).ids[0] for i in (1, 2)]
        assert ids[-1] == first + 1


def test_reset_forgets_tracks_but_ids_continue():
    tracker = new_tracker(min_hits=1)
    first = tracker.update(0.0, *frame([person(100, 100, 200)])).ids[0]
    tracker.reset()
    assert tracker.counts() == (0, 0, 0)
    # Same place, earlier stamp: after a reset neither is a problem, and the id is new.
    result = tracker.update(-5.0, *frame([person(100, 100, 200)]))
    assert result.ids.tolist() == [first + 1] and result.notes == ()


def test_configure_changes_settings_and_keeps_tracks():
    tracker = new_tracker()
    history = run(tracker, [(i / 30, {1: person(200, 100, 200)}) for i in range(5)])
    tracker.configure(TrackerConfig(smoothing=True, max_age=2.0))
    keypoints, scores, boxes = frame([person(200, 100, 200)])
    moved = keypoints + [5.0, 0.0, 0.0]
    first = tracker.update(5 / 30, moved, scores, boxes)  # the filters start here: raw positions
    assert first.ids.tolist() == [history[-1][1]]
    assert np.array_equal(first.keypoints, moved)
    second = tracker.update(6 / 30, keypoints, scores, boxes)  # now smoothed: not back at once
    assert np.all(second.keypoints[0, :, 0] > keypoints[0, :, 0])


# --- bad inputs ----------------------------------------------------------------------------------


def test_time_going_back_clears_tracks_with_a_note():
    tracker = new_tracker()
    first = run(tracker, [(10 + i / 30, {1: person(100, 100, 200)}) for i in range(5)])[-1][1]
    result = tracker.update(3.0, *frame([person(100, 100, 200)]))
    assert len(result.notes) == 1 and "time went back" in result.notes[0]
    assert result.ids.tolist() == [NO_ID]
    ids = [tracker.update(3.0 + i / 30, *frame([person(100, 100, 200)])).ids[0] for i in (1, 2, 3)]
    assert ids[-1] == first + 1  # a new id: never reused after the reset


def test_nan_box_gets_no_id_and_nan_keypoints_are_missing_joints():
    tracker = new_tracker(min_hits=1)
    people = [person(100, 100, 200), person(400, 100, 200)]
    ids = tracker.update(0.0, *frame(people)).ids.tolist()
    keypoints, scores, boxes = frame([person(103, 100, 200), person(403, 100, 200), person(700, 100, 200)])
    keypoints[0, :5] = np.nan  # part of a pose
    keypoints[1, :, :2] = np.nan  # the whole pose: matched by box
    boxes[2, 1] = np.nan
    result = tracker.update(1 / 30, keypoints, scores, boxes)
    assert result.ids.tolist() == [*ids, NO_ID]
    assert len(result.notes) == 3
    assert "person 0: 5 keypoint(s)" in result.notes[0]
    assert "person 2: box" in result.notes[2] and "not tracked" in result.notes[2]
    assert np.array_equal(result.keypoints, keypoints, equal_nan=True)


@pytest.mark.parametrize(
    ("keypoints", "scores", "boxes", "message"),
    [
        (np.zeros((2, 14, 3)), np.zeros(2), np.zeros((2, 4)), r"keypoints must have shape \(N, 17, 3\)"),
        (np.zeros((2, 17, 2)), np.zeros(2), np.zeros((2, 4)), r"keypoints must have shape"),
        (np.zeros((2, 17, 3)), np.zeros(3), np.zeros((2, 4)), r"scores must have shape \(2,\)"),
        (np.zeros((2, 17, 3)), np.zeros(2), np.zeros((2, 5)), r"boxes must have shape \(2, 4\)"),
    ],
)
def test_wrong_shapes_raise_value_error_naming_the_problem(keypoints, scores, boxes, message):
    with pytest.raises(ValueError, match=message):
        new_tracker().update(0.0, keypoints, scores, boxes)


def test_non_finite_stamp_raises():
    with pytest.raises(ValueError, match="stamp"):
        new_tracker().update(math.nan, *frame([]))


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        ({"high_score": 1.5}, "high_score"),
        ({"low_score": 0.6, "high_score": 0.5}, "low_score"),
        ({"min_hits": 0}, "min_hits"),
        ({"min_hits": 2.5}, "min_hits"),
        ({"max_age": 0.0}, "max_age"),
        ({"min_oks": -0.1}, "min_oks"),
        ({"acceleration_noise": math.nan}, "acceleration_noise"),
        ({"smoothing": 1}, "smoothing"),
        ({"smoothing_beta": -1.0}, "smoothing_beta"),
        ({"min_shared_keypoints": 0}, "min_shared_keypoints"),
    ],
)
def test_config_validation_names_the_bad_setting(settings, name):
    with pytest.raises(ValueError, match=rf"TrackerConfig\.{name} "):
        TrackerConfig(**settings)


def test_sigmas_must_match_the_layout():
    tracker = PoseTracker.for_layout(CROWDPOSE_14)
    assert tracker.num_keypoints == 14
    with pytest.raises(ValueError, match="sigmas"):
        PoseTracker([0.1, -0.2])


# --- smoothing -----------------------------------------------------------------------------------


def noisy_static_sequence(seed: int, frames: int = 60):
    rng = np.random.default_rng(seed)
    return [(i / 30, frame([person(200, 100, 200, rng=rng, noise=3.0)])) for i in range(frames)]


def test_smoothing_off_gives_the_input_keypoints_bit_for_bit():
    tracker = new_tracker()
    for stamp, (keypoints64, scores, boxes) in noisy_static_sequence(0, 20):
        keypoints = keypoints64.astype(np.float32)
        result = tracker.update(stamp, keypoints, scores, boxes)
        assert result.keypoints.dtype == np.float32
        assert np.array_equal(result.keypoints, keypoints)
        assert result.keypoints is not keypoints


def test_smoothing_reduces_jitter_of_a_static_person_and_keeps_scores():
    raw, smoothed = [], []
    tracker = new_tracker(smoothing=True)
    for stamp, (keypoints, scores, boxes) in noisy_static_sequence(1):
        keypoints[0, :, 2] = np.linspace(0.2, 0.9, LAYOUT.num_keypoints)
        result = tracker.update(stamp, keypoints, scores, boxes)
        assert np.array_equal(result.keypoints[..., 2], keypoints[..., 2])
        raw.append(keypoints[0, :, :2])
        smoothed.append(result.keypoints[0, :, :2])
    raw_jitter = np.std(np.array(raw)[20:], axis=0).mean()
    smoothed_jitter = np.std(np.array(smoothed)[20:], axis=0).mean()
    assert smoothed_jitter < 0.5 * raw_jitter


def test_smoothing_follows_a_moving_person_and_leaves_ids_alone():
    sequence = [(i / 30, {1: person(100 + 150 * i / 30, 100, 200)}) for i in range(45)]
    smooth, plain = new_tracker(smoothing=True), new_tracker()
    lag = []
    for stamp, people in sequence:
        inputs = frame(list(people.values()))
        a, b = smooth.update(stamp, *inputs), plain.update(stamp, *inputs)
        assert a.ids.tolist() == b.ids.tolist()
        lag.append(np.abs(a.keypoints[0, :, 0] - inputs[0][0, :, 0]).max())
    assert max(lag[30:]) < 5.0  # pixels, at 150 px/s: the speed term opens the filter


# --- determinism, filters, figures ---------------------------------------------------------------


def test_tracking_is_deterministic():
    rng = np.random.default_rng(5)
    sequence = []
    for i in range(40):
        people = [
            person(x + 4 * i, y, h, rng=rng, noise=2.0)
            for x, y, h in zip(
                rng.uniform(0, 600, 6), rng.uniform(0, 200, 6), rng.uniform(150, 250, 6), strict=True
            )
        ]
        sequence.append((i / 30, frame(people)))
    outputs = []
    for _ in range(2):
        tracker = new_tracker(smoothing=True)
        outputs.append([tracker.update(stamp, *inputs) for stamp, inputs in sequence])
    for a, b in zip(*outputs, strict=True):
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.keypoints, b.keypoints)


def test_kalman_learns_a_constant_velocity_and_one_euro_holds_a_constant():
    kalman = BoxKalman.start(np.array([[100.0, 50.0, 40.0, 100.0]]), 0.05)
    for i in range(1, 30):
        kalman.predict(0.05, 2.0)
        kalman.update(np.array([0]), np.array([[100 + 200 * 0.05 * i, 50.0, 40.0, 100.0]]), 0.05)
    assert kalman.velocity[0, 0] == pytest.approx(200.0, rel=0.02)
    assert abs(kalman.velocity[0, 1]) < 1.0
    value = np.array([[3.0, 4.0]])
    filtered, rate = one_euro_step(
        value, value, np.zeros((1, 2)), np.array([0.03]), min_cutoff=1.0, beta=0.05, d_cutoff=1.0
    )
    assert np.array_equal(filtered, value) and np.array_equal(rate, np.zeros((1, 2)))


def test_figures_without_truth_hand_computed():
    results = [
        FrameIds(0.0, np.array([1, 2])),
        FrameIds(0.1, np.array([1, NO_ID])),
        FrameIds(0.2, np.array([1])),
        FrameIds(0.4, np.array([3, 1])),
    ]
    figures = tracking_figures(results)
    assert figures.frames == 4 and figures.tracks_started == 3
    assert figures.mean_track_frames == pytest.approx((4 + 1 + 1) / 3)
    assert figures.median_track_frames == 1.0
    assert figures.mean_track_seconds == pytest.approx(0.4 / 3)
    assert figures.id_switches is None and figures.idf1 is None


def box_at(x: float) -> list[float]:
    return [x, 0.0, x + 50.0, 100.0]


def test_figures_against_truth_hand_computed_swap():
    # Two true people, 4 frames; the tracker swaps their ids after frame 1.
    truth = [FrameIds(i / 10, np.array([1, 2]), np.array([box_at(0), box_at(200)])) for i in range(4)]
    results = [
        FrameIds(i / 10, np.array([10, 20] if i < 2 else [20, 10]), np.array([box_at(2), box_at(198)]))
        for i in range(4)
    ]
    figures = tracking_figures(results, truth)
    assert figures.truth_tracks == 2
    assert figures.id_switches == 2
    assert figures.mota == pytest.approx(1 - 2 / 8)  # 8 truth objects, no misses or false positives
    assert figures.idf1 == pytest.approx(2 * 4 / (8 + 4 + 4))  # IDTP 4, IDFP 4, IDFN 4


def test_figures_against_truth_miss_false_positive_and_untracked():
    truth = [FrameIds(i / 10, np.array([1]), np.array([box_at(0)])) for i in range(3)]
    results = [
        FrameIds(0.0, np.array([5]), np.array([box_at(0)])),
        FrameIds(0.1, np.array([5, 7]), np.array([box_at(1), box_at(400)])),  # 7: false positive
        FrameIds(0.2, np.array([NO_ID]), np.array([box_at(0)])),  # untracked: a miss
    ]
    figures = tracking_figures(results, truth)
    assert figures.id_switches == 0
    assert figures.mota == pytest.approx(1 - (1 + 1) / 3)
    assert figures.idf1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # IDTP 2, IDFP 1, IDFN 1


def test_figures_of_a_tracked_crossing():
    rng = np.random.default_rng(4)
    tracker = new_tracker()
    results, truth = [], []
    for i in range(60):
        t = i / 30
        people = [person(100 + 300 * t, 100, 200, rng=rng, noise=1.5), person(700 - 300 * t, 100, 200)]
        keypoints, scores, boxes = frame(people)
        ids = tracker.update(t, keypoints, scores, boxes).ids
        results.append(FrameIds(t, ids, boxes, keypoints))
        truth.append(FrameIds(t, np.array([1, 2]), boxes, keypoints))
    figures = tracking_figures(results, truth, sigmas=LAYOUT.sigmas_array())
    assert figures.tracks_started == 2 and figures.median_track_frames == 58  # tentative for 2 frames
    assert figures.id_switches == 0
    assert figures.mota == pytest.approx(116 / 120)  # the two tentative frames are misses
    assert figures.idf1 == pytest.approx(2 * 116 / (116 * 2 + 4))


def test_figures_pair_by_oks_when_keypoints_are_given():
    keypoints, _, box = person(100, 100, 200)
    far = keypoints.copy()
    far[:, 0] += 25  # the boxes overlap enough (IoU 0.57) but the poses do not (OKS 0.37)
    truth = [FrameIds(0.0, np.array([1]), box[None], keypoints[None])]
    results = [FrameIds(0.0, np.array([4]), box[None] + [25, 0, 25, 0], far[None])]
    assert tracking_figures(results, truth).mota == pytest.approx(1.0)
    assert tracking_figures(results, truth, sigmas=LAYOUT.sigmas_array()).mota == pytest.approx(-1.0)
