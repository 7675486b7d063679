"""Where the rclpy releases the node runs on differ in a way that would crash it, the newer
behaviour: applied by ``litepose_ros.ros`` on import, before the node class is used.

Kilted's rclpy (9.x, this project's default venv) is the reference; Jazzy's (7.x, .venv-jazzy) and
Humble's (3.x, JetPack 6 robots) are older.
"""

from __future__ import annotations

_CHANGE_STATE = "_LifecycleNodeMixin__change_state"  # LifecycleNodeMixin.__change_state, name-mangled


def guard_lifecycle_transitions() -> bool:
    """Make a lifecycle transition the current state does not have a refusal, as Kilted's rclpy does.

    Jazzy's rclpy triggers a requested transition unchecked: ``activate`` asked of an unconfigured
    node (say, by ``ros2 lifecycle set``) raises RCLError inside the change_state service callback,
    which ends the executor's spin and with it the node process (seen with rclpy 7.1.6). Kilted's
    logs an error and answers success=false; this wraps the older method to do the same. Returns
    True when it wrapped it, False when rclpy is missing or already wrapped.
    """
    try:
        from rclpy.impl.implementation_singleton import rclpy_implementation
        from rclpy.lifecycle.node import LifecycleNodeMixin, TransitionCallbackReturn
    except ImportError:  # no rclpy: the core library and the bag tools work without it
        return False
    change_state = getattr(LifecycleNodeMixin, _CHANGE_STATE, None)
    if change_state is None or getattr(change_state, "litepose_guarded", False):
        return False
    rcl_error = rclpy_implementation.RCLError

    def guarded_change_state(self, transition_id: int):
        try:
            return change_state(self, transition_id)
        except rcl_error as error:
            self.get_logger().error(
                f"Unable to start transition {transition_id} from current state "
                f"{self._state_machine.current_state}: {error}"
            )
            return TransitionCallbackReturn.ERROR

    guarded_change_state.litepose_guarded = True
    setattr(LifecycleNodeMixin, _CHANGE_STATE, guarded_change_state)
    return True
