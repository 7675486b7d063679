"""Decoding at stride 2 (the default) against stride 1 (maps upsampled to the network input, as
the reference's evaluation groups): AP and decoding time on an annotated set, same network outputs.

``python tools/bench_decode_stride.py ANNOTATIONS.json IMAGES/ [--model M.onnx] [--max-images N]``
prints a markdown table: for each flip-test setting and stride, AP, AP50, AR and the median and
p90 decoding time per image (``Estimator.predict``'s decode stage: merging, upsampling, grouping,
refine), with the load average before and after.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np

from litepose_ros.estimator import Estimator, resolve_model_path
from litepose_ros.evaluation import evaluate_keypoints, load_annotations, predictions_from_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("annotations", type=Path)
    parser.add_argument("images", type=Path)
    parser.add_argument("--model", default=None, help="default: the bundled model")
    parser.add_argument("--max-images", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    dataset = load_annotations(args.annotations)
    infos = sorted(dataset["images"], key=lambda info: int(info["id"]))[: args.max_images]
    frames = [(int(info["id"]), cv2.imread(str(args.images / info["file_name"]))) for info in infos]
    model = resolve_model_path(args.model)
    print(
        f"1-minute load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} logical cores); "
        f"model {model.name}, {len(frames)} images\n"
    )
    print("| flip test | decode stride | AP | AP50 | AR | decode median ms | decode p90 ms |")
    print("|---|---|---|---|---|---|---|")
    for flip in (False, True):
        estimators = {
            stride: Estimator.from_model(model, flip_test=flip, decode_stride=stride, threads=args.threads)
            for stride in (2, 1)
        }
        predictions: dict[int, list[dict]] = {stride: [] for stride in estimators}
        decode_ms: dict[int, list[float]] = {stride: [] for stride in estimators}
        for image_id, frame in frames:  # interleaved: both strides on each image in turn
            for stride, estimator in estimators.items():
                result = estimator.predict(frame)
                predictions[stride].extend(predictions_from_result(image_id, result))
                decode_ms[stride].append(result.timing.decode_ms)
        for stride in estimators:
            metrics = evaluate_keypoints(dataset, predictions[stride], image_ids=[i for i, _ in frames])
            times = np.asarray(decode_ms[stride])
            print(
                f"| {'on' if flip else 'off'} | {stride} | {metrics['AP']:.3f} | {metrics['AP50']:.3f} | "
                f"{metrics['AR']:.3f} | {np.median(times):.2f} | {np.percentile(times, 90):.2f} |"
            )
    print(f"\n1-minute load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
