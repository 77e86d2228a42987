"""The wire layer's conversions, without DDS."""

import math

import numpy as np
import pytest

from moe_loco_controller.core import go2
from moe_loco_controller.core.remote import pack_remote
from moe_loco_controller.core.robot_state import JointCommand, RobotState, check_robot_state
from moe_loco_controller.io.crc import lowcmd_crc
from moe_loco_controller.io.lowlevel import (
    build_lowcmd,
    fill_lowcmd,
    lowstate_to_robot_state,
    new_lowcmd,
)
from moe_loco_controller.io.unitree_sdk import sdk, sdk_reference_crc


def lowstate(q=None, quat=(1.0, 0.0, 0.0, 0.0)):
    msg = sdk.default_LowState()
    q = go2.DEFAULT_STANDING_POSE if q is None else q
    for i in range(12):
        msg.motor_state[i].q = float(q[i])
        msg.motor_state[i].dq = 0.5 * i
        msg.motor_state[i].tau_est = -float(i)
    for i in range(12, 20):  # unused slots carry junk on the real robot
        msg.motor_state[i].q = 99.0
    msg.imu_state.quaternion = list(quat)
    msg.imu_state.gyroscope = [0.1, 0.2, 0.3]
    msg.imu_state.accelerometer = [0.0, 0.0, 9.81]
    msg.foot_force = [1, 2, 3, 4]
    msg.tick = 4242
    msg.wireless_remote = list(pack_remote(1 << 9, np.array([0.1, 0.2, 0.3, 0.4, 0.5])))
    return msg


def test_lowstate_converts_in_sdk_order_with_wxyz_quaternion():
    q = go2.JOINT_LOWER + 0.2 + 0.01 * np.arange(12)
    quat = np.array([0.9, 0.1, -0.2, 0.3]) / np.linalg.norm([0.9, 0.1, -0.2, 0.3])
    st = lowstate_to_robot_state(lowstate(q, tuple(quat)), stamp=12.5)
    np.testing.assert_allclose(st.q, q, atol=1e-6)
    np.testing.assert_allclose(st.dq, 0.5 * np.arange(12))
    np.testing.assert_allclose(st.tau_est, -np.arange(12.0))
    np.testing.assert_allclose(st.quat_wxyz, quat, atol=1e-7)
    np.testing.assert_allclose(st.gyro, [0.1, 0.2, 0.3], atol=1e-7)
    np.testing.assert_array_equal(st.foot_force, [1, 2, 3, 4])
    assert st.tick == 4242 and st.stamp == 12.5
    assert st.remote_keys == 1 << 9
    np.testing.assert_allclose(st.remote_axes, [0.1, 0.2, 0.3, 0.4, 0.5], atol=1e-7)
    assert st.problems == ()


def test_lowstate_with_nan_and_out_of_range_is_flagged_not_fatal():
    q = np.array(go2.DEFAULT_STANDING_POSE)
    q[4] = math.nan
    q[2] = 1.5  # FR calf far above -0.84
    msg = lowstate(q)
    msg.imu_state.gyroscope = [math.inf, 0.0, 0.0]
    msg.motor_state[7].dq = 500.0
    st = lowstate_to_robot_state(msg, stamp=0.0)
    text = " | ".join(st.problems)
    assert "q not finite: FL_thigh_joint" in text
    assert "q out of range: FR_calf_joint=1.500" in text
    assert "gyro not finite" in text
    assert "dq beyond limit: RR_thigh_joint=500.0" in text


def test_zero_quaternion_is_flagged():
    st = lowstate_to_robot_state(lowstate(quat=(0.0, 0.0, 0.0, 0.0)), stamp=0.0)
    assert any("quat_wxyz not unit" in p for p in st.problems)


def test_check_robot_state_accepts_nominal_and_margin():
    assert check_robot_state(RobotState.nominal()) == ()
    q = np.array(go2.DEFAULT_STANDING_POSE)
    q[0] = go2.JOINT_UPPER[0] + 0.05  # within the default 0.1 rad margin
    assert check_robot_state(RobotState.nominal(q=q)) == ()
    assert check_robot_state(RobotState.nominal(q=q), joint_margin=0.0)


TARGETS = go2.DEFAULT_STANDING_POSE + 0.01 * np.arange(12.0)  # distinct, inside every range


def command():
    return JointCommand(
        q=TARGETS.copy(),
        dq=np.zeros(12),
        kp=np.full(12, 40.0),
        kd=np.full(12, 0.5),
        tau=np.linspace(-1, 1, 12),
    )


def test_lowcmd_header_fields_idle_motors_and_crc():
    msg = build_lowcmd(command())
    assert list(msg.head) == [0xFE, 0xEF]
    assert msg.level_flag == 0xFF
    assert msg.gpio == 0
    for i in range(12):
        m = msg.motor_cmd[i]
        assert m.mode == 0x01
        assert m.q == pytest.approx(TARGETS[i]) and m.kp == 40.0 and m.kd == 0.5
        assert m.tau == pytest.approx(np.linspace(-1, 1, 12)[i])
    for i in range(12, 20):
        m = msg.motor_cmd[i]
        assert m.q == pytest.approx(go2.POS_STOP_F) and m.dq == pytest.approx(go2.VEL_STOP_F)
        assert m.kp == 0.0 and m.kd == 0.0 and m.tau == 0.0
    assert msg.crc == sdk_reference_crc(msg)  # the SDK's own CRC accepts ours


def test_lowcmd_refuses_non_finite_and_keeps_previous_content():
    msg = build_lowcmd(command())
    before = (msg.crc, [m.q for m in msg.motor_cmd])
    bad = command()
    bad.q[5] = math.nan
    with pytest.raises(
        ValueError, match=r"^joint command refused: q not finite as float32: FL_calf_joint=nan$"
    ):
        fill_lowcmd(msg, bad)
    assert (msg.crc, [m.q for m in msg.motor_cmd]) == before
    with pytest.raises(ValueError, match=r"shape \(11,\), expected \(12,\)"):
        fill_lowcmd(new_lowcmd(), JointCommand(*(np.zeros(11),) * 5))


def test_damping_and_zero_torque_commands():
    zero = build_lowcmd(JointCommand.zero_torque())
    assert all(m.kp == 0 and m.kd == 0 and m.tau == 0 for m in zero.motor_cmd)
    damp = build_lowcmd(JointCommand.damping(2.0))
    assert all(m.kp == 0 and m.kd == 2.0 and m.dq == 0 for m in damp.motor_cmd[:12])
    assert lowcmd_crc(damp) == damp.crc


def test_delivery_delay_from_source_timestamps():
    from moe_loco_controller.io.lowlevel import DeliveryDelay

    d = DeliveryDelay()
    clock_offset = 12.345  # the robot's clock is not ours
    t = 1000.0
    for k in range(100):  # 500 Hz, 1 ms latency
        t = 1000.0 + 0.002 * k
        assert d.excess(t + 0.001, round((t - clock_offset) * 1e9)) == pytest.approx(0, abs=1e-6)
    # a frame published 1 s ago and delivered now (2 ms slower than usual) is 1.002 s late
    late_frame = d.excess(t + 0.003, round((t - 1.0 - clock_offset) * 1e9))
    assert late_frame == pytest.approx(1.002, abs=1e-4)
    # a clock that steps by 0.5 s: late frames for 2 s, then the new offset is the base
    late = [d.excess(t + 0.5 + 0.002 * k, round((t + 0.002 * k - clock_offset) * 1e9))
            for k in range(1, 1500)]  # fmt: skip
    assert late[0] == pytest.approx(0.499, abs=1e-4) and late[-1] == 0.0
    assert d.rebases == 1
