"""Draw people (skeletons) on images: one distinct colour per person (per track id when tracked),
limbs from the layout's edges, joints as dots, optional labels (track id and score); used by
``litepose infer``, the node's annotated image and the reports."""

from __future__ import annotations

import cv2
import numpy as np

from litepose_ros.layouts import KeypointLayout, get_layout
from litepose_ros.people import NO_ID, colour_indices, person_label, person_rgb

_OUTLINE = (20, 20, 20)


def person_color(index: int) -> tuple[int, int, int]:
    """The BGR colour of person ``index`` (``litepose_ros.people.person_rgb``, also the colour of
    the person's RViz markers)."""
    r, g, b = person_rgb(index)
    return int(round(b * 255)), int(round(g * 255)), int(round(r * 255))


def default_thickness(image_shape: tuple[int, ...]) -> int:
    """Line thickness that reads well at the image's size: 2 px at 640x480, scaled with the short side."""
    return max(1, int(round(min(image_shape[0], image_shape[1]) / 240)))


def draw_people(
    image: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray | None = None,
    layout: KeypointLayout | str = "coco17",
    *,
    keypoint_threshold: float = 0.3,
    draw_scores: bool = True,
    thickness: int | None = None,
    ids: np.ndarray | None = None,
) -> np.ndarray:
    """Draw every person of ``keypoints`` (N, K, 3: x, y, score in image pixels, pixel centres)
    on ``image`` (H, W, 3 uint8, BGR) in place, and return it.

    Only keypoints scoring at least ``keypoint_threshold`` are drawn, and a limb only when both
    its ends are. ``scores`` (N,) are written next to each person when ``draw_scores``.
    ``thickness`` defaults to ``default_thickness(image.shape)``. ``ids`` (N,) track ids: a
    person with one (not ``NO_ID``) is drawn in the colour of that id and labelled "#id score"
    ("#id" without scores); the others keep the colour of their rank (``people.colour_indices``).
    """
    layout = layout if isinstance(layout, KeypointLayout) else get_layout(layout)
    _check_canvas(image)
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (layout.num_keypoints, 3):
        raise ValueError(
            f"keypoints must have shape (N, {layout.num_keypoints}, 3) for layout "
            f"{layout.name}, got {keypoints.shape}"
        )
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if scores.shape[0] != keypoints.shape[0]:
            raise ValueError(f"{keypoints.shape[0]} people but {scores.shape[0]} scores")
    if ids is not None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.shape[0] != keypoints.shape[0]:
            raise ValueError(f"{keypoints.shape[0]} people but {ids.shape[0]} track ids")
    colours = colour_indices(keypoints.shape[0], ids)
    thickness = default_thickness(image.shape) if thickness is None else int(thickness)
    if thickness < 1:
        raise ValueError(f"thickness must be >= 1, got {thickness}")
    radius = thickness + 1
    # Fixed-point drawing (4 fractional bits) keeps sub-pixel positions.
    shift = 4
    scale = 1 << shift
    for index, person in enumerate(keypoints):
        color = person_color(colours[index])
        visible = np.isfinite(person[:, :2]).all(axis=1) & (person[:, 2] >= keypoint_threshold)
        points = np.round(np.nan_to_num(person[:, :2]) * scale).astype(np.int64)
        points = np.clip(points, -(1 << 24), 1 << 24)  # cv2 wants int32-range coordinates
        limbs = [(a, b) for a, b in layout.edges if visible[a] and visible[b]]
        for a, b in limbs:  # dark outline first: skeletons stay readable on any background
            cv2.line(image, tuple(points[a]), tuple(points[b]), _OUTLINE, thickness + 2, cv2.LINE_AA, shift)
        for a, b in limbs:
            cv2.line(image, tuple(points[a]), tuple(points[b]), color, thickness, cv2.LINE_AA, shift)
        for j in np.flatnonzero(visible):
            cv2.circle(image, tuple(points[j]), (radius + 1) * scale, _OUTLINE, -1, cv2.LINE_AA, shift)
            cv2.circle(image, tuple(points[j]), radius * scale, color, -1, cv2.LINE_AA, shift)
        track_id = NO_ID if ids is None else int(ids[index])
        show_score = draw_scores and scores is not None
        if (show_score or track_id != NO_ID) and visible.any():
            text = person_label(scores[index] if show_score else 0.0, track_id, show_score=show_score)
            _label(image, text, person[visible, :2], color, thickness)
    return image


def _label(
    image: np.ndarray, text: str, points: np.ndarray, color: tuple[int, int, int], thickness: int
) -> None:
    """Score text on a filled box just above the person's top-most visible keypoint."""
    font_scale = 0.35 + 0.15 * thickness
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    x = int(np.clip(points[:, 0].min(), 0, max(0, image.shape[1] - width - 2)))
    y = int(np.clip(points[:, 1].min() - 2 * thickness - baseline, height + 2, image.shape[0] - baseline))
    cv2.rectangle(image, (x, y - height - 2), (x + width + 2, y + baseline), color, -1)
    cv2.putText(image, text, (x + 1, y), cv2.FONT_HERSHEY_SIMPLEX, font_scale, _OUTLINE, 1, cv2.LINE_AA)


def _check_canvas(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image must be an (H, W, 3) uint8 BGR array, got "
            f"{getattr(image, 'shape', type(image).__name__)} {getattr(image, 'dtype', '')}"
        )
    if not image.flags.c_contiguous or not image.flags.writeable:
        raise ValueError(
            "image must be writable and C-contiguous (it is drawn on in place): pass "
            "np.ascontiguousarray(image) or image.copy()"
        )
