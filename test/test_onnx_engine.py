"""ONNX export validity and metadata, the engines, and ONNX Runtime / PyTorch parity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from litepose_ros.cli import main as litepose_main
from litepose_ros.engine import (
    InferenceEngine,
    OnnxRuntimeEngine,
    create_engine,
    provider_options_for,
    resolve_providers,
)
from litepose_ros.model.network import build_model
from litepose_ros.model.onnx_export import INPUT_NAME, OUTPUT_NAMES, export_onnx

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """An XS (17 joints) checkpoint with non-trivial BN statistics and its ONNX export."""
    directory = tmp_path_factory.mktemp("engine")
    torch.manual_seed(3)
    model = build_model("XS", 17)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.bias.uniform_(-0.3, 0.3)
    checkpoint = directory / "xs17.pth"
    torch.save(model.state_dict(), checkpoint)
    onnx_path = directory / "xs17.onnx"
    _, result = export_onnx(model, onnx_path, input_size=128)
    return {
        "dir": directory,
        "model": model.eval(),
        "checkpoint": checkpoint,
        "onnx": onnx_path,
        "result": result,
    }


def test_export_is_valid_dynamic_and_carries_metadata(files):
    result = files["result"]
    assert result.checker_ok and result.opset >= 13
    proto = onnx.load(str(files["onnx"]))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == [INPUT_NAME]
    assert [o.name for o in proto.graph.output] == list(OUTPUT_NAMES)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[1].dim_value == 3
    assert all(d.dim_param for d in (dims[0], dims[2], dims[3])), "batch, height and width are dynamic"
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["litepose.variant"] == "XS" and meta["litepose.num_joints"] == "17"
    assert meta["litepose.layout"] == "coco17" and meta["litepose.input_size"] == "128"
    assert json.loads(meta["litepose.architecture"])["deconv_setting"] == [16, 24, 24]
    assert json.loads(meta["litepose.input_normalisation"])["mean"] == [0.485, 0.456, 0.406]
    assert not any(node.op_type == "BatchNormalization" for node in proto.graph.node)


@pytest.mark.parametrize("shape", [(1, 3, 128, 128), (1, 3, 128, 192), (2, 3, 192, 128)])
def test_onnxruntime_matches_pytorch(files, shape):
    ort_engine = create_engine(files["onnx"], threads=1)
    torch_engine = create_engine(files["checkpoint"], engine="torch", threads=1)
    batch = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    ort_out = ort_engine.run(batch)
    torch_out = torch_engine.run(batch)
    with torch.inference_mode():
        unfolded = [t.numpy() for t in files["model"](torch.from_numpy(batch))]
    n, _, h, w = shape
    assert ort_out[0].shape == (n, 34, h // 4, w // 4) and ort_out[1].shape == (n, 17, h // 2, w // 2)
    for ours, theirs, reference in zip(ort_out, torch_out, unfolded, strict=True):
        assert ours.dtype == np.float32 and np.abs(reference).max() > 1e-2
        np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)
        np.testing.assert_allclose(theirs, reference, atol=1e-5, rtol=0)


def test_engines_satisfy_interface_and_describe_themselves(files):
    for engine in (
        create_engine(files["onnx"], threads=2),
        create_engine(files["checkpoint"], engine="torch"),
    ):
        assert isinstance(engine, InferenceEngine)
        assert engine.num_joints == 17
        assert engine.metadata["variant"] == "XS" and engine.metadata["layout"] == "coco17"
        assert engine.name in engine.describe()
    ort_engine = create_engine(files["onnx"], providers=["cpu"], threads=2)
    assert "CPUExecutionProvider" in ort_engine.describe() and "threads=2" in ort_engine.describe()


def test_bad_inputs_and_requests_are_explained(files):
    engine = create_engine(files["onnx"])
    with pytest.raises(ValueError, match="multiples of 16"):
        engine.run(np.zeros((1, 3, 100, 128), np.float32))
    with pytest.raises(TypeError, match="float32"):
        engine.run(np.zeros((1, 3, 128, 128), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        engine.run(np.zeros((3, 128, 128), np.float32))
    with pytest.raises(ValueError, match=r"not available.*available: \[.*CPUExecutionProvider"):
        create_engine(files["onnx"], providers=["tensorrt", "cuda", "cpu"])
    with pytest.raises(ValueError, match="14 were requested"):
        create_engine(files["onnx"], num_joints=14)
    with pytest.raises(ValueError, match="not the requested"):
        create_engine(files["onnx"], variant="S")
    with pytest.raises(ValueError, match="ONNX model; the torch engine needs a PyTorch checkpoint"):
        create_engine(files["onnx"], engine="torch")
    with pytest.raises(ValueError, match="unknown engine"):
        create_engine(files["onnx"], engine="tvm")


def test_provider_fallback_and_jetson_options(tmp_path):
    assert resolve_providers(["cuda", "cpu"], allow_fallback=True) == ["CPUExecutionProvider"]
    options = provider_options_for(
        ["TensorrtExecutionProvider", "CUDAExecutionProvider"],
        fp16=True,
        trt_cache_dir=tmp_path / "trt",
        device_id=1,
        overrides={"trt": {"trt_max_partition_iterations": 10}},
    )
    trt, cuda = options
    assert trt["trt_fp16_enable"] is True and trt["trt_engine_cache_enable"] is True
    assert trt["trt_engine_cache_path"] == str(tmp_path / "trt") and (tmp_path / "trt").is_dir()
    assert trt["trt_max_partition_iterations"] == 10 and trt["device_id"] == 1
    assert cuda["device_id"] == 1 and cuda["cudnn_conv_algo_search"] == "HEURISTIC"


def test_onnxruntime_engine_exports_checkpoints_on_the_fly(files):
    engine = create_engine(files["checkpoint"], threads=1)
    assert isinstance(engine, OnnxRuntimeEngine) and "exported on the fly" in engine.describe()
    batch = np.random.default_rng(1).standard_normal((1, 3, 128, 128)).astype(np.float32)
    reference = create_engine(files["onnx"], threads=1).run(batch)
    for a, b in zip(engine.run(batch), reference, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_fp16_export_runs_close_to_fp32(files):
    path = files["dir"] / "xs17_fp16.onnx"
    _, result = export_onnx(files["model"], path, input_size=128, fp16=True)
    assert result.checker_ok and result.metadata["litepose.precision"] == "fp16"
    assert result.size_bytes < 0.6 * files["result"].size_bytes
    batch = np.random.default_rng(2).standard_normal((1, 3, 128, 128)).astype(np.float32)
    half = create_engine(path).run(batch)
    full = create_engine(files["onnx"]).run(batch)
    for a, b in zip(half, full, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=0.02 * np.abs(b).max(), rtol=0)


def test_onnx_path_does_not_import_torch(files):
    code = (
        "import sys, numpy as np\n"
        "from litepose_ros.engine import create_engine\n"
        f"engine = create_engine({str(files['onnx'])!r}, threads=1)\n"
        "out = engine.run(np.zeros((1, 3, 64, 64), np.float32))\n"
        "assert out[0].shape == (1, 34, 16, 16), out[0].shape\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok"


def test_export_command(files, capsys):
    out = Path(files["dir"]) / "cli.onnx"
    code = litepose_main(
        ["export", str(files["checkpoint"]), "-o", str(out), "--input-size", "128", "--opset", "13"]
    )
    printed = capsys.readouterr().out
    assert code == 0 and out.is_file()
    assert "onnx.checker: valid" in printed and "opset 13" in printed and "file size" in printed
    assert create_engine(out).metadata["input_size"] == "128"
    assert litepose_main(["export", str(files["checkpoint"]), "-o", str(out), "--num-joints", "14"]) == 2
    assert "does not fit" in capsys.readouterr().err


def test_static_export_rejects_other_sizes_clearly(files):
    path = files["dir"] / "static64.onnx"
    _, result = export_onnx(files["model"], path, input_size=64, dynamic=False)
    assert result.checker_ok
    engine = create_engine(path)
    assert engine.run(np.zeros((1, 3, 64, 64), np.float32))[1].shape == (1, 17, 32, 32)
    with pytest.raises(ValueError, match="static"):
        engine.run(np.zeros((1, 3, 128, 128), np.float32))
