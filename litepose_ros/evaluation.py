"""Keypoint evaluation: COCO AP/AR and CrowdPose AP (easy / medium / hard) from predictions.

Uses pycocotools' COCOeval with the layout's OKS sigmas. CrowdPose mode reproduces the rules of
xtcocotools' ``keypoints_crowd`` type with ``use_area=False`` (what the CrowdPose evaluation of
the reference uses): OKS scale = 0.53 x box area, a person counts when ``num_keypoints > 0``,
AP / AR at up to 20 detections, and AP per crowd-index split (easy < 0.2 <= medium < 0.8 <=
hard). xtcocotools itself is not imported: its pinned wheel is built against numpy 1 and fails
to import under the project's numpy 2.

Predictions are COCO result dicts: image_id, category_id, keypoints [x, y, score] x K, score.

The object keypoint similarity itself (``oks``, and ``oks_nms``, the decoder's removal of
duplicate people) lives here too: one OKS for evaluation and decoding.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from litepose_ros.layouts import KeypointLayout, get_layout
from litepose_ros.people import coco_results

COCO_METRICS = ("AP", "AP50", "AP75", "AP_medium", "AP_large", "AR", "AR50", "AR75", "AR_medium", "AR_large")
CROWDPOSE_METRICS = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard")
# CrowdPose difficulty splits by the image's crowdIndex.
CROWD_INDEX_EASY_BELOW = 0.2
CROWD_INDEX_HARD_FROM = 0.8
# OKS scale of CrowdPose ground truth, which has no segment area: 0.53 x box area.
CROWDPOSE_AREA_FACTOR = 0.53


# --- object keypoint similarity (OKS) ----------------------------------------------------------


def keypoint_areas(keypoints: np.ndarray) -> np.ndarray:
    """Area of the box around each person's keypoints with a positive score, (N,)."""
    placed = keypoints[..., 2] > 0
    big = np.finfo(np.float64).max
    xy = keypoints[..., :2].astype(np.float64)
    low = np.where(placed[..., None], xy, big).min(axis=1)
    high = np.where(placed[..., None], xy, -big).max(axis=1)
    size = np.where(placed.any(axis=1)[:, None], high - low, 0.0)
    return size[:, 0] * size[:, 1]


def oks(
    reference: np.ndarray,
    others: np.ndarray,
    sigmas: np.ndarray,
    reference_area: float,
    other_areas: np.ndarray,
) -> np.ndarray:
    """Object keypoint similarity of one person (K, 3) to others (M, K, 3), over the joints with a
    positive score in both; people sharing no such joint have similarity 0."""
    variances = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2
    squared = ((others[..., :2] - reference[None, :, :2]).astype(np.float64) ** 2).sum(axis=-1)
    scale = (reference_area + np.asarray(other_areas, dtype=np.float64)) / 2.0 + np.spacing(1)
    similarity = np.exp(-squared / variances[None, :] / scale[:, None] / 2.0)
    shared = (reference[None, :, 2] > 0) & (others[..., 2] > 0)
    count = shared.sum(axis=1)
    return np.where(count > 0, (similarity * shared).sum(axis=1) / np.maximum(count, 1), 0.0)


def oks_nms(keypoints: np.ndarray, scores: np.ndarray, sigmas: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS: keep the best person, drop the others with OKS > threshold to it, repeat.
    Returns indices of the kept people in descending score order."""
    areas = keypoint_areas(keypoints)
    order = np.argsort(-scores, kind="stable")
    kept = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(best)
        similarity = oks(keypoints[best], keypoints[rest], sigmas, areas[best], areas[rest])
        order = rest[similarity <= threshold]
    return np.asarray(kept, dtype=np.int64)


# --- datasets -----------------------------------------------------------------------------------


def load_annotations(annotations: str | Path | dict) -> dict:
    """The annotation data set as a dict (a path to a COCO-format JSON file, or the dict)."""
    if isinstance(annotations, dict):
        return annotations
    path = Path(annotations)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist")
    with path.open() as handle:
        data = json.load(handle)
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise ValueError(f"{path} is not a COCO keypoint file: no {key!r} entry")
    return data


def layout_of(dataset: dict) -> KeypointLayout:
    """The keypoint layout matching the person category's keypoint count."""
    for category in dataset.get("categories", []):
        if category.get("keypoints"):
            return get_layout(len(category["keypoints"]))
    raise ValueError("the annotation file's categories list no keypoint names; pass the layout")


def _coco_from_dict(dataset: dict):
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _prepare_ground_truth(dataset: dict, crowdpose: bool) -> dict:
    gt = copy.deepcopy(dataset)
    for ann in gt["annotations"]:
        if "num_keypoints" not in ann:
            ann["num_keypoints"] = int(np.count_nonzero(np.asarray(ann["keypoints"])[2::3] > 0))
        ann.setdefault("iscrowd", 0)
        if crowdpose or "area" not in ann:
            _, _, w, h = ann["bbox"]
            ann["area"] = float(w) * float(h) * CROWDPOSE_AREA_FACTOR
    return gt


def _check_predictions(predictions: Sequence[dict], num_keypoints: int, image_ids: set[int]) -> list[dict]:
    kept = []
    for i, pred in enumerate(predictions):
        for key in ("image_id", "keypoints", "score"):
            if key not in pred:
                raise ValueError(
                    f"prediction {i} has no {key!r}; predictions are COCO result dicts "
                    "(image_id, category_id, keypoints, score)"
                )
        keypoints = np.asarray(pred["keypoints"], dtype=np.float64).ravel()
        if keypoints.size != 3 * num_keypoints:
            raise ValueError(
                f"prediction {i} has {keypoints.size} keypoint values, expected "
                f"{3 * num_keypoints} (x, y, score for {num_keypoints} keypoints)"
            )
        if int(pred["image_id"]) not in image_ids:
            raise ValueError(
                f"prediction {i} is for image id {pred['image_id']}, which is not in the annotation file"
            )
        # Like xtcocotools, a detection whose keypoint scores are all zero is no detection.
        if not np.any(keypoints[2::3] > 0):
            continue
        kept.append(
            {
                "image_id": int(pred["image_id"]),
                "category_id": int(pred.get("category_id", 1)),
                "keypoints": keypoints.tolist(),
                "score": float(pred["score"]),
            }
        )
    return kept


def _run_cocoeval(gt_coco, predictions: list[dict], sigmas: np.ndarray, image_ids: Sequence[int]):
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        dt_coco = gt_coco.loadRes(copy.deepcopy(predictions)) if predictions else None
        if dt_coco is None:
            return None
        evaluator = COCOeval(gt_coco, dt_coco, "keypoints")
        evaluator.params.kpt_oks_sigmas = sigmas
        evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else -1.0


def evaluate_keypoints(
    annotations: str | Path | dict,
    predictions: Sequence[dict],
    *,
    layout: KeypointLayout | None = None,
    crowdpose: bool = False,
    image_ids: Iterable[int] | None = None,
) -> dict[str, float | None]:
    """AP / AR of keypoint predictions against COCO-format ground truth.

    annotations: the ground-truth file (or its dict); predictions: COCO result dicts;
    layout: taken from the file's categories when None; crowdpose: CrowdPose rules and metrics;
    image_ids: evaluate on these images only (default: every image of the file).
    Returns COCO_METRICS or CROWDPOSE_METRICS (fractions in [0, 1]; -1 when a value is undefined,
    e.g. no ground truth in an area range; None for a CrowdPose split without images).
    """
    dataset = load_annotations(annotations)
    layout = layout or layout_of(dataset)
    all_ids = [int(img["id"]) for img in dataset["images"]]
    ids = all_ids if image_ids is None else [int(i) for i in image_ids]
    unknown = set(ids) - set(all_ids)
    if unknown:
        raise ValueError(f"image ids {sorted(unknown)[:5]} are not in the annotation file")
    id_set = set(ids)
    predictions = [
        p
        for p in _check_predictions(predictions, layout.num_keypoints, set(all_ids))
        if p["image_id"] in id_set
    ]
    gt_coco = _coco_from_dict(_prepare_ground_truth(dataset, crowdpose))
    evaluator = _run_cocoeval(gt_coco, predictions, layout.sigmas_array(), ids)
    names = CROWDPOSE_METRICS if crowdpose else COCO_METRICS
    if evaluator is None:
        metrics: dict[str, float | None] = dict.fromkeys(names, 0.0)
    elif crowdpose:
        stats = evaluator.stats  # keypoint summary: AP, AP50, AP75, APm, APl, AR, AR50, AR75, ...
        metrics = {
            "AP": stats[0],
            "AP50": stats[1],
            "AP75": stats[2],
            "AR": stats[5],
            "AR50": stats[6],
            "AR75": stats[7],
        }
    else:
        metrics = dict(zip(COCO_METRICS, evaluator.stats[:10], strict=True))
    if crowdpose:
        metrics.update(_crowdpose_splits(dataset, gt_coco, predictions, layout, ids))
    return {name: (None if metrics[name] is None else float(metrics[name])) for name in names}


def _crowdpose_splits(
    dataset: dict, gt_coco, predictions: list[dict], layout: KeypointLayout, ids: Sequence[int]
) -> dict[str, float | None]:
    crowd_index = {int(img["id"]): img.get("crowdIndex") for img in dataset["images"]}
    splits: dict[str, list[int]] = {"AP_easy": [], "AP_medium": [], "AP_hard": []}
    for image_id in ids:
        value = crowd_index[image_id]
        if value is None:
            continue
        if value < CROWD_INDEX_EASY_BELOW:
            splits["AP_easy"].append(image_id)
        elif value < CROWD_INDEX_HARD_FROM:
            splits["AP_medium"].append(image_id)
        else:
            splits["AP_hard"].append(image_id)
    result: dict[str, float | None] = {}
    for name, split_ids in splits.items():
        if not split_ids:
            result[name] = None
            continue
        evaluator = _run_cocoeval(gt_coco, predictions, layout.sigmas_array(), split_ids)
        # Area range "all" at the single maxDets (20).
        result[name] = 0.0 if evaluator is None else _mean_valid(evaluator.eval["precision"][:, :, :, 0, :])
    return result


def duplicated_annotation_ids(annotations: list[dict]) -> set[int]:
    """Ids of annotations whose keypoints (to 0.01 px) also occur in another image.

    Two photographs never yield bit-identical keypoints for a real person, so such copies are
    labelling artefacts (pseudo_people's vtest frames hold ~1,400 such copies).
    """
    images_by_key: dict[tuple, set[int]] = {}
    key_of: dict[int, tuple] = {}
    for ann in annotations:
        keypoints = np.asarray(ann.get("keypoints") or [], dtype=np.float64)
        if keypoints.size == 0 or not np.any(keypoints[2::3] > 0):
            continue
        key = tuple(np.round(keypoints, 2).tolist())
        key_of[int(ann["id"])] = key
        images_by_key.setdefault(key, set()).add(int(ann["image_id"]))
    return {ann_id for ann_id, key in key_of.items() if len(images_by_key[key]) > 1}


def duplicated_people_as_crowd(dataset: dict) -> dict:
    """A copy of a COCO-format dict where the duplicated_annotation_ids are crowd (ignore) regions:
    detections on them count neither as hits nor as false positives."""
    duplicated = duplicated_annotation_ids(dataset["annotations"])
    return {
        **dataset,
        "annotations": [
            dict(a, iscrowd=1) if int(a["id"]) in duplicated else a for a in dataset["annotations"]
        ],
    }


def predictions_from_result(image_id: int, result: Any, category_id: int = 1) -> list[dict]:
    """COCO result dicts from one PoseResult (keypoints (N, K, 3) x, y, score; scores (N,))."""
    return coco_results(image_id, result, category_id=category_id)


def predict_dataset(
    estimator: Any,
    annotations: str | Path | dict,
    image_dir: str | Path,
    *,
    max_images: int | None = None,
    progress: bool = True,
) -> tuple[list[dict], list[int]]:
    """Run ``estimator.predict(image_bgr)`` on the images of an annotation file.

    Returns (COCO result dicts, ids of the images used). max_images takes the first images in
    id order, for quick checks.
    """
    import cv2
    from tqdm import tqdm

    dataset = load_annotations(annotations)
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"image folder {image_dir} does not exist")
    images = sorted(dataset["images"], key=lambda img: int(img["id"]))
    if max_images is not None:
        images = images[:max_images]
    predictions: list[dict] = []
    for info in tqdm(images, desc="evaluating", unit="img", disable=not progress, leave=False):
        path = image_dir / info["file_name"]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"cannot read image {path} (image id {info['id']})")
        predictions.extend(predictions_from_result(int(info["id"]), estimator.predict(image)))
    return predictions, [int(img["id"]) for img in images]


def evaluate_estimator(
    estimator: Any,
    annotations: str | Path | dict,
    image_dir: str | Path,
    *,
    crowdpose: bool = False,
    max_images: int | None = None,
    output: str | Path | None = None,
    progress: bool = True,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Predict on every image of an annotation file, evaluate, optionally write results JSON.

    The JSON holds the metrics, the number of images, ``details`` (e.g. the model and settings)
    and the predictions themselves.
    """
    dataset = load_annotations(annotations)
    predictions, image_ids = predict_dataset(
        estimator, dataset, image_dir, max_images=max_images, progress=progress
    )
    metrics = evaluate_keypoints(dataset, predictions, crowdpose=crowdpose, image_ids=image_ids)
    report = {
        "metrics": metrics,
        "mode": "crowdpose" if crowdpose else "coco",
        "images": len(image_ids),
        "detections": len(predictions),
        **(details or {}),
    }
    if output is not None:
        write_results(output, report, predictions)
    return report


def write_results(
    path: str | Path, report: dict[str, Any], predictions: Sequence[dict] | None = None
) -> None:
    """Write the evaluation report (and the predictions, when given) as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = dict(report)
    if predictions is not None:
        content["predictions"] = list(predictions)
    path.write_text(json.dumps(content, indent=1) + "\n")
