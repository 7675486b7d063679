"""The LitePose network: architectures, the PyTorch module, checkpoints, BN folding, cost, ONNX export.

Importing this package does not import torch: ``architecture`` and ``cost`` are pure Python (the ONNX
inference path uses them), and the torch-side names below are loaded on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from litepose_ros.model.architecture import (
    RELEASED_VARIANTS,
    ArchitectureSpec,
    StageSpec,
    make_divisible,
    released_architecture,
    resolve_architecture,
)
from litepose_ros.model.cost import ModelCost, count_cost

# name -> submodule, imported (with torch) only when the name is used.
_LAZY = {
    "LitePoseNet": "network",
    "build_model": "network",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_state_dict_any": "checkpoint",
    "detect_architecture": "checkpoint",
    "CheckpointInfo": "checkpoint",
    "fold_batch_norm": "folding",
    "export_onnx": "onnx_export",
}

__all__ = [
    "RELEASED_VARIANTS",
    "ArchitectureSpec",
    "ModelCost",
    "StageSpec",
    "count_cost",
    "make_divisible",
    "released_architecture",
    "resolve_architecture",
    "LitePoseNet",
    "build_model",
    "save_checkpoint",
    "load_checkpoint",
    "load_state_dict_any",
    "detect_architecture",
    "CheckpointInfo",
    "fold_batch_norm",
    "export_onnx",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
