"""The model files bundled with the package (ONNX files next to this module, with a README: the model card).

``default_model_path()`` is what the node and the command-line tools use when no model is named.
The default model's PyTorch checkpoint (``DEFAULT_CHECKPOINT_NAME``) sits beside it, for fine-tuning
(``model.init_checkpoint`` of a training recipe) and the PyTorch engine.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent
# The bundled default model; when it is absent, the only .onnx file here is used instead.
DEFAULT_MODEL_NAME = "litepose_default.onnx"
# The checkpoint the default model was exported from.
DEFAULT_CHECKPOINT_NAME = "litepose_default.pth"


def bundled_models() -> list[Path]:
    """Every ONNX model bundled with the package, sorted by name."""
    return sorted(WEIGHTS_DIR.glob("*.onnx"))


def default_model_path() -> Path:
    """Path of the bundled default model; FileNotFoundError with the fix when there is none."""
    preferred = WEIGHTS_DIR / DEFAULT_MODEL_NAME
    if preferred.is_file():
        return preferred
    models = bundled_models()
    if len(models) == 1:
        return models[0]
    if not models:
        raise FileNotFoundError(
            f"no model is bundled in {WEIGHTS_DIR}: name one explicitly (node parameter model_path, "
            f"or the --model option), e.g. an .onnx file written by `litepose export`"
        )
    raise FileNotFoundError(
        f"several models are bundled in {WEIGHTS_DIR} ({', '.join(p.name for p in models)}) and none is "
        f"named {DEFAULT_MODEL_NAME}: name one explicitly (node parameter model_path)"
    )
