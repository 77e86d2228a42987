"""The joystick node: ``sensor_msgs/Joy`` (ROS ``joy``) or the Go2 remote -> ``<ns>/command``.

The rules (deadman, one gait toggle per press, e-stop, per-gait velocity limits from the policy's
metadata, rate limit, joystick lost) are :class:`~moe_loco_controller.core.joystick.JoystickLogic`;
this node only feeds it and publishes its command at ``joystick.rate_hz``. Its ROS parameters are
``policy``, ``namespace`` and ``joystick.*`` (``joystick.deadzone`` and ``joystick.max_accel`` may
change at run time; :mod:`moe_loco_controller.core.parameters`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from rclpy.node import Node
from sensor_msgs.msg import Joy

from moe_loco_controller.core.config import Config, JoystickNodeConfig
from moe_loco_controller.core.controller import Request
from moe_loco_controller.core.joystick import JoystickLogic, remote_input
from moe_loco_controller.core.policy_metadata import PolicyMetadata
from moe_loco_controller.nodes.messages import command_to_msg
from moe_loco_controller.nodes.parameters import declare_config, watch_runtime_parameters
from moe_loco_msgs.msg import LocoCommand
from moe_loco_msgs.msg import RobotState as RobotStateMsg


def ranges_by_gait_index(meta: PolicyMetadata) -> Mapping[int, Mapping[str, tuple[float, float]]]:
    return {i: meta.command_ranges[g] for i, g in enumerate(meta.gaits)}


class JoystickNode(Node):
    """``config``, ``namespace`` and ``policy`` are the defaults of the node's parameters, which
    ``--params-file`` / ``-p`` override (validated; :class:`ConfigError` naming the parameter).
    ``metadata``: the policy's, or a function giving it for the resolved ``policy`` parameter."""

    def __init__(
        self,
        config: JoystickNodeConfig,
        metadata: PolicyMetadata | Callable[[str], PolicyMetadata],
        namespace: str = "moe_loco",
        clock: Callable[[], float] = time.monotonic,
        node_name: str = "moe_loco_joystick",
        policy: str = "",
    ) -> None:
        super().__init__(node_name)
        try:
            base = Config(policy=policy, namespace=namespace, joystick=config)
            resolved = declare_config(self, base, "joystick")
            if callable(metadata):
                metadata = metadata(resolved.policy)
        except BaseException:
            self.destroy_node()
            raise
        self.full_config = resolved
        self.config = config = resolved.joystick
        namespace = resolved.namespace
        self.clock = clock
        self.logic = JoystickLogic(ranges_by_gait_index(metadata), config.logic)
        watch_runtime_parameters(self, "joystick", lambda: self.full_config, self._apply_config)
        self._request = Request.NONE
        self.pub = self.create_publisher(LocoCommand, f"{namespace}/command", 10)
        if config.source == "joy":
            self.create_subscription(Joy, "joy", self._on_joy, 10)
        else:  # the Go2 remote's bytes, as the controller mirrors them from rt/lowstate
            self.create_subscription(RobotStateMsg, f"{namespace}/robot_state", self._on_remote, 10)
        self.timer = self.create_timer(1.0 / config.rate_hz, self._publish)

    def _apply_config(self, config: Config) -> None:
        """A validated run-time change: deadzone and rate limit (the logic reads its config on
        every call)."""
        self.full_config = config
        self.config = config.joystick
        self.logic.config = config.joystick.logic

    def _take(self, request: Request) -> None:
        if request != Request.NONE:
            self._request = request  # kept until published once

    def _on_joy(self, msg: Joy) -> None:
        sample = self.config.mapping.joy_input(list(msg.axes), list(msg.buttons), self.clock())
        self._take(self.logic.feed(sample))

    def _on_remote(self, msg: RobotStateMsg) -> None:
        sample = remote_input(int(msg.remote_keys), list(msg.remote_axes), self.clock())
        self._take(self.logic.feed(sample))

    def _publish(self) -> None:
        cmd = self.logic.command(self.clock(), self._request)
        self._request = Request.NONE
        self.pub.publish(command_to_msg(cmd, self.get_clock().now().to_msg()))
