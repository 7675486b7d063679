"""Bag reports without ROS: ground-truth matching, per-frame records, plots, report files.

What ``litepose bag-eval`` (offline, ``litepose_ros.bags.evaluate``) and its node-in-the-loop
mode (``litepose_ros.bags.node_in_the_loop``) write: ``report.json`` / ``summary.json``, the
Markdown page, ``frames.csv`` and PNG plots. ROS-free, like ``storage``: the ROS-dependent
modules of this package import it, never the other way round.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litepose_ros.layouts import get_layout
from litepose_ros.summaries import format_distribution, markdown_table

MATCH_MODES = ("auto", "stamp", "index")


@dataclass
class FrameRecord:
    """One evaluated frame: bag position, stamp, persons published, estimator latency (ms)."""

    index: int
    stamp_ns: int
    log_time_ns: int
    persons: int
    latency_ms: float
    error: str = ""
    track_ids: tuple[int, ...] = ()  # Person.id of each published person (tracking on)


# --- ground truth -------------------------------------------------------------------------------


def _gt_stamp_ns(image: dict) -> int | None:
    if "stamp_ns" in image:
        return int(image["stamp_ns"])
    stamp = image.get("stamp")
    if isinstance(stamp, dict) and "sec" in stamp:
        return int(stamp["sec"]) * 1_000_000_000 + int(stamp.get("nanosec", 0))
    return None


def match_ground_truth(
    dataset: dict, frames: Sequence[tuple[int, int]], match_by: str = "auto", tolerance_ns: int = 1_000_000
) -> tuple[dict[int, int], str]:
    """Map frame index -> ground-truth image id.

    frames: (frame index, header stamp ns) of the processed frames. Returns the mapping and the
    mode used ("stamp" or "index"). Stamp matching takes, for each ground-truth image, the frame
    with the nearest stamp within tolerance_ns; index matching uses ``frame_index`` or the
    image's position in id order.
    """
    images = sorted(dataset["images"], key=lambda image: int(image["id"]))
    if match_by == "auto":
        match_by = "stamp" if images and all(_gt_stamp_ns(i) is not None for i in images) else "index"
    mapping: dict[int, int] = {}
    if match_by == "stamp":
        if not frames:
            return mapping, match_by
        stamps = np.array([stamp for _, stamp in frames], dtype=np.int64)
        for image in images:
            stamp = _gt_stamp_ns(image)
            if stamp is None:
                raise ValueError(
                    f"ground-truth image {image['id']} has no stamp_ns or stamp "
                    "{sec, nanosec}: match by index instead (--match-by index)"
                )
            nearest = int(np.argmin(np.abs(stamps - stamp)))
            if abs(int(stamps[nearest]) - stamp) <= tolerance_ns:
                mapping[frames[nearest][0]] = int(image["id"])
        return mapping, match_by
    processed = {index for index, _ in frames}
    explicit = [image for image in images if "frame_index" in image]
    if explicit and len(explicit) != len(images):
        raise ValueError(
            f"{len(explicit)} of {len(images)} ground-truth images have a frame_index: give it "
            "for every image, or for none (then id order gives the frame order)"
        )
    for position, image in enumerate(images):
        index = int(image["frame_index"]) if explicit else position
        if index in processed:
            if index in mapping:
                raise ValueError(
                    f"ground-truth images {mapping[index]} and {image['id']} both claim frame {index}"
                )
            mapping[index] = int(image["id"])
    return mapping, match_by


def keypoint_accuracy(
    dataset: dict,
    frames: Sequence[tuple[int, int]],
    predictions: dict[int, Any],
    *,
    ground_truth: str | Path,
    match_by: str = "auto",
    stamp_tolerance: float = 0.001,
    model_layout: str = "",
) -> dict[str, Any]:
    """OKS AP/AR of the frames' people against the ground-truth images matched to them.

    frames: (frame index, header stamp ns) of the frames that count; predictions: frame index ->
    its people (``keypoints`` (N, K, 3), ``scores`` (N,)); a counted frame without an entry has
    nobody (a frame the node dropped: its people are missed). Only matched images are evaluated.
    model_layout: the layout the people come in when known (otherwise told by their keypoints).
    """
    from litepose_ros.evaluation import evaluate_keypoints, layout_of
    from litepose_ros.people import coco_results

    expected = layout_of(dataset)
    if model_layout:
        found = {get_layout(model_layout).num_keypoints}
    else:
        found = {np.shape(p.keypoints)[1] for p in predictions.values() if len(p.scores)}
    if found - {expected.num_keypoints}:
        predicted = model_layout or f"{sorted(found)} keypoints"
        raise ValueError(
            f"ground truth {ground_truth} has {expected.num_keypoints} keypoints per person "
            f"({expected.name}) but the model predicts {predicted}: use ground truth of the model's layout"
        )
    mapping, mode = match_ground_truth(dataset, frames, match_by, round(stamp_tolerance * 1e9))
    coco_predictions = [
        entry
        for index, image_id in mapping.items()
        if index in predictions
        for entry in coco_results(image_id, predictions[index])
    ]
    metrics = (
        evaluate_keypoints(dataset, coco_predictions, image_ids=sorted(mapping.values())) if mapping else None
    )
    return {
        "metrics": metrics,
        "match_by": mode,
        "matched_frames": len(mapping),
        "matched_frames_without_output": sum(1 for index in mapping if index not in predictions),
        "ground_truth_images": len(dataset["images"]),
        "unmatched_ground_truth_images": len(dataset["images"]) - len(mapping),
        "ground_truth": str(ground_truth),
    }


def accuracy_markdown(accuracy: dict[str, Any] | None) -> list[str]:
    """The "Accuracy (OKS)" section of a report page (nothing without ground truth)."""
    if not accuracy:
        return []
    if accuracy.get("error"):
        return ["## Accuracy (OKS)", "", f"Not computed: {accuracy['error']}", ""]
    lines = [
        "## Accuracy (OKS)",
        "",
        f"{accuracy['matched_frames']} of {accuracy['ground_truth_images']} ground-truth images "
        f"matched to frames by {accuracy['match_by']}.",
        "",
    ]
    if accuracy.get("matched_frames_without_output"):
        lines[-2] += (
            f" {accuracy['matched_frames_without_output']} of them are frames the node dropped: "
            "their people count as missed."
        )
    if accuracy["metrics"]:
        metrics = [
            (name, f"{value:.3f}" if value is not None else "n/a")
            for name, value in accuracy["metrics"].items()
        ]
        lines += [markdown_table(["quantity", "value"], metrics), ""]
    return lines


# --- plots ----------------------------------------------------------------------------------------


def plot_series(
    path: Path,
    seconds: Sequence[float],
    series: dict[str, Sequence[float]],
    *,
    ylabel: str,
    title: str,
    step: bool = False,
) -> Path:
    """A line plot of one or more series over time (seconds from the first frame), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, 3.2), dpi=100)
    for label, values in series.items():
        if step:
            axes.step(seconds, values, where="mid", label=label)
        else:
            axes.plot(seconds, values, marker=".", markersize=3, linewidth=1, label=label)
    return _save_figure(
        figure,
        axes,
        path,
        xlabel="time since first frame [s]",
        ylabel=ylabel,
        title=title,
        legend=len(series) > 1,
    )


def plot_histogram(path: Path, series: dict[str, Sequence[float]], *, xlabel: str, title: str) -> Path:
    """A histogram of one or more series, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 3.2), dpi=100)
    for label, values in series.items():
        finite = [v for v in values if math.isfinite(v)]
        if finite:
            axes.hist(finite, bins=min(40, max(5, len(finite) // 3)), alpha=0.7, label=label)
    return _save_figure(
        figure, axes, path, xlabel=xlabel, ylabel="frames", title=title, legend=len(series) > 1
    )


def _save_figure(figure, axes, path: Path, *, xlabel: str, ylabel: str, title: str, legend: bool) -> Path:
    """Label, grid and legend the axes the same way on every report plot, save as PNG, free it."""
    from matplotlib import pyplot

    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if legend:
        axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return path


# --- report files ---------------------------------------------------------------------------------


def write_report(report_dir: Path, report: dict[str, Any], frames: Sequence[FrameRecord]) -> dict[str, Path]:
    """report.json, report.md, frames.csv and the plots of a bag evaluation."""
    files: dict[str, Path] = {}
    plots: dict[str, str] = {}
    done = [f for f in frames if not f.error]
    if done:
        t0 = min(f.stamp_ns for f in done)
        seconds = [(f.stamp_ns - t0) / 1e9 for f in done]
        files["latency_over_time"] = plot_series(
            report_dir / "latency_over_time.png",
            seconds,
            {"estimator": [f.latency_ms for f in done]},
            ylabel="latency [ms]",
            title="Estimator latency per frame",
        )
        files["latency_histogram"] = plot_histogram(
            report_dir / "latency_histogram.png",
            {"estimator": [f.latency_ms for f in done]},
            xlabel="latency [ms]",
            title="Estimator latency",
        )
        files["persons_per_frame"] = plot_series(
            report_dir / "persons_per_frame.png",
            seconds,
            {"persons": [f.persons for f in done]},
            ylabel="persons",
            title="Persons per frame",
            step=True,
        )
        plots = {
            name: files[name].name for name in ("latency_over_time", "latency_histogram", "persons_per_frame")
        }
    samples = sorted((report_dir / "samples").glob("frame_*.jpg"))
    report["plots"] = plots
    report["samples"] = [f"samples/{p.name}" for p in samples]
    files["frames_csv"] = report_dir / "frames.csv"
    with files["frames_csv"].open("w", newline="") as handle:
        table = csv.writer(handle)
        table.writerow(["index", "stamp_ns", "log_time_ns", "persons", "latency_ms", "error", "track_ids"])
        for f in frames:
            table.writerow(
                [
                    f.index,
                    f.stamp_ns,
                    f.log_time_ns,
                    f.persons,
                    "" if math.isnan(f.latency_ms) else f"{f.latency_ms:.3f}",
                    f.error,
                    " ".join(str(i) for i in f.track_ids),
                ]
            )
    files["json"] = report_dir / "report.json"
    files["json"].write_text(json.dumps(report, indent=1) + "\n")
    files["markdown"] = report_dir / "report.md"
    files["markdown"].write_text(report_markdown(report))
    return files


def report_markdown(report: dict[str, Any]) -> str:
    """The human-readable report page."""
    frames = report["frames"]
    persons = report["persons_per_frame"]
    rows = [
        ("bag", f"`{report['bag']}`"),
        ("image topic", f"`{report['topic']}` ({report['message_type']})"),
        ("model", report.get("model") or "n/a"),
        (
            "frames in bag / read / processed / failed",
            f"{frames['in_bag']} / {frames['read']} / {frames['processed']} / {frames['failed']}",
        ),
        (
            "persons per frame",
            "n/a"
            if not persons
            else f"mean {persons['mean']:.2f}, median {persons['median']:.0f}, max {persons['max']}",
        ),
        ("estimator latency", format_distribution(report["latency_ms"])),
        ("throughput", f"{report['throughput_fps']:.1f} frames/s" if report["throughput_fps"] else "n/a"),
        ("bag frame rate", f"{report['bag_frame_rate_hz']:.2f} Hz" if report["bag_frame_rate_hz"] else "n/a"),
        ("real-time factor", f"{report['realtime_factor']:.2f}x" if report["realtime_factor"] else "n/a"),
        ("output bag", f"`{report['output_bag']}` ({', '.join(report['output_topics'])})"),
    ]
    lines = ["# Bag evaluation", "", markdown_table(["quantity", "value"], rows), ""]
    if report.get("error"):
        lines += [f"**Stopped early:** {report['error']}. Figures cover the frames read before.", ""]
    lines += accuracy_markdown(report.get("accuracy"))
    lines += tracking_markdown(report.get("tracking"))
    lines += depth_markdown(report.get("depth"))
    if frames["failures"]:
        lines += ["## Frames that could not be used", ""]
        lines += [f"- frame {f['index']}: {f['error']}" for f in frames["failures"]] + [""]
    if report.get("plots"):
        lines += ["## Plots", ""] + [f"![{name}]({file})" for name, file in report["plots"].items()] + [""]
    if report.get("samples"):
        lines += ["## Sample frames", ""] + [f"![{s}]({s})" for s in report["samples"]] + [""]
    return "\n".join(lines)


def depth_markdown(depth: dict[str, Any] | None) -> list[str]:
    """The report section on 3D keypoints from depth (lines), or [] without a depth topic."""
    if not depth:
        return []
    rows = [
        ("depth topic", f"`{depth['topic']}`"),
        ("its camera_info", f"`{depth['camera_info_topic']}`" if depth["camera_info_topic"] else "none"),
        ("frames with 3D positions", str(depth["frames_with_depth"])),
        ("frames without a depth image at their time", str(depth["frames_without_matching_depth"])),
        ("depth images that could not be used", str(depth["depth_images_rejected"])),
    ]
    lines = ["## 3D keypoints (depth)", "", markdown_table(["quantity", "value"], rows), ""]
    if depth.get("problem"):
        lines += [f"First problem: {depth['problem']}", ""]
    return lines


def tracking_rows(tracking: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(quantity, value) rows of a report's tracking figures (none when tracking was off)."""
    if not tracking or not tracking.get("enabled"):
        return []
    rows = [
        ("tracks started (distinct ids)", str(tracking["tracks_started"])),
        (
            "track length, frames",
            f"mean {tracking['mean_track_frames']:.1f}, median {tracking['median_track_frames']:.1f}",
        ),
        (
            "track length, seconds",
            f"mean {tracking['mean_track_seconds']:.2f}, median {tracking['median_track_seconds']:.2f}",
        ),
    ]
    if tracking.get("id_switches") is not None:
        rows += [
            ("ground-truth tracks", str(tracking["truth_tracks"])),
            ("id switches", str(tracking["id_switches"])),
            ("IDF1", f"{tracking['idf1']:.3f}"),
            ("MOTA", f"{tracking['mota']:.3f}"),
        ]
    return rows


def tracking_markdown(tracking: dict[str, Any] | None) -> list[str]:
    """The report section on tracking (lines), or [] when tracking was off."""
    rows = tracking_rows(tracking)
    if not rows:
        return []
    lines = ["## Tracking", "", markdown_table(["quantity", "value"], rows), ""]
    if tracking.get("truth"):
        lines += [f"Ground truth: {tracking['truth']}.", ""]
    if tracking.get("notes"):
        lines += [
            f"The tracker noted {tracking['notes']} problem(s) with its input, e.g.: "
            f"{tracking['first_notes'][0]}",
            "",
        ]
    return lines


def write_loop_report(output_dir: Path, report: dict[str, Any], frames: Sequence[Any]) -> dict[str, Path]:
    """summary.json, summary.md and the plots of a node-in-the-loop run (frames: LiveFrame)."""
    files: dict[str, Path] = {}
    processed = [f for f in frames if f.received is not None]
    if processed:
        t0 = min(f.stamp_ns for f in frames)
        seconds = [(f.stamp_ns - t0) / 1e9 for f in processed]
        latencies = {"end to end": [f.end_to_end_ms for f in processed]}
        files["latency_over_time"] = plot_series(
            output_dir / "latency_over_time.png",
            seconds,
            latencies,
            ylabel="latency [ms]",
            title="Image published -> PersonArray received",
        )
        files["latency_histogram"] = plot_histogram(
            output_dir / "latency_histogram.png", latencies, xlabel="latency [ms]", title="End-to-end latency"
        )
        files["persons_per_frame"] = plot_series(
            output_dir / "persons_per_frame.png",
            seconds,
            {"persons": [f.persons for f in processed]},
            ylabel="persons",
            title="Persons per processed frame",
            step=True,
        )
        report["plots"] = {
            name: files[name].name for name in ("latency_over_time", "latency_histogram", "persons_per_frame")
        }
    files["json"] = output_dir / "summary.json"
    files["json"].write_text(json.dumps(report, indent=1) + "\n")
    files["markdown"] = output_dir / "summary.md"
    files["markdown"].write_text(summary_markdown(report))
    return files


def summary_markdown(report: dict[str, Any], title: str = "Node-in-the-loop evaluation") -> str:
    """The human-readable summary of a node-in-the-loop run."""
    frames = report["frames"]
    persons = report["persons_per_frame"]
    diagnostics = report.get("node_diagnostics") or {}
    rows = [
        ("bag", f"`{report['bag']}`"),
        ("image topic", f"`{report['image_topic']}`"),
        ("replay rate", f"{report['rate']:g}x real time"),
        (
            "frames in / processed / dropped",
            f"{frames['sent']} / {frames['processed']} / {frames['dropped']}",
        ),
        (
            "persons per frame",
            "n/a"
            if not persons
            else f"mean {persons['mean']:.2f}, median {persons['median']:.0f}, max {persons['max']}",
        ),
        (
            "end-to-end latency (image out -> persons in)",
            format_distribution(report["end_to_end_latency_ms"]),
        ),
        ("throughput", f"{report['throughput_fps']:.1f} frames/s" if report["throughput_fps"] else "n/a"),
    ]
    for key in ("engine", "inference median (ms)", "frames dropped"):
        if key in diagnostics:
            rows.append((f"node says: {key}", diagnostics[key]))
    rows += tracking_rows(report.get("tracking"))
    depth = report.get("depth")
    if depth:
        per_frame = depth["keypoints_with_3d_positions_per_frame"]
        rows += [
            ("depth topic", f"`{depth['topic']}`"),
            ("frames with 3D positions", str(depth["frames_with_3d_positions"])),
            (
                "keypoints with 3D positions per frame",
                "n/a" if not per_frame else f"mean {per_frame['mean']:.1f}, max {per_frame['max']}",
            ),
        ]
    rows.append(("recorded bag", f"`{report['output_bag']}`"))
    lines = [f"# {title}", "", markdown_table(["quantity", "value"], rows), ""]
    lines += accuracy_markdown(report.get("accuracy"))
    if report.get("plots"):
        lines += ["## Plots", ""] + [f"![{name}]({file})" for name, file in report["plots"].items()] + [""]
    return "\n".join(lines)
