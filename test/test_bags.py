"""rosbag2 reading and writing without ROS (litepose_ros.bags): sqlite3 and mcap, damage, the sample bag."""

from __future__ import annotations

import re

import numpy as np
import pytest

from litepose_ros.bags.storage import (
    CAMERA_INFO_TYPE,
    COMPRESSED_IMAGE_TYPE,
    IMAGE_TYPE,
    BagError,
    BagReader,
    BagWriter,
    camera_info_cdr,
    compressed_image_cdr,
    project_typestore,
    raw_image_cdr,
)
from litepose_ros.samples import SAMPLES_DIR, vtest_frame_paths

SAMPLE_BAG = SAMPLES_DIR / "vtest_sample.mcap"


@pytest.fixture(scope="module")
def typestore():
    return project_typestore()


def make_frames(count: int, shape=(24, 32, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, size=shape, dtype=np.uint8) for _ in range(count)]


def write_test_bag(path, storage, typestore, frames, *, period_ns=50_000_000):
    """A bag with raw images on /cam/image_raw, JPEGs on /cam/image_raw/compressed and camera info."""
    import cv2

    start = 1_600_000_000_123_456_789
    with BagWriter(path, storage) as writer:
        writer.add_topic("/cam/image_raw", IMAGE_TYPE)
        writer.add_topic("/cam/image_raw/compressed", COMPRESSED_IMAGE_TYPE)
        writer.add_topic("/cam/camera_info", CAMERA_INFO_TYPE)
        for index, frame in enumerate(frames):
            stamp = start + index * period_ns
            writer.write(
                "/cam/image_raw", stamp + 1000, raw_image_cdr(typestore, frame, stamp, "cam_optical")
            )
            encoded = cv2.imencode(".png", frame)[1].tobytes()
            writer.write(
                "/cam/image_raw/compressed",
                stamp + 2000,
                compressed_image_cdr(typestore, encoded, stamp, "cam_optical", "png"),
            )
            writer.write(
                "/cam/camera_info",
                stamp + 3000,
                camera_info_cdr(
                    typestore, 32, 24, fx=30.0, fy=30.0, cx=15.5, cy=11.5, stamp=stamp, frame_id="cam_optical"
                ),
            )
    return [start + i * period_ns for i in range(len(frames))]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_keeps_stamps_pixels_and_types(tmp_path, typestore, storage):
    import cv2
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image

    frames = make_frames(5)
    stamps = write_test_bag(tmp_path / "bag", storage, typestore, frames)
    with BagReader(tmp_path / "bag") as reader:
        assert {name: (t.msgtype, t.count) for name, t in reader.topics.items()} == {
            "/cam/image_raw": (IMAGE_TYPE, 5),
            "/cam/image_raw/compressed": (COMPRESSED_IMAGE_TYPE, 5),
            "/cam/camera_info": (CAMERA_INFO_TYPE, 5),
        }
        assert sorted(reader.image_topics()) == ["/cam/image_raw", "/cam/image_raw/compressed"]
        raw_images = list(reader.images("/cam/image_raw"))
        compressed = list(reader.images("/cam/image_raw/compressed"))
        infos = list(reader.messages(["/cam/camera_info"]))
    assert [image.stamp_ns for image in raw_images] == stamps == [image.stamp_ns for image in compressed]
    assert [image.index for image in raw_images] == list(range(5))
    assert [image.log_time_ns - image.stamp_ns for image in raw_images] == [1000] * 5
    for frame, image, packed in zip(frames, raw_images, compressed, strict=True):
        assert image.frame_id == "cam_optical" and not image.compressed and packed.compressed
        assert np.array_equal(np.asarray(image.message.data).reshape(frame.shape), frame)
        decoded = cv2.imdecode(np.asarray(packed.message.data), cv2.IMREAD_COLOR)
        assert np.array_equal(decoded, frame)
        # The stored bytes are plain ROS 2 CDR: rclpy reads them.
        ros_image = deserialize_message(image.raw, Image)
        assert (ros_image.width, ros_image.height, ros_image.encoding) == (32, 24, "bgr8")
        assert ros_image.header.stamp.sec * 10**9 + ros_image.header.stamp.nanosec == image.stamp_ns
    info = deserialize_message(infos[0].data, CameraInfo)
    assert list(info.k) == [30.0, 0.0, 15.5, 0.0, 30.0, 11.5, 0.0, 0.0, 1.0]


def test_missing_bag_and_non_bag_files_give_clear_errors(tmp_path):
    with pytest.raises(BagError, match="does not exist"):
        BagReader(tmp_path / "nope").open()
    (tmp_path / "folder").mkdir()
    with pytest.raises(BagError, match="without metadata.yaml"):
        BagReader(tmp_path / "folder").open()
    (tmp_path / "junk.mcap").write_bytes(b"this is not an mcap file at all" * 4)
    with pytest.raises(BagError, match="cannot read bag"):
        BagReader(tmp_path / "junk.mcap").open()


def test_missing_or_wrong_topic_lists_the_topics_present(tmp_path, typestore):
    write_test_bag(tmp_path / "bag", "mcap", typestore, make_frames(2))
    with BagReader(tmp_path / "bag") as reader:
        with pytest.raises(BagError) as missing:
            list(reader.images("/camera/image_raw"))
        with pytest.raises(BagError, match="holds sensor_msgs/msg/CameraInfo"):
            list(reader.images("/cam/camera_info"))
    text = str(missing.value)
    assert "'/camera/image_raw' is not in bag" in text
    for topic in ("/cam/image_raw (sensor_msgs/msg/Image, 2 messages)", "/cam/camera_info"):
        assert topic in text


def test_truncated_mcap_yields_complete_messages_then_reports(tmp_path, typestore):
    frames = make_frames(12)
    stamps = write_test_bag(tmp_path / "bag", "mcap", typestore, frames)
    data = next((tmp_path / "bag").glob("*.mcap")).read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[: len(data) * 6 // 10])
    read = []
    with BagReader(cut) as reader:
        assert reader.truncated
        assert "/cam/image_raw" in reader.topics
        with pytest.raises(BagError, match="truncated"):
            for image in reader.images("/cam/image_raw"):
                read.append(image)
    assert 0 < len(read) < len(frames)
    for image, frame, stamp in zip(read, frames, stamps, strict=False):
        assert image.stamp_ns == stamp
        assert np.array_equal(np.asarray(image.message.data).reshape(frame.shape), frame)


def test_corrupt_sqlite_reports_damage_after_the_intact_messages(tmp_path, typestore):
    # Frames larger than a database page: sqlite keeps them in overflow pages, which only the
    # read of that message touches (damage elsewhere already stops the bag from opening).
    frames = make_frames(10, (48, 64, 3))
    stamps = write_test_bag(tmp_path / "bag", "sqlite3", typestore, frames)
    database = next((tmp_path / "bag").glob("*.db3"))
    original = database.read_bytes()
    page = 4096
    # Zero one page at a time from the middle on until reading fails part-way (where each message
    # sits in the file is sqlite's business): the messages before the damage must be intact.
    for start in range(len(original) // 2 // page * page, len(original), page):
        damaged = bytearray(original)
        damaged[start : start + page] = bytes(page)
        database.write_bytes(bytes(damaged))
        read = []
        try:
            with BagReader(tmp_path / "bag") as reader:
                for image in reader.images("/cam/image_raw"):
                    read.append(image)
        except BagError as error:
            if read:
                assert "damaged" in str(error) and f"after {len(read)} messages" in str(error)
                break
    else:
        pytest.fail("no zeroed page made reading fail part-way")
    for image, frame, stamp in zip(read, frames, stamps, strict=False):
        assert image.stamp_ns == stamp
        assert np.array_equal(np.asarray(image.message.data).reshape(frame.shape), frame)


def test_writer_refuses_to_overwrite_unless_asked(tmp_path, typestore):
    write_test_bag(tmp_path / "bag", "mcap", typestore, make_frames(1))
    with pytest.raises(BagError, match="already exists"):
        BagWriter(tmp_path / "bag").open()
    with BagWriter(tmp_path / "bag", overwrite=True) as writer:
        writer.add_topic("/only", IMAGE_TYPE)
    with BagReader(tmp_path / "bag") as reader:
        assert list(reader.topics) == ["/only"]
    with pytest.raises(BagError, match="unknown bag storage"):
        BagWriter(tmp_path / "x", storage="rosbag1")


def test_bundled_sample_bag_holds_the_bundled_frames_at_15_hz():
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo

    paths = vtest_frame_paths()
    with BagReader(SAMPLE_BAG) as reader:
        assert set(reader.topics) == {"/camera/image_raw/compressed", "/camera/camera_info"}
        images = list(reader.images("/camera/image_raw/compressed"))
        infos = [deserialize_message(m.data, CameraInfo) for m in reader.messages(["/camera/camera_info"])]
    assert len(images) == len(paths) == len(infos) == 48
    for image, path in zip(images, paths, strict=True):
        assert image.message.format == "jpeg" and image.frame_id == "vtest_camera_optical_frame"
        assert bytes(np.asarray(image.message.data)) == path.read_bytes()
    # Stamps follow the video's frame numbers at 30 fps (every 2nd frame: 15 Hz).
    numbers = [int(re.search(r"(\d+)", p.stem).group(1)) for p in paths]
    offsets = [(image.stamp_ns - images[0].stamp_ns) / 1e9 for image in images]
    assert offsets == pytest.approx([(n - numbers[0]) / 30.0 for n in numbers], abs=1e-9)
    info = infos[0]
    assert (info.width, info.height, info.header.frame_id) == (768, 576, "vtest_camera_optical_frame")
    assert info.k[0] > 0 and info.k[2] == pytest.approx(383.5) and info.k[5] == pytest.approx(287.5)
    info_stamps = [i.header.stamp.sec * 10**9 + i.header.stamp.nanosec for i in infos]
    assert info_stamps == [i.stamp_ns for i in images]


def test_sample_bag_script_reproduces_the_bundled_bag(tmp_path):
    import importlib.util

    from conftest import PROJECT_DIR

    script = PROJECT_DIR / "tools" / "make_sample_bag.py"
    spec = importlib.util.spec_from_file_location("make_sample_bag", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--output", str(tmp_path / "again.mcap")]) == 0
    assert (tmp_path / "again.mcap").read_bytes() == SAMPLE_BAG.read_bytes()


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_compressed_bags_read_back_identically(tmp_path, typestore, storage):
    frames = [np.zeros((48, 64, 3), dtype=np.uint8) + i for i in range(3)]  # compressible
    with BagWriter(tmp_path / "bag", storage, compress=True) as writer:
        writer.add_topic("/img", IMAGE_TYPE)
        for index, frame in enumerate(frames):
            writer.write("/img", 10 + index, raw_image_cdr(typestore, frame, index, "cam"))
    size = sum(p.stat().st_size for p in (tmp_path / "bag").iterdir())
    with BagReader(tmp_path / "bag") as reader:
        images = list(reader.images("/img"))
    assert [np.asarray(i.message.data).reshape(48, 64, 3)[0, 0, 0] for i in images] == [0, 1, 2]
    if storage == "mcap":
        assert size < sum(f.nbytes for f in frames)


@pytest.mark.parametrize("keep", [0.3, 0.5, 0.8])
def test_truncated_sqlite_keeps_the_frames_before_the_cut_and_reports(tmp_path, typestore, keep):
    frames = make_frames(30)
    stamps = write_test_bag(tmp_path / "bag", "sqlite3", typestore, frames)
    database = next((tmp_path / "bag").glob("*.db3"))
    original = database.read_bytes()
    database.write_bytes(original[: int(len(original) * keep)])
    read = []
    with (
        pytest.raises(BagError, match=r"truncated.*read the \d+ complete messages"),
        BagReader(tmp_path / "bag") as reader,
    ):
        assert reader.truncated
        read.extend(reader.images("/cam/image_raw"))
    assert read, "the frames before the cut were lost"
    for image, frame, stamp in zip(read, frames, stamps, strict=False):
        assert image.stamp_ns == stamp
        assert np.array_equal(np.asarray(image.message.data).reshape(frame.shape), frame)


@pytest.mark.parametrize("content", [b"\x89MCAP0\r\n", b"\x89MCAP0\r\n\x01\x02", b"\x89MC"])
def test_mcap_cut_right_after_opening_is_a_clear_error(tmp_path, content):
    path = tmp_path / "cut.mcap"
    path.write_bytes(content)
    with pytest.raises(BagError, match=r"cut.mcap .*(truncated|empty|no topic)"), BagReader(path):
        pass


def test_damaged_mcap_chunk_is_found_by_its_crc_and_reported(tmp_path, typestore):
    from litepose_ros.bags.storage import write_single_mcap

    frames = make_frames(5)
    path = tmp_path / "plain.mcap"
    write_single_mcap(
        path,
        {"/img": IMAGE_TYPE},
        [("/img", 10 + i, raw_image_cdr(typestore, f, i, "cam")) for i, f in enumerate(frames)],
    )
    data = bytearray(path.read_bytes())
    pixels = frames[2].tobytes()[:64]
    position = bytes(data).find(pixels)
    if position < 0:
        pytest.skip("the writer compressed the chunk: the pixels are not in the file as such")
    data[position : position + 64] = bytes(64)  # zeroed bytes inside message 2
    path.write_bytes(bytes(data))
    with (
        pytest.raises(BagError, match=r"damaged: reading stopped after 0 messages.*CRC check"),
        BagReader(path) as reader,
    ):
        list(reader.images("/img"))
