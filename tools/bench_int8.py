"""FP32 against INT8 (QDQ) speed of exported model files, interleaved in one run:
``python tools/bench_int8.py FP32.onnx INT8.onnx [MORE.onnx ...] [--threads 1 2] [--runs 100]``
prints a markdown table (median and p90 ms of ``engine.run`` at the first model's input size,
batch 1, speed-up against the first) with the load average before and after.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from litepose_ros.benchmarks.model_speed import time_interleaved
from litepose_ros.engine import OnnxRuntimeEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("models", type=Path, nargs="+", help="the FP32 model first, then the others")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    print(f"1-minute load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} logical cores)\n")
    print("| model | input | threads | runs | median ms | p90 ms | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for threads in args.threads:
        engines = {path.name: OnnxRuntimeEngine(path, threads=threads) for path in args.models}
        first = args.models[0].name
        size = int(engines[first].metadata.get("input_size", 256))
        batch = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
        calls = {name: (lambda e=engine, b=batch: e.run(b)) for name, engine in engines.items()}
        stats = time_interleaved(calls, warmup=5, runs={name: args.runs for name in calls})
        for name in engines:
            ratio = stats[first].median_ms / stats[name].median_ms
            timing = stats[name]
            print(
                f"| {name} | {size}x{size} | {threads} | {timing.runs} | {timing.median_ms:.2f} | "
                f"{timing.p90_ms:.2f} | {ratio:.2f}x |"
            )
    print(f"\n1-minute load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
