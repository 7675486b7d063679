"""``litepose bench card``: a model card's measured block, from real evaluations of a known-output model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import pytest
from synthetic_onnx import write_blob_model, write_blob_set

from litepose_ros.benchmarks.model_card import CARD_BEGIN, CARD_END, summarise_training_log
from litepose_ros.cli import main as litepose
from litepose_ros.estimator import Estimator
from litepose_ros.evaluation import evaluate_estimator

# Blob people per image: (x, y) centres; the blob model puts all 17 joints of a person there.
PEOPLE = {1: [(60.0, 70.0), (220.0, 120.0)], 2: [(150.0, 100.0)]}


@pytest.fixture(scope="module")
def blob_set(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(model, annotation file, image folder) where the model's predictions equal the ground truth
    for every person but the last, whose ground truth is moved 15 px away."""
    folder = tmp_path_factory.mktemp("blob_set")
    dataset = write_blob_set(folder, PEOPLE)
    dataset["annotations"][-1]["keypoints"] = [150.0 + 15.0, 100.0, 2] * 17
    (folder / "people.json").write_text(json.dumps(dataset))
    return write_blob_model(folder / "blob.onnx", input_size=128), folder / "people.json", folder


def _card(path: Path, before: str = "# Card\n\nhand-written\n\n", after: str = "\n\nmore prose\n") -> Path:
    path.write_text(f"{before}{CARD_BEGIN}\nold numbers\n{CARD_END}{after}")
    return path


def _table_rows(text: str, first_cell_start: str) -> dict[str, list[str]]:
    """Markdown table rows whose first cell starts so, keyed by their second cell."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| " + first_cell_start):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[1]] = cells[2:]
    return rows


def test_card_block_holds_the_measured_metrics_and_keeps_the_text_around(blob_set, tmp_path):
    model, annotations, images = blob_set
    card = _card(tmp_path / "README.md")
    examples = tmp_path / "examples.png"
    assert (
        litepose(
            [
                "bench",
                "card",
                "--model",
                str(model),
                "--no-checkpoint",
                "--set",
                "blobs",
                str(annotations),
                str(images),
                "--card",
                str(card),
                "--examples",
                str(examples),
                "--sweep-sizes",
                "96",
                "128",
                "--no-progress",
            ]
        )
        == 0
    )

    text = card.read_text()
    assert text.startswith("# Card\n\nhand-written\n\n" + CARD_BEGIN)
    assert text.endswith(CARD_END + "\n\nmore prose\n")
    assert "old numbers" not in text
    rows = _table_rows(text, "blobs (")
    assert set(rows) == {"flip test", "no flip test (the node's default)"}
    for flip_test, label in ((True, "flip test"), (False, "no flip test (the node's default)")):
        expected = evaluate_estimator(
            Estimator.from_model(model, flip_test=flip_test), annotations, images, progress=False
        )["metrics"]
        assert rows[label][:3] == [f"{expected[name]:.3f}" for name in ("AP", "AP50", "AP75")]
        # Two of the three people are found where the ground truth is, the third is 15 px off it
        # (OKS ~0.02): recall 2/3 at every threshold, 0.663 on COCO's 101-point precision curve.
        assert expected["AP"] == pytest.approx(0.663, abs=0.001)
    assert "(2 images, 3 people)" in text
    sweep = _table_rows(text, "blobs |")
    assert set(sweep) == {"96", "**128** (the model's)"}
    assert sweep["**128** (the model's)"][0] == rows["no flip test (the node's default)"][0]
    expected_96 = evaluate_estimator(
        Estimator.from_model(model, flip_test=False, input_size=96), annotations, images, progress=False
    )["metrics"]
    assert sweep["96"] == [f"{expected_96[name]:.3f}" for name in ("AP", "AP50", "AR")]
    picture = cv2.imread(str(examples))
    assert picture is not None and picture.shape[0] == 2 * (300 + 6)  # one row per image, both images


def test_duplicated_people_are_counted_as_ignore_regions(blob_set, tmp_path):
    model, annotations, images = blob_set
    dataset = json.loads(annotations.read_text())
    copy = dict(dataset["annotations"][0], id=99, image_id=2)  # image 1's first person, verbatim in image 2
    dataset["annotations"].append(copy)
    duplicated = tmp_path / "duplicated.json"
    duplicated.write_text(json.dumps(dataset))
    card = _card(tmp_path / "README.md")
    assert (
        litepose(
            [
                "bench",
                "card",
                "--model",
                str(model),
                "--no-checkpoint",
                "--set",
                "blobs",
                str(duplicated),
                str(images),
                "--card",
                str(card),
                "--examples",
                str(tmp_path / "e.png"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "(2 images, 2 people, 2 ignore regions)" in card.read_text()


def test_card_without_markers_is_refused_and_left_unchanged(blob_set, tmp_path, capsys):
    model, annotations, images = blob_set
    card = tmp_path / "README.md"
    card.write_text("# A card someone wrote by hand\n")
    assert (
        litepose(
            [
                "bench",
                "card",
                "--model",
                str(model),
                "--no-checkpoint",
                "--set",
                "blobs",
                str(annotations),
                str(images),
                "--card",
                str(card),
                "--examples",
                str(tmp_path / "e.png"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert CARD_BEGIN in capsys.readouterr().err
    assert card.read_text() == "# A card someone wrote by hand\n"
    assert not (tmp_path / "e.png").exists()


def test_training_log_summary_counts_up_to_the_snapshot_epoch(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,lr,seconds,val_AP\n1,0.004,50,\n2,0.004,70,\n3,0.004,3600,0.1\n4,0.0004,60,\n")
    assert summarise_training_log(log, 2) == {
        "epochs": 2,
        "hours": pytest.approx(120 / 3600),
        "median_seconds": 60.0,
    }
    whole = summarise_training_log(log, None)
    assert whole["epochs"] == 4 and whole["hours"] == pytest.approx(3780 / 3600)
    with pytest.raises(ValueError, match=re.escape("no epochs up to 0")):
        summarise_training_log(log, 0)


def test_a_file_that_is_no_checkpoint_is_refused_and_the_card_left_unchanged(blob_set, tmp_path, capsys):
    model, annotations, images = blob_set
    card = _card(tmp_path / "README.md")
    before = card.read_text()
    assert (
        litepose(
            [
                "bench",
                "card",
                "--model",
                str(model),
                "--checkpoint",
                str(annotations),
                "--set",
                "blobs",
                str(annotations),
                str(images),
                "--card",
                str(card),
                "--examples",
                str(tmp_path / "e.jpg"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert str(annotations) in capsys.readouterr().err
    assert card.read_text() == before
