"""Multi-person tracker: stable ids for the people of successive frames (no ROS).

Each frame's people are associated with the existing tracks by optimal assignment
(``scipy.optimize.linear_sum_assignment``) in two rounds, as ByteTrack does: people scoring at
least ``high_score`` against all tracks first, then people between ``low_score`` and
``high_score`` against the tracks still unmatched. Low-score people never start a track: they
only keep existing tracks alive through a bad frame (motion blur, partial occlusion); such a
match counts as a hit like any other. People below ``low_score`` are not tracked (``NO_ID``).

The similarity of a track and a person is the OKS of the person's keypoints against the track's
predicted pose, over the joints confident in both (at least ``min_shared_keypoints``), and the
IoU of the boxes otherwise (people with few joints). A pair below ``min_oks`` / ``min_iou`` is
never matched. The prediction is a constant-velocity Kalman filter on box centre and size
(``kalman.BoxKalman``); the pose is the last matched keypoints moved and scaled with the box.

Time comes from the image stamps, not frame counts: the filter predicts over the real interval,
so dropped frames and irregular rates only widen the prediction. Track life:

- tentative: started by an unmatched high-score person; its people get ``NO_ID``; removed at the
  first frame it is not matched;
- confirmed after ``min_hits`` matches: it gets its id, the next of a counter that starts at 1
  and only increases for the tracker's life (``reset`` and time going back included), so an id is
  never reused and ids count the people confirmed;
- lost while unmatched: still predicted forward and matched again, removed once more than
  ``max_age`` seconds have passed since its last match.

Keypoint smoothing (``smoothing``, off by default) runs a One-Euro filter on each joint's x and y
of each tracked person: it changes the published positions (less jitter, some lag on fast
motion); scores are never changed. The tracker's own poses are always the raw keypoints.

Bad inputs: wrong shapes raise ``ValueError``; everything else is handled and described in
``TrackedPeople.notes`` (strings, for the caller to log) rather than through the ``warnings``
module, whose filters are process-wide and not thread-safe (the node tracks in a worker thread):

- a person with a non-finite or negative-size box, or a non-finite score, gets no id and does not
  take part in matching; keypoints with NaN coordinates or scores count as missing joints;
- an image stamp earlier than the previous one (bag played in a loop, simulated clock restarted)
  clears every track (as ``reset``) and the frame starts new ones; ids continue from the counter;
- a frame with nobody is normal (an empty room) and gives no note: tracks are predicted to its
  stamp and lost ones age;
- a stamp equal to the previous one is processed as a frame 0 s later (a matched person counts
  one more hit); a non-finite stamp raises ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from litepose_ros.layouts import KeypointLayout
from litepose_ros.tracking.kalman import MIN_HEIGHT, BoxKalman, boxes_to_measurements, measurements_to_boxes
from litepose_ros.tracking.one_euro import one_euro_step

# Person.NO_ID in the messages: a person without a (confirmed) track.
NO_ID = -1
# Cost of a pair that the gates forbid; any real cost (1 - similarity) is at most 1.
_FORBIDDEN = 1e6


@dataclass(frozen=True)
class TrackerConfig:
    """Every tracker setting. Times in seconds, scores on the decoder's scale (0..1)."""

    high_score: float = 0.3  # people scoring this or more are matched first and start tracks
    low_score: float = 0.1  # people from here to high_score only continue tracks (2nd round)
    keypoint_score: float = 0.1  # a joint at or above this is confident (used by OKS)
    min_shared_keypoints: int = 3  # OKS needs this many joints confident in both; IoU otherwise
    min_oks: float = 0.1  # gate: pairs with a lower OKS are never matched
    min_iou: float = 0.1  # gate: pairs (compared by box) with a lower IoU are never matched
    min_hits: int = 3  # matches before a track is confirmed and gets an id
    max_age: float = 1.0  # seconds a track is kept without a match (predicted, matchable)
    acceleration_noise: float = 2.0  # Kalman process noise, box heights per second squared
    measurement_noise: float = 0.05  # Kalman measurement noise, box heights
    smoothing: bool = False  # One-Euro smoothing of published keypoints (changes positions)
    smoothing_min_cutoff: float = 1.0  # Hz: cutoff for a still joint (lower: smoother, more lag)
    smoothing_beta: float = 0.05  # Hz per pixel/s: how fast the cutoff rises with joint speed
    smoothing_d_cutoff: float = 1.0  # Hz: cutoff of the speed estimate

    def __post_init__(self) -> None:
        def require(name: str, ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"TrackerConfig.{name} must be {what}, got {getattr(self, name)!r}")

        def number(name: str) -> float:
            value = getattr(self, name)
            require(
                name,
                isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
                "a finite number",
            )
            return float(value)

        for name in ("high_score", "low_score", "keypoint_score", "min_oks", "min_iou"):
            require(name, 0.0 <= number(name) <= 1.0, "between 0 and 1")
        require("low_score", self.low_score <= self.high_score, f"at most high_score ({self.high_score})")
        for name in ("min_shared_keypoints", "min_hits"):
            value = getattr(self, name)
            require(
                name,
                isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                "an integer of at least 1",
            )
        for name in ("max_age", "measurement_noise", "smoothing_min_cutoff", "smoothing_d_cutoff"):
            require(name, number(name) > 0.0, "positive")
        for name in ("acceleration_noise", "smoothing_beta"):
            require(name, number(name) >= 0.0, "zero or positive")
        require("smoothing", isinstance(self.smoothing, bool), "True or False")


class TrackCounts(NamedTuple):
    tentative: int
    confirmed: int  # matched in the last frame
    lost: int  # confirmed, not matched in the last frame, still kept

    @property
    def active(self) -> int:
        """Tracks that have an id (confirmed or lost)."""
        return self.confirmed + self.lost


@dataclass(frozen=True)
class TrackedPeople:
    """The tracker's answer for one frame, person by person in the input order."""

    ids: np.ndarray  # (N,) int64: track id, NO_ID for tentative or untracked people
    keypoints: np.ndarray  # (N, K, 3): the input values; x, y smoothed when smoothing is on
    notes: tuple[str, ...] = ()  # what was wrong with the input and what was done about it


@dataclass
class _Tracks:
    """All tracks as parallel arrays (one row per track), so that each step is array operations."""

    kalman: BoxKalman
    anchor: np.ndarray  # (T, 4) Kalman centre and size just after the last match
    pose: np.ndarray  # (T, K, 2) keypoints of the last match
    pose_confident: np.ndarray  # (T, K) bool
    track_id: np.ndarray  # (T,) int64, NO_ID while tentative
    hits: np.ndarray  # (T,) int64 matches so far
    last_match: np.ndarray  # (T,) stamp of the last match
    smooth_xy: np.ndarray  # (T, K, 2) One-Euro state: filtered coordinates,
    smooth_rate: np.ndarray  # (T, K, 2) filtered rate (pixels per second),
    smooth_valid: np.ndarray  # (T, K) bool: whether the state holds a value

    @classmethod
    def empty(cls, num_keypoints: int) -> _Tracks:
        k = num_keypoints
        return cls(
            BoxKalman.empty(),
            np.zeros((0, 4)),
            np.zeros((0, k, 2)),
            np.zeros((0, k), bool),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0),
            np.zeros((0, k, 2)),
            np.zeros((0, k, 2)),
            np.zeros((0, k), bool),
        )

    def __len__(self) -> int:
        return len(self.track_id)

    def select(self, index: np.ndarray) -> _Tracks:
        return _Tracks(
            **{
                f.name: getattr(self, f.name).select(index)
                if f.name == "kalman"
                else getattr(self, f.name)[index]
                for f in fields(self)
            }
        )

    def concatenate(self, other: _Tracks) -> _Tracks:
        return _Tracks(
            **{
                f.name: getattr(self, f.name).concatenate(other.kalman)
                if f.name == "kalman"
                else np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                for f in fields(self)
            }
        )


@dataclass
class _Frame:
    """One frame's people, checked and cleaned for matching."""

    count: int
    usable: np.ndarray  # (N,) bool: finite box of non-negative size and finite score
    measurement: np.ndarray  # (N, 4) box centre and size (garbage where not usable)
    xy: np.ndarray  # (N, K, 2) keypoints, 0 where not finite
    x: np.ndarray  # (N, K) the same x and y, each contiguous (for the cost matrix)
    y: np.ndarray
    confident: np.ndarray  # (N, K) bool: finite and score >= keypoint_score
    smoothable: np.ndarray  # (N, K) bool: finite and score > 0
    notes: list[str] = field(default_factory=list)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) IoU of corner boxes (A, 4) and (B, 4)."""
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = np.clip(high - low, 0.0, None)
    intersection = overlap[:, :, 0] * overlap[:, :, 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def pose_similarity(
    track_x: np.ndarray,
    track_y: np.ndarray,
    track_confident: np.ndarray,
    track_area: np.ndarray,
    *,
    people_x: np.ndarray,
    people_y: np.ndarray,
    people_confident: np.ndarray,
    sigmas: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(T, N) OKS of people against track poses over the joints confident in both, and (T, N) the
    number of such joints. Poses come as x and y arrays, (T, K) and (N, K). The scale is the
    track's predicted box area (COCO uses the segment area, a little smaller: this OKS is slightly
    more lenient). A joint term below exp(-30) counts as exp(-30) (1e-13: no effect on any
    gate), because exp is many times slower where it underflows, and far pairs always do."""
    # COCO's OKS term: exp(-d^2 / (2 s^2 (2 sigma)^2)) with s^2 the area.
    negative_inverse_scale = -1.0 / (8.0 * np.maximum(track_area, 1.0)[:, None] * sigmas[None, :] ** 2)
    exponent = track_x[:, None, :] - people_x[None, :, :]
    dy = track_y[:, None, :] - people_y[None, :, :]
    exponent *= exponent
    dy *= dy
    exponent += dy
    exponent *= negative_inverse_scale[:, None, :]
    np.maximum(exponent, -30.0, out=exponent)
    terms = np.exp(exponent, out=exponent)
    terms *= track_confident[:, None, :] & people_confident[None, :, :]
    shared_count = track_confident.astype(np.float64) @ people_confident.T.astype(np.float64)
    return terms.sum(axis=2) / np.maximum(shared_count, 1.0), shared_count


class PoseTracker:
    """Gives each person of successive frames the id of their track; see the module docstring.
    One tracker per image stream, called from one thread at a time (it holds no lock)."""

    def __init__(
        self, sigmas: Sequence[float] | np.ndarray, config: TrackerConfig | None = None, *, first_id: int = 1
    ) -> None:
        self.sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
        if self.sigmas.size == 0 or not np.all(np.isfinite(self.sigmas) & (self.sigmas > 0)):
            raise ValueError(f"sigmas must be positive numbers, one per keypoint, got {sigmas!r}")
        if isinstance(first_id, bool) or not isinstance(first_id, int) or first_id < 1:
            raise ValueError(f"first_id must be an integer of at least 1, got {first_id!r}")
        self.config = config or TrackerConfig()
        self._next_id = first_id
        self.reset()

    @classmethod
    def for_layout(
        cls, layout: KeypointLayout, config: TrackerConfig | None = None, *, first_id: int = 1
    ) -> PoseTracker:
        return cls(layout.sigmas_array(), config, first_id=first_id)

    @property
    def next_id(self) -> int:
        """The id the next confirmed track gets (a tracker that replaces this one, e.g. for
        another keypoint layout, starts there so that no id is ever reused)."""
        return self._next_id

    @property
    def num_keypoints(self) -> int:
        return self.sigmas.size

    def reset(self) -> None:
        """Forget every track and the time; ids continue from the counter (never reused)."""
        self._tracks = _Tracks.empty(self.num_keypoints)
        self._last_stamp: float | None = None

    def configure(self, config: TrackerConfig) -> None:
        """New settings from the next frame on (tracks kept). Turning smoothing on starts the
        filters afresh: a filter state left from an earlier period is stale."""
        if config.smoothing and not self.config.smoothing:
            self._tracks.smooth_valid[:] = False
        self.config = config

    def counts(self) -> TrackCounts:
        confirmed = self._tracks.track_id != NO_ID
        matched_now = self._tracks.last_match == self._last_stamp
        return TrackCounts(
            tentative=int((~confirmed).sum()),
            confirmed=int((confirmed & matched_now).sum()),
            lost=int((confirmed & ~matched_now).sum()),
        )

    # -------------------------------------------------------------------------------------------

    def update(
        self, stamp: float, keypoints: np.ndarray, scores: np.ndarray, boxes: np.ndarray
    ) -> TrackedPeople:
        """Track one frame: ``stamp`` (seconds), ``keypoints`` (N, K, 3) x, y, score in pixels,
        person ``scores`` (N,), ``boxes`` (N, 4) x0, y0, x1, y1. Returns ids in the input order."""
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"stamp must be a finite number of seconds, got {stamp!r}")
        keypoints, scores, boxes = self._check_shapes(keypoints, scores, boxes)
        frame = self._clean(keypoints, scores, boxes)
        config = self.config

        if self._last_stamp is not None and stamp < self._last_stamp:
            frame.notes.append(
                f"image stamp {stamp:.6f} s is {self._last_stamp - stamp:.6f} s before the "
                f"previous one (time went back: bag loop or clock reset); all tracks "
                f"cleared, ids continue from {self._next_id}"
            )
            self.reset()
        dt = 0.0 if self._last_stamp is None else stamp - self._last_stamp
        self._last_stamp = stamp

        tracks = self._tracks
        # Tracks unmatched for longer than max_age go before they can be matched again.
        expired = stamp - tracks.last_match > config.max_age
        if expired.any():
            tracks = tracks.select(~expired)
        tracks.kalman.predict(dt, config.acceleration_noise)

        ids = np.full(frame.count, NO_ID, np.int64)
        people = np.flatnonzero(frame.usable & (scores >= config.low_score))
        high = scores[people] >= config.high_score
        track_rows, person_rows = self._associate(tracks, frame, people, high)
        matched_people = people[person_rows]

        output = keypoints.copy()
        if len(track_rows):
            if config.smoothing:
                smoothed = self._smooth(tracks, track_rows, frame, matched_people, stamp)
                # Joints without a usable value (NaN, score 0) keep their input values.
                output[matched_people, :, :2] = np.where(
                    frame.smoothable[matched_people][:, :, None], smoothed, output[matched_people, :, :2]
                )
            self._record_matches(tracks, track_rows, frame, matched_people, stamp)

        # Tentative tracks die at their first miss; confirmed ones are kept (lost) until max_age.
        unmatched = np.ones(len(tracks), bool)
        unmatched[track_rows] = False
        keep = ~(unmatched & (tracks.track_id == NO_ID))
        ids[matched_people] = tracks.track_id[track_rows]

        # High-score people left over start tentative tracks.
        starting = np.ones(frame.count, bool)
        starting[matched_people] = False
        new_people = people[high & starting[people]]
        if not keep.all():
            tracks = tracks.select(keep)
        if len(new_people):
            started = self._start_tracks(frame, new_people, stamp)
            ids[new_people] = started.track_id
            tracks = tracks.concatenate(started)
        self._tracks = tracks
        return TrackedPeople(ids=ids, keypoints=output, notes=tuple(frame.notes))

    # -------------------------------------------------------------------------------------------

    def _check_shapes(self, keypoints, scores, boxes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        keypoints, scores, boxes = np.asarray(keypoints), np.asarray(scores), np.asarray(boxes)
        k = self.num_keypoints
        if keypoints.size == 0 and scores.size == 0 and boxes.size == 0:  # nobody, in any empty shape
            dtype = keypoints.dtype if keypoints.dtype.kind == "f" else np.float64
            return np.zeros((0, k, 3), dtype), np.zeros(0), np.zeros((0, 4))
        if keypoints.ndim != 3 or keypoints.shape[1:] != (k, 3):
            raise ValueError(
                f"keypoints must have shape (N, {k}, 3) (x, y, score of {k} joints, as many "
                f"as the sigmas), got {keypoints.shape}"
            )
        n = keypoints.shape[0]
        if scores.shape != (n,):
            raise ValueError(
                f"scores must have shape ({n},), one per person of keypoints, got {scores.shape}"
            )
        if boxes.shape != (n, 4):
            raise ValueError(f"boxes must have shape ({n}, 4) (x0, y0, x1, y1 per person), got {boxes.shape}")
        if keypoints.dtype.kind != "f":  # integer pixels: smoothed values need a float array
            keypoints = keypoints.astype(np.float64)
        return keypoints, scores.astype(np.float64, copy=False), boxes.astype(np.float64, copy=False)

    def _clean(self, keypoints: np.ndarray, scores: np.ndarray, boxes: np.ndarray) -> _Frame:
        notes: list[str] = []
        finite_joint = np.isfinite(keypoints).all(axis=2)
        bad_joints = ~finite_joint
        if bad_joints.any():
            for person in np.flatnonzero(bad_joints.any(axis=1)).tolist():
                notes.append(
                    f"person {person}: {int(bad_joints[person].sum())} keypoint(s) with NaN or "
                    f"infinite values, treated as missing"
                )
        width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        with np.errstate(invalid="ignore"):
            usable = np.isfinite(boxes).all(axis=1) & np.isfinite(scores) & (width >= 0) & (height >= 0)
        for person in np.flatnonzero(~usable).tolist():
            notes.append(
                f"person {person}: box {boxes[person].tolist()} or score {scores[person]!r} is not "
                f"finite or the box has negative size; not tracked (no id)"
            )
        joint_score = np.where(finite_joint, keypoints[:, :, 2], 0.0)
        measurement = boxes_to_measurements(np.where(usable[:, None], boxes, 0.0))
        np.maximum(measurement[:, 2:], MIN_HEIGHT, out=measurement[:, 2:])
        xy = np.where(finite_joint[:, :, None], keypoints[:, :, :2], 0.0).astype(np.float64, copy=False)
        return _Frame(
            count=len(scores),
            usable=usable,
            measurement=measurement,
            xy=xy,
            x=np.ascontiguousarray(xy[:, :, 0]),
            y=np.ascontiguousarray(xy[:, :, 1]),
            confident=finite_joint & (joint_score >= self.config.keypoint_score),
            smoothable=finite_joint & (joint_score > 0),
            notes=notes,
        )

    def _associate(
        self, tracks: _Tracks, frame: _Frame, people: np.ndarray, high: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Matched (track row, index into ``people``) pairs of the two rounds."""
        empty = np.zeros(0, np.int64)
        if len(tracks) == 0 or len(people) == 0:
            return empty, empty
        config = self.config
        position = tracks.kalman.position
        # Predicted pose: the last keypoints moved and scaled with the box since that match.
        anchor = tracks.anchor
        scale = position[:, 2:] / np.maximum(anchor[:, 2:], MIN_HEIGHT)
        predicted_x = (tracks.pose[:, :, 0] - anchor[:, 0:1]) * scale[:, 0:1] + position[:, 0:1]
        predicted_y = (tracks.pose[:, :, 1] - anchor[:, 1:2]) * scale[:, 1:2] + position[:, 1:2]
        track_boxes = measurements_to_boxes(position)
        oks, shared = pose_similarity(
            predicted_x,
            predicted_y,
            tracks.pose_confident,
            position[:, 2] * position[:, 3],
            people_x=frame.x[people],
            people_y=frame.y[people],
            people_confident=frame.confident[people],
            sigmas=self.sigmas,
        )
        iou = box_iou(track_boxes, measurements_to_boxes(frame.measurement[people]))
        use_oks = shared >= config.min_shared_keypoints
        similarity = np.where(use_oks, oks, iou)
        allowed = similarity >= np.where(use_oks, config.min_oks, config.min_iou)
        cost = np.where(allowed, 1.0 - similarity, _FORBIDDEN)

        high_people = np.flatnonzero(high)
        rows, cols = _assign(cost[:, high_people], allowed[:, high_people])
        track_rows, person_rows = [rows], [high_people[cols]]
        low_people = np.flatnonzero(~high)
        if len(low_people):
            remaining = np.ones(len(tracks), bool)
            remaining[rows] = False
            remaining_rows = np.flatnonzero(remaining)
            sub = np.ix_(remaining_rows, low_people)
            rows2, cols2 = _assign(cost[sub], allowed[sub])
            track_rows.append(remaining_rows[rows2])
            person_rows.append(low_people[cols2])
        return np.concatenate(track_rows), np.concatenate(person_rows)

    def _record_matches(
        self, tracks: _Tracks, rows: np.ndarray, frame: _Frame, people: np.ndarray, stamp: float
    ) -> None:
        config = self.config
        tracks.kalman.update(rows, frame.measurement[people], config.measurement_noise)
        tracks.anchor[rows] = tracks.kalman.position[rows]
        tracks.pose[rows] = frame.xy[people]
        tracks.pose_confident[rows] = frame.confident[people]
        tracks.hits[rows] += 1
        tracks.last_match[rows] = stamp
        confirming = rows[(tracks.track_id[rows] == NO_ID) & (tracks.hits[rows] >= config.min_hits)]
        tracks.track_id[confirming] = self._take_ids(len(confirming))

    def _take_ids(self, count: int) -> np.ndarray:
        taken = np.arange(self._next_id, self._next_id + count, dtype=np.int64)
        self._next_id += count
        return taken

    def _smooth(
        self, tracks: _Tracks, rows: np.ndarray, frame: _Frame, people: np.ndarray, stamp: float
    ) -> np.ndarray:
        """Smoothed x, y (M, K, 2) of the matched people; joints without a filter state pass
        through raw and start one."""
        config = self.config
        raw = frame.xy[people]
        smoothable = frame.smoothable[people]
        running = tracks.smooth_valid[rows] & smoothable
        # Two frames with the same stamp: a tiny interval keeps the filter where it was.
        dt = np.maximum(stamp - tracks.last_match[rows], 1e-9)[:, None]
        filtered, rate = one_euro_step(
            raw,
            tracks.smooth_xy[rows],
            tracks.smooth_rate[rows],
            dt,
            min_cutoff=config.smoothing_min_cutoff,
            beta=config.smoothing_beta,
            d_cutoff=config.smoothing_d_cutoff,
        )
        smoothed = np.where(running[:, :, None], filtered, raw)
        tracks.smooth_xy[rows] = smoothed
        tracks.smooth_rate[rows] = np.where(running[:, :, None], rate, 0.0)
        tracks.smooth_valid[rows] = smoothable
        return smoothed

    def _start_tracks(self, frame: _Frame, people: np.ndarray, stamp: float) -> _Tracks:
        config = self.config
        count = len(people)
        kalman = BoxKalman.start(frame.measurement[people], config.measurement_noise)
        confirmed = config.min_hits <= 1
        track_id = self._take_ids(count) if confirmed else np.full(count, NO_ID, np.int64)
        xy = frame.xy[people]
        return _Tracks(
            kalman=kalman,
            anchor=kalman.position.copy(),
            pose=xy.copy(),
            pose_confident=frame.confident[people],
            track_id=track_id,
            hits=np.ones(count, np.int64),
            last_match=np.full(count, stamp),
            smooth_xy=xy.copy(),
            smooth_rate=np.zeros_like(xy),
            smooth_valid=frame.smoothable[people].copy(),
        )


def _assign(cost: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost assignment, keeping only the pairs the gates allow."""
    if cost.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty
    rows, cols = linear_sum_assignment(cost)
    keep = allowed[rows, cols]
    return rows[keep], cols[keep]
