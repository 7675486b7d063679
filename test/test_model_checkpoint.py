"""Loading every checkpoint form strictly, recognising variants, and clear mismatch errors."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from litepose_ros.model.architecture import RELEASED_VARIANTS, ArchitectureSpec
from litepose_ros.model.checkpoint import (
    CHECKPOINT_FORMAT,
    detect_architecture,
    load_checkpoint,
    load_state_dict_any,
    save_checkpoint,
)
from litepose_ros.model.network import build_model

pytestmark = pytest.mark.torch

STATE_DICT_LISTS = Path(__file__).resolve().parent / "fixtures" / "state_dicts"


@pytest.fixture(scope="module")
def xs14():
    torch.manual_seed(1)
    model = build_model("XS", 14)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.num_batches_tracked.fill_(7)
    return model


def assert_same_weights(model, reference):
    ours, theirs = model.state_dict(), reference.state_dict()
    assert list(ours) == list(theirs)
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), key


def to_mmpose_name(key: str) -> str:
    """The mmpose port's name of a reference key (written out per module, independent of the loader)."""
    parts = key.split(".")
    if parts[0] == "first":
        if parts[1] in ("0", "1"):
            return f"backbone.first.{parts[1]}.{'conv' if parts[2] == '0' else 'bn'}.{parts[3]}"
        if parts[1] == "2":
            return f"backbone.first.2.conv.{parts[2]}"
        return f"backbone.first.2.bn.{parts[2]}"
    if parts[0] == "stage":
        sub = {"inv": "0", "depth_conv": "1", "point_conv": "2"}[parts[3]]
        inner = "conv" if parts[4] == "0" else "bn"
        return f"backbone.stage.{parts[1]}.{parts[2]}.conv.{sub}.{inner}.{parts[5]}"
    if parts[0] in ("final_refined", "final_raw"):
        layer = {"0": "0.conv", "1": "0.bn", "3": "1.conv"}[parts[3]]
        return f"keypoint_head.{parts[0]}.{parts[1]}.conv.{layer}.{parts[4]}"
    return "keypoint_head." + key


def test_mmpose_name_examples():
    assert to_mmpose_name("stage.2.3.depth_conv.1.running_var") == "backbone.stage.2.3.conv.1.bn.running_var"
    assert to_mmpose_name("first.3.weight") == "backbone.first.2.bn.weight"
    assert to_mmpose_name("final_raw.1.conv.3.weight") == "keypoint_head.final_raw.1.conv.1.conv.weight"


def test_every_checkpoint_form_loads_strictly(tmp_path, xs14):
    state = xs14.state_dict()
    optimizer = torch.optim.Adam(xs14.parameters(), lr=4e-3)
    files = {
        "bare": state,
        "module_prefixed": {"module." + k: v for k, v in state.items()},
        "reference_training": {
            "epoch": 12,
            "model": "pose_litepose",
            "state_dict": {"module." + k: v for k, v in state.items()},
            "best_state_dict": state,
            "perf": np.float64(0.42),
            "optimizer": optimizer.state_dict(),
        },
        "mmpose": {"meta": {"epoch": 3}, "state_dict": {to_mmpose_name(k): v for k, v in state.items()}},
    }
    for form, payload in files.items():
        path = tmp_path / f"{form}.pth"
        torch.save(payload, path)
        state_dict, detected_form = load_state_dict_any(path)
        assert detected_form == form
        model, info = load_checkpoint(path)
        assert (info.source_form, info.variant, info.num_joints) == (form, "XS", 14)
        assert info.spec.img_size == 256
        assert_same_weights(model, xs14)
    _, info = load_checkpoint(tmp_path / "reference_training.pth")
    assert info.extra["epoch"] == 12 and float(info.extra["perf"]) == pytest.approx(0.42)


def test_own_checkpoint_round_trip_with_extras(tmp_path, xs14):
    optimizer = torch.optim.Adam(xs14.parameters(), lr=4e-3)
    path = save_checkpoint(
        tmp_path / "run" / "last.pth", xs14, "XS", 14, epoch=5, optimizer=optimizer.state_dict()
    )
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT
    assert raw["layout"] == "crowdpose14" and raw["variant"] == "XS"
    model, info = load_checkpoint(path)
    assert info.source_form == "litepose_ros"
    assert info.extra["epoch"] == 5 and "param_groups" in info.extra["optimizer"]
    assert info.layout_name == "crowdpose14"
    assert_same_weights(model, xs14)
    assert not list(tmp_path.glob("run/*.tmp")), "atomic save leaves no temporary file"


def test_custom_architecture_checkpoint(tmp_path):
    spec = ArchitectureSpec.from_dict(
        {
            "img_size": 320,
            "input_channel": 8,
            "deconv_setting": [16, 16, 8],
            "backbone_setting": [
                {"num_blocks": 1, "stride": 2, "channel": 8, "block_setting": [[4, 5]]},
                {"num_blocks": 2, "stride": 2, "channel": 16, "block_setting": [[3, 3], [6, 7]]},
                {"num_blocks": 1, "stride": 2, "channel": 24, "block_setting": [[2, 3]]},
                {"num_blocks": 1, "stride": 1, "channel": 32, "block_setting": [[5, 9]]},
            ],
        }
    )
    model = build_model(spec, 5)
    torch.save(model.state_dict(), tmp_path / "bare.pth")
    variant, joints, detected = detect_architecture(model.state_dict(), img_size=320)
    assert (variant, joints, detected) == (None, 5, spec)
    loaded, info = load_checkpoint(tmp_path / "bare.pth", img_size=320)
    assert info.spec == spec and info.variant is None
    assert_same_weights(loaded, model)
    save_checkpoint(tmp_path / "own.pth", model, spec, 5)
    _, info = load_checkpoint(tmp_path / "own.pth")
    assert info.spec == spec  # img_size travels with this project's format


@pytest.mark.parametrize("variant", RELEASED_VARIANTS)
def test_detect_architecture_on_reference_layouts(variant):
    for dataset, joints in (("coco", 17), ("crowdpose", 14)):
        state_dict = {}
        for line in (STATE_DICT_LISTS / f"{variant}_{dataset}.txt").read_text().splitlines():
            key, shape = line.split("\t")
            state_dict[key] = torch.empty(ast.literal_eval(shape), device="meta")
        name, detected_joints, spec = detect_architecture(state_dict)
        assert (name, detected_joints) == (variant, joints)
        assert spec.released_name() == variant


def test_mismatch_errors_name_keys_and_shapes(tmp_path, xs14):
    path = tmp_path / "xs14.pth"
    torch.save(xs14.state_dict(), path)
    with pytest.raises(
        ValueError,
        match=r"shape differences.*final_refined\.0\.conv\.3\.weight.*looks like "
        r"variant XS with 14 joints",
    ):
        load_checkpoint(path, num_joints=17)
    with pytest.raises(ValueError, match="does not fit S"):
        load_checkpoint(path, variant="S")
    broken = dict(xs14.state_dict())
    broken.pop("stage.1.0.inv.0.weight")
    broken["head.extra.weight"] = torch.zeros(1)
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(
        ValueError,
        match=r"1 missing keys: stage\.1\.0\.inv\.0\.weight.*1 unexpected keys: "
        r"head\.extra\.weight",
    ):
        load_checkpoint(tmp_path / "broken.pth", variant="XS")


def test_missing_batch_counters_are_filled(tmp_path, xs14):
    state = {k: v for k, v in xs14.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "no_counters.pth")
    model, info = load_checkpoint(tmp_path / "no_counters.pth")
    assert any("num_batches_tracked" in note for note in info.notes)
    assert torch.equal(
        model.state_dict()["stage.0.0.inv.0.weight"], xs14.state_dict()["stage.0.0.inv.0.weight"]
    )


def test_bad_files_and_arguments(tmp_path, xs14):
    text_file = tmp_path / "notes.pth"
    text_file.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="could not load"):
        load_checkpoint(text_file)
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pth")
    torch.save({"weights": [1, 2]}, tmp_path / "odd.pth")
    with pytest.raises(ValueError, match="none holds a state_dict"):
        load_checkpoint(tmp_path / "odd.pth")
    with pytest.raises(ValueError, match="clash"):
        save_checkpoint(tmp_path / "x.pth", xs14, "XS", 14, state_dict={})
    with pytest.raises(ValueError, match="does not match"):
        save_checkpoint(tmp_path / "x.pth", xs14, "XS", 17)
