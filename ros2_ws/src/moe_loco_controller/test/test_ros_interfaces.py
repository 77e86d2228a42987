"""The ROS conventions over real rclpy (Fast DDS) and the Unitree link on loopback, with the
scripted robot peer: cmd_vel, joint_states, imu/data, the estimated velocity, /diagnostics and
the ROS parameters of the nodes."""

import time

import numpy as np
from geometry_msgs.msg import Twist
from test_controller_node import MODE, harness, ros  # noqa: F401 (fixtures)

from moe_loco_msgs.msg import LocoCommand


def twist(vx=0.0, vy=0.0, wz=0.0):
    msg = Twist()
    msg.linear.x, msg.linear.y, msg.angular.z = vx, vy, wz
    return msg


def stand_and_run(h, wait):
    assert wait(lambda: h.node.latest_state() is not None, timeout=10)
    assert h.wait_mode(wait, "STAND", request=LocoCommand.REQUEST_STAND)
    h.keep_alive(2.2)
    assert h.wait_mode(wait, "RUN", request=LocoCommand.REQUEST_RUN)


def test_cmd_vel_drives_the_controller_and_a_stale_twist_gives_zero(harness, wait):  # noqa: F811
    h, _ = harness()
    pub = h.probe.create_publisher(Twist, "cmd_vel", 10)
    assert wait(lambda: pub.get_subscription_count() > 0, timeout=10)
    # a Twist alone (no operator command at all, then the deadman released) never starts it
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        pub.publish(twist(0.5))
        time.sleep(0.02)
    assert h.status.mode == MODE["PASSIVE"] and list(h.status.command) == [0.0, 0.0, 0.0]
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        pub.publish(twist(0.5))
        h.cmd_pub.publish(LocoCommand(deadman=False))
        time.sleep(0.02)
    assert h.status.mode == MODE["PASSIVE"] and list(h.status.command) == [0.0, 0.0, 0.0]

    stand_and_run(h, wait)
    n_run = len(h.statuses)
    # the deadman held, sticks neutral: the controller's command follows the Twist
    for vx, wz in [(0.4, 0.0), (0.2, 0.5), (-0.3, -0.2)]:

        def follows(vx=vx, wz=wz):
            pub.publish(twist(vx, 0.0, wz))
            h.send()
            return np.allclose(h.status.command, [vx, 0.0, wz], atol=1e-6)

        assert wait(follows, timeout=3, poll=0.02), list(h.status.command)
    assert h.node.velocity_source == "cmd_vel"
    modes = {s.mode for _, s in h.statuses[n_run:]}
    assert modes == {MODE["RUN"]}, modes  # the Twists changed no mode
    # the operator's sticks win
    assert wait(lambda: h.send(vx=0.1) or np.allclose(h.status.command[0], 0.1), timeout=3)
    # the Twists stop; the operator goes on: zero within the staleness limit (0.5 s) + margin
    pub.publish(twist(0.4))
    h.keep_alive(0.1)
    t_last = time.monotonic()
    pub.publish(twist(0.4))
    assert wait(lambda: h.send() or np.allclose(h.status.command, 0.0), timeout=3, poll=0.01)
    stale_after = time.monotonic() - t_last
    print(f"a stale Twist gave zero {stale_after * 1e3:.0f} ms after the last one")
    assert stale_after <= 0.5 + 0.3
    h.keep_alive(0.3)
    assert h.status.mode == MODE["RUN"] and list(h.status.command) == [0.0, 0.0, 0.0]
    # the deadman released: zero at once, whatever the Twist says
    for _ in range(10):
        pub.publish(twist(0.4))
        h.cmd_pub.publish(LocoCommand(deadman=False))
        time.sleep(0.02)
    assert list(h.status.command) == [0.0, 0.0, 0.0]
