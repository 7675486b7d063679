"""The `variant` the user asks for is checked even for an ONNX file without the project's metadata:
from the graph's convolution weights, or refused with the reason it cannot be checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from litepose_ros.engine import create_engine


def _stripped_bundled_model(tmp_path: Path) -> Path:
    """The bundled XS model with its litepose.* metadata removed (as a third-party tool may save it)."""
    onnx = pytest.importorskip("onnx")
    from litepose_ros.weights import default_model_path

    proto = onnx.load(str(default_model_path()))
    del proto.metadata_props[:]
    path = tmp_path / "stripped.onnx"
    onnx.save(proto, str(path))
    return path


def test_variant_of_a_model_without_metadata_is_checked_from_its_graph(tmp_path):
    path = _stripped_bundled_model(tmp_path)
    with pytest.raises(ValueError, match=r"no litepose\.\* metadata.*graph.*variant XS.*not the requested S"):
        create_engine(path, variant="S")
    assert create_engine(path, variant="XS").num_joints == 17
    assert create_engine(path).num_joints == 17  # no variant asked: nothing to check


def test_variant_that_cannot_be_checked_is_refused_with_the_reason(tmp_path, monkeypatch):
    import builtins

    path = _stripped_bundled_model(tmp_path)
    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(ValueError, match=r"cannot check.*variant S.*no litepose\.\* metadata.*variant:=auto"):
        create_engine(path, variant="S")


@pytest.mark.torch
def test_variant_of_an_export_without_rewrites_and_metadata_is_checked_too(tmp_path):
    # The bundled file carries the export rewrites (deconvolutions as convolutions); an export of the
    # network's plain graph holds fewer kernel elements and must be recognised as well.
    import onnx

    from litepose_ros.model.checkpoint import load_checkpoint
    from litepose_ros.model.onnx_export import export_onnx
    from litepose_ros.weights import DEFAULT_CHECKPOINT_NAME, WEIGHTS_DIR

    model, _ = load_checkpoint(WEIGHTS_DIR / DEFAULT_CHECKPOINT_NAME)
    proto, _ = export_onnx(model, None, input_size=128, rewrites=())
    del proto.metadata_props[:]
    path = tmp_path / "plain.onnx"
    onnx.save(proto, str(path))
    assert create_engine(path, variant="XS").num_joints == 17
    with pytest.raises(ValueError, match=r"variant XS.*not the requested M"):
        create_engine(path, variant="M")
