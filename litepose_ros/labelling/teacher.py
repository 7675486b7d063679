"""The MoveNet teacher: ONNX Runtime sessions over the multipose and thunder models.

The files are the user's (never downloaded here): a folder holding ``movenet-multipose.onnx``
and ``movenet-thunder.onnx`` with MoveNet's interface: one int32 NHWC RGB input named ``input``
(raw 0..255 values), one float32 output ``output_0``; multipose takes any size whose sides are
multiples of 32 and returns [1, 6, 56] (17 x (y, x, score), then ymin, xmin, ymax, xmax, box
score, normalised by the input tensor), thunder takes [1, 256, 256, 3] and returns
[1, 1, 17, 3] normalised to its crop. ``docs/labelling.md`` says how to obtain them offline.

Coordinates returned here are source-image pixels with the project's convention (the centre of
the top-left pixel is (0, 0)); MoveNet's normalised values are edge coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MULTIPOSE_FILE = "movenet-multipose.onnx"
THUNDER_FILE = "movenet-thunder.onnx"
THUNDER_SIZE = 256
MULTIPOSE_ROWS = 6
NUM_KEYPOINTS = 17
# multipose row: 17 x (y, x, score) then ymin, xmin, ymax, xmax, box score.
MULTIPOSE_ROW_LENGTH = NUM_KEYPOINTS * 3 + 5
INPUT_NAME = "input"
OUTPUT_NAME = "output_0"
# The environment variable naming the teacher folder when no option does.
TEACHER_DIR_VARIABLE = "LITEPOSE_TEACHER_DIR"


class TeacherError(ValueError):
    """The teacher files are missing or do not have MoveNet's interface."""


@dataclass(frozen=True)
class Detection:
    """One multipose row in image pixels: keypoints (17, 3) x, y, score; box x0, y0, x1, y1."""

    keypoints: np.ndarray
    box: np.ndarray
    score: float


def _expected_interface(name: str) -> str:
    shape = (
        "[1, height, width, 3] (sides multiples of 32)"
        if name == MULTIPOSE_FILE
        else f"[1, {THUNDER_SIZE}, {THUNDER_SIZE}, 3]"
    )
    out = "[1, 6, 56]" if name == MULTIPOSE_FILE else "[1, 1, 17, 3]"
    return (
        f"{name} must have one int32 input {INPUT_NAME!r} of shape {shape} and one float32 output "
        f"{OUTPUT_NAME!r} of shape {out} (Google MoveNet; see docs/labelling.md)"
    )


def _open_session(path: Path, threads: int):
    import onnxruntime as ort

    if not path.is_file():
        raise TeacherError(
            f"teacher model {path} does not exist; {_expected_interface(path.name)}. "
            "Pass the folder holding it with --teacher (or set "
            f"{TEACHER_DIR_VARIABLE})"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    # A labelling worker runs one image after another: no spinning threads stealing the other worker's core.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for unreadable files
        raise TeacherError(
            f"cannot load teacher model {path}: {error}. {_expected_interface(path.name)}"
        ) from error
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if (
        len(inputs) != 1
        or inputs[0].name != INPUT_NAME
        or inputs[0].type != "tensor(int32)"
        or len(inputs[0].shape) != 4
        or len(outputs) != 1
        or outputs[0].name != OUTPUT_NAME
    ):
        found = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
        found_out = ", ".join(f"{o.name} {o.type} {o.shape}" for o in outputs)
        raise TeacherError(
            f"{path} is not a MoveNet model: it has inputs ({found}) and outputs "
            f"({found_out}); {_expected_interface(path.name)}"
        )
    return session


def resolve_teacher_dir(folder: str | Path | None) -> Path:
    """The teacher folder: the given one, else $LITEPOSE_TEACHER_DIR; named errors otherwise."""
    import os

    if folder is None:
        folder = os.environ.get(TEACHER_DIR_VARIABLE)
        if not folder:
            raise TeacherError(
                f"no teacher given: pass --teacher FOLDER (holding {MULTIPOSE_FILE} and "
                f"{THUNDER_FILE}) or set {TEACHER_DIR_VARIABLE}; docs/labelling.md says how "
                "to obtain the files offline"
            )
    folder = Path(folder)
    if not folder.is_dir():
        raise TeacherError(
            f"teacher folder {folder} does not exist; it must hold {MULTIPOSE_FILE} and {THUNDER_FILE}"
        )
    return folder


def letterbox(image_rgb: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    """Resize so the long side is ``long_side`` and pad bottom/right to multiples of 32 (black)."""
    height, width = image_rgb.shape[:2]
    scale = long_side / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image_rgb, (new_w, new_h), interpolation=interpolation)
    padded = np.zeros((math.ceil(new_h / 32) * 32, math.ceil(new_w / 32) * 32, 3), np.uint8)
    padded[:new_h, :new_w] = resized
    return padded, scale


class MoveNetTeacher:
    """Multipose detection and thunder single-person refinement in image coordinates."""

    def __init__(self, folder: str | Path | None, *, threads: int = 1):
        folder = resolve_teacher_dir(folder)
        self.folder = folder
        self._multipose = _open_session(folder / MULTIPOSE_FILE, threads)
        self._thunder = _open_session(folder / THUNDER_FILE, threads)

    def _run(self, session, tensor: np.ndarray, expected: tuple[int, ...], name: str) -> np.ndarray:
        output = session.run([OUTPUT_NAME], {INPUT_NAME: tensor.astype(np.int32)[None]})[0]
        if tuple(output.shape) != expected:
            raise TeacherError(
                f"{name} returned an output of shape {tuple(output.shape)}, expected "
                f"{expected}; {_expected_interface(name)}"
            )
        return output

    def multipose(
        self, image_rgb: np.ndarray, long_side: int, *, offset: tuple[float, float] = (0.0, 0.0)
    ) -> list[Detection]:
        """All six rows at this input long side (a multiple of 32), mapped back to image pixels.

        ``offset`` is added to the coordinates (for tiles cut out of a larger image).
        """
        padded, scale = letterbox(image_rgb, long_side)
        rows = self._run(self._multipose, padded, (1, MULTIPOSE_ROWS, MULTIPOSE_ROW_LENGTH), MULTIPOSE_FILE)[
            0
        ]
        pad_h, pad_w = padded.shape[:2]
        detections = []
        for row in rows.astype(np.float64):
            points = row[: NUM_KEYPOINTS * 3].reshape(NUM_KEYPOINTS, 3)
            keypoints = np.stack(
                [
                    points[:, 1] * pad_w / scale - 0.5 + offset[0],
                    points[:, 0] * pad_h / scale - 0.5 + offset[1],
                    points[:, 2],
                ],
                axis=1,
            )
            ymin, xmin, ymax, xmax, score = row[NUM_KEYPOINTS * 3 :]
            box = np.array(
                [
                    xmin * pad_w / scale - 0.5 + offset[0],
                    ymin * pad_h / scale - 0.5 + offset[1],
                    xmax * pad_w / scale - 0.5 + offset[0],
                    ymax * pad_h / scale - 0.5 + offset[1],
                ]
            )
            detections.append(Detection(keypoints=keypoints, box=box, score=float(score)))
        return detections

    def thunder(
        self, image_rgb: np.ndarray, centre: tuple[float, float], side: float, *, flip: bool = False
    ) -> np.ndarray:
        """Keypoints (17, 3) of the person in the square crop of ``side`` pixels around ``centre``.

        ``flip`` runs the mirrored crop and maps the answer back (left/right joints swapped back
        by the caller, who knows the layout).
        """
        zoom = THUNDER_SIZE / max(side, 1e-6)
        # Edge coordinates: crop edge = (image edge - (centre_edge - side / 2)) * zoom.
        cx, cy = centre[0] + 0.5, centre[1] + 0.5
        matrix = np.array([[zoom, 0.0, (side / 2 - cx) * zoom], [0.0, zoom, (side / 2 - cy) * zoom]])
        if flip:
            matrix = np.array([[-1.0, 0.0, THUNDER_SIZE], [0.0, 1.0, 0.0]]) @ np.vstack([matrix, [0, 0, 1]])
        # warpAffine samples pixel centres: convert the edge-coordinate map to centre coordinates.
        centre_matrix = matrix.copy()
        centre_matrix[:, 2] += matrix[:, :2] @ np.array([0.5, 0.5]) - 0.5
        crop = cv2.warpAffine(
            image_rgb,
            centre_matrix,
            (THUNDER_SIZE, THUNDER_SIZE),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        out = self._run(self._thunder, crop, (1, 1, NUM_KEYPOINTS, 3), THUNDER_FILE)[0, 0].astype(np.float64)
        crop_edge = np.stack([out[:, 1] * THUNDER_SIZE, out[:, 0] * THUNDER_SIZE], axis=1)
        inverse = cv2.invertAffineTransform(matrix)
        image_edge = crop_edge @ inverse[:, :2].T + inverse[:, 2]
        return np.concatenate([image_edge - 0.5, out[:, 2:3]], axis=1)
