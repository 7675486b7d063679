"""Numbers into summaries: percentile distributions and Markdown tables.

One home for the statistics and table helpers that the bag reports, the benchmark pages, the
node's diagnostics and the documentation tables share. ROS-free, numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

PERCENTILES = (50, 90, 95, 99)


def median_ms(seconds: Iterable[float]) -> float:
    """Median of durations in seconds, in milliseconds (NaN when there is none)."""
    samples = list(seconds)
    return float(np.median(np.asarray(samples)) * 1e3) if samples else float("nan")


def p95_ms(seconds: Iterable[float]) -> float:
    """95th percentile of durations in seconds, in milliseconds (NaN when there is none)."""
    samples = list(seconds)
    return float(np.percentile(np.asarray(samples), 95) * 1e3) if samples else float("nan")


def distribution(values: Sequence[float], digits: int = 3) -> dict[str, float] | None:
    """mean, min, percentiles and max of a list of numbers (None when empty)."""
    array = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if array.size == 0:
        return None
    summary = {"mean": array.mean(), "min": array.min()}
    summary.update({f"p{p}": np.percentile(array, p) for p in PERCENTILES})
    summary["max"] = array.max()
    return {name: round(float(value), digits) for name, value in summary.items()}


def format_distribution(summary: dict[str, float] | None, unit: str = "ms") -> str:
    """One line from ``distribution``'s dict: p50, p95, max and mean."""
    if not summary:
        return "n/a"
    return (
        f"p50 {summary['p50']:.1f} {unit}, p95 {summary['p95']:.1f} {unit}, "
        f"max {summary['max']:.1f} {unit} (mean {summary['mean']:.1f})"
    )


def persons_summary(counts: Sequence[int]) -> dict[str, Any] | None:
    """Persons per frame: mean, median, min, max, total and a histogram {count: frames}."""
    if not counts:
        return None
    array = np.asarray(counts)
    values, frequencies = np.unique(array, return_counts=True)
    return {
        "mean": round(float(array.mean()), 3),
        "median": float(np.median(array)),
        "min": int(array.min()),
        "max": int(array.max()),
        "total": int(array.sum()),
        "histogram": {str(int(v)): int(f) for v, f in zip(values, frequencies, strict=True)},
    }


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table; float cells with two decimals, everything else as ``str`` gives it."""

    def cell(value: object) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
