"""The training loop: Adam with a multi-step schedule, AMP on CUDA, validation AP, checkpoints
that resume exactly, a CSV log and a PNG plot of the curves.

Output folder:
  config.yaml   the full configuration of the run
  data_sources.txt  per training source: images, people, ignore regions, weight, samples per epoch
  latest.pth    model + optimizer + scaler + epoch + history + RNG states (written every epoch)
  best.pth      the weights with the best validation AP so far (no optimizer state; written
                only when validation is configured)
  log.csv       one row per epoch (losses, learning rate, throughput, validation metrics)
  curves.png    training loss and validation AP per epoch

Exact resume: the data order of epoch e comes from a generator seeded with (seed, e) and the
augmentation of sample i from (seed, e, i), so a run resumed from latest.pth after epoch e
continues exactly as the uninterrupted run would (on the same device and thread count).
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from litepose_ros.decoding.codec import OUTPUT_STRIDES
from litepose_ros.layouts import get_layout
from litepose_ros.model.architecture import resolve_architecture
from litepose_ros.model.checkpoint import load_checkpoint, save_checkpoint
from litepose_ros.model.network import LitePoseNet
from litepose_ros.training.config import TrainConfig
from litepose_ros.training.dataset import KeypointDataset
from litepose_ros.training.loss import LitePoseLoss

LATEST = "latest.pth"
BEST = "best.pth"
LOG = "log.csv"
PLOT = "curves.png"
CONFIG = "config.yaml"
DATA_SOURCES = "data_sources.txt"
LOSS_NAMES = ("total", "heatmap_stride4", "heatmap_stride2", "push", "pull")


def resolve_device(name: str) -> torch.device:
    """ "auto" -> CUDA when available, else CPU; otherwise the named device (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"run.device is {name!r} but CUDA is not available; use 'cpu' or 'auto'")
    return device


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """Multi-step schedule: lr x lr_factor for each milestone <= epoch (epochs count from 0)."""
    steps = sum(1 for milestone in config.optim.lr_steps if epoch >= milestone)
    return config.optim.lr * config.optim.lr_factor**steps


@dataclass
class EpochRecord:
    epoch: int
    lr: float
    losses: dict[str, float]
    images_per_second: float
    seconds: float
    val: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "lr": self.lr,
            "losses": dict(self.losses),
            "images_per_second": self.images_per_second,
            "seconds": self.seconds,
            "val": dict(self.val),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        return cls(
            epoch=int(data["epoch"]),
            lr=float(data["lr"]),
            losses=dict(data["losses"]),
            images_per_second=float(data["images_per_second"]),
            seconds=float(data["seconds"]),
            val=dict(data.get("val") or {}),
        )


def _collate_to_device(
    batch: dict[str, torch.Tensor],
    device: torch.device,
    memory_format: torch.memory_format = torch.contiguous_format,
):
    non_blocking = device.type == "cuda"
    images = batch["image"].to(device, non_blocking=non_blocking, memory_format=memory_format)
    heatmaps = [batch[f"heatmaps_s{s}"].to(device, non_blocking=non_blocking) for s in OUTPUT_STRIDES]
    masks = [batch[f"mask_s{s}"].to(device, non_blocking=non_blocking) for s in OUTPUT_STRIDES]
    joints = batch["joints"].to(device, non_blocking=non_blocking)
    return images, heatmaps, masks, joints


class Trainer:
    """Train a LitePose network as a TrainConfig describes.

    ``resume=True`` continues from ``output_dir/latest.pth`` (an error if there is none).
    ``progress`` shows tqdm bars. Call :meth:`fit`.
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False, progress: bool = True):
        self.config = config
        self.progress = progress
        self.output_dir = Path(config.run.output_dir)
        self.layout = get_layout(config.model.layout)
        # Checkpoints record the inference input size (the estimator's default), not the crop size.
        self.spec = resolve_architecture(config.model.architecture).with_img_size(config.eval_input_size)
        self.device = resolve_device(config.run.device)
        self.use_amp = bool(config.run.amp and self.device.type == "cuda")
        if config.run.threads:
            torch.set_num_threads(int(config.run.threads))
        if self.device.type == "cpu":
            # Tiny gradients must not fall into denormal floats, which are very slow on CPUs.
            torch.set_flush_denormal(True)

        torch.manual_seed(config.run.seed)
        self.model = LitePoseNet(self.spec, self.layout.num_keypoints)
        if config.model.init_checkpoint and not resume:
            self._load_initial_weights(config.model.init_checkpoint)
        self.memory_format = torch.channels_last if config.run.channels_last else torch.contiguous_format
        self.model.to(self.device, memory_format=self.memory_format)
        self.criterion = LitePoseLoss(
            self.layout.num_keypoints,
            config.loss.heatmap_factors,
            config.loss.push_factor,
            config.loss.pull_factor,
        )
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.train_set = KeypointDataset.from_config(config, self.layout)
        if len(self.train_set) < config.optim.batch_size:
            raise ValueError(
                f"the training set has {len(self.train_set)} images, fewer than one batch "
                f"(optim.batch_size = {config.optim.batch_size})"
            )
        self._check_validation_data()
        self.start_epoch = 0
        self.best_ap = -math.inf
        self.history: list[EpochRecord] = []
        if resume:
            self._resume()

    # --- set-up ------------------------------------------------------------------------------------
    def _check_validation_data(self) -> None:
        """Fail before the first epoch, not after it, when the validation files are missing."""
        data = self.config.data
        sets = [("data.val", data.val_annotations, data.val_images)] if data.val_annotations else []
        sets += [(f"data.extra_val {e['name']!r}", e["annotations"], e["images"]) for e in data.extra_val]
        for what, annotation_file, images in sets:
            if not Path(annotation_file).is_file():
                raise FileNotFoundError(
                    f"{what}: validation annotation file {annotation_file} does not exist"
                )
            if not images or not Path(images).is_dir():
                raise FileNotFoundError(f"{what}: validation image folder {images} does not exist")

    def _load_initial_weights(self, path: str) -> None:
        loaded, _ = load_checkpoint(path, variant=self.spec, num_joints=self.layout.num_keypoints)
        self.model.load_state_dict(loaded.state_dict())

    def _resume(self) -> None:
        path = self.output_dir / LATEST
        if not path.is_file():
            raise FileNotFoundError(f"cannot resume: {path} does not exist (start without --resume)")
        loaded, info = load_checkpoint(path, variant=self.spec, num_joints=self.layout.num_keypoints)
        extra = info.extra
        if "optimizer" not in extra or "epoch" not in extra:
            raise ValueError(f"{path} is not a training checkpoint of this trainer (no optimizer/epoch)")
        self.model.load_state_dict(loaded.state_dict())
        self.optimizer.load_state_dict(extra["optimizer"])
        if extra.get("scaler"):
            self.scaler.load_state_dict(extra["scaler"])
        self.start_epoch = int(extra["epoch"]) + 1
        self.best_ap = float(extra.get("best_ap", -math.inf))
        self.history = [EpochRecord.from_dict(record) for record in extra.get("history", [])]
        rng = extra.get("rng") or {}
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])

    def _loader(self, epoch: int) -> torch.utils.data.DataLoader:
        self.train_set.set_epoch(epoch)
        generator = torch.Generator()
        generator.manual_seed(self.config.run.seed * 1_000_003 + epoch)
        workers = int(self.config.run.workers)
        return torch.utils.data.DataLoader(
            self.train_set,
            batch_size=self.config.optim.batch_size,
            shuffle=True,
            drop_last=True,
            generator=generator,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )

    # --- the loop ----------------------------------------------------------------------------------
    def fit(self, epochs: int | None = None) -> list[EpochRecord]:
        """Train up to ``epochs`` (default: optim.epochs) in total and return the history."""
        for _ in self.fit_iter(epochs):
            pass
        return self.history

    def fit_iter(self, epochs: int | None = None) -> Iterator[EpochRecord]:
        """Like :meth:`fit`, yielding each epoch's record once its checkpoint is written."""
        total = int(epochs if epochs is not None else self.config.optim.epochs)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.config.save(self.output_dir / CONFIG)
        (self.output_dir / DATA_SOURCES).write_text(self.train_set.describe_sources() + "\n")
        for epoch in range(self.start_epoch, total):
            record = self.train_epoch(epoch)
            val_every = self.config.run.val_every
            if (
                self.config.data.val_annotations
                and val_every
                and ((epoch + 1) % val_every == 0 or epoch + 1 == total)
            ):
                record.val = self.validate()
            self.history.append(record)
            self._save(epoch)
            self.write_log()
            self.plot()
            self.start_epoch = epoch + 1
            yield record

    def train_epoch(self, epoch: int) -> EpochRecord:
        """One pass over the training set at the scheduled learning rate."""
        lr = learning_rate(self.config, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        sums = dict.fromkeys(LOSS_NAMES, 0.0)
        batches = images_seen = 0
        start = time.perf_counter()
        loader = self._loader(epoch)
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{self.config.optim.epochs}",
            unit="batch",
            disable=not self.progress,
            leave=False,
        )
        for batch in bar:
            images, heatmaps, masks, joints = _collate_to_device(batch, self.device, self.memory_format)
            self.optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp):
                outputs = self.model(images)
            terms = self.criterion(outputs, heatmaps, masks, joints)
            if not torch.isfinite(terms.total):
                raise FloatingPointError(f"loss became {float(terms.total)} at epoch {epoch}; lower optim.lr")
            self.scaler.scale(terms.total).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            values = terms.as_floats()
            for name in LOSS_NAMES:
                sums[name] += values[name]
            batches += 1
            images_seen += images.shape[0]
            bar.set_postfix(loss=f"{sums['total'] / batches:.5f}")
        seconds = time.perf_counter() - start
        losses = {name: value / max(batches, 1) for name, value in sums.items()}
        return EpochRecord(
            epoch=epoch, lr=lr, losses=losses, images_per_second=images_seen / seconds, seconds=seconds
        )

    def validate(self) -> dict[str, float | None]:
        """Validation AP of the current weights on data.val_* and every data.extra_val set
        (decoded exactly as the Estimator does); extra sets' metrics are named <name>_<metric>,
        and "selection" is the mean AP over run.select_by (what best.pth is chosen by)."""
        data = self.config.data
        sets = [
            ("val", data.val_annotations, data.val_images, data.ignore_duplicated_people, data.val_max_images)
        ]
        sets += [
            (
                extra["name"],
                extra["annotations"],
                extra["images"],
                bool(extra.get("ignore_duplicated_people", False)),
                None,
            )
            for extra in data.extra_val
        ]
        metrics: dict[str, float | None] = {}
        for name, annotation_file, images, ignore_duplicates, max_images in sets:
            if not annotation_file:
                continue
            result = self._validate_set(annotation_file, images, ignore_duplicates, max_images)
            metrics.update(result if name == "val" else {f"{name}_{k}": v for k, v in result.items()})
        chosen = [metrics.get("AP" if name == "val" else f"{name}_AP") for name in self.config.run.select_by]
        if chosen and all(ap is not None for ap in chosen):
            metrics["selection"] = float(sum(chosen) / len(chosen))  # type: ignore[arg-type]
        return metrics

    def _validate_set(
        self, annotation_file: str, images: str, ignore_duplicates: bool, max_images: int | None
    ) -> dict[str, float | None]:
        from litepose_ros.evaluation import (
            duplicated_people_as_crowd,
            evaluate_keypoints,
            load_annotations,
            predict_dataset,
        )
        from litepose_ros.training.predictor import in_memory_estimator

        ground_truth = load_annotations(annotation_file)
        if ignore_duplicates:
            ground_truth = duplicated_people_as_crowd(ground_truth)
        was_training = self.model.training
        try:
            estimator = in_memory_estimator(
                self.model, self.layout, self.config.eval_input_size, flip_test=self.config.run.val_flip_test
            )
            predictions, image_ids = predict_dataset(
                estimator, ground_truth, images, max_images=max_images, progress=self.progress
            )
        finally:
            self.model.train(was_training)
        return evaluate_keypoints(
            ground_truth,
            predictions,
            layout=self.layout,
            crowdpose=self.config.data.crowdpose,
            image_ids=image_ids,
        )

    # --- outputs -----------------------------------------------------------------------------------
    def _save(self, epoch: int) -> None:
        record = self.history[-1]
        ap = record.val.get("selection", record.val.get("AP"))
        improved = ap is not None and ap > self.best_ap
        if improved:
            self.best_ap = float(ap)
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        common = {"epoch": epoch, "config": self.config.to_dict(), "val": dict(record.val)}
        save_checkpoint(
            self.output_dir / LATEST,
            self.model,
            self.spec,
            self.layout.num_keypoints,
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict(),
            best_ap=self.best_ap,
            history=[r.to_dict() for r in self.history],
            rng=rng,
            **common,
        )
        if improved:
            save_checkpoint(
                self.output_dir / BEST, self.model, self.spec, self.layout.num_keypoints, **common
            )

    def write_log(self) -> Path:
        """Rewrite log.csv from the history (so a resumed run keeps one consistent file)."""
        val_names = sorted({name for record in self.history for name in record.val})
        path = self.output_dir / LOG
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                [
                    "epoch",
                    "lr",
                    *[f"loss_{n}" for n in LOSS_NAMES],
                    "images_per_second",
                    "seconds",
                    *[f"val_{n}" for n in val_names],
                ]
            )
            for r in self.history:
                writer.writerow(
                    [
                        r.epoch + 1,
                        f"{r.lr:.6g}",
                        *[f"{r.losses[n]:.6g}" for n in LOSS_NAMES],
                        f"{r.images_per_second:.3f}",
                        f"{r.seconds:.1f}",
                        *["" if r.val.get(n) is None else f"{r.val[n]:.4f}" for n in val_names],
                    ]
                )
        return path

    def plot(self) -> Path:
        """Save curves.png: training loss (log scale) and validation AP per epoch."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [r.epoch + 1 for r in self.history]
        fig, (ax_loss, ax_ap) = plt.subplots(1, 2, figsize=(10, 4))
        for name in LOSS_NAMES:  # each term as it enters the total (factors applied)
            ax_loss.plot(epochs, [r.losses[name] for r in self.history], label=name)
        ax_loss.set_yscale("log")
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("training loss")
        ax_loss.legend()
        names = sorted({k for r in self.history for k in r.val if k == "AP" or k.endswith("_AP")})
        for name in names:
            val = [(r.epoch + 1, r.val[name]) for r in self.history if r.val.get(name) is not None]
            if val:
                ax_ap.plot(*zip(*val, strict=True), marker="o", label="val" if name == "AP" else name[:-3])
        if names:
            ax_ap.legend()
        ax_ap.set_ylim(0.0, 1.0)
        ax_ap.set_xlabel("epoch")
        ax_ap.set_ylabel("validation AP")
        ax_ap.grid(alpha=0.3)
        fig.tight_layout()
        path = self.output_dir / PLOT
        fig.savefig(path, dpi=80)
        plt.close(fig)
        return path
