"""Pose estimates to litepose_ros/PersonArray, exactly as msg/*.msg documents the fields.

- one PersonArray per processed image, header copied from the image, also when nobody is there;
- keypoints dense (one per layout keypoint, in layout order), in source-image pixels;
- ``Keypoint.valid = score >= keypoint_threshold`` (the threshold travels in the message);
- ``Person.id = Person.NO_ID`` (the node does not track);
- the box is the tight box around the valid keypoints, or around all keypoints when none is valid;
- persons sorted by decreasing score.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from geometry_msgs.msg import Point

from litepose_ros.layouts import KeypointLayout, get_layout
from litepose_ros.msg import Keypoint, Person, PersonArray

# Keypoint.position is always (0, 0, 0) from this node: one shared, never-modified Point saves
# building hundreds of them per image (a third of the conversion time).
_ORIGIN = Point()


@lru_cache(maxsize=8)
def _layout_fields(layout_name: str) -> tuple[list[str], list[int], list[int]]:
    layout = get_layout(layout_name)
    return (list(layout.keypoint_names), [a for a, _ in layout.edges], [b for _, b in layout.edges])


def select_people(keypoints: np.ndarray, scores: np.ndarray, score_threshold: float = 0.0,
                  max_persons: int | None = None) -> np.ndarray:
    """Indices of the people to publish: score >= score_threshold, best first, at most max_persons."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if keypoints.shape[0] != scores.shape[0]:
        raise ValueError(f"{keypoints.shape[0]} keypoint sets but {scores.shape[0]} person scores")
    order = np.argsort(-scores, kind="stable")
    order = order[scores[order] >= score_threshold]
    return order if max_persons is None else order[:max_persons]


def keypoint_boxes(keypoints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(N, 4) x_min, y_min, x_max, y_max around the valid keypoints (all keypoints if none is valid)."""
    if keypoints.shape[0] == 0:
        return np.zeros((0, 4), dtype=np.float64)
    use = np.where(valid.any(axis=1, keepdims=True), valid, True)
    xy = keypoints[:, :, :2].astype(np.float64)
    low = np.where(use[:, :, None], xy, np.inf).min(axis=1)
    high = np.where(use[:, :, None], xy, -np.inf).max(axis=1)
    return np.concatenate([low, high], axis=1)


def person_array_from_arrays(keypoints: np.ndarray, scores: np.ndarray, layout: KeypointLayout | str, *,
                             header, image_width: int, image_height: int, keypoint_threshold: float,
                             score_threshold: float = 0.0, max_persons: int | None = None) -> PersonArray:
    """Build the PersonArray for one image from (N, K, 3) keypoints (x, y, score) and (N,) scores.

    ``header`` is the source image's std_msgs/Header (copied as is). People below
    ``score_threshold`` are left out, the rest sorted by decreasing score and cut to
    ``max_persons``.
    """
    layout = get_layout(layout) if isinstance(layout, str) else layout
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.ndim != 3 or keypoints.shape[2] != 3 or (
            keypoints.shape[0] and keypoints.shape[1] != layout.num_keypoints):
        raise ValueError(f"keypoints must be (N, {layout.num_keypoints}, 3) for layout {layout.name}, "
                         f"got {keypoints.shape}")
    chosen = select_people(keypoints, scores, score_threshold, max_persons)
    keypoints = keypoints[chosen]
    person_scores = np.asarray(scores, dtype=np.float32).reshape(-1)[chosen]
    # Decide validity in float32, the type the threshold and scores travel in, so that
    # valid == (msg.score >= msg.keypoint_threshold) holds for whoever reads the message.
    threshold = np.float32(keypoint_threshold)
    valid = keypoints[:, :, 2] >= threshold
    boxes = keypoint_boxes(keypoints, valid).tolist()

    message = PersonArray()
    message.header = header
    message.image_width = int(image_width)
    message.image_height = int(image_height)
    names, edge_from, edge_to = _layout_fields(layout.name)
    message.layout = layout.name
    message.keypoint_names = names
    message.edge_from = edge_from
    message.edge_to = edge_to
    message.keypoint_threshold = float(threshold)
    persons = []
    for person_keypoints, person_valid, score, (x_min, y_min, x_max, y_max) in zip(
            keypoints.tolist(), valid.tolist(), person_scores.tolist(), boxes, strict=True):
        persons.append(Person(
            id=Person.NO_ID, score=score, x_min=x_min, y_min=y_min, x_max=x_max, y_max=y_max,
            keypoints=[Keypoint(x=x, y=y, score=s, valid=v, position=_ORIGIN)
                       for (x, y, s), v in zip(person_keypoints, person_valid, strict=True)]))
    message.persons = persons
    return message


def pose_result_to_person_array(result, header, image_width: int, image_height: int,
                                keypoint_threshold: float, *, score_threshold: float = 0.0,
                                max_persons: int | None = None) -> PersonArray:
    """PersonArray from an estimator PoseResult (``keypoints`` (N, K, 3), ``scores``, ``layout``)."""
    return person_array_from_arrays(result.keypoints, result.scores, result.layout, header=header,
                                    image_width=image_width, image_height=image_height,
                                    keypoint_threshold=keypoint_threshold,
                                    score_threshold=score_threshold, max_persons=max_persons)
