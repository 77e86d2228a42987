"""The wire layer over real CycloneDDS on ``lo``, against a separate process playing the robot."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from moe_loco_controller.core import go2
from moe_loco_controller.io.lowlevel import LowCmdWriter, LowStateReader
from moe_loco_controller.io.unitree_sdk import sdk, sdk_reference_crc

PEERS = Path(__file__).parent / "peers"
sys.path.insert(0, str(PEERS))
import lowstate_peer  # noqa: E402


@pytest.fixture
def robot_peer(unitree_channels):
    procs = []

    def start(*args):
        p = subprocess.Popen(
            [sys.executable, str(PEERS / "lowstate_peer.py"), str(unitree_channels), "lo", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait(timeout=10)


def test_lowstate_from_another_process_arrives_converted(robot_peer, wait):
    seen = []
    reader = LowStateReader(on_state=seen.append)
    try:
        robot_peer("--rate", "200", "--duration", "30", "--bad-every", "4")
        assert wait(lambda: reader.frames >= 60 and reader.bad_crc >= 15, timeout=20), (
            f"frames={reader.frames} bad_crc={reader.bad_crc}"
        )
    finally:
        reader.close()
    st = reader.latest()
    assert st is not None
    np.testing.assert_allclose(st.q, lowstate_peer.expected_q(), atol=1e-6)  # SDK order kept
    np.testing.assert_allclose(st.dq, 0.1 * np.arange(12), atol=1e-6)
    np.testing.assert_allclose(st.quat_wxyz, lowstate_peer.QUAT_WXYZ, atol=1e-6)  # w first
    np.testing.assert_allclose(st.gyro, lowstate_peer.GYRO, atol=1e-6)
    np.testing.assert_allclose(st.accel, lowstate_peer.ACCEL, atol=1e-6)
    np.testing.assert_array_equal(st.foot_force, [10, 20, 30, 40])
    assert st.remote_keys == lowstate_peer.REMOTE_KEYS
    np.testing.assert_allclose(st.remote_axes, lowstate_peer.REMOTE_AXES, atol=1e-6)
    assert st.problems == ()
    # every 4th frame had a broken CRC: counted, and never delivered
    assert all(s.tick < lowstate_peer.BAD_TICK_BASE for s in seen)
    ticks = [s.tick for s in seen]
    assert all(t % 4 != 3 for t in ticks)
    assert ticks == sorted(ticks)


def test_lowstate_with_nan_over_dds_is_flagged_and_reader_survives(robot_peer, wait):
    seen = []
    reader = LowStateReader(on_state=seen.append)
    try:
        robot_peer("--rate", "200", "--duration", "30", "--nan-every", "3")
        assert wait(lambda: reader.flagged >= 5 and reader.frames >= 20, timeout=20)
    finally:
        reader.close()
    flagged = [s for s in seen if s.tick >= lowstate_peer.NAN_TICK_BASE]
    assert flagged and all(s.problems for s in flagged)
    assert any("q not finite: FL_thigh_joint" in p for p in flagged[0].problems)
    assert any("q out of range: FR_calf_joint" in p for p in flagged[0].problems)
    clean = [s for s in seen if s.tick < lowstate_peer.NAN_TICK_BASE]
    assert clean and all(s.problems == () for s in clean)


def test_lowcmd_on_the_wire_carries_a_crc_the_sdk_accepts(unitree_channels, wait):
    from moe_loco_controller.core.robot_state import JointCommand

    received = []
    sub = sdk.ChannelSubscriber(go2.TOPIC_LOWCMD, sdk.LowCmd_)
    sub.Init(received.append, 10)
    writer = LowCmdWriter()
    cmd = JointCommand(
        q=go2.DEFAULT_STANDING_POSE.copy(),
        dq=np.zeros(12),
        kp=np.full(12, 40.0),
        kd=np.full(12, 0.5),
        tau=np.zeros(12),
    )
    try:
        deadline = time.monotonic() + 15
        while len(received) < 5 and time.monotonic() < deadline:
            writer.send(cmd)
            time.sleep(0.01)
    finally:
        writer.close()
        sub.Close()
    assert len(received) >= 5
    msg = received[-1]
    assert msg.crc == sdk_reference_crc(msg)
    assert [m.kp for m in msg.motor_cmd[:12]] == [40.0] * 12
    np.testing.assert_allclose(
        [m.q for m in msg.motor_cmd[:12]], go2.DEFAULT_STANDING_POSE, atol=1e-6
    )


def test_a_frame_is_as_old_as_its_arrival_not_its_reading(robot_peer, wait):
    reader = LowStateReader()  # polling mode, as the controller uses it
    try:
        peer = robot_peer("--rate", "200", "--duration", "1.0")
        assert wait(lambda: reader.samples > 0, timeout=20)
        peer.wait(timeout=20)  # the robot has stopped talking
        time.sleep(0.5)
        state = reader.latest()  # read now, for the first time
        assert state is not None
        # it arrived >= 0.5 s ago: so old it reads (it read as fresh: stamped when taken)
        assert time.monotonic() - state.stamp >= 0.5
    finally:
        reader.close()
