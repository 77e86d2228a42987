"""The robot's side of the CDR layouts (LowState_ out, LowCmd_ in; the sim bridge uses them)
against CycloneDDS's own serialiser and the SDK's CRC, on random messages."""

import struct

import numpy as np
import pytest
from test_crc import random_lowcmd, random_lowstate

from moe_loco_controller.io import cdr
from moe_loco_controller.io.crc import LOWSTATE_FORMAT, lowcmd_crc, lowstate_crc, pack_lowstate
from moe_loco_controller.io.unitree_sdk import sdk, sdk_reference_crc


def lowstate_values(msg) -> list:
    """The flat value list of a LowState_ IDL object, as the CRC packs it."""
    return list(struct.unpack(LOWSTATE_FORMAT, pack_lowstate(msg)))


def test_lowstate_encode_matches_cyclonedds_on_random_messages():
    rng = np.random.default_rng(11)
    for _ in range(100):
        msg = random_lowstate(rng)
        values = lowstate_values(msg)
        values[cdr.LS_CRC] = 0  # encode_lowstate sets it
        data = cdr.encode_lowstate(values)
        msg.crc = lowstate_crc(msg)
        assert values[cdr.LS_CRC] == msg.crc
        assert data == msg.serialize()  # byte for byte what CycloneDDS writes
        back = sdk.LowState_.deserialize(data)  # and CycloneDDS reads it back
        assert back.crc == msg.crc and back.tick == msg.tick
        assert cdr.decode_lowstate(data) == tuple(values)


def test_lowstate_crc_is_the_sdks():
    rng = np.random.default_rng(12)
    for _ in range(3):  # the SDK's pure-Python CRC takes ~1 ms
        msg = random_lowstate(rng)
        values = lowstate_values(msg)
        data = cdr.encode_lowstate(values)
        assert sdk.LowState_.deserialize(data).crc == sdk_reference_crc(msg)


def test_lowcmd_decode_matches_cyclonedds_on_random_messages():
    rng = np.random.default_rng(13)
    for _ in range(100):
        msg = random_lowcmd(rng)
        msg.crc = lowcmd_crc(msg)
        data = msg.serialize()
        values = cdr.decode_lowcmd(data)
        assert values == tuple(cdr.lowcmd_values(msg))
        assert cdr.lowcmd_values_crc(values) == values[cdr.LC_CRC] == msg.crc
        m0 = msg.motor_cmd[0]
        b = cdr.LC_MOTOR0
        assert values[b] == m0.mode and values[b + 1 : b + 6] == pytest.approx(
            [m0.q, m0.dq, m0.tau, m0.kp, m0.kd], rel=1e-6
        )
        # a corrupted word fails the CRC check
        bad = bytearray(data)
        bad[40] ^= 0x10
        bad_values = cdr.decode_lowcmd(bytes(bad))
        assert cdr.lowcmd_values_crc(bad_values) != bad_values[cdr.LC_CRC]


def test_lowcmd_round_trip_through_our_encoder():
    rng = np.random.default_rng(14)
    values = cdr.lowcmd_values(random_lowcmd(rng))
    data = cdr.encode_lowcmd(values)
    assert list(cdr.decode_lowcmd(data)) == values
    assert cdr.lowcmd_values_crc(values) == values[cdr.LC_CRC]


def test_bad_lowcmd_payloads_are_refused():
    data = random_lowcmd(np.random.default_rng(15)).serialize()
    with pytest.raises(ValueError, match="812"):
        cdr.decode_lowcmd(data[:100])
    with pytest.raises(ValueError, match="little-endian"):
        cdr.decode_lowcmd(b"\x00\x00\x00\x00" + data[4:])
