"""``litepose infer`` on real files: images, folders and a video, with a model of known outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from synthetic_onnx import draw_blob, write_blob_model

from litepose_ros.cli import main as litepose
from litepose_ros.cli.infer import image_ids

IMAGES = Path(__file__).resolve().parent / "fixtures" / "images"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return write_blob_model(tmp_path_factory.mktemp("model") / "blob.onnx", input_size=128)


def blob_image(centres: list[tuple[float, float]], size=(200, 300)) -> np.ndarray:
    image = np.zeros(size + (3,), np.uint8)
    for i, centre in enumerate(centres):
        draw_blob(image, centre, 6.0, green=0.4 * i)
    return image


def test_folder_of_images(model, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    truth = {"000000000139.jpg": [(60.4, 80.2)], "000000000285.png": [(50.0, 50.0), (220.5, 140.3)]}
    for name, centres in truth.items():
        cv2.imwrite(str(folder / name), blob_image(centres), [cv2.IMWRITE_JPEG_QUALITY, 98])
    (folder / "notes.txt").write_text("not an image")
    output = tmp_path / "out"
    assert litepose(["infer", str(folder), "--model", str(model), "--output", str(output), "--fast"]) == 0

    results = json.loads((output / "results.json").read_text())
    images = json.loads((output / "images.json").read_text())
    assert sorted(i["id"] for i in images) == [139, 285]  # numeric names are COCO ids
    assert {i["file_name"] for i in images} == set(truth)
    assert all((i["width"], i["height"]) == (300, 200) for i in images)
    by_id = {139: [], 285: []}
    for entry in results:
        assert entry["category_id"] == 1 and len(entry["keypoints"]) == 17 * 3
        assert 0 < entry["score"] <= 1.01
        by_id[entry["image_id"]].append(np.array(entry["keypoints"]).reshape(17, 3))
    for image_id, name in ((139, "000000000139.jpg"), (285, "000000000285.png")):
        found = sorted(by_id[image_id], key=lambda k: k[0, 0])
        assert len(found) == len(truth[name])
        for keypoints, centre in zip(found, sorted(truth[name]), strict=True):
            np.testing.assert_allclose(keypoints[:, :2], np.broadcast_to(centre, (17, 2)), atol=2.0)
    for name in truth:  # annotated copies, same names, with the skeleton drawn
        annotated = cv2.imread(str(output / name))
        assert annotated.shape == (200, 300, 3)
        assert np.abs(annotated.astype(int) - cv2.imread(str(folder / name)).astype(int)).max() > 50
    assert not (output / "notes.txt").exists()


def test_single_real_image_with_flip(model, tmp_path):
    source = tmp_path / "street.jpg"
    shutil.copy(IMAGES / "vtest_0200_small.jpg", source)
    output = tmp_path / "out"
    assert (
        litepose(
            ["infer", str(source), "--model", str(model), "-o", str(output), "--flip", "--threshold", "0"]
        )
        == 0
    )
    images = json.loads((output / "images.json").read_text())
    assert images == [{"id": 1, "file_name": "street.jpg", "width": 384, "height": 288}]
    assert cv2.imread(str(output / "street.jpg")).shape == (288, 384, 3)
    assert isinstance(json.loads((output / "results.json").read_text()), list)


def test_video(model, tmp_path):
    video = tmp_path / "walk.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (256, 160))
    assert writer.isOpened()
    xs = [40.0, 80.0, 120.0, 160.0, 200.0]
    for x in xs:
        writer.write(blob_image([(x, 80.0)], size=(160, 256)))
    writer.release()
    output = tmp_path / "out"
    assert litepose(["infer", str(video), "--model", str(model), "-o", str(output), "--no-flip"]) == 0

    results = json.loads((output / "results.json").read_text())
    assert sorted(r["image_id"] for r in results) == [0, 1, 2, 3, 4]  # frame indices
    for entry in results:
        nose = entry["keypoints"][:2]
        np.testing.assert_allclose(nose, [xs[entry["image_id"]], 80.0], atol=2.5)
    capture = cv2.VideoCapture(str(output / "walk_pose.mp4"))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames == 5


def test_image_ids():
    assert image_ids([Path("000000000139.jpg"), Path("7.png")]) == [139, 7]
    assert image_ids([Path("a.jpg"), Path("17.jpg")]) == [1, 2]
    assert image_ids([Path("01.jpg"), Path("1.png")]) == [1, 2]  # equal numbers: positions


def test_user_errors(model, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    assert litepose(["infer", str(tmp_path / "missing.jpg"), "--model", str(model)]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "clip.gif").write_bytes(b"GIF89a")
    assert litepose(["infer", str(tmp_path / "clip.gif"), "--model", str(model)]) == 2
    assert "neither an image" in capsys.readouterr().err
    assert litepose(["infer", str(folder), "--model", str(model), "-o", str(tmp_path / "o")]) == 2
    assert "holds no images" in capsys.readouterr().err
    assert litepose(["infer", str(folder), "--model", str(model), "-o", str(folder)]) == 2
    assert "replace the originals" in capsys.readouterr().err
    assert litepose(["infer", str(folder), "--model", str(tmp_path / "none.onnx")]) == 2
    assert "model file" in capsys.readouterr().err
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    assert litepose(["infer", str(folder), "--model", str(model), "-o", str(tmp_path / "o")]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert (
        litepose(
            [
                "infer",
                str(folder / "broken.jpg"),
                "--model",
                str(model),
                "--input-size",
                "100",
                "-o",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "multiple of 16" in capsys.readouterr().err


def test_ctrl_c_while_the_command_loads_or_runs_exits_130_without_a_traceback(model, tmp_path, monkeypatch):
    import importlib

    from litepose_ros.cli import infer

    real_import = importlib.import_module

    def interrupted_import(name, *args):
        if name == "litepose_ros.cli.infer":
            raise KeyboardInterrupt  # as Ctrl-C during its imports (torch, rclpy: seconds)
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", interrupted_import)
    assert litepose(["infer", str(tmp_path), "--model", str(model)]) == 130
    monkeypatch.setattr(importlib, "import_module", real_import)

    def interrupted_run(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(infer, "run", interrupted_run)
    assert litepose(["infer", str(tmp_path), "--model", str(model)]) == 130
