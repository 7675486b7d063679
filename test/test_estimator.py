"""The Estimator end to end: real ONNX files (a randomly initialised XS export and a hand-built
model with known outputs), real images."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from synthetic_onnx import draw_blob, write_blob_model

from litepose_ros.decoding import DecoderConfig, decode_people
from litepose_ros.estimator import Estimator, EstimatorConfig, PoseResult
from litepose_ros.layouts import COCO_17, CROWDPOSE_14
from litepose_ros.people import keypoint_boxes
from litepose_ros.preprocess import preprocess_image

IMAGES = Path(__file__).resolve().parent / "fixtures" / "images"


@pytest.fixture(scope="module")
def xs_model(tmp_path_factory) -> Path:
    """A randomly initialised LitePose-XS (COCO, 17 joints) exported to ONNX at input size 128."""
    import torch  # the network is built with torch (the train extra)

    from litepose_ros.model.network import build_model
    from litepose_ros.model.onnx_export import export_onnx

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("xs") / "xs_random.onnx"
    export_onnx(build_model("XS", 17), path, input_size=128)
    return path


@pytest.fixture(scope="module")
def blob_model(tmp_path_factory) -> Path:
    return write_blob_model(tmp_path_factory.mktemp("blob") / "blob.onnx", input_size=128)


def real_image(name: str = "vtest_0200_small.jpg") -> np.ndarray:
    image = cv2.imread(str(IMAGES / name), cv2.IMREAD_COLOR)
    assert image is not None
    return image


@pytest.mark.torch
def test_random_xs_model_runs_on_real_images(xs_model):
    estimator = Estimator.from_model(xs_model, threads=1, flip_test=False, detection_threshold=0.0)
    assert estimator.input_size == 128 and estimator.layout is COCO_17  # from the file's metadata
    for name in ("vtest_0000.jpg", "vtest_0200_small.jpg"):
        image = real_image(name)
        result = estimator.predict(image)
        assert isinstance(result, PoseResult)
        assert result.image_size == (image.shape[1], image.shape[0])
        n = len(result)
        assert result.keypoints.shape == (n, 17, 3) and result.keypoints.dtype == np.float32
        assert result.scores.shape == (n,) and result.boxes.shape == (n, 4)
        assert n > 0  # threshold 0: a random network still has peaks
        assert (np.diff(result.scores) <= 0).all()
        # Every keypoint lies in the image (the map covers it; the margin maps outside it only
        # for non-square padding, which this 4:3 image has: allow the padded band).
        x, y = result.keypoints[..., 0], result.keypoints[..., 1]
        assert y.min() >= -1 and y.max() <= image.shape[0]
        assert x.min() >= -0.5 * image.shape[1] and x.max() <= 1.5 * image.shape[1]
        assert result.timing.inference_ms > 0 and result.timing.total_ms >= result.timing.decode_ms


@pytest.mark.torch
def test_predict_equals_the_manual_pipeline(xs_model):
    estimator = Estimator.from_model(xs_model, threads=1, detection_threshold=0.0)
    image = real_image()
    result = estimator.predict(image)
    batch, transform = preprocess_image(image, 128)
    out4, out2 = estimator.engine.run(batch)
    f4, f2 = estimator.engine.run(np.ascontiguousarray(batch[..., ::-1]))
    manual = decode_people(
        out4,
        out2,
        COCO_17,
        config=DecoderConfig(detection_threshold=0.0),
        transform=transform,
        flipped_out4=f4,
        flipped_out2=f2,
    )
    np.testing.assert_allclose(result.keypoints, manual.keypoints, atol=1e-4)
    np.testing.assert_allclose(result.scores, manual.scores, atol=1e-6)
    expected_boxes = keypoint_boxes(manual.keypoints, manual.keypoints[..., 2] >= 0.3)
    np.testing.assert_allclose(result.boxes, expected_boxes, atol=1e-4)


@pytest.mark.torch
def test_rgb_and_bgr_inputs_agree(xs_model):
    estimator = Estimator.from_model(xs_model, threads=1, fast=True, detection_threshold=0.0)
    image = real_image()
    from_bgr = estimator.predict(image, color_order="bgr")
    from_rgb = estimator.predict(np.ascontiguousarray(image[..., ::-1]), color_order="rgb")
    np.testing.assert_array_equal(from_bgr.keypoints, from_rgb.keypoints)
    swapped = estimator.predict(image, color_order="rgb")  # wrong order: other numbers
    assert not np.array_equal(swapped.scores, from_bgr.scores)


def test_known_people_come_back_in_source_pixels(blob_model):
    # Non-square 300 x 200 image, two "people" (red blobs) told apart by their green level.
    image = np.zeros((200, 300, 3), np.uint8)
    centres = [(71.3, 90.6), (222.8, 131.2)]
    draw_blob(image, centres[0], 6.0, green=0.0)
    draw_blob(image, centres[1], 6.0, green=0.75)
    for settings in ({"fast": True}, {"flip_test": True}, {"flip_test": False}):
        estimator = Estimator.from_model(blob_model, **settings)
        result = estimator.predict(image)
        assert len(result) == 2, settings
        order = np.argsort(result.keypoints[:, 0, 0])
        for person, centre in zip(order, centres, strict=True):
            # Half a stride-2 map pixel is 1 input pixel = 1 / 0.64 source pixels.
            np.testing.assert_allclose(
                result.keypoints[person, :, :2], np.broadcast_to(centre, (17, 2)), atol=1.0 / 0.64
            )
        assert (result.keypoints[..., 2] > 0.8).all()
        np.testing.assert_allclose(
            result.boxes[order[0]],
            [*result.keypoints[order[0], :, :2].min(0), *result.keypoints[order[0], :, :2].max(0)],
        )
    # The colour order matters: as RGB, the red blobs are blue and nobody is found.
    assert len(Estimator.from_model(blob_model, fast=True).predict(image, color_order="rgb")) == 0


def test_max_persons_and_keypoint_threshold(blob_model):
    image = np.zeros((128, 256, 3), np.uint8)
    for i, x in enumerate((40.0, 120.0, 200.0)):
        draw_blob(image, (x, 64.0), 5.0, green=0.3 * i)
    assert len(Estimator.from_model(blob_model, fast=True).predict(image)) == 3
    result = Estimator.from_model(blob_model, fast=True, max_persons=2).predict(image)
    assert len(result) == 2


def test_keypoint_boxes_rule():
    keypoints = np.array(
        [[[1, 2, 0.9], [5, 8, 0.8], [100, 100, 0.1]], [[1, 2, 0.1], [5, 8, 0.2], [9, 0, 0.1]]], np.float32
    )
    boxes = keypoint_boxes(keypoints, keypoints[..., 2] >= np.float32(0.3))
    np.testing.assert_array_equal(boxes[0], [1, 2, 5, 8])  # only the keypoints >= threshold
    np.testing.assert_array_equal(boxes[1], [1, 0, 9, 8])  # none is: all keypoints
    empty = np.zeros((0, 17, 3), np.float32)
    assert keypoint_boxes(empty, empty[..., 2] >= 0.3).shape == (0, 4)


def test_estimator_boxes_unchanged_by_the_shared_box_rule():
    """PoseResult.boxes are bit for bit what the estimator's own float32 box rule gave."""
    rng = np.random.default_rng(3)
    keypoints = rng.uniform(0, 640, (6, 17, 3)).astype(np.float32)
    keypoints[..., 2] = rng.uniform(0, 1, (6, 17))
    keypoints[2, :, 2] = 0.0  # nobody valid: the box around all keypoints
    threshold = 0.3
    valid = keypoints[..., 2] >= np.float32(threshold)
    use = np.where(valid.any(axis=1, keepdims=True), valid, True)[..., None]
    xy = keypoints[..., :2]
    before = np.concatenate(
        [np.where(use, xy, np.inf).min(axis=1), np.where(use, xy, -np.inf).max(axis=1)], axis=1
    ).astype(np.float32)
    after = keypoint_boxes(keypoints, valid).astype(np.float32)
    assert after.tobytes() == before.tobytes()


@pytest.mark.torch
def test_concurrent_predictions_match_serial_ones(xs_model):
    estimator = Estimator.from_model(xs_model, threads=1, flip_test=False, detection_threshold=0.0)
    images = [real_image("vtest_0200_small.jpg"), real_image("vtest_0100.jpg")[::2, ::2].copy()]
    expected = [estimator.predict(image).keypoints for image in images]
    failures: list[str] = []

    def work(index: int) -> None:
        for _ in range(3):
            got = estimator.predict(images[index % 2]).keypoints
            if not np.array_equal(got, expected[index % 2]):
                failures.append(f"thread {index}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_settings_and_defaults(blob_model, tmp_path):
    config = EstimatorConfig.create(blob_model, fast=True, detection_threshold=0.2, max_persons=5)
    assert config.decoder == DecoderConfig.fast(detection_threshold=0.2) and config.max_persons == 5
    estimator = Estimator(config)
    assert estimator.input_size == 128 and estimator.layout is COCO_17
    assert "input short side 128" in estimator.describe() and "flip_test=off" in estimator.describe()
    assert "decoder fast" in Estimator.from_model(blob_model, fast=True).describe()
    assert Estimator.from_model(blob_model, input_size=192).input_size == 192
    crowd = write_blob_model(tmp_path / "crowd.onnx", num_joints=14, layout="crowdpose14", input_size=64)
    estimator = Estimator.from_model(crowd, fast=True)
    assert estimator.layout is CROWDPOSE_14 and estimator.input_size == 64
    image = np.zeros((100, 100, 3), np.uint8)
    draw_blob(image, (50, 50), 4.0, green=0.0)
    assert estimator.predict(image).keypoints.shape == (1, 14, 3)


def test_input_size_from_the_user_when_the_file_does_not_record_it(tmp_path):
    path = write_blob_model(tmp_path / "bare.onnx", input_size=None)
    with pytest.raises(ValueError, match="does not record its input size"):
        Estimator.from_model(path)
    assert Estimator.from_model(path, input_size=160).input_size == 160
    with pytest.raises(ValueError, match="not the requested XS"):  # the graph is checked: no LitePose
        Estimator.from_model(path, variant="XS")
    onnx = pytest.importorskip("onnx")
    from litepose_ros.weights import default_model_path

    proto = onnx.load(str(default_model_path()))  # an XS network, its metadata stripped
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare_xs.onnx"))
    assert Estimator.from_model(tmp_path / "bare_xs.onnx", variant="XS").input_size == 256  # the variant's


def test_bad_inputs_are_rejected(blob_model, tmp_path):
    estimator = Estimator.from_model(blob_model, fast=True)
    with pytest.raises(TypeError, match="uint8"):
        estimator.predict(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="COLOR_GRAY2BGR"):
        estimator.predict(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="alpha"):
        estimator.predict(np.zeros((64, 64, 4), np.uint8))
    with pytest.raises(TypeError, match="numpy array"):
        estimator.predict([[0, 0, 0]])
    with pytest.raises(ValueError, match="color_order"):
        estimator.predict(np.zeros((64, 64, 3), np.uint8), color_order="hsv")
    with pytest.raises(TypeError, match="unknown estimator setting"):
        Estimator.from_model(blob_model, flip=True)
    with pytest.raises(ValueError, match="17 joints but 14 were requested"):
        Estimator.from_model(blob_model, layout="crowdpose")
    with pytest.raises(ValueError, match="multiple of 16"):
        Estimator.from_model(blob_model, input_size=100)
    with pytest.raises(ValueError, match="does not exist"):
        Estimator.from_model(tmp_path / "missing.onnx")


def test_resolve_model_path_names_the_missing_file_and_falls_back_to_the_bundled_model(tmp_path):
    from litepose_ros.estimator import resolve_model_path
    from litepose_ros.weights import default_model_path

    assert resolve_model_path(None) == default_model_path()
    assert resolve_model_path("  ") == default_model_path()
    with pytest.raises(FileNotFoundError, match=r"model file .*missing.onnx does not exist \(--model\)"):
        resolve_model_path(tmp_path / "missing.onnx", source="--model")
    given = tmp_path / "model.onnx"
    given.write_bytes(b"")
    assert resolve_model_path(str(given)) == given


def test_node_parameters_become_estimator_settings_without_losing_any():
    from litepose_ros.estimator import EstimatorConfig
    from litepose_ros.ros.parameters import default_values, estimator_settings

    values = default_values()
    values.update(engine_spinning=True, variant="S", input_size=320, threads=2, providers="cuda,cpu")
    config = EstimatorConfig.create("model.onnx", **estimator_settings(values))
    assert config.allow_spinning is True and config.variant == "S" and config.input_size == 320
    assert config.threads == 2 and list(config.providers) == ["cuda", "cpu"]


def test_thin_images_are_refused_at_once_without_running_the_network(blob_model):
    from litepose_ros.preprocess import ImageSizeError

    estimator = Estimator.from_model(blob_model, fast=True)
    runs = []
    original = estimator.engine.run
    estimator.engine.run = lambda batch: runs.append(batch.shape) or original(batch)
    for shape in [(1, 640, 3), (640, 1, 3), (1280, 2, 3)]:
        with pytest.raises(ImageSizeError, match="aspect ratio"):
            estimator.predict(np.zeros(shape, np.uint8))
    assert runs == []
    assert len(estimator.predict(np.zeros((64, 512, 3), np.uint8)).scores) >= 0  # 8:1 still runs
    assert runs == [(1, 3, 128, 1024)]


def test_spinning_is_one_setting_with_one_default_everywhere():
    import argparse
    import inspect

    from litepose_ros.cli import infer
    from litepose_ros.engine import DEFAULT_ALLOW_SPINNING, OnnxRuntimeEngine, create_engine
    from litepose_ros.estimator import Estimator, EstimatorConfig
    from litepose_ros.ros.parameters import default_values, estimator_settings
    from litepose_ros.weights import default_model_path

    assert DEFAULT_ALLOW_SPINNING is False
    assert EstimatorConfig(model_path="m.onnx").allow_spinning is DEFAULT_ALLOW_SPINNING
    for function in (create_engine, OnnxRuntimeEngine.__init__):
        assert inspect.signature(function).parameters["allow_spinning"].default is DEFAULT_ALLOW_SPINNING
    assert estimator_settings(default_values())["allow_spinning"] is DEFAULT_ALLOW_SPINNING
    parser = argparse.ArgumentParser()
    infer.add_arguments(parser)
    assert parser.parse_args(["x.jpg"]).spinning is DEFAULT_ALLOW_SPINNING
    assert parser.parse_args(["x.jpg", "--spinning"]).spinning is True
    # The library's default reaches ONNX Runtime's session, and the setting turns it on.
    for setting, expected in ((None, "0"), (True, "1")):
        settings = {} if setting is None else {"allow_spinning": setting}
        estimator = Estimator.from_model(default_model_path(), **settings)
        options = estimator.engine.session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == expected


def test_stride_1_decoding_finds_the_same_people_in_source_pixels(blob_model):
    image = np.zeros((240, 320, 3), np.uint8)
    centres = [(70.0, 80.0), (230.0, 150.0)]
    for i, centre in enumerate(centres):
        draw_blob(image, centre, 6.0, green=0.5 * i)
    results = {}
    for stride in (2, 1):
        estimator = Estimator.from_model(blob_model, decode_stride=stride, flip_test=True)
        assert ("stride 1" in estimator.describe()) == (stride == 1)
        results[stride] = estimator.predict(image)
    for result in results.values():
        assert len(result) == 2
        found = sorted(tuple(np.round(p[:, :2].mean(axis=0))) for p in result.keypoints)
        np.testing.assert_allclose(found, sorted(centres), atol=1.5)


@pytest.mark.torch
def test_flip_test_as_one_batch_of_two_finds_the_same_people(xs_model):
    from litepose_ros.estimator import accepts_batch_of_two, runs_on_accelerator

    image = real_image()
    separate = Estimator.from_model(xs_model, threads=1, detection_threshold=0.0, flip_batch=False)
    batched = Estimator.from_model(xs_model, threads=1, detection_threshold=0.0, flip_batch=True)
    assert batched.flip_batch and not separate.flip_batch
    runs = []
    original_run = batched.engine.run
    batched.engine.run = lambda batch: runs.append(batch.shape[0]) or original_run(batch)
    expected, result = separate.predict(image), batched.predict(image)
    assert runs == [2]  # one run for the image and its mirror
    assert len(result) == len(expected) > 0
    np.testing.assert_allclose(result.keypoints, expected.keypoints, atol=1e-4)
    np.testing.assert_allclose(result.scores, expected.scores, atol=1e-5)
    # The default: two runs on the CPU (measured faster there), one batch on a GPU engine.
    assert not Estimator.from_model(xs_model, threads=1).flip_batch
    assert not runs_on_accelerator(separate.engine) and accepts_batch_of_two(separate.engine)
    gpu = type("Gpu", (), {"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]})
    assert runs_on_accelerator(gpu)
    assert runs_on_accelerator(type("Torch", (), {"device": "cuda:0"}))


def test_a_model_with_a_fixed_batch_of_one_runs_the_mirror_separately():
    from litepose_ros.estimator import accepts_batch_of_two

    class FixedBatchSession:
        def get_inputs(self):
            return [type("Input", (), {"shape": [1, 3, 128, 128]})()]

    assert not accepts_batch_of_two(type("Engine", (), {"session": FixedBatchSession()})())
