"""``litepose export CHECKPOINT -o OUT.onnx``: convert a checkpoint (any accepted form) to ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path

from litepose_ros.errors import UserError

# The rewrite names, without importing torch for the parser (litepose_ros.model.rewrites has them too).
REWRITES = ("fuse-deconv", "deconv-as-conv", "fuse-outputs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint",
        type=Path,
        help="PyTorch checkpoint: this project's, a bare or module.-prefixed state_dict, the "
        "reference checkpoint.pth.tar, or an mmpose-port file",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="ONNX file to write")
    parser.add_argument(
        "--variant",
        default=None,
        help="XS, S, M, L or an architecture JSON file (default: recognised from the weights)",
    )
    parser.add_argument(
        "--num-joints",
        type=int,
        default=None,
        help="17 (COCO) or 14 (CrowdPose); default: recognised from the weights",
    )
    parser.add_argument(
        "--input-size",
        type=int,
        default=None,
        help="nominal input short side recorded in the metadata (default: the architecture's "
        "img_size); height and width stay dynamic",
    )
    parser.add_argument(
        "--fp16",
        action="store_true",
        help="store weights and compute in float16 (for GPU / TensorRT; inputs and outputs stay float32)",
    )
    parser.add_argument(
        "--rewrites",
        default="default",
        help="export-time graph rewrites, same outputs, cheaper graph: default (fuse-deconv,"
        "deconv-as-conv), all, none, or a comma-separated list of " + ", ".join(REWRITES)
        + " (see docs/model.md)",
    )
    parser.add_argument(
        "--no-rewrites",
        dest="rewrites",
        action="store_const",
        const="none",
        help="export the network's graph as it is (same as --rewrites none)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 13, default 17)")
    parser.add_argument("--no-fold", action="store_true", help="keep BatchNorm layers (default: fold them)")
    parser.add_argument(
        "--static", action="store_true", help="fix height and width to --input-size instead of dynamic axes"
    )
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow checkpoints that need full unpickling (runs code from the file)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        from litepose_ros.model.checkpoint import load_checkpoint
        from litepose_ros.model.onnx_export import export_onnx
    except ImportError as error:
        raise UserError(
            f"export needs the torch and onnx extras (requirements/train.txt): {error}"
        ) from error
    if args.output.suffix.lower() != ".onnx":
        raise UserError(f"output {args.output} should end in .onnx")
    try:
        model, info = load_checkpoint(
            args.checkpoint,
            variant=args.variant,
            num_joints=args.num_joints,
            trusted=args.trust_checkpoint,
            img_size=args.input_size,
        )
        print(f"loaded {info.describe()}" + (f" ({'; '.join(info.notes)})" if info.notes else ""))
        _, result = export_onnx(
            model,
            args.output,
            input_size=args.input_size,
            opset=args.opset,
            fp16=args.fp16,
            fold=not args.no_fold,
            dynamic=not args.static,
            rewrites=args.rewrites,
        )
    except (ValueError, TypeError) as error:
        raise UserError(str(error)) from error
    print(result.summary())
    print(f"file size: {result.size_bytes} bytes ({result.size_bytes / 1e6:.2f} MB)")
    return 0 if result.checker_ok else 1
