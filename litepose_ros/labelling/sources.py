"""The frames to label: image files, folders, videos and rosbag2 bags, with frame sampling.

Every frame has a stable ``key`` (input path and frame index) so a resumed run knows what it has
done, whatever order the inputs come in. Video and bag frames carry their pixels (BGR) and a
time in seconds (the video position, the bag header stamp); image files are read by the worker
that labels them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from litepose_ros.image_encodings import IMAGE_SUFFIXES, VIDEO_SUFFIXES

BAG_SUFFIXES = (".mcap", ".db3")
# Side of the grey thumbnail that near-duplicate frames are compared on.
THUMBNAIL_SIDE = 32


class SourceError(ValueError):
    """An input cannot be labelled as given; the message names the input and the fix."""


@dataclass(frozen=True)
class Sampling:
    """Which video and bag frames to label (image files are always all labelled)."""

    every: int = 1  # every N-th frame
    min_interval: float = 0.0  # at least this many seconds after the last kept frame
    # Skip a frame whose 32x32 grey thumbnail differs from the last kept one by less than this
    # mean absolute difference (0..255); 0 keeps every frame.
    skip_duplicates: float = 0.0

    def __post_init__(self) -> None:
        if self.every < 1 or self.min_interval < 0 or self.skip_duplicates < 0:
            raise SourceError(
                "frame sampling: --every must be >= 1, --min-interval and --skip-duplicates >= 0"
            )


@dataclass
class Frame:
    """One frame to label."""

    key: str
    source: str  # the input it comes from
    frame_index: int | None  # position in its video or bag topic; None for image files
    time: float | None  # seconds (video position or header stamp)
    path: Path | None = None  # image file (read by the worker)
    pixels: np.ndarray | None = None  # BGR pixels of a video or bag frame
    topic: str | None = None  # the bag topic it was read from


def input_kind(path: Path) -> str:
    """image, folder, video or bag (a bag is a .mcap / .db3 file or a folder with metadata.yaml)."""
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    if path.is_dir():
        if (path / "metadata.yaml").is_file() or any(p.suffix in BAG_SUFFIXES for p in path.iterdir()):
            return "bag"
        return "folder"
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in BAG_SUFFIXES:
        return "bag"
    raise SourceError(
        f"{path}: not an image ({', '.join(IMAGE_SUFFIXES)}), video "
        f"({', '.join(VIDEO_SUFFIXES)}) or rosbag2 ({', '.join(BAG_SUFFIXES)} or a bag folder)"
    )


class _Sampler:
    """Applies a Sampling to one stream of frames."""

    def __init__(self, sampling: Sampling):
        self.sampling = sampling
        self.last_time: float | None = None
        self.last_thumbnail: np.ndarray | None = None

    def keep(self, index: int, time: float | None, pixels: np.ndarray) -> bool:
        s = self.sampling
        if index % s.every:
            return False
        if (
            s.min_interval
            and time is not None
            and self.last_time is not None
            and time - self.last_time < s.min_interval
        ):
            return False
        if s.skip_duplicates:
            grey = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY) if pixels.ndim == 3 else pixels
            thumbnail = cv2.resize(grey, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), interpolation=cv2.INTER_AREA)
            thumbnail = thumbnail.astype(np.float32)
            if (
                self.last_thumbnail is not None
                and float(np.abs(thumbnail - self.last_thumbnail).mean()) < s.skip_duplicates
            ):
                return False
            self.last_thumbnail = thumbnail
        self.last_time = time
        return True


def _image_frames(path: Path) -> Iterator[Frame]:
    files = (
        [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    )
    if not files:
        raise SourceError(
            f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)}); give a folder of images, a video or a bag"
        )
    for file in files:
        yield Frame(key=str(file.resolve()), source=str(path), frame_index=None, time=None, path=file)


def _video_frames(path: Path, sampling: Sampling) -> Iterator[Frame]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SourceError(
            f"cannot open video {path}: OpenCV cannot decode it (convert it to .mp4 with H.264)"
        )
    sampler = _Sampler(sampling)
    index = 0
    try:
        while True:
            ok, pixels = capture.read()
            if not ok:
                break
            time = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if sampler.keep(index, time, pixels):
                yield Frame(
                    key=f"{path.resolve()}#{index}",
                    source=str(path),
                    frame_index=index,
                    time=time,
                    pixels=pixels,
                )
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise SourceError(f"video {path} has no frame OpenCV can decode")


def _bag_frames(path: Path, topic: str | None, sampling: Sampling) -> Iterator[Frame]:
    from litepose_ros.bags import BagError, BagReader, decode_bag_image

    try:
        with BagReader(path) as reader:
            topics = reader.image_topics()
            if topic is None:
                if len(topics) != 1:
                    raise SourceError(
                        f"bag {path} has {len(topics)} image topics ({', '.join(topics) or 'none'}); "
                        "choose one with --topic"
                    )
                topic = topics[0]
            reader.require_topic(topic)
            sampler = _Sampler(sampling)
            for image in reader.images(topic):
                try:
                    pixels = decode_bag_image(image)
                except ValueError as error:
                    print(f"litepose label: skipped message {image.index} of {topic} in {path}: {error}")
                    continue
                time = image.stamp_ns / 1e9
                if sampler.keep(image.index, time, pixels):
                    yield Frame(
                        key=f"{path.resolve()}#{topic}#{image.index}",
                        source=str(path),
                        frame_index=image.index,
                        time=time,
                        pixels=pixels,
                        topic=topic,
                    )
    except BagError as error:
        raise SourceError(str(error)) from error


def iterate_frames(
    inputs: Sequence[str | Path], *, sampling: Sampling | None = None, topic: str | None = None
) -> Iterator[Frame]:
    """Every frame to label from the inputs, in input order (checks every input before the first frame)."""
    sampling = sampling or Sampling()
    paths = [Path(p) for p in inputs]
    if not paths:
        raise SourceError("no input given: name image files, folders, videos or bags")
    kinds = [input_kind(p) for p in paths]
    for path, kind in zip(paths, kinds, strict=True):
        if kind in ("image", "folder"):
            yield from _image_frames(path)
        elif kind == "video":
            yield from _video_frames(path, sampling)
        else:
            yield from _bag_frames(path, topic, sampling)
