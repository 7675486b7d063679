"""Publish one PersonArray, one Person and one Keypoint with known content, repeatedly.

Runs as its own process (started by the tests). Stops by itself after --seconds, or once
every topic has had a subscriber for --after-matched seconds.
"""

from __future__ import annotations

import argparse
import time

import rclpy
from geometry_msgs.msg import Point
from litepose_ros.msg import Keypoint, Person, PersonArray
from rclpy.executors import ExternalShutdownException

from litepose_ros.layouts import COCO_17


def known_keypoint(k: int) -> Keypoint:
    return Keypoint(
        x=10.0 + k,
        y=20.0 + 2 * k,
        score=k / 16.0,
        valid=k % 2 == 0,
        position=Point(x=0.1 * k, y=-0.1 * k, z=2.5),
        position_valid=k == 3,
    )


def known_person(person_id: int) -> Person:
    return Person(
        id=person_id,
        score=0.75,
        x_min=1.5,
        y_min=2.5,
        x_max=300.25,
        y_max=400.75,
        keypoints=[known_keypoint(k) for k in range(COCO_17.num_keypoints)],
    )


def known_person_array() -> PersonArray:
    message = PersonArray()
    message.header.stamp.sec = 1234
    message.header.stamp.nanosec = 567
    message.header.frame_id = "camera_optical_frame"
    message.image_width = 768
    message.image_height = 576
    message.layout = COCO_17.name
    message.keypoint_names = list(COCO_17.keypoint_names)
    message.edge_from = [a for a, _ in COCO_17.edges]
    message.edge_to = [b for _, b in COCO_17.edges]
    message.keypoint_threshold = 0.25  # exact in float32
    message.persons = [known_person(7), known_person(Person.NO_ID)]
    return message


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--after-matched", type=float, default=2.0)
    args = parser.parse_args()
    rclpy.init()
    node = rclpy.create_node("litepose_test_message_publisher")
    publishers = [
        node.create_publisher(PersonArray, "test_person_array", 10),
        node.create_publisher(Person, "test_person", 10),
        node.create_publisher(Keypoint, "test_keypoint", 10),
    ]
    messages = [known_person_array(), known_person(7), known_keypoint(5)]
    start = time.monotonic()
    matched_since = None
    try:
        while time.monotonic() - start < args.seconds:
            if all(p.get_subscription_count() > 0 for p in publishers):
                matched_since = matched_since or time.monotonic()
                for publisher, message in zip(publishers, messages, strict=True):
                    publisher.publish(message)
                if time.monotonic() - matched_since > args.after_matched:
                    break
            rclpy.spin_once(node, timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
