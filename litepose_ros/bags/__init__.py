"""Everything rosbag2, in one home, in two floors.

ROS-free (the core layer: no rclpy, nothing from ``litepose_ros.ros``), usable where ROS is not
installed:

- ``storage``: read image messages from and write result bags to rosbag2 (sqlite3 and mcap)
  with the pure-Python ``rosbags`` package; ``BagError`` for every problem with a bag;
- ``report``: ground-truth matching, per-frame records, plots and the report files.

ROS-dependent (the ROS layer: they build messages with the node's own conversion code or join a
live ROS 2 graph), built on the floor below:

- ``evaluate``: ``litepose bag-eval`` offline, every frame through the estimator, deterministic;
- ``player``: replay a bag into a live graph with its original timing (``litepose bag-play``);
- ``node_in_the_loop``: replay a bag into the running node and record what it publishes.

``litepose_ros.bags`` itself offers the storage API (reading and writing, ``BagError``): the
ROS-free floor, cheap to import (``rosbags`` is imported when a bag is opened).
"""

from litepose_ros.bags.storage import (
    BAG_VERSION,
    CAMERA_INFO_TYPE,
    COMPRESSED_IMAGE_TYPE,
    IMAGE_TYPE,
    IMAGE_TYPES,
    MARKER_ARRAY_TYPE,
    PERSON_ARRAY_TYPE,
    STORAGE_PLUGINS,
    BagError,
    BagImage,
    BagMessage,
    BagReader,
    BagWriter,
    TopicInfo,
    camera_info_cdr,
    compressed_image_cdr,
    decode_bag_image,
    message_definition_dir,
    project_typestore,
    raw_image_cdr,
    serialize_rosbags,
    sibling_camera_info_topic,
    stamp_ns,
    write_single_mcap,
)

__all__ = [
    "BAG_VERSION",
    "CAMERA_INFO_TYPE",
    "COMPRESSED_IMAGE_TYPE",
    "IMAGE_TYPE",
    "IMAGE_TYPES",
    "MARKER_ARRAY_TYPE",
    "PERSON_ARRAY_TYPE",
    "STORAGE_PLUGINS",
    "BagError",
    "BagImage",
    "BagMessage",
    "BagReader",
    "BagWriter",
    "TopicInfo",
    "camera_info_cdr",
    "compressed_image_cdr",
    "decode_bag_image",
    "message_definition_dir",
    "project_typestore",
    "raw_image_cdr",
    "serialize_rosbags",
    "sibling_camera_info_topic",
    "stamp_ns",
    "write_single_mcap",
]
