"""Architecture descriptions and the network's module names / tensor shapes vs the reference class."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

from litepose_ros.model.architecture import (
    ARCHITECTURES_DIR,
    RELEASED_VARIANTS,
    ArchitectureSpec,
    make_divisible,
    released_architecture,
)
from litepose_ros.model.network import build_model

pytestmark = pytest.mark.torch

STATE_DICT_LISTS = Path(__file__).resolve().parent / "fixtures" / "state_dicts"
JOINTS = {"coco": 17, "crowdpose": 14}


def read_reference_list(variant: str, dataset: str) -> list[tuple[str, tuple[int, ...]]]:
    entries = []
    for line in (STATE_DICT_LISTS / f"{variant}_{dataset}.txt").read_text().splitlines():
        key, shape = line.split("\t")
        entries.append((key, tuple(ast.literal_eval(shape))))
    return entries


@pytest.mark.parametrize("dataset", sorted(JOINTS))
@pytest.mark.parametrize("variant", RELEASED_VARIANTS)
def test_state_dict_keys_and_shapes_equal_reference(variant, dataset):
    reference = read_reference_list(variant, dataset)
    assert len(reference) == 679
    model = build_model(variant, JOINTS[dataset])
    ours = [(key, tuple(value.shape)) for key, value in model.state_dict().items()]
    assert ours == reference


def test_released_files_round_trip_through_spec():
    for name in RELEASED_VARIANTS:
        raw = json.loads((ARCHITECTURES_DIR / f"search-{name}.json").read_text())
        spec = released_architecture(name)
        assert spec.to_dict() == raw
        assert ArchitectureSpec.from_json(spec.to_json()) == spec
        assert spec.released_name() == name


def test_released_table_facts():
    # LITEPOSE.md section 2: stem C, stage channels, head widths.
    expected = {
        "XS": (256, 16, (16, 32, 48, 80), (16, 24, 24)),
        "S": (448, 16, (16, 32, 48, 120), (32, 24, 32)),
        "M": (448, 16, (24, 48, 72, 120), (64, 40, 32)),
        "L": (512, 24, (24, 64, 96, 160), (64, 40, 32)),
    }
    for name, (size, stem, channels, head) in expected.items():
        spec = released_architecture(name.lower())
        assert (spec.img_size, spec.input_channel, spec.stage_channels, spec.deconv_setting) == (
            size,
            stem,
            channels,
            head,
        )
        assert spec.depths == (6, 8, 10, 10)
        assert all(block == (6, 7) for stage in spec.backbone_setting for block in stage.block_setting)


def test_make_divisible_follows_reference_rule():
    assert make_divisible(96) == 96
    assert make_divisible(100) == 104  # int(104) // 8 * 8
    assert make_divisible(3) == 8  # never below the divisor
    assert make_divisible(10) == 16  # 8 would lose more than 10 %
    assert make_divisible(27) == 32  # int(31) // 8 * 8 = 24 < 0.9 * 27, so + 8


def custom_spec_dict() -> dict:
    return {
        "img_size": 192,
        "input_channel": 8,
        "deconv_setting": [16, 8, 12],
        "backbone_setting": [
            {"num_blocks": 1, "stride": 2, "channel": 8, "block_setting": [[3, 3]]},
            {"num_blocks": 2, "stride": 2, "channel": 16, "block_setting": [[4, 5], [2.5, 3]]},
            {"num_blocks": 1, "stride": 2, "channel": 24, "block_setting": [[6, 7]]},
            {"num_blocks": 2, "stride": 1, "channel": 32, "block_setting": [[6, 9], [1, 3]]},
        ],
    }


def test_custom_architecture_builds_and_runs_with_reference_outputs(tmp_path):
    path = tmp_path / "search-custom.json"
    path.write_text(json.dumps(custom_spec_dict()))
    model = build_model(path, 5).eval()
    assert model.spec.released_name() is None
    # Hidden width of the 2.5x block on 16 channels: make_divisible(40) = 40.
    assert model.stage[1][1].inv[0].weight.shape == (40, 16, 1, 1)
    # The 3x block on the 8-channel stem: make_divisible(24) = 24.
    assert model.stage[0][0].inv[0].weight.shape == (24, 8, 1, 1)
    assert model.stage[3][1].depth_conv[0].weight.shape[-1] == 3
    with torch.inference_mode():
        stride4, stride2 = model(torch.randn(2, 3, 64, 96))
    assert stride4.shape == (2, 10, 16, 24)
    assert stride2.shape == (2, 5, 32, 48)


def test_xs_forward_shapes_non_square():
    model = build_model("XS", 14).eval()
    with torch.inference_mode():
        stride4, stride2 = model(torch.randn(1, 3, 128, 192))
    assert stride4.shape == (1, 28, 32, 48)
    assert stride2.shape == (1, 14, 64, 96)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["backbone_setting"][3].update(stride=2), "strides"),
        (lambda d: d["backbone_setting"][1].update(num_blocks=3), "num_blocks is 3"),
        (lambda d: d["backbone_setting"][0]["block_setting"][0].__setitem__(1, 4), "kernel size must be odd"),
        (lambda d: d.pop("deconv_setting"), "missing"),
        (lambda d: d.update(deconv_setting=[16, 8]), "deconv_setting"),
        (lambda d: d.update(img_size=200), "multiple of 16"),
        (lambda d: d.update(extra=1), "unknown keys"),
    ],
)
def test_invalid_architectures_are_rejected_with_clear_errors(change, message):
    data = custom_spec_dict()
    change(data)
    with pytest.raises(ValueError, match=message):
        ArchitectureSpec.from_dict(data)


def test_unknown_variant_and_bad_num_joints():
    with pytest.raises(ValueError, match="released variants"):
        released_architecture("XXL")
    with pytest.raises(ValueError, match="num_joints"):
        build_model("XS", 0)
