"""A labelling run: frames from the inputs through the teacher into the output folder.

Workers are processes, each with its own single-threaded teacher sessions; frames go to them in
input order and come back in input order, so the output is the same for any number of workers.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from litepose_ros.labelling.pipeline import LabelConfig, Labeller
from litepose_ros.labelling.sources import Frame, Sampling, iterate_frames
from litepose_ros.labelling.store import LabelStore, error_record, frame_record
from litepose_ros.labelling.teacher import MoveNetTeacher

JPEG_QUALITY = 95


@dataclass
class KnownBoxes:
    """Person boxes per image file name (x0, y0, x1, y1), from a COCO instances file."""

    people: dict[str, np.ndarray] = field(default_factory=dict)
    crowds: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_coco(cls, path: str | Path) -> KnownBoxes:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"box file {path} does not exist (a COCO instances json with person boxes)")
        try:
            data = json.loads(path.read_text())
            names = {int(img["id"]): Path(img["file_name"]).name for img in data["images"]}
            person_ids = {int(c["id"]) for c in data.get("categories", []) if c.get("name") == "person"} or {
                1
            }
            annotations = data["annotations"]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"{path} is not a COCO instances file (needs images[].id/file_name and "
                f"annotations[].image_id/bbox): {error}"
            ) from error
        people: dict[str, list] = {name: [] for name in names.values()}
        crowds: dict[str, list] = {name: [] for name in names.values()}
        for ann in annotations:
            if int(ann.get("category_id", 1)) not in person_ids or int(ann["image_id"]) not in names:
                continue
            x, y, w, h = (float(v) for v in ann["bbox"])
            (crowds if ann.get("iscrowd") else people)[names[int(ann["image_id"])]].append(
                [x, y, x + w, y + h]
            )
        return cls(
            {k: np.asarray(v, np.float64).reshape(-1, 4) for k, v in people.items()},
            {k: np.asarray(v, np.float64).reshape(-1, 4) for k, v in crowds.items()},
        )

    def for_image(self, name: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(person boxes, crowd boxes) of an image, or (None, None) when the file has no entry for it."""
        if name not in self.people:
            return None, None
        return self.people[name], self.crowds[name]


# -- worker processes ------------------------------------------------------------------------------

_labeller: Labeller | None = None


def _init_worker(teacher_dir: str, config: LabelConfig) -> None:
    global _labeller  # noqa: PLW0603 - one labeller per worker process, made once by the pool's initializer
    cv2.setNumThreads(1)
    _labeller = Labeller(MoveNetTeacher(teacher_dir, threads=1), config)


@dataclass
class _Task:
    key: str
    source: str
    frame_index: int | None
    time: float | None
    file_name: str
    image_path: str  # read from here (image files, or the extracted frame)
    known: np.ndarray | None
    crowd: np.ndarray | None


def _label_task(task: _Task) -> dict[str, Any]:
    assert _labeller is not None
    image = cv2.imread(task.image_path, cv2.IMREAD_COLOR)
    if image is None:
        return error_record(
            task.key,
            task.source,
            f"cannot read image {task.image_path} (missing, empty or not an image file): skipped",
        )
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    start = time.perf_counter()
    labels = _labeller.label(rgb, task.known, task.crowd)
    frame = {
        "key": task.key,
        "file_name": task.file_name,
        "width": rgb.shape[1],
        "height": rgb.shape[0],
        "source": task.source,
        "frame_index": task.frame_index,
        "time": task.time,
    }
    return frame_record(frame, labels, time.perf_counter() - start)


# -- the run ---------------------------------------------------------------------------------------


@dataclass
class LabelSummary:
    frames: int  # frames in the output
    people: int
    ignore_regions: int
    errors: list[str]
    labels_file: Path


def _tasks(
    frames: Iterator[Frame], store: LabelStore, boxes: KnownBoxes | None, keys: list[str]
) -> Iterator[_Task]:
    for frame in frames:
        keys.append(frame.key)
        if store.done(frame.key):
            continue
        if frame.pixels is not None:
            path = store.frame_path(frame.source, int(frame.frame_index or 0), frame.topic)
            if not path.is_file():
                cv2.imwrite(str(path), frame.pixels, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        else:
            assert frame.path is not None
            path = frame.path
        known, crowd = boxes.for_image(Path(path).name) if boxes is not None else (None, None)
        yield _Task(
            frame.key,
            frame.source,
            frame.frame_index,
            frame.time,
            store.relative_name(path),
            str(path),
            known,
            crowd,
        )


def label_inputs(
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    teacher_dir: str | Path,
    config: LabelConfig | None = None,
    sampling: Sampling | None = None,
    topic: str | None = None,
    boxes_file: str | Path | None = None,
    workers: int = 1,
    progress: bool = True,
) -> LabelSummary:
    """Label every frame of the inputs into ``output`` (resuming what a previous run left there)."""
    config = config or LabelConfig()
    sampling = sampling or Sampling()
    # Open the teacher here: a clear error before any worker starts, and the one-process run uses it.
    teacher = MoveNetTeacher(teacher_dir, threads=1)
    boxes = KnownBoxes.from_coco(boxes_file) if boxes_file is not None else None
    settings = {
        "inputs": [str(Path(p).resolve()) for p in inputs],
        "sampling": sampling.__dict__,
        "topic": topic,
        "boxes": str(Path(boxes_file).resolve()) if boxes_file else None,
    }
    store = LabelStore(output, config, settings)
    keys: list[str] = []
    errors: list[str] = []
    tasks = _tasks(iterate_frames(inputs, sampling=sampling, topic=topic), store, boxes, keys)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc="labelling", unit="frame", initial=len(store.records), dynamic_ncols=True)
    try:
        if workers <= 1:
            global _labeller  # noqa: PLW0603 - this process labels, like one worker
            _labeller = Labeller(teacher, config)
            results: Iterator[dict[str, Any]] = map(_label_task, tasks)
            pool = None
        else:
            # The resolved folder: a teacher named by $LITEPOSE_TEACHER_DIR reaches the workers too.
            pool = multiprocessing.get_context("spawn").Pool(
                workers, _init_worker, (str(teacher.folder), config)
            )
            results = pool.imap(_label_task, tasks, chunksize=1)
        for record in results:
            store.add(record)
            if "error" in record:
                errors.append(record["error"])
                print(f"litepose label: {record['error']}")
            if bar is not None:
                bar.update(1)
        if pool is not None:
            pool.close()
            pool.join()
    finally:
        if bar is not None:
            bar.close()
        store.close()
    dataset = store.write_coco(keys, config)
    people = sum(1 for a in dataset["annotations"] if not a["iscrowd"])
    return LabelSummary(
        frames=len(dataset["images"]),
        people=people,
        ignore_regions=len(dataset["annotations"]) - people,
        errors=errors,
        labels_file=store.folder / "labels.json",
    )
