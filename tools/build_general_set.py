#!/usr/bin/env python3
"""Build the general training set (pseudo-labels) into a cache folder outside the work tree.

    python tools/build_general_set.py [--shared ../shared] [--output ../litepose_data/general]

(``make general-data``). Resumable: every labelling step continues where a killed run stopped.
Steps, all with ``litepose label``'s pipeline and the MoveNet teacher in ``<shared>/teachers/movenet``:

1. the teacher's quality on ``real_val`` (real COCO ground truth), without and with known boxes;
2. ``people_pool/images`` (COCO128 with its ground-truth person boxes: every boxed person is
   labelled or ignored);
3. vtest training frames of ``pseudo_people`` (tiles for its small pedestrians), thinned so they
   hold at most ``--vtest-share`` of the labelled people;
4. ``people_pool/backgrounds`` screened with multipose: images where the teacher sees anybody are
   left out of the negatives;
5. the split (a fixed tenth of the pool, by file name, is the validation split), the COCO files
   ``train.json`` / ``val.json`` / ``vtest_train.json`` (``file_name`` relative to the output
   folder), ``backgrounds.txt``, ``summary.json``, and the data card ``docs/general_training_set.md``
   with a picture of labelled samples (``docs/images/general_set_samples.jpg``).

The images stay where they are (research-use licences: never copied into the repository).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from litepose_ros.cli.label import evaluate_labels  # noqa: E402
from litepose_ros.drawing import draw_people  # noqa: E402
from litepose_ros.labelling.pipeline import LabelConfig  # noqa: E402
from litepose_ros.labelling.run import label_inputs  # noqa: E402
from litepose_ros.layouts import COCO_17  # noqa: E402

VAL_TENTH = 0  # pool images whose name hash ends in this digit are the validation split
VTEST_CONFIG = LabelConfig(multipose_sizes=(512, 768), min_person_score=0.2, tiles=2, refine_flip=False)
SCREEN_CONFIG = LabelConfig(multipose_sizes=(256, 512), min_person_score=0.2, refine_passes=0)
SOURCE_PREFIXES = (
    ("coco128_", "COCO128 (COCO train2017, GT boxes)"),
    ("cocomini_", "COCO val2017 extras"),
    ("openpose_", "OpenPose street video"),
    ("intel_one-by-one", "Intel office lobby video"),
    ("intel_preview-", "Intel preview clips"),
    ("intel_asl-", "Intel ASL signers"),
    ("mmpose_demo", "mmpose shopping street"),
    ("vtest_", "vtest.avi (pseudo_people frames)"),
)


def source_of(file_name: str) -> str:
    name = Path(file_name).name
    for prefix, title in SOURCE_PREFIXES:
        if name.startswith(prefix):
            return title
    return "other"


def is_val(file_name: str) -> bool:
    return int(hashlib.sha1(Path(file_name).name.encode()).hexdigest(), 16) % 10 == VAL_TENTH


def rebase(dataset: dict, from_dir: Path, to_dir: Path, images: list[dict]) -> dict:
    """A COCO dict with only ``images`` (renumbered) and ``file_name`` relative to ``to_dir``."""
    keep = {int(img["id"]): i + 1 for i, img in enumerate(images)}
    out_images = [
        dict(
            img,
            id=keep[int(img["id"])],
            file_name=os.path.relpath((from_dir / img["file_name"]).resolve(), to_dir.resolve()),
        )
        for img in images
    ]
    annotations = [
        dict(a, image_id=keep[int(a["image_id"])])
        for a in dataset["annotations"]
        if int(a["image_id"]) in keep
    ]
    for i, ann in enumerate(annotations, 1):
        ann["id"] = i
    return dict(dataset, images=out_images, annotations=annotations)


def count(dataset: dict) -> tuple[int, int, int]:
    people = [a for a in dataset["annotations"] if not a.get("iscrowd")]
    return len(dataset["images"]), len(people), len(dataset["annotations"]) - len(people)


def thin_vtest(dataset: dict, pool_people: int, share: float) -> list[dict]:
    """Evenly spaced vtest frames whose people stay within ``share`` of all labelled people."""
    people_per_image = Counter(a["image_id"] for a in dataset["annotations"] if not a.get("iscrowd"))
    images = dataset["images"]
    for step in range(1, len(images) + 1):
        chosen = images[::step]
        vtest_people = sum(people_per_image[int(img["id"])] for img in chosen)
        if vtest_people <= share * (vtest_people + pool_people):
            return chosen
    return []


def licence_summary(shared: Path, names: set[str]) -> list[tuple[str, int]]:
    counts: Counter = Counter()
    with (shared / "data/people_pool/sources.csv").open() as handle:
        for row in csv.DictReader(handle):
            if Path(row["file"]).name in names:
                counts[row["licence"].split(" [")[0].split(";")[0].strip('"')] += 1
    return counts.most_common()


def sample_picture(output: Path, datasets: list[dict], path: Path) -> None:
    """One labelled image per source (the one with the most people), in a 4-column sheet."""
    best: dict[str, tuple[int, dict, dict]] = {}
    for dataset in datasets:
        people = defaultdict(list)
        for ann in dataset["annotations"]:
            if not ann.get("iscrowd"):
                people[int(ann["image_id"])].append(ann)
        for img in dataset["images"]:
            source = source_of(img["file_name"])
            n = len(people[int(img["id"])])
            if n and (source not in best or n > best[source][0]):
                best[source] = (n, img, {"people": people[int(img["id"])]})
    tiles = []
    for source in sorted(best):
        _, img, extra = best[source]
        image = cv2.imread(str(output / img["file_name"]))
        keypoints = np.array([np.asarray(a["keypoints"], np.float32).reshape(-1, 3) for a in extra["people"]])
        keypoints[..., 2] = np.where(keypoints[..., 2] > 0, 1.0, 0.0)
        image = draw_people(image, keypoints, layout=COCO_17, keypoint_threshold=0.5, draw_scores=False)
        scale = 360 / image.shape[0]
        image = cv2.resize(image, (round(image.shape[1] * scale), 360), interpolation=cv2.INTER_AREA)
        image = cv2.copyMakeBorder(image, 0, 0, 0, max(0, 640 - image.shape[1]), cv2.BORDER_CONSTANT)[:, :640]
        cv2.putText(image, source, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
        tiles.append(image)
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + 4]) for i in range(0, len(tiles), 4)]
    cv2.imwrite(str(path), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 80])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--output", type=Path, default=REPO.parent / "litepose_data/general")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--vtest-share", type=float, default=0.3)
    parser.add_argument("--no-card", action="store_true", help="do not rewrite the data card in docs/")
    args = parser.parse_args()
    shared, out = args.shared.resolve(), args.output.resolve()
    teacher = shared / "teachers/movenet"
    out.mkdir(parents=True, exist_ok=True)
    common = {"teacher_dir": teacher, "workers": args.workers}

    # 1. the teacher on real ground truth
    real_val = shared / "data/real_val"
    truth = real_val / "person_keypoints.json"
    quality = {}
    for name, boxes in (("without boxes", None), ("with known boxes", truth)):
        folder = out / "runs" / ("real_val" if boxes is None else "real_val_boxes")
        summary = label_inputs([real_val / "images"], folder, boxes_file=boxes, **common)
        seconds = [
            r["seconds"]
            for r in map(json.loads, (folder / "progress.jsonl").read_text().splitlines())
            if "seconds" in r
        ]
        quality[name] = {
            "metrics": evaluate_labels(summary.labels_file, truth),
            "median_seconds": float(np.median(seconds)),
        }

    # 2. the pool, 3. vtest, 4. backgrounds
    pool = label_inputs(
        [shared / "data/people_pool/images"],
        out / "runs/pool",
        boxes_file=shared / "data/people_pool/person_boxes.json",
        **common,
    )
    pseudo = shared / "data/pseudo_people"
    with (pseudo / "sources.csv").open() as handle:
        vtest_files = [
            pseudo / row["file_name"]
            for row in csv.DictReader(handle)
            if row["split"] == "train" and "vtest.avi" in row["source"]
        ]
    vtest_files = sorted(vtest_files)[::3]
    vtest = label_inputs(vtest_files, out / "runs/vtest", config=VTEST_CONFIG, **common)
    screen = label_inputs(
        [shared / "data/people_pool/backgrounds"],
        out / "runs/backgrounds_screen",
        config=SCREEN_CONFIG,
        **common,
    )

    # 5. splits and files
    pool_set = json.loads(pool.labels_file.read_text())
    train_images = [img for img in pool_set["images"] if not is_val(img["file_name"])]
    val_images = [img for img in pool_set["images"] if is_val(img["file_name"])]
    train = rebase(pool_set, pool.labels_file.parent, out, train_images)
    val = rebase(pool_set, pool.labels_file.parent, out, val_images)
    vtest_set = json.loads(vtest.labels_file.read_text())
    vtest_train = rebase(
        vtest_set, vtest.labels_file.parent, out, thin_vtest(vtest_set, count(train)[1], args.vtest_share)
    )
    screen_set = json.loads(screen.labels_file.read_text())
    busy = {int(a["image_id"]) for a in screen_set["annotations"]}
    clean = [
        os.path.relpath((screen.labels_file.parent / img["file_name"]).resolve(), out)
        for img in screen_set["images"]
        if int(img["id"]) not in busy
    ]
    for name, dataset in (("train.json", train), ("val.json", val), ("vtest_train.json", vtest_train)):
        (out / name).write_text(json.dumps(dataset))
    (out / "backgrounds.txt").write_text("\n".join(clean) + "\n")
    # The clean ones as a folder of links (data.background_images of the training recipe).
    backgrounds = out / "backgrounds"
    backgrounds.mkdir(exist_ok=True)
    for name in clean:
        link = backgrounds / Path(name).name
        if not link.is_symlink():
            link.symlink_to((out / name).resolve())
    summary = {
        "quality": quality,
        "backgrounds": {"screened": len(screen_set["images"]), "clean": len(clean)},
        "sets": {},
    }
    for name, dataset in (("train", train), ("val", val), ("vtest_train", vtest_train)):
        per_source: dict[str, dict[str, float]] = defaultdict(
            lambda: {"images": 0, "people": 0, "ignore": 0, "keypoints": 0}
        )
        source_by_id = {int(img["id"]): source_of(img["file_name"]) for img in dataset["images"]}
        for img in dataset["images"]:
            per_source[source_of(img["file_name"])]["images"] += 1
        for ann in dataset["annotations"]:
            row = per_source[source_by_id[int(ann["image_id"])]]
            if ann.get("iscrowd"):
                row["ignore"] += 1
            else:
                row["people"] += 1
                row["keypoints"] += ann["num_keypoints"]
        summary["sets"][name] = dict(per_source)
    names = {Path(img["file_name"]).name for img in train["images"] + val["images"]}
    summary["licences"] = licence_summary(shared, names)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "licences"}, indent=1))
    if not args.no_card:
        sample_picture(out, [train, vtest_train], REPO / "docs/images/general_set_samples.jpg")
        write_card(summary, REPO / "docs/general_training_set.md")
    return 0


def write_card(summary: dict, path: Path) -> None:
    lines = [
        "# The general training set (pseudo-labels)",
        "",
        "Generated by `make general-data` (`python tools/build_general_set.py`), which writes the set into "
        "`../litepose_data/general/` (outside the work tree; the images stay in `../shared/data`, under "
        "research-use licences, and are never copied into the repository). Labels come from "
        "`litepose label` (the MoveNet teacher, `docs/labelling.md`), not from human annotators.",
        "",
        "## The teacher on real ground truth",
        "",
        "`real_val`: 32 COCO val2017 photos with official keypoint ground truth, 68 people "
        "(evaluation only, never trained on). The labels' keypoints are scored as predictions "
        "(`litepose label ... --evaluate person_keypoints.json`).",
        "",
        "| teacher run | AP | AP50 | AP75 | AR | median seconds per image (one worker's time) |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in summary["quality"].items():
        m = row["metrics"]
        lines.append(
            f"| {name} | {m['AP']:.3f} | {m['AP50']:.3f} | {m['AP75']:.3f} | {m['AR']:.3f} | "
            f"{row['median_seconds']:.2f} |"
        )
    lines += [
        "",
        "Times: the median of each image's labelling time inside a worker (2 workers on the 2-core machine, "
        "other jobs running beside them: an upper bound).",
        "",
        "## Contents",
        "",
        "| split | source | images | people | ignore regions | labelled keypoints per person |",
        "|---|---|---|---|---|---|",
    ]
    for split, sources in summary["sets"].items():
        for source, row in sorted(sources.items()):
            per_person = row["keypoints"] / row["people"] if row["people"] else 0.0
            lines.append(
                f"| {split} | {source} | {row['images']} | {row['people']} | {row['ignore']} | "
                f"{per_person:.1f} |"
            )
    b = summary["backgrounds"]
    total = {split: sum(r["people"] for r in s.values()) for split, s in summary["sets"].items()}
    share = total["vtest_train"] / max(1, total["vtest_train"] + total["train"])
    lines += [
        "",
        f"vtest frames hold {share:.0%} of the training people (thinned to at most 30%). "
        f"Negatives: {b['clean']} of {b['screened']} ADE20K backgrounds in which the teacher saw nobody "
        "(`backgrounds.txt`, linked in `backgrounds/`). Validation: a fixed tenth of the pool by file-name "
        "hash (`val.json`), next to `real_val` and the pseudo_people vtest val split.",
        "",
        "## Licences (pool images in train and val)",
        "",
        "| licence | images |",
        "|---|---|",
    ]
    lines += [f"| {name} | {n} |" for name, n in summary["licences"]]
    lines += [
        "",
        "vtest.avi: Apache-2.0 AND BSD-3-Clause (OpenCV samples); ADE20K backgrounds: non-commercial "
        "research and education. Research use only: see the READMEs in `../shared/data`.",
        "",
        "## Labelled samples (one image per source, the one with the most people)",
        "",
        "![labelled samples](images/general_set_samples.jpg)",
        "",
    ]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
