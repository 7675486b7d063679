"""litepose finetune: the held-out split by recording order, the recipe, and the command end to end
(bundled checkpoint in, a model the estimator runs out, resume, refusals)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from litepose_ros.training.finetune import FinetuneOptions, finetune_config, held_out_images, write_split

COCO_DIR = Path(__file__).parent / "fixtures" / "real_fixtures" / "coco"


def image(image_id: int, source: str, time=None, frame_index=None) -> dict:
    return {
        "id": image_id,
        "file_name": f"{image_id}.jpg",
        "source": source,
        "time": time,
        "frame_index": frame_index,
    }


def test_the_last_frames_of_each_recording_are_held_out():
    dataset = {
        "images": [
            # ids do not follow recording order: time does
            *(
                image(i, "a.mcap", time=t)
                for i, t in zip(range(1, 11), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0], strict=True)
            ),
            *(
                image(i, "b.mp4", frame_index=f)
                for i, f in zip(range(11, 16), [40, 0, 10, 30, 20], strict=True)
            ),
            image(16, "single.jpg"),  # a recording of one image keeps it for training
        ]
    }
    assert held_out_images(dataset, 0.2) == {1, 2, 11}
    assert held_out_images(dataset, 0.5) == {1, 2, 3, 4, 5, 11, 14, 15}
    assert held_out_images(dataset, 0.0) == set()


def label_folder(root: Path, name: str, file_names: list[str]) -> Path:
    """A `litepose label`-style folder: frames/ with real images, labels.json with their people."""
    source = json.loads((COCO_DIR / "test_coco.json").read_text())
    folder = root / name
    (folder / "frames").mkdir(parents=True)
    chosen = [i for i in source["images"] if i["file_name"] in file_names]
    images, annotations = [], []
    for number, info in enumerate(chosen, start=1):
        shutil.copy(COCO_DIR / info["file_name"], folder / "frames" / info["file_name"])
        images.append(
            {
                "id": number,
                "file_name": f"frames/{info['file_name']}",
                "width": info["width"],
                "height": info["height"],
                "source": f"{name}.mcap",
                "frame_index": 10 * number,
                "time": 0.5 * number,
            }
        )
        annotations += [
            dict(a, image_id=number, id=len(annotations) + k + 1)
            for k, a in enumerate(a for a in source["annotations"] if a["image_id"] == info["id"])
        ]
    (folder / "labels.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": source["categories"]})
    )
    return folder


FILES = sorted(p.name for p in COCO_DIR.glob("*.jpg"))


def test_split_files_cover_every_image_once_with_absolute_paths(tmp_path):
    first = label_folder(tmp_path, "lab", FILES[:3])
    second = label_folder(tmp_path, "corridor", FILES[1:])
    options = FinetuneOptions(label_dirs=(first, second), output=tmp_path / "run", val_fraction=0.34)
    split = write_split(options)
    train = {name: json.loads(path.read_text()) for name, path, _ in split.train}
    val = json.loads(split.val.read_text())
    assert [count for *_, count in split.train] == [2, 2] and split.val_images == 2
    # the last frame (time) of each folder is validated on, the others trained on
    assert {Path(i["file_name"]).name for i in val["images"]} == {FILES[2], FILES[3]}
    assert {Path(i["file_name"]).name for i in train["lab"]["images"]} == set(FILES[:2])
    assert {Path(i["file_name"]).name for i in train["corridor"]["images"]} == set(FILES[1:3])
    every = [i for data in (*train.values(), val) for i in data["images"]]
    assert all(Path(i["file_name"]).is_absolute() and Path(i["file_name"]).is_file() for i in every)
    # val merges two folders: ids renumbered, annotations follow their image
    assert len({i["id"] for i in val["images"]}) == 2
    assert {a["image_id"] for a in val["annotations"]} <= {i["id"] for i in val["images"]}
    assert len({a["id"] for a in val["annotations"]}) == len(val["annotations"]) > 0

    config = finetune_config(options, split, tmp_path / "start.pth", "XS", "coco17")
    assert [s.weight for s in config.data.sources] == [2.0, 2.0]
    assert config.optim.lr_steps == [21, 27] and config.optim.epochs == 30
    with_backgrounds = finetune_config(
        replace(options, backgrounds=tmp_path), split, tmp_path / "s.pth", "XS", "coco17"
    )
    weights = [s.weight for s in with_backgrounds.data.sources]
    background = with_backgrounds.data.background_weight
    assert background / (sum(weights) + background) == pytest.approx(0.1)
    assert (
        config.model.eval_input_size == config.model.input_size == 256
        and config.data.val_annotations == str(split.val)
    )


def test_unusable_options_and_folders_are_refused(tmp_path):
    with pytest.raises(ValueError, match="validation fraction"):
        FinetuneOptions(label_dirs=(tmp_path,), output=tmp_path, val_fraction=1.0)
    with pytest.raises(ValueError, match="multiple of 64"):
        FinetuneOptions(label_dirs=(tmp_path,), output=tmp_path, export_size=288)
    with pytest.raises(FileNotFoundError, match="no labels.json.*litepose label"):
        write_split(FinetuneOptions(label_dirs=(tmp_path,), output=tmp_path / "run"))
    empty = label_folder(tmp_path, "empty", FILES[:2])
    labels = json.loads((empty / "labels.json").read_text())
    (empty / "labels.json").write_text(json.dumps(dict(labels, annotations=[])))
    with pytest.raises(ValueError, match="no person is labelled"):
        write_split(FinetuneOptions(label_dirs=(empty,), output=tmp_path / "run"))


@pytest.mark.torch
def test_finetune_command_trains_from_the_bundled_checkpoint_exports_and_resumes(tmp_path, capsys):
    import cv2
    import yaml

    from litepose_ros.cli import main as litepose_main
    from litepose_ros.estimator import Estimator
    from litepose_ros.weights import DEFAULT_CHECKPOINT_NAME, WEIGHTS_DIR

    folder = label_folder(tmp_path, "lab", FILES)
    output = tmp_path / "run"
    arguments = [
        "finetune",
        str(folder),
        "--output",
        str(output),
        "--epochs",
        "2",
        "--samples-per-epoch",
        "4",
        "--batch-size",
        "2",
        "--input-size",
        "64",
        "--export-size",
        "64",
        "--workers",
        "0",
        "--threads",
        "1",
        "--no-progress",
    ]
    assert litepose_main(arguments) == 0
    said = capsys.readouterr().out
    assert "from litepose_default.pth on 3 labelled images" in said and "1 held out" in said
    assert "epoch 2/2" in said and f"model:={(output / 'model.onnx').resolve()}" in said
    recipe = yaml.safe_load((output / "config.yaml").read_text())
    assert recipe["model"]["init_checkpoint"] == str(WEIGHTS_DIR / DEFAULT_CHECKPOINT_NAME)
    estimator = Estimator.from_model(output / "model.onnx")
    assert estimator.input_size == 64
    result = estimator.predict(cv2.imread(str(COCO_DIR / FILES[0])))
    assert result.keypoints.shape[1:] == (17, 3)

    # the run is not overwritten by mistake; --resume continues it (here: nothing left) and exports
    assert litepose_main(arguments) == 2
    assert "holds a run already" in capsys.readouterr().err
    (output / "model.onnx").unlink()
    assert litepose_main([*arguments, "--resume"]) == 0
    assert "nothing to do: 2 of 2 epochs" in capsys.readouterr().out
    assert (output / "model.onnx").is_file()
