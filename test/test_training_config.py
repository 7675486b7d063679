"""Training configuration: reference defaults, recipe files, validation of user mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from litepose_ros.training.config import TrainConfig

RECIPES = Path(__file__).resolve().parents[1] / "config" / "train"
INPUT_SIZES = {"xs": 256, "s": 448, "m": 448, "l": 512}


def test_defaults_are_the_reference_recipe():
    config = TrainConfig()
    assert config.optim.lr == 4e-3
    assert config.optim.lr_steps == [350, 480]
    assert config.optim.lr_factor == 0.1
    assert config.optim.epochs == 500
    assert config.optim.batch_size == 16
    assert config.loss.heatmap_factors == [1.0, 1.0]
    assert config.loss.push_factor == config.loss.pull_factor == 0.001
    assert config.loss.ae_loss_type == "exp"
    assert config.data.sigma == 2.0
    assert config.data.max_people == 30
    augment = config.augment
    assert (augment.max_rotation, augment.min_scale, augment.max_scale) == (30, 0.75, 1.5)
    assert config.augment.max_translate == 40
    assert config.augment.flip_probability == 0.5


@pytest.mark.parametrize("variant", ["xs", "s", "m", "l"])
@pytest.mark.parametrize("dataset", ["coco", "crowdpose"])
def test_recipe_files_load_with_the_variant_and_layout(variant, dataset):
    config = TrainConfig.from_file(RECIPES / f"{variant}_{dataset}.yaml")
    assert config.model.architecture == variant.upper()
    assert config.model.input_size == INPUT_SIZES[variant]
    assert config.model.layout == ("coco17" if dataset == "coco" else "crowdpose14")
    assert config.data.crowdpose is (dataset == "crowdpose")
    reference = TrainConfig()
    assert config.optim == reference.optim
    assert config.loss == reference.loss
    assert config.augment == reference.augment


def test_default_model_recipe_loads():
    config = TrainConfig.from_file(RECIPES / "xs_pseudo_people.yaml")
    assert config.model.layout == "coco17"
    assert config.eval_input_size == 384


def test_round_trip_through_yaml_and_json(tmp_path):
    config = TrainConfig.from_file(RECIPES / "xs_crowdpose.yaml")
    for name in ("saved.yaml", "saved.json"):
        config.save(tmp_path / name)
        assert TrainConfig.from_file(tmp_path / name) == config


def test_mistakes_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['lr_step'\] in section 'optim'"):
        TrainConfig.from_dict({"optim": {"lr_step": [1]}})
    with pytest.raises(ValueError, match="unknown configuration section"):
        TrainConfig.from_dict({"optimizer": {}})
    with pytest.raises(ValueError, match="multiple of 32"):
        TrainConfig.from_dict({"model": {"input_size": 250}})
    with pytest.raises(ValueError, match="unknown keypoint layout"):
        TrainConfig.from_dict({"model": {"layout": "hands"}})
    with pytest.raises(ValueError, match="only 'exp'"):
        TrainConfig.from_dict({"loss": {"ae_loss_type": "max"}})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TrainConfig.from_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.toml"
    bad.write_text("x = 1")
    with pytest.raises(ValueError, match=r"\.yaml, \.yml or \.json"):
        TrainConfig.from_file(bad)
