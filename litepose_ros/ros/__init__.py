"""The ROS 2 layer: the pose node, its parameters, and conversions to messages and markers.

Imports rclpy and the generated messages; the core library (litepose_ros.*) never imports this.
"""

from litepose_ros.ros.rclpy_compat import guard_lifecycle_transitions

guard_lifecycle_transitions()
