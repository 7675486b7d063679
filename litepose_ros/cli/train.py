"""``litepose train CONFIG``: train a LitePose model from a YAML / JSON recipe.

Examples:
  litepose train config/train/xs_crowdpose.yaml
  litepose train config/train/xs_pseudo_people.yaml --resume        # continue from latest.pth
  litepose train my.yaml --output runs/try1 --epochs 20 --device cpu --threads 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from litepose_ros.cli import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[0].strip("`")
    parser.add_argument("config", type=Path, help="training recipe (.yaml / .json), see config/train/")
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUTPUT/latest.pth (exactly where it stopped)"
    )
    parser.add_argument("--output", type=Path, help="output folder (overrides run.output_dir)")
    parser.add_argument("--epochs", type=int, help="total epochs (overrides optim.epochs)")
    parser.add_argument("--batch-size", type=int, help="overrides optim.batch_size")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 or auto (overrides run.device)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (overrides run.threads)")
    parser.add_argument("--workers", type=int, help="data-loading processes (overrides run.workers)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (for log files)")


def run(args: argparse.Namespace) -> int:
    from litepose_ros.training.config import TrainConfig

    try:
        config = TrainConfig.from_file(args.config)
        overrides = {
            ("run", "output_dir"): str(args.output) if args.output else None,
            ("optim", "epochs"): args.epochs,
            ("optim", "batch_size"): args.batch_size,
            ("run", "device"): args.device,
            ("run", "threads"): args.threads,
            ("run", "workers"): args.workers,
        }
        for (section, key), value in overrides.items():
            if value is not None:
                setattr(getattr(config, section), key, value)
        config.validate()
    except (FileNotFoundError, ValueError, TypeError) as error:
        raise UserError(str(error)) from error

    from litepose_ros.training.trainer import Trainer

    try:
        trainer = Trainer(config, resume=args.resume, progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as error:
        raise UserError(str(error)) from error
    train_to_the_end(trainer, resumed=args.resume)
    return 0


def train_to_the_end(trainer, *, resumed: bool) -> None:
    """Run the remaining epochs of a Trainer, a line per epoch, and say where the results are."""
    from litepose_ros.training.trainer import LOG, PLOT

    config = trainer.config
    print(
        f"training {config.model.architecture} ({trainer.layout.name}) on {len(trainer.train_set)} "
        f"samples per epoch, device {trainer.device}, output {trainer.output_dir}"
        + (f", resuming at epoch {trainer.start_epoch + 1}" if resumed else ""),
        flush=True,
    )
    if trainer.start_epoch >= config.optim.epochs:
        print(f"nothing to do: {trainer.start_epoch} of {config.optim.epochs} epochs are done")
        return
    for record in trainer.fit_iter():
        val = f", val AP {record.val['AP']:.4f}" if record.val.get("AP") is not None else ""
        print(
            f"epoch {record.epoch + 1}/{config.optim.epochs}: loss {record.losses['total']:.6f}, "
            f"lr {record.lr:.3g}, {record.images_per_second:.2f} img/s, {record.seconds:.0f} s{val}",
            flush=True,
        )
    print(
        f"done: {trainer.output_dir / LOG}, {trainer.output_dir / PLOT}, best AP "
        f"{f'{trainer.best_ap:.4f}' if trainer.best_ap > -1 else 'n/a'}"
    )
