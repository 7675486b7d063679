"""Export-time graph rewrites (litepose_ros.model.rewrites): the rewritten export gives the
unrewritten export's outputs within 1e-5, for every released variant and both layouts."""

from __future__ import annotations

import cv2
import numpy as np
import onnx
import pytest
import torch

from litepose_ros.engine import OnnxRuntimeEngine
from litepose_ros.layouts import COCO_17, CROWDPOSE_14
from litepose_ros.model.network import build_model
from litepose_ros.model.onnx_export import export_onnx
from litepose_ros.model.rewrites import DEFAULT_REWRITES, REWRITES, deconv_as_conv_weight, parse_rewrites
from litepose_ros.preprocess import preprocess_image
from litepose_ros.samples import vtest_frame_paths

pytestmark = pytest.mark.torch

TOLERANCE = 1e-5


def randomised(variant: str, num_joints: int) -> torch.nn.Module:
    """A network with random weights and random BatchNorm statistics (so folding matters)."""
    torch.manual_seed(num_joints)
    model = build_model(variant, num_joints).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.3, 0.3)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model


def engine_for(model, rewrites) -> OnnxRuntimeEngine:
    proto, result = export_onnx(model, None, input_size=128, rewrites=rewrites)
    assert result.checker_ok, result.checker_message
    return OnnxRuntimeEngine(proto.SerializeToString(), threads=1)


@pytest.fixture(scope="module")
def real_batch():
    frame = cv2.imread(str(vtest_frame_paths()[0]))
    batch, _ = preprocess_image(frame, 128)  # 128 x 192: non-square, dynamic axes
    return batch


@pytest.mark.parametrize("layout", [COCO_17, CROWDPOSE_14], ids=lambda layout: layout.name)
@pytest.mark.parametrize("variant", ["XS", "S", "M", "L"])
def test_rewritten_export_gives_the_same_outputs(variant, layout, real_batch):
    model = randomised(variant, layout.num_keypoints)
    plain = engine_for(model, "none")
    assert plain.metadata["rewrites"] == "none"
    random_batch = np.random.default_rng(0).standard_normal((2, 3, 160, 128)).astype(np.float32)
    # Every variant and layout: the default set and all rewrites together; each rewrite alone on XS.
    single = [(name,) for name in REWRITES] if variant == "XS" else []
    for rewrites in [*single, DEFAULT_REWRITES, REWRITES]:
        rewritten = engine_for(model, rewrites)
        assert rewritten.metadata["rewrites"] == ",".join(rewrites)
        for batch in (random_batch, real_batch):
            for got, expected in zip(rewritten.run(batch), plain.run(batch), strict=True):
                assert got.shape == expected.shape
                np.testing.assert_allclose(
                    got, expected, rtol=0, atol=TOLERANCE, err_msg=f"{variant} {layout.name} {rewrites}"
                )


def test_rewrites_change_the_graph_as_described():
    model = randomised("XS", 17)

    def op_counts(rewrites):
        proto, _ = export_onnx(model, None, input_size=128, rewrites=rewrites)
        ops = [node.op_type for node in proto.graph.node]
        return {op: ops.count(op) for op in set(ops)}

    plain = op_counts("none")
    assert plain["ConvTranspose"] == 6 and "DepthToSpace" not in plain
    assert op_counts("fuse-deconv")["ConvTranspose"] == 3
    as_conv = op_counts("deconv-as-conv")
    assert "ConvTranspose" not in as_conv and as_conv["DepthToSpace"] == 6
    both = op_counts("fuse-deconv,deconv-as-conv")
    assert "ConvTranspose" not in both and both["DepthToSpace"] == 3
    assert op_counts("fuse-outputs")["Conv"] == plain["Conv"] - 2


def test_deconv_as_conv_weight_is_the_transposed_convolution():
    torch.manual_seed(1)
    deconv = torch.nn.ConvTranspose2d(5, 3, 4, 2, 1, bias=True)
    x = torch.randn(2, 5, 7, 9)
    weight = deconv_as_conv_weight(deconv.weight)
    bias = deconv.bias.repeat_interleave(4)
    rewritten = torch.nn.functional.pixel_shuffle(torch.nn.functional.conv2d(x, weight, bias, padding=1), 2)
    torch.testing.assert_close(rewritten, deconv(x), rtol=0, atol=1e-5)


def test_rewrite_names_are_checked():
    assert parse_rewrites("all") == REWRITES
    assert parse_rewrites(None) == DEFAULT_REWRITES == parse_rewrites("default")
    assert parse_rewrites("none") == () == parse_rewrites("")
    assert parse_rewrites("fuse-outputs, fuse-deconv") == ("fuse-deconv", "fuse-outputs")
    with pytest.raises(ValueError, match="unknown rewrite"):
        parse_rewrites("fuse-everything")


def test_export_command_rewrites_by_default_and_can_turn_them_off(tmp_path):
    from litepose_ros.cli import main

    checkpoint = tmp_path / "xs.pth"
    torch.save(randomised("XS", 17).state_dict(), checkpoint)
    for extra, expected in (
        ([], ",".join(DEFAULT_REWRITES)),
        (["--no-rewrites"], "none"),
        (["--rewrites", "deconv-as-conv"], "deconv-as-conv"),
    ):
        output = tmp_path / f"model{len(extra)}.onnx"
        assert main(["export", str(checkpoint), "-o", str(output), *extra]) == 0
        metadata = {p.key: p.value for p in onnx.load(str(output)).metadata_props}
        assert metadata["litepose.rewrites"] == expected


def test_model_benchmark_measures_the_rewrites_side_by_side(tmp_path):
    from litepose_ros.cli import main

    page = tmp_path / "model.md"
    assert (
        main(
            [
                "bench",
                "model",
                "--variants",
                "XS",
                "--sizes",
                "64",
                "--engines",
                "onnxruntime",
                "onnxruntime-plain",
                "--threads",
                "1",
                "--runs",
                "3",
                "--warmup",
                "1",
                "--no-profile",
                "--output",
                str(page),
            ]
        )
        == 0
    )
    text = page.read_text()
    assert "## Export-time graph rewrites" in text and "| XS | 64x64 | 1 |" in text
    assert "ONNX Runtime vs PyTorch eager" not in text  # no torch rows: no empty table
