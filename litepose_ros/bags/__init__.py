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

This module imports nothing, so ``import litepose_ros.bags.storage`` costs only what it needs.
"""
