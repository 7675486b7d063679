"""The custom messages travel between two real ROS 2 processes with every field intact."""

from __future__ import annotations

import time

import pytest
from conftest import start_ros_script, stop_process

from litepose_ros.layouts import COCO_17

pytestmark = pytest.mark.ros


def receive_one_of_each(context, timeout: float = 20.0) -> dict:
    import rclpy
    from litepose_ros.msg import Keypoint, Person, PersonArray
    from rclpy.executors import SingleThreadedExecutor

    received: dict = {}
    node = rclpy.create_node("litepose_test_message_receiver", context=context)
    for msg_type, topic in (
        (PersonArray, "test_person_array"),
        (Person, "test_person"),
        (Keypoint, "test_keypoint"),
    ):
        node.create_subscription(msg_type, topic, lambda m, t=topic: received.setdefault(t, m), 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + timeout
    while len(received) < 3 and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    executor.shutdown()
    node.destroy_node()
    return received


def test_messages_round_trip_between_processes(rclpy_context):
    from ros_scripts.publish_messages import known_keypoint, known_person, known_person_array

    publisher = start_ros_script("publish_messages.py", "--seconds", "25")
    try:
        received = receive_one_of_each(rclpy_context)
    finally:
        out, err = stop_process(publisher)
    assert set(received) == {"test_person_array", "test_person", "test_keypoint"}, err

    # Generated messages compare field by field, nested messages and arrays included.
    assert received["test_keypoint"] == known_keypoint(5)
    assert received["test_person"] == known_person(7)
    array = received["test_person_array"]
    assert array == known_person_array()
    assert array.header.stamp.sec == 1234 and array.header.frame_id == "camera_optical_frame"
    assert list(array.keypoint_names) == list(COCO_17.keypoint_names)
    assert len(array.edge_from) == len(array.edge_to) == len(COCO_17.edges)
    assert all(len(p.keypoints) == COCO_17.num_keypoints for p in array.persons)
    assert array.persons[1].id == -1 == array.persons[1].NO_ID


def test_message_definitions_document_every_field():
    """Every field in msg/*.msg has a comment right above it (units, frames, conventions)."""
    from conftest import PROJECT_DIR

    for path in sorted((PROJECT_DIR / "msg").glob("*.msg")):
        lines = path.read_text().splitlines()
        for index, line in enumerate(lines):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            above = lines[index - 1].strip() if index else ""
            assert above.startswith("#"), f"{path.name}: field '{line.strip()}' has no comment above it"
