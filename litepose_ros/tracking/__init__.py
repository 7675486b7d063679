"""Person tracking (no ROS): stable ids across frames, optional keypoint smoothing, figures.

``PoseTracker`` (tracker.py) does the work; ``kalman`` and ``one_euro`` are its filters;
``metrics`` computes tracking figures of a tracked sequence (needs the motmetrics extra only
against ground truth).
"""

from litepose_ros.tracking.metrics import FrameIds, TrackingFigures, tracking_figures
from litepose_ros.tracking.tracker import NO_ID, PoseTracker, TrackCounts, TrackedPeople, TrackerConfig

__all__ = [
    "NO_ID",
    "FrameIds",
    "PoseTracker",
    "TrackCounts",
    "TrackedPeople",
    "TrackerConfig",
    "TrackingFigures",
    "tracking_figures",
]
