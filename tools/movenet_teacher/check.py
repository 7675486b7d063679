"""Check teacher files against the interface `litepose label` expects, and optionally against
reference files (same outputs on the same inputs).

    python check.py DIR [--compare-with REF_DIR] [--images IMG_DIR] [--tolerance 1e-4]

Inputs: up to two photos from --images (letterboxed for multipose at long side 256 and 512 as the
labeller does, a crop around the best detection for thunder) and seeded random noise. Without
--compare-with only the interface and a plausibility check on the photos are run. Exit status 1
on any failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

# name -> (input shape, output shape) of the contract in docs/labelling.md; str = dynamic dim.
CONTRACT = {
    "movenet-multipose.onnx": ([1, "height", "width", 3], [1, 6, 56]),
    "movenet-thunder.onnx": ([1, 256, 256, 3], [1, 1, 17, 3]),
}
# On pedestrian photos a working multipose finds someone well above this box score; a broken
# conversion (wrong weights, channel order, scaling) typically stays near zero.
MIN_PLAUSIBLE_SCORE = 0.3


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # deterministic and kind to a shared machine
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_interface(name: str, sess: ort.InferenceSession) -> list[str]:
    want_in, want_out = CONTRACT[name]
    errors = []
    ins, outs = sess.get_inputs(), sess.get_outputs()
    if [(i.name, i.type) for i in ins] != [("input", "tensor(int32)")]:
        errors.append(f"inputs {[(i.name, i.type) for i in ins]}, expected [('input', 'tensor(int32)')]")
    elif ins[0].shape != want_in:
        errors.append(f"input shape {ins[0].shape}, expected {want_in}")
    if [(o.name, o.type) for o in outs] != [("output_0", "tensor(float)")]:
        errors.append(f"outputs {[(o.name, o.type) for o in outs]}, expected [('output_0', 'tensor(float)')]")
    elif outs[0].shape != want_out:
        errors.append(f"output shape {outs[0].shape}, expected {want_out}")
    return errors


def letterbox(image: np.ndarray, long_side: int) -> np.ndarray:
    """Resize so the long side is `long_side`, paste top-left on black, pad sides to multiples of 32."""
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    nh, nw = round(h * scale), round(w * scale)
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    resized = np.asarray(Image.fromarray(image).resize((nw, nh), resample))
    canvas = np.zeros((-(-nh // 32) * 32, -(-nw // 32) * 32, 3), np.uint8)
    canvas[:nh, :nw] = resized
    return canvas


def crop_around(image: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Square crop of 1.25 x the longer side of `box` (ymin, xmin, ymax, xmax in pixels)."""
    cy, cx = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = 0.625 * max(box[2] - box[0], box[3] - box[1], 8)
    region = (round(cx - half), round(cy - half), round(cx + half), round(cy + half))
    # PIL fills the part of the region outside the image with zeros, as the labeller does.
    crop = Image.fromarray(image).crop(region).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(crop)


def batch(image: np.ndarray) -> np.ndarray:
    return image[None].astype(np.int32)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dir", type=Path)
    parser.add_argument("--compare-with", type=Path, help="folder with reference movenet-*.onnx")
    parser.add_argument("--images", type=Path, help="folder with test photos (*.jpg, *.png)")
    parser.add_argument("--num-images", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max abs difference allowed")
    args = parser.parse_args()

    failures = []
    new, ref = {}, {}
    for name in CONTRACT:
        path = args.dir / name
        if not path.is_file():
            failures.append(f"{path}: missing")
            continue
        new[name] = session(path)
        errors = check_interface(name, new[name])
        failures += [f"{path}: {e}" for e in errors]
        print(f"{path}: interface {'ok' if not errors else 'WRONG'}")
        if args.compare_with:
            ref[name] = session(args.compare_with / name)
    if len(new) < len(CONTRACT):
        return report(failures)

    rng = np.random.default_rng(0)
    multipose_inputs = {"noise 224x320": rng.integers(0, 256, (1, 224, 320, 3), dtype=np.int32)}
    thunder_inputs = {"noise 256x256": rng.integers(0, 256, (1, 256, 256, 3), dtype=np.int32)}
    photos = []
    if args.images:
        photos = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        photos = photos[: args.num_images]
        if not photos:
            failures.append(f"{args.images}: no photos")
    for photo in photos:
        image = np.asarray(Image.open(photo).convert("RGB"))  # the models take RGB
        best_score = 0.0
        for long_side in (256, 512):
            tensor = batch(letterbox(image, long_side))
            h, w = tensor.shape[1:3]
            multipose_inputs[f"{photo.name} L={long_side} {h}x{w}"] = tensor
            rows = new["movenet-multipose.onnx"].run(None, {"input": tensor})[0][0]
            best = rows[np.argmax(rows[:, 55])]
            best_score = max(best_score, float(best[55]))
        # Thunder on a crop around the best person of the last (L=512) run, in image pixels.
        scale = 512 / max(image.shape[:2])
        box = best[51:55] * np.array([h, w, h, w]) / scale
        thunder_inputs[f"{photo.name} crop"] = batch(crop_around(image, box, 256))
        print(f"{photo.name}: best multipose box score {best_score:.3f}")
        if best_score < MIN_PLAUSIBLE_SCORE:
            failures.append(f"{photo.name}: no person found (box score {best_score:.3f}); conversion broken?")

    worst = 0.0
    cases = {"movenet-multipose.onnx": multipose_inputs, "movenet-thunder.onnx": thunder_inputs}
    for name, inputs in cases.items():
        want_out = CONTRACT[name][1]
        for label, tensor in inputs.items():
            out = new[name].run(None, {"input": tensor})[0]
            line = f"{name} {label}: output {list(out.shape)}"
            if list(out.shape) != want_out or not np.isfinite(out).all():
                failures.append(f"{name} {label}: output shape {list(out.shape)} or non-finite values")
            if name in ref:
                diff = float(np.abs(out - ref[name].run(None, {"input": tensor})[0]).max())
                worst = max(worst, diff)
                line += f", max abs difference to reference {diff:.2e}"
                if not diff <= args.tolerance:
                    failures.append(f"{name} {label}: differs from reference by {diff:.2e}")
            print(line)
    if ref:
        print(
            f"max abs difference to {args.compare_with} over all inputs: {worst:.2e} "
            f"(tolerance {args.tolerance:g})"
        )
    return report(failures)


def report(failures: list[str]) -> int:
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    print("check " + ("FAILED" if failures else "passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
