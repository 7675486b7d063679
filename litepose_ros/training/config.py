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
class DataConfig:
    train_annotations: str = ""
    train_images: str = ""
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


@dataclass
class AugmentConfig:
    max_rotation: float = 30.0  # degrees, uniform in [-max, max]
    min_scale: float = 0.75  # crop side = short (or long) image side x scale
    max_scale: float = 1.5
    scale_type: str = "short"  # "short" or "long"
    # Translation of the crop centre, in pixels per 200 pixels of crop side (the reference's unit).
    max_translate: float = 40.0
    flip_probability: float = 0.5


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
            raise ValueError(f"model.input_size must be a positive multiple of 32, got "
                             f"{self.model.input_size}")
        if self.eval_input_size <= 0 or self.eval_input_size % 64:
            raise ValueError(f"the inference input size (model.eval_input_size, else model.input_size) must "
                             f"be a positive multiple of 64, got {self.eval_input_size}")
        if self.augment.scale_type not in ("short", "long"):
            raise ValueError(f"augment.scale_type must be 'short' or 'long', got "
                             f"{self.augment.scale_type!r}")
        if not 0 < self.augment.min_scale <= self.augment.max_scale:
            raise ValueError("augment: need 0 < min_scale <= max_scale")
        if not 0.0 <= self.augment.flip_probability <= 1.0:
            raise ValueError("augment.flip_probability must be in [0, 1]")
        if self.loss.ae_loss_type != "exp":
            raise ValueError(f"loss.ae_loss_type: only 'exp' is implemented, got "
                             f"{self.loss.ae_loss_type!r}")
        if len(self.loss.heatmap_factors) != 2:
            raise ValueError("loss.heatmap_factors needs two values: [stride 4, stride 2]")
        if self.optim.optimizer.lower() != "adam":
            raise ValueError(f"optim.optimizer: only 'adam' is implemented, got "
                             f"{self.optim.optimizer!r}")
        if self.optim.epochs <= 0 or self.optim.batch_size <= 0 or self.optim.lr <= 0:
            raise ValueError("optim.epochs, optim.batch_size and optim.lr must be positive")
        if sorted(self.optim.lr_steps) != list(self.optim.lr_steps):
            raise ValueError("optim.lr_steps must be increasing")
        if self.data.sigma <= 0 or self.data.max_people <= 0 or self.data.repeat <= 0:
            raise ValueError("data.sigma, data.max_people and data.repeat must be positive")

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
            raise ValueError(f"unknown configuration section(s) {sorted(unknown)}; "
                             f"known: {sorted(sections)}")
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
