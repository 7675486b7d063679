"""Rules about the people an estimate contains, shared by every output.

Which people are published (``select_people``; ``published_people`` selects once per image for
the PersonArray, the markers and the annotated image), the box around a person (``keypoint_boxes``),
the colour a person is shown in (``person_rgb``; ``colour_indices``: by track id when the person has
one, else by rank, the same in the annotated image and in RViz), the text next to a person
(``person_label``) and the COCO result entries of an estimate (``coco_results``). Core layer:
numpy only, no ROS.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from litepose_ros.layouts import KeypointLayout, get_layout

if TYPE_CHECKING:
    from litepose_ros.depth import KeypointPositions

# Hues stepped by the golden ratio stay far apart for any number of people.
_GOLDEN_RATIO = 0.618033988749895
# Person.NO_ID: a person without a (confirmed) track (litepose_ros.tracking.NO_ID).
NO_ID = -1


def select_people(
    keypoints: np.ndarray, scores: np.ndarray, score_threshold: float = 0.0, max_persons: int | None = None
) -> np.ndarray:
    """Indices of the people to publish: score >= score_threshold, best first, at most max_persons."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if keypoints.shape[0] != scores.shape[0]:
        raise ValueError(f"{keypoints.shape[0]} keypoint sets but {scores.shape[0]} person scores")
    order = np.argsort(-scores, kind="stable")
    order = order[scores[order] >= score_threshold]
    return order if max_persons is None else order[:max_persons]


@dataclass(frozen=True)
class PublishedPeople:
    """The people of one image as every output shows them: selected, best first.

    keypoints (N, K, 3) float32 x, y, score in source pixels; scores (N,) float32; valid (N, K):
    score >= keypoint_threshold, decided in float32 (the type the threshold and the scores travel
    in, so ``valid == (score >= keypoint_threshold)`` holds for whoever reads a PersonArray);
    ids (N,) int64 track ids (``NO_ID`` for people without a confirmed track), or None when
    nobody tracks (every output then shows the people as before tracking existed);
    positions: their 3D keypoints from a registered depth image (``litepose_ros.depth``), or None
    when there was no depth for the image.
    """

    layout: KeypointLayout
    keypoints: np.ndarray
    scores: np.ndarray
    valid: np.ndarray
    keypoint_threshold: np.float32
    ids: np.ndarray | None = None
    positions: KeypointPositions | None = None

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def with_tracking(self, ids: np.ndarray, keypoints: np.ndarray | None = None) -> PublishedPeople:
        """The same people with their track ids and, when given, the tracker's keypoints (smoothed
        x, y; the scores and so ``valid`` are unchanged)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.shape[0] != len(self):
            raise ValueError(f"{ids.shape[0]} track ids for {len(self)} people")
        if keypoints is None:
            return replace(self, ids=ids)
        keypoints = np.asarray(keypoints, dtype=np.float32)
        if keypoints.shape != self.keypoints.shape:
            raise ValueError(
                f"tracked keypoints {keypoints.shape} differ from the people's {self.keypoints.shape}"
            )
        return replace(self, ids=ids, keypoints=keypoints)

    def with_positions(self, positions: KeypointPositions) -> PublishedPeople:
        """The same people with the 3D positions of their keypoints (one row per person)."""
        if positions.valid.shape != self.valid.shape:
            raise ValueError(
                f"3D positions for {positions.valid.shape} keypoints, but the people have {self.valid.shape}"
            )
        return replace(self, positions=positions)


def published_people(
    keypoints: np.ndarray,
    scores: np.ndarray,
    layout: KeypointLayout | str,
    *,
    keypoint_threshold: float,
    score_threshold: float = 0.0,
    max_persons: int | None = None,
) -> PublishedPeople:
    """The people to publish from (N, K, 3) keypoints and (N,) person scores: ``select_people``,
    then each keypoint's validity. Raises ValueError when the keypoints do not fit the layout."""
    layout = get_layout(layout) if isinstance(layout, str) else layout
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if (
        keypoints.ndim != 3
        or keypoints.shape[2] != 3
        or (keypoints.shape[0] and keypoints.shape[1] != layout.num_keypoints)
    ):
        raise ValueError(
            f"keypoints must be (N, {layout.num_keypoints}, 3) for layout {layout.name}, "
            f"got {keypoints.shape}"
        )
    chosen = select_people(keypoints, scores, score_threshold, max_persons)
    keypoints = keypoints[chosen]
    person_scores = np.asarray(scores, dtype=np.float32).reshape(-1)[chosen]
    threshold = np.float32(keypoint_threshold)
    return PublishedPeople(
        layout=layout,
        keypoints=keypoints,
        scores=person_scores,
        valid=keypoints[:, :, 2] >= threshold,
        keypoint_threshold=threshold,
    )


def keypoint_boxes(keypoints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(N, 4) float64 x_min, y_min, x_max, y_max around the valid keypoints (all keypoints of a
    person none of whose keypoints is valid)."""
    if keypoints.shape[0] == 0:
        return np.zeros((0, 4), dtype=np.float64)
    use = np.where(valid.any(axis=1, keepdims=True), valid, True)
    xy = keypoints[:, :, :2].astype(np.float64)
    low = np.where(use[:, :, None], xy, np.inf).min(axis=1)
    high = np.where(use[:, :, None], xy, -np.inf).max(axis=1)
    return np.concatenate([low, high], axis=1)


def person_rgb(rank: int) -> tuple[float, float, float]:
    """The colour (r, g, b in 0..1) of the person at this rank: bright and saturated, neighbours
    in the sequence differ strongly in hue."""
    hue = (0.08 + rank * _GOLDEN_RATIO) % 1.0
    saturation, value = (0.85, 1.0) if rank % 2 == 0 else (0.65, 0.9)
    return colorsys.hsv_to_rgb(hue, saturation, value)


def colour_indices(count: int, ids: np.ndarray | None = None) -> list[int]:
    """The ``person_rgb`` index of each of ``count`` people in rank order: the track id of a
    person who has one (the same person keeps their colour from image to image), the rank
    otherwise (tentative or untracked people; without ids, every person by rank as always)."""
    if ids is None:
        return list(range(count))
    return [
        int(track_id) if track_id != NO_ID else rank
        for rank, track_id in enumerate(np.asarray(ids).reshape(-1).tolist())
    ]


def person_label(score: float, track_id: int = NO_ID, *, show_score: bool = True) -> str:
    """The text shown with a person: "#12 0.83" for track 12 scoring 0.83, "0.83" without an id
    ("#12" alone, or "", without the score)."""
    parts = [f"#{int(track_id)}"] if track_id != NO_ID else []
    if show_score:
        parts.append(f"{score:.2f}")
    return " ".join(parts)


def coco_results(
    image_id: int,
    result: Any,
    *,
    category_id: int = 1,
    score_threshold: float | None = None,
    keypoint_digits: int = 3,
    score_digits: int | None = None,
) -> list[dict]:
    """COCO keypoint result entries for the people of one PoseResult (``keypoints`` (N, K, 3) x, y,
    score; ``scores`` (N,)), in result order: every person, or those scoring at least
    ``score_threshold``. Keypoint values are rounded to ``keypoint_digits``, the score to
    ``score_digits`` (None: not rounded)."""
    keypoints = np.asarray(result.keypoints, dtype=np.float64)
    scores = np.asarray(result.scores).reshape(-1)
    # The threshold is compared in the scores' own type (float32 from the estimator).
    keep = range(len(scores)) if score_threshold is None else np.flatnonzero(scores >= score_threshold)
    return [
        {
            "image_id": int(image_id),
            "category_id": category_id,
            "keypoints": [round(float(v), keypoint_digits) for v in keypoints[i].ravel()],
            "score": float(scores[i]) if score_digits is None else round(float(scores[i]), score_digits),
        }
        for i in keep
    ]
