"""Run the core library on prepared frames and save what it found (one side of the aarch64 check).

tools/check_arm.py runs this same script with the project's x86_64 interpreter and with an aarch64
interpreter under qemu-user. It needs only numpy, opencv-python-headless, onnxruntime, scipy and
this source tree (no ROS, no torch), and writes plain arrays (no pickles) so either side can read
the other's results.

    python tools/arm_parity_worker.py FRAMES.npz RESULT.npz [--outputs-from OTHER_RESULT.npz]

Each frame is decoded twice from one network run: with the node's decoder settings ("default") and
with the reference's exact grouping cost, without the tie-break term ("tie0"). With --outputs-from,
the network is not run: the other side's recorded outputs are decoded instead, which separates
differences of the network from differences of the decoding code.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

# The node's defaults (config/litepose.yaml) on one thread, so both sides run the same work in the
# same order: CPU execution provider, no flip test, refine on.
ESTIMATOR_SETTINGS = {"providers": ["CPUExecutionProvider"], "threads": 1, "flip_test": False, "refine": True}
# Decoder variants: name -> DecoderConfig changes on top of ESTIMATOR_SETTINGS.
DECODER_VARIANTS = {"default": {}, "tie0": {"tag_tie_break": 0.0}}


class RecordingEngine:
    """Wraps an inference engine and keeps each call's input digest and outputs, so the check can
    tell whether a difference starts in preprocessing, in the network or in decoding."""

    def __init__(self, engine):
        self._engine = engine
        self.input_digests: list[str] = []
        self.outputs: list[tuple] = []

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def run(self, batch):
        self.input_digests.append(hashlib.sha256(batch.tobytes()).hexdigest())
        outputs = self._engine.run(batch)
        self.outputs.append(tuple(output.copy() for output in outputs))
        return outputs


class ReplayEngine:
    """Stands in for an inference engine: returns recorded outputs, one set per call, in order."""

    def __init__(self, engine, outputs: list[tuple]):
        self._engine = engine
        self._outputs = iter(outputs)

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def run(self, batch):
        return next(self._outputs)


def numpy_simd_features() -> list[str]:
    """The SIMD extensions numpy dispatches to on this CPU (e.g. AVX2 on x86_64, ASIMD on aarch64)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_features__
    return sorted(name for name, present in __cpu_features__.items() if present)


def predict_all(estimator, frames) -> tuple[list, list]:
    """(keypoints, scores) per frame."""
    results = [estimator.predict(frame) for frame in frames]
    return [r.keypoints for r in results], [r.scores for r in results]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frames", type=Path, help="npz written by check_arm.py (frames, indices)")
    parser.add_argument("result", type=Path, help="npz to write")
    parser.add_argument(
        "--outputs-from",
        type=Path,
        help="decode these recorded network outputs instead of "
        "running the network (a RESULT.npz of the other side)",
    )
    parser.add_argument(
        "--noise",
        type=float,
        default=0.0,
        help="with --outputs-from: add Gaussian noise of this standard deviation to them",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --noise")
    args = parser.parse_args()

    started = time.perf_counter()
    import cv2
    import numpy as np
    import onnxruntime
    import scipy

    from litepose_ros.engine import create_engine
    from litepose_ros.estimator import Estimator, EstimatorConfig
    from litepose_ros.weights import default_model_path

    model = default_model_path()
    config = EstimatorConfig.create(model, **ESTIMATOR_SETTINGS)
    engine = create_engine(model, providers=config.providers, threads=config.threads)
    loaded = time.perf_counter()
    with np.load(args.frames) as data:
        frames, frame_indices = data["frames"], data["indices"]

    predict_s: list[float] = []
    if args.outputs_from:
        with np.load(args.outputs_from) as data:
            names = sorted(name for name in data.files if name.startswith("output"))
            maps = [data[name] for name in names]
        if args.noise:
            rng = np.random.default_rng(args.seed)
            maps = [m + rng.normal(0.0, args.noise, m.shape).astype(m.dtype) for m in maps]
        outputs = list(zip(*maps, strict=True))
        input_digests: list[str] = []
    else:
        recorder = RecordingEngine(engine)
        estimator = Estimator(config, engine=recorder)
        for position, frame in enumerate(frames):
            before = time.perf_counter()
            result = estimator.predict(frame)
            predict_s.append(time.perf_counter() - before)
            print(
                f"{platform.machine()}: frame {position + 1}/{len(frames)}: {len(result)} people, "
                f"{predict_s[-1]:.2f} s",
                flush=True,
            )
        outputs, input_digests = recorder.outputs, recorder.input_digests

    arrays = {}
    for variant, changes in DECODER_VARIANTS.items():
        variant_config = dataclasses.replace(config, decoder=config.decoder.replace(**changes))
        estimator = Estimator(variant_config, engine=ReplayEngine(engine, outputs))
        keypoints, scores = predict_all(estimator, frames)
        arrays[f"{variant}_people"] = np.asarray([len(s) for s in scores], np.int64)
        arrays[f"{variant}_keypoints"] = (
            np.concatenate(keypoints)
            if keypoints
            else np.zeros((0, estimator.layout.num_keypoints, 3), np.float32)
        )
        arrays[f"{variant}_scores"] = np.concatenate(scores) if scores else np.zeros((0,), np.float32)

    info = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "libc": " ".join(platform.libc_ver()),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "onnxruntime": onnxruntime.__version__,
        "scipy": scipy.__version__,
        "providers": onnxruntime.get_available_providers(),
        "numpy_simd": numpy_simd_features(),
        "estimator": estimator.describe(),
        "model": model.name,
        "startup_s": loaded - started,
        "outputs_from": str(args.outputs_from.name) if args.outputs_from else None,
        "noise": args.noise,
    }
    np.savez_compressed(
        args.result,
        frame_indices=frame_indices,
        predict_s=np.asarray(predict_s, np.float64),
        input_digests=np.asarray(input_digests),
        # The network's outputs per frame (stride-4 heatmaps and tags, stride-2 heatmaps).
        **{
            f"output{i}": np.stack([frame_outputs[i] for frame_outputs in outputs])
            for i in range(len(outputs[0]))
        },
        **arrays,
        info=np.asarray(json.dumps(info)),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
