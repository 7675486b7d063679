"""INT8 with a guard: static QDQ quantisation of an exported model, checked against FP32 on a set.

``quantize_int8`` quantises an FP32 export with ONNX Runtime's own tools
(``onnxruntime.quantization.quantize_static``): QDQ format (QuantizeLinear / DequantizeLinear
pairs around float operators, what TensorRT's execution provider turns into INT8 layers),
per-channel symmetric INT8 weights, symmetric INT8 activations (TensorRT needs zero points of 0;
``activations="uint8"`` gives asymmetric UINT8 ones, ONNX Runtime's fast path on x86 CPUs), with
ranges from calibration frames (MinMax) of the user's own footage: an image, a folder of images
or a rosbag2 bag (``calibration_frames``). The model keeps its ``litepose.*`` metadata;
``litepose.precision`` becomes ``int8`` and ``litepose.quantization`` (JSON) records the
calibration facts and, once checked, both APs.

``check_accuracy`` evaluates the FP32 and the INT8 model on an annotated COCO-format set with
the same decoding; ``AccuracyCheck.passed`` says whether the AP dropped by at most the allowed
margin. ``litepose export --int8`` refuses to write a model that fails it unless forced.

Needs onnx and onnxruntime, not torch.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx

from litepose_ros.image_encodings import IMAGE_SUFFIXES
from litepose_ros.preprocess import preprocess_image

METADATA_PREFIX = "litepose."
DEFAULT_MAX_AP_DROP = 0.01
DEFAULT_CALIBRATION_FRAMES = 64
BAG_SUFFIXES = (".mcap", ".db3")


def calibration_frames(source: str | Path, limit: int = DEFAULT_CALIBRATION_FRAMES) -> list[np.ndarray]:
    """Up to ``limit`` BGR frames from an image file, a folder of images (sorted by name) or a
    rosbag2 bag (a bag folder with metadata.yaml, a .mcap or a .db3 file; the first image topic).
    Frames are spread evenly over what the source holds."""
    path = Path(source)
    if limit < 1:
        raise ValueError(f"the calibration needs at least one frame, got a limit of {limit}")
    if not path.exists():
        raise FileNotFoundError(f"calibration source {path} does not exist")
    if path.suffix.lower() in BAG_SUFFIXES or (path.is_dir() and (path / "metadata.yaml").is_file()):
        frames = list(_bag_frames(path))
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        files = [files[i] for i in _spread(len(files), limit)]
        frames = [_read_image(f) for f in files]
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        frames = [_read_image(path)]
    else:
        raise ValueError(
            f"calibration source {path} is neither an image ({', '.join(IMAGE_SUFFIXES)}), "
            "a folder of images nor a rosbag2 bag"
        )
    if not frames:
        raise ValueError(f"calibration source {path} holds no images")
    return [frames[i] for i in _spread(len(frames), limit)]


def _spread(count: int, limit: int) -> list[int]:
    if count <= limit:
        return list(range(count))
    return sorted({int(i) for i in np.linspace(0, count - 1, limit).round()})


def _read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read calibration image {path}")
    return image


def _bag_frames(path: Path) -> Iterator[np.ndarray]:
    from litepose_ros.bags import BagReader, decode_bag_image

    with BagReader(path) as reader:
        topics = reader.image_topics()
        if not topics:
            raise ValueError(f"bag {path} has no image topic")
        for image in reader.images(topics[0]):
            yield decode_bag_image(image)


class _FrameReader:
    """onnxruntime.quantization CalibrationDataReader over preprocessed frames."""

    def __init__(self, input_name: str, frames: Sequence[np.ndarray], input_size: int):
        self._batches = iter([{input_name: preprocess_image(frame, input_size)[0]} for frame in frames])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # pragma: no cover - not called by MinMax calibration
        raise NotImplementedError


# Activation schemes: "int8" symmetric (zero points 0: what TensorRT's explicit INT8 needs; the
# default) or "uint8" asymmetric (ONNX Runtime's fast path on x86 CPUs without VNNI, where
# symmetric int8 activations measured 2-2.6x slower than FP32; docs/benchmarks/int8.md).
ACTIVATION_TYPES = ("int8", "uint8")


def quantize_int8(
    fp32_model: bytes | onnx.ModelProto,
    frames: Sequence[np.ndarray],
    *,
    input_size: int | None = None,
    calibration_source: str = "",
    activations: str = "int8",
) -> onnx.ModelProto:
    """Static QDQ INT8 of an FP32 LitePose export, calibrated on ``frames`` (BGR images, each
    preprocessed at ``input_size``, default the model's ``litepose.input_size``); ``activations``
    one of ACTIVATION_TYPES (weights are always per-channel symmetric int8)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    model = fp32_model if isinstance(fp32_model, onnx.ModelProto) else onnx.load_from_string(fp32_model)
    metadata = {p.key: p.value for p in model.metadata_props}
    if metadata.get(METADATA_PREFIX + "precision", "fp32") != "fp32":
        raise ValueError("INT8 quantisation needs an FP32 export (not --fp16)")
    if not frames:
        raise ValueError("INT8 quantisation needs at least one calibration frame")
    if activations not in ACTIVATION_TYPES:
        raise ValueError(f"activations must be one of {ACTIVATION_TYPES}, got {activations!r}")
    symmetric = activations == "int8"
    size = int(input_size or metadata.get(METADATA_PREFIX + "input_size") or 256)
    reader = type("FrameReader", (_FrameReader, CalibrationDataReader), {})(
        model.graph.input[0].name, frames, size
    )
    with tempfile.TemporaryDirectory() as directory:
        source, target = Path(directory) / "fp32.onnx", Path(directory) / "int8.onnx"
        source.write_bytes(model.SerializeToString())
        quantize_static(
            str(source),
            str(target),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True},
        )
        quantized = onnx.load(str(target))
    facts = {
        "format": "QDQ",
        "weights": "int8, per channel, symmetric",
        "activations": "int8, per tensor, symmetric" if symmetric else "uint8, per tensor, asymmetric",
        "calibration_method": "MinMax",
        "calibration_source": calibration_source,
        "calibration_frames": len(frames),
        "calibration_input_size": size,
        "calibration_frame_sizes": sorted({f"{f.shape[1]}x{f.shape[0]}" for f in frames}),
    }
    metadata.update(
        {
            METADATA_PREFIX + "precision": "int8",
            METADATA_PREFIX + "quantization": json.dumps(facts, sort_keys=True),
        }
    )
    onnx.helper.set_model_props(quantized, metadata)
    return quantized


def record_accuracy(model: onnx.ModelProto, check: AccuracyCheck) -> None:
    """Add the accuracy check's facts to the model's ``litepose.quantization`` metadata."""
    metadata = {p.key: p.value for p in model.metadata_props}
    facts = json.loads(metadata.get(METADATA_PREFIX + "quantization", "{}"))
    facts.update(check.facts())
    metadata[METADATA_PREFIX + "quantization"] = json.dumps(facts, sort_keys=True)
    onnx.helper.set_model_props(model, metadata)


@dataclass(frozen=True)
class AccuracyCheck:
    """AP of the FP32 and the INT8 model on the same annotated set, and the allowed drop."""

    ap_fp32: float
    ap_int8: float
    max_drop: float
    annotations: str
    images: int
    decoding: str

    @property
    def drop(self) -> float:
        return self.ap_fp32 - self.ap_int8

    @property
    def passed(self) -> bool:
        return self.drop <= self.max_drop + 1e-12

    def report(self) -> str:
        verdict = "within" if self.passed else "MORE than"
        return (
            f"AP on {self.annotations} ({self.images} images, {self.decoding}): FP32 {self.ap_fp32:.4f}, "
            f"INT8 {self.ap_int8:.4f}; drop {self.drop:+.4f}, {verdict} the allowed {self.max_drop:.4f}"
        )

    def facts(self) -> dict[str, object]:
        return {
            "ap_fp32": round(self.ap_fp32, 6),
            "ap_int8": round(self.ap_int8, 6),
            "max_ap_drop": self.max_drop,
            "accuracy_set": self.annotations,
            "accuracy_images": self.images,
            "accuracy_decoding": self.decoding,
        }


def model_ap(
    model: bytes | onnx.ModelProto,
    annotations: str | Path,
    image_dir: str | Path,
    *,
    flip_test: bool = False,
    max_images: int | None = None,
    threads: int | None = None,
) -> tuple[float, int]:
    """(AP, images) of an in-memory model on an annotated set (CrowdPose rules for 14 joints)."""
    from litepose_ros.engine import OnnxRuntimeEngine
    from litepose_ros.estimator import Estimator, EstimatorConfig
    from litepose_ros.evaluation import evaluate_estimator

    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    engine = OnnxRuntimeEngine(data, threads=threads, source="in-memory model")
    config = EstimatorConfig.create("in-memory.onnx", flip_test=flip_test)
    estimator = Estimator(config, engine=engine)
    report = evaluate_estimator(
        estimator,
        annotations,
        image_dir,
        crowdpose=estimator.layout.num_keypoints == 14,
        max_images=max_images,
        progress=False,
    )
    return float(report["metrics"]["AP"]), int(report["images"])


def check_accuracy(
    fp32_model: bytes | onnx.ModelProto,
    int8_model: bytes | onnx.ModelProto,
    annotations: str | Path,
    image_dir: str | Path,
    *,
    max_drop: float = DEFAULT_MAX_AP_DROP,
    flip_test: bool = False,
    max_images: int | None = None,
    threads: int | None = None,
) -> AccuracyCheck:
    """Evaluate both models with the same decoding on the same images."""
    if max_drop < 0:
        raise ValueError(f"the allowed AP drop must be >= 0, got {max_drop}")
    ap_fp32, images = model_ap(
        fp32_model, annotations, image_dir, flip_test=flip_test, max_images=max_images, threads=threads
    )
    ap_int8, _ = model_ap(
        int8_model, annotations, image_dir, flip_test=flip_test, max_images=max_images, threads=threads
    )
    return AccuracyCheck(
        ap_fp32=max(ap_fp32, 0.0),
        ap_int8=max(ap_int8, 0.0),
        max_drop=max_drop,
        annotations=Path(annotations).name,
        images=images,
        decoding="flip test" if flip_test else "no flip test",
    )
