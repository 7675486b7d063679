"""COCO and CrowdPose keypoint evaluation on the real fixtures and on hand-made cases."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from litepose_ros.evaluation import (
    COCO_METRICS,
    CROWDPOSE_METRICS,
    evaluate_estimator,
    evaluate_keypoints,
    predictions_from_result,
)
from litepose_ros.layouts import COCO_17, CROWDPOSE_14

FIXTURES = Path(__file__).parent / "fixtures" / "real_fixtures"
COCO_FILE = FIXTURES / "coco" / "test_coco.json"
CROWDPOSE_FILE = FIXTURES / "crowdpose" / "test_crowdpose.json"


def _ground_truth_as_predictions(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    predictions = []
    for ann in data["annotations"]:
        if ann.get("iscrowd") or ann["num_keypoints"] == 0:
            continue
        keypoints = np.array(ann["keypoints"], dtype=float).reshape(-1, 3)
        keypoints[:, 2] = 1.0  # a confidence for every joint
        predictions.append(
            {
                "image_id": ann["image_id"],
                "category_id": 1,
                "keypoints": keypoints.ravel().tolist(),
                "score": 1.0,
            }
        )
    return predictions


def _shifted(predictions: list[dict], offsets: np.ndarray) -> list[dict]:
    moved = copy.deepcopy(predictions)
    for pred, offset in zip(moved, offsets, strict=True):
        keypoints = np.array(pred["keypoints"]).reshape(-1, 3)
        keypoints[:, :2] += offset
        pred["keypoints"] = keypoints.ravel().tolist()
    return moved


@pytest.mark.parametrize(("path", "crowdpose"), [(COCO_FILE, False), (CROWDPOSE_FILE, True)])
def test_ground_truth_as_predictions_scores_one(path, crowdpose):
    metrics = evaluate_keypoints(path, _ground_truth_as_predictions(path), crowdpose=crowdpose)
    assert set(metrics) == set(CROWDPOSE_METRICS if crowdpose else COCO_METRICS)
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["AR"] == pytest.approx(1.0)
    assert metrics["AP50"] == pytest.approx(1.0)


@pytest.mark.parametrize(("path", "crowdpose"), [(COCO_FILE, False), (CROWDPOSE_FILE, True)])
def test_perturbed_predictions_score_lower(path, crowdpose):
    exact = _ground_truth_as_predictions(path)
    rng = np.random.default_rng(0)
    noisy = _shifted(exact, rng.normal(0.0, 6.0, size=(len(exact), 1, 2)))
    metrics = evaluate_keypoints(path, noisy, crowdpose=crowdpose)
    assert 0.0 < metrics["AP"] < 1.0
    much_noisier = _shifted(exact, rng.normal(0.0, 20.0, size=(len(exact), 1, 2)))
    assert evaluate_keypoints(path, much_noisier, crowdpose=crowdpose)["AP"] < metrics["AP"]


def _one_person_file(layout, bbox, area=None, crowd_index=None) -> dict:
    k = layout.num_keypoints
    rng = np.random.default_rng(1)
    keypoints = np.column_stack(
        [
            rng.uniform(bbox[0], bbox[0] + bbox[2], k),
            rng.uniform(bbox[1], bbox[1] + bbox[3], k),
            np.full(k, 2.0),
        ]
    )
    annotation = {
        "id": 1,
        "image_id": 1,
        "category_id": 1,
        "iscrowd": 0,
        "num_keypoints": k,
        "keypoints": keypoints.ravel().tolist(),
        "bbox": list(bbox),
    }
    if area is not None:
        annotation["area"] = area
    image = {"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}
    if crowd_index is not None:
        image["crowdIndex"] = crowd_index
    return {
        "images": [image],
        "annotations": [annotation],
        "categories": [{"id": 1, "name": "person", "keypoints": list(layout.keypoint_names)}],
    }


def _shift_for_oks(target: float, sigmas: np.ndarray, scale: float) -> float:
    """The horizontal shift of every keypoint that gives OKS = target (COCO's definition:
    mean over keypoints of exp(-d^2 / (2 * scale * (2 sigma)^2)))."""
    low, high = 0.0, 1000.0
    for _ in range(100):
        d = (low + high) / 2
        oks = np.mean(np.exp(-d * d / (2 * scale * (2 * sigmas) ** 2)))
        low, high = (d, high) if oks > target else (low, d)
    return (low + high) / 2


@pytest.mark.parametrize(("layout", "crowdpose"), [(COCO_17, False), (CROWDPOSE_14, True)])
def test_one_person_at_oks_0_725_gives_ap_one_half(layout, crowdpose):
    # One person, one detection with OKS 0.725: a match at thresholds 0.50 ... 0.70 (5 of 10).
    bbox = (100.0, 50.0, 120.0, 300.0)
    data = _one_person_file(layout, bbox, area=20000.0)
    # COCO uses the annotated area; CrowdPose rules use 0.53 x box area instead.
    scale = 0.53 * bbox[2] * bbox[3] if crowdpose else 20000.0
    d = _shift_for_oks(0.725, layout.sigmas_array(), scale)
    exact = np.array(data["annotations"][0]["keypoints"]).reshape(-1, 3)
    prediction = {
        "image_id": 1,
        "category_id": 1,
        "score": 0.9,
        "keypoints": (exact + [d, 0.0, 0.0]).ravel().tolist(),
    }
    metrics = evaluate_keypoints(data, [prediction], crowdpose=crowdpose)
    assert metrics["AP"] == pytest.approx(0.5, abs=1e-6)
    assert metrics["AR"] == pytest.approx(0.5)
    assert metrics["AP50"] == pytest.approx(1.0)
    assert metrics["AP75"] == pytest.approx(0.0)


def test_crowdpose_difficulty_splits_follow_the_crowd_index():
    data = _one_person_file(CROWDPOSE_14, (100.0, 50.0, 120.0, 300.0), crowd_index=0.1)
    second = _one_person_file(CROWDPOSE_14, (300.0, 60.0, 100.0, 280.0), crowd_index=0.9)
    second["images"][0]["id"] = second["annotations"][0]["image_id"] = 2
    second["annotations"][0]["id"] = 2
    data["images"] += second["images"]
    data["annotations"] += second["annotations"]
    # A perfect detection for the easy image only.
    keypoints = np.array(data["annotations"][0]["keypoints"]).reshape(-1, 3)
    prediction = {"image_id": 1, "category_id": 1, "score": 1.0, "keypoints": keypoints.ravel().tolist()}
    metrics = evaluate_keypoints(data, [prediction], crowdpose=True)
    assert metrics["AP_easy"] == pytest.approx(1.0)
    assert metrics["AP_hard"] == pytest.approx(0.0)
    assert metrics["AP_medium"] is None  # no image in that split
    assert metrics["AR"] == pytest.approx(0.5)


def test_no_predictions_score_zero_and_bad_predictions_are_named():
    assert evaluate_keypoints(COCO_FILE, [])["AP"] == 0.0
    with pytest.raises(ValueError, match="51"):
        evaluate_keypoints(COCO_FILE, [{"image_id": 785, "keypoints": [0.0] * 42, "score": 1.0}])
    with pytest.raises(ValueError, match="not in the annotation file"):
        evaluate_keypoints(COCO_FILE, [{"image_id": 1, "keypoints": [1.0] * 51, "score": 1.0}])
    with pytest.raises(ValueError, match="no 'score'"):
        evaluate_keypoints(COCO_FILE, [{"image_id": 785, "keypoints": [1.0] * 51}])


class _GroundTruthEstimator:
    """Answers with the annotated people of the image it recognises by its size."""

    def __init__(self, path: Path):
        data = json.loads(path.read_text())
        self.people = {}
        for image in data["images"]:
            anns = [a for a in data["annotations"] if a["image_id"] == image["id"] and a["num_keypoints"]]
            keypoints = np.array([a["keypoints"] for a in anns], dtype=float).reshape(len(anns), -1, 3)
            keypoints[..., 2] = 0.8
            self.people[(image["height"], image["width"])] = keypoints
        self.calls = 0

    def predict(self, image_bgr):
        self.calls += 1
        keypoints = self.people[image_bgr.shape[:2]]
        return SimpleNamespace(keypoints=keypoints, scores=np.full(len(keypoints), 0.9))


def test_evaluate_estimator_runs_over_the_images_and_writes_json(tmp_path):
    sizes = {cv2.imread(str(p)).shape[:2] for p in (FIXTURES / "coco").glob("*.jpg")}
    assert len(sizes) == 4  # the fake estimator tells the images apart by size
    estimator = _GroundTruthEstimator(COCO_FILE)
    output = tmp_path / "results.json"
    report = evaluate_estimator(estimator, COCO_FILE, FIXTURES / "coco", output=output, progress=False)
    assert estimator.calls == 4
    assert report["metrics"]["AP"] == pytest.approx(1.0)
    written = json.loads(output.read_text())
    assert written["metrics"]["AP"] == pytest.approx(1.0)
    assert written["images"] == 4
    assert len(written["predictions"]) == report["detections"] == 12


def test_predictions_from_result_flattens_people():
    result = SimpleNamespace(
        keypoints=np.arange(2 * 17 * 3, dtype=float).reshape(2, 17, 3), scores=np.array([0.5, 0.25])
    )
    predictions = predictions_from_result(9, result)
    assert [p["score"] for p in predictions] == [0.5, 0.25]
    assert predictions[1]["keypoints"][:3] == [51.0, 52.0, 53.0]
    assert all(p["image_id"] == 9 and p["category_id"] == 1 for p in predictions)
    assert math.isclose(len(predictions[0]["keypoints"]), 51)


@pytest.mark.torch
def test_eval_command_writes_crowdpose_results(tmp_path, capsys):
    import torch

    from litepose_ros.cli import main as litepose_main
    from litepose_ros.model.checkpoint import save_checkpoint
    from litepose_ros.model.network import build_model

    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path / "random.pth", build_model("XS", 14), "XS", 14)
    output = tmp_path / "results.json"
    code = litepose_main(
        [
            "eval",
            "--model",
            str(checkpoint),
            "--annotations",
            str(CROWDPOSE_FILE),
            "--images",
            str(CROWDPOSE_FILE.parent),
            "--crowdpose",
            "--engine",
            "torch",
            "--input-size",
            "128",
            "--no-flip",
            "--no-progress",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    written = json.loads(output.read_text())
    assert written["mode"] == "crowdpose" and written["images"] == 2
    assert set(written["metrics"]) == set(CROWDPOSE_METRICS)
    assert 0.0 <= written["metrics"]["AP"] < 0.5  # random weights
    assert "AP_medium" in capsys.readouterr().out


def test_eval_command_names_missing_files(tmp_path, capsys):
    from litepose_ros.cli import main as litepose_main

    code = litepose_main(
        [
            "eval",
            "--model",
            str(tmp_path / "none.onnx"),
            "--annotations",
            str(COCO_FILE),
            "--images",
            str(COCO_FILE.parent),
        ]
    )
    assert code == 2
    assert "model" in capsys.readouterr().err


def test_eval_command_defaults_to_the_bundled_model(tmp_path, capsys):
    from litepose_ros.cli import main as litepose_main
    from litepose_ros.weights import default_model_path

    output = tmp_path / "results.json"
    arguments = [
        "--annotations",
        str(COCO_FILE),
        "--images",
        str(COCO_FILE.parent),
        "--no-flip",
        "--no-progress",
    ]
    assert litepose_main(["eval", *arguments, "--max-images", "1", "--output", str(output)]) == 0
    assert json.loads(output.read_text())["model"] == str(default_model_path())
    assert str(default_model_path()) in capsys.readouterr().out


# Reference values: xtcocotools 1.14.3 (built from source against numpy 2; its wheel does not
# import under numpy 2) on the same files, COCOeval(gt, dt, 'keypoints' / 'keypoints_crowd',
# sigmas, use_area=True / False), stats as summarize() prints them.
XTCOCOTOOLS_COCO = [0.522497, 0.946252, 0.554455, 0.375231, 0.654333, 0.641667, 1.0, 0.75, 0.46, 0.771429]
XTCOCOTOOLS_CROWDPOSE = [0.683404, 0.7124, 0.7124, 0.95, 1.0, 1.0]
NOISY = Path(__file__).parent / "fixtures" / "evaluation"


def test_coco_mode_matches_xtcocotools():
    predictions = json.loads((NOISY / "coco_noisy_predictions.json").read_text())
    metrics = evaluate_keypoints(COCO_FILE, predictions)
    assert [metrics[name] for name in COCO_METRICS] == pytest.approx(XTCOCOTOOLS_COCO, abs=1e-6)


def test_crowdpose_mode_matches_xtcocotools_including_the_splits():
    predictions = json.loads((NOISY / "crowdpose_noisy_predictions.json").read_text())
    data = json.loads(CROWDPOSE_FILE.read_text())
    metrics = evaluate_keypoints(data, predictions, crowdpose=True)
    assert [metrics[n] for n in ("AP", "AP50", "AP75", "AR", "AR50", "AR75")] == pytest.approx(
        XTCOCOTOOLS_CROWDPOSE, abs=1e-6
    )
    assert metrics["AP_medium"] == pytest.approx(0.6834, abs=1e-4)  # both images: crowd index 0.33, 0.39
    data["images"][0]["crowdIndex"], data["images"][1]["crowdIndex"] = 0.1, 0.9
    split = evaluate_keypoints(data, predictions, crowdpose=True)
    assert (split["AP_easy"], split["AP_hard"]) == pytest.approx((1.0, 0.45), abs=1e-4)
    assert split["AP_medium"] is None
