"""The trainer: schedule, exact resume, outputs, and overfitting two real images to a high AP."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from litepose_ros.cli import main as litepose_main
from litepose_ros.model.checkpoint import load_checkpoint
from litepose_ros.training.config import TrainConfig
from litepose_ros.training.trainer import Trainer, learning_rate

pytestmark = pytest.mark.torch

COCO_DIR = Path(__file__).parent / "fixtures" / "real_fixtures" / "coco"


def _square_crops(out_dir: Path, image_ids: tuple[int, ...]) -> Path:
    """Square crops (the short side) of fixture images around their people, with the annotations
    moved along: the estimator then sees exactly the training view (no padding, no resize
    mismatch), which is what an overfitting test needs."""
    data = json.loads((COCO_DIR / "test_coco.json").read_text())
    images, annotations = [], []
    for info in data["images"]:
        if info["id"] not in image_ids:
            continue
        people = [a for a in data["annotations"] if a["image_id"] == info["id"]]
        side = min(info["width"], info["height"])
        centre = np.mean([a["bbox"][0] + a["bbox"][2] / 2 for a in people if a["num_keypoints"]])
        x0 = int(np.clip(round(centre - side / 2), 0, info["width"] - side))
        image = cv2.imread(str(COCO_DIR / info["file_name"]))[:side, x0 : x0 + side]
        cv2.imwrite(str(out_dir / info["file_name"]), image)
        images.append(dict(info, width=side, height=side))
        for ann in people:
            keypoints = np.array(ann["keypoints"], dtype=float).reshape(-1, 3)
            keypoints[:, 0] -= x0
            keypoints[(keypoints[:, 0] < 0) | (keypoints[:, 0] >= side)] = 0
            box = [ann["bbox"][0] - x0, *ann["bbox"][1:]]
            annotations.append(
                dict(
                    ann,
                    keypoints=keypoints.ravel().tolist(),
                    num_keypoints=int((keypoints[:, 2] > 0).sum()),
                    bbox=box,
                )
            )
    path = out_dir / "annotations.json"
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": data["categories"]})
    )
    return path


def _config(tmp_path: Path, annotations: Path, images: Path, **sections) -> TrainConfig:
    base = {
        "model": {"architecture": "XS", "layout": "coco17", "input_size": 64},
        "data": {
            "train_annotations": str(annotations),
            "train_images": str(images),
            "val_annotations": str(annotations),
            "val_images": str(images),
        },
        "optim": {"batch_size": 2, "epochs": 2, "lr_steps": [1]},
        "run": {"workers": 0, "threads": 1, "val_every": 1, "output_dir": str(tmp_path / "run")},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return TrainConfig.from_dict(base)


def test_learning_rate_follows_the_multi_step_schedule():
    config = TrainConfig()
    assert learning_rate(config, 0) == pytest.approx(4e-3)
    assert learning_rate(config, 349) == pytest.approx(4e-3)
    assert learning_rate(config, 350) == pytest.approx(4e-4)
    assert learning_rate(config, 480) == pytest.approx(4e-5)


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    """Two epochs in one go == one epoch, a fresh process-like restart, then the second epoch."""
    straight = _config(tmp_path / "a", COCO_DIR / "test_coco.json", COCO_DIR)
    first = Trainer(straight, progress=False)
    first.fit()

    split = _config(tmp_path / "b", COCO_DIR / "test_coco.json", COCO_DIR)
    Trainer(split, progress=False).fit(epochs=1)
    torch.manual_seed(12345)  # the resumed trainer must not depend on the global RNG state
    resumed = Trainer(split, resume=True, progress=False)
    assert resumed.start_epoch == 1
    resumed.fit()

    for (name, a), b in zip(
        first.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    state_a, state_b = first.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    for key in state_a:
        assert torch.equal(state_a[key]["exp_avg"], state_b[key]["exp_avg"])
    assert [r.losses for r in first.history] == [r.losses for r in resumed.history]
    assert [r.lr for r in resumed.history] == [4e-3, 4e-4]

    # Outputs: log rows for both epochs, a PNG plot, loadable latest and best checkpoints.
    run = Path(split.run.output_dir)
    rows = (run / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and rows[0].startswith("epoch,lr,loss_total")
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model, info = load_checkpoint(run / "best.pth")
    assert info.variant == "XS" and info.num_joints == 17 and "optimizer" not in info.extra
    assert TrainConfig.from_file(run / "config.yaml") == split


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    config = _config(tmp_path, COCO_DIR / "test_coco.json", COCO_DIR)
    with pytest.raises(FileNotFoundError, match="latest.pth does not exist"):
        Trainer(config, resume=True, progress=False)


def test_cli_reports_bad_configurations(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  learning_rate: 0.1\n")
    assert litepose_main(["train", str(bad)]) == 2
    assert "unknown key(s) ['learning_rate'] in section 'optim'" in capsys.readouterr().err


def test_cli_trains_and_resumes(tmp_path, capsys):
    config = _config(tmp_path, COCO_DIR / "test_coco.json", COCO_DIR, run={"val_every": 0})
    path = tmp_path / "recipe.yaml"
    config.save(path)
    output = tmp_path / "cli_run"
    assert litepose_main(["train", str(path), "--epochs", "1", "--output", str(output), "--no-progress"]) == 0
    assert "epoch 1/1: loss" in capsys.readouterr().out
    assert (output / "latest.pth").is_file() and not (output / "best.pth").exists()
    assert (
        litepose_main(
            ["train", str(path), "--epochs", "2", "--output", str(output), "--resume", "--no-progress"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "resuming at epoch 2" in out and "epoch 2/2: loss" in out
    assert len((output / "log.csv").read_text().strip().splitlines()) == 3


def test_trainer_overfits_two_images_to_a_high_ap(tmp_path):
    """A short CPU run on two real images (three people) reaches a high AP through the same
    preprocessing and decoding as the Estimator."""
    images = tmp_path / "images"
    images.mkdir()
    annotations = _square_crops(images, (785, 40083))
    config = _config(
        tmp_path,
        annotations,
        images,
        model={"input_size": 128},
        data={"repeat": 25},
        augment={
            "max_rotation": 0,
            "min_scale": 1,
            "max_scale": 1,
            "max_translate": 0,
            "flip_probability": 0,
        },
        optim={"lr": 2e-2, "lr_steps": [], "epochs": 10},
        run={"val_every": 10},
    )
    trainer = Trainer(config, progress=False)
    history = trainer.fit()  # 250 steps of batch 2
    assert history[-1].losses["total"] < history[0].losses["total"] / 10
    assert history[-1].val["AP"] >= 0.7


def test_extra_validation_sets_are_logged_and_choose_best_by_their_mean_ap(tmp_path):
    annotations = COCO_DIR / "test_coco.json"
    extra = [{"name": "again", "annotations": str(annotations), "images": str(COCO_DIR)}]
    config = _config(
        tmp_path,
        annotations,
        COCO_DIR,
        data={"extra_val": extra},
        run={"select_by": ["val", "again"]},
        optim={"epochs": 1, "lr_steps": []},
    )
    trainer = Trainer(config, progress=False)
    record = trainer.fit()[-1]
    # The same set twice: the extra set's metrics equal the main ones, and so does their mean.
    assert record.val["again_AP"] == pytest.approx(record.val["AP"])
    assert record.val["selection"] == pytest.approx(record.val["AP"])
    header = (tmp_path / "run" / "log.csv").read_text().splitlines()[0]
    assert "val_again_AP" in header and "val_selection" in header
    with pytest.raises(ValueError, match=r"run.select_by names \['nowhere'\]"):
        _config(tmp_path, annotations, COCO_DIR, run={"select_by": ["nowhere"]})
    with pytest.raises(ValueError, match=r"data.extra_val\[0\]: unknown key\(s\) \['imgs'\]"):
        _config(
            tmp_path,
            annotations,
            COCO_DIR,
            data={"extra_val": [{"name": "x", "annotations": "a", "imgs": "b"}]},
        )
    missing = [{"name": "gone", "annotations": str(tmp_path / "none.json"), "images": str(COCO_DIR)}]
    with pytest.raises(FileNotFoundError, match="extra_val 'gone'"):
        Trainer(_config(tmp_path, annotations, COCO_DIR, data={"extra_val": missing}), progress=False)
