"""``litepose eval``: COCO / CrowdPose keypoint AP of a model on an annotated image set.

Examples:
  litepose eval --annotations person_keypoints_val2017.json --images val2017   # the bundled model
  litepose eval --model model.onnx --annotations person_keypoints_val2017.json --images val2017
  litepose eval --model best.pth --annotations crowdpose_test.json --images images --crowdpose \\
      --output results.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from litepose_ros.engine import ENGINE_NAMES
from litepose_ros.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", type=Path, help="ONNX file or PyTorch checkpoint (default: the bundled model)"
    )
    parser.add_argument("--annotations", type=Path, required=True, help="COCO-format keypoint JSON")
    parser.add_argument("--images", type=Path, required=True, help="folder of the annotated images")
    parser.add_argument(
        "--crowdpose", action="store_true", help="CrowdPose rules and metrics (AP easy / medium / hard)"
    )
    parser.add_argument("--output", type=Path, help="write metrics and predictions to this JSON file")
    parser.add_argument("--input-size", type=int, help="network input short side (default: the model's)")
    parser.add_argument("--no-flip", action="store_true", help="no flip test (faster, a little less AP)")
    parser.add_argument(
        "--decode-stride",
        type=int,
        choices=(1, 2),
        default=2,
        help="group on maps at stride 2 (default) or upsampled to the input, stride 1, as "
        "the reference's evaluation (a little more AP, slower decoding)",
    )
    parser.add_argument(
        "--engine",
        default="onnxruntime",
        choices=ENGINE_NAMES,
        help="inference engine (default: onnxruntime)",
    )
    parser.add_argument("--threads", type=int, help="inference threads")
    parser.add_argument("--max-images", type=int, help="evaluate on the first N images only")
    parser.add_argument(
        "--ignore-duplicated-people",
        action="store_true",
        help="treat people whose keypoints are copied verbatim into other images (a "
        "pseudo-labelling artefact, e.g. in pseudo_people) as crowd regions",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from litepose_ros.estimator import Estimator, resolve_model_path
    from litepose_ros.evaluation import duplicated_people_as_crowd, evaluate_estimator, load_annotations

    try:
        args.model = resolve_model_path(args.model, source="--model")
    except FileNotFoundError as error:
        raise UserError(str(error)) from error
    if not args.annotations.is_file():
        raise UserError(f"annotation file {args.annotations} does not exist")
    if not args.images.is_dir():
        raise UserError(f"image folder {args.images} does not exist")
    try:
        annotations = load_annotations(args.annotations)
        if args.ignore_duplicated_people:
            annotations = duplicated_people_as_crowd(annotations)
        settings = {"engine": args.engine, "flip_test": not args.no_flip, "decode_stride": args.decode_stride}
        if args.input_size:
            settings["input_size"] = args.input_size
        if args.threads:
            settings["threads"] = args.threads
        estimator = Estimator.from_model(args.model, **settings)
        report = evaluate_estimator(
            estimator,
            annotations,
            args.images,
            crowdpose=args.crowdpose,
            max_images=args.max_images,
            output=args.output,
            progress=not args.no_progress,
            details={"model": str(args.model), "estimator": estimator.describe()},
        )
    except (FileNotFoundError, ValueError, json.JSONDecodeError) as error:
        raise UserError(str(error)) from error
    print(
        f"{estimator.describe()}\n{report['images']} images, {report['detections']} detections "
        f"({report['mode']} evaluation)"
    )
    for name, value in report["metrics"].items():
        print(f"  {name:<10} {'n/a' if value is None or value < 0 else f'{value:.4f}'}")
    if args.output:
        print(f"results written to {args.output}")
    return 0
