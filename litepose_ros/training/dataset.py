"""COCO-format keypoint data sets (COCO-17, CrowdPose-14) for training.

Annotations are read with the pycocotools COCO API (it reads CrowdPose files too; the
xtcocotools wheel pinned in requirements does not import with numpy 2, see evaluation.py).
As in the reference, crowd regions and annotated people without any keypoint are masked out
of the heatmap loss (their segmentation when given, else their box).
Augmentation is deterministic: sample i of epoch e always draws from the seed (seed, e, i),
whatever the number of loader processes, so a resumed run sees the same data.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from litepose_ros.evaluation import duplicated_annotation_ids
from litepose_ros.layouts import KeypointLayout
from litepose_ros.training.augment import (
    AffineParams,
    apply_to_points,
    crop_matrix,
    downscale_matrix,
    flip_joints,
    normalize_image,
    sample_affine_params,
    warp_image,
    warp_mask,
)
from litepose_ros.training.config import AugmentConfig
from litepose_ros.training.targets import joint_index_lists, render_heatmaps

# Output strides of the two network outputs, in the order the network returns them.
OUTPUT_STRIDES = (4, 2)


def load_coco(annotation_file: str | Path):
    """Load a COCO-format annotation file with pycocotools, quietly."""
    from pycocotools.coco import COCO

    path = Path(annotation_file)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist")
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def check_layout(coco, layout: KeypointLayout, source: str | Path) -> None:
    """Raise ValueError when the file's person category has another number of keypoints."""
    for category in coco.loadCats(coco.getCatIds()):
        names = category.get("keypoints")
        if names is not None and len(names) != layout.num_keypoints:
            raise ValueError(f"{source}: category {category.get('name')!r} has {len(names)} keypoints "
                             f"but the layout {layout.name} has {layout.num_keypoints}; choose the "
                             "matching layout (coco17 or crowdpose14)")


@dataclass
class ImageRecord:
    """One image with its people (joints (P, K, 3): x, y, v) and its ignore regions."""

    image_id: int
    path: Path
    width: int
    height: int
    joints: np.ndarray
    ignore_annotations: list[dict]


def _ignore_mask(coco, record: ImageRecord) -> np.ndarray | None:
    """Float mask (H, W): 0 inside crowd / keypoint-less people, 1 elsewhere; None if no region."""
    if not record.ignore_annotations:
        return None
    ignore = np.zeros((record.height, record.width), dtype=bool)
    for ann in record.ignore_annotations:
        if ann.get("segmentation"):
            with warnings.catch_warnings():  # pycocotools' numpy-2 copy-keyword deprecation notice
                warnings.simplefilter("ignore", DeprecationWarning)
                ignore |= coco.annToMask(ann).astype(bool)
        elif ann.get("bbox"):
            x, y, w, h = ann["bbox"]
            x0, y0 = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
            x1, y1 = min(record.width, int(np.ceil(x + w))), min(record.height, int(np.ceil(y + h)))
            ignore[y0:y1, x0:x1] = True
    return (~ignore).astype(np.float32)


class KeypointDataset:
    """Training samples: augmented crop, heatmaps and masks at both strides, tag index lists.

    A torch ``Dataset`` by duck typing (``__len__``/``__getitem__``); items are dicts of numpy
    arrays that the default collate function stacks.
    """

    def __init__(self, annotation_file: str | Path, image_dir: str | Path, layout: KeypointLayout,
                 input_size: int, augment: AugmentConfig | None = None, *, sigma: float = 2.0,
                 max_people: int = 30, seed: int = 0, skip_images_without_annotations: bool = True,
                 repeat: int = 1, ignore_duplicated_people: bool = False):
        if input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {input_size}")
        self.layout = layout
        self.input_size = int(input_size)
        self.augment = augment
        self.sigma = float(sigma)
        self.max_people = int(max_people)
        self.seed = int(seed)
        self.epoch = 0
        # Each image appears `repeat` times per epoch, with its own augmentation each time.
        self.repeat = int(repeat)
        self.image_dir = Path(image_dir)
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"image folder {self.image_dir} does not exist")
        self.coco = load_coco(annotation_file)
        check_layout(self.coco, layout, annotation_file)
        self.ignored_annotation_ids = (duplicated_annotation_ids(self.coco.dataset["annotations"])
                                       if ignore_duplicated_people else set())
        self.records = self._read_records(skip_images_without_annotations)
        if not self.records:
            raise ValueError(f"{annotation_file}: no usable images")

    def _read_records(self, skip_empty: bool) -> list[ImageRecord]:
        k = self.layout.num_keypoints
        records = []
        for image_id in sorted(self.coco.getImgIds()):
            info = self.coco.loadImgs(image_id)[0]
            anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=image_id, iscrowd=None))
            if skip_empty and not anns:
                continue
            people, ignore = [], []
            for ann in anns:
                keypoints = np.asarray(ann.get("keypoints") or [0] * (3 * k), dtype=np.float64)
                if keypoints.size != 3 * k:
                    raise ValueError(f"annotation {ann.get('id')} has {keypoints.size // 3} keypoints, "
                                     f"the layout {self.layout.name} has {k}")
                labelled = int(np.count_nonzero(keypoints[2::3] > 0))
                if (ann.get("iscrowd", 0) or ann.get("num_keypoints", labelled) == 0 or labelled == 0
                        or int(ann["id"]) in self.ignored_annotation_ids):
                    ignore.append(ann)
                else:
                    people.append(keypoints.reshape(k, 3))
            joints = np.stack(people) if people else np.zeros((0, k, 3))
            records.append(ImageRecord(image_id=int(image_id), path=self.image_dir / info["file_name"],
                                       width=int(info["width"]), height=int(info["height"]),
                                       joints=joints, ignore_annotations=ignore))
        return records

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of this epoch (call before iterating a loader)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records) * self.repeat

    def affine_params(self, index: int, image_size: tuple[int, int]) -> AffineParams:
        """The augmentation of sample ``index`` in the current epoch (centred crop when off)."""
        if self.augment is None:
            return AffineParams()
        rng = np.random.default_rng([self.seed, self.epoch, index])
        a = self.augment
        return sample_affine_params(rng, image_size, max_rotation=a.max_rotation, min_scale=a.min_scale,
                                    max_scale=a.max_scale, scale_type=a.scale_type,
                                    max_translate=a.max_translate, flip_probability=a.flip_probability)

    def load_image(self, record: ImageRecord) -> np.ndarray:
        """The image as uint8 RGB (H, W, 3)."""
        image = cv2.imread(str(record.path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"cannot read image {record.path} (image id {record.image_id})")
        if image.shape[:2] != (record.height, record.width):
            raise ValueError(f"{record.path} is {image.shape[1]}x{image.shape[0]} but the annotation "
                             f"says {record.width}x{record.height}")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        record = self.records[index % len(self.records)]
        image = self.load_image(record)
        size = (record.width, record.height)
        params = self.affine_params(index, size)
        scale_type = self.augment.scale_type if self.augment is not None else "short"
        matrix = crop_matrix(size, self.input_size, params, scale_type)
        sample: dict[str, np.ndarray] = {
            "image": normalize_image(warp_image(image, matrix, self.input_size)),
            "image_id": np.int64(record.image_id),
        }
        joints = record.joints
        if params.flip:
            joints = flip_joints(joints, self.layout)
        visible = joints[..., 2] > 0
        mask = _ignore_mask(self.coco, record)
        for stride in OUTPUT_STRIDES:
            out_size = self.input_size // stride
            out_matrix = downscale_matrix(matrix, stride)
            points = apply_to_points(out_matrix, joints[..., :2])
            sample[f"heatmaps_s{stride}"] = render_heatmaps(points, visible, (out_size, out_size), self.sigma)
            sample[f"mask_s{stride}"] = (np.ones((out_size, out_size), dtype=np.float32) if mask is None
                                         else warp_mask(mask, out_matrix, out_size))
            if stride == 4:
                sample["joints"] = joint_index_lists(points, visible, (out_size, out_size), self.max_people)
        return sample
