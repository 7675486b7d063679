"""The pose estimator: one image in, people out (the entry point of the node and the tools).

``Estimator.from_model("model.onnx").predict(image_bgr)`` resizes the image keeping its aspect
ratio, runs the network (and the mirrored image with the flip test), decodes the people and
returns them in source-image pixels (pixel centres; the top-left pixel's centre is (0, 0)).
Importing this module does not import torch; the torch engine imports it when chosen.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from litepose_ros.decoding import DecoderConfig, decode_people
from litepose_ros.engine import DEFAULT_ALLOW_SPINNING
from litepose_ros.layouts import KeypointLayout, get_layout
from litepose_ros.people import keypoint_boxes
from litepose_ros.preprocess import (
    COLOR_ORDERS,
    SIZE_MULTIPLE,
    ResizeTransform,
    check_image,
    make_transform,
    normalize_image,
    resize_image,
)

_DECODER_FIELDS = {f.name for f in dataclasses.fields(DecoderConfig)}
# Resize transforms kept per image size (a camera stream has one size).
_TRANSFORM_CACHE_SIZE = 8


class BundledModelMissing(FileNotFoundError):  # noqa: N818 - a FileNotFoundError, named for what is missing
    """No model was named and none (or no single default) is bundled with the package."""


def resolve_model_path(given: str | Path | None, *, source: str = "") -> Path:
    """The model file to load: ``given`` (``~`` expanded), or the bundled default model when
    ``given`` is None or blank.

    Raises FileNotFoundError when the named file does not exist (the message quotes ``source``,
    how the user names the model: ``"--model"``, ``"parameter model_path"``), BundledModelMissing
    when nothing is named and no default model is bundled.
    """
    text = "" if given is None else str(given).strip()
    if not text:
        from litepose_ros.weights import default_model_path

        try:
            return default_model_path()
        except FileNotFoundError as error:
            raise BundledModelMissing(str(error)) from error
    path = Path(text).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist" + (f" ({source})" if source else ""))
    return path


@dataclass(frozen=True)
class EstimatorConfig:
    """What the estimator runs and how.

    ``input_size`` (network input short side) and ``layout`` default to what the model file
    records (``litepose.*`` metadata), then to the variant's architecture. ``keypoint_threshold``
    only decides the boxes (tight around keypoints scoring at least this); ``max_persons`` keeps
    the best-scoring people. ``allow_spinning``: ONNX Runtime's worker threads spin-wait between
    runs (default off, as everywhere in the project: ``engine.DEFAULT_ALLOW_SPINNING``; None:
    ONNX Runtime's own default, on). ``flip_batch``: with the flip test, run the image and its
    mirror as one batch of two instead of two runs; None (default): batched on a GPU engine (CUDA,
    TensorRT, ...), two runs on a CPU, where the batch of two measured slower
    (docs/benchmarks/flip_batch.md); the people found are the same either way.
    """

    model_path: Path
    engine: str = "onnxruntime"
    variant: str | None = None
    input_size: int | None = None
    layout: str | None = None
    providers: Sequence[str] | str | None = None
    threads: int | None = None
    fp16: bool = False
    trt_cache_dir: str | Path | None = None
    allow_spinning: bool | None = DEFAULT_ALLOW_SPINNING
    flip_batch: bool | None = None
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    keypoint_threshold: float = 0.3
    max_persons: int | None = None
    size_multiple: int = SIZE_MULTIPLE

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_path", Path(self.model_path).expanduser())
        if self.input_size is not None and int(self.input_size) <= 0:
            raise ValueError(f"input_size must be positive (or None for the model's), got {self.input_size}")
        if self.max_persons is not None and int(self.max_persons) < 0:
            raise ValueError(f"max_persons must be >= 0 (or None for no limit), got {self.max_persons}")
        if not isinstance(self.decoder, DecoderConfig):
            raise TypeError(f"decoder must be a DecoderConfig, got {type(self.decoder).__name__}")

    @classmethod
    def create(cls, model_path: str | Path, *, fast: bool = False, **settings: Any) -> EstimatorConfig:
        """Config from keyword settings: EstimatorConfig fields and DecoderConfig fields
        (``flip_test``, ``detection_threshold``, ...) mixed; ``fast`` starts from
        ``DecoderConfig.fast()`` (no flip test, adjust or refine)."""
        own = {f.name for f in dataclasses.fields(cls)}
        decoder_settings = {k: settings.pop(k) for k in list(settings) if k in _DECODER_FIELDS}
        unknown = sorted(set(settings) - own)
        if unknown:
            raise TypeError(
                f"unknown estimator setting(s) {unknown}; known: "
                f"{sorted((own | _DECODER_FIELDS | {'fast'}) - {'model_path', 'decoder'})}"
            )
        decoder = settings.pop("decoder", None) or (DecoderConfig.fast() if fast else DecoderConfig())
        decoder = decoder.replace(**decoder_settings) if decoder_settings else decoder
        return cls(model_path=Path(model_path), decoder=decoder, **settings)


@dataclass(frozen=True)
class Timing:
    """Milliseconds spent in each stage of one ``predict`` call."""

    preprocess_ms: float
    inference_ms: float
    decode_ms: float

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.inference_ms + self.decode_ms


@dataclass(frozen=True)
class PoseResult:
    """People found in one image, best score first.

    ``keypoints`` (N, K, 3) float32: x, y in source-image pixels and the score (0 for a joint the
    decoder could not place; it then sits at the mean of the person's placed joints).
    ``scores`` (N,) float32 person scores; ``boxes`` (N, 4) float32 x_min, y_min, x_max, y_max
    around the keypoints scoring at least the keypoint threshold (all keypoints if none does).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    layout: KeypointLayout
    image_size: tuple[int, int]  # (width, height)
    timing: Timing

    def __len__(self) -> int:
        return int(self.scores.shape[0])


class Estimator:
    """LitePose multi-person pose estimation for images of any size.

    Safe to call from several threads: the engine runs under a lock, preprocessing and decoding
    use per-call (and per-thread) memory.
    """

    def __init__(self, config: EstimatorConfig, engine: Any = None):
        """Create the engine from ``config`` (or use the given one, which must follow
        ``litepose_ros.engine.InferenceEngine``)."""
        self.config = config
        if engine is None:
            from litepose_ros.engine import create_engine

            layout_joints = get_layout(config.layout).num_keypoints if config.layout else None
            engine = create_engine(
                config.model_path,
                engine=config.engine,
                providers=config.providers,
                threads=config.threads,
                variant=config.variant,
                num_joints=layout_joints,
                fp16=config.fp16,
                trt_cache_dir=config.trt_cache_dir,
                input_size=config.input_size,
                allow_spinning=config.allow_spinning,
            )
        self.engine = engine
        metadata = dict(getattr(engine, "metadata", {}) or {})
        self.layout = _resolve_layout(config.layout, metadata, int(engine.num_joints))
        self.input_size = _resolve_input_size(config.input_size, metadata, config.variant)
        # Fails early on an input size the preprocessing cannot use.
        make_transform(self.input_size, self.input_size, self.input_size, config.size_multiple)
        self.decoder = config.decoder
        wanted = config.flip_batch if config.flip_batch is not None else runs_on_accelerator(engine)
        self.flip_batch = wanted and accepts_batch_of_two(engine)
        self._engine_lock = threading.Lock()
        self._transforms: OrderedDict[tuple[int, int], ResizeTransform] = OrderedDict()
        self._transforms_lock = threading.Lock()

    @classmethod
    def from_model(cls, model_path: str | Path, **settings: Any) -> Estimator:
        """Estimator for a model file; ``settings`` as ``EstimatorConfig.create`` takes them
        (engine, providers, threads, variant, input_size, flip_test, fast, thresholds, ...)."""
        return cls(EstimatorConfig.create(model_path, **settings))

    def describe(self) -> str:
        """One line for logs: engine, input size, layout and decoder mode."""
        d = self.decoder
        mode = (
            "fast"
            if d == DecoderConfig.fast()
            else " ".join(
                f"{name}={'on' if getattr(d, name) else 'off'}" for name in ("flip_test", "adjust", "refine")
            )
        )
        if d.decode_stride != DecoderConfig().decode_stride:
            mode += f", grouping at stride {d.decode_stride}"
        return (
            f"{self.engine.describe()}; input short side {self.input_size}, layout {self.layout.name}, "
            f"decoder {mode}"
        )

    def transform_for(self, width: int, height: int) -> ResizeTransform:
        """The resize transform for an image size (cached)."""
        key = (int(width), int(height))
        with self._transforms_lock:
            transform = self._transforms.get(key)
            if transform is not None:
                self._transforms.move_to_end(key)
                return transform
        transform = make_transform(width, height, self.input_size, self.config.size_multiple)
        with self._transforms_lock:
            self._transforms[key] = transform
            while len(self._transforms) > _TRANSFORM_CACHE_SIZE:
                self._transforms.popitem(last=False)
        return transform

    def predict(self, image: np.ndarray, color_order: str = "bgr") -> PoseResult:
        """People in ``image``, an (H, W, 3) uint8 array in ``color_order`` ("bgr", OpenCV's, or
        "rgb"), with keypoints and boxes in its pixels."""
        check_image(image)
        if color_order not in COLOR_ORDERS:
            raise ValueError(f"color_order must be 'bgr' (OpenCV) or 'rgb', got {color_order!r}")
        started = time.perf_counter()
        height, width = image.shape[:2]
        transform = self.transform_for(width, height)
        batch = normalize_image(resize_image(image, transform), color_order)
        mirrored = np.ascontiguousarray(batch[..., ::-1]) if self.decoder.flip_test else None
        prepared = time.perf_counter()
        with self._engine_lock:
            if mirrored is not None and self.flip_batch:
                both4, both2 = self.engine.run(np.concatenate([batch, mirrored]))
                (out4, out2), flipped = (both4[:1], both2[:1]), (both4[1:], both2[1:])
            else:
                out4, out2 = self.engine.run(batch)
                flipped = self.engine.run(mirrored) if mirrored is not None else (None, None)
        inferred = time.perf_counter()
        people = decode_people(
            out4,
            out2,
            self.layout,
            config=self.decoder,
            transform=transform,
            flipped_out4=flipped[0],
            flipped_out2=flipped[1],
        )
        keypoints, scores = people.keypoints, people.scores
        if self.config.max_persons is not None:
            keypoints, scores = keypoints[: self.config.max_persons], scores[: self.config.max_persons]
        boxes = keypoint_boxes(keypoints, keypoints[..., 2] >= np.float32(self.config.keypoint_threshold))
        boxes = boxes.astype(np.float32)
        decoded = time.perf_counter()
        timing = Timing(
            preprocess_ms=(prepared - started) * 1e3,
            inference_ms=(inferred - prepared) * 1e3,
            decode_ms=(decoded - inferred) * 1e3,
        )
        return PoseResult(
            keypoints=keypoints,
            scores=scores,
            boxes=boxes,
            layout=self.layout,
            image_size=(width, height),
            timing=timing,
        )


def runs_on_accelerator(engine: Any) -> bool:
    """True when the engine runs the network on something other than the CPU (an ONNX Runtime
    provider other than the CPU one first in line, or a torch device other than cpu)."""
    providers = list(getattr(engine, "providers", None) or [])
    if providers:
        return providers[0] != "CPUExecutionProvider"
    return str(getattr(engine, "device", "cpu")).split(":")[0] != "cpu"


def accepts_batch_of_two(engine: Any) -> bool:
    """False for an ONNX model exported with a fixed batch of one (``litepose export --static``)."""
    session = getattr(engine, "session", None)
    if session is None:
        return True
    batch = session.get_inputs()[0].shape[0]
    return not (isinstance(batch, int) and batch == 1)


def _resolve_layout(requested: str | None, metadata: dict[str, str], num_joints: int) -> KeypointLayout:
    if requested:
        layout = get_layout(requested)
        if layout.num_keypoints != num_joints:
            raise ValueError(
                f"layout {layout.name} has {layout.num_keypoints} keypoints but the model has "
                f"{num_joints} joints; leave the layout unset to take the model's"
            )
        return layout
    name = metadata.get("layout")
    if name and name != "custom":
        layout = get_layout(name)
        if layout.num_keypoints == num_joints:
            return layout
    return get_layout(num_joints)


def _resolve_input_size(requested: int | None, metadata: dict[str, str], variant: str | None) -> int:
    if requested:
        return int(requested)
    if metadata.get("input_size"):
        return int(metadata["input_size"])
    if metadata.get("architecture"):
        return int(json.loads(metadata["architecture"])["img_size"])
    if variant:
        from litepose_ros.model.architecture import resolve_architecture

        return int(resolve_architecture(variant).img_size)
    raise ValueError(
        "the model file does not record its input size (no litepose.input_size metadata): "
        "pass input_size (e.g. 256 for XS, 448 for S/M, 512 for L) or the variant"
    )
