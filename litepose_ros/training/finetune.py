"""Fine-tune a model on ``litepose label`` output: the held-out split, the recipe, the export.

``litepose finetune`` is the short way from a robot's own footage to a model for it: the labelled
folders go in, a trained ``model.onnx`` comes out. Everything here is what a hand-written recipe
(docs/training.md) would say, with the choices made for this case:

- validation: the last images of each recording (by time, then frame index) are held out.
  Neighbouring frames of one recording are near-duplicates, so a random split would measure
  memory, not the camera;
- start: the bundled checkpoint (or ``init_checkpoint``), its architecture and layout;
- augmentation: the general recipe's (``config/train/xs_general.yaml``: scale, rotation,
  copy-paste of labelled people, photometric jitter), with optional person-free background
  images of the same place as negatives;
- schedule: Adam at 2e-3, decayed x0.1 at 70 % and 90 % of the epochs.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from litepose_ros.training.config import (
    AugmentConfig,
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    SourceConfig,
    TrainConfig,
)

LABELS_FILE = "labels.json"  # what `litepose label` writes into its output folder
SPLIT_DIR = "data"  # below the fine-tune output: the train / val files made from the labels
MODEL_FILE = "model.onnx"
# Network input short side of validation and of the exported model: the same, so that the epoch
# chosen is the best at the size the node runs (a fine-tune on one camera measured AP 0.25 at its
# validation size and 0.10 at 288). A multiple of 64, the trainer's rule for validation.
DEFAULT_EXPORT_SIZE = 256


@dataclass(frozen=True)
class FinetuneOptions:
    """label_dirs: ``litepose label`` output folders (each holds labels.json, its image paths
    relative to the folder); output: the run folder; init_checkpoint: None for the bundled one;
    backgrounds: a folder of person-free images of the same place (negatives), or None;
    val_fraction: share of each recording held out for validation (0: none, the last epoch is
    exported); input_size: training crop side; export_size: the input short side of validation
    and of the exported model; the rest as in ``TrainConfig``."""

    label_dirs: tuple[Path, ...]
    output: Path
    init_checkpoint: Path | None = None
    backgrounds: Path | None = None
    epochs: int = 30
    samples_per_epoch: int = 500
    val_fraction: float = 0.1
    input_size: int = 256
    export_size: int = DEFAULT_EXPORT_SIZE
    batch_size: int = 16
    device: str = "auto"
    threads: int | None = None
    workers: int = 2

    def __post_init__(self) -> None:
        if not self.label_dirs:
            raise ValueError("name at least one `litepose label` output folder")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.samples_per_epoch < 1:
            raise ValueError(f"samples per epoch must be >= 1, got {self.samples_per_epoch}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"the validation fraction must be in [0, 1), got {self.val_fraction}")
        if self.input_size < 64 or self.input_size % 16:
            raise ValueError(f"input size must be a multiple of 16 and >= 64, got {self.input_size}")
        if self.export_size < 64 or self.export_size % 64:
            raise ValueError(f"export size must be a multiple of 64, got {self.export_size}")


def read_labels(label_dir: Path) -> dict:
    """A ``litepose label`` folder's labels, with clear errors for what is not one."""
    path = Path(label_dir) / LABELS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{label_dir} holds no {LABELS_FILE}: name the output folder of `litepose label` (its --output)"
        )
    dataset = json.loads(path.read_text())
    if not isinstance(dataset, dict) or not isinstance(dataset.get("images"), list):
        raise ValueError(f"{path} is not a COCO keypoint file (no 'images' list)")
    return dataset


def _recording_order(image: dict) -> tuple:
    time = image.get("time")
    frame = image.get("frame_index")
    return (time if time is not None else math.inf, frame if frame is not None else math.inf, image["id"])


def held_out_images(dataset: dict, fraction: float) -> set[int]:
    """Ids of the images to validate on: the last ``fraction`` of each recording (``source``) in
    recording order (time, frame index, id), at least one per recording of two or more images."""
    if fraction <= 0:
        return set()
    recordings: dict[str, list[dict]] = defaultdict(list)
    for image in dataset["images"]:
        recordings[str(image.get("source", ""))].append(image)
    held = set()
    for images in recordings.values():
        if len(images) < 2:
            continue
        count = max(1, math.floor(len(images) * fraction + 0.5))  # half up: 2.5 images -> 3
        held.update(int(image["id"]) for image in sorted(images, key=_recording_order)[-count:])
    return held


def _subset(dataset: dict, image_ids: set[int], label_dir: Path) -> dict:
    """The images with these ids and their annotations, image paths made absolute (the split files
    live elsewhere than the images)."""
    images = [
        dict(image, file_name=str((label_dir / image["file_name"]).resolve()))
        for image in dataset["images"]
        if int(image["id"]) in image_ids
    ]
    annotations = [a for a in dataset.get("annotations", []) if int(a["image_id"]) in image_ids]
    return dict(dataset, images=images, annotations=annotations)


def _merge(parts: list[dict]) -> dict:
    """One COCO file from several, with image and annotation ids renumbered (each folder counts
    from 1)."""
    images, annotations = [], []
    for part in parts:
        new_ids = {}
        for image in part["images"]:
            new_ids[int(image["id"])] = len(images) + 1
            images.append(dict(image, id=len(images) + 1))
        for annotation in part["annotations"]:
            annotations.append(
                dict(annotation, id=len(annotations) + 1, image_id=new_ids[int(annotation["image_id"])])
            )
    return {"images": images, "annotations": annotations, "categories": parts[0]["categories"]}


@dataclass(frozen=True)
class Split:
    """The files made from the labels: one training file per folder, one validation file."""

    train: list[tuple[str, Path, int]]  # (source name, annotation file, images)
    val: Path | None
    val_images: int


def write_split(options: FinetuneOptions) -> Split:
    """Write the training and validation files below ``output/data`` (same result every time)."""
    split_dir = Path(options.output) / SPLIT_DIR
    split_dir.mkdir(parents=True, exist_ok=True)
    train, val_parts, names = [], [], set()
    for given in options.label_dirs:
        label_dir = Path(given).expanduser().resolve()
        dataset = read_labels(label_dir)
        held = held_out_images(dataset, options.val_fraction)
        kept = {int(image["id"]) for image in dataset["images"]} - held
        if not kept:
            raise ValueError(f"{label_dir}: no images left to train on")
        if not any(
            int(a["image_id"]) in kept and a.get("num_keypoints", 0) > 0
            for a in dataset.get("annotations", [])
        ):
            raise ValueError(
                f"{label_dir}: no person is labelled in the images to train on: label footage with "
                "people in it (or lower `litepose label`'s thresholds)"
            )
        name = label_dir.name or "labels"
        while name in names:  # two folders of the same name
            name += "_"
        names.add(name)
        path = split_dir / f"{name}_train.json"
        path.write_text(json.dumps(_subset(dataset, kept, label_dir)))
        train.append((name, path, len(kept)))
        if held:
            val_parts.append(_subset(dataset, held, label_dir))
    val_path = None
    val_images = sum(len(part["images"]) for part in val_parts)
    if val_parts:
        val_path = split_dir / "val.json"
        val_path.write_text(json.dumps(_merge(val_parts)))
    return Split(train=train, val=val_path, val_images=val_images)


def finetune_config(
    options: FinetuneOptions, split: Split, init_checkpoint: Path, architecture: str, layout: str
) -> TrainConfig:
    """The training recipe for this fine-tune (saved beside the run as ``config.yaml``):
    ``architecture`` and ``layout`` are the starting checkpoint's."""
    epochs = options.epochs
    # Each folder weighs by its images, so a short recording is not seen more often than a long one.
    sources = [
        SourceConfig(name=name, annotations=str(path), images=str(path.parent), weight=float(count))
        for name, path, count in split.train
    ]
    data = DataConfig(
        sources=sources,
        background_images=str(options.backgrounds) if options.backgrounds else None,
        # one sample in ten a background (the sources weigh their images: 1/9 of them is 10 %)
        background_weight=sum(count for *_, count in split.train) / 9 if options.backgrounds else 0.0,
        samples_per_epoch=options.samples_per_epoch,
        val_annotations=str(split.val) if split.val else None,
        val_images=str(split.val.parent) if split.val else None,
        skip_images_without_annotations=False,  # frames with nobody teach the model to stay quiet
    )
    augment = AugmentConfig(
        max_rotation=30,
        min_scale=0.5,
        max_scale=1.5,
        max_translate=100,
        copy_paste_probability=0.5,
        brightness=0.25,
        contrast=0.25,
        saturation=0.25,
        blur_probability=0.1,
        max_blur_sigma=1.2,
    )
    optim = OptimConfig(
        lr=2e-3,
        lr_steps=sorted({max(1, round(0.7 * epochs)), max(1, round(0.9 * epochs))}),
        epochs=epochs,
        batch_size=options.batch_size,
    )
    run = RunConfig(
        device=options.device,
        threads=options.threads,
        workers=options.workers,
        output_dir=str(options.output),
        val_every=1 if split.val else 0,
    )
    model = ModelConfig(
        architecture=architecture,
        layout=layout,
        input_size=options.input_size,
        eval_input_size=options.export_size,
        init_checkpoint=str(init_checkpoint),
    )
    config = TrainConfig(model=model, data=data, augment=augment, optim=optim, run=run)
    config.validate()
    return config
