"""Step 3: grouping candidates into people by their tags (Hungarian matching)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from litepose_ros.decoding.config import DecoderConfig
from litepose_ros.decoding.peaks import Candidates


@dataclass(frozen=True)
class Grouping:
    """People after grouping: integer map positions and scores of their joints."""

    y: np.ndarray  # (P, K) int64 (meaningless where missing)
    x: np.ndarray  # (P, K) int64
    score: np.ndarray  # (P, K) float32, 0 where the joint is missing
    found: np.ndarray  # (P, K) bool
    tag: np.ndarray  # (P, L) float32 mean tag of the grouped joints


def tie_break_cost(distance: np.ndarray, threshold: float, tie_break: float) -> np.ndarray:
    """The tie-breaking addition to the (detections, people) matching cost.

    Lexicographic within ``tie_break`` times a small number: a match at or beyond ``threshold``
    (which would be rejected and start a new person) costs more than any sum of the other part,
    the tag distance clipped to the threshold and scaled to [0, 1] per match. So among the
    assignments of equal rounded cost, the one that rejects fewest matches wins, then the one with
    the closest tags; the whole addition stays below ``tie_break * (2 * matches + 1)``.
    """
    matches = min(distance.shape)
    near = np.minimum(distance, threshold)
    near *= 1.0 / threshold
    near += (distance >= threshold) * float(matches + 1)
    near *= tie_break
    return near


def group_candidates(
    candidates: Candidates, num_joints: int, config: DecoderConfig, joint_order: tuple[int, ...]
) -> Grouping:
    """Assign candidates to people joint by joint (Hungarian matching on tag distance)."""
    tag_dim = candidates.tag.shape[1]
    capacity = int(candidates.joint.size)  # each candidate joins a person or starts one
    member = np.full((capacity, num_joints), -1, dtype=np.int64)  # candidate index per joint
    # Per person: the sum of its grouped tags, then their count (one array: one update per joint).
    totals = np.zeros((capacity, tag_dim + 1), dtype=np.float64)
    all_tags = np.ones((capacity, tag_dim + 1), dtype=np.float64)  # each candidate's tag, then 1
    all_tags[:, :tag_dim] = candidates.tag
    # The tags again, one row per tag dimension: distances come out as (L, detections, people)
    # with the people innermost (numpy's loops are slow over a length-L innermost axis).
    stacked_tags = np.ascontiguousarray(candidates.tag.T, dtype=np.float64)
    all_scores = candidates.score[:, None].astype(np.float64)
    starts = candidates.starts.tolist()
    weight, tie_break = config.tag_cost_weight, config.tag_tie_break
    threshold, most = config.tag_threshold, config.max_matched_people
    people = 0
    # Arrays are small here: the time goes into numpy calls, so the loop keeps them few.
    for j in joint_order:
        first, stop = starts[j], starts[j + 1]
        if first == stop:
            continue
        tags = all_tags[first:stop]
        matchable = people if people < most else most
        if matchable:
            person_tags = totals[:matchable, :tag_dim] / totals[:matchable, tag_dim:]
            difference = stacked_tags[:, first:stop, None] - person_tags.T[:, None, :]
            np.square(difference, out=difference)
            squared = difference[0]
            for d in range(1, tag_dim):
                squared = squared + difference[d]
            distance = np.sqrt(squared)
            cost = np.rint(distance)  # round half to even, as np.round
            cost *= weight
            cost -= all_scores[first:stop]
            if tie_break:
                cost += tie_break_cost(distance, threshold, tie_break)
            rows, cols = linear_sum_assignment(cost)
            matched = distance[rows, cols]
            if max(matched.tolist()) >= threshold:
                accepted = matched < threshold
                rows, cols = rows[accepted], cols[accepted]
            member[cols, j] = rows + first
            if rows.size == stop - first:  # all matched: rows are 0, 1, ...
                totals[cols] += tags
                continue
            totals[cols] += tags[rows]
            unmatched = np.ones(stop - first, dtype=bool)
            unmatched[rows] = False
            new_rows = np.flatnonzero(unmatched)
            tags = tags[new_rows]
            new_members = new_rows + first
        else:
            new_members = range(first, stop)
        # Unmatched candidates start new people, in candidate (descending score) order.
        count = tags.shape[0]
        member[people : people + count, j] = new_members
        totals[people : people + count] = tags
        people += count
    member = member[:people]
    found = member >= 0
    index = np.where(found, member, 0)
    return Grouping(
        y=candidates.y[index] if people else np.zeros((0, num_joints), np.int64),
        x=candidates.x[index] if people else np.zeros((0, num_joints), np.int64),
        score=np.where(found, candidates.score[index], 0.0).astype(np.float32)
        if people
        else np.zeros((0, num_joints), np.float32),
        found=found,
        tag=(totals[:people, :tag_dim] / np.maximum(totals[:people, tag_dim:], 1)).astype(np.float32),
    )
