"""A tiny hand-built ONNX "pose model" whose outputs are known, for end-to-end tests.

It sees red light as people: every joint's heatmap is the red channel (back in [0, 1]) averaged
over each output pixel's input pixels (2x2 at stride 2, 4x4 at stride 4), and every joint's tag
is 4 x the green channel the same way. A red blob in an image is thus one person with all K
joints at the blob's centre, and the blob's green level tells people apart. It carries the
``litepose.*`` metadata of a real export, so the engine and the estimator treat it as one.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _const(name: str, values, dtype=np.float32) -> onnx.TensorProto:
    return helper.make_tensor(
        name,
        TensorProto.FLOAT if dtype == np.float32 else TensorProto.INT64,
        np.shape(values),
        np.asarray(values, dtype).ravel().tolist(),
    )


def _red_and_green() -> tuple[list[onnx.TensorProto], list[onnx.NodeProto]]:
    """Initializers and nodes that undo the input normalisation: ``red`` in [0, 1] and ``green`` x 4."""
    initializers = [
        _const("red_start", [0], np.int64),
        _const("red_end", [1], np.int64),
        _const("green_start", [1], np.int64),
        _const("green_end", [2], np.int64),
        _const("axis1", [1], np.int64),
        _const("red_std", [STD[0]]),
        _const("red_mean", [MEAN[0]]),
        _const("green_std4", [4 * STD[1]]),
        _const("green_mean4", [4 * MEAN[1]]),
    ]
    nodes = [
        helper.make_node("Slice", ["image", "red_start", "red_end", "axis1"], ["red_n"]),
        helper.make_node("Mul", ["red_n", "red_std"], ["red_s"]),
        helper.make_node("Add", ["red_s", "red_mean"], ["red"]),
        helper.make_node("Slice", ["image", "green_start", "green_end", "axis1"], ["green_n"]),
        helper.make_node("Mul", ["green_n", "green_std4"], ["green_s"]),
        helper.make_node("Add", ["green_s", "green_mean4"], ["green"]),
    ]
    return initializers, nodes


def _save_pose_model(
    path: Path, name: str, k: int, *, initializers: list, nodes: list, metadata: dict[str, str]
) -> Path:
    """Wrap the nodes in a graph with a pose network's input and two outputs, check and save it."""
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [
            helper.make_tensor_value_info(
                "heatmaps_tags_stride4", TensorProto.FLOAT, ["N", 2 * k, "H4", "W4"]
            ),
            helper.make_tensor_value_info("heatmaps_stride2", TensorProto.FLOAT, ["N", k, "H2", "W2"]),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def write_blob_model(
    path: Path, num_joints: int = 17, input_size: int | None = 128, layout: str = "coco17"
) -> Path:
    """Write the model to ``path`` and return it (``input_size`` None: no input size metadata)."""
    k = num_joints

    initializers, nodes = _red_and_green()
    initializers.append(_const("expand", [1, k, 1, 1], np.int64))
    nodes += [
        helper.make_node("AveragePool", ["red"], ["heat2"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["red"], ["heat4"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("AveragePool", ["green"], ["tag4"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Expand", ["heat2", "expand"], ["heatmaps_stride2"]),
        helper.make_node("Expand", ["heat4", "expand"], ["heat4_k"]),
        helper.make_node("Expand", ["tag4", "expand"], ["tag4_k"]),
        helper.make_node("Concat", ["heat4_k", "tag4_k"], ["heatmaps_tags_stride4"], axis=1),
    ]
    metadata = {"litepose.num_joints": str(k), "litepose.layout": layout, "litepose.variant": "custom"}
    if input_size is not None:
        metadata["litepose.input_size"] = str(input_size)
    return _save_pose_model(
        path, "blob_pose_model", k, initializers=initializers, nodes=nodes, metadata=metadata
    )


def draw_blob(image: np.ndarray, centre: tuple[float, float], sigma: float, green: float) -> None:
    """Add a red Gaussian blob (peak 255) with the given green level (0..1) to a BGR image."""
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width]
    weight = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2))
    red = np.maximum(image[..., 2], np.round(255 * weight))
    image[..., 2] = red.astype(np.uint8)
    image[..., 1] = np.where(weight > 0.01, round(255 * green), image[..., 1]).astype(np.uint8)


def write_blob_set(folder: Path, people: dict[int, list[tuple[float, float]]]) -> dict:
    """Write one 300x200 PNG per image id with a blob per person centre (green 0, 0.5, ... tells
    them apart) into ``folder`` and return the matching COCO keypoint data set: all 17 joints of a
    person at its centre, as the blob model predicts them."""
    images, annotations = [], []
    for image_id, centres in people.items():
        image = np.zeros((200, 300, 3), np.uint8)
        for i, centre in enumerate(centres):
            draw_blob(image, centre, 6.0, green=0.5 * i)
        cv2.imwrite(str(Path(folder) / f"{image_id}.png"), image)
        images.append({"id": image_id, "file_name": f"{image_id}.png", "width": 300, "height": 200})
        for x, y in centres:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "iscrowd": 0,
                    "num_keypoints": 17,
                    "keypoints": [x, y, 2] * 17,
                    "bbox": [x - 50, y - 50, 100, 100],
                    "area": 10000.0,
                }
            )
    return {
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(17)], "skeleton": []}
        ],
    }


# Joint positions of the skeleton model's "person", in network input pixels from the blob's
# centre (x right, y down): a stick figure 24 px tall, COCO order (nose, eyes, ears, shoulders,
# elbows, wrists, hips, knees, ankles; left is the person's left, on the image's right).
SKELETON_OFFSETS = (
    (0, -11),
    (1, -12),
    (-1, -12),
    (2, -11),
    (-2, -11),
    (4, -7),
    (-4, -7),
    (5, -3),
    (-5, -3),
    (6, 1),
    (-6, 1),
    (3, 2),
    (-3, 2),
    (3, 7),
    (-3, 7),
    (3, 12),
    (-3, 12),
)


def write_skeleton_model(
    path: Path, input_size: int = 128, offsets: tuple[tuple[int, int], ...] = SKELETON_OFFSETS
) -> Path:
    """Like ``write_blob_model``, but joint j of a blob lies ``offsets[j]`` (dx, dy) network input
    pixels from the blob's centre: a red blob is one person with a body-sized skeleton (a box,
    joints spread out), so OKS and IoU between frames behave as for a real person. Each joint's
    heatmap (and tag) is the red (green) channel shifted by the joint's offset (a one-hot
    convolution kernel per joint). COCO layout, 17 joints."""
    k = len(offsets)
    reach = max(max(abs(dx), abs(dy)) for dx, dy in offsets)
    size = 2 * reach + 1
    kernel = np.zeros((k, 1, size, size), np.float32)
    for joint, (dx, dy) in enumerate(offsets):
        # out(y, x) = in(y - dy, x - dx): the blob centre c shows up at c + (dx, dy).
        kernel[joint, 0, reach - dy, reach - dx] = 1.0

    initializers, nodes = _red_and_green()
    initializers.append(_const("shift", kernel))
    pads = [reach, reach, reach, reach]
    nodes += [
        helper.make_node("Conv", ["red", "shift"], ["red_k"], pads=pads),
        helper.make_node("Conv", ["green", "shift"], ["green_k"], pads=pads),
        helper.make_node("AveragePool", ["red_k"], ["heatmaps_stride2"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["red_k"], ["heat4_k"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("AveragePool", ["green_k"], ["tag4_k"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Concat", ["heat4_k", "tag4_k"], ["heatmaps_tags_stride4"], axis=1),
    ]
    return _save_pose_model(
        path,
        "skeleton_pose_model",
        k,
        initializers=initializers,
        nodes=nodes,
        metadata={
            "litepose.num_joints": str(k),
            "litepose.layout": "coco17",
            "litepose.variant": "custom",
            "litepose.input_size": str(input_size),
        },
    )
