"""moe_loco_msgs: built into the venv, importable, serialisable, and carried between processes."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.node import Node
from rclpy.serialization import deserialize_message, serialize_message

from moe_loco_msgs.msg import ControllerStatus, JointCommand, LocoCommand, RobotState
from moe_loco_msgs.srv import SetExpertScale, SetGait

PEER = Path(__file__).parents[2] / "moe_loco_controller" / "test" / "peers" / "ros_command_peer.py"


def roundtrip(msg):
    data = serialize_message(msg)
    back = deserialize_message(data, type(msg))
    # float64 -> float32 fields round once, then exactly. Compared by value, not by bytes: CDR's
    # alignment padding (e.g. after SetGait.Request's uint8) is uninitialised memory.
    again = deserialize_message(serialize_message(back), type(msg))
    assert again == back
    return back


def test_constants():
    assert (LocoCommand.GAIT_QUADRUPEDAL, LocoCommand.GAIT_BIPEDAL) == (0, 1)
    assert (SetGait.Request.GAIT_QUADRUPEDAL, SetGait.Request.GAIT_BIPEDAL) == (0, 1)
    modes = (ControllerStatus.MODE_PASSIVE, ControllerStatus.MODE_STAND)
    assert modes + (ControllerStatus.MODE_RUN, ControllerStatus.MODE_DAMP) == (0, 1, 2, 3)
    assert LocoCommand.REQUEST_RESET == 5


def test_every_message_roundtrips_with_values():
    cmd = LocoCommand(vx=0.5, vy=-0.2, wz=1.0, gait=1, request=2, estop=True, deadman=True)
    cmd.header.stamp.sec = 7
    assert roundtrip(cmd).vx == pytest.approx(0.5)
    st = ControllerStatus(mode=2, mode_name="RUN", gait=1, step=123456789012)
    st.gate_weights = [0.1, 0.2, 0.3, 0.2, 0.1, 0.1]
    st.expert_scale = [1.0] * 6
    st.faults = ["stale_state", "tilt"]
    st.command = [0.5, 0.0, 0.1]
    back = roundtrip(st)
    assert list(back.faults) == ["stale_state", "tilt"] and back.step == 123456789012
    rs = RobotState(tick=99, crc_ok=True, remote_keys=0xFFFF)
    rs.q = np.linspace(-1, 1, 12).astype(np.float32)
    rs.imu_quaternion = [1.0, 0.0, 0.0, 0.0]
    rs.foot_force = [1, -2, 3, 32767]
    rs.remote_axes = [0.1, 0.2, 0.3, 0.4, 0.5]
    back = roundtrip(rs)
    np.testing.assert_array_equal(back.q, rs.q)
    jc = JointCommand(step=3, mode=2)
    jc.kp = [40.0] * 12
    assert list(roundtrip(jc).kp) == [40.0] * 12
    req = SetExpertScale.Request(weights=[0.0, 2.0, 1.0, 0.0, 0.0, 0.0], preset="")
    assert list(roundtrip(req).weights) == [0.0, 2.0, 1.0, 0.0, 0.0, 0.0]
    roundtrip(SetExpertScale.Response(success=False, message="length 5 != 6 experts"))
    roundtrip(SetGait.Request(gait=1))
    roundtrip(SetGait.Response(success=True, gait=1))


def test_fixed_size_arrays_are_checked():
    # ROS_PYTHON_CHECK_FIELDS=1 (conftest): a float32[12] refuses 11 values
    with pytest.raises((AssertionError, ValueError)):
        RobotState(q=[0.0] * 11)
    with pytest.raises((AssertionError, ValueError)):
        JointCommand(kp=[0.0] * 13)


def test_loco_command_crosses_processes():
    rclpy.init()
    node = Node("command_listener")
    got = []
    node.create_subscription(LocoCommand, "moe_loco/command", got.append, 10)
    peer = subprocess.Popen([sys.executable, str(PEER), "--duration", "30"])
    try:
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        peer.kill()
        peer.wait(timeout=10)
        node.destroy_node()
        rclpy.try_shutdown()
    assert got, "no LocoCommand received from the peer process"
    msg = got[-1]
    assert (msg.vx, msg.vy, msg.wz) == pytest.approx((0.5, -0.25, 0.75))
    assert msg.gait == LocoCommand.GAIT_BIPEDAL and msg.request == LocoCommand.REQUEST_RUN
    assert msg.deadman and not msg.estop
