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
        "deconv-as-conv), all, none, or a comma-separated list of "
        + ", ".join(REWRITES)
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
    int8 = parser.add_argument_group(
        "INT8 (static QDQ, per-channel weights; see docs/model.md)",
        "With --int8 the file written is the INT8 model, and only when its AP on --accuracy-set drops "
        "by at most --max-ap-drop against the FP32 export (or with --force).",
    )
    int8.add_argument("--int8", action="store_true", help="quantise to INT8 (QDQ) after exporting")
    int8.add_argument(
        "--calibration",
        type=Path,
        default=None,
        help="calibration frames from your own footage: an image, a folder of images or a "
        "rosbag2 bag (needed with --int8)",
    )
    int8.add_argument(
        "--calibration-frames",
        type=int,
        default=64,
        help="at most this many frames, spread over the source (default 64)",
    )
    int8.add_argument(
        "--int8-activations",
        choices=("int8", "uint8"),
        default="int8",
        help="activation scheme: int8, symmetric (default; what TensorRT on Jetson needs) or "
        "uint8, asymmetric (ONNX Runtime's fast path on x86 CPUs)",
    )
    int8.add_argument(
        "--accuracy-set",
        type=Path,
        default=None,
        help="annotated COCO-format json to compare INT8 with FP32 on (needed with --int8 unless --force)",
    )
    int8.add_argument(
        "--accuracy-images",
        type=Path,
        default=None,
        help="the images of --accuracy-set (default: the folder holding the json)",
    )
    int8.add_argument(
        "--accuracy-max-images", type=int, default=None, help="evaluate on the first this many images only"
    )
    int8.add_argument(
        "--max-ap-drop",
        type=float,
        default=0.01,
        help="refuse to write the INT8 model when its AP is lower than FP32's by more than "
        "this (default 0.01)",
    )
    int8.add_argument(
        "--force",
        action="store_true",
        help="write the INT8 model even when the accuracy check fails or is not run",
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
    if args.int8:
        _check_int8_arguments(args)
    try:
        model, info = load_checkpoint(
            args.checkpoint,
            variant=args.variant,
            num_joints=args.num_joints,
            trusted=args.trust_checkpoint,
            img_size=args.input_size,
        )
        print(f"loaded {info.describe()}" + (f" ({'; '.join(info.notes)})" if info.notes else ""))
        proto, result = export_onnx(
            model,
            None if args.int8 else args.output,
            input_size=args.input_size,
            opset=args.opset,
            fp16=args.fp16,
            fold=not args.no_fold,
            dynamic=not args.static,
            rewrites=args.rewrites,
        )
    except (ValueError, TypeError) as error:
        raise UserError(str(error)) from error
    if args.int8:
        return _write_int8(args, proto)
    print(result.summary())
    print(f"file size: {result.size_bytes} bytes ({result.size_bytes / 1e6:.2f} MB)")
    return 0 if result.checker_ok else 1


def _check_int8_arguments(args: argparse.Namespace) -> None:
    if args.fp16:
        raise UserError("--int8 and --fp16 exclude each other")
    if args.calibration is None:
        raise UserError("--int8 needs --calibration (an image, a folder of images or a bag of your footage)")
    if args.accuracy_set is None and not args.force:
        raise UserError(
            "--int8 needs --accuracy-set (an annotated COCO json) to check the INT8 model "
            "against FP32; --force writes it unchecked"
        )
    if args.max_ap_drop < 0:
        raise UserError(f"--max-ap-drop must be >= 0, got {args.max_ap_drop}")


def _write_int8(args: argparse.Namespace, fp32) -> int:
    from litepose_ros.model.quantize import calibration_frames, check_accuracy, quantize_int8, record_accuracy

    try:
        frames = calibration_frames(args.calibration, args.calibration_frames)
        print(f"calibrating on {len(frames)} frame(s) from {args.calibration}")
        int8 = quantize_int8(
            fp32, frames, calibration_source=args.calibration.name, activations=args.int8_activations
        )
    except (ValueError, FileNotFoundError) as error:
        raise UserError(f"INT8 quantisation failed: {error}") from error
    if args.accuracy_set is not None:
        images = args.accuracy_images or args.accuracy_set.parent
        try:
            check = check_accuracy(
                fp32,
                int8,
                args.accuracy_set,
                images,
                max_drop=args.max_ap_drop,
                max_images=args.accuracy_max_images,
            )
        except (ValueError, FileNotFoundError) as error:
            raise UserError(f"the accuracy check failed to run: {error}") from error
        print(check.report())
        record_accuracy(int8, check)
        if not check.passed and not args.force:
            raise UserError(
                f"refusing to write {args.output}: the INT8 model loses {check.drop:.4f} AP "
                f"(FP32 {check.ap_fp32:.4f}, INT8 {check.ap_int8:.4f}; allowed "
                f"{args.max_ap_drop:.4f}). Calibrate on more representative footage, or "
                "--force to write it anyway"
            )
        if not check.passed:
            print("writing it anyway (--force)")
    else:
        print("accuracy not checked (--force without --accuracy-set)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    data = int8.SerializeToString()
    args.output.write_bytes(data)
    print(f"wrote {args.output} (INT8 QDQ, {len(data) / 1e6:.2f} MB)")
    return 0
