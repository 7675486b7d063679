"""The synthetic MoveNet stand-ins behave as their docstring promises (run in onnxruntime)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from synthetic_teacher import (
    MIN_PERSON_HEIGHT,
    SLOT_BLUE,
    TEMPLATE,
    VISIBLE_AT_0_3,
    draw_person,
    expected_keypoints,
    write_teacher,
    write_wrong_interface_model,
)

# float32 rounding of edge + fraction * extent and of the division by the tensor size.
ATOL = 1e-6


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    paths = write_teacher(tmp_path_factory.mktemp("teacher"))
    assert sorted(paths) == ["multipose", "thunder"]
    assert paths["multipose"].name == "movenet-multipose.onnx"
    assert paths["thunder"].name == "movenet-thunder.onnx"
    return {
        name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for name, path in paths.items()
    }


def run(session: ort.InferenceSession, image: np.ndarray) -> np.ndarray:
    (output,) = session.run(None, {"input": image[None].astype(np.int32)})
    return output


def template_normalised(box, height, width) -> tuple[np.ndarray, np.ndarray]:
    """Template (y, x) of an inclusive pixel box (x0, y0, x1, y1), normalised, in the graph's
    float32 arithmetic."""
    x0, y0, x1, y1 = box
    f = np.float32
    y = (f(y0) + TEMPLATE[:, 1] * (f(y1 + 1) - f(y0))) / f(height)
    x = (f(x0) + TEMPLATE[:, 0] * (f(x1 + 1) - f(x0))) / f(width)
    return y, x


def test_template_layout():
    assert TEMPLATE.shape == (17, 3) and TEMPLATE.dtype == np.float32
    assert ((TEMPLATE[:, :2] >= 0.05) & (TEMPLATE[:, :2] <= 0.95)).all()
    # Left/right pairs (eyes .. ankles) are distinct points; the person's left is on the image right.
    for left in range(1, 17, 2):
        assert TEMPLATE[left, 0] > TEMPLATE[left + 1, 0]
    np.testing.assert_allclose(TEMPLATE[13:15, 2], 0.45)
    np.testing.assert_allclose(TEMPLATE[15:17, 2], 0.2)
    np.testing.assert_allclose(TEMPLATE[:13, 2], 0.8)
    assert VISIBLE_AT_0_3.sum() == 15 and not VISIBLE_AT_0_3[15:].any()
    assert SLOT_BLUE == (40, 80, 120, 160, 200, 240)


def test_draw_person_and_expected_keypoints():
    image = np.zeros((50, 60, 3), np.uint8)
    draw_person(image, 2, 10, 5, 19, 44)
    assert (image[5:45, 10:20] == (255, 0, 120)).all()
    assert image.sum() == 40 * 10 * (255 + 120)
    # Edge coordinates: x in [10, 20), y in [5, 45); pixel centres are 0.5 below.
    expected = np.stack([10 + TEMPLATE[:, 0] * 10, 5 + TEMPLATE[:, 1] * 40], axis=1) - 0.5
    np.testing.assert_allclose(expected_keypoints(10, 5, 19, 44), expected, atol=1e-6)
    with pytest.raises(ValueError, match="slot"):
        draw_person(image, 6, 0, 0, 1, 1)
    with pytest.raises(ValueError, match="outside"):
        draw_person(image, 0, 0, 0, 60, 10)


def test_interfaces(sessions):
    multipose, thunder = sessions["multipose"], sessions["thunder"]
    for session, shape in ((multipose, [1, "height", "width", 3]), (thunder, [1, 256, 256, 3])):
        (inp,) = session.get_inputs()
        assert (inp.name, inp.type, inp.shape) == ("input", "tensor(int32)", shape)
    (out,) = multipose.get_outputs()
    assert (out.name, out.type, out.shape) == ("output_0", "tensor(float)", [1, 6, 56])
    (out,) = thunder.get_outputs()
    assert (out.name, out.type, out.shape) == ("output_0", "tensor(float)", [1, 1, 17, 3])
    # Like the real model, a float tensor is rejected.
    with pytest.raises(Exception, match="int32"):
        thunder.run(None, {"input": np.zeros((1, 256, 256, 3), np.float32)})


def test_multipose_two_people(sessions):
    height, width = 256, 320
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 1] = 90  # background colour must not matter while R < 128
    people = {0: (20, 30, 79, 200), 1: (150, 10, 299, 110)}  # slot: x0, y0, x1, y1 (inclusive)
    for slot, box in people.items():
        draw_person(image, slot, *box)
    output = run(sessions["multipose"], image)
    assert output.shape == (1, 6, 56) and output.dtype == np.float32
    rows = output[0]
    for slot, (x0, y0, x1, y1) in people.items():
        keypoints = rows[slot, :51].reshape(17, 3)
        y, x = template_normalised((x0, y0, x1, y1), height, width)
        np.testing.assert_allclose(keypoints[:, 0], y, rtol=0, atol=ATOL)
        np.testing.assert_allclose(keypoints[:, 1], x, rtol=0, atol=ATOL)
        np.testing.assert_allclose(keypoints[:, 2], TEMPLATE[:, 2], rtol=0, atol=ATOL)
        box = [y0 / height, x0 / width, (y1 + 1) / height, (x1 + 1) / width, 0.9]
        np.testing.assert_allclose(rows[slot, 51:], box, rtol=0, atol=ATOL)
        # Back in image pixels (pixel centres) they are expected_keypoints.
        pixels = np.stack([keypoints[:, 1] * width, keypoints[:, 0] * height], axis=1) - 0.5
        np.testing.assert_allclose(pixels, expected_keypoints(x0, y0, x1, y1), atol=1e-4)
    empty = rows[2:]
    assert (empty[:, 2:51:3] == 0).all() and (empty[:, 55] == 0).all()


def test_multipose_any_size_and_slot_colours(sessions):
    # Not a multiple of 32 (the real model would refuse); slot 5 only matches B near 240.
    image = np.zeros((100, 90, 3), np.uint8)
    draw_person(image, 5, 40, 10, 49, 89)
    image[0:30, 0:20] = (255, 0, 40 + 16)  # bright but B 16 off slot 0: nobody
    rows = run(sessions["multipose"], image)[0]
    assert rows[5, 55] == pytest.approx(0.9)
    np.testing.assert_allclose(rows[5, 51:55], [10 / 100, 40 / 90, 90 / 100, 50 / 90], atol=ATOL)
    assert (rows[:5, 55] == 0).all() and (rows[:5, 2:51:3] == 0).all()


@pytest.mark.parametrize(
    ("tall", "detected"), [(20, False), (MIN_PERSON_HEIGHT - 1, False), (MIN_PERSON_HEIGHT, True), (40, True)]
)
def test_multipose_minimum_height(sessions, tall, detected):
    image = np.zeros((64, 64, 3), np.uint8)
    draw_person(image, 3, 10, 5, 40, 5 + tall - 1)
    row = run(sessions["multipose"], image)[0, 3]
    assert row[55] == pytest.approx(0.9 if detected else 0.0)
    np.testing.assert_allclose(row[2:51:3], TEMPLATE[:, 2] if detected else 0.0, atol=ATOL)


def test_thunder_one_person(sessions):
    crop = np.zeros((256, 256, 3), np.uint8)
    draw_person(crop, 4, 90, 20, 169, 235)
    keypoints = run(sessions["thunder"], crop)[0, 0]
    y, x = template_normalised((90, 20, 169, 235), 256, 256)
    np.testing.assert_allclose(keypoints[:, 0], y, rtol=0, atol=ATOL)
    np.testing.assert_allclose(keypoints[:, 1], x, rtol=0, atol=ATOL)
    np.testing.assert_allclose(keypoints[:, 2], TEMPLATE[:, 2] + 0.05, rtol=0, atol=ATOL)


def test_thunder_two_people_gives_union_box(sessions):
    crop = np.zeros((256, 256, 3), np.uint8)
    draw_person(crop, 0, 30, 40, 90, 200)
    draw_person(crop, 1, 150, 60, 220, 250)
    keypoints = run(sessions["thunder"], crop)[0, 0]
    y, x = template_normalised((30, 40, 220, 250), 256, 256)
    np.testing.assert_allclose(keypoints[:, 0], y, rtol=0, atol=ATOL)
    np.testing.assert_allclose(keypoints[:, 1], x, rtol=0, atol=ATOL)
    np.testing.assert_allclose(keypoints[:, 2], TEMPLATE[:, 2] + 0.05, rtol=0, atol=ATOL)


def test_thunder_empty_crop(sessions):
    crop = np.full((256, 256, 3), 127, np.uint8)  # R < 128 everywhere: background
    keypoints = run(sessions["thunder"], crop)
    assert keypoints.shape == (1, 1, 17, 3) and keypoints.dtype == np.float32
    assert (keypoints[..., 2] == 0).all()


def test_wrong_interface_model(tmp_path):
    path = write_wrong_interface_model(tmp_path / "wrong.onnx")
    model = onnx.load(str(path))
    (inp,) = model.graph.input
    assert inp.name == "image" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
