"""COCO-format keypoint data sets (COCO-17, CrowdPose-14) for training.

Annotations are read with the pycocotools COCO API (it reads CrowdPose files too; the
xtcocotools wheel pinned in requirements does not import with numpy 2, see evaluation.py).
As in the reference, crowd regions and annotated people without any keypoint are masked out
of the heatmap loss (their segmentation when given, else their box).
Augmentation is deterministic: sample i of epoch e always draws from the seed (seed, e, i),
whatever the number of loader processes, so a resumed run sees the same data.

Several sources (and a folder of person-free backgrounds) can be mixed by weight: the epoch's
list of (source, image) comes from the seed (seed, e), so it too is the same after a resume.
Copy-paste compositing and the photometric jitter draw from their own streams (seed, e, i, s),
so switching them on leaves the affine draws of every sample as they were.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from litepose_ros.decoding.codec import OUTPUT_STRIDES, OutputCodec
from litepose_ros.evaluation import duplicated_annotation_ids
from litepose_ros.image_encodings import IMAGE_SUFFIXES
from litepose_ros.layouts import KeypointLayout
from litepose_ros.preprocess import normalize_image
from litepose_ros.training.augment import (
    AffineParams,
    apply_photometric,
    apply_to_points,
    crop_matrix,
    downscale_matrix,
    flip_joints,
    sample_affine_params,
    sample_photometric,
    warp_image,
    warp_mask,
)
from litepose_ros.training.composite import OPAQUE, CutOut, cut_out, draw_paste, occlude, paste, person_box
from litepose_ros.training.config import AugmentConfig, SourceConfig, TrainConfig

# Fourth word of the per-sample seeds (seed, epoch, index, stream); the affine draw keeps the
# three-word seed it always had. (seed, epoch, 0, 0) seeds the epoch's list of samples.
PLAN_STREAM, PASTE_STREAM, PHOTOMETRIC_STREAM = 0, 1, 2
# Decoded, downscaled cut-outs kept per process (most recently used first out of the budget).
CUT_OUT_CACHE_BYTES = 384 * 1024 * 1024


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
            raise ValueError(
                f"{source}: category {category.get('name')!r} has {len(names)} keypoints "
                f"but the layout {layout.name} has {layout.num_keypoints}; choose the "
                "matching layout (coco17 or crowdpose14)"
            )


@dataclass
class ImageRecord:
    """One image with its people (joints (P, K, 3): x, y, v) and its ignore regions."""

    image_id: int
    path: Path
    width: int
    height: int
    joints: np.ndarray
    ignore_annotations: list[dict]
    # (P, 4) annotation boxes x, y, w, h of the people (NaN where the annotation has none).
    boxes: np.ndarray | None = None


@dataclass
class TrainingSource:
    """One annotation file with its images, and its share of the epoch."""

    name: str
    coco: Any
    image_dir: Path
    records: list[ImageRecord]
    weight: float = 1.0
    # (record index, person index) of the people that copy-paste may cut out.
    pasteable: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))


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


def _share_counts(total: int, weights: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Whole counts summing to ``total`` in the proportions of ``weights``: each entry gets the
    floor of its quota, and the remaining samples go to entry k with probability equal to its
    fractional part (systematic sampling), so short epochs are unbiased and long ones exact."""
    weights = np.asarray(weights, dtype=np.float64)
    quotas = total * weights / weights.sum()
    counts = np.floor(quotas).astype(np.int64)
    edges = np.concatenate([[0.0], np.cumsum(quotas - counts)])
    remaining = total - int(counts.sum())
    if remaining:
        points = rng.random() + np.arange(remaining)
        counts += np.diff(np.searchsorted(points, edges, side="left"))
        # A point past the rounded last edge would be lost: it goes to the largest share.
        counts[np.argmax(quotas)] += total - int(counts.sum())
    return counts


class KeypointDataset:
    """Training samples: augmented crop, heatmaps and masks at both strides, tag index lists.

    A torch ``Dataset`` by duck typing (``__len__``/``__getitem__``); items are dicts of numpy
    arrays that the default collate function stacks.

    The classic form reads one annotation file (``annotation_file``, ``image_dir``); ``sources``
    adds more (SourceConfig), and ``background_images`` a folder of person-free images, drawn by
    weight (see ``epoch_plan``). ``from_config`` builds it from a TrainConfig.
    """

    def __init__(
        self,
        annotation_file: str | Path | None,
        image_dir: str | Path | None,
        layout: KeypointLayout,
        input_size: int,
        augment: AugmentConfig | None = None,
        *,
        sigma: float = 2.0,
        max_people: int = 30,
        seed: int = 0,
        skip_images_without_annotations: bool = True,
        repeat: int = 1,
        ignore_duplicated_people: bool = False,
        sources: Sequence[SourceConfig] = (),
        background_images: str | Path | None = None,
        background_weight: float = 0.0,
        samples_per_epoch: int | None = None,
    ):
        if input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {input_size}")
        self.layout = layout
        self.input_size = int(input_size)
        self.augment = augment
        self.codec = OutputCodec(sigma=float(sigma), max_people=int(max_people))
        self.seed = int(seed)
        self.epoch = 0
        # Each image appears `repeat` times per epoch, with its own augmentation each time.
        self.repeat = int(repeat)
        specs = list(sources)
        if annotation_file:
            specs.insert(
                0,
                SourceConfig(
                    name="train",
                    annotations=str(annotation_file),
                    images=str(image_dir or ""),
                    weight=1.0,
                    ignore_duplicated_people=ignore_duplicated_people,
                ),
            )
        if not specs:
            raise ValueError("no training data: set data.train_annotations and train_images, or data.sources")
        self.sources = [
            self._read_source(spec, skip_images_without_annotations, ignore_duplicated_people)
            for spec in specs
        ]
        # The first source's attributes, under the names the single-source form always had.
        self.image_dir = self.sources[0].image_dir
        self.coco = self.sources[0].coco
        self.records = [record for source in self.sources for record in source.records]
        self.background_weight = float(background_weight) if background_images else 0.0
        self.background_paths = (
            self._list_backgrounds(background_images) if self.background_weight > 0 else []
        )
        self.samples_per_epoch = samples_per_epoch
        # One source and nothing else: the epoch is each image `repeat` times in file order, as always.
        self.weighted = len(self.sources) > 1 or self.background_weight > 0 or samples_per_epoch is not None
        self._plan: tuple[int, np.ndarray] | None = None
        self._cut_outs: OrderedDict[tuple[int, int], dict[int, CutOut]] = OrderedDict()
        self._cut_out_bytes = 0
        self._find_pasteable_people()

    @classmethod
    def from_config(cls, config: TrainConfig, layout: KeypointLayout | None = None) -> KeypointDataset:
        """The training set a TrainConfig describes."""
        from litepose_ros.layouts import get_layout

        data = config.data
        return cls(
            data.train_annotations or None,
            data.train_images or None,
            layout or get_layout(config.model.layout),
            config.model.input_size,
            config.augment,
            sigma=data.sigma,
            max_people=data.max_people,
            seed=config.run.seed,
            skip_images_without_annotations=data.skip_images_without_annotations,
            repeat=data.repeat,
            ignore_duplicated_people=data.ignore_duplicated_people,
            sources=data.sources,
            background_images=data.background_images,
            background_weight=data.background_weight,
            samples_per_epoch=data.samples_per_epoch,
        )

    # --- reading -----------------------------------------------------------------------------------
    def _read_source(
        self, spec: SourceConfig, skip_empty: bool, ignore_duplicated_default: bool
    ) -> TrainingSource:
        image_dir = Path(spec.images)
        if not image_dir.is_dir():
            raise FileNotFoundError(f"image folder {image_dir} does not exist")
        coco = load_coco(spec.annotations)
        check_layout(coco, self.layout, spec.annotations)
        ignore_duplicated = (
            ignore_duplicated_default
            if spec.ignore_duplicated_people is None
            else spec.ignore_duplicated_people
        )
        ignored_ids = duplicated_annotation_ids(coco.dataset["annotations"]) if ignore_duplicated else set()
        records = self._read_records(coco, image_dir, skip_empty, ignored_ids)
        if not records:
            raise ValueError(f"{spec.annotations}: no usable images")
        return TrainingSource(
            name=spec.name, coco=coco, image_dir=image_dir, records=records, weight=float(spec.weight)
        )

    def _read_records(
        self, coco, image_dir: Path, skip_empty: bool, ignored_ids: set[int]
    ) -> list[ImageRecord]:
        k = self.layout.num_keypoints
        records = []
        for image_id in sorted(coco.getImgIds()):
            info = coco.loadImgs(image_id)[0]
            anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=None))
            if skip_empty and not anns:
                continue
            people, boxes, ignore = [], [], []
            for ann in anns:
                keypoints = np.asarray(ann.get("keypoints") or [0] * (3 * k), dtype=np.float64)
                if keypoints.size != 3 * k:
                    raise ValueError(
                        f"annotation {ann.get('id')} has {keypoints.size // 3} keypoints, "
                        f"the layout {self.layout.name} has {k}"
                    )
                labelled = int(np.count_nonzero(keypoints[2::3] > 0))
                if (
                    ann.get("iscrowd", 0)
                    or ann.get("num_keypoints", labelled) == 0
                    or labelled == 0
                    or int(ann["id"]) in ignored_ids
                ):
                    ignore.append(ann)
                else:
                    people.append(keypoints.reshape(k, 3))
                    box = ann.get("bbox")
                    boxes.append(box if box is not None and len(box) == 4 else [np.nan] * 4)
            joints = np.stack(people) if people else np.zeros((0, k, 3))
            records.append(
                ImageRecord(
                    image_id=int(image_id),
                    path=image_dir / info["file_name"],
                    width=int(info["width"]),
                    height=int(info["height"]),
                    joints=joints,
                    ignore_annotations=ignore,
                    boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
                )
            )
        return records

    @staticmethod
    def _list_backgrounds(folder: str | Path | None) -> list[Path]:
        folder = Path(folder or "")
        if not folder.is_dir():
            raise FileNotFoundError(f"background image folder {folder} does not exist")
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise ValueError(
                f"background image folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})"
            )
        return paths

    def _person_box(self, record: ImageRecord, person: int) -> np.ndarray:
        bbox = None if record.boxes is None or np.isnan(record.boxes[person]).any() else record.boxes[person]
        return person_box(record.joints[person], bbox)

    def _find_pasteable_people(self) -> None:
        """People copy-paste may cut out: enough labelled keypoints, not mostly inside an ignore
        region (whose unlabelled people would come along)."""
        if self.augment is None or self.augment.copy_paste_probability <= 0:
            return
        minimum = self.augment.copy_paste_min_keypoints
        for source in self.sources:
            found = []
            for r, record in enumerate(source.records):
                ignore_boxes = [a["bbox"] for a in record.ignore_annotations if a.get("bbox")]
                for p in range(len(record.joints)):
                    if np.count_nonzero(record.joints[p, :, 2] > 0) < minimum:
                        continue
                    x, y, w, h = self._person_box(record, p)
                    if h < 4 or w < 2:
                        continue
                    overlap = max(
                        (
                            max(0.0, min(x + w, bx + bw) - max(x, bx))
                            * max(0.0, min(y + h, by + bh) - max(y, by))
                            for bx, by, bw, bh in ignore_boxes
                        ),
                        default=0.0,
                    )
                    if overlap <= 0.5 * w * h:
                        found.append((r, p))
            source.pasteable = np.asarray(found, dtype=np.int64).reshape(-1, 2)
        weights = np.array([s.weight if len(s.pasteable) else 0.0 for s in self.sources])
        if not weights.sum():  # every source with people has weight 0: draw by their numbers
            weights = np.array([float(len(s.pasteable)) for s in self.sources])
        if not weights.sum():
            raise ValueError(
                f"augment.copy_paste_probability is set but no training person has "
                f"augment.copy_paste_min_keypoints = {minimum} labelled keypoints"
            )
        self._paste_source_weights = weights / weights.sum()

    # --- the epoch ---------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of this epoch (call before iterating a loader)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if not self.weighted:
            return len(self.records) * self.repeat
        return int(self.samples_per_epoch or len(self.records) * self.repeat)

    @property
    def background_source(self) -> int:
        """The source index that stands for the background folder in ``epoch_plan``."""
        return len(self.sources)

    def epoch_plan(self) -> np.ndarray:
        """(len, 2) int64 rows (source index, image index) of the current epoch's samples.

        Each source gets its weight's share of the samples (whole counts, see _share_counts),
        cycling through its images in a fresh random order; the rows are then shuffled. The
        background folder is source ``background_source``. Depends only on (seed, epoch).
        """
        if not self.weighted:
            starts = np.cumsum([0] + [len(s.records) for s in self.sources])
            flat = np.arange(len(self)) % len(self.records)
            source = np.searchsorted(starts, flat, side="right") - 1
            return np.stack([source, flat - starts[source]], axis=1)
        if self._plan is not None and self._plan[0] == self.epoch:
            return self._plan[1]
        rng = np.random.default_rng([self.seed, self.epoch, 0, PLAN_STREAM])
        sizes = [len(s.records) for s in self.sources] + [len(self.background_paths)]
        weights = [s.weight for s in self.sources] + [self.background_weight]
        total = len(self)
        parts = []
        for index, (count, size) in enumerate(zip(_share_counts(total, weights, rng), sizes, strict=True)):
            if count == 0:
                continue
            order = np.concatenate([rng.permutation(size) for _ in range(-(-count // size))])[:count]
            parts.append(np.stack([np.full(count, index), order], axis=1))
        plan = np.concatenate(parts)[rng.permutation(total)].astype(np.int64)
        self._plan = (self.epoch, plan)
        return plan

    def entry(self, index: int) -> tuple[int, int]:
        """(source index, image index) of sample ``index`` in the current epoch."""
        if not self.weighted:
            flat = index % len(self.records)
            for source_index, source in enumerate(self.sources):
                if flat < len(source.records):
                    return source_index, flat
                flat -= len(source.records)
        row = self.epoch_plan()[index]
        return int(row[0]), int(row[1])

    # --- statistics --------------------------------------------------------------------------------
    def source_stats(self) -> list[dict[str, Any]]:
        """Per source: images, people, ignore regions, people copy-paste may use, weight and the
        samples it gets in an epoch (backgrounds last, when used)."""
        counts = np.bincount(self.epoch_plan()[:, 0], minlength=len(self.sources) + 1)
        rows = []
        for index, source in enumerate(self.sources):
            rows.append(
                {
                    "name": source.name,
                    "images": len(source.records),
                    "people": int(sum(len(r.joints) for r in source.records)),
                    "ignore_regions": int(sum(len(r.ignore_annotations) for r in source.records)),
                    "pasteable_people": len(source.pasteable),
                    "weight": source.weight,
                    "samples_per_epoch": int(counts[index]),
                }
            )
        if self.background_paths:
            rows.append(
                {
                    "name": "backgrounds",
                    "images": len(self.background_paths),
                    "people": 0,
                    "ignore_regions": 0,
                    "pasteable_people": 0,
                    "weight": self.background_weight,
                    "samples_per_epoch": int(counts[self.background_source]),
                }
            )
        return rows

    def describe_sources(self) -> str:
        """``source_stats`` as a fixed-width text table (for the console and the run folder)."""
        columns = (
            "name",
            "images",
            "people",
            "ignore_regions",
            "pasteable_people",
            "weight",
            "samples_per_epoch",
        )
        rows = [
            [str(row[c]) if not isinstance(row[c], float) else f"{row[c]:g}" for c in columns]
            for row in self.source_stats()
        ]
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
        return "\n".join(line.rstrip() for line in lines)

    # --- one sample --------------------------------------------------------------------------------
    def affine_params(self, index: int, image_size: tuple[int, int]) -> AffineParams:
        """The augmentation of sample ``index`` in the current epoch (centred crop when off)."""
        if self.augment is None:
            return AffineParams()
        rng = np.random.default_rng([self.seed, self.epoch, index])
        a = self.augment
        return sample_affine_params(
            rng,
            image_size,
            max_rotation=a.max_rotation,
            min_scale=a.min_scale,
            max_scale=a.max_scale,
            scale_type=a.scale_type,
            max_translate=a.max_translate,
            flip_probability=a.flip_probability,
        )

    def load_image(self, record: ImageRecord) -> np.ndarray:
        """The image as uint8 RGB (H, W, 3)."""
        image = cv2.imread(str(record.path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"cannot read image {record.path} (image id {record.image_id})")
        if image.shape[:2] != (record.height, record.width):
            raise ValueError(
                f"{record.path} is {image.shape[1]}x{image.shape[0]} but the annotation "
                f"says {record.width}x{record.height}"
            )
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def load_background(self, index: int) -> np.ndarray:
        path = self.background_paths[index]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"cannot read background image {path}")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def cut_outs(self, source_index: int, record_index: int) -> dict[int, CutOut]:
        """The pasteable people of one image, cut out on first use and kept (LRU, bounded bytes)."""
        key = (source_index, record_index)
        cached = self._cut_outs.get(key)
        if cached is not None:
            self._cut_outs.move_to_end(key)
            return cached
        source = self.sources[source_index]
        record = source.records[record_index]
        people = source.pasteable[source.pasteable[:, 0] == record_index, 1]
        image = self.load_image(record)
        a = self.augment
        assert a is not None
        cuts = {
            int(p): cut_out(
                image,
                record.joints[p],
                self._person_box(record, int(p)),
                shape=a.copy_paste_mask,
                margin=a.copy_paste_margin,
                feather=a.copy_paste_feather,
                max_height=a.copy_paste_height[1],
            )
            for p in people
        }
        self._cut_outs[key] = cuts
        self._cut_out_bytes += sum(c.nbytes for c in cuts.values())
        while self._cut_out_bytes > CUT_OUT_CACHE_BYTES and len(self._cut_outs) > 1:
            _, dropped = self._cut_outs.popitem(last=False)
            self._cut_out_bytes -= sum(c.nbytes for c in dropped.values())
        return cuts

    def composite(
        self, index: int, image: np.ndarray, joints: np.ndarray, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Copy-paste for sample ``index``: the image with people pasted (a new array), the joints
        with the pasted people appended and the ones they cover made invisible, and the loss mask
        opened where a pasted person now hides an ignore region."""
        a = self.augment
        if a is None or a.copy_paste_probability <= 0:
            return image, joints, mask
        rng = np.random.default_rng([self.seed, self.epoch, index, PASTE_STREAM])
        if rng.random() >= a.copy_paste_probability:
            return image, joints, mask
        image = image.copy()
        mask = None if mask is None else mask.copy()
        count = int(rng.integers(a.copy_paste_people[0], a.copy_paste_people[1] + 1))
        pasted_people = []
        for _ in range(count):
            source_index = int(rng.choice(len(self.sources), p=self._paste_source_weights))
            record_index, person = self.sources[source_index].pasteable[
                rng.integers(len(self.sources[source_index].pasteable))
            ]
            draw = draw_paste(
                rng, tuple(a.copy_paste_height), a.copy_paste_flip_probability, a.copy_paste_colour_jitter
            )
            cut = self.cut_outs(source_index, int(record_index))[int(person)]
            person_joints, window, alpha = paste(image, cut, draw, self.layout.flip_index)
            joints = occlude(joints, window, alpha)
            pasted_people = [occlude(p[None], window, alpha)[0] for p in pasted_people]
            if mask is not None and alpha.size:
                mask[window] = np.maximum(mask[window], (alpha > OPAQUE).astype(np.float32))
            if (person_joints[:, 2] > 0).any():
                pasted_people.append(person_joints)
        if pasted_people:
            joints = np.concatenate([joints, np.stack(pasted_people)])
        return image, joints, mask

    def _photometric(
        self, index: int, crop: np.ndarray, matrix: np.ndarray, image_size: tuple[int, int]
    ) -> np.ndarray:
        a = self.augment
        if a is None or not (a.brightness or a.contrast or a.saturation or a.blur_probability):
            return crop
        rng = np.random.default_rng([self.seed, self.epoch, index, PHOTOMETRIC_STREAM])
        factors, blur_sigma = sample_photometric(
            rng,
            brightness=a.brightness,
            contrast=a.contrast,
            saturation=a.saturation,
            blur_probability=a.blur_probability,
            max_blur_sigma=a.max_blur_sigma,
        )
        inside = (
            cv2.warpAffine(
                np.ones(image_size[::-1], dtype=np.uint8),
                matrix,
                (self.input_size, self.input_size),
                flags=cv2.INTER_NEAREST,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
            > 0
        )
        return apply_photometric(crop, inside, factors, blur_sigma)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        source_index, item = self.entry(index)
        if source_index == self.background_source:
            image = self.load_background(item)
            image_id = -1 - item  # backgrounds have no COCO id
            joints = np.zeros((0, self.layout.num_keypoints, 3))
            mask = None
        else:
            source = self.sources[source_index]
            record = source.records[item]
            image = self.load_image(record)
            image_id = record.image_id
            joints = record.joints
            mask = _ignore_mask(source.coco, record)
        size = (image.shape[1], image.shape[0])
        params = self.affine_params(index, size)
        image, joints, mask = self.composite(index, image, joints, mask)
        scale_type = self.augment.scale_type if self.augment is not None else "short"
        matrix = crop_matrix(size, self.input_size, params, scale_type)
        crop = self._photometric(index, warp_image(image, matrix, self.input_size), matrix, size)
        sample: dict[str, np.ndarray] = {
            # The inference path's normalisation, so training sees exactly what the network gets.
            "image": normalize_image(crop, "rgb")[0],
            "image_id": np.int64(image_id),
        }
        if params.flip:
            joints = flip_joints(joints, self.layout)
        visible = joints[..., 2] > 0
        points = {
            stride: apply_to_points(downscale_matrix(matrix, stride), joints[..., :2])
            for stride in OUTPUT_STRIDES
        }
        sample.update(self.codec.targets(points, visible, self.input_size))
        for stride in OUTPUT_STRIDES:
            out_size = self.input_size // stride
            sample[f"mask_s{stride}"] = (
                np.ones((out_size, out_size), dtype=np.float32)
                if mask is None
                else warp_mask(mask, downscale_matrix(matrix, stride), out_size)
            )
        return sample
