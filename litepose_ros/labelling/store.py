"""The labelling output: a resumable record of labelled frames and the COCO keypoints file.

``progress.jsonl`` holds one line per finished frame (its key, image facts, the teacher's people
and ignore boxes, or the error that made it skip), appended and flushed as frames finish; a run
that was killed continues after the last complete line. ``labels.json`` is assembled from it at
the end: COCO keypoints (person category, the 17 COCO joints), ``file_name`` relative to the
folder holding ``labels.json``, extra fields per image (``source``, ``frame_index``, ``time``)
and per person (``score``, ``keypoint_scores``, ``teacher_keypoints``: all 17 teacher positions
with their confidences, labelled or not). Ignore regions are ``iscrowd: 1`` with a box polygon,
so training masks them out and evaluation ignores them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from litepose_ros.labelling.pipeline import ImageLabels, LabelConfig
from litepose_ros.layouts import COCO_17

PROGRESS_FILE = "progress.jsonl"
LABELS_FILE = "labels.json"
CONFIG_FILE = "label_config.json"
FRAMES_DIR = "frames"


def person_category() -> dict[str, Any]:
    """COCO's person category with the 17 keypoint names and the 1-based skeleton."""
    return {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(COCO_17.keypoint_names),
        "skeleton": [[a + 1, b + 1] for a, b in COCO_17.edges],
    }


def frame_record(frame: dict[str, Any], labels: ImageLabels, seconds: float) -> dict[str, Any]:
    """One progress line for a labelled frame: ``frame`` holds key, file_name, width, height, source,
    frame_index and time; ``seconds`` is the teacher's time on it."""
    return {
        **frame,
        "seconds": round(seconds, 4),
        "people": [
            {
                "keypoints": np.round(p.keypoints, 3).tolist(),
                "score": round(float(p.score), 5),
                "refined": bool(p.refined),
            }
            for p in labels.people
        ],
        "ignore": [np.round(np.asarray(b, np.float64), 2).tolist() for b in labels.ignore_boxes],
    }


def error_record(key: str, source: str, error: str) -> dict[str, Any]:
    """One progress line for a frame that could not be labelled (reported, then skipped)."""
    return {"key": key, "source": source, "error": error}


class LabelStore:
    """The output folder of one labelling run."""

    def __init__(self, folder: str | Path, config: LabelConfig, settings: dict[str, Any]):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.records: dict[str, dict[str, Any]] = {}
        self._check_config({"pipeline": asdict(config), **settings})
        self._read_progress()
        self._handle = (self.folder / PROGRESS_FILE).open("a")

    def _check_config(self, wanted: dict[str, Any]) -> None:
        path = self.folder / CONFIG_FILE
        wanted = json.loads(json.dumps(wanted))  # tuples as lists, as stored
        if path.is_file() and (self.folder / PROGRESS_FILE).is_file():
            stored = json.loads(path.read_text())
            if stored != wanted:
                changed = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
                raise ValueError(
                    f"{self.folder} holds labels made with other settings ({', '.join(changed)} "
                    "differ); use another --output folder, or the same settings to resume"
                )
        path.write_text(json.dumps(wanted, indent=1) + "\n")

    def _read_progress(self) -> None:
        path = self.folder / PROGRESS_FILE
        if not path.is_file():
            return
        lines = path.read_text().splitlines(keepends=True)
        complete = []
        for line in lines:
            if not line.endswith("\n"):
                break  # the run was killed while writing this line: it is done again
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break
            self.records[record["key"]] = record
            complete.append(line)
        if len(complete) != len(lines):
            path.write_text("".join(complete))

    def done(self, key: str) -> bool:
        return key in self.records

    def add(self, record: dict[str, Any]) -> None:
        """Append a finished frame (flushed and synced: a kill loses at most the line being written)."""
        self.records[record["key"]] = record
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def frame_path(self, source: str | Path, frame_index: int, topic: str | None = None) -> Path:
        """Where an extracted video or bag frame is written (JPEG)."""
        stem = Path(source).stem
        if topic:
            stem += "_" + topic.strip("/").replace("/", "_")
        (self.folder / FRAMES_DIR).mkdir(exist_ok=True)  # only runs with video or bag frames have one
        return self.folder / FRAMES_DIR / f"{stem}_f{frame_index:06d}.jpg"

    def relative_name(self, path: Path) -> str:
        """``file_name`` of an image: its path relative to the output folder."""
        return os.path.relpath(Path(path).resolve(), self.folder.resolve())

    def write_coco(self, keys: list[str], config: LabelConfig) -> dict[str, Any]:
        """Assemble labels.json from the records of ``keys`` (in that order) and return it."""
        dataset = coco_from_records([self.records[k] for k in keys if k in self.records], config)
        (self.folder / LABELS_FILE).write_text(json.dumps(dataset))
        return dataset


def coco_from_records(records: list[dict[str, Any]], config: LabelConfig) -> dict[str, Any]:
    """COCO keypoints from progress records (errors left out); ids follow the record order."""
    images, annotations = [], []
    for record in records:
        if "error" in record:
            continue
        image_id = len(images) + 1
        images.append(
            {
                "id": image_id,
                "file_name": record["file_name"],
                "width": record["width"],
                "height": record["height"],
                "source": record["source"],
                "frame_index": record["frame_index"],
                "time": record["time"],
            }
        )
        for person in record["people"]:
            annotations.append(_person_annotation(len(annotations) + 1, image_id, person, record, config))
        for box in record["ignore"]:
            annotations.append(_ignore_annotation(len(annotations) + 1, image_id, box, record))
    return {
        "info": {"description": "pseudo-labels by litepose label (teacher: MoveNet)"},
        "images": images,
        "annotations": annotations,
        "categories": [person_category()],
    }


def _clip_box(box, width: int, height: int) -> list[float]:
    x0, y0 = min(max(box[0], 0.0), width), min(max(box[1], 0.0), height)
    x1, y1 = min(max(box[2], 0.0), width), min(max(box[3], 0.0), height)
    return [x0, y0, x1, y1]


def _person_annotation(ann_id: int, image_id: int, person: dict, record: dict, config: LabelConfig) -> dict:
    teacher = np.asarray(person["keypoints"], dtype=np.float64)
    labelled = teacher[:, 2] >= config.keypoint_threshold
    keypoints = np.zeros((teacher.shape[0], 3))
    keypoints[labelled, :2] = teacher[labelled, :2]
    keypoints[labelled, 2] = 2
    xy = teacher[labelled, :2]
    low, high = xy.min(axis=0), xy.max(axis=0)
    margin = (high - low) * config.box_margin
    x0, y0, x1, y1 = _clip_box([*(low - margin), *(high + margin)], record["width"], record["height"])
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "iscrowd": 0,
        "keypoints": np.round(keypoints, 2).ravel().tolist(),
        "num_keypoints": int(labelled.sum()),
        "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
        "area": round((x1 - x0) * (y1 - y0), 2),
        "score": person["score"],
        "keypoint_scores": teacher[:, 2].round(4).tolist(),
        "teacher_keypoints": teacher.ravel().tolist(),
    }


def _ignore_annotation(ann_id: int, image_id: int, box, record: dict) -> dict:
    x0, y0, x1, y1 = _clip_box(box, record["width"], record["height"])
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "iscrowd": 1,
        "num_keypoints": 0,
        "keypoints": [0] * (3 * COCO_17.num_keypoints),
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "area": (x1 - x0) * (y1 - y0),
        "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]],
    }


def teacher_predictions(dataset: dict[str, Any]) -> list[dict[str, Any]]:
    """COCO result dicts from a labels.json (every teacher keypoint, for scoring the teacher)."""
    return [
        {
            "image_id": a["image_id"],
            "category_id": 1,
            "keypoints": a["teacher_keypoints"],
            "score": a["score"],
        }
        for a in dataset["annotations"]
        if not a.get("iscrowd") and "teacher_keypoints" in a
    ]
