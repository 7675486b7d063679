"""Training configuration: one dataclass per concern, loaded from YAML or JSON.

Every default is the reference recipe (LITEPOSE.md section 4) so a recipe file only states what
differs. Relative paths in a file are taken relative to the working directory of the run.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litepose_ros.layouts import get_layout


@dataclass
class ModelConfig:
    # A released variant name (XS, S, M, L) or the path of an architecture JSON file.
    architecture: str = "XS"
    # Keypoint layout: coco17 (COCO, 17 joints) or crowdpose14 (CrowdPose, 14 joints).
    layout: str = "coco17"
    # Side of the square training crop in pixels (a multiple of 32).
    input_size: int = 256
    # Short side the image is resized to for validation and inference (a multiple of 64, recorded
    # in the checkpoints); None = input_size. Set it larger than input_size when the training
    # scales make people look larger than a full-frame resize would.
    eval_input_size: int | None = None
    # Optional checkpoint whose weights start the training (fine-tuning); not a resume.
    init_checkpoint: str | None = None


@dataclass
class SourceConfig:
    """One COCO-keypoint training source of a mixed training set (``data.sources``)."""

    name: str = ""
    annotations: str = ""
    images: str = ""
    # Relative share of the epoch's samples (the weights of all sources and backgrounds are normalised).
    weight: float = 1.0
    # None = data.ignore_duplicated_people.
    ignore_duplicated_people: bool | None = None


@dataclass
class DataConfig:
    # One training source (the classic form)...
    train_annotations: str = ""
    train_images: str = ""
    # ... or several, drawn by weight: a list of SourceConfig mappings (name, annotations, images,
    # weight, ignore_duplicated_people).
    sources: list[SourceConfig] = field(default_factory=list)
    # Person-free images (a folder): samples with no people and nothing masked, so the model learns
    # to say "nobody"; their share of the epoch is background_weight (relative to the sources' weights).
    background_images: str | None = None
    background_weight: float = 0.0
    # Samples per epoch when drawing by weight (None = repeat x the sources' images). With one
    # source, no backgrounds and no samples_per_epoch, an epoch is each image `repeat` times in order.
    samples_per_epoch: int | None = None
    val_annotations: str | None = None
    val_images: str | None = None
    # Validation AP in CrowdPose mode (easy / medium / hard, no area ranges).
    crowdpose: bool = False
    # The reference drops training images that have no annotation at all.
    skip_images_without_annotations: bool = True
    # Heatmap Gaussian sigma in output pixels (both scales) and people per image for the tag loss.
    sigma: float = 2.0
    max_people: int = 30
    # Pseudo-label sets can carry one person's keypoints copied verbatim into many images (a
    # labelling bug: pseudo_people's vtest frames hold ~1,400 such copies at 8 fixed spots, mostly
    # on empty road). When set, annotations whose keypoints repeat exactly in another image become
    # ignore regions: masked out of the training loss, treated like crowd regions in validation.
    ignore_duplicated_people: bool = False
    # Passes over the training images per epoch (more than 1 for tiny sets: fewer checkpoints).
    repeat: int = 1
    # Validate on at most this many images (None = all), for quick runs.
    val_max_images: int | None = None
    # More validation sets, each reported in the log as val_<name>_<metric> (e.g. real ground truth
    # next to a pseudo-labelled split): mappings with name, annotations, images and optionally
    # ignore_duplicated_people.
    extra_val: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        # YAML / JSON give mappings; name the bad key of the bad source here, where its index is known.
        known = {f.name for f in dataclasses.fields(SourceConfig)}
        sources = []
        for index, given in enumerate(self.sources or []):
            if isinstance(given, dict):
                bad = set(given) - known
                if bad:
                    raise ValueError(
                        f"unknown key(s) {sorted(bad)} in data.sources[{index}]; known: {sorted(known)}"
                    )
                given = SourceConfig(**given)  # noqa: PLW2901
            elif not isinstance(given, SourceConfig):
                raise ValueError(f"data.sources[{index}] must be a mapping, got {type(given).__name__}")
            sources.append(given)
        self.sources = sources


@dataclass
class AugmentConfig:
    max_rotation: float = 30.0  # degrees, uniform in [-max, max]
    min_scale: float = 0.75  # crop side = short (or long) image side x scale
    max_scale: float = 1.5
    scale_type: str = "short"  # "short" or "long"
    # Translation of the crop centre, in pixels per 200 pixels of crop side (the reference's unit).
    max_translate: float = 40.0
    flip_probability: float = 0.5
    # Copy-paste compositing, in source-image space before the affine: with this probability a
    # sample receives people cut from training images (any source, drawn by the sources' weights).
    copy_paste_probability: float = 0.0
    copy_paste_people: list[int] = field(default_factory=lambda: [1, 4])  # [min, max] per sample
    # Pasted person's box height in pixels of the pasted-onto image, [min, max], log-uniform (as
    # many people per octave of size); at most the image height.
    copy_paste_height: list[float] = field(default_factory=lambda: [20.0, 400.0])
    # Cut-out shape: "hull" (convex hull of the labelled keypoints, dilated) or "box".
    copy_paste_mask: str = "hull"
    # Dilation of the shape and width of its soft edge, x the person's size (longer box side).
    copy_paste_margin: float = 0.1
    copy_paste_feather: float = 0.05
    # Only people with at least this many labelled keypoints are cut out (never ignore regions).
    copy_paste_min_keypoints: int = 8
    copy_paste_flip_probability: float = 0.5
    # Brightness, contrast and saturation of the pasted person x [1 - j, 1 + j].
    copy_paste_colour_jitter: float = 0.2
    # Photometric jitter of the whole sample: factors in [1 - x, 1 + x] (0 = off) ...
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    # ... and a Gaussian blur with sigma uniform in [0.3, max_blur_sigma] crop pixels.
    blur_probability: float = 0.0
    max_blur_sigma: float = 1.0


@dataclass
class LossConfig:
    # Heatmap MSE factor per output: [stride 4, stride 2].
    heatmap_factors: list[float] = field(default_factory=lambda: [1.0, 1.0])
    # Associative-embedding loss on the stride-4 tags ("exp" type).
    ae_loss_type: str = "exp"
    push_factor: float = 0.001
    pull_factor: float = 0.001


@dataclass
class OptimConfig:
    optimizer: str = "adam"
    lr: float = 4e-3
    # Multi-step decay: lr x lr_factor at each of these epochs.
    lr_steps: list[int] = field(default_factory=lambda: [350, 480])
    lr_factor: float = 0.1
    epochs: int = 500
    batch_size: int = 16
    # The reference configures 1e-4 but its Adam never receives it; 0 reproduces what it does.
    weight_decay: float = 0.0


@dataclass
class RunConfig:
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    amp: bool = True  # mixed precision, used on CUDA only
    workers: int = 2  # data-loading processes
    threads: int | None = None  # torch CPU threads (None = torch's default)
    # NHWC memory layout: up to 2x faster training of the depthwise 7x7 blocks on CPU.
    channels_last: bool = True
    val_every: int = 1  # epochs between validations (0 = never)
    output_dir: str = "runs/train"
    # Decoding during validation (flip test doubles its cost).
    val_flip_test: bool = False
    # best.pth is the epoch with the best mean AP over these validation sets: "val" (data.val_*)
    # and names of data.extra_val.
    select_by: list[str] = field(default_factory=lambda: ["val"])


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first setting that cannot work."""
        get_layout(self.model.layout)
        if self.model.input_size <= 0 or self.model.input_size % 32:
            raise ValueError(
                f"model.input_size must be a positive multiple of 32, got {self.model.input_size}"
            )
        if self.eval_input_size <= 0 or self.eval_input_size % 64:
            raise ValueError(
                f"the inference input size (model.eval_input_size, else model.input_size) must "
                f"be a positive multiple of 64, got {self.eval_input_size}"
            )
        if self.augment.scale_type not in ("short", "long"):
            raise ValueError(f"augment.scale_type must be 'short' or 'long', got {self.augment.scale_type!r}")
        if not 0 < self.augment.min_scale <= self.augment.max_scale:
            raise ValueError("augment: need 0 < min_scale <= max_scale")
        if not 0.0 <= self.augment.flip_probability <= 1.0:
            raise ValueError("augment.flip_probability must be in [0, 1]")
        if self.loss.ae_loss_type != "exp":
            raise ValueError(f"loss.ae_loss_type: only 'exp' is implemented, got {self.loss.ae_loss_type!r}")
        if len(self.loss.heatmap_factors) != 2:
            raise ValueError("loss.heatmap_factors needs two values: [stride 4, stride 2]")
        if self.optim.optimizer.lower() != "adam":
            raise ValueError(f"optim.optimizer: only 'adam' is implemented, got {self.optim.optimizer!r}")
        if self.optim.epochs <= 0 or self.optim.batch_size <= 0 or self.optim.lr <= 0:
            raise ValueError("optim.epochs, optim.batch_size and optim.lr must be positive")
        if sorted(self.optim.lr_steps) != list(self.optim.lr_steps):
            raise ValueError("optim.lr_steps must be increasing")
        if self.data.sigma <= 0 or self.data.max_people <= 0 or self.data.repeat <= 0:
            raise ValueError("data.sigma, data.max_people and data.repeat must be positive")
        self._validate_sources()
        self._validate_augment_extras()
        self._validate_extra_val()

    def _validate_extra_val(self) -> None:
        names = {"val"}
        for index, extra in enumerate(self.data.extra_val):
            where = f"data.extra_val[{index}]"
            if not isinstance(extra, dict):
                raise ValueError(f"{where} must be a mapping with name, annotations and images")
            bad = set(extra) - {"name", "annotations", "images", "ignore_duplicated_people"}
            missing = {"name", "annotations", "images"} - set(extra)
            if bad or missing:
                raise ValueError(
                    f"{where}: unknown key(s) {sorted(bad)}, missing {sorted(missing)}; "
                    "give name, annotations, images and optionally ignore_duplicated_people"
                )
            if extra["name"] in names:
                raise ValueError(f"{where}.name {extra['name']!r} is used twice (or is 'val')")
            names.add(extra["name"])
        unknown = set(self.run.select_by) - names
        if unknown or not self.run.select_by:
            raise ValueError(
                f"run.select_by names {sorted(unknown) or 'nothing'}; choose from {sorted(names)}"
            )

    def _validate_sources(self) -> None:
        data = self.data
        if data.sources and (data.train_annotations or data.train_images):
            raise ValueError(
                "data.train_annotations / data.train_images and data.sources are alternatives: "
                "list that file as one of data.sources"
            )
        names = set()
        for index, source in enumerate(data.sources):
            where = f"data.sources[{index}]"
            if not source.name:
                raise ValueError(f"{where}.name is empty")
            if source.name in names:
                raise ValueError(f"{where}.name {source.name!r} is used twice")
            names.add(source.name)
            if not source.annotations or not source.images:
                raise ValueError(f"{where} ({source.name}) needs annotations and images")
            if not source.weight >= 0:
                raise ValueError(f"{where}.weight must be >= 0, got {source.weight}")
        if not data.background_weight >= 0:
            raise ValueError(f"data.background_weight must be >= 0, got {data.background_weight}")
        if data.background_weight > 0 and not data.background_images:
            raise ValueError("data.background_weight is set but data.background_images is not")
        if data.samples_per_epoch is not None and data.samples_per_epoch <= 0:
            raise ValueError(f"data.samples_per_epoch must be positive, got {data.samples_per_epoch}")
        if data.sources and sum(s.weight for s in data.sources) + data.background_weight <= 0:
            raise ValueError("data.sources: the weights are all 0")

    def _validate_augment_extras(self) -> None:
        a = self.augment
        for key in ("copy_paste_probability", "copy_paste_flip_probability", "blur_probability"):
            if not 0.0 <= getattr(a, key) <= 1.0:
                raise ValueError(f"augment.{key} must be in [0, 1], got {getattr(a, key)}")
        for key in ("copy_paste_colour_jitter", "brightness", "contrast", "saturation"):
            if not 0.0 <= getattr(a, key) < 1.0:
                raise ValueError(f"augment.{key} must be in [0, 1), got {getattr(a, key)}")
        people = list(a.copy_paste_people)
        if len(people) != 2 or any(int(n) != n for n in people) or not 0 <= people[0] <= people[1]:
            raise ValueError(
                f"augment.copy_paste_people must be [min, max] whole numbers with "
                f"0 <= min <= max, got {a.copy_paste_people}"
            )
        height = list(a.copy_paste_height)
        if len(height) != 2 or not 0 < height[0] <= height[1]:
            raise ValueError(
                f"augment.copy_paste_height must be [min, max] with 0 < min <= max, got {a.copy_paste_height}"
            )
        if a.copy_paste_mask not in ("hull", "box"):
            raise ValueError(f"augment.copy_paste_mask must be 'hull' or 'box', got {a.copy_paste_mask!r}")
        if a.copy_paste_margin < 0 or a.copy_paste_feather < 0:
            raise ValueError("augment.copy_paste_margin and augment.copy_paste_feather must be >= 0")
        if not 1 <= a.copy_paste_min_keypoints <= get_layout(self.model.layout).num_keypoints:
            raise ValueError(
                f"augment.copy_paste_min_keypoints must be between 1 and the layout's "
                f"keypoints, got {a.copy_paste_min_keypoints}"
            )
        if a.max_blur_sigma < 0.3:
            raise ValueError(f"augment.max_blur_sigma must be >= 0.3, got {a.max_blur_sigma}")

    @property
    def eval_input_size(self) -> int:
        return self.model.eval_input_size or self.model.input_size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from nested dicts; unknown sections or keys are errors (they are usually typos)."""
        if not isinstance(data, dict):
            raise TypeError(f"a training configuration is a mapping of sections, got {type(data).__name__}")
        sections = {f.name: f.default_factory for f in dataclasses.fields(cls)}  # type: ignore[misc]
        unknown = set(data) - set(sections)
        if unknown:
            raise ValueError(f"unknown configuration section(s) {sorted(unknown)}; known: {sorted(sections)}")
        built = {}
        for name, factory in sections.items():
            section_cls = type(factory())
            values = data.get(name) or {}
            if not isinstance(values, dict):
                raise ValueError(f"configuration section {name!r} must be a mapping")
            known = {f.name for f in dataclasses.fields(section_cls)}
            bad = set(values) - known
            if bad:
                raise ValueError(f"unknown key(s) {sorted(bad)} in section {name!r}; known: {sorted(known)}")
            built[name] = section_cls(**values)
        return cls(**built)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """Load a YAML (.yaml/.yml) or JSON (.json) recipe file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training configuration {path} does not exist")
        text = path.read_text()
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise ValueError(f"{path}: use a .yaml, .yml or .json configuration file")
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from error

    def save(self, path: str | Path) -> None:
        """Write the full configuration (all defaults spelled out) as YAML or JSON."""
        path = Path(path)
        if path.suffix.lower() == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        else:
            import yaml

            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
