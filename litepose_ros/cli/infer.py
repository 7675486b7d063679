"""``litepose infer PATH``: estimate poses in an image, a folder of images or a video.

Writes into the output folder: the annotated image(s) (same file names) or ``<video stem>_pose.mp4``,
``results.json`` in the COCO keypoint results format (``[{image_id, category_id: 1, keypoints:
[x, y, score] * K, score}]``, pixel centres, (0, 0) = centre of the top-left pixel) and
``images.json`` (``[{id, file_name, width, height}]``, COCO's "images" list) saying which image
each ``image_id`` is.

How ``image_id`` is chosen: for images, the number in the file name when every file name is a
number (COCO's ``000000000139.jpg`` becomes 139, so results join COCO annotations directly),
otherwise the position in name order starting at 1. For a video, the frame index starting at 0.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from litepose_ros.engine import DEFAULT_ALLOW_SPINNING, ENGINE_NAMES
from litepose_ros.errors import UserError
from litepose_ros.image_encodings import IMAGE_SUFFIXES, VIDEO_SUFFIXES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="an image, a folder of images or a video file")
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="model file (.onnx from `litepose export`, or a checkpoint with --engine "
        "torch); "
        "default: the bundled model",
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        default=Path("litepose_output"),
        help="output folder (default: ./litepose_output)",
    )
    parser.add_argument(
        "--input-size",
        type=int,
        default=None,
        help="network input short side in pixels (default: the model's)",
    )
    parser.add_argument(
        "--engine", choices=ENGINE_NAMES, default="onnxruntime", help="inference engine (default onnxruntime)"
    )
    parser.add_argument("--threads", type=int, default=None, help="inference threads (default: all cores)")
    parser.add_argument(
        "--spinning",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_ALLOW_SPINNING,
        help="let ONNX Runtime's worker threads spin-wait between images (default off, as in "
        "the library and the node: a little less latency on an idle machine, slower "
        "on a busy one)",
    )
    parser.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="flip test: also run the mirrored image (default on, off with --fast)",
    )
    parser.add_argument(
        "--fast", action="store_true", help="real-time decoding: no flip test, adjust or refine"
    )
    parser.add_argument(
        "--decode-stride",
        type=int,
        choices=(1, 2),
        default=2,
        help="group on maps at stride 2 (default) or upsampled to the input, stride 1 "
        "(a little more AP, slower decoding; see docs/decoding.md)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.1,
        help="leave out people scoring below this (default 0.1; 0 keeps all, e.g. for AP)",
    )
    parser.add_argument(
        "--keypoint-threshold",
        type=float,
        default=0.3,
        help="draw keypoints scoring at least this (default 0.3)",
    )


def run(args: argparse.Namespace) -> int:
    path: Path = args.path
    if not path.exists():
        raise UserError(f"{path} does not exist")
    kind = _input_kind(path)
    output: Path = args.output
    if kind == "folder" and output.resolve() == path.resolve():
        raise UserError(
            f"the output folder {output} is the input folder: the annotated images would "
            "replace the originals; choose another --output"
        )
    estimator = _load_estimator(args)
    output.mkdir(parents=True, exist_ok=True)
    if kind == "video":
        results, images, frames = _run_video(estimator, path, output, args)
        what = f"{frames} frames of {path.name}"
    else:
        files = (
            sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if kind == "folder"
            else [path]
        )
        if not files:
            raise UserError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        results, images = _run_images(estimator, files, output, args)
        what = f"{len(images)} image{'s' if len(images) != 1 else ''}"
    (output / "results.json").write_text(json.dumps(results))
    (output / "images.json").write_text(json.dumps(images, indent=1))
    print(
        f"{what}: {len(results)} people (score >= {args.threshold}); wrote annotated "
        f"output, results.json and images.json to {output}"
    )
    return 0


def _input_kind(path: Path) -> str:
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    raise UserError(
        f"{path} is neither an image ({', '.join(IMAGE_SUFFIXES)}), a video "
        f"({', '.join(VIDEO_SUFFIXES)}) nor a folder"
    )


def _load_estimator(args: argparse.Namespace):
    from litepose_ros.estimator import BundledModelMissing, Estimator, resolve_model_path

    try:
        model = resolve_model_path(args.model)
    except BundledModelMissing as error:
        raise UserError(f"no --model given: {error}") from None
    except FileNotFoundError as error:
        raise UserError(str(error)) from None
    settings = {
        "engine": args.engine,
        "threads": args.threads,
        "input_size": args.input_size,
        "allow_spinning": args.spinning,
        "fast": args.fast,
        "decode_stride": args.decode_stride,
        "keypoint_threshold": args.keypoint_threshold,
    }
    if args.flip is not None:
        settings["flip_test"] = args.flip
    try:
        return Estimator.from_model(model, **settings)
    except (ValueError, TypeError, FileNotFoundError) as error:
        raise UserError(f"cannot load {model}: {error}") from None


def image_ids(files: list[Path]) -> list[int]:
    """COCO image ids for files: their numeric names when all are numbers (and distinct), else
    1, 2, ... in the given order."""
    stems = [f.stem for f in files]
    if all(s.isdigit() for s in stems) and len({int(s) for s in stems}) == len(stems):
        return [int(s) for s in stems]
    return list(range(1, len(files) + 1))


def coco_results(image_id: int, result, threshold: float) -> list[dict]:
    """COCO keypoint result entries for the people of one PoseResult scoring at least threshold."""
    from litepose_ros.people import coco_results as people_coco_results

    return people_coco_results(image_id, result, score_threshold=threshold, keypoint_digits=2, score_digits=5)


def _annotate(image: np.ndarray, result, args: argparse.Namespace) -> np.ndarray:
    from litepose_ros.drawing import draw_people

    keep = np.flatnonzero(result.scores >= args.threshold)
    return draw_people(
        image,
        result.keypoints[keep],
        result.scores[keep],
        result.layout,
        keypoint_threshold=args.keypoint_threshold,
    )


def _run_images(
    estimator, files: list[Path], output: Path, args: argparse.Namespace
) -> tuple[list[dict], list[dict]]:
    import cv2
    from tqdm import tqdm

    results, images = [], []
    for file, image_id in tqdm(
        list(zip(files, image_ids(files), strict=True)), desc="images", unit="img", disable=len(files) == 1
    ):
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            raise UserError(f"cannot read image {file} (not an image OpenCV can decode?)")
        result = estimator.predict(image, color_order="bgr")
        results += coco_results(image_id, result, args.threshold)
        images.append(
            {"id": image_id, "file_name": file.name, "width": image.shape[1], "height": image.shape[0]}
        )
        target = output / file.name
        if not cv2.imwrite(str(target), _annotate(image, result, args)):
            raise UserError(f"cannot write {target}")
    return results, images


def _run_video(
    estimator, path: Path, output: Path, args: argparse.Namespace
) -> tuple[list[dict], list[dict], int]:
    import cv2
    from tqdm import tqdm

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise UserError(f"cannot open video {path} (unsupported codec or not a video)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    target = output / f"{path.stem}_pose.mp4"
    writer = None
    results, images = [], []
    frame_index = 0
    try:
        with tqdm(total=total, desc=path.name, unit="frame") as progress:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                if writer is None:
                    writer = cv2.VideoWriter(
                        str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, (frame.shape[1], frame.shape[0])
                    )
                    if not writer.isOpened():
                        raise UserError(f"cannot write video {target} (mp4v encoder unavailable?)")
                result = estimator.predict(frame, color_order="bgr")
                results += coco_results(frame_index, result, args.threshold)
                images.append(
                    {
                        "id": frame_index,
                        "file_name": f"{path.name}#{frame_index}",
                        "width": frame.shape[1],
                        "height": frame.shape[0],
                    }
                )
                writer.write(_annotate(frame, result, args))
                frame_index += 1
                progress.update(1)
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if frame_index == 0:
        raise UserError(f"{path} has no frames OpenCV can decode")
    return results, images, frame_index
