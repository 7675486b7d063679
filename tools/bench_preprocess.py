"""Preprocessing speed, the float-arithmetic normalisation (before) against the table lookup
(now), interleaved in one run: ``python tools/bench_preprocess.py`` prints a markdown table.

Both include the resize (cv2.warpAffine, unchanged); each row is the median of interleaved
rounds of 50 calls, so load on a shared machine hits both alike.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

from litepose_ros.preprocess import IMAGENET_MEAN, IMAGENET_STD, make_transform, normalize_image, resize_image


def float_normalisation(image: np.ndarray) -> np.ndarray:
    """The previous implementation: several numpy passes in float32."""
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
    std = np.asarray(IMAGENET_STD, dtype=np.float32)
    normalised = image[..., ::-1].astype(np.float32) * (1.0 / (255.0 * std)) - mean / std
    return np.ascontiguousarray(normalised.transpose(2, 0, 1))[None]


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"1-minute load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} logical cores)\n")
    print("| source | input | before ms | now ms | speed-up | max abs difference |")
    print("|---|---|---|---|---|---|")
    for width, height in ((640, 480), (1280, 720), (1920, 1080)):
        for input_size in (256, 448):
            image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            transform = make_transform(width, height, input_size)
            ways = {
                "before": lambda i=image, t=transform: float_normalisation(resize_image(i, t)),
                "now": lambda i=image, t=transform: normalize_image(resize_image(i, t)),
            }
            times: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(9):
                for name, fn in ways.items():
                    start = time.perf_counter()
                    for _ in range(50):
                        fn()
                    times[name].append((time.perf_counter() - start) / 50 * 1e3)
            before, now = statistics.median(times["before"]), statistics.median(times["now"])
            difference = float(np.abs(ways["before"]() - ways["now"]()).max())
            size = f"{transform.input_size[0]}x{transform.input_size[1]}"
            print(
                f"| {width}x{height} | {size} | {before:.2f} | {now:.2f} | {before / now:.1f}x | "
                f"{difference:.1e} |"
            )
    print(f"\n1-minute load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
