"""The node survives what older rclpy releases (Jazzy, Humble) would crash on."""

from __future__ import annotations

import pytest
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

import litepose_ros.ros  # noqa: F401 - applies the compatibility guards

pytestmark = pytest.mark.ros


def test_transition_the_state_does_not_have_is_refused_not_raised(rclpy_context):
    node = LifecycleNode("litepose_test_invalid_transition", context=rclpy_context)
    try:
        # activate needs a configured node: rclpy 7 raised RCLError here (out of the service callback,
        # ending the node's spin); Kilted's rclpy, and the guard, refuse it.
        assert node.trigger_activate() == TransitionCallbackReturn.ERROR
        assert node._state_machine.current_state[1] == "unconfigured"
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    finally:
        node.destroy_node()
