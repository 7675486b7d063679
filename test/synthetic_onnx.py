"""A tiny hand-built ONNX "pose model" whose outputs are known, for end-to-end tests.

It sees red light as people: every joint's heatmap is the red channel (back in [0, 1]) averaged
over each output pixel's input pixels (2x2 at stride 2, 4x4 at stride 4), and every joint's tag
is 4 x the green channel the same way. A red blob in an image is thus one person with all K
joints at the blob's centre, and the blob's green level tells people apart. It carries the
``litepose.*`` metadata of a real export, so the engine and the estimator treat it as one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def write_blob_model(path: Path, num_joints: int = 17, input_size: int | None = 128,
                     layout: str = "coco17") -> Path:
    """Write the model to ``path`` and return it (``input_size`` None: no input size metadata)."""
    k = num_joints

    def const(name: str, values, dtype=np.float32) -> onnx.TensorProto:
        return helper.make_tensor(name, TensorProto.FLOAT if dtype == np.float32 else TensorProto.INT64,
                                  np.shape(values), np.asarray(values, dtype).ravel().tolist())

    initializers = [
        const("red_start", [0], np.int64), const("red_end", [1], np.int64),
        const("green_start", [1], np.int64), const("green_end", [2], np.int64),
        const("axis1", [1], np.int64),
        const("red_std", [STD[0]]), const("red_mean", [MEAN[0]]),
        const("green_std4", [4 * STD[1]]), const("green_mean4", [4 * MEAN[1]]),
        const("expand", [1, k, 1, 1], np.int64),
    ]
    nodes = [
        helper.make_node("Slice", ["image", "red_start", "red_end", "axis1"], ["red_n"]),
        helper.make_node("Mul", ["red_n", "red_std"], ["red_s"]),
        helper.make_node("Add", ["red_s", "red_mean"], ["red"]),
        helper.make_node("Slice", ["image", "green_start", "green_end", "axis1"], ["green_n"]),
        helper.make_node("Mul", ["green_n", "green_std4"], ["green_s"]),
        helper.make_node("Add", ["green_s", "green_mean4"], ["green"]),
        helper.make_node("AveragePool", ["red"], ["heat2"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["red"], ["heat4"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("AveragePool", ["green"], ["tag4"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Expand", ["heat2", "expand"], ["heatmaps_stride2"]),
        helper.make_node("Expand", ["heat4", "expand"], ["heat4_k"]),
        helper.make_node("Expand", ["tag4", "expand"], ["tag4_k"]),
        helper.make_node("Concat", ["heat4_k", "tag4_k"], ["heatmaps_tags_stride4"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "blob_pose_model",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("heatmaps_tags_stride4", TensorProto.FLOAT, ["N", 2 * k, "H4", "W4"]),
         helper.make_tensor_value_info("heatmaps_stride2", TensorProto.FLOAT, ["N", k, "H2", "W2"])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    metadata = {"litepose.num_joints": str(k), "litepose.layout": layout, "litepose.variant": "custom"}
    if input_size is not None:
        metadata["litepose.input_size"] = str(input_size)
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def draw_blob(image: np.ndarray, centre: tuple[float, float], sigma: float, green: float) -> None:
    """Add a red Gaussian blob (peak 255) with the given green level (0..1) to a BGR image."""
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width]
    weight = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma ** 2))
    red = np.maximum(image[..., 2], np.round(255 * weight))
    image[..., 2] = red.astype(np.uint8)
    image[..., 1] = np.where(weight > 0.01, round(255 * green), image[..., 1]).astype(np.uint8)
