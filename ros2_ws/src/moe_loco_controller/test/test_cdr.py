"""Our precompiled CDR layouts against CycloneDDS's own serialiser, on random messages."""

import numpy as np
import pytest
from test_crc import random_lowcmd, random_lowstate

from moe_loco_controller.core import go2
from moe_loco_controller.core.robot_state import JointCommand
from moe_loco_controller.io import cdr
from moe_loco_controller.io.crc import lowcmd_crc, lowstate_crc, pack_lowstate
from moe_loco_controller.io.lowlevel import (
    LowCmdWriter,
    build_lowcmd,
    lowstate_to_robot_state,
    robot_state_from_values,
)
from moe_loco_controller.io.unitree_sdk import sdk


def test_lowstate_decode_matches_cyclonedds_on_random_messages():
    rng = np.random.default_rng(5)
    for _ in range(100):
        msg = random_lowstate(rng)
        data = msg.serialize()
        values = cdr.decode_lowstate(data)
        back = sdk.LowState_.deserialize(data)  # CycloneDDS's own decoder
        assert cdr.lowstate_values_crc(values) == lowstate_crc(back)
        assert values[cdr.LS_CRC] == back.crc and values[cdr.LS_TICK] == back.tick
        a = robot_state_from_values(values, 1.0)
        b = lowstate_to_robot_state(back, 1.0)
        for f in ("q", "dq", "tau_est", "quat_wxyz", "gyro", "accel", "foot_force", "remote_axes"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
        assert (a.tick, a.remote_keys, a.problems) == (b.tick, b.remote_keys, b.problems)


def test_lowcmd_encode_matches_cyclonedds():
    rng = np.random.default_rng(6)
    writer_template = cdr.lowcmd_values(random_lowcmd(rng))
    for _ in range(100):
        msg = random_lowcmd(rng)
        msg.crc = lowcmd_crc(msg)
        values = cdr.lowcmd_values(msg)
        assert cdr.encode_lowcmd(values) == msg.serialize()
    assert len(writer_template) == cdr.LC_CRC + 1


def test_writer_encoding_is_the_idl_lowcmd(unitree_channels):
    cmd = JointCommand(
        q=go2.DEFAULT_STANDING_POSE + np.linspace(-0.1, 0.1, 12),  # inside every joint's range
        dq=np.zeros(12),
        kp=np.full(12, 40.0),
        kd=np.full(12, 0.5),
        tau=np.linspace(0, 1, 12),
    )
    writer = LowCmdWriter()
    try:
        assert writer.encode(cmd) == build_lowcmd(cmd).serialize()
        bad = JointCommand(*(np.full(12, np.nan),) * 5)
        with pytest.raises(ValueError, match="q not finite as float32"):
            writer.encode(bad)
    finally:
        writer.close()


def test_bad_payloads_are_refused():
    data = random_lowstate(np.random.default_rng(7)).serialize()
    with pytest.raises(ValueError, match="1180"):
        cdr.decode_lowstate(data[:100])
    with pytest.raises(ValueError, match="little-endian"):
        cdr.decode_lowstate(b"\x00\x00\x00\x00" + data[4:])  # big-endian CDR
    assert len(pack_lowstate(sdk.default_LowState())) == 1180
