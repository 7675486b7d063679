"""Tracker speed: PoseTracker.update per frame on synthetic walkers, by number of people.

The scene is described by ``SCENE`` (also printed on the page). The first frames, where tracks
start, are not timed. The tracker's work is checked alongside: distinct ids handed out (ideally
the number of people) and id switches against the known identities.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from litepose_ros.benchmarks.decode_speed import POSE_TEMPLATE, time_wall_and_cpu
from litepose_ros.benchmarks.report import (
    DEFAULT_RESULTS_DIR,
    load_note,
    markdown_table,
    options_that_differ,
    write_page,
)
from litepose_ros.layouts import COCO_17
from litepose_ros.tracking import NO_ID, PoseTracker, TrackerConfig

PEOPLE_COUNTS = (1, 5, 10, 20, 40)
FRAME_RATE = 30.0
IMAGE_SIZE = (1280, 720)
WARMUP_FRAMES = 30
GOAL_PEOPLE, GOAL_MS = 20, 0.5
SCENE = """A 1280 x 720 camera at 30 Hz sees N people (COCO 17 joints, 120 to 320 px tall)
walking at up to 150 px/s and turning at the image edges, joints jittered by 1.5 px; each frame
10 % of the people are missed (their tracks are lost for a while) and person scores are spread
from 0.2 to 0.9 (some people go through the second, low-score round). People start at random
places, so with many of them some walk through each other."""
MODES = (
    ("Default settings (no smoothing)", TrackerConfig()),
    ("With One-Euro keypoint smoothing", TrackerConfig(smoothing=True)),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--people",
        type=int,
        nargs="+",
        default=list(PEOPLE_COUNTS),
        help="people per frame (default: %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=1000, help="timed frames per case (default 1000)")
    parser.add_argument("--note", default="", help="a sentence for the page (what else the machine ran)")
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_RESULTS_DIR / "tracker.md",
        help="results page (default docs/benchmarks/tracker.md)",
    )


def synthetic_walkers(people: int, frames: int, *, seed: int = 0):
    """Frames of walking people: a list of (stamp, keypoints (N, K, 3), scores, boxes, identities),
    the identities being the index of the true person behind each row."""
    rng = np.random.default_rng(seed)
    template = np.array([POSE_TEMPLATE[name] for name in COCO_17.keypoint_names])
    width, height = IMAGE_SIZE
    heights = rng.uniform(120, 320, people)
    x = rng.uniform(0.1 * width, 0.9 * width, people)
    y = rng.uniform(0, height - heights)
    velocity = rng.uniform(-150, 150, (people, 2)) * [1.0, 0.3]
    person_scores = rng.uniform(0.2, 0.9, people)
    sequence = []
    dt = 1.0 / FRAME_RATE
    for i in range(frames):
        x += velocity[:, 0] * dt
        y += velocity[:, 1] * dt
        turn_x = (x < 0.05 * width) | (x > 0.95 * width)
        turn_y = (y < 0) | (y > height - heights)
        velocity[turn_x, 0] *= -1
        velocity[turn_y, 1] *= -1
        seen = np.flatnonzero(rng.random(people) >= 0.1)
        xy = template[None] * heights[seen, None, None] + np.stack([x[seen], y[seen]], 1)[:, None, :]
        xy += rng.normal(0, 1.5, xy.shape)
        keypoints = np.concatenate([xy, rng.uniform(0.1, 0.9, xy.shape[:2] + (1,))], axis=2)
        boxes = np.concatenate([xy.min(axis=1), xy.max(axis=1)], axis=1)
        scores = np.clip(person_scores[seen] + rng.normal(0, 0.05, seen.size), 0.0, 1.0)
        sequence.append((i * dt, keypoints, scores, boxes, seen))
    return sequence


def count_switches(truths: list[np.ndarray], ids: list[np.ndarray]) -> int:
    """Times a true person's published id changes plus times an id passes to another person
    (NO_ID skipped): a swap of two people's ids counts 4."""
    switches = 0
    id_of: dict[int, int] = {}
    person_of: dict[int, int] = {}
    for truth, track_ids in zip(truths, ids, strict=True):
        for person, track_id in zip(truth.tolist(), track_ids.tolist(), strict=True):
            if track_id == NO_ID:
                continue
            switches += int(id_of.get(person, track_id) != track_id)
            switches += int(person_of.get(track_id, person) != person)
            id_of[person], person_of[track_id] = track_id, person
    return switches


def measure(people: int, config: TrackerConfig, runs: int):
    sequence = synthetic_walkers(people, WARMUP_FRAMES + runs, seed=people)
    tracker = PoseTracker.for_layout(COCO_17, config)
    frames = iter(sequence)
    ids: list[np.ndarray] = []

    def track_next_frame() -> None:
        stamp, keypoints, scores, boxes, _ = next(frames)
        ids.append(tracker.update(stamp, keypoints, scores, boxes).ids)

    wall, cpu = time_wall_and_cpu(track_next_frame, WARMUP_FRAMES, runs)
    all_ids = np.concatenate(ids)
    distinct = np.unique(all_ids[all_ids != NO_ID]).size
    return wall, cpu, distinct, count_switches([frame[4] for frame in sequence], ids)


def run(args: argparse.Namespace) -> int:
    load_before = os.getloadavg()
    sections, summary = [], []
    for title, config in MODES:
        rows = []
        for people in args.people:
            wall, cpu, distinct, switches = measure(people, config, args.runs)
            rows.append([people, distinct, switches, wall.median_ms, wall.p90_ms, cpu.median_ms, cpu.p90_ms])
            if people == GOAL_PEOPLE:
                verdict = "under" if wall.median_ms < GOAL_MS else "over"
                summary.append(
                    f"- {title}: median {wall.median_ms:.3f} ms wall ({cpu.median_ms:.3f} ms CPU) "
                    f"per frame for {people} people: {verdict} {GOAL_MS} ms"
                )
        table = markdown_table(
            ["people", "ids handed out", "id switches", "median ms", "p90 ms", "CPU median ms", "CPU p90 ms"],
            [[*row[:3], *(f"{value:.3f}" for value in row[3:])] for row in rows],
        )
        sections.append(f"## {title}\n\n{table}\n")
    load_after = os.getloadavg()
    note = f"\n{args.note}\n" if args.note else ""
    body = f"""One call of `litepose_ros.tracking.PoseTracker.update` per frame (prediction, the two-round
OKS / IoU assignment, Kalman updates, track bookkeeping; with smoothing also the One-Euro
filters), on synthetic frames.

{SCENE}

{args.runs} timed frames per case after {WARMUP_FRAMES} untimed ones; single process, one thread.
"median" and "p90" are wall-clock times per frame; the "CPU" columns are the thread's CPU time per
frame, which leaves out the time the process waited for a core (on a busy machine the wall-clock
numbers include that waiting). "ids handed out" counts the distinct confirmed ids over the timed
frames; "id switches" counts a true person's id changing and an id passing to another person
(a swap of two people's ids counts 4).
{note}
Goal: median under {GOAL_MS} ms per frame for {GOAL_PEOPLE} people.

{chr(10).join(summary)}

{chr(10).join(sections)}
{load_note(load_before, load_after)}
"""
    path = write_page(args.output, "Tracker speed", body, argv=["bench", "tracker", *_argv_tail(args)])
    print("\n".join(summary))
    print(f"wrote {path}")
    return 0


def _argv_tail(args: argparse.Namespace) -> list[str]:
    return options_that_differ(args, {"people": PEOPLE_COUNTS, "runs": 1000, "note": ""})
