"""Depth step speed: keypoint_positions per frame on a synthetic 640 x 480 RGB-D frame, by number of people.

The scene is described by ``SCENE`` (also printed on the page). The depth image is rendered from
known geometry, so the page also checks the work: how many keypoints got a position and how far
those positions are from the surface the depth camera sees at the keypoint.
"""

from __future__ import annotations

import argparse
import math
import os
import textwrap
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
from litepose_ros.depth import DepthIntrinsics, depth_to_metres, keypoint_positions
from litepose_ros.layouts import COCO_17

PEOPLE_COUNTS = (1, 5, 10, 20)
RUNS = 500
WARMUP = 20
GOAL_PEOPLE, GOAL_MS = 10, 1.0
CAMERA = DepthIntrinsics(fx=615.0, fy=615.0, cx=319.5, cy=239.5, width=640, height=480)
CAMERA_HEIGHT, CAMERA_PITCH_DEG = 1.3, 8.0  # metres above the floor; looking down by this much
WALL_DISTANCE = 9.5  # metres, straight ahead
PERSON_HEIGHT = 1.75  # metres
BODY_HALF_WIDTH = 0.35  # metres: wide enough for the template's wrists (0.18 body heights out)
BODY_BULGE = 0.1  # metres: the body's middle is this much nearer than its sides
JITTER_PX = 1.5  # keypoint noise, as a decoder's
SCENE = textwrap.fill(
    f"""A 640 x 480 RGB-D camera (depth registered to colour, fx = fy = {CAMERA.fx:.0f} px,
16UC1 millimetres) {CAMERA_HEIGHT} m above a flat floor, pitched down by {CAMERA_PITCH_DEG:.0f} degrees (so
floor and wall are sloped planes in the camera's frame), a wall {WALL_DISTANCE} m ahead. N people
({PERSON_HEIGHT} m tall, 120 to 400 px in the image: 2.7 to 9 m away) stand on the floor at random
places, nearer ones hiding farther ones; each body is a {2 * BODY_HALF_WIDTH:.1f} m wide surface curved
{BODY_BULGE * 100:.0f} cm towards the camera in the middle. COCO 17 keypoints from the standing pose
template, jittered by {JITTER_PX} px; all valid. Holes (no measurement): 2 % of the pixels at random
and 12 discs of radius 3 to 12 px, as infrared shadows and dark surfaces make them.""",
    width=100,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--people",
        type=int,
        nargs="+",
        default=list(PEOPLE_COUNTS),
        help="people per frame (default: %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=RUNS, help=f"timed calls per case (default {RUNS})")
    parser.add_argument("--note", default="", help="a sentence for the page (what else the machine ran)")
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_RESULTS_DIR / "depth.md",
        help="results page (default docs/benchmarks/depth.md)",
    )


def _camera_axes() -> np.ndarray:
    """Rows: the camera's x (right), y (down) and z (forward) axes in the world frame
    (X right, Y up, Z ahead along the floor)."""
    pitch = math.radians(CAMERA_PITCH_DEG)
    return np.array(
        [[1.0, 0.0, 0.0], [0.0, -math.cos(pitch), -math.sin(pitch)], [0.0, -math.sin(pitch), math.cos(pitch)]]
    )


def _body_depth(x: np.ndarray, centre: float, distance: float) -> np.ndarray:
    """World Z of a body's surface at world X (nearer in the middle)."""
    t = (x - centre) / BODY_HALF_WIDTH
    return distance - BODY_BULGE * (1.0 - t * t)


def scene_depth(u: np.ndarray, v: np.ndarray, bodies: np.ndarray) -> np.ndarray:
    """Camera depth (metres) of what the ray through pixel (u, v) hits first: floor, wall or one of
    ``bodies`` (rows of world centre X and distance Z)."""
    rays = np.stack([(u - CAMERA.cx) / CAMERA.fx, (v - CAMERA.cy) / CAMERA.fy, np.ones(np.shape(u))], -1)
    world = rays @ _camera_axes()  # ray directions in the world, per unit of camera depth
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = np.where(world[..., 1] < 0, CAMERA_HEIGHT / -world[..., 1], np.inf)
        depth = np.minimum(floor, WALL_DISTANCE / world[..., 2])
        for centre, distance in bodies[np.argsort(-bodies[:, 1])]:  # far to near: nearer ones paint over
            t = distance / world[..., 2]
            for _ in range(3):  # the curved surface: a few fixed-point steps along the ray
                t = _body_depth(t * world[..., 0], centre, distance) / world[..., 2]
            x, y = t * world[..., 0], CAMERA_HEIGHT + t * world[..., 1]
            on_body = (np.abs(x - centre) <= BODY_HALF_WIDTH) & (y >= 0) & (y <= PERSON_HEIGHT)
            depth = np.where(on_body & (t < depth), t, depth)
    return depth


def synthetic_frame(people: int, *, seed: int = 0):
    """(16UC1 data, step, keypoints (N, K, 3), valid (N, K), true camera depth at the keypoints (N, K))."""
    rng = np.random.default_rng(seed)
    template = np.array([POSE_TEMPLATE[name] for name in COCO_17.keypoint_names])
    # Distances for 120 to 400 px tall people; sideways within the view at that distance.
    distance = CAMERA.fy * PERSON_HEIGHT / rng.uniform(120, 400, people)
    centre = rng.uniform(-0.35, 0.35, people) * distance * CAMERA.width / CAMERA.fx
    bodies = np.stack([centre, distance], axis=1)
    joints = np.stack(
        [
            centre[:, None] + template[None, :, 0] * PERSON_HEIGHT,
            np.broadcast_to(PERSON_HEIGHT * (1.0 - template[:, 1]), (people, len(template))),
            np.zeros((people, len(template))),
        ],
        axis=-1,
    )
    joints[..., 2] = _body_depth(joints[..., 0], centre[:, None], distance[:, None])
    camera_points = (joints - [0.0, CAMERA_HEIGHT, 0.0]) @ _camera_axes().T
    xy = np.stack(
        [
            CAMERA.fx * camera_points[..., 0] / camera_points[..., 2] + CAMERA.cx,
            CAMERA.fy * camera_points[..., 1] / camera_points[..., 2] + CAMERA.cy,
        ],
        axis=-1,
    )
    xy += rng.normal(0.0, JITTER_PX, xy.shape)
    keypoints = np.concatenate([xy, rng.uniform(0.3, 0.9, xy.shape[:2] + (1,))], axis=-1)

    v, u = np.mgrid[0 : CAMERA.height, 0 : CAMERA.width].astype(np.float64)
    depth = scene_depth(u, v, bodies)
    millimetres = np.rint(np.where(np.isfinite(depth), depth, 0.0) * 1000.0).astype("<u2")
    millimetres[rng.random(millimetres.shape) < 0.02] = 0
    for x, y, radius in zip(
        rng.uniform(0, CAMERA.width, 12),
        rng.uniform(0, CAMERA.height, 12),
        rng.uniform(3, 12, 12),
        strict=True,
    ):
        millimetres[(u - x) ** 2 + (v - y) ** 2 <= radius**2] = 0
    truth = scene_depth(xy[..., 0], xy[..., 1], bodies)
    return millimetres.tobytes(), CAMERA.width * 2, keypoints, np.ones(xy.shape[:2], bool), truth


def measure(people: int, runs: int):
    data, step, keypoints, valid, truth = synthetic_frame(people, seed=people)
    size = (CAMERA.width, CAMERA.height)

    def convert():
        return depth_to_metres(data, "16UC1", CAMERA.height, CAMERA.width, step)

    depth_m = convert()

    def positions():
        return keypoint_positions(keypoints, valid, size, depth_m, CAMERA)

    convert_wall, _ = time_wall_and_cpu(convert, WARMUP, runs)
    wall, cpu = time_wall_and_cpu(positions, WARMUP, runs)
    result = positions()
    error_mm = np.abs(result.positions[..., 2] - truth)[result.valid] * 1e3
    return convert_wall, wall, cpu, int(result.valid.sum()), int(valid.sum()), error_mm


def run(args: argparse.Namespace) -> int:
    load_before = os.getloadavg()
    rows, summary = [], []
    for people in args.people:
        convert, wall, cpu, placed, asked, error_mm = measure(people, args.runs)
        errors = (
            [f"{value:.1f}" for value in (np.median(error_mm), np.percentile(error_mm, 90), error_mm.max())]
            if error_mm.size
            else ["-", "-", "-"]
        )
        rows.append(
            [
                people,
                f"{placed} / {asked}",
                *errors,
                f"{convert.median_ms:.3f}",
                *(f"{value:.3f}" for value in (wall.median_ms, wall.p90_ms, cpu.median_ms, cpu.p90_ms)),
            ]
        )
        if people == GOAL_PEOPLE:
            verdict = "met" if wall.median_ms < GOAL_MS else "not met"
            summary.append(
                f"- keypoint_positions: median {wall.median_ms:.3f} ms wall "
                f"({cpu.median_ms:.3f} ms CPU) per frame for {people} people: goal {verdict}; "
                f"depth_to_metres adds {convert.median_ms:.3f} ms"
            )
    load_after = os.getloadavg()
    table = markdown_table(
        [
            "people",
            "keypoints with a position",
            "median depth error mm",
            "p90 depth error mm",
            "max depth error mm",
            "depth_to_metres median ms",
            "median ms",
            "p90 ms",
            "CPU median ms",
            "CPU p90 ms",
        ],
        rows,
    )
    note = f"\n{args.note}\n" if args.note else ""
    goal = summary or [f"- (not measured: run with {GOAL_PEOPLE} among --people)"]
    body = f"""One call of `litepose_ros.depth.keypoint_positions` per frame (map the keypoints to depth
pixels, gather a window of up to 15 x 15 depth pixels around each, median and robust scale,
inverse-depth plane fit, back-projection, per-person rejection of joints on another surface) on
one synthetic frame per case. The "depth_to_metres" column is the conversion of the 16UC1 message
data to float32 metres (`litepose_ros.depth.depth_to_metres`), done once per depth image whatever
the number of people, and not part of the other columns.

{SCENE}

{args.runs} timed calls per case after {WARMUP} untimed ones; single process, one thread.
"median" and "p90" are wall-clock times per call; the "CPU" columns are the thread's CPU time per
call, which leaves out the time the process waited for a core (on a busy machine the wall-clock
numbers include that waiting). "keypoints with a position" counts the keypoints that got a 3D
position (a keypoint hidden by a nearer person, or off its body on the wall, is rightly rejected);
the depth errors compare their depth with the surface the camera sees at the keypoint (what the
depth image shows there, holes aside), millimetre quantisation and curved bodies included. The
largest errors are keypoints on the edge of a body where a hole or the edge itself leaves most of
the window on another person less than `max_joint_offset` (0.8 m) behind: the window's majority
wins there.
{note}
Goal: keypoint_positions under {GOAL_MS:g} ms median per frame for {GOAL_PEOPLE} people.

{chr(10).join(goal)}

{table}

{load_note(load_before, load_after)}
"""
    path = write_page(args.output, "Depth step speed", body, argv=["bench", "depth", *_argv_tail(args)])
    print("\n".join(goal))
    print(f"wrote {path}")
    return 0


def _argv_tail(args: argparse.Namespace) -> list[str]:
    return options_that_differ(args, {"people": PEOPLE_COUNTS, "runs": RUNS, "note": ""})
