"""Tracking figures over a sequence of tracked frames, for the bag tools and evaluations.

Without ground truth: tracks started (distinct ids) and track lengths, in frames (frames in which
the id appears) and in seconds (last minus first stamp of the id). With ground truth that carries
track ids (PoseTrack-style COCO annotations): id switches, IDF1 and MOTA from ``motmetrics``
(the training/tools extra, requirements/train.txt), which does the CLEAR-MOT and identity
bookkeeping. Hypotheses and truth are paired frame by frame by OKS when both have keypoints and
sigmas are given, by box IoU otherwise; a pair below ``min_similarity`` (0.5, the MOT convention)
cannot match. People with ``NO_ID`` (tentative, untracked) are not hypotheses: a tracker is
judged on what it publishes with an id.

motmetrics 1.4.0 works with numpy 2 for what is used here (``MOTAccumulator`` and the metrics);
its own distance helpers (``motmetrics.distances``) call ``np.asfarray``, removed in numpy 2, so
the distances are computed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from litepose_ros.tracking.tracker import NO_ID, box_iou


@dataclass(frozen=True)
class FrameIds:
    """One frame of tracker output (or ground truth): ids and where the people are."""

    stamp: float  # seconds
    ids: np.ndarray  # (N,) int: track ids, NO_ID for people without one
    boxes: np.ndarray | None = None  # (N, 4) x0, y0, x1, y1: needed when comparing with truth
    keypoints: np.ndarray | None = None  # (N, K, 3): optional, OKS pairing with truth


@dataclass(frozen=True)
class TrackingFigures:
    frames: int
    tracks_started: int  # distinct ids
    mean_track_frames: float  # frames in which an id appears (0 when there are no tracks)
    median_track_frames: float
    mean_track_seconds: float  # last minus first stamp of an id
    median_track_seconds: float
    # With ground truth only (None otherwise).
    truth_tracks: int | None = None
    id_switches: int | None = None
    idf1: float | None = None
    mota: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return dict(self.__dict__)


def tracking_figures(
    results: Sequence[FrameIds],
    truth: Sequence[FrameIds] | None = None,
    *,
    sigmas: np.ndarray | None = None,
    min_similarity: float = 0.5,
) -> TrackingFigures:
    """Figures of a tracked sequence; with ``truth`` (one FrameIds per result, same order) also
    id switches, IDF1 and MOTA."""
    first_seen: dict[int, float] = {}
    last_seen: dict[int, float] = {}
    frames_seen: dict[int, int] = {}
    for frame in results:
        for track_id in np.unique(np.asarray(frame.ids, np.int64)).tolist():
            if track_id == NO_ID:
                continue
            first_seen.setdefault(track_id, frame.stamp)
            last_seen[track_id] = frame.stamp
            frames_seen[track_id] = frames_seen.get(track_id, 0) + 1
    lengths = np.array(list(frames_seen.values()), np.float64)
    seconds = np.array([last_seen[i] - first_seen[i] for i in frames_seen], np.float64)

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if values.size else 0.0

    def median(values: np.ndarray) -> float:
        return float(np.median(values)) if values.size else 0.0

    figures = dict(
        frames=len(results),
        tracks_started=len(frames_seen),
        mean_track_frames=mean(lengths),
        median_track_frames=median(lengths),
        mean_track_seconds=mean(seconds),
        median_track_seconds=median(seconds),
    )
    if truth is not None:
        figures.update(_against_truth(results, truth, sigmas, min_similarity))
    return TrackingFigures(**figures)


def pair_distances(
    hypothesis: FrameIds, truth: FrameIds, sigmas: np.ndarray | None, min_similarity: float
) -> np.ndarray:
    """(truth, hypothesis) distances 1 - similarity, NaN where the pair cannot match."""
    if truth.boxes is None or hypothesis.boxes is None:
        raise ValueError("comparing with ground truth needs boxes in both the results and the truth")
    truth_boxes = np.asarray(truth.boxes, np.float64).reshape(-1, 4)
    hypothesis_boxes = np.asarray(hypothesis.boxes, np.float64).reshape(-1, 4)
    if sigmas is not None and truth.keypoints is not None and hypothesis.keypoints is not None:
        similarity = _oks(
            np.asarray(truth.keypoints, np.float64),
            truth_boxes,
            np.asarray(hypothesis.keypoints, np.float64),
            np.asarray(sigmas, np.float64),
        )
    else:
        similarity = box_iou(truth_boxes, hypothesis_boxes)
    similarity = np.nan_to_num(similarity, nan=0.0)
    return np.where(similarity >= min_similarity, 1.0 - similarity, np.nan)


def _oks(
    truth_keypoints: np.ndarray, truth_boxes: np.ndarray, keypoints: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """(G, H) COCO OKS of hypotheses against truth over the truth's labelled joints (score > 0),
    scale the truth box area."""
    labelled = np.isfinite(truth_keypoints).all(axis=2) & (np.nan_to_num(truth_keypoints[:, :, 2]) > 0)
    offset = truth_keypoints[:, None, :, :2] - keypoints[None, :, :, :2]
    squared = np.nan_to_num((offset**2).sum(axis=3), nan=np.inf)
    area = np.maximum((truth_boxes[:, 2] - truth_boxes[:, 0]) * (truth_boxes[:, 3] - truth_boxes[:, 1]), 1.0)
    exponent = squared / (2.0 * area[:, None, None] * (2.0 * sigmas[None, None, :]) ** 2)
    summed = (np.exp(-exponent) * labelled[:, None, :]).sum(axis=2)
    return summed / np.maximum(labelled.sum(axis=1), 1)[:, None]


def _against_truth(
    results: Sequence[FrameIds], truth: Sequence[FrameIds], sigmas: np.ndarray | None, min_similarity: float
) -> dict[str, float | int]:
    try:
        import motmetrics
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "tracking figures against ground truth need motmetrics: pip install -r requirements/train.txt"
        ) from error
    if len(truth) != len(results):
        raise ValueError(
            f"truth has {len(truth)} frames, results have {len(results)}: one truth frame "
            f"per result frame is needed"
        )
    accumulator = motmetrics.MOTAccumulator(auto_id=True)
    truth_ids: set[int] = set()
    for hypothesis, expected in zip(results, truth, strict=True):
        with_id = np.asarray(hypothesis.ids) != NO_ID
        kept = FrameIds(
            hypothesis.stamp,
            np.asarray(hypothesis.ids)[with_id],
            None if hypothesis.boxes is None else np.asarray(hypothesis.boxes)[with_id],
            None if hypothesis.keypoints is None else np.asarray(hypothesis.keypoints)[with_id],
        )
        distances = pair_distances(kept, expected, sigmas, min_similarity)
        expected_ids = np.asarray(expected.ids, np.int64).tolist()
        truth_ids.update(expected_ids)
        accumulator.update(expected_ids, np.asarray(kept.ids, np.int64).tolist(), distances)
    summary = motmetrics.metrics.create().compute(accumulator, metrics=["num_switches", "idf1", "mota"])
    row = summary.iloc[0]
    return dict(
        truth_tracks=len(truth_ids),
        id_switches=int(row["num_switches"]),
        idf1=float(row["idf1"]),
        mota=float(row["mota"]),
    )
