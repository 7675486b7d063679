"""``litepose finetune LABELS [LABELS ...]``: fine-tune the bundled model on ``litepose label``
output and export it, ready for the node.

Examples:
  litepose finetune ~/labels/my_robot --output runs/my_robot
  litepose finetune ~/labels/lab ~/labels/corridor --backgrounds ~/empty_lab --epochs 60
  litepose finetune ~/labels/my_robot --output runs/my_robot --resume   # continue a stopped run
"""

from __future__ import annotations

import argparse
from pathlib import Path

from litepose_ros.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from litepose_ros.training.finetune import DEFAULT_EXPORT_SIZE, FinetuneOptions

    defaults = FinetuneOptions(label_dirs=(Path("."),), output=Path("."))
    parser.description = __doc__.split("\n\n")[0].strip("`")
    parser.add_argument(
        "labels", type=Path, nargs="+", help="output folders of `litepose label` (each with its labels.json)"
    )
    parser.add_argument(
        "--output", type=Path, default=Path("runs/finetune"), help="run folder (default: runs/finetune)"
    )
    parser.add_argument(
        "--init-checkpoint",
        type=Path,
        help="checkpoint to start from (default: the bundled model's, litepose_default.pth)",
    )
    parser.add_argument(
        "--backgrounds", type=Path, help="folder of person-free images of the same place, as negatives"
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help=f"default {defaults.epochs}")
    parser.add_argument(
        "--samples-per-epoch",
        type=int,
        default=defaults.samples_per_epoch,
        help=f"default {defaults.samples_per_epoch}",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=defaults.val_fraction,
        help="share of each recording's last frames held out to choose the best epoch "
        f"(default {defaults.val_fraction}; 0: none, the last epoch is exported)",
    )
    parser.add_argument(
        "--input-size",
        type=int,
        default=defaults.input_size,
        help=f"training crop side (default {defaults.input_size})",
    )
    parser.add_argument(
        "--export-size",
        type=int,
        default=DEFAULT_EXPORT_SIZE,
        help="network input short side of validation and of the exported model, a multiple of 64 "
        f"(default {DEFAULT_EXPORT_SIZE})",
    )
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--device", default=defaults.device, help="cpu, cuda, cuda:1 or auto (default)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="data-loading processes")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output where it stopped")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (for log files)")


def run(args: argparse.Namespace) -> int:
    try:
        from litepose_ros.model.checkpoint import load_checkpoint
        from litepose_ros.model.onnx_export import export_onnx
        from litepose_ros.training.finetune import MODEL_FILE, FinetuneOptions, finetune_config, write_split
        from litepose_ros.training.trainer import BEST, LATEST, Trainer
    except ImportError as error:
        raise UserError(f"finetune needs the training extras (requirements/train.txt): {error}") from error
    from litepose_ros.cli.train import train_to_the_end
    from litepose_ros.weights import DEFAULT_CHECKPOINT_NAME, WEIGHTS_DIR

    output = args.output.expanduser()
    if (output / LATEST).exists() and not args.resume:
        raise UserError(
            f"{output} holds a run already: add --resume to continue it, or choose another --output"
        )
    init = (args.init_checkpoint or WEIGHTS_DIR / DEFAULT_CHECKPOINT_NAME).expanduser()
    if not init.is_file():
        raise UserError(f"the starting checkpoint {init} does not exist (--init-checkpoint)")
    if args.backgrounds is not None and not args.backgrounds.is_dir():
        raise UserError(f"--backgrounds {args.backgrounds} is not a folder")
    try:
        options = FinetuneOptions(
            label_dirs=tuple(args.labels),
            output=output,
            init_checkpoint=init,
            backgrounds=args.backgrounds,
            epochs=args.epochs,
            samples_per_epoch=args.samples_per_epoch,
            val_fraction=args.val_fraction,
            input_size=args.input_size,
            export_size=args.export_size,
            batch_size=args.batch_size,
            device=args.device,
            threads=args.threads,
            workers=args.workers,
        )
        _, start = load_checkpoint(init)
        if start.variant is None or start.layout_name is None:
            raise ValueError(
                f"{init} is not a released LitePose variant with a known layout: train it with a "
                "recipe instead (`litepose train`, docs/training.md)"
            )
        split = write_split(options)
        config = finetune_config(options, split, init, start.variant, start.layout_name)
        trainer = Trainer(config, resume=args.resume, progress=not args.no_progress)
    except (FileNotFoundError, ValueError, TypeError) as error:
        raise UserError(str(error)) from error
    trained = sum(count for *_, count in split.train)
    print(
        f"fine-tuning {start.variant} from {init.name} on {trained} labelled images "
        f"({', '.join(f'{name}: {count}' for name, _, count in split.train)}); "
        + (f"{split.val_images} held out to choose the best epoch" if split.val else "no validation images")
    )
    train_to_the_end(trainer, resumed=args.resume)

    chosen = output / BEST if (output / BEST).is_file() else output / LATEST
    model, _ = load_checkpoint(chosen, img_size=options.export_size)
    _, result = export_onnx(model, output / MODEL_FILE, input_size=options.export_size)
    print(result.summary())
    model_path = (output / MODEL_FILE).resolve()
    print(
        f"exported {chosen.name} to {model_path}\n"
        f"try it:  litepose infer <image or video> --model {model_path}\n"
        f"run it:  ros2 launch litepose_ros litepose.launch.py model:={model_path}"
    )
    return 0 if result.checker_ok else 1
