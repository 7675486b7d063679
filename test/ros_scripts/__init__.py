"""Helpers of the ROS tests: scripts run in their own process (``publish_*.py``) and the node
probe (``node_probe``), importable as ``ros_scripts.<module>`` from the tests."""
