"""Pseudo-labelling one image with the MoveNet teacher: every constant a documented option.

1. Multipose on the whole image at several input long sides (and optionally on overlapping
   tiles, for crowds and small people); candidates with a box score of at least
   ``min_person_score``.
2. Duplicate removal: a candidate is dropped when its pose matches a better one (OKS) or its
   box nearly covers the same area (IoU).
3. Refinement with thunder on a square crop around each person, in passes: the first crop is
   centred on the multipose box, each further one on the previous pass's keypoints; each pass
   averages the crop and its mirror image. Guard: when the refined pose disagrees with the
   multipose pose (OKS below ``guard_oks``: the crop locked onto another person) the
   multipose pose is kept.
4. Duplicate removal again; keypoints with a confidence of at least ``keypoint_threshold`` are
   labelled (COCO v = 2); people with fewer than ``min_visible_keypoints`` become ignore regions.
5. Known person boxes (optional, e.g. COCO ground truth): each box takes the labelled person
   lying mostly inside it; a box without one is refined from the box itself, and if that gives no
   pose it becomes an ignore region. People outside every box are dropped (the boxes are taken to
   be exhaustive), crowd boxes become ignore regions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from litepose_ros.evaluation import oks
from litepose_ros.labelling.teacher import MoveNetTeacher
from litepose_ros.layouts import COCO_17


def _option(default, help_text: str):
    """A LabelConfig field whose help text is the CLI option's help (one place for both)."""
    if isinstance(default, tuple):
        return field(default_factory=lambda: default, metadata={"help": help_text})
    return field(default=default, metadata={"help": help_text})


@dataclass
class LabelConfig:
    """Every constant of the pipeline; ``litepose label`` offers each as an option."""

    multipose_sizes: tuple[int, ...] = _option(
        (256, 384, 512),
        "multipose input long sides (multiples of 32): more sizes find more people, at more cost",
    )
    min_person_score: float = _option(0.1, "multipose candidates need at least this box score")
    tiles: int = _option(
        0,
        "overlapping tiles per image side (0: none; 2: a 2x2 grid), each run at --tile-size: "
        "more small people and crowds beyond multipose's six rows",
    )
    tile_overlap: float = _option(0.25, "fraction of a tile shared with its neighbour")
    tile_size: int = _option(512, "multipose input long side for tiles (a multiple of 32)")
    tile_min_person_score: float = _option(0.3, "tile candidates need at least this box score")
    dedupe_oks: float = _option(
        0.5, "a person whose pose matches a better one with an OKS above this is a duplicate"
    )
    dedupe_iou: float = _option(
        0.8, "a person whose box overlaps a better one's with an IoU above this is a duplicate"
    )
    crop_scale: float = _option(1.3, "thunder crop side as a multiple of the longer side of the person's box")
    crop_keypoint_score: float = _option(
        0.1,
        "later thunder crops are centred on the box around the previous "
        "pass's keypoints scoring at least this",
    )
    refine_passes: int = _option(2, "thunder passes per person (0: keep the multipose poses)")
    refine_flip: bool = _option(True, "average each thunder crop with its mirror image")
    guard_oks: float = _option(
        0.3,
        "keep the multipose pose when the refined pose matches it with an OKS below "
        "this (the crop locked onto another person)",
    )
    keypoint_threshold: float = _option(
        0.3,
        "keypoints with a teacher confidence of at least this are labelled "
        "(COCO v=2); the others are left unlabelled",
    )
    min_visible_keypoints: int = _option(5, "people with fewer labelled keypoints become ignore regions")
    box_min_inside: float = _option(
        0.5,
        "with known boxes: a person belongs to a box when this fraction of its keypoint box lies inside it",
    )
    box_margin: float = _option(
        0.1,
        "the labelled bbox: the box around the labelled keypoints widened by this "
        "fraction of its size on each side",
    )

    def __post_init__(self) -> None:
        self.multipose_sizes = tuple(int(s) for s in self.multipose_sizes)
        if not self.multipose_sizes or any(s <= 0 or s % 32 for s in self.multipose_sizes):
            raise ValueError(f"multipose sizes must be positive multiples of 32, got {self.multipose_sizes}")
        if self.tiles < 0 or (self.tiles and (self.tile_size <= 0 or self.tile_size % 32)):
            raise ValueError("tiles must be >= 0 and tile_size a positive multiple of 32")
        if not 0 <= self.tile_overlap < 1:
            raise ValueError(f"tile_overlap must be in [0, 1), got {self.tile_overlap}")
        for name in (
            "min_person_score",
            "tile_min_person_score",
            "crop_keypoint_score",
            "dedupe_oks",
            "dedupe_iou",
            "guard_oks",
            "keypoint_threshold",
            "box_min_inside",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.crop_scale <= 0 or self.refine_passes < 0 or self.min_visible_keypoints < 1:
            raise ValueError("crop_scale must be positive, refine_passes >= 0, min_visible_keypoints >= 1")


@dataclass
class LabelledPerson:
    """A teacher pose: keypoints (17, 3) x, y, confidence in image pixels; person score."""

    keypoints: np.ndarray
    score: float
    refined: bool = False
    box: np.ndarray | None = None  # the detector's box (x0, y0, x1, y1), where it gave one


@dataclass
class ImageLabels:
    """What the teacher found in one image: people and ignore boxes (x0, y0, x1, y1)."""

    people: list[LabelledPerson] = field(default_factory=list)
    ignore_boxes: list[np.ndarray] = field(default_factory=list)


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _box_area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))


def _fraction_inside(inner: np.ndarray, outer: np.ndarray) -> float:
    w = min(inner[2], outer[2]) - max(inner[0], outer[0])
    h = min(inner[3], outer[3]) - max(inner[1], outer[1])
    area = max(inner[2] - inner[0], 1e-6) * max(inner[3] - inner[1], 1e-6)
    return float(max(w, 0) * max(h, 0) / area)


class Labeller:
    """Runs the pipeline of the module docstring over images with one teacher."""

    def __init__(self, teacher: MoveNetTeacher, config: LabelConfig | None = None):
        self.teacher = teacher
        self.config = config or LabelConfig()
        self.layout = COCO_17
        self._sigmas = self.layout.sigmas_array()

    # -- helpers ---------------------------------------------------------------------------

    def _confident(self, keypoints: np.ndarray) -> np.ndarray:
        """Keypoints with the score zeroed below the threshold (OKS then uses confident joints only)."""
        out = keypoints.copy()
        out[:, 2] = np.where(keypoints[:, 2] >= self.config.keypoint_threshold, keypoints[:, 2], 0.0)
        return out

    def _pose_box(self, keypoints: np.ndarray) -> np.ndarray:
        confident = keypoints[:, 2] >= self.config.keypoint_threshold
        xy = keypoints[confident if confident.sum() >= 2 else slice(None), :2]
        return np.concatenate([xy.min(axis=0), xy.max(axis=0)])

    def pose_similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        """OKS of two poses over the joints confident in both (area: the larger keypoint box)."""
        ca, cb = self._confident(a), self._confident(b)
        area = max(_box_area(self._pose_box(a)), _box_area(self._pose_box(b)), 1.0)
        return float(oks(ca, cb[None], self._sigmas, area, np.array([area]))[0])

    def _deduplicate(self, people: list[LabelledPerson]) -> list[LabelledPerson]:
        kept: list[LabelledPerson] = []
        for person in sorted(people, key=lambda p: -p.score):
            box = self._pose_box(person.keypoints)
            if any(
                self.pose_similarity(person.keypoints, other.keypoints) > self.config.dedupe_oks
                or _box_iou(box, self._pose_box(other.keypoints)) > self.config.dedupe_iou
                for other in kept
            ):
                continue
            kept.append(person)
        return kept

    # -- stages ----------------------------------------------------------------------------

    def detect(self, image_rgb: np.ndarray) -> list[LabelledPerson]:
        """Stage 1: multipose candidates at every size and tile (not yet deduplicated)."""
        c = self.config
        found = []
        for size in c.multipose_sizes:
            found += [
                LabelledPerson(d.keypoints, d.score, box=d.box)
                for d in self.teacher.multipose(image_rgb, size)
                if d.score >= c.min_person_score
            ]
        for x0, y0, x1, y1 in self.tile_boxes(image_rgb.shape[1], image_rgb.shape[0]):
            tile = image_rgb[y0:y1, x0:x1]
            found += [
                LabelledPerson(d.keypoints, d.score, box=d.box)
                for d in self.teacher.multipose(tile, c.tile_size, offset=(x0, y0))
                if d.score >= c.tile_min_person_score
            ]
        return found

    def tile_boxes(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """Overlapping tiles (x0, y0, x1, y1), ``tiles`` per side; none when tiling is off."""
        n = self.config.tiles
        if n <= 1:
            return []
        keep = 1 - self.config.tile_overlap
        # n tiles of side t overlapping by the configured fraction span the image: t (1 + (n-1) keep) = side.
        tile_w, tile_h = width / (1 + (n - 1) * keep), height / (1 + (n - 1) * keep)
        boxes = []
        for row in range(n):
            for col in range(n):
                x0, y0 = round(col * tile_w * keep), round(row * tile_h * keep)
                boxes.append((x0, y0, min(width, round(x0 + tile_w)), min(height, round(y0 + tile_h))))
        return boxes

    def refine_crop(self, image_rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Thunder on a square crop around box (x0, y0, x1, y1), flip-averaged when configured."""
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        side = self.config.crop_scale * max(box[2] - box[0], box[3] - box[1], 8.0)
        keypoints = self.teacher.thunder(image_rgb, centre, side)
        if self.config.refine_flip:
            mirrored = self.teacher.thunder(image_rgb, centre, side, flip=True)[list(self.layout.flip_index)]
            keypoints = (keypoints + mirrored) / 2.0
        return keypoints

    def refine_from_box(self, image_rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The passes of thunder: the first crop around ``box``, each next one around the last pose."""
        keypoints = self.refine_crop(image_rgb, box)
        for _ in range(self.config.refine_passes - 1):
            placed = keypoints[:, 2] >= self.config.crop_keypoint_score
            xy = keypoints[placed if placed.sum() >= 2 else slice(None), :2]
            keypoints = self.refine_crop(image_rgb, np.concatenate([xy.min(axis=0), xy.max(axis=0)]))
        return keypoints

    def refine(self, image_rgb: np.ndarray, person: LabelledPerson) -> LabelledPerson:
        """Stage 3 for one person: passes of thunder, then the guard against locking onto another."""
        if self.config.refine_passes == 0:
            return person
        start = person.box if person.box is not None else self._pose_box(person.keypoints)
        keypoints = self.refine_from_box(image_rgb, start)
        if self.pose_similarity(keypoints, person.keypoints) < self.config.guard_oks:
            return person
        return LabelledPerson(keypoints, float(np.mean(keypoints[:, 2])), refined=True)

    def label(
        self,
        image_rgb: np.ndarray,
        known_boxes: np.ndarray | None = None,
        crowd_boxes: np.ndarray | None = None,
    ) -> ImageLabels:
        """The whole pipeline on one RGB image; boxes are (N, 4) x0, y0, x1, y1 in pixels."""
        c = self.config
        candidates = self._deduplicate(self.detect(image_rgb))
        people = self._deduplicate([self.refine(image_rgb, p) for p in candidates])
        result = ImageLabels()
        if known_boxes is not None:
            people = self._match_known_boxes(image_rgb, people, np.asarray(known_boxes, np.float64), result)
        for box in np.asarray(crowd_boxes if crowd_boxes is not None else np.zeros((0, 4)), np.float64):
            result.ignore_boxes.append(box)
        for person in people:
            if (
                int(np.count_nonzero(person.keypoints[:, 2] >= c.keypoint_threshold))
                >= c.min_visible_keypoints
            ):
                result.people.append(person)
            else:
                result.ignore_boxes.append(self._pose_box(person.keypoints))
        return result

    def _match_known_boxes(
        self, image_rgb: np.ndarray, people: list[LabelledPerson], boxes: np.ndarray, result: ImageLabels
    ) -> list[LabelledPerson]:
        """Stage 5: one person per known box; boxes without a pose refined from the box or ignored."""
        c = self.config
        free = list(range(len(people)))
        matched: list[LabelledPerson] = []
        for box in boxes:
            inside = [(_fraction_inside(self._pose_box(people[i].keypoints), box), i) for i in free]
            inside = [(f, i) for f, i in inside if f >= c.box_min_inside]
            if inside:
                # The person best inside this box, ties to the higher score.
                _, best = max(inside, key=lambda item: (round(item[0], 6), people[item[1]].score))
                free.remove(best)
                matched.append(people[best])
                continue
            keypoints = self.refine_from_box(image_rgb, box) if c.refine_passes else None
            if (
                keypoints is not None
                and np.count_nonzero(keypoints[:, 2] >= c.keypoint_threshold) >= c.min_visible_keypoints
                and _fraction_inside(self._pose_box(keypoints), box) >= c.box_min_inside
            ):
                matched.append(LabelledPerson(keypoints, float(np.mean(keypoints[:, 2])), refined=True))
            else:
                result.ignore_boxes.append(box.copy())
        return matched
