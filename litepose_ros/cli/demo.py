"""``litepose demo``: the pose node on the bundled real footage, leaving results to look at.

Starts the real node process (``litepose_node``, the bundled default model), replays the bundled
sample bag (48 frames of OpenCV's vtest.avi at 15 Hz) into it in real time, records what it
publishes (persons, markers, image_annotated) and writes into the output folder: the annotated
frames (JPEG), an MP4 of them, a contact sheet, a summary (Markdown and JSON) and the recorded
bag (mcap). DDS stays on this machine (the project's loopback profile).

The node tracks people (its default; ``--no-tracking`` turns it off): the annotated frames and
the contact sheet show each person's id, and the summary has the tracking figures; on the bundled
clip, the distinct ids against the pedestrians counted in it by eye
(``litepose_ros.samples.VTEST_PEDESTRIANS``) and the median track length.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from litepose_ros.errors import UserError

# What a previous demo run left in its folder (removed before a new run).
DEMO_OUTPUTS = (
    "frames",
    "bag",
    "annotated.mp4",
    "contact_sheet.png",
    "summary.md",
    "summary.json",
    "node.log",
    "latency_over_time.png",
    "latency_histogram.png",
    "persons_per_frame.png",
)
CONTACT_SHEET_FRAMES = 12
CONTACT_SHEET_COLUMNS = 4
CONTACT_SHEET_TILE_WIDTH = 320


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, default=Path("demo_output"), help="folder for the results")
    parser.add_argument("--model", type=Path, help="model file for the node (default: the bundled model)")
    parser.add_argument("--bag", type=Path, help="bag to replay (default: the bundled sample bag)")
    parser.add_argument("--rate", type=float, default=1.0, help="replay speed (default: real time)")
    parser.add_argument("--threads", type=int, default=0, help="node inference threads (0: engine default)")
    parser.add_argument(
        "--no-tracking",
        action="store_true",
        help="run the node with tracking.enabled:=false (no ids, no tracking figures)",
    )


def _model_path(model: Path | None) -> Path:
    from litepose_ros.estimator import BundledModelMissing, resolve_model_path

    try:
        path = resolve_model_path(model, source="--model")
    except BundledModelMissing as error:
        raise UserError(
            f"{error}. The demo needs a model: export one with `litepose export` and pass --model FILE.onnx"
        ) from error
    except FileNotFoundError as error:
        raise UserError(str(error)) from error
    return path.resolve() if model is not None else path


def _prepare_output(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--output {folder} is a file, not a folder")
    if folder.is_dir():
        unknown = [p.name for p in folder.iterdir() if p.name not in DEMO_OUTPUTS]
        if unknown:
            raise UserError(
                f"--output {folder} holds files the demo did not write "
                f"({', '.join(unknown[:5])}): choose an empty or new folder"
            )
        for name in DEMO_OUTPUTS:
            path = folder / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def write_frames(folder: Path, annotated: list) -> list[Path]:
    """The annotated frames as JPEG files, named by their frame index in the bag."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, image in annotated:
        path = folder / f"frame_{index:04d}.jpg"
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def write_video(path: Path, annotated: list, fps: float) -> Path | None:
    """The annotated sequence as MP4 (mp4v); None when this OpenCV cannot write one."""
    import cv2

    if not annotated:
        return None
    height, width = annotated[0][1].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), max(fps, 1.0), (width, height))
    if not writer.isOpened():
        return None
    for _, image in annotated:
        if image.shape[:2] == (height, width):
            writer.write(image)
    writer.release()
    return path if path.is_file() and path.stat().st_size > 0 else None


def write_contact_sheet(
    path: Path,
    annotated: list,
    persons_by_index: dict[int, int],
    ids_by_index: dict[int, tuple[int, ...]] | None = None,
) -> Path | None:
    """Up to 12 evenly spaced annotated frames in a grid, each labelled with frame and persons
    and, when tracked, the ids of the frame's people (the frames themselves show them too)."""
    import cv2
    import numpy as np

    if not annotated:
        return None
    picks = np.linspace(0, len(annotated) - 1, min(CONTACT_SHEET_FRAMES, len(annotated))).round().astype(int)
    tiles = []
    for pick in picks:
        index, image = annotated[int(pick)]
        scale = CONTACT_SHEET_TILE_WIDTH / image.shape[1]
        tile = cv2.resize(
            image, (CONTACT_SHEET_TILE_WIDTH, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA
        )
        count = persons_by_index.get(index, 0)
        label = f"frame {index}: {count} person{'' if count == 1 else 's'}"
        ids = sorted(i for i in (ids_by_index or {}).get(index, ()) if i >= 0)
        if ids:
            label += ", ids " + " ".join(f"#{i}" for i in ids)
        cv2.rectangle(tile, (0, 0), (tile.shape[1], 22), (0, 0, 0), thickness=-1)
        cv2.putText(tile, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    height = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, height - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
    while len(tiles) % CONTACT_SHEET_COLUMNS:
        tiles.append(np.zeros_like(tiles[0]))
    columns = CONTACT_SHEET_COLUMNS
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    cv2.imwrite(str(path), np.vstack(rows))
    return path


def run(args: argparse.Namespace) -> int:
    from litepose_ros.bags.storage import BagError
    from litepose_ros.dds import apply_loopback_environment, loopback_environment, remove_stale_shared_memory
    from litepose_ros.samples import SAMPLES_DIR

    started = time.monotonic()
    # The demo is one of the project's own runs: its DDS traffic stays on this machine. Applied
    # before rclpy starts (this process records) and passed to the node process.
    apply_loopback_environment()
    remove_stale_shared_memory()  # what killed ROS processes left in /dev/shm (RAM)
    from litepose_ros.bags.node_in_the_loop import LoopOptions, NodeInTheLoopError, run_node_in_the_loop

    bag = args.bag or SAMPLES_DIR / "vtest_sample.mcap"
    model = _model_path(args.model)
    output = args.output
    _prepare_output(output)
    print(f"litepose demo: the pose node on {bag.name} with model {model.name} (output in {output}/)")
    parameters = {"threads": str(args.threads)} if args.threads else {}
    options = LoopOptions(
        model=model,
        rate=args.rate,
        record_annotated=True,
        node_parameters=parameters,
        tracking=not args.no_tracking,
    )
    try:
        result = run_node_in_the_loop(
            bag, output, options, env=loopback_environment(), log=lambda text: print(f"  {text}")
        )
    except (BagError, NodeInTheLoopError) as error:
        raise UserError(str(error)) from error
    report = result.report
    persons = {f.index: f.persons for f in result.frames if f.received is not None}
    frames = write_frames(output / "frames", result.annotated)
    video = write_video(output / "annotated.mp4", result.annotated, _bag_frame_rate(result.frames) or 15.0)
    ids = {f.index: f.ids for f in result.frames if f.received is not None}
    sheet = write_contact_sheet(output / "contact_sheet.png", result.annotated, persons, ids)
    tracking = clip_tracking(report.get("tracking"), bundled=args.bag is None)
    if tracking is not None:
        report["tracking"] = tracking
        result.files["json"].write_text(json.dumps(report, indent=1) + "\n")
    _append_outputs(result.files["markdown"], frames, video, sheet, tracking)

    counts = report["frames"]
    latency = report["end_to_end_latency_ms"] or {"p50": float("nan"), "p95": float("nan")}
    per_frame = report["persons_per_frame"] or {"mean": 0.0}
    print(
        f"frames in {counts['sent']}, processed {counts['processed']}, dropped {counts['dropped']}; "
        f"{per_frame['mean']:.1f} persons per frame; end-to-end latency p50 {latency['p50']:.0f} ms, "
        f"p95 {latency['p95']:.0f} ms"
    )
    if tracking is not None:
        print(tracking_sentence(tracking))
    print(f"done in {time.monotonic() - started:.0f} s. Look at:")
    for label, path in (
        ("contact sheet", sheet),
        ("video", video),
        ("annotated frames", output / "frames"),
        ("summary", result.files["markdown"]),
        ("recorded bag", result.files["bag"]),
    ):
        if path is not None:
            print(f"  {label + ':':18s} {path}")
    if not result.annotated:
        print("  (the node published no annotated image: see node.log)")
        return 1
    return 0


def _bag_frame_rate(frames) -> float | None:
    if len(frames) < 2:
        return None
    duration = (frames[-1].stamp_ns - frames[0].stamp_ns) / 1e9
    return (len(frames) - 1) / duration if duration > 0 else None


def clip_tracking(tracking: dict | None, *, bundled: bool) -> dict | None:
    """The run's tracking figures (None when the node did not track), with the pedestrians
    counted by eye in the bundled clip when that is what was replayed."""
    from litepose_ros.samples import VTEST_PEDESTRIANS

    if not tracking or not tracking.get("enabled"):
        return None
    return {**tracking, "pedestrians_counted_by_eye": VTEST_PEDESTRIANS if bundled else None}


def tracking_sentence(tracking: dict) -> str:
    """What the demo says about tracking: distinct ids (against the eye count) and track lengths."""
    text = f"tracking: {tracking['tracks_started']} distinct ids over the clip"
    if tracking.get("pedestrians_counted_by_eye") is not None:
        text += f" ({tracking['pedestrians_counted_by_eye']} pedestrians in it, counted by eye)"
    return (
        text + f"; track length median {tracking['median_track_frames']:.0f} frames "
        f"({tracking['median_track_seconds']:.2f} s), mean {tracking['mean_track_frames']:.1f} frames"
    )


def _append_outputs(
    summary: Path, frames: list[Path], video: Path | None, sheet: Path | None, tracking: dict | None = None
) -> None:
    lines = []
    if tracking is not None:
        lines += ["## Tracking on the clip", "", tracking_sentence(tracking) + ".", ""]
    lines += ["## What the demo left", ""]
    if sheet is not None:
        lines += [f"![contact sheet]({sheet.name})", ""]
    lines += [
        f"- `{sheet.name}`: 12 annotated frames at a glance (with the ids of their people)"
        if sheet
        else "- no contact sheet",
        f"- `{video.name}`: the annotated sequence" if video else "- no video (OpenCV cannot write MP4 here)",
        f"- `frames/`: {len(frames)} annotated frames (JPEG)",
        "- `bag/`: everything the node published (mcap; `litepose bag-play` replays it)",
        "- `node.log`: the node's log",
        "",
    ]
    summary.write_text(summary.read_text() + "\n" + "\n".join(lines))
