"""The project's Estimator over an in-memory PyTorch model, for validation during training.

Validation then runs exactly the inference path users get (preprocessing, engine call, flip
test, decoding), only without writing the weights to a file first.
"""

from __future__ import annotations

from pathlib import Path

import torch

from litepose_ros.decoding import DecoderConfig
from litepose_ros.engine import TorchEngine
from litepose_ros.estimator import Estimator, EstimatorConfig
from litepose_ros.layouts import KeypointLayout


def in_memory_estimator(
    model: torch.nn.Module,
    layout: KeypointLayout,
    input_size: int,
    *,
    flip_test: bool = False,
    decoder: DecoderConfig | None = None,
) -> Estimator:
    """An Estimator that runs ``model`` (a LitePoseNet) as it is, BatchNorm not folded.

    The engine puts the model in eval mode; the caller switches it back to training mode.
    input_size: short side of the network input; decoder: decoding settings (default: the
    reference test pipeline's), flip_test overriding its flip setting.
    """
    device = next(model.parameters()).device
    engine = TorchEngine(model, fold=False, device=str(device), input_size=int(input_size))
    config = EstimatorConfig(
        model_path=Path("<in-memory model>"),
        engine="torch",
        input_size=int(input_size),
        layout=layout.name,
        decoder=(decoder or DecoderConfig()).replace(flip_test=flip_test),
    )
    return Estimator(config, engine=engine)
