"""A ``geometry_msgs/Twist`` on ``cmd_vel`` drives the simulated Go2 (issue 14): the sim bridge
in its own process, the controller and joystick nodes with the shipped walking policy; the
operator holds the deadman with the sticks neutral and a Twist commands the walk."""

import time
from pathlib import Path

import numpy as np
import pytest
from bridge_helpers import BridgeProcess, joy_msg

from moe_loco_controller.core.config import load_config

POLICY = Path(__file__).resolve().parents[4] / "policies" / "moe_loco_go2_v1_quad_plane.onnx"


@pytest.fixture
def ros():
    import rclpy

    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.mark.skipif(not POLICY.is_file(), reason="the shipped walking policy is not in this tree")
def test_a_twist_on_cmd_vel_walks_the_simulated_robot(ros, unitree_channels, wait, spinner):
    from geometry_msgs.msg import Twist
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import Joy

    from moe_loco_controller.core.policy import PolicyRuntime
    from moe_loco_controller.io.link import UnitreeLink
    from moe_loco_controller.nodes.controller_node import ControllerNode
    from moe_loco_controller.nodes.joystick_node import JoystickNode
    from moe_loco_msgs.msg import ControllerStatus

    bridge = BridgeProcess(unitree_channels)
    cfg = load_config().replace(
        **{
            "link.interface": "lo",
            "link.domain_id": unitree_channels,
            "link.release_sport_mode": False,
            "link.other_publisher_check_s": 0.0,
            "link.watchdog_periods": 8,  # test/shared_machine.py's limits (a shared CI runner)
            "safety.stale_state_periods": 8.0,
        }
    )
    link = UnitreeLink(unitree_channels, "lo", False, 0.0)
    node = ControllerNode(cfg, POLICY, link)
    joystick = JoystickNode(cfg.joystick, PolicyRuntime(POLICY).metadata, cfg.namespace)
    probe = Node("probe")
    statuses = []
    probe.create_subscription(ControllerStatus, "moe_loco/status", statuses.append, 50)
    joy_pub = probe.create_publisher(Joy, "joy", 10)
    twist_pub = probe.create_publisher(Twist, "cmd_vel", 10)
    executor = SingleThreadedExecutor()
    for n in (node, joystick, probe):
        executor.add_node(n)
    spin = spinner(executor)
    node.start()
    held, twist = ["deadman"], [None]

    def joy_until(predicate, timeout):
        def step():
            joy_pub.publish(joy_msg(*held))
            if twist[0] is not None:
                msg = Twist()
                msg.linear.x = twist[0]
                twist_pub.publish(msg)
            return predicate()

        return wait(step, timeout=timeout, poll=0.02)

    def mode(name):
        return lambda: bool(statuses) and statuses[-1].mode == getattr(ControllerStatus, name)

    try:
        assert wait(lambda: bridge.last is not None, timeout=20), "the bridge did not start"
        assert wait(lambda: node.latest_state() is not None, timeout=10)
        assert joy_until(lambda: twist_pub.get_subscription_count() > 0 and statuses, 10)
        held = ["deadman", "stand"]
        assert joy_until(mode("MODE_STAND"), 10)
        held = ["deadman"]
        t_stand = time.monotonic()
        assert joy_until(lambda: time.monotonic() - t_stand > cfg.control.stand_duration_s, 5)
        held = ["deadman", "run"]
        assert joy_until(mode("MODE_RUN"), 10)
        held = ["deadman"]
        assert joy_until(lambda: False, 1.0) is False  # settle in RUN, standing
        x0 = bridge.last["base_pos"][0]
        twist[0] = 0.5
        assert joy_until(lambda: np.isclose(statuses[-1].command[0], 0.5), 3)
        t0 = time.monotonic()
        assert joy_until(lambda: time.monotonic() - t0 > 4.0, 6)
        x1, last, source = bridge.last["base_pos"][0], statuses[-1], node.velocity_source
        twist[0] = None  # the Twists stop: zero velocity within the staleness limit
        assert joy_until(lambda: list(statuses[-1].command) == [0.0, 0.0, 0.0], 3)
    finally:
        node.stop()
        spin.stop()
        for n in (node, joystick, probe):
            n.destroy_node()
        link.close()
        bridge.close()
    assert last.mode == ControllerStatus.MODE_RUN and not list(last.faults)
    assert source == "cmd_vel"
    # 4 s at 0.5 m/s: the shipped policy walks it (v1 covers 2.6 m in 6 s in make demo)
    assert x1 - x0 > 1.0, f"the robot moved {x1 - x0:.2f} m under cmd_vel 0.5 m/s for 4 s"
    assert bridge.last["upright"] > 0.9
