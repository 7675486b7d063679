"""Step 4: quarter-pixel adjust and refine of missing joints."""

from __future__ import annotations

import numpy as np

from litepose_ros.decoding.config import ADJUST_STEP
from litepose_ros.decoding.grouping import Grouping
from litepose_ros.decoding.maps import TagMaps
from litepose_ros.decoding.memory import Workspace
from litepose_ros.decoding.peaks import Candidates


def quarter_offsets(
    heatmaps: np.ndarray, joint: np.ndarray, y: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dy): +0.25 towards the higher of the two neighbours along each axis, -0.25 when the
    lower (or equal) one is ahead; neighbours are clamped at the map border, as the reference."""
    _, height, width = heatmaps.shape
    right = heatmaps[joint, y, np.minimum(x + 1, width - 1)]
    left = heatmaps[joint, y, np.maximum(x - 1, 0)]
    below = heatmaps[joint, np.minimum(y + 1, height - 1), x]
    above = heatmaps[joint, np.maximum(y - 1, 0), x]
    return (
        np.where(right > left, ADJUST_STEP, -ADJUST_STEP),
        np.where(below > above, ADJUST_STEP, -ADJUST_STEP),
    )


def _rounded_tag_distance(tag_maps: np.ndarray, person_tags: np.ndarray) -> np.ndarray:
    """round(|tag - person tag|) for tags (L, ...) against person tags (L, ...) broadcastable to
    them, in float32 with one fixed order of operations (results compared across code paths must
    be bit-identical)."""
    squared = np.square(tag_maps[0] - person_tags[0])
    for d in range(1, tag_maps.shape[0]):
        squared += np.square(tag_maps[d] - person_tags[d])
    return np.rint(np.sqrt(squared))


def _refine_near_peaks(
    heatmaps: np.ndarray,
    joint_tags: np.ndarray,
    person_tags: np.ndarray,
    *,
    joint: np.ndarray,
    slot: np.ndarray,
    candidates: Candidates,
    best: np.ndarray,
) -> None:
    """Fill ``best`` (flat pixel indices) for the pairs whose answer is provably among the pixels
    above their joint's weakest candidate (see refine_missing); other entries are left alone."""
    num_joints, _, width = heatmaps.shape
    slot_of_joint = np.full(num_joints, -1, dtype=np.int64)
    slot_of_joint[joint] = slot
    useful = np.flatnonzero(slot_of_joint[candidates.joint] >= 0)
    if useful.size == 0:
        return
    c_joint, c_y, c_x = candidates.joint[useful], candidates.y[useful], candidates.x[useful]
    c_tags = joint_tags[:, slot_of_joint[c_joint], c_y * width + c_x]  # (L, C)
    # Exact values of every pair at the peaks of its joint (-inf at other joints' peaks).
    values = heatmaps[c_joint, c_y, c_x][None, :] - _rounded_tag_distance(
        c_tags[:, None, :], person_tags[:, :, None]
    )
    values[joint[:, None] != c_joint[None, :]] = -np.inf
    bound = values.max(axis=1)
    # The weakest candidate of each joint: the last of its run (candidates are sorted by score).
    floor = np.full(num_joints, np.inf, dtype=np.float32)
    has_candidates = candidates.starts[1:] > candidates.starts[:-1]
    floor[has_candidates] = candidates.score[candidates.starts[1:][has_candidates] - 1]
    narrow = np.flatnonzero(bound > floor[joint])
    for j in np.unique(joint[narrow]).tolist():  # rare: joints with a strong unclaimed peak
        pairs = narrow[joint[narrow] == j]
        heat = heatmaps[j].reshape(-1)
        region = np.flatnonzero(heat > floor[j])  # holds every pixel >= the bound
        region_values = heat[region][None, :] - _rounded_tag_distance(
            joint_tags[:, slot[pairs[0]], region][:, None, :], person_tags[:, pairs, None]
        )
        best[pairs] = region[np.argmax(region_values, axis=1)]


def refine_missing(
    heatmaps: np.ndarray,
    tags: TagMaps,
    grouping: Grouping,
    workspace: Workspace | None = None,
    candidates: Candidates | None = None,
) -> tuple[np.ndarray, ...]:
    """For every missing (person, joint): the pixel maximising ``heatmap - round(tag distance to
    the person's mean tag)`` (the first such pixel in row-major order, as an argmax over the whole
    map). Returns (person, joint, y, x, heatmap value) of those pairs as (M,) arrays; the caller
    keeps the ones with a positive value.

    With the joint's ``candidates`` (peaks) a pair often needs only a few pixels: their exact
    values give a lower bound ``b`` of the answer, and since a pixel's value never exceeds its
    heatmap value, only pixels with heatmap >= b can win. When ``b`` is above the smallest
    candidate score, those pixels are all above that score and are searched alone; otherwise
    the whole map is, one pair at a time (a map-sized buffer stays in the CPU cache).
    """
    workspace = workspace or Workspace()
    _, height, width = heatmaps.shape
    person, joint = np.nonzero(~grouping.found)
    if person.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty, np.zeros(0, np.float32)
    best = np.full(person.size, -1, dtype=np.int64)
    needed, slot = np.unique(joint, return_inverse=True)
    joint_tags = tags.full(needed, workspace).reshape(tags.dim, needed.size, height * width)
    person_tags = grouping.tag[person].T  # (L, pairs)
    if candidates is not None and candidates.joint.size:
        _refine_near_peaks(
            heatmaps, joint_tags, person_tags, joint=joint, slot=slot, candidates=candidates, best=best
        )
    rest = np.flatnonzero(best < 0).tolist()
    if rest:
        joint_tags = joint_tags.reshape(tags.dim, needed.size, height, width)
        value = workspace.array("refine_value", (height, width))
        term = workspace.array("refine_term", (height, width))
        slots, joints = slot.tolist(), joint.tolist()
        pair_tags = person_tags.T.tolist()  # Python floats: float32 values, exactly
        for i in rest:  # the same float32 operations as _rounded_tag_distance
            s, tag = slots[i], pair_tags[i]
            np.subtract(joint_tags[0, s], tag[0], out=value)
            np.square(value, out=value)
            for d in range(1, tags.dim):
                np.subtract(joint_tags[d, s], tag[d], out=term)
                np.square(term, out=term)
                np.add(value, term, out=value)
            np.sqrt(value, out=value)
            np.rint(value, out=value)
            np.subtract(heatmaps[joints[i]], value, out=value)
            best[i] = value.argmax()
    y, x = np.divmod(best, width)
    return person, joint, y, x, heatmaps[joint, y, x]
