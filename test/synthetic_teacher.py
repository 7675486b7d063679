"""Tiny hand-built ONNX stand-ins for the MoveNet teachers, for pseudo-labelling tests.

They have exactly the interface of the real files (shared/teachers/movenet/README.md): one int32
NHWC RGB input named ``input`` (0..255) and one float32 output named ``output_0``:

- ``movenet-multipose.onnx``: input ``[1, height, width, 3]`` (dynamic; unlike the real model any
  size works, not only multiples of 32), output ``[1, 6, 56]``: per row 17 x (y, x, score), then
  ``ymin, xmin, ymax, xmax, box score``; y and x normalised by the input tensor's height / width.
- ``movenet-thunder.onnx``: input ``[1, 256, 256, 3]``, output ``[1, 1, 17, 3]`` (y, x, score
  normalised to the crop).

Scene convention. A person is a filled axis-aligned rectangle of colour R = 255, G = 0,
B = ``SLOT_BLUE[j]`` = 40 * (j + 1) for slot j in 0..5 (``draw_person``); any pixel with R < 128 is
background. Boxes use the continuous pixel-edge convention: a rectangle covering pixel rows
ymin..ymax (inclusive) spans [ymin, ymax + 1), and ``TEMPLATE`` (u across, v down, score) places
the 17 COCO keypoints at y = ymin + v * (ymax + 1 - ymin), x = xmin + u * (xmax + 1 - xmin).

- multipose: row j looks at slot j only, mask_j = (R >= 128) & (|B - SLOT_BLUE[j]| <= 15). If the
  mask's bounding box is at least ``MIN_PERSON_HEIGHT`` tensor pixels tall the row is a detection:
  template keypoints and scores in that box, box (ymin, xmin, ymax + 1, xmax + 1) / size, box
  score 0.9. Otherwise the row's keypoint and box scores are 0 but its coordinates are left as
  computed (as in the real model, whose empty rows carry junk coordinates: filter by score).
- thunder: mask = R >= 128, whatever the slot; template keypoints in the bounding box of the whole
  mask, scores = template scores + 0.05 (so tests can tell thunder from multipose output), all
  scores 0 when the crop has no bright pixel. A crop holding two people therefore yields the
  template in their union box: the case a "crop locked onto another person" guard must catch.

Resizing blends a rectangle's edge pixels with their neighbours, which can move a detected box by a
pixel or so and, where two people touch, make blended pixels match a third slot's blue: keep
people a few pixels apart and compare with a pixel of tolerance after any resize.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NUM_SLOTS = 6
SLOT_BLUE = tuple(40 * (j + 1) for j in range(NUM_SLOTS))
BLUE_TOLERANCE = 15
RED_THRESHOLD = 128
MIN_PERSON_HEIGHT = 24
BOX_SCORE = 0.9
THUNDER_SCORE_OFFSET = 0.05
THUNDER_SIZE = 256
OPSET = 17

# COCO-17 order; a standing person facing the camera, so the person's left is on the image right.
# Columns: u (across the box), v (down the box), score. Knees 0.45 and ankles 0.2: a 0.3 threshold
# keeps 15 keypoints and leaves the ankles unlabelled.
TEMPLATE = np.array(
    [
        [0.50, 0.08, 0.8],  # nose
        [0.55, 0.06, 0.8],  # left eye
        [0.45, 0.06, 0.8],  # right eye
        [0.60, 0.07, 0.8],  # left ear
        [0.40, 0.07, 0.8],  # right ear
        [0.70, 0.20, 0.8],  # left shoulder
        [0.30, 0.20, 0.8],  # right shoulder
        [0.78, 0.35, 0.8],  # left elbow
        [0.22, 0.35, 0.8],  # right elbow
        [0.82, 0.50, 0.8],  # left wrist
        [0.18, 0.50, 0.8],  # right wrist
        [0.62, 0.52, 0.8],  # left hip
        [0.38, 0.52, 0.8],  # right hip
        [0.62, 0.72, 0.45],  # left knee
        [0.38, 0.72, 0.45],  # right knee
        [0.60, 0.92, 0.2],  # left ankle
        [0.40, 0.92, 0.2],  # right ankle
    ],
    dtype=np.float32,
)
TEMPLATE.setflags(write=False)
VISIBLE_AT_0_3 = TEMPLATE[:, 2] >= 0.3
VISIBLE_AT_0_3.setflags(write=False)


def draw_person(  # noqa: PLR0917 - positional box order is the agreed interface
    image: np.ndarray, slot: int, x0: int, y0: int, x1: int, y1: int
) -> np.ndarray:
    """Fill pixels x0..x1, y0..y1 (inclusive) of an HxWx3 RGB uint8 image with slot's colour."""
    if not 0 <= slot < NUM_SLOTS:
        raise ValueError(f"slot must be in 0..{NUM_SLOTS - 1}, got {slot}")
    height, width = image.shape[:2]
    if not (0 <= x0 <= x1 < width and 0 <= y0 <= y1 < height):
        raise ValueError(f"rectangle ({x0}, {y0})-({x1}, {y1}) outside a {width}x{height} image")
    image[y0 : y1 + 1, x0 : x1 + 1] = (255, 0, SLOT_BLUE[slot])
    return image


def expected_keypoints(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Template keypoints (17, 2: x, y) of the rectangle x0..x1, y0..y1 (inclusive pixels), in
    image pixel-centre coordinates ((0, 0) = centre of the top-left pixel, hence the - 0.5)."""
    u, v = TEMPLATE[:, 0].astype(np.float64), TEMPLATE[:, 1].astype(np.float64)
    x = x0 + u * (x1 + 1 - x0) - 0.5
    y = y0 + v * (y1 + 1 - y0) - 0.5
    return np.stack([x, y], axis=1)


class _Graph:
    """Collects nodes and constants, so the builders read as a sequence of tensor operations."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def const(self, values, dtype=np.float32) -> str:
        array = np.asarray(values, dtype)
        name = f"c{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, *inputs: str, output: str | None = None, **attributes) -> str:
        if output is None:
            self._count += 1
            output = f"{op_type.lower()}{self._count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], **attributes))
        return output


def _channel(g: _Graph, image: str, index: int) -> str:
    """(H, W) float32 plane of one channel of the (1, H, W, 3) float image."""
    plane = g.op("Gather", image, g.const(index, np.int64), axis=3)
    return g.op("Squeeze", plane, g.const([0], np.int64))


def _box_keypoints(g: _Graph, mask: str) -> tuple[str, str, str, str, str, str, str]:
    """Bounding boxes of an (N, H, W) float 0/1 mask, in pixel-edge coordinates.

    Returns (ymin, xmin, ymax, xmax, any, y_keypoints, x_keypoints): box edges and ``any`` (1 when
    the mask has a pixel) are (N, 1); keypoint coordinates (N, 17), all float32 and unnormalised.
    ArgMax picks the first maximum, so with select_last_index it also finds the last set row; an
    empty mask thus gets the whole tensor as its box, which callers must gate with ``any``."""
    rows = g.op("ReduceMax", mask, axes=[2], keepdims=0)  # (N, H): row has a pixel
    cols = g.op("ReduceMax", mask, axes=[1], keepdims=0)  # (N, W)
    edges = []
    for profile in (rows, cols):
        first = g.op("ArgMax", profile, axis=1, keepdims=1)
        last = g.op("ArgMax", profile, axis=1, keepdims=1, select_last_index=1)
        first_f = g.op("Cast", first, to=TensorProto.FLOAT)
        last_f = g.op("Add", g.op("Cast", last, to=TensorProto.FLOAT), g.const(1.0))
        edges.append((first_f, last_f))
    (ymin, ymax), (xmin, xmax) = edges
    present = g.op("ReduceMax", rows, axes=[1], keepdims=1)
    # Same arithmetic order as expected_keypoints: edge + fraction * extent.
    y = g.op("Add", ymin, g.op("Mul", g.const(TEMPLATE[None, :, 1]), g.op("Sub", ymax, ymin)))
    x = g.op("Add", xmin, g.op("Mul", g.const(TEMPLATE[None, :, 0]), g.op("Sub", xmax, xmin)))
    return ymin, xmin, ymax, xmax, present, y, x


def _input_size(g: _Graph, image: str) -> tuple[str, str]:
    """Float32 (1,)-shaped height and width of the NHWC input, for normalising coordinates."""
    shape = g.op("Shape", image)
    height = g.op("Cast", g.op("Gather", shape, g.const([1], np.int64)), to=TensorProto.FLOAT)
    width = g.op("Cast", g.op("Gather", shape, g.const([2], np.int64)), to=TensorProto.FLOAT)
    return height, width


def _keypoint_triples(g: _Graph, y: str, x: str, scores: str) -> str:
    """(N, 17) y, x and score -> (N, 17, 3)."""
    parts = [g.op("Unsqueeze", t, g.const([2], np.int64)) for t in (y, x, scores)]
    return g.op("Concat", *parts, axis=2)


def _save(g: _Graph, name: str, path: Path, *, input_shape: list, output_shape: list) -> Path:
    graph = helper.make_graph(
        g.nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.INT32, input_shape)],
        [helper.make_tensor_value_info("output_0", TensorProto.FLOAT, output_shape)],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    helper.set_model_props(model, {"source": "synthetic MoveNet stand-in (test/synthetic_teacher.py)"})
    onnx.checker.check_model(model, full_check=True)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def write_multipose(path: Path) -> Path:
    """Write the synthetic multipose model (see the module docstring) to ``path``."""
    g = _Graph()
    # Float from the start: 0..255 are exact and float kernels exist for every op used.
    image = g.op("Cast", "input", to=TensorProto.FLOAT)
    red, blue = _channel(g, image, 0), _channel(g, image, 2)
    bright = g.op("GreaterOrEqual", red, g.const(float(RED_THRESHOLD)))  # (H, W)
    slot_blue = g.const(np.array(SLOT_BLUE, np.float32).reshape(NUM_SLOTS, 1, 1))
    near = g.op(
        "LessOrEqual", g.op("Abs", g.op("Sub", blue, slot_blue)), g.const(float(BLUE_TOLERANCE))
    )  # (6, H, W) by broadcasting
    mask = g.op("Cast", g.op("And", bright, near), to=TensorProto.FLOAT)
    ymin, xmin, ymax, xmax, present, y, x = _box_keypoints(g, mask)
    # An empty mask's box is the whole tensor (first max 0, last max H - 1), hence the presence test.
    tall = g.op(
        "Cast",
        g.op("GreaterOrEqual", g.op("Sub", ymax, ymin), g.const(float(MIN_PERSON_HEIGHT))),
        to=TensorProto.FLOAT,
    )
    detected = g.op("Mul", tall, present)  # (6, 1)
    height, width = _input_size(g, "input")
    scores = g.op("Mul", g.const(TEMPLATE[None, :, 2]), detected)
    keypoints = _keypoint_triples(g, g.op("Div", y, height), g.op("Div", x, width), scores)
    keypoints = g.op("Reshape", keypoints, g.const([NUM_SLOTS, 17 * 3], np.int64))
    box = [
        g.op("Div", ymin, height),
        g.op("Div", xmin, width),
        g.op("Div", ymax, height),
        g.op("Div", xmax, width),
        g.op("Mul", detected, g.const(BOX_SCORE)),
    ]
    rows = g.op("Concat", keypoints, *box, axis=1)  # (6, 56)
    g.op("Unsqueeze", rows, g.const([0], np.int64), output="output_0")
    return _save(
        g,
        "synthetic_movenet_multipose",
        path,
        input_shape=[1, "height", "width", 3],
        output_shape=[1, NUM_SLOTS, 56],
    )


def write_thunder(path: Path) -> Path:
    """Write the synthetic thunder model (see the module docstring) to ``path``."""
    g = _Graph()
    image = g.op("Cast", "input", to=TensorProto.FLOAT)
    bright = g.op("GreaterOrEqual", _channel(g, image, 0), g.const(float(RED_THRESHOLD)))
    mask = g.op("Unsqueeze", g.op("Cast", bright, to=TensorProto.FLOAT), g.const([0], np.int64))
    _, _, _, _, present, y, x = _box_keypoints(g, mask)  # (1, ...)
    size = g.const(float(THUNDER_SIZE))
    # Offset added here in float32, so the output equals TEMPLATE[:, 2] + 0.05 computed in float32.
    thunder_scores = (TEMPLATE[:, 2] + np.float32(THUNDER_SCORE_OFFSET))[None]
    scores = g.op("Mul", g.const(thunder_scores), present)
    keypoints = _keypoint_triples(g, g.op("Div", y, size), g.op("Div", x, size), scores)  # (1, 17, 3)
    g.op("Unsqueeze", keypoints, g.const([0], np.int64), output="output_0")
    return _save(
        g,
        "synthetic_movenet_thunder",
        path,
        input_shape=[1, THUNDER_SIZE, THUNDER_SIZE, 3],
        output_shape=[1, 1, 17, 3],
    )


def write_teacher(folder: Path) -> dict[str, Path]:
    """Write movenet-multipose.onnx and movenet-thunder.onnx into ``folder`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "multipose": write_multipose(folder / "movenet-multipose.onnx"),
        "thunder": write_thunder(folder / "movenet-thunder.onnx"),
    }


def write_wrong_interface_model(path: Path) -> Path:
    """Write a valid ONNX model with the wrong interface (float32 NCHW input ``image``, output
    ``heatmaps``), for checking that a labeller names the inputs it expected."""
    g = _Graph()
    g.op("Identity", "image", output="heatmaps")
    graph = helper.make_graph(
        g.nodes,
        "wrong_interface",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "H", "W"])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, 3, "H", "W"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path
