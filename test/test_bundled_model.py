"""The bundled default model: within the size budget, the ONNX file is the export of the bundled
checkpoint, and the model card describes that checkpoint."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from litepose_ros.engine import create_engine
from litepose_ros.model.checkpoint import load_checkpoint
from litepose_ros.preprocess import preprocess_image
from litepose_ros.samples import vtest_frame_paths
from litepose_ros.weights import DEFAULT_CHECKPOINT_NAME, DEFAULT_MODEL_NAME, WEIGHTS_DIR, default_model_path

CHECKPOINT = WEIGHTS_DIR / DEFAULT_CHECKPOINT_NAME
SIZE_BUDGET_BYTES = 15_000_000


def test_default_model_and_checkpoint_fit_the_size_budget():
    onnx_file = default_model_path()
    assert onnx_file.name == DEFAULT_MODEL_NAME
    total = onnx_file.stat().st_size + CHECKPOINT.stat().st_size
    assert total <= SIZE_BUDGET_BYTES, f"bundled model files take {total / 1e6:.1f} MB"


@pytest.fixture(scope="module")
def checkpoint():
    return load_checkpoint(CHECKPOINT)


def test_onnx_file_is_the_export_of_the_bundled_checkpoint(checkpoint):
    onnx_engine = create_engine(default_model_path(), threads=1)
    torch_engine = create_engine(CHECKPOINT, engine="torch", threads=1)
    _, info = checkpoint
    assert onnx_engine.metadata["variant"] == info.variant == "XS"
    assert onnx_engine.metadata["layout"] == info.layout_name == "coco17"
    frame = cv2.imread(str(vtest_frame_paths()[0]))
    batch, _ = preprocess_image(frame, int(onnx_engine.metadata["input_size"]))
    for from_onnx, from_checkpoint in zip(onnx_engine.run(batch), torch_engine.run(batch), strict=True):
        assert from_onnx.shape == from_checkpoint.shape
        # Batch-norm folding and the runtimes' kernels differ only by float rounding.
        np.testing.assert_allclose(from_onnx, from_checkpoint, atol=2e-3 * np.abs(from_checkpoint).max())


@pytest.mark.torch
def test_the_bundled_export_is_rewritten_and_gives_the_unrewritten_outputs(checkpoint):
    # The bundled ONNX file carries `litepose export`'s default rewrites; the network's graph as it
    # is (no rewrites) must give the same outputs within 1e-5 on real and random inputs.
    from litepose_ros.engine import OnnxRuntimeEngine
    from litepose_ros.model.onnx_export import export_onnx
    from litepose_ros.model.rewrites import DEFAULT_REWRITES

    bundled = create_engine(default_model_path(), threads=1)
    assert bundled.metadata["rewrites"] == ",".join(DEFAULT_REWRITES)
    model, _ = checkpoint
    size = int(bundled.metadata["input_size"])
    proto, result = export_onnx(model, None, input_size=size, rewrites=())
    assert result.metadata["litepose.rewrites"] == "none"
    plain = OnnxRuntimeEngine(proto.SerializeToString(), threads=1)
    frame = cv2.imread(str(vtest_frame_paths()[0]))
    real, _ = preprocess_image(frame, size)
    noise = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    for batch in (real, noise):
        for got, expected in zip(bundled.run(batch), plain.run(batch), strict=True):
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_model_card_describes_the_bundled_checkpoint(checkpoint):
    _, info = checkpoint
    card = (WEIGHTS_DIR / "README.md").read_text()
    snapshot = re.search(r"\| snapshot \| epoch (\d+) of (\d+)", card)
    assert snapshot, "the card's measured block has no snapshot row: run `litepose bench card`"
    assert int(snapshot.group(1)) == info.extra["epoch"] + 1
