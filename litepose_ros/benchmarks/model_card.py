"""Accuracy of a model on annotated image sets, written into its model card.

``litepose bench card`` evaluates the model with and without the flip test on each set, reads the
training run's facts from the checkpoint and the training log, and replaces the block between
CARD_BEGIN and CARD_END of the card (the hand-written text around it stays). It also saves a
picture of ground truth next to the predictions on the most crowded images of each set.

Regenerate the bundled card from the repository root (the pseudo_people set sits beside it):
  litepose bench card --training-log <run>/log.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litepose_ros.benchmarks.report import source_checkout

# The source checkout (None for an installed package: then every file is named on the command line).
REPOSITORY = source_checkout()
CARD_BEGIN = "<!-- litepose bench card: begin (generated; edit the text around it, not inside) -->"
CARD_END = "<!-- litepose bench card: end -->"
# Metrics shown in the card, in this order.
CARD_METRICS = ("AP", "AP50", "AP75", "AP_medium", "AP_large", "AR", "AR50")
EXAMPLE_HEIGHT = 300


@dataclass(frozen=True)
class AnnotatedSet:
    label: str
    annotations: Path
    images: Path


def default_sets() -> list[AnnotatedSet]:
    """The sets the bundled model's card reports: real COCO ground truth (real_val), the vtest val
    split of pseudo_people, the general set's pseudo-labelled val split (when `make general-data`
    has built it) and the real fixtures (beside or in a source checkout; none for an installed
    package: name them with --set)."""
    if REPOSITORY is None:
        return []
    shared_data = REPOSITORY.parent / "shared" / "data"
    pseudo_people = shared_data / "pseudo_people"
    general = REPOSITORY.parent / "litepose_data" / "general"
    fixtures = REPOSITORY / "test" / "fixtures" / "real_fixtures" / "coco"
    val_annotations = pseudo_people / "annotations" / "person_keypoints_val.json"
    real_val = shared_data / "real_val"
    sets = [
        AnnotatedSet(
            "real_val (real COCO val2017 ground truth)",
            real_val / "person_keypoints.json",
            real_val / "images",
        ),
        AnnotatedSet("pseudo_people val split (vtest)", val_annotations, pseudo_people / "images"),
    ]
    if (general / "val.json").is_file():
        sets.append(AnnotatedSet("general set val split (pseudo-labels)", general / "val.json", general))
    return [*sets, AnnotatedSet("real annotated COCO fixtures", fixtures / "test_coco.json", fixtures)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from litepose_ros.weights import DEFAULT_CHECKPOINT_NAME, DEFAULT_MODEL_NAME, WEIGHTS_DIR

    parser.add_argument(
        "--model",
        type=Path,
        default=WEIGHTS_DIR / DEFAULT_MODEL_NAME,
        help="ONNX model to evaluate (default: the bundled one)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=WEIGHTS_DIR / DEFAULT_CHECKPOINT_NAME,
        help="the checkpoint the model was exported from: its epoch and in-training "
        "validation go into the card (default: the bundled one)",
    )
    parser.add_argument(
        "--no-checkpoint", action="store_true", help="the model has no checkpoint to describe"
    )
    parser.add_argument(
        "--training-log", type=Path, help="the run's log.csv: training time up to the checkpoint's epoch"
    )
    parser.add_argument(
        "--set",
        nargs=3,
        action="append",
        dest="sets",
        metavar=("LABEL", "ANNOTATIONS", "IMAGES"),
        help="an annotated set to evaluate on (repeatable; default: pseudo_people "
        "val beside the repository and the real COCO fixtures)",
    )
    parser.add_argument(
        "--ignore-duplicated-people",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="people copied verbatim across images are ignore regions (default: on)",
    )
    parser.add_argument(
        "--card",
        type=Path,
        default=WEIGHTS_DIR / "README.md",
        help="model card to update between its generated-block markers",
    )
    parser.add_argument(
        "--examples",
        type=Path,
        default=(REPOSITORY / "docs" / "images" if REPOSITORY else Path.cwd()) / "default_model_examples.jpg",
        help="picture of ground truth next to predictions (.jpg or .png)",
    )
    parser.add_argument(
        "--sweep-sizes",
        type=int,
        nargs="+",
        metavar="SIZE",
        help="also evaluate (no flip test) at these input short sides, for choosing the size to export with",
    )
    parser.add_argument("--threads", type=int, help="inference threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from litepose_ros.errors import UserError

    sets = (
        [AnnotatedSet(label, Path(ann), Path(img)) for label, ann, img in args.sets]
        if args.sets
        else default_sets()
    )
    if not sets:
        raise UserError(
            "name the annotated sets with --set LABEL ANNOTATIONS IMAGES (the default sets "
            "live in a source checkout)"
        )
    checkpoint_path = None if args.no_checkpoint else args.checkpoint
    files = [args.model, args.card, *(s.annotations for s in sets)]
    files += [p for p in (checkpoint_path, args.training_log) if p is not None]
    missing = [str(p) for p in files if not p.is_file()]
    missing += [str(s.images) for s in sets if not s.images.is_dir()]
    if missing:
        raise UserError(
            f"not found: {', '.join(missing)} (name them with --model / --set / --card / "
            f"--checkpoint or --no-checkpoint / --training-log)"
        )
    card_text = args.card.read_text()
    if CARD_BEGIN not in card_text or CARD_END not in card_text:
        raise UserError(
            f"{args.card} has no generated block: put the lines\n{CARD_BEGIN}\n{CARD_END}\n"
            f"where the measurements should go"
        )
    try:
        checkpoint = None if checkpoint_path is None else read_checkpoint_facts(checkpoint_path)
        training = (
            summarise_training_log(args.training_log, checkpoint["epoch"] if checkpoint else None)
            if args.training_log
            else None
        )
        loaded = [(annotated, load_set(annotated, args.ignore_duplicated_people)) for annotated in sets]
        results = [
            evaluate_set(
                args.model,
                annotated,
                dataset,
                flip_test=flip_test,
                threads=args.threads,
                progress=not args.no_progress,
            )
            for annotated, dataset in loaded
            for flip_test in (True, False)
        ]
        sweep = [
            evaluate_set(
                args.model,
                annotated,
                dataset,
                flip_test=False,
                input_size=size,
                threads=args.threads,
                progress=not args.no_progress,
            )
            for annotated, dataset in loaded
            for size in args.sweep_sizes or ()
        ]
        write_examples(args.examples, results)
    except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError) as error:
        raise UserError(f"{type(error).__name__}: {error}") from error
    argv = sys.argv[1:] if sys.argv[1:2] == ["bench"] else ["bench", "card"]
    block = card_block(
        args,
        checkpoint=checkpoint,
        training=training,
        results=results,
        sweep=sweep,
        command="litepose " + shlex.join(argv),
    )
    start, end = card_text.index(CARD_BEGIN), card_text.index(CARD_END) + len(CARD_END)
    args.card.write_text(card_text[:start] + block + card_text[end:])
    print(f"{args.card} updated; examples in {args.examples}")
    return 0


def read_checkpoint_facts(path: Path) -> dict[str, Any]:
    """Epoch (counted from 1), schedule length and in-training validation of a trainer checkpoint."""
    from litepose_ros.model.checkpoint import load_checkpoint

    _, info = load_checkpoint(path)
    content = info.extra
    if "epoch" not in content:
        raise ValueError(f"{path} has no epoch: it is not a checkpoint written by `litepose train`")
    config = content.get("config") or {}
    return {
        "path": path,
        "epoch": int(content["epoch"]) + 1,
        "epochs": (config.get("optim") or {}).get("epochs"),
        "val": dict(content.get("val") or {}),
        "size": path.stat().st_size,
    }


def summarise_training_log(path: Path, up_to_epoch: int | None) -> dict[str, float]:
    """Epoch count and time of a trainer's log.csv, up to and including ``up_to_epoch``."""
    with path.open(newline="") as handle:
        rows = [
            row for row in csv.DictReader(handle) if up_to_epoch is None or int(row["epoch"]) <= up_to_epoch
        ]
    if not rows:
        raise ValueError(f"{path} has no epochs{'' if up_to_epoch is None else f' up to {up_to_epoch}'}")
    seconds = [float(row["seconds"]) for row in rows]
    return {"epochs": len(rows), "hours": sum(seconds) / 3600, "median_seconds": statistics.median(seconds)}


def load_set(annotated: AnnotatedSet, ignore_duplicated: bool) -> dict:
    """The set's ground truth, with duplicated people as ignore regions when asked (read once per set)."""
    from litepose_ros.evaluation import duplicated_people_as_crowd, load_annotations

    dataset = load_annotations(annotated.annotations)
    return duplicated_people_as_crowd(dataset) if ignore_duplicated else dataset


def _is_counted_person(annotation: dict) -> bool:
    """A person the metrics count: not a crowd / ignore region, with keypoints."""
    return not annotation.get("iscrowd") and annotation.get("num_keypoints", 1) > 0


def evaluate_set(
    model: Path,
    annotated: AnnotatedSet,
    dataset: dict,
    *,
    flip_test: bool,
    threads: int | None,
    progress: bool,
    input_size: int | None = None,
) -> dict[str, Any]:
    """Metrics and predictions of the model on one set (its ground truth from load_set) with one
    decoding and input size (default: the model's)."""
    from litepose_ros.estimator import Estimator
    from litepose_ros.evaluation import evaluate_keypoints, predict_dataset

    settings: dict[str, Any] = {"flip_test": flip_test}
    if threads:
        settings["threads"] = threads
    if input_size:
        settings["input_size"] = input_size
    estimator = Estimator.from_model(model, **settings)
    predictions, image_ids = predict_dataset(estimator, dataset, annotated.images, progress=progress)
    return {
        "set": annotated,
        "dataset": dataset,
        "flip_test": flip_test,
        "predictions": predictions,
        "metrics": evaluate_keypoints(dataset, predictions, image_ids=image_ids),
        "images": len(image_ids),
        "people": sum(map(_is_counted_person, dataset["annotations"])),
        "ignored": sum(1 for a in dataset["annotations"] if a.get("iscrowd")),
        "input_size": estimator.input_size,
    }


def _metric(value: float | None) -> str:
    return "n/a" if value is None or value < 0 else f"{value:.3f}"


def card_block(
    args: argparse.Namespace,
    *,
    checkpoint: dict | None,
    training: dict | None,
    results: list[dict],
    sweep: list[dict],
    command: str,
) -> str:
    from litepose_ros.summaries import markdown_table

    model_mb = args.model.stat().st_size / 1e6
    facts = [("model file", f"`{args.model.name}`, {model_mb:.1f} MB")]
    if checkpoint is not None:
        of_total = f" of {checkpoint['epochs']}" if checkpoint["epochs"] else ""
        in_training = checkpoint["val"].get("AP")
        facts += [
            (
                "checkpoint",
                f"`{checkpoint['path'].name}`, {checkpoint['size'] / 1e6:.1f} MB "
                f"(together {model_mb + checkpoint['size'] / 1e6:.1f} MB)",
            ),
            (
                "snapshot",
                f"epoch {checkpoint['epoch']}{of_total}"
                + (
                    ""
                    if in_training is None
                    else f", in-training validation AP {in_training:.3f} (no flip test)"
                ),
            ),
        ]
    if training is not None:
        facts.append(
            (
                "training time",
                f"{training['epochs']} epochs, {training['hours']:.1f} h of epoch time "
                f"(median {training['median_seconds']:.0f} s per epoch, from the run's log.csv)",
            )
        )
    rows = []
    for result in results:
        ignored = f", {result['ignored']} ignore regions" if result["ignored"] else ""
        rows.append(
            [
                f"{result['set'].label} ({result['images']} images, {result['people']} people{ignored})",
                "flip test" if result["flip_test"] else "no flip test (the node's default)",
                *[_metric(result["metrics"][name]) for name in CARD_METRICS],
            ]
        )
    examples = Path(args.examples).resolve()
    try:
        examples_link = Path("../../" + str(examples.relative_to(REPOSITORY))) if REPOSITORY else examples
    except ValueError:
        examples_link = examples
    return "\n".join(
        [
            CARD_BEGIN,
            f"Measured by `{command}`, input short side {results[0]['input_size']}; the flip test "
            "averages each image's heatmaps with those of its mirror image.",
            "",
            markdown_table(["", ""], facts),
            "",
            markdown_table(["data", "decoding", *CARD_METRICS], rows),
            "",
            "Ground truth (left) and the predictions without flip test (right) on the most crowded "
            "images of each set:",
            "",
            f"![ground truth and predictions]({examples_link})",
            *_sweep_lines(sweep, results[0]["input_size"]),
            CARD_END,
        ]
    )


def _sweep_lines(sweep: list[dict], model_size: int) -> list[str]:
    from litepose_ros.summaries import markdown_table

    if not sweep:
        return []
    rows = [
        [
            result["set"].label,
            f"**{result['input_size']}** (the model's)"
            if result["input_size"] == model_size
            else str(result["input_size"]),
            *[_metric(result["metrics"][name]) for name in ("AP", "AP50", "AR")],
        ]
        for result in sweep
    ]
    return [
        "",
        "Input size sweep, no flip test (the same image at other network input short sides; the "
        "node's `input_size` parameter):",
        "",
        markdown_table(["data", "input short side", "AP", "AP50", "AR"], rows),
    ]


def _people_arrays(records: list[dict], num_keypoints: int) -> tuple[np.ndarray, np.ndarray]:
    keypoints = np.array([r["keypoints"] for r in records], dtype=np.float64).reshape(-1, num_keypoints, 3)
    scores = np.array([r.get("score", 1.0) for r in records], dtype=np.float64)
    return keypoints, scores


def write_examples(path: Path, results: list[dict], per_set: int = 2) -> Path | None:
    """Rows of ground truth | predictions (no flip test) on each set's most crowded images."""
    import cv2

    from litepose_ros.drawing import draw_people
    from litepose_ros.evaluation import layout_of

    rows = []
    for result in (r for r in results if not r["flip_test"]):
        dataset = result["dataset"]
        layout = layout_of(dataset)
        people_by_image: dict[int, list[dict]] = {}
        for ann in dataset["annotations"]:
            if _is_counted_person(ann):
                # Ground truth visibility flags (0, 1, 2) become scores 0 / 1 for drawing.
                points = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3).copy()
                points[:, 2] = points[:, 2] > 0
                people_by_image.setdefault(int(ann["image_id"]), []).append({"keypoints": points})
        crowded = sorted(
            dataset["images"], key=lambda img: (-len(people_by_image.get(int(img["id"]), [])), int(img["id"]))
        )[:per_set]
        for info in crowded:
            image = cv2.imread(str(result["set"].images / info["file_name"]), cv2.IMREAD_COLOR)
            truth, _ = _people_arrays(people_by_image.get(int(info["id"]), []), layout.num_keypoints)
            predicted, scores = _people_arrays(
                [p for p in result["predictions"] if p["image_id"] == info["id"]], layout.num_keypoints
            )
            left = draw_people(image.copy(), truth, None, layout, keypoint_threshold=0.5)
            right = draw_people(image.copy(), predicted, scores, layout)
            scale = EXAMPLE_HEIGHT / image.shape[0]
            size = (round(image.shape[1] * scale), EXAMPLE_HEIGHT)
            pair = [cv2.resize(side, size, interpolation=cv2.INTER_AREA) for side in (left, right)]
            rows.append(np.hstack([pair[0], np.full((EXAMPLE_HEIGHT, 6, 3), 255, np.uint8), pair[1]]))
    if not rows:
        return None
    width = max(row.shape[1] for row in rows)
    padded = [np.pad(row, ((0, 6), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.vstack(padded), [cv2.IMWRITE_JPEG_QUALITY, 85]):
        raise OSError(f"cannot write {path}")
    return path
