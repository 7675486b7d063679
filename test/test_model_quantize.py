"""INT8 with a guard (litepose_ros.model.quantize, `litepose export --int8`): QDQ quantisation
calibrated on given frames, and the accuracy check that refuses an INT8 model losing AP."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from synthetic_onnx import write_blob_model, write_blob_set

from litepose_ros.model.quantize import (
    AccuracyCheck,
    calibration_frames,
    check_accuracy,
    quantize_int8,
    record_accuracy,
)

# Blob people per image (x, y): the blob model puts all 17 joints of a person at its blob.
PEOPLE = {1: [(60.0, 70.0), (220.0, 120.0)], 2: [(150.0, 100.0)], 3: [(80.0, 60.0), (200.0, 140.0)]}


@pytest.fixture(scope="module")
def blob_set(tmp_path_factory) -> tuple[bytes, Path, Path]:
    """(FP32 model bytes, annotation file, image folder); the model finds every person exactly."""
    folder = tmp_path_factory.mktemp("int8_set")
    (folder / "people.json").write_text(json.dumps(write_blob_set(folder, PEOPLE)))
    model = write_blob_model(folder / "blob.onnx", input_size=128).read_bytes()
    return model, folder / "people.json", folder


def test_int8_calibrated_on_the_footage_keeps_its_ap(blob_set):
    fp32, annotations, folder = blob_set
    frames = calibration_frames(folder)
    assert len(frames) == len(PEOPLE)
    int8 = quantize_int8(fp32, frames, calibration_source="blobs")
    ops = {node.op_type for node in int8.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    metadata = {p.key: p.value for p in int8.metadata_props}
    assert metadata["litepose.precision"] == "int8" and metadata["litepose.layout"] == "coco17"
    facts = json.loads(metadata["litepose.quantization"])
    assert facts["format"] == "QDQ" and facts["calibration_frames"] == 3
    assert facts["calibration_source"] == "blobs" and facts["calibration_frame_sizes"] == ["300x200"]
    check = check_accuracy(fp32, int8, annotations, folder)
    assert check.ap_fp32 > 0.9 and check.passed, check.report()
    record_accuracy(int8, check)
    facts = json.loads({p.key: p.value for p in int8.metadata_props}["litepose.quantization"])
    assert facts["ap_fp32"] == round(check.ap_fp32, 6) and facts["ap_int8"] == round(check.ap_int8, 6)


def test_int8_calibrated_on_unrepresentative_frames_is_refused(blob_set):
    # Black calibration frames: every activation range is that of an empty image, so red light
    # saturates and the INT8 model finds no one. The check must say so, naming both APs.
    fp32, annotations, folder = blob_set
    int8 = quantize_int8(fp32, [np.zeros((200, 300, 3), np.uint8)] * 2)
    check = check_accuracy(fp32, int8, annotations, folder, max_drop=0.01)
    assert check.ap_fp32 > 0.9 and check.drop > 0.5 and not check.passed
    report = check.report()
    assert f"FP32 {check.ap_fp32:.4f}" in report and f"INT8 {check.ap_int8:.4f}" in report
    assert "MORE than the allowed 0.0100" in report
    with pytest.raises(ValueError, match="AP drop"):
        check_accuracy(fp32, int8, annotations, folder, max_drop=-0.1)


def test_accuracy_check_margin():
    check = AccuracyCheck(
        ap_fp32=0.50, ap_int8=0.49, max_drop=0.01, annotations="a.json", images=3, decoding="no flip test"
    )
    assert check.passed and abs(check.drop - 0.01) < 1e-12
    assert not AccuracyCheck(0.50, 0.485, 0.01, "a.json", 3, "no flip test").passed
    assert AccuracyCheck(0.50, 0.55, 0.0, "a.json", 3, "no flip test").passed  # INT8 better: fine


def test_calibration_sources(tmp_path):
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 12, 3), i * 10, np.uint8))
    frames = calibration_frames(tmp_path, limit=3)
    assert [int(f[0, 0, 0]) for f in frames] == [0, 20, 40]  # spread over the folder
    assert len(calibration_frames(tmp_path / "3.png")) == 1
    with pytest.raises(FileNotFoundError):
        calibration_frames(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="neither an image"):
        calibration_frames(tmp_path / "notes.txt")


def test_calibration_from_a_bag():
    import litepose_ros.samples

    bag = Path(litepose_ros.samples.__file__).parent / "vtest_sample.mcap"
    frames = calibration_frames(bag, limit=4)
    assert 1 <= len(frames) <= 4 and frames[0].ndim == 3 and frames[0].dtype == np.uint8


@pytest.mark.torch
def test_export_command_int8_writes_or_refuses(tmp_path, blob_set, monkeypatch):
    import torch

    from litepose_ros.cli import main
    from litepose_ros.model import quantize
    from litepose_ros.model.network import build_model

    _, annotations, folder = blob_set
    checkpoint = tmp_path / "xs.pth"
    torch.manual_seed(0)
    torch.save(build_model("XS", 17).state_dict(), checkpoint)
    output = tmp_path / "int8.onnx"
    common = [
        "export",
        str(checkpoint),
        "-o",
        str(output),
        "--int8",
        "--calibration",
        str(folder),
        "--input-size",
        "128",
    ]
    # No accuracy set: refused unless forced.
    assert main(common) != 0 and not output.exists()
    assert main([*common, "--force"]) == 0 and output.exists()
    output.unlink()
    # A random network finds no one in FP32 or INT8: no drop, written, both APs recorded.
    assert main([*common, "--accuracy-set", str(annotations)]) == 0
    metadata = {p.key: p.value for p in onnx.load(str(output)).metadata_props}
    facts = json.loads(metadata["litepose.quantization"])
    assert facts["ap_fp32"] == facts["ap_int8"] == 0.0 and facts["max_ap_drop"] == 0.01
    output.unlink()
    # An INT8 model that loses AP is refused, and --force writes it.
    aps = iter([0.60, 0.50, 0.60, 0.50])
    monkeypatch.setattr(quantize, "model_ap", lambda *a, **k: (next(aps), 3))
    assert main([*common, "--accuracy-set", str(annotations)]) != 0 and not output.exists()
    assert main([*common, "--accuracy-set", str(annotations), "--force"]) == 0 and output.exists()


def test_uint8_activations_for_cpus(blob_set):
    fp32, annotations, folder = blob_set
    int8 = quantize_int8(fp32, calibration_frames(folder), activations="uint8")
    facts = json.loads({p.key: p.value for p in int8.metadata_props}["litepose.quantization"])
    assert facts["activations"] == "uint8, per tensor, asymmetric"
    assert check_accuracy(fp32, int8, annotations, folder).passed
    with pytest.raises(ValueError, match="activations"):
        quantize_int8(fp32, calibration_frames(folder), activations="int4")
