"""ONNX export of a LitePose network, with the model facts the inference engine needs as metadata.

The graph has one input ``image`` (float32, N x 3 x H x W, RGB, ImageNet-normalised; batch, height and
width dynamic) and two outputs in the reference order: ``heatmaps_tags_stride4`` (N x 2K x H/4 x W/4, K
heatmaps then K tags) and ``heatmaps_stride2`` (N x K x H/2 x W/2). BatchNorm is folded by default.

``metadata_props`` written (read back by :mod:`litepose_ros.engine` as ``engine.metadata``):
``litepose.variant``, ``litepose.num_joints``, ``litepose.layout`` (``coco17`` / ``crowdpose14`` /
``custom``), ``litepose.input_size`` (nominal short side in pixels), ``litepose.architecture`` (JSON),
``litepose.input_normalisation`` (JSON: channel order, mean, std), ``litepose.outputs``,
``litepose.precision`` (``fp32`` / ``fp16``), ``litepose.bn_folded``, ``litepose.exporter``,
``litepose.rewrites`` (the export-time graph rewrites applied, comma-separated, ``none`` for none;
see :mod:`litepose_ros.model.rewrites`: same outputs within float rounding, cheaper graph).

FP16 export keeps float32 inputs and outputs (Cast nodes at both ends) and stores weights and
activations in float16: half the file size, for GPU / TensorRT execution providers. On the CPU provider
an FP32 model is the right choice (ONNX Runtime's CPU kernels are float32).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from litepose_ros.model.architecture import model_facts
from litepose_ros.model.folding import fold_batch_norm
from litepose_ros.model.network import LitePoseNet
from litepose_ros.model.rewrites import DEFAULT_REWRITES, parse_rewrites, rewritten_for_export

INPUT_NAME = "image"
OUTPUT_NAMES = ("heatmaps_tags_stride4", "heatmaps_stride2")
DEFAULT_OPSET = 17
MIN_OPSET = 13
METADATA_PREFIX = "litepose."


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_onnx` wrote."""

    path: Path | None
    size_bytes: int
    opset: int
    fp16: bool
    folded: bool
    checker_ok: bool
    checker_message: str
    metadata: dict[str, str]

    def summary(self) -> str:
        where = str(self.path) if self.path else "<in memory>"
        return (
            f"wrote {where} ({self.size_bytes / 1e6:.2f} MB, opset {self.opset}, "
            f"{'fp16' if self.fp16 else 'fp32'}, BN {'folded' if self.folded else 'not folded'}, "
            f"variant {self.metadata.get(METADATA_PREFIX + 'variant')}, "
            f"{self.metadata.get(METADATA_PREFIX + 'num_joints')} joints); onnx.checker: "
            f"{'valid' if self.checker_ok else 'INVALID: ' + self.checker_message}"
        )


def model_metadata(
    model: LitePoseNet, input_size: int, fp16: bool, folded: bool, rewrites: tuple[str, ...] = ()
) -> dict[str, str]:
    """The ``litepose.*`` metadata_props for an exported model (see the module docstring)."""
    facts = model_facts(model.spec, model.num_joints, input_size)
    facts.update(
        {
            "precision": "fp16" if fp16 else "fp32",
            "bn_folded": "true" if folded else "false",
            "exporter": f"litepose_ros (torch {torch.__version__})",
            "rewrites": ",".join(rewrites) or "none",
        }
    )
    return {METADATA_PREFIX + key: value for key, value in facts.items()}


def _trace_to_onnx(
    model: torch.nn.Module, sample: torch.Tensor, opset: int, dynamic: bool
) -> onnx.ModelProto:
    dynamic_axes = (
        {
            INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
            OUTPUT_NAMES[0]: {0: "batch", 2: "height_4", 3: "width_4"},
            OUTPUT_NAMES[1]: {0: "batch", 2: "height_2", 3: "width_2"},
        }
        if dynamic
        else None
    )
    buffer = io.BytesIO()
    # The TorchScript exporter handles this static convolutional graph in well under a second; the
    # torch.export-based one takes ~25 s for the same graph, for no gain here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (sample,),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue())


def convert_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Store weights and compute in float16, keeping float32 graph inputs/outputs via Cast nodes."""
    converted = onnx.ModelProto()
    converted.CopyFrom(model)
    graph = converted.graph
    for initializer in graph.initializer:
        if initializer.data_type == TensorProto.FLOAT:
            initializer.CopyFrom(
                numpy_helper.from_array(
                    numpy_helper.to_array(initializer).astype(np.float16), initializer.name
                )
            )
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR and attribute.t.data_type == TensorProto.FLOAT:
                attribute.t.CopyFrom(
                    numpy_helper.from_array(
                        numpy_helper.to_array(attribute.t).astype(np.float16), attribute.t.name
                    )
                )
            if node.op_type == "Cast" and attribute.name == "to" and attribute.i == TensorProto.FLOAT:
                attribute.i = TensorProto.FLOAT16
    for value_info in graph.value_info:
        if value_info.type.tensor_type.elem_type == TensorProto.FLOAT:
            value_info.type.tensor_type.elem_type = TensorProto.FLOAT16

    input_names = {
        value.name for value in graph.input if value.type.tensor_type.elem_type == TensorProto.FLOAT
    }
    output_names = {
        value.name for value in graph.output if value.type.tensor_type.elem_type == TensorProto.FLOAT
    }
    for node in graph.node:
        node.input[:] = [f"{name}_fp16" if name in input_names else name for name in node.input]
        node.output[:] = [f"{name}_fp16" if name in output_names else name for name in node.output]
    casts_in = [
        helper.make_node("Cast", [name], [f"{name}_fp16"], to=TensorProto.FLOAT16, name=f"cast_{name}_fp16")
        for name in sorted(input_names)
    ]
    casts_out = [
        helper.make_node("Cast", [f"{name}_fp16"], [name], to=TensorProto.FLOAT, name=f"cast_{name}_fp32")
        for name in sorted(output_names)
    ]
    nodes = casts_in + list(graph.node) + casts_out
    del graph.node[:]
    graph.node.extend(nodes)
    return converted


def export_onnx(
    model: LitePoseNet,
    path: str | Path | None = None,
    *,
    input_size: int | None = None,
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    fold: bool = True,
    dynamic: bool = True,
    sample_width: int | None = None,
    rewrites: tuple[str, ...] | str | None = DEFAULT_REWRITES,
) -> tuple[onnx.ModelProto, ExportResult]:
    """Export ``model`` to ONNX; write it to ``path`` when given. Returns (model proto, result).

    ``input_size`` is the nominal short side recorded in the metadata (default: the architecture's
    ``img_size``); the traced sample uses it too, but with ``dynamic`` (default) any height/width that
    is a multiple of 16 runs. ``fold`` folds BatchNorm into the convolutions first (recommended).
    ``rewrites``: the export-time graph rewrites (:mod:`litepose_ros.model.rewrites`; names, a
    comma-separated string, ``"all"``, or ``()`` / ``"none"`` for the network's graph as it is).
    The result is validated with ``onnx.checker`` (``full_check``, including shape inference).
    """
    if not isinstance(model, LitePoseNet):
        raise TypeError(
            f"export_onnx expects a LitePoseNet, got {type(model).__name__} (load checkpoints with "
            f"litepose_ros.model.checkpoint.load_checkpoint)"
        )
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    input_size = int(input_size or model.spec.img_size)
    width = int(sample_width or input_size)
    if input_size % 16 or width % 16:
        raise ValueError(f"input size must be a multiple of 16, got {input_size}x{width}")
    if isinstance(rewrites, str) or rewrites is None:
        rewrites = parse_rewrites(rewrites)
    else:
        rewrites = parse_rewrites(",".join(rewrites) or "none")
    already_folded = bool(getattr(model, "is_folded", False))
    network = fold_batch_norm(model) if fold and not already_folded else model
    network = network.eval()
    sample = torch.zeros(1, 3, input_size, width)
    proto = _trace_to_onnx(rewritten_for_export(network, rewrites), sample, opset, dynamic)
    if fp16:
        proto = convert_to_fp16(proto)
    metadata = model_metadata(model, input_size, fp16, folded=fold or already_folded, rewrites=rewrites)
    onnx.helper.set_model_props(proto, metadata)
    proto.doc_string = "LitePose (CVPR 2022) multi-person pose network exported by litepose_ros"
    try:
        onnx.checker.check_model(proto, full_check=True)
        checker_ok, checker_message = True, "valid"
    except onnx.checker.ValidationError as error:
        checker_ok, checker_message = False, str(error).splitlines()[0]
    data = proto.SerializeToString()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    result = ExportResult(
        path=path,
        size_bytes=len(data),
        opset=opset,
        fp16=fp16,
        folded=fold or already_folded,
        checker_ok=checker_ok,
        checker_message=checker_message,
        metadata=metadata,
    )
    return proto, result
