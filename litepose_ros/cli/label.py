"""``litepose label INPUT...``: pseudo-label people with the MoveNet teacher into COCO keypoints.

Inputs: image files, folders of images, videos and rosbag2 bags (sqlite3 / mcap; Image and
CompressedImage topics). Writes into ``--output``: ``labels.json`` (COCO keypoints; ``file_name``
relative to the output folder, so train with ``train_images`` = that folder), extracted
video and bag frames under ``frames/``, ``progress.jsonl`` (what makes a killed run resumable:
run the same command again) and ``label_config.json``. With ``--evaluate GT.json`` the labels are
scored against real ground truth (COCO AP of the teacher's poses).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from litepose_ros.cli import UserError


def _option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from litepose_ros.labelling.pipeline import LabelConfig

    parser.add_argument("inputs", nargs="+", type=Path, help="image files, folders, videos or rosbag2 bags")
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        required=True,
        help="output folder (resumes the labels a previous run with the same settings left)",
    )
    parser.add_argument(
        "--teacher",
        type=Path,
        default=None,
        help="folder with movenet-multipose.onnx and movenet-thunder.onnx (default: "
        "$LITEPOSE_TEACHER_DIR; docs/labelling.md says how to obtain them offline)",
    )
    parser.add_argument(
        "--boxes",
        type=Path,
        default=None,
        help="COCO instances json with known person boxes (matched by image file name): "
        "every boxed person is labelled or becomes an ignore region",
    )
    parser.add_argument("--topic", default=None, help="bag image topic (needed when a bag has several)")
    parser.add_argument("--every", type=int, default=1, help="videos and bags: label every N-th frame")
    parser.add_argument(
        "--min-interval",
        type=float,
        default=0.0,
        help="videos and bags: at least this many seconds between labelled frames",
    )
    parser.add_argument(
        "--skip-duplicates",
        type=float,
        default=0.0,
        help="videos and bags: skip frames whose 32x32 grey thumbnail differs from the last "
        "labelled one by less than this mean absolute difference (0-255; 0: off; 2 "
        "skips a still scene)",
    )
    parser.add_argument("--workers", type=int, default=1, help="labelling processes (one per core)")
    parser.add_argument(
        "--evaluate",
        type=Path,
        default=None,
        help="COCO keypoints ground truth of the same images: print the labels' AP",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    pipeline = parser.add_argument_group("pipeline (docs/labelling.md)")
    for field in dataclasses.fields(LabelConfig):
        default = LabelConfig().__getattribute__(field.name)
        help_text = f"{field.metadata['help']} (default {default})"
        if isinstance(default, bool):
            pipeline.add_argument(
                _option_name(field.name),
                action=argparse.BooleanOptionalAction,
                default=default,
                help=help_text,
            )
        elif isinstance(default, tuple):
            pipeline.add_argument(
                _option_name(field.name), type=int, nargs="+", default=list(default), help=help_text
            )
        else:
            pipeline.add_argument(
                _option_name(field.name), type=type(default), default=default, help=help_text
            )


def run(args: argparse.Namespace) -> int:
    from litepose_ros.labelling.pipeline import LabelConfig
    from litepose_ros.labelling.run import label_inputs
    from litepose_ros.labelling.sources import Sampling, SourceError
    from litepose_ros.labelling.teacher import TeacherError

    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    try:
        config = LabelConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(LabelConfig)})
        sampling = Sampling(
            every=args.every, min_interval=args.min_interval, skip_duplicates=args.skip_duplicates
        )
        summary = label_inputs(
            args.inputs,
            args.output,
            teacher_dir=args.teacher,
            config=config,
            sampling=sampling,
            topic=args.topic,
            boxes_file=args.boxes,
            workers=args.workers,
            progress=not args.no_progress,
        )
    except (TeacherError, SourceError, ValueError) as error:
        raise UserError(str(error)) from error
    print(
        f"{summary.frames} frames, {summary.people} people, {summary.ignore_regions} ignore regions"
        f"{f', {len(summary.errors)} frames skipped' if summary.errors else ''}: {summary.labels_file}"
    )
    if args.evaluate is not None:
        print(json.dumps(evaluate_labels(summary.labels_file, args.evaluate), indent=1))
    return 0


def evaluate_labels(labels_file: Path, ground_truth: Path) -> dict[str, float | None]:
    """AP of the teacher's poses in a labels.json against ground truth of the same images (by file name)."""
    from litepose_ros.evaluation import evaluate_keypoints, load_annotations
    from litepose_ros.labelling.store import teacher_predictions

    labels = json.loads(Path(labels_file).read_text())
    truth = load_annotations(ground_truth)
    truth_ids = {Path(img["file_name"]).name: int(img["id"]) for img in truth["images"]}
    label_to_truth = {}
    for image in labels["images"]:
        name = Path(image["file_name"]).name
        if name not in truth_ids:
            raise UserError(f"{labels_file}: image {name} is not in the ground truth {ground_truth}")
        label_to_truth[int(image["id"])] = truth_ids[name]
    predictions = [dict(p, image_id=label_to_truth[p["image_id"]]) for p in teacher_predictions(labels)]
    return evaluate_keypoints(truth, predictions, image_ids=sorted(label_to_truth.values()))
