"""Flip test on this machine: the image and its mirror as two runs against one batch of two, the
bundled model at its input size, interleaved rounds (load hits both alike). Writes
docs/benchmarks/flip_batch.md: ``python tools/bench_flip_batch.py [--note TEXT]``.

It decides the estimator's default (``EstimatorConfig.flip_batch``): two runs on CPUs, where the
batch of two did not measure faster; one batch on GPU engines (not measured here).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from litepose_ros.benchmarks.report import DEFAULT_RESULTS_DIR, markdown_table, write_page
from litepose_ros.estimator import Estimator
from litepose_ros.weights import default_model_path

SOURCE_SIZE = (768, 576)  # the bundled clip's frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--note", default="")
    parser.add_argument("--output", type=Path, default=DEFAULT_RESULTS_DIR / "flip_batch.md")
    args = parser.parse_args(argv)
    rows = []
    load_before = os.getloadavg()[0]
    for threads in (1, 2):
        estimator = Estimator.from_model(default_model_path(), threads=threads)
        width, height = estimator.transform_for(*SOURCE_SIZE).input_size
        image = np.random.default_rng(0).normal(size=(1, 3, height, width)).astype(np.float32)
        mirrored = np.ascontiguousarray(image[..., ::-1])
        pair = np.concatenate([image, mirrored])
        run = estimator.engine.run
        ways = {
            "two runs": lambda run=run, a=image, b=mirrored: (run(a), run(b)),
            "one batch of two": lambda run=run, pair=pair: run(pair),
        }
        times: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(3):
            for way in ways.values():
                way()
        for _ in range(args.rounds):
            for name, way in ways.items():
                start = time.perf_counter()
                way()
                times[name].append((time.perf_counter() - start) * 1e3)
        separate, batched = (statistics.median(times[name]) for name in ways)
        rows.append(
            (threads, f"{width}x{height}", f"{separate:.1f}", f"{batched:.1f}", f"{separate / batched:.2f}x")
        )
    body = (
        f"Bundled model {default_model_path().name}, ONNX Runtime on the CPU, input for a "
        f"{SOURCE_SIZE[0]}x{SOURCE_SIZE[1]} frame; median of {args.rounds} interleaved rounds. "
        f"1-minute load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after."
        + (f" {args.note}" if args.note else "")
        + "\n\n"
        + markdown_table(
            ["threads", "network input", "two runs, ms", "one batch of two, ms", "batch speed-up"], rows
        )
        + "\n\nBelow 1.0x the batch is slower: the estimator runs the mirror separately on CPUs "
        "(`flip_batch` None = auto) and batches on GPU engines, where batching is the usual gain.\n"
    )
    command = shlex.join(["python", "tools/bench_flip_batch.py", *(sys.argv[1:] if argv is None else argv)])
    write_page(args.output, "Flip test: two runs or one batch of two", body, command=command)
    print(args.output.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
