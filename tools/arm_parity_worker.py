"""Run the core library on prepared frames and save what it found (one side of the aarch64 check).

tools/check_arm.py runs this same script twice: with the project's x86_64 interpreter and with an
aarch64 interpreter under qemu-user. It needs only numpy, opencv-python-headless, onnxruntime,
scipy and this source tree (no ROS, no torch), and writes plain arrays (no pickles) so either side
can read the other's results.

    python tools/arm_parity_worker.py FRAMES.npz RESULT.npz
"""

from __future__ import annotations

import argparse
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


def numpy_simd_features() -> list[str]:
    """The SIMD extensions numpy dispatches to on this CPU (e.g. AVX2 on x86_64, ASIMD on aarch64)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_features__
    return sorted(name for name, present in __cpu_features__.items() if present)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frames", type=Path, help="npz written by check_arm.py (frames, indices)")
    parser.add_argument("result", type=Path, help="npz to write")
    args = parser.parse_args()

    started = time.perf_counter()
    import cv2
    import numpy as np
    import onnxruntime
    import scipy

    from litepose_ros.engine import create_engine
    from litepose_ros.estimator import Estimator, EstimatorConfig
    from litepose_ros.models import default_model_path

    model = default_model_path()
    config = EstimatorConfig.create(model, **ESTIMATOR_SETTINGS)
    engine = RecordingEngine(create_engine(model, providers=config.providers, threads=config.threads))
    estimator = Estimator(config, engine=engine)
    loaded = time.perf_counter()

    with np.load(args.frames) as data:
        frames, frame_indices = data["frames"], data["indices"]
    keypoints, scores, people_per_frame, predict_s = [], [], [], []
    for frame in frames:
        before = time.perf_counter()
        result = estimator.predict(frame)
        predict_s.append(time.perf_counter() - before)
        keypoints.append(result.keypoints)
        scores.append(result.scores)
        people_per_frame.append(len(result))
        print(f"{platform.machine()}: frame {len(predict_s)}/{len(frames)}: {len(result)} people, "
              f"{predict_s[-1]:.2f} s", flush=True)

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
    }
    num_joints = estimator.layout.num_keypoints
    np.savez_compressed(
        args.result,
        frame_indices=frame_indices,
        people_per_frame=np.asarray(people_per_frame, np.int64),
        keypoints=np.concatenate(keypoints) if keypoints else np.zeros((0, num_joints, 3), np.float32),
        scores=np.concatenate(scores) if scores else np.zeros((0,), np.float32),
        predict_s=np.asarray(predict_s, np.float64),
        input_digests=np.asarray(engine.input_digests),
        # The network's two outputs per frame (stride-4 heatmaps and tags, stride-2 heatmaps).
        **{f"output{i}": np.stack([outputs[i] for outputs in engine.outputs])
           for i in range(len(engine.outputs[0]))} if engine.outputs else {},
        info=np.asarray(json.dumps(info)),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
